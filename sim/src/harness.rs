//! Testing your own consumer: a builder that puts your [`Handler`] and your [`Checker`]s into
//! the simulated world and runs a seed, a sweep or a shrink, from a plain `#[test]`.
//!
//! ```
//! use sim::{Cx, Handler, HandlerFuture, Sim};
//!
//! /// Works, commits the effect, confirms: what the built-in scenarios run.
//! struct Orders;
//!
//! impl Handler for Orders {
//!     fn handle<'a>(&'a self, cx: &'a Cx<'a>) -> HandlerFuture<'a> {
//!         Box::pin(async move {
//!             cx.work().await?;
//!             cx.commit().await?;
//!             cx.confirm().await.ok();
//!             Ok(())
//!         })
//!     }
//! }
//!
//! let sim = Sim::new("duplicate-detection").unwrap().handler(Orders);
//! assert!(sim.run(1).verdict.is_pass());
//! let sweep = sim.sweep(0..4);
//! assert!(sweep.failures.is_empty(), "{sweep}");
//! ```
//!
//! Every seed runs on its own thread and runtime, as the command line's do, so a test needs no
//! runtime of its own; the same seed gives the same history, byte for byte, with your handler
//! as with the built-in one. Inside a `#[madsim::test]`, [`Sim::run_on_current`] runs a seed
//! on the test's own runtime instead.

use crate::check::{why, Checker, Violation};
use crate::fault::schedule::ScheduledFault;
use crate::node::worker::handler::Handler;
use crate::run::{self, Extensions, RunResult, Verdict};
use crate::scenario::config::SimConfig;
use crate::shrink::{self, Budget, Fingerprint, Outcome, Shrunk, Size};
use crate::trace::{Event, Typed};
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

/// A simulation to run: a scenario, the handler its workers run, and the checkers that judge
/// it beside the built-in ones.
///
/// ```
/// use sim::config::{DbMode, ProtocolKind};
/// use sim::Sim;
///
/// // A 400 s GC pause outlives v2's 300 s lock: both workers apply the event's effect.
/// let v2 = Sim::new("gc-pause-v2").unwrap();
/// let seed = v2.config().seed;
/// assert_eq!(v2.config().protocol, ProtocolKind::V2);
/// let r = v2.run(seed);
/// assert_eq!((r.applied, r.duplicates), (1, 1));
///
/// // The same run under the fenced protocol and a fenced database: the paused worker's
/// // commit carries an older token than its successor's, and the database rejects it.
/// let fenced = v2.configure(|c| {
///     c.protocol = ProtocolKind::Fenced;
///     c.database = DbMode::Fenced;
/// });
/// let r = fenced.run(seed);
/// assert_eq!((r.applied, r.duplicates), (1, 0));
/// ```
#[derive(Clone)]
pub struct Sim {
    config: SimConfig,
    ext: Extensions,
    jobs: usize,
    budget: Budget,
}

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim")
            .field("scenario", &self.config.name)
            .field("checkers", &self.ext.checkers.len())
            .field("jobs", &self.jobs)
            .finish()
    }
}

impl Sim {
    /// A built-in scenario by name (`default`, `duplicate-detection`, ...; see `scenarios/`),
    /// or the scenario file at a path. The error names the file, line and field.
    pub fn new(scenario: &str) -> Result<Sim, crate::scenario::ScenarioError> {
        Ok(Sim::from_config(crate::scenario::load(scenario)?))
    }

    /// A simulation of `config` as it is.
    pub fn from_config(config: SimConfig) -> Sim {
        Sim {
            config,
            ext: Extensions::default(),
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            budget: Budget::default(),
        }
    }

    /// Runs `handler` in every worker instead of the built-in one.
    pub fn handler(mut self, handler: impl Handler) -> Sim {
        self.ext.handler = Arc::new(handler);
        self
    }

    /// Adds `checker` to the ones that judge every run.
    pub fn checker(mut self, checker: impl Checker + 'static) -> Sim {
        self.ext.checkers.push(Arc::new(checker));
        self
    }

    /// Changes the scenario's settings (events, workers, faults, ...).
    pub fn configure(mut self, change: impl FnOnce(&mut SimConfig)) -> Sim {
        change(&mut self.config);
        self
    }

    /// Runs a sweep's seeds `jobs` at a time (default: the machine's cores). Results do not
    /// depend on it.
    pub fn jobs(mut self, jobs: usize) -> Sim {
        self.jobs = jobs.max(1);
        self
    }

    /// How long a shrink may go on (default: 500 runs or 60 s, whichever ends first).
    pub fn shrink_budget(mut self, budget: Budget) -> Sim {
        self.budget = budget;
        self
    }

    /// The scenario's settings.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Runs one seed and judges it.
    pub fn run(&self, seed: u64) -> RunResult {
        run::run_with(seed, &self.config, &self.ext)
    }

    /// Runs one seed on the madsim runtime this future runs on (inside a `#[madsim::test]`)
    /// and judges it. Deterministic for the pair of `seed` and the runtime's seed
    /// (`MADSIM_TEST_SEED`): on a runtime seeded with `seed` it gives [`Sim::run`]'s history,
    /// byte for byte (see [`run::run_current`]).
    pub async fn run_on_current(&self, seed: u64) -> RunResult {
        run::run_current(seed, &self.config, &self.ext).await
    }

    /// Runs every seed of `seeds` and keeps what each failing one showed (a passing run is
    /// dropped at once: memory does not grow with the seeds).
    pub fn sweep(&self, seeds: Range<u64>) -> Sweep {
        let mut sweep = Sweep {
            seeds: seeds.clone(),
            failures: Vec::new(),
        };
        run::pool::in_order(
            seeds,
            self.jobs,
            |seed| {
                let r = self.run(seed);
                self.failure(&r)
            },
            |_, failure| {
                sweep.failures.extend(failure);
                true
            },
        );
        sweep
    }

    /// What `result` (a run of this simulation) shows when it failed: each violation with its
    /// why, the run's size and faults; `None` when it passed.
    pub fn failure(&self, result: &RunResult) -> Option<Failure> {
        let seed = result.seed;
        (!result.verdict.is_pass()).then(|| {
            let rerun = format!("the same Sim's .run({seed})");
            Failure::of(result, &self.config.for_seed(seed), rerun)
        })
    }

    /// Shrinks the failing run of `seed` to the smallest config found that fails the same way
    /// (the same violation kinds, and for a repeated effect the same mechanism): fewer faults,
    /// events, workers, a shorter run. `Err` when the seed passes.
    pub fn shrink(&self, seed: u64) -> Result<Shrunk, String> {
        self.shrink_by(seed, None)
    }

    /// Shrinks the run of `seed` keeping what `keep` looks for, instead of the run's violation
    /// kinds: a smaller run counts only when `keep` holds for it. For a violation of your own
    /// kind, whose cause the built-in `why` cannot name, this keeps the shrink on the cause you
    /// mean (a second email *after a timed-out commit*, not any second email). `Err` when `keep`
    /// does not hold for the seed's own run.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let budget = sim::Budget { max_runs: 10, max_time: Duration::from_secs(30) };
    /// let sim = sim::Sim::new("gc-pause-v2").unwrap().shrink_budget(budget);
    /// let seed = sim.config().seed;
    /// let shrunk = sim
    ///     .shrink_where(seed, |r| r.verdict.violations().iter().any(|v| v.kind == "lock_overlap"))
    ///     .unwrap();
    /// let smaller = sim.explain(&shrunk);
    /// assert!(smaller.shows("lock_overlap"));
    /// ```
    pub fn shrink_where(&self, seed: u64, keep: impl Fn(&RunResult) -> bool) -> Result<Shrunk, String> {
        self.shrink_by(seed, Some(&keep))
    }

    fn shrink_by(&self, seed: u64, keep: Option<&dyn Fn(&RunResult) -> bool>) -> Result<Shrunk, String> {
        let result = self.run(seed);
        match keep {
            None if result.verdict.is_pass() => return Err(format!("seed {seed} passes: nothing to shrink")),
            Some(keep) if !keep(&result) => {
                return Err(format!(
                    "seed {seed} does not show what `keep` looks for: nothing to shrink"
                ))
            }
            _ => {}
        }
        let target = shrink::fingerprint(&result);
        let mut start = self.config.with_faults_explicit(seed, &result.drawn);
        start
            .validate()
            .map_err(|e| format!("cannot make seed {seed}'s faults explicit: {e}"))?;
        start.name = format!("{}-seed-{seed}-shrunk", self.config.name);
        let mut run = |c: &SimConfig| {
            let r = run::run_with(c.seed, c, &self.ext);
            let mut outcome = Outcome::of(&r);
            if let Some(keep) = keep {
                // The engine keeps a candidate whose fingerprint is the target's: here that is
                // whatever `keep` accepts, and nothing it refuses.
                if keep(&r) {
                    outcome.fingerprint = target.clone();
                } else if outcome.fingerprint == target {
                    outcome.fingerprint =
                        Fingerprint(std::iter::once(format!("not kept: {target}")).collect());
                }
            }
            outcome
        };
        shrink::shrink(&start, &target, &mut run, self.budget, &mut |_| {}).map_err(
            |shrink::NotShrunk::Differs(got)| {
                format!("seed {seed} made explicit fails differently ({got}): cannot shrink it")
            },
        )
    }

    /// What a shrunk run shows, as a failure of its own (with the why of each violation).
    pub fn explain(&self, shrunk: &Shrunk) -> Failure {
        let r = run::run_with(shrunk.config.seed, &shrunk.config, &self.ext);
        let rerun = format!(
            "Sim::from_config(shrunk.config) with the same handler and checkers, .run({}) \
             (shrunk.config.to_toml() saves it as a scenario file)",
            shrunk.config.seed
        );
        Failure::of(&r, &shrunk.config, rerun)
    }
}

/// What a sweep found.
///
/// ```
/// // The scheduled GC pause outlives v2's lock whatever the seed.
/// let sweep = sim::Sim::new("gc-pause-v2").unwrap().sweep(0..2);
/// assert!(!sweep.passed());
/// assert_eq!(sweep.seeds, 0..2);
/// let seeds: Vec<u64> = sweep.failures.iter().map(|f| f.seed).collect();
/// assert_eq!(seeds, [0, 1]);
/// assert!(sweep.failures.iter().all(|f| f.shows("duplicate_effect")));
/// // `Display` prints every failure, under one line for the sweep.
/// assert!(sweep.to_string().starts_with("seeds 0..2: 2 of 2 failed\n"));
/// ```
#[derive(Clone, Debug)]
pub struct Sweep {
    /// The seeds it ran.
    pub seeds: Range<u64>,
    /// Each failing seed, in seed order.
    pub failures: Vec<Failure>,
}

impl Sweep {
    /// Whether every seed passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

impl fmt::Display for Sweep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.seeds.end.saturating_sub(self.seeds.start);
        writeln!(
            f,
            "seeds {}..{}: {} of {n} failed",
            self.seeds.start,
            self.seeds.end,
            self.failures.len()
        )?;
        for failure in &self.failures {
            write!(f, "{failure}")?;
        }
        Ok(())
    }
}

/// One failing run: its seed, verdict and violations, each with the mechanism or the story
/// behind it, its size and faults, and how to run it again. `Display` prints all of it.
///
/// ```
/// let sim = sim::Sim::new("gc-pause-v2").unwrap();
/// let seed = sim.config().seed;
/// let failure = sim.failure(&sim.run(seed)).expect("the scenario fails on its seed");
/// assert!(failure.shows("duplicate_effect"));
/// assert!(matches!(failure.verdict, sim::Verdict::Correctness(_)));
/// assert_eq!(failure.why.len(), failure.violations().len());
/// assert!(failure.fingerprint.0.iter().any(|label| label.starts_with("duplicate_effect/")));
/// println!("{failure}");
/// ```
#[derive(Clone, Debug)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// The scenario's name.
    pub scenario: String,
    /// The verdict: a correctness or liveness one with its violations, or a crash with its
    /// message (a bug of the harness or a panic of the handler).
    pub verdict: Verdict,
    /// For each of the verdict's violations, in order, why it happened: the mechanism that
    /// let a second handler in, or for any other kind the story of the event's calls.
    pub why: Vec<String>,
    /// What a shrink of it keeps: violation kinds with their mechanism.
    pub fingerprint: Fingerprint,
    /// Its size: faults, events, workers.
    pub size: Size,
    /// The faults it ran: the scenario's schedule, then what the nemesis drew.
    pub faults: Vec<ScheduledFault>,
    /// How to run it again.
    pub rerun: String,
}

impl Failure {
    fn of(r: &RunResult, config: &SimConfig, rerun: String) -> Failure {
        let why = r
            .verdict
            .violations()
            .iter()
            .map(|v| match why::explain(&r.events, v) {
                Some(w) => format!("{}: {}", w.mechanism.name(), w.sentence),
                None => story(&r.events, &v.event_id),
            })
            .collect();
        Failure {
            seed: r.seed,
            scenario: config.name.clone(),
            verdict: r.verdict.clone(),
            why,
            fingerprint: shrink::fingerprint(r),
            size: Size::of(config),
            faults: config.schedule.iter().chain(&r.drawn).cloned().collect(),
            rerun,
        }
    }

    /// Its violations (none for a crash).
    pub fn violations(&self) -> &[Violation] {
        self.verdict.violations()
    }

    /// Whether it shows a violation of `kind`.
    pub fn shows(&self, kind: &str) -> bool {
        self.violations().iter().any(|v| v.kind == kind)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = |n: usize, what: &str| match n {
            1 => format!("1 {what}"),
            n => format!("{n} {what}s"),
        };
        writeln!(
            f,
            "seed {} of {}: {} ({}, {}, {})",
            self.seed,
            self.scenario,
            self.verdict.name(),
            count(self.size.events, "event"),
            count(self.size.workers as usize, "worker"),
            count(self.faults.len(), "fault")
        )?;
        for fault in &self.faults {
            let json = serde_json::to_string(fault).expect("a fault is plain data");
            writeln!(f, "  fault: {json}")?;
        }
        if let Verdict::Crash(msg) = &self.verdict {
            writeln!(f, "  crash: {msg}")?;
        }
        for (v, why) in self.violations().iter().zip(&self.why) {
            writeln!(f, "  violation: {v}")?;
            writeln!(f, "    why: {why}")?;
        }
        writeln!(f, "  rerun: {}", self.rerun)
    }
}

/// The calls that handled `event_id`, in order, each with what it did: how a violation of a
/// user's own kind came about, read from the history alone.
pub fn story(trace: &[Event], event_id: &str) -> String {
    // Each call is (worker, incarnation, call): call numbers start again in each incarnation.
    type Call = (String, u64, u64);
    let mut calls: Vec<(Call, Vec<String>)> = Vec::new();
    let mut incarnations: std::collections::BTreeMap<&str, u64> = Default::default();
    let at = |t_us: u64| format!("{} ms", t_us / 1000);
    for e in trace {
        if let Typed::Start { incarnation } = e.typed() {
            incarnations.insert(&e.node, *incarnation);
        }
        // A worker that crashed while one of its calls of the event was open.
        if let Typed::Fault {
            fault: crate::fault::Fault::Crash { node: Some(n) },
            point,
            ..
        } = e.typed()
        {
            let worker = n.to_string();
            let open = calls
                .iter_mut()
                .rev()
                .find(|((w, _, _), _)| *w == worker)
                .filter(|(_, steps)| !steps.iter().any(|s| s.starts_with("ended")));
            if let Some((_, steps)) = open {
                steps.push(match point {
                    Some(p) => format!("its worker crashed at {} ({})", at(e.t_us), p.name()),
                    None => format!("its worker crashed at {}", at(e.t_us)),
                });
            }
            continue;
        }
        if e.typed().event_id() != Some(event_id) {
            continue;
        }
        let here = |call: u64| {
            let incarnation = incarnations.get(e.node.as_str()).copied().unwrap_or(1);
            (e.node.to_string(), incarnation, call)
        };
        let step = match e.typed() {
            Typed::HandlerStart { call, .. } => Some((here(*call), format!("started at {}", at(e.t_us)))),
            Typed::Custom { call, name, .. } => Some((here(*call), format!("{name} at {}", at(e.t_us)))),
            Typed::HandlerEnd { call, result, .. } => Some((here(*call), format!("ended {result}"))),
            Typed::Confirm { call, result, .. } => Some((
                here(*call),
                match result.as_str() {
                    "confirmed" => "confirmed".to_owned(),
                    "noop" => "a no-op confirm".to_owned(),
                    failed => failed.to_owned(),
                },
            )),
            Typed::Unprotected { call, reason, .. } => {
                // Traced when the call returns; it says how the whole call ran.
                let call = here(*call);
                let step = format!("ran unprotected ({reason})");
                match calls.iter_mut().find(|(c, _)| *c == call) {
                    Some((_, steps)) => steps.insert(0, step),
                    None => calls.push((call, vec![step])),
                }
                None
            }
            Typed::EffectAttempt {
                worker,
                incarnation,
                call,
                result,
                ..
            } => Some((
                (worker.clone(), *incarnation, *call),
                format!("its commit {result} in the database at {}", at(e.t_us)),
            )),
            _ => None,
        };
        if let Some((call, step)) = step {
            match calls.iter_mut().find(|(c, _)| *c == call) {
                Some((_, steps)) => steps.push(step),
                None => calls.push((call, vec![step])),
            }
        }
    }
    if calls.is_empty() {
        return "the history shows no handler of the event".to_owned();
    }
    calls
        .iter()
        .map(|((worker, incarnation, call), steps)| {
            let who = if *incarnation > 1 {
                format!("{worker}#{incarnation}")
            } else {
                worker.clone()
            };
            format!("{who}'s call {call}: {}", steps.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; then ")
}
