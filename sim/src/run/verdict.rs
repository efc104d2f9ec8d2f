//! A run's outcome: the verdict (the product's word on the run), and everything a report needs.

use crate::check::{self, Violation};
use crate::fault::schedule::ScheduledFault;
use crate::model::db::Effect;
use crate::net::topology::NodeName;
use crate::trace::{self, Event};
use std::collections::BTreeMap;
use std::time::Duration;

/// Exit code when a scenario expects a violation and the run (or the sweep) did not show it.
pub const EXIT_EXPECTATION_UNMET: i32 = 7;

/// How a run ended.
///
/// ```
/// use sim::Verdict;
///
/// // A GC pause outlives v2's lock: two handlers hold it at once and both apply the effect.
/// let sim = sim::Sim::new("gc-pause-v2").unwrap();
/// let verdict = sim.run(sim.config().seed).verdict;
/// assert!(matches!(verdict, Verdict::Correctness(_)));
/// assert_eq!((verdict.name(), verdict.exit_code()), ("correctness", 3));
/// let kinds: Vec<&str> = verdict.violations().iter().map(|v| v.kind).collect();
/// assert_eq!(kinds, ["duplicate_effect", "lock_overlap"]);
/// // The scenario demonstrates just these, so against its expectation the run exits 0.
/// assert_eq!(verdict.exit_code_against(&sim.config().expect.kinds()), 0);
/// assert_eq!(Verdict::Pass.exit_code(), 0);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every check passed.
    Pass,
    /// A correctness violation (and maybe liveness ones too).
    Correctness(Vec<Violation>),
    /// Only liveness violations.
    Liveness(Vec<Violation>),
    /// The simulation itself panicked, or hit its step or time limit.
    Crash(String),
}

impl Verdict {
    /// The process exit code for this verdict.
    pub fn exit_code(&self) -> i32 {
        match self {
            Verdict::Pass => 0,
            Verdict::Correctness(_) => 3,
            Verdict::Liveness(_) => 4,
            Verdict::Crash(_) => 5,
        }
    }

    /// Whether every check passed.
    pub fn is_pass(&self) -> bool {
        matches!(self, Verdict::Pass)
    }

    /// A one-word name.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Correctness(_) => "correctness",
            Verdict::Liveness(_) => "liveness",
            Verdict::Crash(_) => "crash",
        }
    }

    /// The exit code of a single run with this verdict, judged against the violation kinds the
    /// scenario expects (none: a pass): 0 when the expectation holds (a pass where a pass is
    /// expected, or expected violations and nothing else); [`EXIT_EXPECTATION_UNMET`] when a
    /// violation was expected and the run passed; the verdict's own code when anything else
    /// showed (a crash is always 5).
    pub fn exit_code_against(&self, expected: &[String]) -> i32 {
        if matches!(self, Verdict::Crash(_)) || expected.is_empty() {
            return self.exit_code();
        }
        if check::as_expected(expected, self.violations()) {
            0
        } else if self.violations().is_empty() {
            EXIT_EXPECTATION_UNMET
        } else {
            self.exit_code()
        }
    }

    /// Its violations, if any.
    pub fn violations(&self) -> &[Violation] {
        match self {
            Verdict::Correctness(v) | Verdict::Liveness(v) => v,
            _ => &[],
        }
    }
}

/// What a run produced.
///
/// ```
/// // One event, published twice (two records, to two workers), applied once.
/// let sim = sim::Sim::new("duplicate-detection").unwrap();
/// let r = sim.run(1);
/// assert_eq!(r.seed, 1);
/// assert!(r.verdict.is_pass());
/// assert_eq!((r.events_total, r.produced, r.applied, r.duplicates), (1, 1, 1, 0));
/// assert!(r.faults.is_empty()); // the scenario turns random faults off
/// assert!(r.virtual_us >= 5_000_000); // its safety phase lasts 5 s of virtual time
/// // The history starts with the run's settings; its SHA-256 is the same on every run.
/// assert_eq!(r.events[0].kind(), "config");
/// assert_eq!(r.fingerprint().len(), 64);
/// assert_eq!(r.fingerprint(), sim.run(1).fingerprint());
/// ```
#[derive(Clone, Debug)]
pub struct RunResult {
    /// The seed.
    pub seed: u64,
    /// The history.
    pub events: Vec<Event>,
    /// The verdict.
    pub verdict: Verdict,
    /// Events the workload has.
    pub events_total: usize,
    /// Events produced: with a record in the broker's log (whether or not the producer got
    /// its ack).
    pub produced: usize,
    /// Distinct events with an applied effect.
    pub applied: usize,
    /// Effects applied beyond the first, over all events.
    pub duplicates: usize,
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, usize>,
    /// Hazards the checkers noted that the faults explain (they do not fail the run).
    pub notes: Vec<Violation>,
    /// What Kafka did: rebalances, redeliveries, rejected commits, duplicate records.
    pub kafka: check::kafka::KafkaStats,
    /// Virtual time at the end, in µs.
    pub virtual_us: u64,
    /// Real time the run took (not part of the trace).
    pub wall: Duration,
    /// Every effect the database applied, by event id (the run's effects, for comparing runs).
    pub effects: BTreeMap<String, Vec<Effect>>,
    /// The nemesis's decisions, as schedule entries (what `--save-scenario` writes).
    pub drawn: Vec<ScheduledFault>,
    /// RPC calls started (each a round trip begun, answered or not), by caller, server and
    /// request kind (`Fetch`, `GET`, `db.apply`, ...). Not part of the trace; `sim bench`
    /// prints them and its floor replays them. Not API (the bench's).
    #[doc(hidden)]
    pub round_trips: Vec<(NodeName, NodeName, &'static str, u64)>,
    /// Polls of the nodes' main tasks (the steps the step limit counts): what a run costs the
    /// executor, besides its round trips. Not part of the trace; `sim bench` prints them. Not
    /// API (the bench's).
    #[doc(hidden)]
    pub polls: u64,
}

impl RunResult {
    /// The run's fingerprint (SHA-256 of the canonical trace).
    pub fn fingerprint(&self) -> String {
        trace::fingerprint(&self.events)
    }
}
