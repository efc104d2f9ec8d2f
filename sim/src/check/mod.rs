//! Checkers: verdicts from the recorded history, the database's record and Redis's final
//! state, never from what the workers believe happened. One module per checker, registered in
//! [`check`]; each violation points at the first trace event that shows it.
//!
//! | checker | severity | what |
//! |---|---|---|
//! | [`duplicate_effect`] | correctness | an event's effect applied more than once (fail-open duplicates inside a declared outage window are notes) |
//! | [`lost_event`] | liveness | an event produced (a record of it in the Kafka log) but never applied after the liveness phase |
//! | [`lock_overlap`] | correctness / note | two handlers holding the lock of one key at the same virtual time (a note when a Redis crash lost the lock's record) |
//! | [`fence_monotonic`] | correctness | `fence_regression`: a fencing token handed out not above one the (fenced) database had already accepted for the event |
//! | [`ttl_lifecycle`] | correctness | a processing record not written with the processing TTL, or a completed one not with its event type's TTL |
//! | [`stuck_lock`] | correctness | at quiescence, a processing record without expiry or with more TTL than the lock's |
//! | [`double_invocation`] | correctness | one `process()` call that ran the handler more than once |
//! | [`confirm_effect`] | correctness / note | `confirm_without_effect` (a bug), `effect_without_confirm` at quiescence with its cause (a note) |
//! | [`kafka`] | correctness / liveness | the Kafka model's own history: `lost`, `nonmonotonic_commit`, `stale_commit_accepted`, `poll_skip` |
//!
//! [`why`] is no checker: under each repeated effect it names the mechanism that let the
//! second handler in.

pub mod confirm_effect;
pub mod double_invocation;
pub mod duplicate_effect;
pub mod fence_monotonic;
pub mod kafka;
pub mod lock_overlap;
pub mod lost_event;
pub mod registry;
pub mod stuck_lock;
pub mod ttl_lifecycle;
pub mod why;

use crate::model::db::{DbMode, DbModel};
use crate::model::redis::Persistence;
use crate::model::redis::RedisModel;
use crate::trace::Event;
use std::fmt;

/// Whether a violation is about safety or progress, or only worth knowing.
///
/// ```
/// use sim::{Checker, Input, Severity, Violation};
///
/// /// Flags the first event produced, at a chosen severity.
/// struct Flag(Severity);
///
/// impl Checker for Flag {
///     fn kinds(&self) -> &[&'static str] {
///         &["flagged"]
///     }
///     fn check(&self, input: &Input<'_>) -> Vec<Violation> {
///         vec![Violation {
///             kind: "flagged",
///             severity: self.0,
///             event_id: input.produced[0].clone(),
///             detail: "looked at".into(),
///             first_event: None,
///         }]
///     }
/// }
///
/// let sim = sim::Sim::new("duplicate-detection").unwrap();
/// let seed = sim.config().seed;
/// // A note is reported beside the verdict and does not fail the run...
/// let noted = sim.clone().checker(Flag(Severity::Note)).run(seed);
/// assert!(noted.verdict.is_pass());
/// assert!(noted.notes.iter().any(|n| n.kind == "flagged"));
/// // ...a correctness violation fails it.
/// let failed = sim.checker(Flag(Severity::Correctness)).run(seed);
/// assert_eq!(failed.verdict.name(), "correctness");
/// assert_eq!(failed.verdict.violations()[0].kind, "flagged");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Something happened that must never happen.
    Correctness,
    /// Something that must happen did not.
    Liveness,
    /// A hazard the faults explain (reported, does not fail the run).
    Note,
}

/// One thing wrong with a run.
///
/// ```
/// // A GC pause outlives v2's lock: two workers apply the one event's effect.
/// let sim = sim::Sim::new("gc-pause-v2").unwrap();
/// let r = sim.run(sim.config().seed);
/// let v = &r.verdict.violations()[0];
/// assert_eq!(v.kind, "duplicate_effect");
/// assert_eq!(v.severity, sim::Severity::Correctness);
/// assert_eq!(v.event_id, r.effects.keys().next().unwrap().as_str());
/// // It points at the trace event that shows it: the second effect applied.
/// assert_eq!(r.events[v.first_event.unwrap()].kind(), "effect_applied");
///
/// // `Display` is the line `sim` prints.
/// let own = sim::Violation {
///     kind: "email_twice",
///     severity: sim::Severity::Correctness,
///     event_id: "e1".into(),
///     detail: "a second email".into(),
///     first_event: Some(12),
/// };
/// assert_eq!(own.to_string(), "email_twice event=e1 a second email (trace event #12)");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The checker's name (`duplicate_effect`, `lost_event`, ...).
    pub kind: &'static str,
    /// How bad it is.
    pub severity: Severity,
    /// The event concerned.
    pub event_id: String,
    /// What the checker saw.
    pub detail: String,
    /// Index in the trace of the first event that shows it, if any.
    pub first_event: Option<usize>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} event={} {}", self.kind, self.event_id, self.detail)?;
        if let Some(i) = self.first_event {
            write!(f, " (trace event #{i})")?;
        }
        Ok(())
    }
}

/// Everything a checker may read.
///
/// ```
/// use sim::{Checker, Input, Severity, Violation};
///
/// /// Notes what it was given: the events produced, their effects, the history's length.
/// struct Tally;
///
/// impl Checker for Tally {
///     fn kinds(&self) -> &[&'static str] {
///         &["tally"]
///     }
///     fn check(&self, input: &Input<'_>) -> Vec<Violation> {
///         let effects: usize = input.produced.iter().map(|id| input.effects(id).len()).sum();
///         let detail = format!(
///             "produced={} effects={} complete={} history={}",
///             input.produced.len(),
///             effects,
///             input.complete,
///             input.trace.len()
///         );
///         vec![Violation {
///             kind: "tally",
///             severity: Severity::Note,
///             event_id: String::new(),
///             detail,
///             first_event: None,
///         }]
///     }
/// }
///
/// // Two copies of one event: one event produced, applied once, the second copy a duplicate.
/// let r = sim::Sim::new("duplicate-detection").unwrap().checker(Tally).run(1);
/// let tally = r.notes.iter().find(|n| n.kind == "tally").unwrap();
/// let history = r.events.len();
/// assert_eq!(tally.detail, format!("produced=1 effects=1 complete=true history={history}"));
/// ```
pub struct Input<'a> {
    /// The history.
    pub trace: &'a [Event],
    /// The database's record. Not API: read it through [`Input::effects`].
    #[doc(hidden)]
    pub db: &'a DbModel,
    /// Redis's data set at the end, each value read as v2 reads it ([`final_records`]). Not
    /// API (the built-in checkers').
    #[doc(hidden)]
    pub records: &'a Records,
    /// The Redis node's clock at the end (µs since the epoch).
    pub redis_now_us: i64,
    /// The few settings of the run the checkers need. Not API (the built-in checkers').
    #[doc(hidden)]
    pub params: &'a Params,
    /// The events produced: every event id with a record in the broker's log at the end
    /// (what the broker appended, whatever acks the producer got). Events the producer never
    /// published are not in it.
    pub produced: &'a [String],
    /// False when a limit (steps, virtual time, the watchdog) stopped the run midway: the
    /// history so far is still judged, but checks of the end state ([`is_end_state`]) are
    /// not, since the run never reached its end.
    pub complete: bool,
    /// The Kafka checker's findings and counts, made once per run (the run's result reports
    /// the counts). Not API (the built-in checkers').
    #[doc(hidden)]
    pub kafka: &'a (Vec<Violation>, kafka::KafkaStats),
}

impl Input<'_> {
    /// The effects the database applied for `event_id`, in commit order (empty when none):
    /// who committed each, when, in which call and with which token.
    ///
    /// ```
    /// use sim::{Checker, Input, Severity, Violation};
    ///
    /// /// Every produced event has its effect by the end.
    /// struct EveryEventApplied;
    ///
    /// impl Checker for EveryEventApplied {
    ///     fn kinds(&self) -> &[&'static str] {
    ///         &["never_applied"]
    ///     }
    ///
    ///     fn check(&self, input: &Input<'_>) -> Vec<Violation> {
    ///         if !input.complete {
    ///             return Vec::new(); // a run stopped midway never reached its end
    ///         }
    ///         let missing = input.produced.iter().filter(|id| input.effects(id).is_empty());
    ///         missing
    ///             .map(|id| Violation {
    ///                 kind: "never_applied",
    ///                 severity: Severity::Liveness,
    ///                 event_id: id.clone(),
    ///                 detail: "produced but never applied".into(),
    ///                 first_event: None,
    ///             })
    ///             .collect()
    ///     }
    /// }
    ///
    /// let sim = sim::Sim::new("default").unwrap().checker(EveryEventApplied);
    /// assert!(sim.run(1).verdict.is_pass());
    /// ```
    pub fn effects(&self, event_id: &str) -> &[crate::model::db::Effect] {
        self.db.effects().get(event_id).map_or(&[], Vec::as_slice)
    }
}

/// The keys Redis holds at the end of a run, by key.
pub type Records = std::collections::BTreeMap<String, FinalRecord>;

/// A key Redis holds at the end of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct FinalRecord {
    /// Its value, read as v2 reads it.
    pub state: idempotency::record::RecordState,
    /// When it expires (unix ms), if it does.
    pub expire_at_ms: Option<i64>,
}

/// The keys live in `redis` at `now_us`, each value parsed once for every checker.
pub fn final_records(redis: &RedisModel, now_us: i64) -> Records {
    redis
        .live_entries(now_us)
        .map(|(key, value, expire_at_ms)| {
            let state = idempotency::record::parse_record(value);
            (key.to_owned(), FinalRecord { state, expire_at_ms })
        })
        .collect()
}

/// The settings of a run that the checkers read (the run fills it from its config; the
/// checkers never see the config itself).
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// How the database guards effects.
    pub database: DbMode,
    /// What survives a Redis crash.
    pub redis_persistence: Persistence,
    /// The processing lock's TTL.
    pub processing_ttl_s: u64,
    /// Declared Redis outages (`[from, to)` virtual ms): fail-open duplicates inside are notes.
    pub outage_windows_ms: Vec<[u64; 2]>,
}

impl Default for Params {
    /// The default scenario's settings.
    fn default() -> Self {
        Params {
            database: DbMode::Unique,
            redis_persistence: Persistence::Everysec,
            processing_ttl_s: 300,
            outage_windows_ms: Vec::new(),
        }
    }
}

/// Whether `kind` judges the state at the end of a run (something that must have happened by
/// then, or a state that must not remain): meaningless for a run cut short.
pub fn is_end_state(kind: &str) -> bool {
    crate::check::registry::find(kind).is_some_and(|k| k.end_state)
}

/// A property of a run, judged from its history and the models' state: a built-in checker or
/// one of a user's own ("an email is sent at most once per order").
///
/// Its violations are named by `kind` in verdicts, reports and shrinks like any built-in
/// one's; a `Correctness` violation fails the run, a `Liveness` one too (unless a correctness
/// one is there as well), a `Note` is only reported.
///
/// ```
/// use sim::{Checker, Input, Severity, Violation};
/// use sim::Typed;
/// use std::collections::BTreeMap;
///
/// /// An email is sent at most once per event.
/// struct OneEmail;
///
/// impl Checker for OneEmail {
///     fn kinds(&self) -> &[&'static str] {
///         &["email_twice"]
///     }
///     fn check(&self, input: &Input<'_>) -> Vec<Violation> {
///         let mut sent: BTreeMap<&str, usize> = BTreeMap::new();
///         let mut out = Vec::new();
///         for (i, e) in input.trace.iter().enumerate() {
///             if let Typed::Custom { event_id, name, .. } = e.typed() {
///                 if name != "email_sent" {
///                     continue;
///                 }
///                 let n = sent.entry(event_id).or_default();
///                 *n += 1;
///                 if *n == 2 {
///                     out.push(Violation {
///                         kind: "email_twice",
///                         severity: Severity::Correctness,
///                         event_id: event_id.clone(),
///                         detail: "a second email".into(),
///                         first_event: Some(i),
///                     });
///                 }
///             }
///         }
///         out
///     }
/// }
/// ```
pub trait Checker: Send + Sync {
    /// The kinds of violation it reports (its name, for most).
    fn kinds(&self) -> &[&'static str];

    /// Its violations in this run.
    fn check(&self, input: &Input<'_>) -> Vec<Violation>;

    /// Whether `kind` judges the state at the end of a run (something that must have happened
    /// by then): such violations are left out when a limit cut the run short.
    fn end_state(&self, kind: &str) -> bool {
        let _ = kind;
        false
    }
}

/// A built-in checker: the kinds it reports ([`registry::KINDS`] holds their severity and
/// docs) and the function that judges.
struct BuiltIn {
    kinds: &'static [&'static str],
    judge: fn(&Input<'_>) -> Vec<Violation>,
}

impl Checker for BuiltIn {
    fn kinds(&self) -> &[&'static str] {
        self.kinds
    }
    fn check(&self, input: &Input<'_>) -> Vec<Violation> {
        (self.judge)(input)
    }
    fn end_state(&self, kind: &str) -> bool {
        is_end_state(kind)
    }
}

/// Every built-in checker, in the order they report.
const BUILT_IN: &[BuiltIn] = &[
    BuiltIn {
        kinds: &["duplicate_effect", "fail_open_duplicate"],
        judge: duplicate_effect::check,
    },
    BuiltIn {
        kinds: &["lost_event"],
        judge: |i| lost_event::check(i.db, i.produced),
    },
    BuiltIn {
        kinds: &["lock_overlap"],
        judge: lock_overlap::check,
    },
    BuiltIn {
        kinds: &["fence_regression"],
        judge: fence_monotonic::check,
    },
    BuiltIn {
        kinds: &["ttl_lifecycle"],
        judge: ttl_lifecycle::check,
    },
    BuiltIn {
        kinds: &["stuck_lock"],
        judge: stuck_lock::check,
    },
    BuiltIn {
        kinds: &["double_invocation"],
        judge: double_invocation::check,
    },
    BuiltIn {
        kinds: &["confirm_without_effect", "effect_without_confirm"],
        judge: confirm_effect::check,
    },
    BuiltIn {
        kinds: &[
            "lost",
            "nonmonotonic_commit",
            "stale_commit_accepted",
            "poll_skip",
        ],
        judge: |i| i.kafka.0.clone(),
    },
];

/// Runs every built-in checker.
pub fn check(input: &Input<'_>) -> Vec<Violation> {
    check_with(input, &[])
}

/// Runs every built-in checker, then each of `more` (a user's own). Each checker reports only
/// the kinds it declares; end-state kinds are left out of a run a limit cut short.
pub fn check_with(input: &Input<'_>, more: &[std::sync::Arc<dyn Checker>]) -> Vec<Violation> {
    let checkers = BUILT_IN
        .iter()
        .map(|c| c as &dyn Checker)
        .chain(more.iter().map(|c| &**c));
    let mut out = Vec::new();
    for c in checkers {
        let found = c.check(input);
        assert!(
            found.iter().all(|v| c.kinds().contains(&v.kind)),
            "a checker reported a kind it does not declare: {:?} not in {:?}",
            found.iter().map(|v| v.kind).collect::<Vec<_>>(),
            c.kinds()
        );
        out.extend(
            found
                .into_iter()
                .filter(|v| input.complete || !c.end_state(v.kind)),
        );
    }
    out
}

/// One event of a hand-made history, at `t_ms` virtual milliseconds (for the checkers' tests).
#[cfg(test)]
pub(crate) fn test_event(t_ms: u64, node: &str, event: crate::trace::Typed) -> Event {
    event.event(t_ms * 1000, node)
}

/// Typed events for the checkers' hand-made histories, with the fields a test does not care
/// about set to something plausible.
#[cfg(test)]
pub(crate) mod history {
    use crate::fault::Fault;
    use crate::net::topology::NodeName;
    use crate::trace::{AcquireOutcome, Typed};

    /// `deliver` of `id` (partition 0, offset 0, first attempt, call 1).
    pub fn deliver(id: &str) -> Typed {
        Typed::Deliver {
            topic: "events".into(),
            partition: 0,
            offset: 0,
            event_id: id.into(),
            attempt: 1,
            delivery: 1,
            call: 1,
            member: "worker-1-1".into(),
            generation: 1,
        }
    }

    /// `acquire` of `id` with `outcome`.
    pub fn acquire(id: &str, outcome: AcquireOutcome) -> Typed {
        Typed::Acquire {
            event_id: id.into(),
            outcome,
            call: 1,
        }
    }

    /// `acquire` of `id`'s lock on `key`, with `fence`.
    pub fn acquired(id: &str, key: &str, fence: Option<u64>) -> Typed {
        acquire(
            id,
            AcquireOutcome::Acquired {
                fence,
                key: key.into(),
            },
        )
    }

    /// `handler_start` of `id` in call `call`.
    pub fn handler_start(id: &str, call: u64) -> Typed {
        Typed::HandlerStart {
            event_id: id.into(),
            fence: None,
            call,
        }
    }

    /// `handler_end` of `id`, ok.
    pub fn handler_end(id: &str) -> Typed {
        Typed::HandlerEnd {
            event_id: id.into(),
            result: "ok".into(),
            call: 1,
        }
    }

    /// `confirm` of `id` with `result`.
    pub fn confirm(id: &str, result: &str) -> Typed {
        Typed::Confirm {
            event_id: id.into(),
            result: result.into(),
            call: 1,
        }
    }

    /// `effect_attempt` of `id` by `worker`.
    pub fn effect_attempt(id: &str, worker: &str, fence: Option<u64>, result: &str) -> Typed {
        Typed::EffectAttempt {
            event_id: id.into(),
            worker: worker.into(),
            incarnation: 1,
            call: 1,
            fence,
            result: result.into(),
        }
    }

    /// `effect_applied` of `id` by `worker`.
    pub fn effect_applied(id: &str, worker: &str) -> Typed {
        Typed::EffectApplied {
            event_id: id.into(),
            worker: worker.into(),
            incarnation: 1,
            call: 1,
            fence: None,
        }
    }

    /// A `fault` crashing `node` (Redis's crash with the keys it lost).
    pub fn crash(node: NodeName, lost_keys: Option<Vec<String>>) -> Typed {
        Typed::Fault {
            fault: Fault::Crash { node: Some(node) },
            by: "nemesis".into(),
            lasts_ms: Some(1000),
            lost_keys,
            point: None,
            event_id: None,
        }
    }
}

/// Runs `checker` on a hand-made history, for the checkers' own tests: a fresh database in
/// the params' mode, an empty Redis, a complete run.
#[cfg(test)]
pub(crate) fn judge_history(
    trace: &[Event],
    config: &Params,
    checker: impl Fn(&Input<'_>) -> Vec<Violation>,
) -> Vec<Violation> {
    let (db, records) = (DbModel::new(config.database), Records::new());
    checker(&Input {
        trace,
        db: &db,
        records: &records,
        redis_now_us: 0,
        params: config,
        produced: &[],
        complete: true,
        kafka: &kafka::check(trace),
    })
}

/// Whether a run's violations meet a scenario's expectation: for `pass`, no correctness or
/// liveness violation; otherwise at least one of the expected kinds and no other kind.
pub fn as_expected(expected: &[String], violations: &[Violation]) -> bool {
    let shown: std::collections::BTreeSet<&str> = violations.iter().map(|v| v.kind).collect();
    if expected.is_empty() {
        return shown.is_empty();
    }
    shown.iter().all(|k| expected.iter().any(|e| e == k))
        && expected.iter().any(|e| shown.contains(e.as_str()))
}

/// Whether a run shows only expected kinds (a seed of a violation-expecting scenario may also
/// pass).
pub fn only_expected(expected: &[String], violations: &[Violation]) -> bool {
    violations.iter().all(|v| expected.iter().any(|e| e == v.kind))
}

#[cfg(test)]
mod registry_tests {
    use super::BUILT_IN;
    use crate::check::registry::KINDS;
    use std::collections::BTreeSet;

    /// The registry lists exactly the kinds the built-in checkers declare (each declared once),
    /// plus the run's limits; every kind is documented in the README.
    #[test]
    fn the_registry_lists_exactly_the_kinds_the_checkers_declare() {
        let declared: Vec<&str> = BUILT_IN.iter().flat_map(|c| c.kinds.iter().copied()).collect();
        let unique: BTreeSet<&str> = declared.iter().copied().collect();
        assert_eq!(
            unique.len(),
            declared.len(),
            "a kind declared twice: {declared:?}"
        );
        let registered: BTreeSet<&str> = KINDS
            .iter()
            .filter(|k| k.source != "run/mod.rs")
            .map(|k| k.name)
            .collect();
        assert_eq!(unique, registered);
        let readme = include_str!("../../../README.md");
        let world = include_str!("../run/mod.rs");
        for k in KINDS {
            if k.source == "run/mod.rs" {
                let spelled = format!("limit_violation(\"{}\"", k.name);
                assert!(world.contains(&spelled), "{} is not a limit of the run", k.name);
            }
            assert!(
                readme.contains(&format!("`{}`", k.name)),
                "{} is not in the README",
                k.name
            );
        }
    }

    /// A checker that reports a kind it did not declare is a bug the run refuses to hide.
    #[test]
    #[should_panic(expected = "a checker reported a kind it does not declare")]
    fn an_undeclared_kind_is_refused() {
        struct Liar;
        impl super::Checker for Liar {
            fn kinds(&self) -> &[&'static str] {
                &["mine"]
            }
            fn check(&self, _: &super::Input<'_>) -> Vec<super::Violation> {
                vec![super::Violation {
                    kind: "other",
                    severity: super::Severity::Correctness,
                    event_id: String::new(),
                    detail: String::new(),
                    first_event: None,
                }]
            }
        }
        let db = crate::model::db::DbModel::new(crate::model::db::DbMode::Plain);
        let params = super::Params::default();
        let input = super::Input {
            trace: &[],
            db: &db,
            records: &Default::default(),
            redis_now_us: 0,
            params: &params,
            produced: &[],
            complete: true,
            kafka: &Default::default(),
        };
        super::check_with(&input, &[std::sync::Arc::new(Liar)]);
    }
}
