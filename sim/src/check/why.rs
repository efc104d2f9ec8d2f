//! Why: for a repeated effect (`duplicate_effect`, `fail_open_duplicate`, `lock_overlap`), the
//! mechanism that let the second handler in, read from the recorded history alone (deliveries,
//! acquire outcomes, Redis commands with their replies and the Redis node's clock, database
//! effects, faults), never from what a worker believed. Named in the words of the v2 protocol
//! document (`shared/docs/v2-protocol.md`): fail-open, stale-lock takeover, the non-atomic
//! takeover race, unchecked release, two keys for one event, a lock expiring under a pause, ...
//!
//! Calls that held the key between the two handlers without applying the event (a chain of
//! redeliveries: each took the key, failed or crashed, and let it go) are looked through: the
//! mechanism is what let the first of them past the first handler's record, or that handler's
//! missing confirm when it finished unconfirmed after the key had already left it.
//!
//! The explanation is derived, not recorded: the trace is unchanged. [`explain`] is pure; its
//! [`Mechanism::name`] is stable (a shrinker's fingerprint may use it) and its sentence
//! ([`Why`]'s `Display`) names the workers, calls and times. A repeated effect that matches no
//! mechanism is [`Mechanism::Unexplained`]: a finding too.

use super::Violation;
use crate::fault::{Fault, FaultPoint};
use crate::net::topology::NodeName;
use crate::trace::{AcquireOutcome, Event, Typed};
use std::collections::BTreeMap;
use std::fmt;

/// What let a second handler apply (or hold) what a first one had.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mechanism {
    /// A handler ran unprotected: Redis failed and the decorator failed open (v2 step 5).
    FailOpen,
    /// A processing record older than 300 s by the reader's clock was deleted and taken over
    /// (GET, DEL, SET NX) after its holder had stopped.
    StaleTakeover,
    /// A live lock was taken over as stale because a clock was skewed (v2 weakness C).
    SkewTakeover,
    /// Two workers saw the same stale record and both took it over (v2 weakness B).
    TakeoverRace,
    /// A worker crashed after its transaction committed and before it confirmed; the lock
    /// expired and the event was processed again.
    CrashBeforeConfirm,
    /// The confirm failed (logged and swallowed); the processing lock expired and the event
    /// was processed again (v2 weakness F).
    FailedConfirm,
    /// The holder was paused (or ran) past the lock's TTL; the lock expired under it and
    /// another worker took it (v2 weakness D).
    LockExpiredUnderPause,
    /// A release (DEL) not checked against its owner deleted another holder's lock (v2
    /// weakness D).
    UncheckedRelease,
    /// One event under two keys (header path and body path hash differently, v2 weakness E).
    TwoKeys,
    /// A Redis crash lost the key's record (the writes since the last fsync).
    RedisRestartLost,
    /// The Redis node's clock jumped past the lock's TTL, expiring it.
    RedisClockJump,
    /// A database call timed out on the client, the lock was released and the event
    /// redelivered; the first write was applied anyway (it landed late, or its answer was lost).
    DbTimeoutLateWrite,
    /// A group member removed past its session or max.poll.interval kept processing while
    /// its partition's records went to another member.
    RebalanceZombie,
    /// A Redis command ran but its reply was lost: the caller timed out and failed open,
    /// and an acquire that won left a lock nobody knew it held.
    LostReply,
    /// Redis failed over to a replica that lagged: the key's record, written within the lag,
    /// never reached it.
    FailoverLost,
    /// The Python original's exception path (v2 weakness A, `python-v2`): the handler raised,
    /// the decorator's outer fail-open branch called it again in the same call, without a lock
    /// and with a no-op confirm; the first call's write had committed too, or the second
    /// call's success left no key for the next delivery.
    HandlerCalledTwice,
    /// A mixed fleet: a v2 worker took over a fenced worker's live lease, judging its record by
    /// `started_at` alone (v2 weakness C's last sentence; renewal keeps it fresh only for a
    /// reader whose clock is right); v2's commit carries no fencing token, so even a fenced
    /// database lets both effects in.
    V2TookFencedLease,
    /// None of the above: a finding too.
    Unexplained,
}

impl Mechanism {
    /// Every mechanism, in the order the README lists them.
    pub const ALL: [Mechanism; 18] = [
        Mechanism::FailOpen,
        Mechanism::StaleTakeover,
        Mechanism::SkewTakeover,
        Mechanism::TakeoverRace,
        Mechanism::CrashBeforeConfirm,
        Mechanism::FailedConfirm,
        Mechanism::LockExpiredUnderPause,
        Mechanism::UncheckedRelease,
        Mechanism::TwoKeys,
        Mechanism::RedisRestartLost,
        Mechanism::RedisClockJump,
        Mechanism::DbTimeoutLateWrite,
        Mechanism::RebalanceZombie,
        Mechanism::LostReply,
        Mechanism::FailoverLost,
        Mechanism::HandlerCalledTwice,
        Mechanism::V2TookFencedLease,
        Mechanism::Unexplained,
    ];

    /// Its stable short name.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::FailOpen => "fail_open",
            Mechanism::StaleTakeover => "stale_takeover",
            Mechanism::SkewTakeover => "skew_takeover",
            Mechanism::TakeoverRace => "takeover_race",
            Mechanism::CrashBeforeConfirm => "crash_before_confirm",
            Mechanism::FailedConfirm => "failed_confirm",
            Mechanism::LockExpiredUnderPause => "lock_expired_under_pause",
            Mechanism::UncheckedRelease => "unchecked_release",
            Mechanism::TwoKeys => "two_keys",
            Mechanism::RedisRestartLost => "redis_restart_lost",
            Mechanism::RedisClockJump => "redis_clock_jump",
            Mechanism::DbTimeoutLateWrite => "db_timeout_late_write",
            Mechanism::RebalanceZombie => "rebalance_zombie",
            Mechanism::LostReply => "lost_reply",
            Mechanism::FailoverLost => "failover_lost",
            Mechanism::HandlerCalledTwice => "handler_called_twice",
            Mechanism::V2TookFencedLease => "v2_took_fenced_lease",
            Mechanism::Unexplained => "unexplained",
        }
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A mechanism and the sentence that shows it in this history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Why {
    /// The mechanism.
    pub mechanism: Mechanism,
    /// One sentence naming the workers, calls and times.
    pub sentence: String,
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.mechanism.name(), self.sentence)
    }
}

/// Whether `kind` is a repeated effect that [`explain`] explains.
pub fn explains(kind: &str) -> bool {
    matches!(kind, "duplicate_effect" | "fail_open_duplicate" | "lock_overlap")
}

/// The violations as labels, sorted, each once: a repeated effect as its kind and the mechanism
/// behind it (`duplicate_effect/db_timeout_late_write`), any other as its kind. What tells one
/// failure from another in a shrink's fingerprint and a sweep's distinct failures.
pub fn labels(trace: &[Event], violations: &[Violation]) -> std::collections::BTreeSet<String> {
    violations
        .iter()
        .map(|v| match explain(trace, v) {
            Some(why) => format!("{}/{}", v.kind, why.mechanism.name()),
            None => v.kind.to_owned(),
        })
        .collect()
}

/// The mechanism behind `v`, from `trace` alone; `None` when `v` is not a repeated effect.
pub fn explain(trace: &[Event], v: &Violation) -> Option<Why> {
    if !explains(v.kind) {
        return None;
    }
    let h = History::read(trace);
    if v.kind != "lock_overlap" {
        if let Some(why) = h.applied_twice_by_one_call(&v.event_id) {
            return Some(why);
        }
    }
    let pair = if v.kind == "lock_overlap" {
        h.overlap_pair(v)
    } else {
        h.applied_pair(&v.event_id)
    };
    Some(match pair {
        Some((a, b)) => h.why(a, b),
        None => Why {
            mechanism: Mechanism::Unexplained,
            sentence: "the history does not show two handlers of the event".into(),
        },
    })
}

/// A `process()` call: (worker, incarnation, call).
type CallId = (String, u64, u64);

/// What the history shows of one `process()` call.
#[derive(Clone, Debug, Default)]
struct Call {
    worker: String,
    incarnation: u64,
    call: u64,
    deliver_us: u64,
    member: String,
    acquire: Option<(u64, AcquireOutcome)>,
    unprotected: Option<String>,
    handler_start: Option<u64>,
    handler_end: Option<(u64, String)>,
    confirm: Option<(u64, String)>,
    applied: Vec<u64>,
    crashed: Option<(u64, Option<FaultPoint>)>,
    /// `python-v2`: the handler called a second time in this call after its first run raised
    /// (when, and the second run's end); `acquire`, `handler_start` and `handler_end` stay the
    /// first run's.
    again: Option<Again>,
}

/// The second run of a handler in one call (`python-v2`'s exception path).
#[derive(Clone, Debug, Default)]
struct Again {
    t_us: u64,
    end: Option<(u64, String)>,
}

impl Call {
    fn name(&self) -> String {
        if self.incarnation > 1 {
            format!("{}#{}'s call {}", self.worker, self.incarnation, self.call)
        } else {
            format!("{}'s call {}", self.worker, self.call)
        }
    }

    fn key(&self) -> Option<&str> {
        self.acquire
            .as_ref()
            .and_then(|(_, o)| o.running())
            .map(|(_, k)| k)
            .filter(|k| !k.is_empty())
    }

    /// When it stopped holding: its handler's end or its worker's crash.
    fn stopped_us(&self) -> Option<u64> {
        match (
            self.handler_end.as_ref().map(|h| h.0),
            self.crashed.as_ref().map(|c| c.0),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// A Redis command of the history.
#[derive(Clone, Debug)]
struct Cmd {
    index: usize,
    t_us: u64,
    from: crate::trace::Label,
    cmd: crate::trace::Label,
    key: String,
    args: Vec<serde_json::Value>,
    reply: String,
    clock_us: i64,
    /// It ran, but its reply was lost on the way back.
    reply_lost: bool,
    /// The same command sent again after an earlier one's reply was lost, which had written:
    /// the scripts answer such a resend as the first was answered (an acquire finds its own
    /// lease, a confirm its own completed record) without writing again.
    resent: bool,
}

impl Cmd {
    /// Whether it wrote a record on its key (a lock taken or a confirm).
    fn wrote(&self) -> bool {
        if self.resent {
            return false;
        }
        match self.cmd.as_str() {
            "SET" | "SETEX" => self.reply == "OK",
            "EVALSHA:acquire" => self.reply.starts_with("[\"acquired\""),
            "EVALSHA:confirm" => self.reply == "1",
            _ => false,
        }
    }

    /// Whether it took a lock.
    fn locked(&self) -> bool {
        self.wrote() && matches!(self.cmd.as_str(), "SET" | "EVALSHA:acquire")
    }

    /// Whether it deleted its key's record.
    fn deleted(&self) -> bool {
        matches!(self.cmd.as_str(), "DEL" | "EVALSHA:release") && self.reply == "1"
    }

    /// The TTL it set (ms), if it wrote one.
    fn ttl_ms(&self) -> Option<i64> {
        let num = |v: &serde_json::Value| v.as_i64();
        match self.cmd.as_str() {
            "SET" => self
                .args
                .iter()
                .position(|a| a.as_str() == Some("EX"))
                .and_then(|i| self.args.get(i + 1))
                .and_then(num)
                .map(|s| s * 1000),
            "SETEX" => self.args.first().and_then(num).map(|s| s * 1000),
            "EVALSHA:acquire" => self.args.get(1).and_then(num),
            "EVALSHA:renew" => self.args.get(2).and_then(num),
            _ => None,
        }
    }

    /// The `started_at` (s) of a processing record it read.
    fn read_processing_started_at(&self) -> Option<f64> {
        if self.cmd != "GET" {
            return None;
        }
        // The reply is the value as text, quoted (a bulk string) or bare.
        let text = serde_json::from_str::<String>(&self.reply).unwrap_or_else(|_| self.reply.clone());
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        (v.get("status")?.as_str()? == "processing")
            .then(|| v.get("started_at").and_then(|s| s.as_f64()).unwrap_or(0.0))
    }
}

/// A fault of the history.
#[derive(Clone, Debug)]
struct FaultAt {
    t_us: u64,
    fault: Fault,
    lasts_ms: Option<u64>,
    lost_keys: Vec<String>,
}

/// The history, indexed for the explainer.
#[derive(Default)]
struct History {
    calls: BTreeMap<CallId, Call>,
    /// Each event's applications, in order: (trace index, call).
    applied: BTreeMap<String, Vec<(usize, CallId)>>,
    /// Each handler start: (trace index) → call.
    starts: BTreeMap<usize, CallId>,
    cmds: Vec<Cmd>,
    faults: Vec<FaultAt>,
    removed: Vec<(u64, String, String)>,
    /// Clock faults and their heals: (time, node, offset ms; 0 once healed).
    clocks: Vec<(u64, String, i64)>,
    ttl_ms: i64,
}

/// A duration, readably.
fn dur(us: u64) -> String {
    if us >= 10_000_000 {
        format!("{} s", us / 1_000_000)
    } else if us >= 1_000_000 {
        format!("{:.1} s", us as f64 / 1e6)
    } else {
        format!("{} ms", us / 1000)
    }
}

/// A virtual time, readably.
fn at(us: u64) -> String {
    format!("{} ms", us / 1000)
}

impl History {
    fn read(trace: &[Event]) -> History {
        let mut h = History {
            ttl_ms: 300_000,
            ..History::default()
        };
        let mut incarnation: BTreeMap<String, u64> = BTreeMap::new();
        // Each worker's current call.
        let mut current: BTreeMap<String, CallId> = BTreeMap::new();
        for (i, e) in trace.iter().enumerate() {
            let node = e.node.as_str();
            let inc = incarnation.get(node).copied().unwrap_or(1);
            let id = |call: u64| (node.to_owned(), inc, call);
            match e.typed() {
                Typed::Config { config, .. } => {
                    if let Some(s) = config.get("processing_ttl_s").and_then(|v| v.as_i64()) {
                        h.ttl_ms = s * 1000;
                    }
                }
                Typed::Start { incarnation: n } => {
                    incarnation.insert(node.to_owned(), *n);
                    current.remove(node);
                }
                Typed::Deliver { call, member, .. } => {
                    let c = h.calls.entry(id(*call)).or_default();
                    *c = Call {
                        worker: node.to_owned(),
                        incarnation: inc,
                        call: *call,
                        deliver_us: e.t_us,
                        member: member.clone(),
                        ..Call::default()
                    };
                    current.insert(node.to_owned(), id(*call));
                }
                // A call whose handler already ran and acquires again is `python-v2` running
                // it a second time: that run's records go to `again`.
                Typed::Acquire { outcome, call, .. } => {
                    let c = h.call(id(*call));
                    if c.handler_end.is_some() {
                        c.again.get_or_insert(Again {
                            t_us: e.t_us,
                            end: None,
                        });
                    } else {
                        c.acquire = Some((e.t_us, outcome.clone()));
                    }
                }
                // Fail-open traces its reason after its one run; `python-v2` traces it
                // between a run that held the lock and the second run.
                Typed::Unprotected { reason, call, .. } => {
                    let c = h.call(id(*call));
                    let held = matches!(c.acquire, Some((_, AcquireOutcome::Acquired { .. })));
                    if held && c.handler_end.is_some() {
                        c.again.get_or_insert(Again {
                            t_us: e.t_us,
                            end: None,
                        });
                    } else {
                        c.unprotected = Some(reason.clone());
                    }
                }
                Typed::HandlerStart { call, .. } => {
                    let c = h.call(id(*call));
                    if c.again.is_none() {
                        c.handler_start = Some(e.t_us);
                    }
                    h.starts.insert(i, id(*call));
                }
                Typed::HandlerEnd { result, call, .. } => {
                    let c = h.call(id(*call));
                    match &mut c.again {
                        Some(again) => again.end = Some((e.t_us, result.to_string())),
                        None => c.handler_end = Some((e.t_us, result.to_string())),
                    }
                }
                Typed::Confirm { result, call, .. } => {
                    h.call(id(*call)).confirm = Some((e.t_us, result.to_string()));
                }
                Typed::EffectApplied {
                    event_id,
                    worker,
                    incarnation,
                    call,
                    ..
                } => {
                    let cid = (worker.clone(), *incarnation, *call);
                    h.call(cid.clone()).applied.push(e.t_us);
                    h.applied.entry(event_id.clone()).or_default().push((i, cid));
                }
                Typed::Redis {
                    from,
                    cmd,
                    key,
                    args,
                    reply,
                    clock_us,
                    reply_lost,
                } => {
                    let resent = h.cmds.iter().rev().any(|m| {
                        m.reply_lost
                            && m.wrote()
                            && (&m.from, &m.cmd, &m.key, &m.args) == (from, cmd, key, args)
                    });
                    h.cmds.push(Cmd {
                        index: i,
                        t_us: e.t_us,
                        from: from.clone(),
                        cmd: cmd.clone(),
                        key: key.clone(),
                        args: args.clone(),
                        reply: reply.clone(),
                        clock_us: *clock_us,
                        reply_lost: *reply_lost,
                        resent,
                    })
                }
                Typed::Fault {
                    fault,
                    lasts_ms,
                    lost_keys,
                    point,
                    ..
                } => {
                    if let Fault::Crash {
                        node: Some(NodeName::Worker(n)),
                    } = fault
                    {
                        let w = format!("worker-{n}");
                        if let Some(cid) = current.get(&w) {
                            let c = h.call(cid.clone());
                            if c.handler_end.is_none() && c.crashed.is_none() {
                                c.crashed = Some((e.t_us, point.clone()));
                            }
                        }
                    }
                    if let Fault::Clock {
                        node: Some(n),
                        offset_ms,
                    } = fault
                    {
                        h.clocks.push((e.t_us, n.to_string(), *offset_ms));
                    }
                    h.faults.push(FaultAt {
                        t_us: e.t_us,
                        fault: fault.clone(),
                        lasts_ms: *lasts_ms,
                        lost_keys: lost_keys.clone().unwrap_or_default(),
                    });
                }
                Typed::Heal {
                    heal, node: Some(n), ..
                } if heal == "clock" => h.clocks.push((e.t_us, n.to_string(), 0)),
                Typed::MemberRemoved { member, reason } => {
                    h.removed.push((e.t_us, member.clone(), reason.clone()));
                }
                _ => {}
            }
        }
        h
    }

    fn call(&mut self, id: CallId) -> &mut Call {
        let (worker, incarnation, call) = id.clone();
        self.calls.entry(id).or_insert_with(|| Call {
            worker,
            incarnation,
            call,
            ..Call::default()
        })
    }

    /// `python-v2`'s exception path when the first two applications of `event_id` are one
    /// call's: its handler raised after its write had gone to the database, and the second run
    /// applied it again.
    fn applied_twice_by_one_call(&self, event_id: &str) -> Option<Why> {
        let apps = self.applied.get(event_id)?;
        let (first, second) = (&apps.first()?.1, &apps.get(1)?.1);
        if first != second {
            return None;
        }
        let c = self.calls.get(first)?;
        let times = format!("{} and {}", at(*c.applied.first()?), at(*c.applied.get(1)?));
        let Some(again) = &c.again else {
            return Some(Why {
                mechanism: Mechanism::Unexplained,
                sentence: format!(
                    "{} applied the effect twice ({times}) with one handler run",
                    c.name()
                ),
            });
        };
        let raised = c
            .handler_end
            .as_ref()
            .map(|(t, r)| format!(" at {} ({r})", at(*t)))
            .unwrap_or_default();
        Some(Why {
            mechanism: Mechanism::HandlerCalledTwice,
            sentence: format!(
                "{}'s handler raised{raised} after its write had gone to the database; the \
                 decorator's fail-open branch called it again at {} without a lock, and both \
                 writes were applied ({times}): the Python original's exception path (v2 \
                 weakness A)",
                c.name(),
                at(again.t_us)
            ),
        })
    }

    /// The first two calls that applied `event_id`.
    fn applied_pair(&self, event_id: &str) -> Option<(&Call, &Call)> {
        let apps = self.applied.get(event_id)?;
        let a = &apps.first()?.1;
        let b = &apps.iter().find(|(_, c)| c != a)?.1;
        Some((self.calls.get(a)?, self.calls.get(b)?))
    }

    /// The two holders of a `lock_overlap`: the second is the handler starting at the
    /// violation's trace event; the first, the latest other holder of that key still holding.
    fn overlap_pair(&self, v: &Violation) -> Option<(&Call, &Call)> {
        let b = self.calls.get(self.starts.get(&v.first_event?)?)?;
        let (key, start) = (b.key()?, b.handler_start?);
        let a = self
            .calls
            .values()
            .filter(|c| c.worker != b.worker || c.incarnation != b.incarnation || c.call != b.call)
            .filter(|c| matches!(c.acquire, Some((_, AcquireOutcome::Acquired { .. }))))
            .filter(|c| c.key() == Some(key))
            .filter(|c| c.handler_start.is_some_and(|s| s <= start))
            .filter(|c| c.stopped_us().is_none_or(|end| end > start))
            .max_by_key(|c| c.handler_start)?;
        Some((a, b))
    }

    /// The call of `worker` open at `t_us` (its latest delivery before).
    fn call_of(&self, worker: &str, t_us: u64) -> Option<&Call> {
        self.calls
            .values()
            .filter(|c| c.worker == worker && c.deliver_us <= t_us)
            .max_by_key(|c| (c.deliver_us, c.incarnation, c.call))
    }

    /// `c`'s Redis commands on `key` while it acquired.
    fn acquire_cmds<'a>(&'a self, c: &Call, key: &'a str) -> impl Iterator<Item = &'a Cmd> + 'a {
        let (from, to) = (c.deliver_us, c.acquire.as_ref().map_or(0, |a| a.0));
        let worker = c.worker.clone();
        self.cmds
            .iter()
            .filter(move |m| m.from == worker && m.key == key && (from..=to).contains(&m.t_us))
    }

    /// The clock offset of `node` at `t_us` (ms; its latest clock fault not yet healed).
    fn clock_offset(&self, node: &str, t_us: u64) -> Option<i64> {
        self.clocks
            .iter()
            .filter(|(t, n, _)| *t <= t_us && n == node)
            .map(|(_, _, o)| *o)
            .next_back()
    }

    /// `c`'s member's removal from the group while `c` ran (before `until_us`).
    fn removal(&self, c: &Call, until_us: u64) -> Option<&(u64, String, String)> {
        self.removed
            .iter()
            .find(|(t, m, _)| *m == c.member && *t >= c.deliver_us && *t <= until_us)
    }

    /// Why `s` left its processing record behind after committing: a failed confirm, or a
    /// crash between its commit and its confirm, before `until_us` (a confirm that failed
    /// because the record had already been taken over is a consequence, not a cause).
    /// `own_lock`: the key still held `s`'s lock.
    fn unconfirmed(&self, s: &Call, own_lock: bool, until_us: u64) -> Option<(Mechanism, String)> {
        if let Some((t, result)) = &s.confirm {
            if result != "confirmed" && result != "noop" && *t <= until_us {
                let left = if own_lock {
                    "leaving the processing record"
                } else {
                    "so no completed record was written"
                };
                return Some((
                    Mechanism::FailedConfirm,
                    format!("{}'s confirm failed at {} ({result}), {left}", s.name(), at(*t)),
                ));
            }
        }
        let (t, point) = s.crashed.clone().filter(|(t, _)| *t <= until_us)?;
        let applied = *s.applied.first()?;
        // A write still in flight when the worker crashed commits all the same.
        s.confirm.is_none().then(|| {
            let point = point.map(|p| format!(" ({})", p.name())).unwrap_or_default();
            let sentence = if applied <= t {
                format!(
                    "{} committed at {} and its worker crashed at {}{point} before confirming",
                    s.name(),
                    at(applied),
                    at(t)
                )
            } else {
                format!(
                    "{}'s worker crashed at {}{point} with its write in flight; the write \
                     landed at {}, never confirmed",
                    s.name(),
                    at(t),
                    at(applied)
                )
            };
            (Mechanism::CrashBeforeConfirm, sentence)
        })
    }

    fn why(&self, a: &Call, b: &Call) -> Why {
        self.why_in(a, b, true)
    }

    /// The call that sent `m` (its worker's latest delivery before it).
    fn owner(&self, m: &Cmd) -> Option<&Call> {
        self.call_of(&m.from, m.t_us)
    }

    /// Whether `c` relayed the key from `a` to `b`: another call that held it and had not
    /// applied the event by the time `b` acquired.
    fn is_relay(c: &Call, a: &Call, b: &Call, b_acq: u64) -> bool {
        !same(c, a) && !same(c, b) && c.applied.first().is_none_or(|t| *t > b_acq)
    }

    /// The mechanism behind `a` and `b` when calls that never applied the event held the key
    /// between them (a chain of redeliveries: each relay took the key, failed or crashed, and
    /// its lock expired or was released). The relays are transparent: what let `b` in is what
    /// let the first relay past `a`'s record (the analysis of `a` and the first relay), or,
    /// when the key had already left `a` while `a` ran and `a` then finished without
    /// confirming, that missing confirm. `before`: the first trace index of `b`'s acquire;
    /// `how`: how the last relay's hold ended. `None` when no relay lies between them.
    fn relayed(&self, a: &Call, b: &Call, key: &str, before: usize, b_acq: u64, how: String) -> Option<Why> {
        let aw = self
            .cmds
            .iter()
            .filter(|m| m.key == key && m.index < before && m.wrote())
            .rfind(|m| self.owner(m).is_some_and(|o| same(o, a)))?;
        let mut relays: Vec<&Call> = Vec::new();
        let mut first_lock = None;
        for m in self
            .cmds
            .iter()
            .filter(|m| m.key == key && m.locked() && m.index > aw.index && m.index < before)
        {
            let o = self.owner(m)?;
            if !Self::is_relay(o, a, b, b_acq) {
                return None;
            }
            if !relays.iter().any(|r| same(r, o)) {
                relays.push(o);
            }
            first_lock.get_or_insert(m.t_us);
        }
        let (r1, first_lock) = (*relays.first()?, first_lock?);
        let held = match relays.as_slice() {
            [one] => format!("{} held the key without applying the event ({how})", one.name()),
            [.., last] => {
                let names: Vec<String> = relays.iter().take(3).map(|r| r.name()).collect();
                let more = relays.len().saturating_sub(3);
                let list = if more > 0 {
                    let calls = if more == 1 { "call" } else { "calls" };
                    format!("{} and {more} more {calls}", names.join(", "))
                } else {
                    let (last_name, rest) = names.split_last()?;
                    format!("{} and {last_name}", rest.join(", "))
                };
                format!(
                    "{list} held the key in turn without applying the event (the last, {}: {how})",
                    last.name()
                )
            }
            [] => return None,
        };
        let chain = format!("; then {held}, and {} took it at {}", b.name(), at(b_acq));
        // The key left `a` while it ran, and `a` then stopped without confirming: had it
        // confirmed, its completed record would have stopped `b` whoever held the key before.
        if a.stopped_us().is_some_and(|s| s <= b_acq && first_lock < s) {
            if let Some((mechanism, root)) = self.unconfirmed(a, false, b_acq) {
                return Some(Why {
                    mechanism,
                    sentence: format!(
                        "{root}; its lock had already gone while it ran ({} took the key at {}){chain}",
                        r1.name(),
                        at(first_lock)
                    ),
                });
            }
        }
        let mut inner = self.why_in(a, r1, false);
        let unconfirmed = self.unconfirmed(a, false, b_acq);
        if inner.mechanism == Mechanism::Unexplained {
            if let Some((mechanism, root)) = self.unconfirmed(a, true, b_acq) {
                inner = Why {
                    mechanism,
                    sentence: root,
                };
            }
        }
        // `a` finished before `b` came without confirming: say so too, or a reader would ask
        // why its completed record did not stop `b`.
        let root = match unconfirmed {
            Some((m, root)) if m != inner.mechanism && a.stopped_us().is_some_and(|s| s <= b_acq) => {
                format!("; {root}")
            }
            _ => String::new(),
        };
        Some(Why {
            mechanism: inner.mechanism,
            sentence: format!("{}{root}{chain}", inner.sentence),
        })
    }

    /// [`History::why`]; `relays`: whether to look through calls that held the key between
    /// `a` and `b` without applying the event ([`History::relayed`]; once, not recursively).
    fn why_in(&self, a: &Call, b: &Call, relays: bool) -> Why {
        // The second handler is the one that acquired (or ran) later.
        let when = |c: &Call| c.acquire.as_ref().map_or(c.deliver_us, |x| x.0);
        let (a, b) = if when(b) < when(a) { (b, a) } else { (a, b) };
        let why = |mechanism, sentence: String| Why { mechanism, sentence };
        // 0. The first applied in a second run of its handler (`python-v2`), which succeeded
        // with a no-op confirm after the first run had released the lock: no key was left.
        if let (Some(again), Some(&applied)) = (&a.again, a.applied.first()) {
            if applied >= again.t_us && again.end.as_ref().is_some_and(|(_, r)| r == "ok") {
                let raised = a
                    .handler_end
                    .as_ref()
                    .map(|(t, r)| format!(" at {} ({r})", at(*t)))
                    .unwrap_or_default();
                return why(
                    Mechanism::HandlerCalledTwice,
                    format!(
                        "{}'s handler raised{raised} and released the lock; the decorator's \
                         fail-open branch called it again at {} without a lock, applied it at \
                         {} and swallowed the error with a no-op confirm, leaving no key, so {} \
                         found the key free: the Python original's exception path (v2 weakness A)",
                        a.name(),
                        at(again.t_us),
                        at(applied),
                        b.name()
                    ),
                );
            }
        }
        // 1. A write applied after its call gave up on the database (timed out, released).
        for (late, other) in [(a, b), (b, a)] {
            if let (Some((end, result)), Some(&landed)) = (&late.handler_end, late.applied.first()) {
                if result.starts_with("error") && result.contains("database") {
                    let took = other.acquire.as_ref().map_or(0, |x| x.0);
                    let when = if landed > *end {
                        format!("its write landed {} later", dur(landed - end))
                    } else {
                        "its write had committed, its answer lost".to_owned()
                    };
                    return why(
                        Mechanism::DbTimeoutLateWrite,
                        format!(
                            "{} timed out on the database at {} and released the lock; {when}, \
                             while {} took the lock at {} and applied it again",
                            late.name(),
                            at(*end),
                            other.name(),
                            at(took)
                        ),
                    );
                }
            }
        }
        // 2. Fail-open: a handler ran unprotected. (Not a relay's: a relay held the key, so
        // its lock was an orphan, a lost reply's, and what matters is what let that orphan
        // past `a`'s lock: the analysis below.)
        let relay_orphan = !relays && b.unprotected.is_some();
        for c in [b, a] {
            if relay_orphan && same(c, b) {
                continue;
            }
            let open = matches!(c.acquire, Some((_, AcquireOutcome::Unprotected { .. })));
            if open || c.unprotected.is_some() {
                let reason = c.unprotected.clone().unwrap_or_else(|| "Redis failed".into());
                let t = c.acquire.as_ref().map_or(c.deliver_us, |x| x.0);
                // Redis did not fail: a command of the acquire ran and its reply was lost.
                if let Some(m) = self
                    .cmds
                    .iter()
                    .find(|m| m.from == c.worker && m.reply_lost && (c.deliver_us..=t).contains(&m.t_us))
                {
                    let left = if m.locked() {
                        "it had taken the lock, which nobody knew it held".to_owned()
                    } else {
                        format!("it answered {}", m.reply)
                    };
                    return why(
                        Mechanism::LostReply,
                        format!(
                            "{}'s {} at {} ran on Redis ({left}) but its reply was lost; the worker \
                             timed out and ran the handler unprotected at {} (fail-open: {reason})",
                            c.name(),
                            m.cmd,
                            at(m.t_us),
                            at(t)
                        ),
                    );
                }
                return why(
                    Mechanism::FailOpen,
                    format!(
                        "{} ran the handler unprotected at {} (fail-open: {reason}), with no lock \
                         and a no-op confirm",
                        c.name(),
                        at(t)
                    ),
                );
            }
        }
        // 3. Two keys for one event.
        if let (Some(ka), Some(kb)) = (a.key(), b.key()) {
            if ka != kb {
                return why(
                    Mechanism::TwoKeys,
                    format!(
                        "{} locked {} and {} locked {}: one event under two keys (header path \
                         and body path hash differently)",
                        a.name(),
                        short(ka),
                        b.name(),
                        short(kb)
                    ),
                );
            }
        }
        let Some(key) = b.key().or(a.key()) else {
            return why(Mechanism::Unexplained, "neither handler held a lock".into());
        };
        // 4. A takeover: the second's acquire deleted a processing record it read as stale.
        for (x, y) in [(b, a), (a, b)] {
            let cmds: Vec<&Cmd> = self.acquire_cmds(x, key).collect();
            let Some(get) = cmds.iter().find(|m| m.read_processing_started_at().is_some()) else {
                continue;
            };
            let Some(del) = cmds.iter().find(|m| m.cmd == "DEL" && m.index > get.index) else {
                continue;
            };
            // Another worker took the lock between this one's GET and DEL: the DEL deleted it.
            if let Some(set) = self.cmds.iter().find(|m| {
                m.key == key && m.locked() && m.from != x.worker && get.index < m.index && m.index < del.index
            }) {
                return why(
                    Mechanism::TakeoverRace,
                    format!(
                        "{} read the stale record at {} (GET), {} took it over at {}, then {}'s \
                         DEL at {} deleted that fresh lock and its SET NX won too: v2's \
                         takeover is GET, DEL, SET NX, not atomic",
                        x.name(),
                        at(get.t_us),
                        set.from,
                        at(set.t_us),
                        x.worker,
                        at(del.t_us)
                    ),
                );
            }
            let started_at = get.read_processing_started_at().unwrap_or(0.0);
            // The age by the reader's clock: Redis's clock without its offset, with the reader's.
            let offset_ms = |n: &str| self.clock_offset(n, get.t_us).unwrap_or(0);
            let reader_us = get.clock_us - offset_ms("redis") * 1000 + offset_ms(&x.worker) * 1000;
            let age_s = reader_us as f64 / 1e6 - started_at;
            let holder = self
                .cmds
                .iter()
                .rfind(|m| m.key == key && m.locked() && m.index < get.index)
                .and_then(|m| self.call_of(&m.from, m.t_us));
            let holder = holder.unwrap_or(y);
            let x_acq = x.acquire.as_ref().map_or(x.deliver_us, |t| t.0);
            if relays && same(x, b) && Self::is_relay(holder, a, b, x_acq) {
                let how = format!("{} took over its record as stale", x.name());
                if let Some(w) = self.relayed(a, b, key, get.index, x_acq, how) {
                    return w;
                }
            }
            let live = holder.handler_start.is_some_and(|s| s <= del.t_us)
                && holder.stopped_us().is_none_or(|end| end > del.t_us)
                || holder.acquire.as_ref().is_some_and(|(t, _)| *t >= get.t_us);
            let skew: Vec<String> = [x.worker.as_str(), holder.worker.as_str()]
                .iter()
                .filter_map(|w| {
                    self.clock_offset(w, get.t_us)
                        .filter(|o| *o != 0)
                        .map(|o| format!("{w}'s clock {o:+} ms"))
                })
                .collect();
            if let Some(root) = self.unconfirmed(holder, true, del.t_us) {
                return why(
                    root.0,
                    format!(
                        "{}; {} found its processing record {:.0} s old by its clock at {}, \
                         deleted it and took the lock (GET, DEL, SET NX: the stale-lock takeover)",
                        root.1,
                        x.name(),
                        age_s,
                        at(get.t_us)
                    ),
                );
            }
            let fence_of = |c: &Call| match &c.acquire {
                Some((_, AcquireOutcome::Acquired { fence, .. })) => *fence,
                _ => None,
            };
            if let (true, Some(fence), None) = (live, fence_of(holder), fence_of(x)) {
                return why(
                    Mechanism::V2TookFencedLease,
                    format!(
                        "{} (v2) read {}'s live fenced lease (fence {fence}) as {:.0} s old by \
                         its clock (offsets: {}) at {}, deleted it and took the key while {} still held \
                         it: v2 judges a record by its started_at alone (written by the \
                         holder's clock), never by the lease's TTL or owner, and its commit \
                         carries no fencing token",
                        x.name(),
                        holder.name(),
                        age_s,
                        if skew.is_empty() {
                            "no clock fault".to_owned()
                        } else {
                            skew.join(", ")
                        },
                        at(del.t_us),
                        holder.worker
                    ),
                );
            }
            if live {
                return why(
                    Mechanism::SkewTakeover,
                    format!(
                        "{} read {}'s live processing record as {:.0} s old by its clock ({}) at {}, deleted \
                         it and took the lock while {} still held it: the stale rule compares \
                         wall clocks across hosts",
                        x.name(),
                        holder.name(),
                        age_s,
                        if skew.is_empty() { "no clock fault".to_owned() } else { skew.join(", ") },
                        at(del.t_us),
                        holder.worker
                    ),
                );
            }
            let gone = match holder.stopped_us() {
                Some(t) if holder.crashed.is_some() => format!("{} had crashed at {}", holder.worker, at(t)),
                Some(t) => format!("{}'s handler had ended at {}", holder.worker, at(t)),
                None => format!("{} had stopped", holder.worker),
            };
            return why(
                Mechanism::StaleTakeover,
                format!(
                    "{} found {}'s processing record {:.0} s old (over 300 s) by its clock{} at \
                     {}, deleted it and took the lock (GET, DEL, SET NX); {gone} without confirming",
                    x.name(),
                    holder.name(),
                    age_s,
                    if skew.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", skew.join(", "))
                    },
                    at(get.t_us),
                ),
            );
        }
        // 5. The key was free when the second acquired: what freed it?
        // An orphan relay's lock (it had given up on its acquire and gone on unprotected) is
        // the write of the acquire it gave up on, which may have run on Redis well after the
        // worker stopped waiting (Redis paused or slow; its reply then went to nobody): that
        // command, and its time, are when it took the key.
        let orphan_write = (!relays && b.unprotected.is_some())
            .then(|| {
                self.cmds.iter().find(|m| {
                    m.from == b.worker
                        && m.key == key
                        && m.locked()
                        && m.t_us >= b.deliver_us
                        && b.stopped_us().is_none_or(|end| m.t_us <= end)
                })
            })
            .flatten();
        // A fenced acquire is one script per attempt: when an attempt was sent again (its
        // reply late or lost), the one that took the lock is when Redis let `b` in.
        let won = self
            .acquire_cmds(b, key)
            .find(|m| m.cmd == "EVALSHA:acquire" && m.locked());
        let first_cmd = match orphan_write.or(won) {
            Some(m) => Some(m.index),
            None => self.acquire_cmds(b, key).next().map(|m| m.index),
        };
        let b_acq = match orphan_write {
            Some(m) => m.t_us,
            None => b.acquire.as_ref().map_or(b.deliver_us, |x| x.0),
        };
        // A failover after the first acquired lost its record, and it never confirmed after
        // it: the key was free from then on, whatever later calls took and released.
        let a_acq = a.acquire.as_ref().map_or(a.deliver_us, |x| x.0);
        if let Some((f, lag_ms)) = self.faults.iter().find_map(|f| match f.fault {
            Fault::Failover { lag_ms }
                if f.t_us >= a_acq && f.t_us <= b_acq && f.lost_keys.iter().any(|k| k == key) =>
            {
                Some((f, lag_ms))
            }
            _ => None,
        }) {
            let confirmed_after = a
                .confirm
                .as_ref()
                .is_some_and(|(t, r)| *t > f.t_us && r == "confirmed");
            if !confirmed_after {
                let record = match &a.confirm {
                    Some((t, r)) if r == "confirmed" => {
                        format!("{}'s completed record (confirmed at {})", a.name(), at(*t))
                    }
                    Some((t, r)) => format!("{}'s lock, and its confirm at {} said {r}", a.name(), at(*t)),
                    None => format!("{}'s lock, and it never confirmed", a.name()),
                };
                return why(
                    Mechanism::FailoverLost,
                    format!(
                        "Redis failed over at {} to a replica {lag_ms} ms behind, which lacked \
                         {record}, so the key was free when {} acquired it",
                        at(f.t_us),
                        b.name()
                    ),
                );
            }
        }
        let Some(first_index) = first_cmd.or_else(|| {
            self.cmds
                .iter()
                .filter(|m| m.t_us <= b_acq)
                .map(|m| m.index)
                .next_back()
        }) else {
            return why(
                Mechanism::Unexplained,
                format!("no Redis command of {} on its key", b.name()),
            );
        };
        let reader = self.cmds.iter().find(|m| m.index == first_index);
        let before: Vec<&Cmd> = self
            .cmds
            .iter()
            .filter(|m| m.key == key && m.index < first_index)
            .collect();
        let last_write = before.iter().rfind(|m| m.wrote()).copied();
        let last_del = before.iter().rfind(|m| m.deleted()).copied();
        let Some(write) = last_write else {
            return why(
                Mechanism::Unexplained,
                format!(
                    "no record was ever written on the key before {} acquired it",
                    b.name()
                ),
            );
        };
        let setter = self.call_of(&write.from, write.t_us);
        // A failover to a lagging replica after the last write that lost the key.
        if let Some(f) = self.faults.iter().find(|f| {
            matches!(f.fault, Fault::Failover { .. })
                && f.t_us >= write.t_us
                && f.t_us <= b_acq
                && f.lost_keys.iter().any(|k| k == key)
        }) {
            let lag_ms = match f.fault {
                Fault::Failover { lag_ms } => lag_ms,
                _ => 0,
            };
            return why(
                Mechanism::FailoverLost,
                format!(
                    "Redis failed over at {} to a replica {lag_ms} ms behind, which lacked \
                     the key's last record (written by {} at {}), so {} found the key free",
                    at(f.t_us),
                    write.from,
                    at(write.t_us),
                    b.name()
                ),
            );
        }
        // A Redis crash after the last write that lost the key.
        let lost = |write: &Cmd| {
            self.faults.iter().find(move |f| {
                matches!(
                    f.fault,
                    Fault::Crash {
                        node: Some(NodeName::Redis)
                    }
                ) && f.t_us >= write.t_us
                    && f.t_us <= b_acq
                    && f.lost_keys.iter().any(|k| k == key)
            })
        };
        if let Some(s) = setter.filter(|s| relays && Self::is_relay(s, a, b, b_acq)) {
            let how = match last_del.filter(|d| d.index > write.index) {
                Some(d) => match self.owner(d) {
                    Some(o) if same(o, s) => format!("it released its lock at {}", at(d.t_us)),
                    o => format!(
                        "{}'s release deleted its lock at {}",
                        o.map_or(d.from.to_string(), Call::name),
                        at(d.t_us)
                    ),
                },
                None => match lost(write) {
                    Some(crash) => format!("a Redis crash at {} lost its lock", at(crash.t_us)),
                    None => "its lock expired".to_owned(),
                },
            };
            if let Some(w) = self.relayed(a, b, key, first_index, b_acq, how) {
                return w;
            }
        }
        if let Some(crash) = lost(write) {
            let what = if write.cmd.contains("confirm") || write.cmd == "SETEX" {
                "completed"
            } else {
                "processing"
            };
            return why(
                Mechanism::RedisRestartLost,
                format!(
                    "Redis crashed at {} and lost the key's {what} record (written by {} at {}), \
                     so {} found the key free",
                    at(crash.t_us),
                    write.from,
                    at(write.t_us),
                    b.name()
                ),
            );
        }
        if let Some(del) = last_del.filter(|d| d.index > write.index) {
            let deleter = self.call_of(&del.from, del.t_us);
            let same = match (deleter, setter) {
                (Some(d), Some(s)) => {
                    (d.worker.as_str(), d.incarnation, d.call) == (s.worker.as_str(), s.incarnation, s.call)
                }
                _ => del.from == write.from,
            };
            // A record its holder had already left behind (committed, then crashed or failed
            // to confirm) would have expired and let the event in all the same: the release
            // only came sooner.
            let left = setter.and_then(|s| self.unconfirmed(s, true, del.t_us));
            if let (false, Some((mechanism, root))) = (same, left) {
                return why(
                    mechanism,
                    format!(
                        "{root}; {}'s release at {} (DEL, not checked against its owner) deleted \
                         that record before its TTL ran out, so {} found the key free",
                        deleter.map_or(del.from.to_string(), Call::name),
                        at(del.t_us),
                        b.name()
                    ),
                );
            }
            if !same {
                let record = if write.cmd == "SETEX" || write.cmd.contains("confirm") {
                    "completed record"
                } else {
                    "lock"
                };
                let verb = if record == "lock" { "taken" } else { "written" };
                return why(
                    Mechanism::UncheckedRelease,
                    format!(
                        "{}'s release at {} (DEL, not checked against its owner) deleted the {record} \
                         {} had {verb} at {}, so {} found the key free",
                        deleter.map_or(del.from.to_string(), Call::name),
                        at(del.t_us),
                        setter.map_or(write.from.to_string(), Call::name),
                        at(write.t_us),
                        b.name()
                    ),
                );
            }
            return why(
                Mechanism::Unexplained,
                format!(
                    "{} released its own lock at {} and the event was processed again",
                    deleter.map_or(del.from.to_string(), Call::name),
                    at(del.t_us)
                ),
            );
        }
        // Nothing removed the record: it expired. Its TTL is the last one set: the write's, or
        // a later renewal's, which sets it anew from the Redis clock of that moment (a renewal
        // while the clock was set back leaves an expiry a later forward jump passes at once).
        let write = self
            .cmds
            .iter()
            .filter(|m| m.key == key && m.index > write.index && m.index < first_index)
            .rfind(|m| m.cmd == "EVALSHA:renew" && m.reply == "1")
            .unwrap_or(write);
        let ttl = write.ttl_ms().unwrap_or(self.ttl_ms);
        let read_clock = reader.map_or(write.clock_us, |r| r.clock_us);
        let read_t = reader.map_or(b_acq, |r| r.t_us);
        let redis_ms = (read_clock - write.clock_us) / 1000;
        let virtual_ms = (read_t as i64 - write.t_us as i64) / 1000;
        if redis_ms >= ttl && redis_ms - virtual_ms > 1000 {
            let jump = redis_ms - virtual_ms;
            return why(
                Mechanism::RedisClockJump,
                format!(
                    "the Redis node's clock jumped {} forward between {}'s lock at {} and {}'s \
                     acquire at {}: {} s of Redis time in {} of virtual time expired the {} s lock",
                    dur(jump as u64 * 1000),
                    write.from,
                    at(write.t_us),
                    b.name(),
                    at(read_t),
                    redis_ms / 1000,
                    dur(virtual_ms.max(0) as u64 * 1000),
                    ttl / 1000
                ),
            );
        }
        // The reading clock is short of the TTL, yet a command in between saw the Redis clock
        // past the record's expiry, more than a second ahead of virtual time (the model, like
        // Redis's active expiry, removes it then): the clock jumped and was set back.
        let expire_ms = write.clock_us / 1000 + ttl;
        let ahead = |m: &&Cmd| {
            let lead_us = (m.clock_us - write.clock_us) - (m.t_us as i64 - write.t_us as i64);
            m.index > write.index
                && m.index < first_index
                && m.clock_us / 1000 > expire_ms
                && lead_us > 1_000_000
        };
        if let Some(m) = self.cmds.iter().find(ahead).filter(|_| redis_ms < ttl) {
            let base = self.clock_offset("redis", write.t_us).unwrap_or(0);
            let jumped = self
                .clocks
                .iter()
                .rfind(|(t, n, o)| n == "redis" && *t <= m.t_us && *o > base)
                .map_or("ran ahead".to_owned(), |(t, _, o)| {
                    format!("jumped {} forward at {}", dur((o - base) as u64 * 1000), at(*t))
                });
            return why(
                Mechanism::RedisClockJump,
                format!(
                    "the Redis node's clock {jumped}: at {} it read {} s of Redis time after \
                     {}'s lock at {} ({} of virtual time), past the {} s TTL, and was set back \
                     before {} acquired at {} ({})",
                    at(m.t_us),
                    (m.clock_us - write.clock_us) / 1_000_000,
                    write.from,
                    at(write.t_us),
                    dur(m.t_us.saturating_sub(write.t_us)),
                    ttl / 1000,
                    b.name(),
                    at(read_t),
                    if redis_ms < 0 {
                        format!("Redis's clock then read {} s before the lock", -redis_ms / 1000)
                    } else {
                        format!("{} s after the lock by Redis's clock", redis_ms / 1000)
                    }
                ),
            );
        }
        // The most Redis time any command between the write and the acquire saw (on any key:
        // the model, like Redis's active expiry, removes what has expired): a record that
        // expired by Redis's clock of its moment is gone even if the clock was set back before
        // the acquire read it.
        let passed_ms = self
            .cmds
            .iter()
            .filter(|m| m.index > write.index && m.index < first_index)
            .map(|m| (m.clock_us - write.clock_us) / 1000)
            .fold(redis_ms, i64::max);
        if passed_ms < ttl {
            return why(
                Mechanism::Unexplained,
                format!(
                    "the record {} wrote at {} with a {} s TTL was gone {} s later by Redis's clock when {} acquired",
                    write.from,
                    at(write.t_us),
                    ttl / 1000,
                    redis_ms / 1000,
                    b.name()
                ),
            );
        }
        let Some(s) = setter else {
            return why(
                Mechanism::Unexplained,
                format!("the lock {} took at {} expired", write.from, at(write.t_us)),
            );
        };
        // An orphan lock between `a` and `b`: `s` had given up on its acquire (its reply was
        // lost; it ran unprotected) while the acquire ran on Redis, so nobody held the lock it
        // left, and it expired on its own. `a` was still running: what let the key past `a`
        // is what let that orphan in, at the orphan's write.
        let a_start = a.handler_start.unwrap_or(a.deliver_us);
        let orphan = !same(s, a)
            && !same(s, b)
            && s.unprotected.is_some()
            && a_start < write.t_us
            && a.stopped_us().is_none_or(|end| end > b_acq);
        let (s, b_acq, expired) = if orphan {
            let expired = format!(
                "its {} s lock expired and {}'s acquire took it at {} (run on Redis after {} had \
                 given up on it and gone on unprotected: a lock nobody knew it held), which \
                 expired in turn before {} took the key at {}",
                self.ttl_ms / 1000,
                s.name(),
                at(write.t_us),
                s.name(),
                b.name(),
                at(b_acq)
            );
            (a, write.t_us, expired)
        } else {
            let expired = format!(
                "its {} s lock expired and {} took it at {}",
                ttl / 1000,
                b.name(),
                at(b_acq)
            );
            (s, b_acq, expired)
        };
        if let Some((mechanism, root)) = self.unconfirmed(s, true, b_acq) {
            return why(mechanism, format!("{root}; {expired}"));
        }
        let start = s.handler_start.unwrap_or(s.deliver_us);
        let pause = self.faults.iter().find(|f| {
            matches!(&f.fault, Fault::Pause { node: Some(n) } if n.to_string() == s.worker)
                && f.t_us >= start
                && s.stopped_us().is_none_or(|end| f.t_us <= end)
                && f.t_us <= b_acq
        });
        let zombie = self
            .removal(s, b_acq)
            .map(|(t, m, r)| format!("; its member {m} was removed at {} ({r})", at(*t)))
            .unwrap_or_default();
        // When the late holder's commit landed against the takeover: after it, fencing's
        // business (a claimed token rejects it); before it, only a dedupe can stop the new
        // holder from committing again (its confirm came too late to tell Redis).
        let commit = match s.applied.first() {
            Some(&t) if t < b_acq => format!("; it had committed at {}, before the takeover", at(t)),
            Some(&t) => format!("; it committed at {}, after the takeover", at(t)),
            None => String::new(),
        };
        if let Some(p) = pause {
            return why(
                Mechanism::LockExpiredUnderPause,
                format!(
                    "{} was paused at {} for {} while holding the lock; {expired}{zombie}{commit}",
                    s.name(),
                    at(p.t_us),
                    p.lasts_ms.map_or("long".into(), |l| dur(l * 1000)),
                ),
            );
        }
        if s.stopped_us().is_none_or(|end| end > b_acq) {
            if !zombie.is_empty() {
                return why(
                    Mechanism::RebalanceZombie,
                    format!(
                        "{} was still processing when {} got the record{zombie}; {expired}{commit}",
                        s.name(),
                        b.name()
                    ),
                );
            }
            return why(
                Mechanism::LockExpiredUnderPause,
                format!("{} ran past its lock's TTL; {expired}{commit}", s.name()),
            );
        }
        why(
            Mechanism::Unexplained,
            format!(
                "the lock {} took at {} expired before {} acquired",
                s.name(),
                at(write.t_us),
                b.name()
            ),
        )
    }
}

/// Whether `x` and `y` are the same `process()` call.
fn same(x: &Call, y: &Call) -> bool {
    (x.worker.as_str(), x.incarnation, x.call) == (y.worker.as_str(), y.incarnation, y.call)
}

/// A key's last part (the hash), shortened.
fn short(key: &str) -> String {
    let mut parts = key.rsplit(':');
    let hash: String = parts.next().unwrap_or(key).chars().take(8).collect();
    match parts.next() {
        Some(kind) => format!("{kind}:{hash}"),
        None => hash,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::test_event as ev;
    use crate::check::Severity;
    use crate::trace::AcquireOutcome;

    const KEY: &str = "huleedu:idempotency:v2:sim_worker:huleedu_t_v1:abcdef1234";
    const E: &str = "e1";
    const EPOCH_US: i64 = 1_764_315_200_000_000;

    /// A hand-made history, built event by event at virtual milliseconds.
    #[derive(Default)]
    struct H(Vec<Event>);

    impl H {
        fn at(mut self, t_ms: u64, node: &str, t: Typed) -> Self {
            self.0.push(ev(t_ms, node, t));
            self
        }
        fn deliver(self, t: u64, w: &str, call: u64) -> Self {
            let member = format!("{w}-1");
            self.at(
                t,
                w,
                Typed::Deliver {
                    topic: "events".into(),
                    partition: 0,
                    offset: 0,
                    event_id: E.into(),
                    attempt: 1,
                    delivery: 1,
                    call,
                    member,
                    generation: 1,
                },
            )
        }
        /// A Redis command from `w`, the Redis clock `skew_ms` off true time.
        fn redis(
            self,
            t: u64,
            w: &str,
            cmd: &str,
            args: Vec<serde_json::Value>,
            reply: &str,
            skew_ms: i64,
        ) -> Self {
            self.at(
                t,
                "redis",
                Typed::Redis {
                    from: w.into(),
                    cmd: cmd.into(),
                    key: KEY.into(),
                    args,
                    reply: reply.into(),
                    clock_us: EPOCH_US + (t as i64 + skew_ms) * 1000,
                    reply_lost: false,
                },
            )
        }
        /// v2's plain acquire: GET nil, SET NX EX 300 OK.
        fn lock(self, t: u64, w: &str, call: u64, key: &str) -> Self {
            let set = vec![
                processing(t as f64 / 1000.0).into(),
                "NX".into(),
                "EX".into(),
                300.into(),
            ];
            self.redis(t + 1, w, "GET", vec![], "nil", 0)
                .redis(t + 2, w, "SET", set, "OK", 0)
                .acquired(t + 3, w, call, key)
        }
        fn acquired(self, t: u64, w: &str, call: u64, key: &str) -> Self {
            let outcome = AcquireOutcome::Acquired {
                fence: None,
                key: key.into(),
            };
            self.at(
                t,
                w,
                Typed::Acquire {
                    event_id: E.into(),
                    outcome,
                    call,
                },
            )
            .at(
                t,
                w,
                Typed::HandlerStart {
                    event_id: E.into(),
                    fence: None,
                    call,
                },
            )
        }
        fn applied(self, t: u64, w: &str, call: u64) -> Self {
            self.at(
                t,
                "db",
                Typed::EffectApplied {
                    event_id: E.into(),
                    worker: w.into(),
                    incarnation: 1,
                    call,
                    fence: None,
                },
            )
        }
        fn end(self, t: u64, w: &str, call: u64, result: &str) -> Self {
            self.at(
                t,
                w,
                Typed::HandlerEnd {
                    event_id: E.into(),
                    result: result.into(),
                    call,
                },
            )
        }
        fn confirm(self, t: u64, w: &str, call: u64, result: &str) -> Self {
            self.at(
                t,
                w,
                Typed::Confirm {
                    event_id: E.into(),
                    result: result.into(),
                    call,
                },
            )
        }
        fn fault(self, t: u64, fault: Fault, lasts_ms: Option<u64>, lost: Option<Vec<String>>) -> Self {
            self.at(
                t,
                "nemesis",
                Typed::Fault {
                    fault,
                    by: "nemesis".into(),
                    lasts_ms,
                    lost_keys: lost,
                    point: None,
                    event_id: None,
                },
            )
        }
        /// The mechanism named for the event's duplicate.
        fn why(&self) -> Why {
            let v = Violation {
                kind: "duplicate_effect",
                severity: Severity::Correctness,
                event_id: E.into(),
                detail: String::new(),
                first_event: None,
            };
            explain(&self.0, &v).expect("a repeated effect is explained")
        }
    }

    fn processing(started_at_s: f64) -> String {
        format!(
            "{{\"status\": \"processing\", \"started_at\": {}, \"event_id\": \"{E}\"}}",
            EPOCH_US as f64 / 1e6 + started_at_s
        )
    }

    fn w(n: u8) -> Option<NodeName> {
        Some(NodeName::Worker(n))
    }

    /// Asserts the mechanism and that the sentence names what it must.
    fn assert_why(h: &H, m: Mechanism, words: &[&str]) {
        let why = h.why();
        assert_eq!(why.mechanism, m, "{why}");
        for word in words {
            assert!(why.sentence.contains(word), "{word:?} not in: {why}");
        }
    }

    #[test]
    fn a_database_timeout_whose_write_landed_late() {
        let h = H::default()
            .deliver(0, "worker-2", 5)
            .lock(0, "worker-2", 5, KEY)
            .end(1100, "worker-2", 5, "error: database: timeout")
            .redis(1101, "worker-2", "DEL", vec![], "1", 0)
            .deliver(1300, "worker-2", 6)
            .lock(1300, "worker-2", 6, KEY)
            .applied(1500, "worker-2", 5)
            .applied(1600, "worker-2", 6);
        assert_why(
            &h,
            Mechanism::DbTimeoutLateWrite,
            &[
                "worker-2's call 5 timed out on the database at 1100 ms",
                "landed 400 ms later",
                "call 6 took the lock at 1303 ms",
            ],
        );
    }

    #[test]
    fn a_handler_run_unprotected_is_fail_open() {
        let h = H::default()
            .deliver(0, "worker-1", 1)
            .lock(0, "worker-1", 1, KEY)
            .applied(10, "worker-1", 1)
            .deliver(20, "worker-2", 1)
            .at(
                21,
                "worker-2",
                Typed::Unprotected {
                    event_id: E.into(),
                    reason: "redis timed out".into(),
                    call: 1,
                },
            )
            .at(
                21,
                "worker-2",
                Typed::Acquire {
                    event_id: E.into(),
                    outcome: AcquireOutcome::Unprotected {
                        fence: None,
                        key: String::new(),
                    },
                    call: 1,
                },
            )
            .applied(30, "worker-2", 1);
        assert_why(
            &h,
            Mechanism::FailOpen,
            &["worker-2's call 1", "unprotected", "redis timed out"],
        );
    }

    #[test]
    fn two_keys_for_one_event() {
        let other = "huleedu:idempotency:v2:sim_worker:huleedu_t_v1:99999999aa";
        let h = H::default()
            .deliver(0, "worker-1", 1)
            .acquired(1, "worker-1", 1, KEY)
            .applied(10, "worker-1", 1)
            .deliver(20, "worker-2", 1)
            .acquired(21, "worker-2", 1, other)
            .applied(30, "worker-2", 1);
        assert_why(
            &h,
            Mechanism::TwoKeys,
            &["huleedu_t_v1:abcdef12", "huleedu_t_v1:99999999", "header path"],
        );
    }

    /// worker-1 holds the lock (from 0 s); worker-2 reads it at `read_s` as stale, deletes it
    /// and takes it; `then` adds what happened to worker-1 before.
    fn takeover(read_s: u64, then: impl Fn(H) -> H) -> H {
        let t = read_s * 1000;
        let h = H::default().deliver(0, "worker-1", 1).lock(0, "worker-1", 1, KEY);
        let h = then(h);
        let set = vec![
            processing(read_s as f64).into(),
            "NX".into(),
            "EX".into(),
            300.into(),
        ];
        h.deliver(t, "worker-2", 1)
            .redis(
                t + 1,
                "worker-2",
                "GET",
                vec![],
                &serde_json::to_string(&processing(0.0)).unwrap(),
                0,
            )
            .redis(t + 2, "worker-2", "DEL", vec![], "1", 0)
            .redis(t + 3, "worker-2", "SET", set, "OK", 0)
            .acquired(t + 4, "worker-2", 1, KEY)
            .applied(t + 10, "worker-2", 1)
    }

    #[test]
    fn a_stale_lock_taken_over_after_its_holder_stopped() {
        // worker-1 applied, its handler ended without confirming (no crash, no failed confirm).
        let h = takeover(301, |h| h.applied(10, "worker-1", 1).end(20, "worker-1", 1, "ok"));
        assert_why(
            &h,
            Mechanism::StaleTakeover,
            &[
                "worker-2's call 1 found worker-1's call 1's processing record 301 s old",
                "GET, DEL, SET NX",
            ],
        );
    }

    #[test]
    fn a_live_lock_taken_over_under_clock_skew() {
        let h = takeover(1, |h| {
            h.fault(
                500,
                Fault::Clock {
                    node: w(2),
                    offset_ms: 400_000,
                },
                None,
                None,
            )
            .applied(10, "worker-1", 1)
        });
        // worker-1's handler never ended: it still held the lock.
        assert_why(
            &h,
            Mechanism::SkewTakeover,
            &[
                "live processing record",
                "401 s old by its clock",
                "worker-2's clock +400000 ms",
            ],
        );
    }

    #[test]
    fn a_v2_worker_taking_over_a_live_fenced_lease() {
        // worker-1 (fenced) holds a lease with fence 7; worker-2 (v2), its clock 400 s ahead,
        // reads the record as stale, deletes it and takes the key.
        let h = H::default()
            .deliver(0, "worker-1", 1)
            .at(
                3,
                "worker-1",
                Typed::Acquire {
                    event_id: E.into(),
                    outcome: AcquireOutcome::Acquired {
                        fence: Some(7),
                        key: KEY.into(),
                    },
                    call: 1,
                },
            )
            .at(
                3,
                "worker-1",
                Typed::HandlerStart {
                    event_id: E.into(),
                    fence: Some(7),
                    call: 1,
                },
            )
            .fault(
                500,
                Fault::Clock {
                    node: w(2),
                    offset_ms: 400_000,
                },
                None,
                None,
            );
        let set = vec![processing(401.0).into(), "NX".into(), "EX".into(), 300.into()];
        let h = h
            .deliver(1000, "worker-2", 1)
            .redis(
                1001,
                "worker-2",
                "GET",
                vec![],
                &serde_json::to_string(&processing(0.0)).unwrap(),
                0,
            )
            .redis(1002, "worker-2", "DEL", vec![], "1", 0)
            .redis(1003, "worker-2", "SET", set, "OK", 0)
            .acquired(1004, "worker-2", 1, KEY)
            .applied(1010, "worker-2", 1)
            .applied(5000, "worker-1", 1)
            .confirm(5001, "worker-1", 1, "lease lost: another worker holds the key");
        assert_why(
            &h,
            Mechanism::V2TookFencedLease,
            &[
                "worker-2's call 1 (v2) read worker-1's call 1's live fenced lease (fence 7)",
                "offsets: worker-2's clock +400000 ms",
                "no fencing token",
            ],
        );
        // The confirm that failed because of the takeover is not its cause.
        assert!(!h.why().sentence.contains("confirm failed"), "{}", h.why());
    }

    #[test]
    fn the_non_atomic_takeover_race() {
        // worker-1 crashed holding; worker-2 and worker-3 both read the stale record; worker-2
        // takes over first, then worker-3's DEL deletes worker-2's fresh lock.
        let stale = serde_json::to_string(&processing(0.0)).unwrap();
        let set = |s: f64| vec![processing(s).into(), "NX".into(), "EX".into(), 300.into()];
        let h = H::default()
            .deliver(0, "worker-1", 1)
            .lock(0, "worker-1", 1, KEY)
            .fault(5, Fault::Crash { node: w(1) }, None, None)
            .deliver(301_000, "worker-2", 1)
            .deliver(301_000, "worker-3", 1)
            .redis(301_001, "worker-2", "GET", vec![], &stale, 0)
            .redis(301_002, "worker-3", "GET", vec![], &stale, 0)
            .redis(301_003, "worker-2", "DEL", vec![], "1", 0)
            .redis(301_004, "worker-2", "SET", set(301.0), "OK", 0)
            .acquired(301_005, "worker-2", 1, KEY)
            .redis(301_006, "worker-3", "DEL", vec![], "1", 0)
            .redis(301_007, "worker-3", "SET", set(301.0), "OK", 0)
            .acquired(301_008, "worker-3", 1, KEY)
            .applied(301_010, "worker-2", 1)
            .applied(301_011, "worker-3", 1);
        assert_why(
            &h,
            Mechanism::TakeoverRace,
            &[
                "worker-3's call 1 read the stale record at 301002 ms",
                "worker-2 took it over at 301004 ms",
                "not atomic",
            ],
        );
    }

    /// worker-1 locks at 0 and applies at 10 ms; `then` adds what follows; worker-2 locks the
    /// key at `t2_ms` and applies.
    fn relocked(t2_ms: u64, then: impl Fn(H) -> H) -> H {
        let h = H::default()
            .deliver(0, "worker-1", 1)
            .lock(0, "worker-1", 1, KEY)
            .applied(10, "worker-1", 1);
        then(h)
            .deliver(t2_ms, "worker-2", 1)
            .lock(t2_ms, "worker-2", 1, KEY)
            .applied(t2_ms + 10, "worker-2", 1)
    }

    #[test]
    fn a_crash_after_commit_before_confirm() {
        let h = relocked(301_000, |h| h.fault(12, Fault::Crash { node: w(1) }, None, None));
        assert_why(
            &h,
            Mechanism::CrashBeforeConfirm,
            &[
                "worker-1's call 1 committed at 10 ms",
                "crashed at 12 ms",
                "300 s lock expired",
                "worker-2's call 1 took it at 301003 ms",
            ],
        );
    }

    #[test]
    fn an_orphan_lock_between_two_holders_is_seen_through() {
        // Swarm seed 37432 (fenced, unique database): worker-1 was paused past its lock;
        // worker-2 gave up on its acquire and ran unprotected while the acquire ran on Redis
        // (its reply lost), leaving a lock nobody held; it expired, and worker-3 took the key
        // while worker-1 still held it by its own account.
        let set = vec![processing(310.0).into(), "NX".into(), "EX".into(), 300.into()];
        let h = H::default()
            .deliver(0, "worker-1", 1)
            .lock(0, "worker-1", 1, KEY)
            .fault(5, Fault::Pause { node: w(1) }, Some(800_000), None)
            .deliver(310_000, "worker-2", 1)
            .at(
                310_500,
                "worker-2",
                Typed::Unprotected {
                    event_id: E.into(),
                    reason: "redis timed out".into(),
                    call: 1,
                },
            )
            .at(
                320_000,
                "redis",
                Typed::Redis {
                    from: "worker-2".into(),
                    cmd: "SET".into(),
                    key: KEY.into(),
                    args: set,
                    reply: "OK".into(),
                    clock_us: EPOCH_US + 320_000_000,
                    reply_lost: true,
                },
            )
            .applied(330_000, "worker-2", 1)
            .deliver(621_000, "worker-3", 1)
            .lock(621_000, "worker-3", 1, KEY)
            .applied(621_010, "worker-3", 1);
        let start =
            h.0.iter()
                .position(|e| e.node == "worker-3" && matches!(e.typed(), Typed::HandlerStart { .. }))
                .unwrap();
        let v = Violation {
            kind: "lock_overlap",
            severity: Severity::Correctness,
            event_id: E.into(),
            detail: String::new(),
            first_event: Some(start),
        };
        let why = explain(&h.0, &v).unwrap();
        assert_eq!(
            why.mechanism,
            Mechanism::LockExpiredUnderPause,
            "{}",
            why.sentence
        );
        for words in [
            "worker-1's call 1 was paused at 5 ms",
            "worker-2's call 1's acquire took it at 320000 ms",
            "before worker-3's call 1 took the key at 621003 ms",
        ] {
            assert!(why.sentence.contains(words), "{words:?} in {}", why.sentence);
        }
    }

    #[test]
    fn a_resent_acquire_that_found_its_own_lease_did_not_write_it() {
        // Swarm seed 6142 (fenced on a fenced database): worker-1's acquire ran at 1 ms and its
        // reply was lost; the resend at 500 ms found the lease it had taken and answered
        // "acquired" without writing. The lease expired 300 s after the first write, so
        // worker-2's acquire at 300 300 ms is past it, although only 299.8 s after the resend.
        let acquire = |t: u64, lost: bool| {
            move |h: H| {
                h.at(
                    t,
                    "redis",
                    Typed::Redis {
                        from: "worker-1".into(),
                        cmd: "EVALSHA:acquire".into(),
                        key: KEY.into(),
                        args: vec!["fence-key".into(), 300_000.into(), "head".into(), "tail".into()],
                        reply: "[\"acquired\", 7]".into(),
                        clock_us: EPOCH_US + t as i64 * 1000,
                        reply_lost: lost,
                    },
                )
            }
        };
        let h = acquire(500, false)(acquire(1, true)(H::default().deliver(0, "worker-1", 1)))
            .acquired(500, "worker-1", 1, KEY)
            .applied(510, "worker-1", 1)
            .fault(600, Fault::Crash { node: w(1) }, None, None)
            .deliver(300_300, "worker-2", 1)
            .lock(300_300, "worker-2", 1, KEY)
            .applied(300_310, "worker-2", 1);
        assert_why(
            &h,
            Mechanism::CrashBeforeConfirm,
            &["worker-1's call 1 committed at 510 ms", "crashed at 600 ms"],
        );
    }

    #[test]
    fn a_crash_with_the_write_in_flight_is_a_crash_before_confirm() {
        let h = H::default()
            .deliver(0, "worker-1", 1)
            .lock(0, "worker-1", 1, KEY)
            .fault(8, Fault::Crash { node: w(1) }, None, None)
            .applied(3000, "worker-1", 1)
            .deliver(301_000, "worker-2", 1)
            .lock(301_000, "worker-2", 1, KEY)
            .applied(301_010, "worker-2", 1);
        assert_why(
            &h,
            Mechanism::CrashBeforeConfirm,
            &["worker-1's call 1's worker crashed at 8 ms with its write in flight; the write landed at 3000 ms"],
        );
    }

    #[test]
    fn a_failed_confirm() {
        let h = relocked(301_000, |h| {
            h.confirm(12, "worker-1", 1, "redis error reply: ERR injected fault")
                .end(12, "worker-1", 1, "ok")
        });
        assert_why(
            &h,
            Mechanism::FailedConfirm,
            &["worker-1's call 1's confirm failed at 12 ms (redis error reply: ERR injected fault)"],
        );
    }

    #[test]
    fn a_lock_expiring_under_a_long_pause() {
        let h = relocked(301_000, |h| {
            h.fault(5, Fault::Pause { node: w(1) }, Some(400_000), None)
        });
        assert_why(
            &h,
            Mechanism::LockExpiredUnderPause,
            &["worker-1's call 1 was paused at 5 ms for 400 s while holding the lock"],
        );
    }

    #[test]
    fn an_unchecked_release_deletes_another_holders_lock() {
        // worker-3's lock expired under a pause; worker-1 took it; worker-3 woke, failed and
        // deleted worker-1's lock; worker-2 then took the free key.
        let h = H::default()
            .deliver(0, "worker-3", 1)
            .at(
                1,
                "worker-3",
                Typed::Acquire {
                    event_id: E.into(),
                    outcome: AcquireOutcome::Busy,
                    call: 1,
                },
            )
            .deliver(2, "worker-1", 1)
            .lock(2, "worker-1", 1, KEY)
            .applied(10, "worker-1", 1)
            .deliver(15, "worker-3", 2)
            .redis(20, "worker-3", "DEL", vec![], "1", 0)
            .deliver(30, "worker-2", 1)
            .lock(30, "worker-2", 1, KEY)
            .applied(40, "worker-2", 1);
        assert_why(
            &h,
            Mechanism::UncheckedRelease,
            &[
                "worker-3's call 2's release at 20 ms",
                "deleted the lock worker-1's call 1 had taken at 4 ms",
            ],
        );
    }

    #[test]
    fn an_acquire_whose_reply_was_lost_is_a_lost_reply() {
        // worker-1's SET NX ran and won, its reply was lost: it failed open, and worker-2
        // acquired once the orphaned lock had expired.
        let h = |lost: bool| {
            let mut h = H::default().deliver(0, "worker-1", 1);
            let set = vec![processing(0.0).into(), "NX".into(), "EX".into(), 300.into()];
            h = h.redis(1, "worker-1", "GET", vec![], "nil", 0).at(
                2,
                "redis",
                Typed::Redis {
                    from: "worker-1".into(),
                    cmd: "SET".into(),
                    key: KEY.into(),
                    args: set,
                    reply: "OK".into(),
                    clock_us: EPOCH_US + 2000,
                    reply_lost: lost,
                },
            );
            h.at(
                502,
                "worker-1",
                Typed::Unprotected {
                    event_id: E.into(),
                    reason: "redis timed out".into(),
                    call: 1,
                },
            )
            .at(
                502,
                "worker-1",
                Typed::Acquire {
                    event_id: E.into(),
                    outcome: AcquireOutcome::Unprotected {
                        fence: None,
                        key: KEY.into(),
                    },
                    call: 1,
                },
            )
            .applied(510, "worker-1", 1)
            .deliver(301_000, "worker-2", 1)
            .lock(301_000, "worker-2", 1, KEY)
            .applied(301_010, "worker-2", 1)
        };
        assert_why(
            &h(true),
            Mechanism::LostReply,
            &[
                "worker-1's call 1's SET at 2 ms ran on Redis (it had taken the lock",
                "reply was lost",
                "fail-open: redis timed out",
            ],
        );
        // The same history with the reply delivered is plain fail-open.
        assert_eq!(
            h(false).why().mechanism,
            Mechanism::FailOpen,
            "{}",
            h(false).why()
        );
    }

    #[test]
    fn a_failover_to_a_lagging_replica_losing_the_record() {
        let failover = |lost: &str| {
            relocked(2000, |h| {
                h.fault(
                    100,
                    Fault::Failover { lag_ms: 500 },
                    Some(1000),
                    Some(vec![lost.into()]),
                )
            })
        };
        assert_why(
            &failover(KEY),
            Mechanism::FailoverLost,
            &[
                "Redis failed over at 100 ms to a replica 500 ms behind",
                "worker-1's call 1's lock",
            ],
        );
        let other = failover("other");
        assert_eq!(other.why().mechanism, Mechanism::Unexplained, "{}", other.why());
    }

    #[test]
    fn a_failover_losing_a_lock_whose_confirm_failed_frees_the_key_for_good() {
        // worker-1 took the lock and applied; Redis failed over and lost the lock, and its
        // confirm was refused during the promotion. A later call of worker-1 took the free
        // key and released it after a database error; worker-2 then applied again.
        let h = |lost: &str| {
            H::default()
                .deliver(0, "worker-1", 1)
                .lock(0, "worker-1", 1, KEY)
                .fault(
                    5,
                    Fault::Failover { lag_ms: 500 },
                    Some(3000),
                    Some(vec![lost.into()]),
                )
                .applied(10, "worker-1", 1)
                .confirm(
                    20,
                    "worker-1",
                    1,
                    "confirm failed: redis unavailable: connection refused",
                )
                .deliver(4000, "worker-1", 2)
                .lock(4000, "worker-1", 2, KEY)
                .end(4100, "worker-1", 2, "error: database: connection refused")
                .redis(4101, "worker-1", "DEL", vec![], "1", 0)
                .deliver(5000, "worker-2", 1)
                .lock(5000, "worker-2", 1, KEY)
                .applied(5010, "worker-2", 1)
        };
        assert_why(
            &h(KEY),
            Mechanism::FailoverLost,
            &[
                "Redis failed over at 5 ms to a replica 500 ms behind",
                "worker-1's call 1's lock, and its confirm at 20 ms said confirm failed",
            ],
        );
        // Without the failover losing the key, the failover is not what freed it.
        assert_ne!(
            h("other").why().mechanism,
            Mechanism::FailoverLost,
            "{}",
            h("other").why()
        );
    }

    #[test]
    fn a_redis_restart_losing_the_record() {
        let h = relocked(2000, |h| {
            h.redis(
                12,
                "worker-1",
                "SETEX",
                vec![86400.into(), "{\"status\": \"completed\"}".into()],
                "OK",
                0,
            )
            .confirm(13, "worker-1", 1, "confirmed")
            .fault(
                100,
                Fault::Crash {
                    node: Some(NodeName::Redis),
                },
                Some(1000),
                Some(vec![KEY.into()]),
            )
        });
        assert_why(
            &h,
            Mechanism::RedisRestartLost,
            &["Redis crashed at 100 ms and lost the key's completed record"],
        );
        // A crash that lost other keys explains nothing.
        let other = relocked(2000, |h| {
            h.redis(12, "worker-1", "SETEX", vec![86400.into(), "{}".into()], "OK", 0)
                .fault(
                    100,
                    Fault::Crash {
                        node: Some(NodeName::Redis),
                    },
                    Some(1000),
                    Some(vec!["other".into()]),
                )
        });
        assert_eq!(other.why().mechanism, Mechanism::Unexplained, "{}", other.why());
    }

    #[test]
    fn a_redis_clock_jump() {
        // Redis's clock jumps 600 s forward between the two acquires, 1 s apart.
        let h = H::default()
            .deliver(0, "worker-1", 1)
            .lock(0, "worker-1", 1, KEY)
            .applied(10, "worker-1", 1)
            .fault(
                500,
                Fault::Clock {
                    node: Some(NodeName::Redis),
                    offset_ms: 600_000,
                },
                None,
                None,
            )
            .deliver(1000, "worker-2", 1)
            .redis(1001, "worker-2", "GET", vec![], "nil", 600_000)
            .redis(
                1002,
                "worker-2",
                "SET",
                vec!["{}".into(), "NX".into(), "EX".into(), 300.into()],
                "OK",
                600_000,
            )
            .acquired(1003, "worker-2", 1, KEY)
            .applied(1010, "worker-2", 1);
        assert_why(
            &h,
            Mechanism::RedisClockJump,
            &["jumped 600 s forward", "600 s of Redis time in 999 ms"],
        );
    }

    #[test]
    fn a_rebalance_zombie() {
        let h = relocked(301_000, |h| {
            h.at(
                10_000,
                "kafka",
                Typed::MemberRemoved {
                    member: "worker-1-1".into(),
                    reason: "max_poll_interval".into(),
                },
            )
        });
        assert_why(
            &h,
            Mechanism::RebalanceZombie,
            &[
                "worker-1's call 1 was still processing",
                "worker-1-1 was removed at 10000 ms (max_poll_interval)",
            ],
        );
    }

    /// A crash that leaves no lock behind: `w`'s call `call` locks at `t` and crashes at
    /// `t + 5` without applying (a relay: it held the key and never applied the event).
    fn relay_crashes(h: H, t: u64, worker: &str, call: u64, n: u8) -> H {
        h.deliver(t, worker, call).lock(t, worker, call, KEY).fault(
            t + 5,
            Fault::Crash { node: w(n) },
            None,
            None,
        )
    }

    #[test]
    fn a_crash_before_confirm_relayed_by_a_call_that_never_applied() {
        // Swarm seeds 236 and 1858: worker-1 committed and crashed; its lock expired;
        // worker-2 took the key and crashed before applying; its lock expired too; worker-3
        // applied again. The relay changes nothing: worker-1 never confirmed.
        let h = H::default()
            .deliver(0, "worker-1", 1)
            .lock(0, "worker-1", 1, KEY)
            .applied(10, "worker-1", 1)
            .fault(12, Fault::Crash { node: w(1) }, None, None);
        let h = relay_crashes(h, 301_000, "worker-2", 1, 2)
            .deliver(602_000, "worker-3", 1)
            .lock(602_000, "worker-3", 1, KEY)
            .applied(602_010, "worker-3", 1);
        assert_why(
            &h,
            Mechanism::CrashBeforeConfirm,
            &[
                "worker-1's call 1 committed at 10 ms and its worker crashed at 12 ms",
                "300 s lock expired and worker-2's call 1 took it at 301003 ms",
                "then worker-2's call 1 held the key without applying the event (its lock expired)",
                "worker-3's call 1 took it at 602003 ms",
            ],
        );
    }

    #[test]
    fn a_failed_confirm_relayed_by_calls_that_released_their_own_locks() {
        // Swarm seeds 714, 598 and 1302: worker-1's confirm failed; its lock expired;
        // worker-2's call 1 took the key, failed on the database and released its own lock;
        // its call 2 applied again.
        let h = H::default()
            .deliver(0, "worker-1", 1)
            .lock(0, "worker-1", 1, KEY)
            .applied(10, "worker-1", 1)
            .confirm(12, "worker-1", 1, "confirm failed: redis timed out")
            .end(12, "worker-1", 1, "ok")
            .deliver(301_000, "worker-2", 1)
            .lock(301_000, "worker-2", 1, KEY)
            .end(301_100, "worker-2", 1, "error: database: connection refused")
            .redis(301_101, "worker-2", "DEL", vec![], "1", 0)
            .deliver(301_300, "worker-2", 2)
            .lock(301_300, "worker-2", 2, KEY)
            .applied(301_310, "worker-2", 2);
        assert_why(
            &h,
            Mechanism::FailedConfirm,
            &[
                "worker-1's call 1's confirm failed at 12 ms",
                "worker-2's call 1 took it at 301003 ms",
                "(it released its lock at 301101 ms)",
                "worker-2's call 2 took it at 301303 ms",
            ],
        );
    }

    #[test]
    fn a_lost_completed_record_relayed_by_a_call_that_never_applied() {
        // Swarm seeds 864 and 1318: worker-1 confirmed; a Redis crash lost the completed
        // record; worker-2's call 1 took the free key and released it after a database error;
        // its call 2 applied again.
        let h = H::default()
            .deliver(0, "worker-1", 1)
            .lock(0, "worker-1", 1, KEY)
            .applied(10, "worker-1", 1)
            .redis(12, "worker-1", "SETEX", vec![86400.into(), "{}".into()], "OK", 0)
            .confirm(13, "worker-1", 1, "confirmed")
            .end(13, "worker-1", 1, "ok")
            .fault(
                100,
                Fault::Crash {
                    node: Some(NodeName::Redis),
                },
                Some(1000),
                Some(vec![KEY.into()]),
            )
            .deliver(2000, "worker-2", 1)
            .lock(2000, "worker-2", 1, KEY)
            .end(2100, "worker-2", 1, "error: database: connection refused")
            .redis(2101, "worker-2", "DEL", vec![], "1", 0)
            .deliver(2300, "worker-2", 2)
            .lock(2300, "worker-2", 2, KEY)
            .applied(2310, "worker-2", 2);
        assert_why(
            &h,
            Mechanism::RedisRestartLost,
            &[
                "Redis crashed at 100 ms and lost the key's completed record (written by worker-1 at 12 ms)",
                "worker-2's call 2 took it at 2303 ms",
            ],
        );
    }

    #[test]
    fn a_relayed_explanation_also_names_the_first_handlers_missing_confirm() {
        // Swarm seeds 1302 and 1009: what let the relay in (here a Redis crash losing the
        // lock) is the mechanism; that the first handler never confirmed is said too.
        let h = H::default()
            .deliver(0, "worker-1", 1)
            .lock(0, "worker-1", 1, KEY)
            .applied(10, "worker-1", 1)
            .fault(12, Fault::Crash { node: w(1) }, None, None)
            .fault(
                100,
                Fault::Crash {
                    node: Some(NodeName::Redis),
                },
                Some(1000),
                Some(vec![KEY.into()]),
            )
            .deliver(2000, "worker-2", 1)
            .lock(2000, "worker-2", 1, KEY)
            .end(2100, "worker-2", 1, "error: database: connection refused")
            .redis(2101, "worker-2", "DEL", vec![], "1", 0)
            .deliver(2300, "worker-2", 2)
            .lock(2300, "worker-2", 2, KEY)
            .applied(2310, "worker-2", 2);
        assert_why(
            &h,
            Mechanism::RedisRestartLost,
            &[
                "Redis crashed at 100 ms and lost the key's processing record (written by worker-1 at 2 ms)",
                "; worker-1's call 1 committed at 10 ms and its worker crashed at 12 ms before confirming; then",
                "worker-2's call 2 took it at 2303 ms",
            ],
        );
    }

    #[test]
    fn a_lock_expired_under_a_pause_relayed_by_a_call_that_never_applied() {
        // Swarm seeds 337 and 1943: worker-1 was paused holding the lock; it expired; worker-2
        // took the key and crashed; worker-3 took it after that lock expired and applied;
        // worker-1 woke and applied too.
        let h = H::default()
            .deliver(0, "worker-1", 1)
            .lock(0, "worker-1", 1, KEY)
            .fault(5, Fault::Pause { node: w(1) }, Some(700_000), None);
        let h = relay_crashes(h, 301_000, "worker-2", 1, 2)
            .deliver(602_000, "worker-3", 1)
            .lock(602_000, "worker-3", 1, KEY)
            .applied(602_010, "worker-3", 1)
            .applied(700_010, "worker-1", 1);
        assert_why(
            &h,
            Mechanism::LockExpiredUnderPause,
            &[
                "worker-1's call 1 was paused at 5 ms for 700 s while holding the lock",
                "worker-2's call 1 took it at 301003 ms",
                "worker-3's call 1 took it at 602003 ms",
            ],
        );
    }

    #[test]
    fn a_failed_confirm_after_the_lock_was_taken_while_it_ran() {
        // Swarm seed 212: worker-3's unchecked release deleted worker-1's lock while worker-1
        // ran; worker-2 took the key and crashed without applying; worker-1 applied and its
        // confirm failed; worker-3's call 2 took the key after worker-2's lock expired. Had the
        // confirm written the completed record, the release would not have mattered.
        let h = H::default()
            .deliver(0, "worker-1", 1)
            .lock(0, "worker-1", 1, KEY)
            .deliver(50, "worker-3", 1)
            .redis(100, "worker-3", "DEL", vec![], "1", 0);
        let h = relay_crashes(h, 200, "worker-2", 1, 2)
            .applied(1000, "worker-1", 1)
            .confirm(1001, "worker-1", 1, "confirm failed: redis timed out")
            .end(1001, "worker-1", 1, "ok")
            .deliver(301_000, "worker-3", 2)
            .lock(301_000, "worker-3", 2, KEY)
            .applied(301_010, "worker-3", 2);
        assert_why(
            &h,
            Mechanism::FailedConfirm,
            &[
                "worker-1's call 1's confirm failed at 1001 ms",
                "then worker-2's call 1 held the key without applying the event (its lock expired)",
                "worker-3's call 2 took it at 301003 ms",
            ],
        );
    }

    #[test]
    fn a_stale_record_of_a_relay_taken_over() {
        // worker-1 committed and crashed; worker-2 took the expired key and crashed without
        // applying; worker-3 read worker-2's record as stale and took it over. The takeover let
        // worker-3 past worker-2, who never applied: worker-1's missing confirm is the cause.
        let h = H::default()
            .deliver(0, "worker-1", 1)
            .lock(0, "worker-1", 1, KEY)
            .applied(10, "worker-1", 1)
            .fault(12, Fault::Crash { node: w(1) }, None, None);
        let h = relay_crashes(h, 301_000, "worker-2", 1, 2);
        let set = vec![processing(602.0).into(), "NX".into(), "EX".into(), 300.into()];
        let h = h
            .deliver(602_000, "worker-3", 1)
            .redis(
                602_001,
                "worker-3",
                "GET",
                vec![],
                &serde_json::to_string(&processing(301.0)).unwrap(),
                0,
            )
            .redis(602_002, "worker-3", "DEL", vec![], "1", 0)
            .redis(602_003, "worker-3", "SET", set, "OK", 0)
            .acquired(602_004, "worker-3", 1, KEY)
            .applied(602_010, "worker-3", 1);
        assert_why(
            &h,
            Mechanism::CrashBeforeConfirm,
            &[
                "worker-1's call 1 committed at 10 ms",
                "then worker-2's call 1 held the key without applying the event (worker-3's call 1 took over its record as stale)",
            ],
        );
    }

    #[test]
    fn an_unchecked_release_of_a_completed_record_relayed() {
        // Swarm seed 1726: worker-1's call 1 had taken the key while worker-3 ran; worker-3
        // confirmed; worker-1's call 1 failed on the database and its release (DEL) deleted
        // worker-3's completed record; worker-1's call 2 took the key and crashed; worker-2
        // applied again after that lock expired.
        let h = H::default()
            .deliver(0, "worker-3", 1)
            .lock(0, "worker-3", 1, KEY)
            .applied(10, "worker-3", 1)
            .redis(12, "worker-3", "SETEX", vec![86400.into(), "{}".into()], "OK", 0)
            .confirm(13, "worker-3", 1, "confirmed")
            .end(13, "worker-3", 1, "ok")
            .deliver(50, "worker-1", 1)
            .end(99, "worker-1", 1, "error: database: timeout")
            .redis(100, "worker-1", "DEL", vec![], "1", 0);
        let h = relay_crashes(h, 200, "worker-1", 2, 1)
            .deliver(301_000, "worker-2", 1)
            .lock(301_000, "worker-2", 1, KEY)
            .applied(301_010, "worker-2", 1);
        assert_why(
            &h,
            Mechanism::UncheckedRelease,
            &[
                "worker-1's call 1's release at 100 ms (DEL, not checked against its owner) deleted the \
                 completed record worker-3's call 1 had written at 12 ms, so worker-1's call 2 found the key free",
                "then worker-1's call 2 held the key without applying the event (its lock expired)",
                "worker-2's call 1 took it at 301003 ms",
            ],
        );
    }

    #[test]
    fn a_lease_renewed_while_the_redis_clock_was_set_back_expires_at_its_jump_forward() {
        // Swarm seed 416 (fenced, unique): the Redis clock was set 383 s back, the holder
        // renewed its lease (300 s from the set-back clock), and the clock jumped forward
        // again: the lease expired 17 s after its lock by the lock's clock, and worker-2
        // took the key while worker-1 still held it.
        let renew = |t: u64, skew_ms: i64| {
            move |h: H| {
                h.redis(
                    t,
                    "worker-1",
                    "EVALSHA:renew",
                    vec!["tail".into(), "record".into(), 300_000.into()],
                    "1",
                    skew_ms,
                )
            }
        };
        let h = renew(100_000, -383_000)(
            H::default()
                .deliver(0, "worker-1", 1)
                .lock(0, "worker-1", 1, KEY)
                .applied(10, "worker-1", 1),
        )
        .deliver(200_000, "worker-2", 1)
        .redis(200_000, "worker-2", "GET", vec![], "nil", -10_000)
        .lock(200_001, "worker-2", 1, KEY)
        .applied(200_010, "worker-2", 1);
        assert_why(&h, Mechanism::RedisClockJump, &["the Redis node's clock jumped"]);
    }

    #[test]
    fn a_redis_clock_jump_set_back_before_the_next_acquire() {
        // Swarm seeds 1009 and 1991: the Redis clock jumped 600 s forward (a command at that
        // clock expired every lock past its TTL) and was set back before worker-2 read the key,
        // so the reading clock shows only 2 s since the lock.
        let other = Typed::Redis {
            from: "worker-3".into(),
            cmd: "GET".into(),
            key: "other".into(),
            args: vec![],
            reply: "nil".into(),
            clock_us: EPOCH_US + (600 + 600_000) * 1000,
            reply_lost: false,
        };
        let h = H::default()
            .deliver(0, "worker-1", 1)
            .lock(0, "worker-1", 1, KEY)
            .applied(10, "worker-1", 1)
            .fault(
                500,
                Fault::Clock {
                    node: Some(NodeName::Redis),
                    offset_ms: 600_000,
                },
                None,
                None,
            )
            .at(600, "redis", other)
            .fault(
                900,
                Fault::Clock {
                    node: Some(NodeName::Redis),
                    offset_ms: 0,
                },
                None,
                None,
            )
            .deliver(2000, "worker-2", 1)
            .lock(2000, "worker-2", 1, KEY)
            .applied(2010, "worker-2", 1);
        assert_why(
            &h,
            Mechanism::RedisClockJump,
            &[
                "the Redis node's clock jumped 600 s forward at 500 ms",
                "600 s of Redis time after worker-1's lock at 2 ms",
                "set back before worker-2's call 1 acquired at 2001 ms",
            ],
        );
    }

    #[test]
    fn a_repeat_nothing_explains_is_unexplained() {
        // worker-1 confirmed; the completed record vanished without any recorded cause.
        let h = relocked(2000, |h| {
            h.redis(12, "worker-1", "SETEX", vec![86400.into(), "{}".into()], "OK", 0)
                .confirm(13, "worker-1", 1, "confirmed")
                .end(14, "worker-1", 1, "ok")
        });
        assert_eq!(h.why().mechanism, Mechanism::Unexplained);
        let other = Violation {
            kind: "lost_event",
            severity: Severity::Liveness,
            event_id: E.into(),
            detail: String::new(),
            first_event: None,
        };
        assert_eq!(explain(&h.0, &other), None, "not a repeated effect");
    }

    #[test]
    fn names_are_distinct_and_in_the_readme() {
        let names: std::collections::BTreeSet<&str> = Mechanism::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(names.len(), Mechanism::ALL.len());
        let readme = include_str!("../../../README.md");
        for name in names {
            assert!(
                readme.contains(&format!("| `{name}` |")),
                "{name} is not in the README"
            );
        }
    }

    /// The embedded scenarios that expect a repeated effect: each violation is explained with
    /// the scenario's mechanism, never "unexplained".
    #[test]
    fn embedded_scenarios_name_their_mechanism() {
        let cases = [
            ("gc-pause-v2", Mechanism::LockExpiredUnderPause),
            ("v2-takeover-race", Mechanism::TakeoverRace),
            ("v2-stale-takeover-skew", Mechanism::SkewTakeover),
            ("async-confirm-crash-plain", Mechanism::CrashBeforeConfirm),
            ("header-body-keys", Mechanism::TwoKeys),
            ("redis-restart-everysec", Mechanism::RedisRestartLost),
            ("redis-clock-jump", Mechanism::RedisClockJump),
            ("canary", Mechanism::FailOpen),
            ("python-v2-exception", Mechanism::HandlerCalledTwice),
            ("mixed-fleet-v2-takeover", Mechanism::V2TookFencedLease),
        ];
        for (name, expected) in cases {
            let config = crate::scenario::load(name).expect("an embedded scenario");
            let r = crate::run::run(config.seed, &config);
            let repeated: Vec<&Violation> = r
                .verdict
                .violations()
                .iter()
                .chain(&r.notes)
                .filter(|v| explains(v.kind))
                .collect();
            assert!(!repeated.is_empty(), "{name}: no repeated effect");
            for v in repeated {
                let why = explain(&r.events, v).unwrap();
                assert_eq!(why.mechanism, expected, "{name}: {v}: {why}");
            }
        }
    }

    /// Swarm seeds of fenced on a unique database whose lock overlap `why` once could not
    /// name: an orphan lock between the holders (37432), an orphan relay whose acquire ran on
    /// Redis after a Redis pause (66552), an acquire sent again whose second attempt took the
    /// lock after a Redis clock jump (51434).
    #[test]
    fn swarm_overlaps_once_unexplained_have_their_mechanism() {
        let cases = [
            (37432, Mechanism::LockExpiredUnderPause),
            (66552, Mechanism::LockExpiredUnderPause),
            (51434, Mechanism::RedisClockJump),
        ];
        // As `--protocol fenced --database unique` sets them: on the base, before the draw.
        let mut base = crate::scenario::load("swarm").unwrap();
        base.protocol = crate::node::worker::ProtocolKind::Fenced;
        base.database = crate::model::db::DbMode::Unique;
        for (seed, expected) in cases {
            let r = crate::run::run(seed, &base);
            let overlaps: Vec<&Violation> = r
                .verdict
                .violations()
                .iter()
                .filter(|v| v.kind == "lock_overlap")
                .collect();
            assert!(!overlaps.is_empty(), "seed {seed}: no overlap");
            for v in overlaps {
                let why = explain(&r.events, v).unwrap();
                assert_eq!(why.mechanism, expected, "seed {seed}: {v}: {why}");
            }
        }
    }

    /// `python-v2`'s exception path as the worker traces it: call `call` of `w` raises with
    /// `error` at `t` ms, deletes its lock and runs the handler again, unprotected.
    fn raised_and_called_again(h: H, t: u64, w: &str, call: u64, error: &str) -> H {
        h.end(t, w, call, error)
            .redis(t + 1, w, "DEL", vec![], "1", 0)
            .at(
                t + 2,
                w,
                Typed::Unprotected {
                    event_id: E.into(),
                    reason: format!("python-v2: the handler raised ({error})"),
                    call,
                },
            )
            .at(
                t + 2,
                w,
                Typed::Acquire {
                    event_id: E.into(),
                    outcome: AcquireOutcome::Unprotected {
                        fence: None,
                        key: KEY.into(),
                    },
                    call,
                },
            )
            .at(
                t + 2,
                w,
                Typed::HandlerStart {
                    event_id: E.into(),
                    fence: None,
                    call,
                },
            )
    }

    #[test]
    fn one_call_applying_twice_is_the_handler_called_twice() {
        // The first run's write waits in a paused database; the call times out, and the
        // second run's write and the first's both land.
        let h = H::default().deliver(0, "worker-1", 1).lock(0, "worker-1", 1, KEY);
        let h = raised_and_called_again(h, 1100, "worker-1", 1, "error: database: timeout")
            .applied(1500, "worker-1", 1)
            .applied(1500, "worker-1", 1)
            .confirm(1501, "worker-1", 1, "noop")
            .end(1501, "worker-1", 1, "ok");
        assert_why(
            &h,
            Mechanism::HandlerCalledTwice,
            &[
                "worker-1's call 1's handler raised at 1100 ms (error: database: timeout)",
                "called it again at 1102 ms without a lock",
                "both writes were applied (1500 ms and 1500 ms)",
                "weakness A",
            ],
        );
    }

    #[test]
    fn a_second_run_that_left_no_key_is_the_handler_called_twice() {
        // worker-1's first run fails before its write; the second run applies and confirms
        // with a no-op; worker-2 later finds the key free and applies again.
        let h = H::default().deliver(0, "worker-1", 1).lock(0, "worker-1", 1, KEY);
        let h = raised_and_called_again(h, 100, "worker-1", 1, "error: injected handler error")
            .applied(150, "worker-1", 1)
            .confirm(151, "worker-1", 1, "noop")
            .end(151, "worker-1", 1, "ok")
            .deliver(2000, "worker-2", 1)
            .lock(2000, "worker-2", 1, KEY)
            .applied(2010, "worker-2", 1);
        assert_why(
            &h,
            Mechanism::HandlerCalledTwice,
            &[
                "worker-1's call 1's handler raised at 100 ms (error: injected handler error)",
                "applied it at 150 ms",
                "leaving no key, so worker-2's call 1 found the key free",
            ],
        );
        // A second run that failed too left the event to be redelivered: that is not it.
        let failed = H::default().deliver(0, "worker-1", 1).lock(0, "worker-1", 1, KEY);
        let failed = raised_and_called_again(failed, 100, "worker-1", 1, "error: injected handler error")
            .applied(150, "worker-1", 1)
            .end(151, "worker-1", 1, "error: stale fence (highest 3)")
            .deliver(2000, "worker-2", 1)
            .lock(2000, "worker-2", 1, KEY)
            .applied(2010, "worker-2", 1);
        assert_ne!(
            failed.why().mechanism,
            Mechanism::HandlerCalledTwice,
            "{}",
            failed.why()
        );
    }

    #[test]
    fn an_unchecked_release_of_a_record_left_behind_names_why_it_was_left() {
        // worker-1 commits and its confirm fails: its record would expire in 300 s. worker-3's
        // release deletes it sooner; the cause is the failed confirm, not the release.
        let h = H::default()
            .deliver(2, "worker-1", 1)
            .lock(2, "worker-1", 1, KEY)
            .applied(10, "worker-1", 1)
            .confirm(
                12,
                "worker-1",
                1,
                "confirm failed: redis error reply: ERR injected fault",
            )
            .end(12, "worker-1", 1, "ok")
            .deliver(15, "worker-3", 2)
            .redis(20, "worker-3", "DEL", vec![], "1", 0)
            .deliver(30, "worker-2", 1)
            .lock(30, "worker-2", 1, KEY)
            .applied(40, "worker-2", 1);
        assert_why(
            &h,
            Mechanism::FailedConfirm,
            &[
                "worker-1's call 1's confirm failed at 12 ms",
                "worker-3's call 2's release at 20 ms (DEL, not checked against its owner) deleted that record",
            ],
        );
    }
}
