//! Shrinking a failing run: from a seed's run made explicit (its faults as `[[schedule]]`
//! entries, random faults off) to a smaller config that fails with the same [`Fingerprint`].
//!
//! The engine is pure over a "run this config" closure, so it is tested with a fake runner;
//! `sim shrink` gives it [`crate::run::run`]. It first re-runs the start and stops if that does
//! not fail the same way (a shrink is only as good as its replay). Then passes, coarsest
//! first, repeated until a whole round shrinks nothing: whole fault kinds off; delta debugging
//! (Zeller's ddmin) over the `[[schedule]]` list, which leaves it 1-minimal (removing any one
//! entry loses the failure); fewer events (`keep_events`: the workload is drawn as ever, so
//! the kept events are the same events); fewer workers, partitions and copies; smaller fault
//! fields (durations, times, offsets, latencies, shares); a shorter safety phase.
//!
//! A candidate counts only if it fails with the same fingerprint. One that fails differently
//! is not accepted (a shrink must not slip into another bug) but is kept as another finding,
//! with its config. Every candidate is run at most once (results are remembered by the
//! config's text), and the order of candidates depends only on the config and the results, so
//! the same input gives the same shrink. The only wall-clock decision is the budget's stop,
//! and [`Shrunk::stop`] says when it happened.

use crate::fault::schedule::ScheduledFault;
use crate::fault::Fault;
use crate::net::topology::NodeName;
use crate::run::{RunResult, Verdict};
use crate::scenario::config::SimConfig;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, Instant};

/// What a shrink must keep: the sorted set of the run's violations, each as its kind and, for
/// a repeated effect, the mechanism that let the second handler in (`check::why`), e.g.
/// `duplicate_effect/db_timeout_late_write`; a crash is `crash`; a pass is the empty set. With
/// the mechanism in it, a shrink cannot slip from one cause of a duplicate into another.
///
/// ```
/// use sim::Fingerprint;
///
/// let sim = sim::Sim::new("gc-pause-v2").unwrap();
/// let failure = sim.failure(&sim.run(sim.config().seed)).unwrap();
/// let fingerprint: &Fingerprint = &failure.fingerprint;
/// // Each violation's kind, with the mechanism that let the second handler in.
/// assert_eq!(
///     fingerprint.to_string(),
///     "duplicate_effect/lock_expired_under_pause + lock_overlap/lock_expired_under_pause"
/// );
/// assert!(fingerprint.0.contains("lock_overlap/lock_expired_under_pause"));
/// assert!(!fingerprint.passes());
/// assert!(Fingerprint::default().passes());
/// assert_eq!(Fingerprint::default().to_string(), "pass");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Fingerprint(pub BTreeSet<String>);

impl Fingerprint {
    /// Whether it is a pass's (no violation).
    pub fn passes(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return write!(f, "pass");
        }
        let kinds: Vec<&str> = self.0.iter().map(String::as_str).collect();
        write!(f, "{}", kinds.join(" + "))
    }
}

/// The fingerprint of a run: see [`Fingerprint`].
pub fn fingerprint(r: &RunResult) -> Fingerprint {
    Fingerprint(match &r.verdict {
        Verdict::Pass => BTreeSet::new(),
        Verdict::Crash(_) => BTreeSet::from(["crash".to_owned()]),
        v => crate::check::why::labels(&r.events, v.violations()),
    })
}

/// What the engine needs of a run.
///
/// ```
/// let sim = sim::Sim::new("gc-pause-v2").unwrap();
/// let r = sim.run(sim.config().seed);
/// let outcome = sim::Outcome::of(&r);
/// assert_eq!(outcome.fingerprint, sim.failure(&r).unwrap().fingerprint);
/// // Both violations are about the scenario's one event.
/// assert_eq!(outcome.violating.len(), 1);
/// assert!(r.effects.contains_key(outcome.violating.first().unwrap()));
/// assert_eq!(outcome.trace_events, r.events.len());
/// assert_eq!(outcome.virtual_us, r.virtual_us);
/// assert_eq!(outcome.trace_sha256, r.fingerprint());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Its fingerprint.
    pub fingerprint: Fingerprint,
    /// The ids of the events its violations are about (a first guess at the events to keep).
    pub violating: BTreeSet<String>,
    /// Events in its trace.
    pub trace_events: usize,
    /// Virtual time at its end, in µs.
    pub virtual_us: u64,
    /// SHA-256 of its canonical trace.
    pub trace_sha256: String,
}

impl Outcome {
    /// The outcome of a run.
    pub fn of(r: &RunResult) -> Self {
        Outcome {
            fingerprint: fingerprint(r),
            violating: r
                .verdict
                .violations()
                .iter()
                .filter(|v| !v.event_id.is_empty())
                .map(|v| v.event_id.clone())
                .collect(),
            trace_events: r.events.len(),
            virtual_us: r.virtual_us,
            trace_sha256: r.fingerprint(),
        }
    }
}

/// How much a shrink may spend.
///
/// ```
/// use sim::{Budget, Stop};
/// use std::time::Duration;
///
/// assert_eq!(Budget::default(), Budget { max_runs: 500, max_time: Duration::from_secs(60) });
///
/// // Two runs: the failing seed's config once, to trust it, and one smaller candidate.
/// let budget = Budget { max_runs: 2, max_time: Duration::from_secs(60) };
/// let sim = sim::Sim::new("gc-pause-v2").unwrap().shrink_budget(budget);
/// let shrunk = sim.shrink(sim.config().seed).unwrap();
/// assert_eq!((shrunk.runs, shrunk.stop), (2, Stop::Runs));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Runs at most (the first, trusting run included).
    pub max_runs: u64,
    /// Wall time at most.
    pub max_time: Duration,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_runs: 500,
            max_time: Duration::from_secs(60),
        }
    }
}

/// Why a shrink stopped.
///
/// ```
/// use sim::{Budget, Stop};
/// use std::time::Duration;
///
/// // No time at all: the shrink stops after the run it must trust, with nothing tried.
/// let budget = Budget { max_runs: 500, max_time: Duration::ZERO };
/// let sim = sim::Sim::new("gc-pause-v2").unwrap().shrink_budget(budget);
/// let shrunk = sim.shrink(sim.config().seed).unwrap();
/// assert_eq!((shrunk.stop, shrunk.runs), (Stop::Time, 1));
/// assert_eq!(shrunk.config, shrunk.original);
/// // Anything but `Done` means a larger budget may shrink it further.
/// assert!(shrunk.stop.to_string().ends_with("the best so far"));
/// assert_eq!(Stop::Done.to_string(), "done: no pass shrinks it further");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// A whole round of passes shrank nothing: the result is as small as the passes make it.
    Done,
    /// The budget of runs was spent.
    Runs,
    /// The budget of wall time was spent (the one decision made by the clock).
    Time,
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stop::Done => "done: no pass shrinks it further",
            Stop::Runs => "the budget of runs (--max-runs) was spent: the best so far",
            Stop::Time => "the budget of time (--max-seconds) was spent: the best so far",
        })
    }
}

/// What a candidate did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tried {
    /// It failed the same way: accepted.
    Kept,
    /// It passed: rejected.
    Passed,
    /// It failed differently: rejected, and kept as another finding.
    Other(Fingerprint),
}

/// One candidate run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The pass that made it.
    pub pass: &'static str,
    /// What it changed.
    pub change: String,
    /// What it did.
    pub tried: Tried,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tried = match &self.tried {
            Tried::Kept => "still fails the same way: kept".to_owned(),
            Tried::Passed => "passes: rejected".to_owned(),
            Tried::Other(fp) => format!("fails differently ({fp}): rejected, kept as another finding"),
        };
        write!(f, "[{}] {}: {tried}", self.pass, self.change)
    }
}

/// A config's size, as a shrink reports it.
///
/// ```
/// use sim::Size;
///
/// let mut config = sim::Sim::new("gc-pause-v2").unwrap().config().clone();
/// let size = Size::of(&config);
/// assert_eq!(
///     size,
///     Size { faults: 1, events: 1, workers: 2, partitions: 2, copies: 2, safety_s: 450 }
/// );
/// // A config that keeps some of its events counts only those.
/// config.events = 100;
/// config.keep_events = vec![3, 7];
/// assert_eq!(Size::of(&config).events, 2);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size {
    /// `[[schedule]]` entries.
    pub faults: usize,
    /// Events published.
    pub events: usize,
    /// Workers.
    pub workers: u32,
    /// Partitions.
    pub partitions: u32,
    /// Copies of each event.
    pub copies: u32,
    /// The safety phase, in s.
    pub safety_s: u64,
}

impl Size {
    /// The size of `c`.
    pub fn of(c: &SimConfig) -> Self {
        Size {
            faults: c.schedule.len(),
            events: if c.keep_events.is_empty() {
                c.events as usize
            } else {
                c.keep_events.len()
            },
            workers: c.workers,
            partitions: c.partitions,
            copies: c.copies,
            safety_s: c.safety_s,
        }
    }
}

/// A shrink's result.
///
/// ```
/// use sim::{Budget, Size};
/// use std::time::Duration;
///
/// // A few runs are enough to drop the event's second copy.
/// let budget = Budget { max_runs: 5, max_time: Duration::from_secs(60) };
/// let sim = sim::Sim::new("gc-pause-v2").unwrap().shrink_budget(budget);
/// let shrunk = sim.shrink(sim.config().seed).unwrap();
/// // The start is the seed's run made explicit: its faults as `[[schedule]]` entries.
/// assert!(!shrunk.original.faults.random);
/// assert_eq!(shrunk.original_outcome.fingerprint, shrunk.target);
/// // The result fails the same way, with one copy of the event instead of two.
/// assert_eq!(shrunk.outcome.fingerprint, shrunk.target);
/// let copies = (Size::of(&shrunk.original).copies, Size::of(&shrunk.config).copies);
/// assert_eq!(copies, (2, 1));
/// // Saved, it is a scenario file of its own.
/// assert!(shrunk.config.to_toml().contains("name = \"gc-pause-v2-seed-1-shrunk\""));
/// ```
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// The fingerprint kept.
    pub target: Fingerprint,
    /// The start.
    pub original: SimConfig,
    /// The start's run.
    pub original_outcome: Outcome,
    /// The smallest config found that fails the same way.
    pub config: SimConfig,
    /// Its run.
    pub outcome: Outcome,
    /// Every candidate run, in order. Not API (`sim shrink`'s report).
    #[doc(hidden)]
    pub steps: Vec<Step>,
    /// Candidates that failed differently: the first of each fingerprint, with its config.
    pub others: Vec<(Fingerprint, SimConfig)>,
    /// For each of the result's `[[schedule]]` entries, whether it is necessary (removing it
    /// alone loses the failure); `None` when the budget stopped the shrink (left unknown).
    pub necessary: Option<Vec<bool>>,
    /// The knobs other than the fault list tried at other values on the result (see
    /// [`variations`]), each with whether the failure held; `None` when the budget stopped the
    /// shrink. A variation the budget left no run for is left out. Not API (`sim shrink`'s
    /// report).
    #[doc(hidden)]
    pub varied: Option<Vec<Varied>>,
    /// Runs made (the trusting run included).
    pub runs: u64,
    /// Wall time spent.
    pub elapsed: Duration,
    /// Why it stopped.
    pub stop: Stop,
}

/// Why a shrink could not start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotShrunk {
    /// The start, re-run, did not fail with the target fingerprint: what it gave instead.
    Differs(Fingerprint),
}

/// Shrinks `start`, which must fail with `target`, with `run` running a candidate (its seed is
/// the config's `seed`), within `budget`; `on_step` sees each candidate as it is run.
pub fn shrink(
    start: &SimConfig,
    target: &Fingerprint,
    run: &mut dyn FnMut(&SimConfig) -> Outcome,
    budget: Budget,
    on_step: &mut dyn FnMut(&Step),
) -> Result<Shrunk, NotShrunk> {
    let started = Instant::now();
    let first = run(start);
    if &first.fingerprint != target {
        return Err(NotShrunk::Differs(first.fingerprint));
    }
    let mut s = Shrinker {
        run,
        on_step,
        target: target.clone(),
        best: start.clone(),
        best_outcome: first.clone(),
        seen: BTreeMap::from([(start.to_toml(), first.clone())]),
        runs: 1,
        budget,
        started,
        steps: Vec::new(),
        others: Vec::new(),
    };
    let stop = loop {
        let before = s.best.clone();
        if let Err(stop) = s.round() {
            break stop;
        }
        if s.best == before {
            break Stop::Done;
        }
    };
    let necessary = (stop == Stop::Done).then(|| s.necessary());
    let varied = (stop == Stop::Done).then(|| s.vary());
    Ok(Shrunk {
        target: target.clone(),
        original: start.clone(),
        original_outcome: first,
        config: s.best,
        outcome: s.best_outcome,
        steps: s.steps,
        others: s.others,
        necessary,
        varied,
        runs: s.runs,
        elapsed: started.elapsed(),
        stop,
    })
}

struct Shrinker<'a> {
    run: &'a mut dyn FnMut(&SimConfig) -> Outcome,
    on_step: &'a mut dyn FnMut(&Step),
    target: Fingerprint,
    best: SimConfig,
    best_outcome: Outcome,
    /// Each config run so far (by its text), with its outcome: none is run twice.
    seen: BTreeMap<String, Outcome>,
    runs: u64,
    budget: Budget,
    started: Instant,
    steps: Vec<Step>,
    others: Vec<(Fingerprint, SimConfig)>,
}

/// A pass's result: whether it shrank anything, or the budget's stop.
type Pass = Result<bool, Stop>;

impl Shrinker<'_> {
    /// One round of every pass, coarsest first.
    fn round(&mut self) -> Result<(), Stop> {
        self.kinds_off()?;
        self.faults_ddmin()?;
        self.events()?;
        self.topology()?;
        self.fields()?;
        self.safety()?;
        Ok(())
    }

    /// Runs `candidate` (unless it is invalid or was run before) and accepts it if it fails
    /// with the target fingerprint.
    fn attempt(&mut self, pass: &'static str, change: String, candidate: SimConfig) -> Pass {
        if candidate == self.best || candidate.validate().is_err() {
            return Ok(false);
        }
        let text = candidate.to_toml();
        if let Some(outcome) = self.seen.get(&text) {
            // Run before (and reported then): the same answer.
            if outcome.fingerprint != self.target {
                return Ok(false);
            }
            self.best_outcome = outcome.clone();
            self.best = candidate;
            return Ok(true);
        }
        if self.runs >= self.budget.max_runs {
            return Err(Stop::Runs);
        }
        if self.started.elapsed() >= self.budget.max_time {
            return Err(Stop::Time);
        }
        let outcome = (self.run)(&candidate);
        self.runs += 1;
        self.seen.insert(text, outcome.clone());
        let tried = if outcome.fingerprint == self.target {
            Tried::Kept
        } else if outcome.fingerprint.passes() {
            Tried::Passed
        } else {
            if !self.others.iter().any(|(fp, _)| fp == &outcome.fingerprint) {
                self.others.push((outcome.fingerprint.clone(), candidate.clone()));
            }
            Tried::Other(outcome.fingerprint.clone())
        };
        let step = Step {
            pass,
            change,
            tried: tried.clone(),
        };
        (self.on_step)(&step);
        self.steps.push(step);
        if tried == Tried::Kept {
            self.best = candidate;
            self.best_outcome = outcome;
            return Ok(true);
        }
        Ok(false)
    }

    /// Whole fault kinds off, one kind at a time (every kind: no fault at all is tried too).
    fn kinds_off(&mut self) -> Pass {
        let kinds: BTreeSet<&'static str> = self.best.schedule.iter().map(|f| f.fault.kind()).collect();
        let mut shrank = false;
        for kind in kinds {
            let mut c = self.best.clone();
            c.schedule.retain(|f| f.fault.kind() != kind);
            let n = self.best.schedule.len() - c.schedule.len();
            shrank |= self.attempt("fault kinds", format!("every {kind} fault off ({n})"), c)?;
        }
        Ok(shrank)
    }

    /// Delta debugging over the `[[schedule]]` list.
    fn faults_ddmin(&mut self) -> Pass {
        let items: Vec<usize> = (0..self.best.schedule.len()).collect();
        let base = self.best.clone();
        let build = move |keep: &[usize]| {
            let mut c = base.clone();
            c.schedule = keep.iter().map(|&i| base.schedule[i].clone()).collect();
            c
        };
        let label = |kept: &[usize], of: usize| {
            let at = places(kept.iter().map(|&i| i as u64));
            format!("keep {} of {of} faults ({at} of the list)", kept.len())
        };
        self.ddmin("faults", items, &build, &label)
    }

    /// Fewer events: first only those the violations are about and the schedule names, then
    /// delta debugging over the events kept, then `events` cut to the last one kept.
    fn events(&mut self) -> Pass {
        let drawn = crate::workload::workload(
            &SimConfig {
                keep_events: Vec::new(),
                ..self.best.clone()
            }
            .workload(),
            &mut crate::rng::stream(self.best.seed, "workload"),
        );
        let kept: Vec<u32> = if self.best.keep_events.is_empty() {
            (0..self.best.events).collect()
        } else {
            self.best.keep_events.clone()
        };
        let mut shrank = false;
        let mut guess: BTreeSet<u32> = drawn
            .iter()
            .filter(|e| self.best_outcome.violating.contains(&e.event_id))
            .map(|e| e.index)
            .collect();
        guess.extend(self.best.schedule.iter().filter_map(|f| f.event));
        let guess: Vec<u32> = guess.into_iter().filter(|i| kept.contains(i)).collect();
        if !guess.is_empty() && guess.len() < kept.len() {
            let mut c = self.best.clone();
            c.keep_events = guess.clone();
            let at = places(guess.iter().map(|&i| u64::from(i)));
            let change = format!("keep only the events the violations and faults name ({at})");
            shrank |= self.attempt("events", change, c)?;
        }
        let kept: Vec<u32> = if self.best.keep_events.is_empty() {
            (0..self.best.events).collect()
        } else {
            self.best.keep_events.clone()
        };
        let base = self.best.clone();
        let build = move |keep: &[u32]| {
            let mut c = base.clone();
            c.keep_events = keep.to_vec();
            c
        };
        let label = |kept: &[u32], of: usize| {
            let at = places(kept.iter().map(|&i| u64::from(i)));
            format!("keep {} of {of} events ({at})", kept.len())
        };
        shrank |= self.ddmin("events", kept, &build, &label)?;
        // Events past the last one kept need not be drawn (each event is drawn after the ones
        // before it, so the kept ones stay the same).
        if let Some(&last) = self.best.keep_events.last() {
            let mut c = self.best.clone();
            c.events = last + 1;
            if c.keep_events.len() == c.events as usize {
                c.keep_events.clear();
            }
            if c.events < self.best.events {
                let change = format!("draw {} events instead of {}", c.events, self.best.events);
                shrank |= self.attempt("events", change, c)?;
            }
        }
        Ok(shrank)
    }

    /// Fewer workers (and the faults that name a worker no longer there), partitions, copies.
    fn topology(&mut self) -> Pass {
        let mut shrank = false;
        for workers in [1, self.best.workers.saturating_sub(1)] {
            if workers == 0 || workers >= self.best.workers {
                continue;
            }
            let mut c = self.best.clone();
            c.workers = workers;
            c.schedule.retain(|f| !names_worker_above(f, workers));
            if !c.worker_protocols.is_empty() {
                c.worker_protocols.truncate(workers as usize);
            }
            let change = format!("{workers} workers instead of {}", self.best.workers);
            shrank |= self.attempt("workers", change, c)?;
        }
        // A worker below the last one out: the faults that name it go, the workers after it
        // move down one (their names, and so their random streams, change: only a candidate).
        for k in 1..self.best.workers {
            let mut c = self.best.clone();
            c.workers -= 1;
            c.schedule = c.schedule.iter().filter_map(|f| without_worker(f, k)).collect();
            if !c.worker_protocols.is_empty() {
                // `k` counts up to the workers the loop began with; a kept candidate has
                // fewer, and a fleet has no entry for a worker no longer there.
                if k as usize > c.worker_protocols.len() {
                    continue;
                }
                c.worker_protocols.remove(k as usize - 1);
            }
            let change = format!(
                "{} workers instead of {}: worker-{k} out, the ones after it renumbered",
                c.workers, self.best.workers
            );
            shrank |= self.attempt("workers", change, c)?;
        }
        for partitions in [1, self.best.partitions.saturating_sub(1)] {
            if partitions == 0 || partitions >= self.best.partitions {
                continue;
            }
            let mut c = self.best.clone();
            c.partitions = partitions;
            c.copy_partitions.retain(|&p| p < partitions);
            let change = format!("{partitions} partitions instead of {}", self.best.partitions);
            shrank |= self.attempt("partitions", change, c)?;
        }
        for copies in [1, self.best.copies.saturating_sub(1)] {
            if copies == 0 || copies >= self.best.copies {
                continue;
            }
            let mut c = self.best.clone();
            c.copies = copies;
            c.copy_partitions.truncate(copies as usize);
            c.copy_headers.truncate(copies as usize);
            let change = format!("{copies} copies instead of {}", self.best.copies);
            shrank |= self.attempt("copies", change, c)?;
        }
        Ok(shrank)
    }

    /// Each fault's numbers made smaller: durations, times, offsets, latencies, shares.
    fn fields(&mut self) -> Pass {
        let mut shrank = false;
        for i in 0..self.best.schedule.len() {
            for field in FIELDS {
                let Some(now) = get(&self.best.schedule[i], field) else {
                    continue;
                };
                for to in smaller(now, floor(field)) {
                    let mut c = self.best.clone();
                    set(&mut c.schedule[i], field, to);
                    let change = format!("schedule[{i}].{field} {} -> {}", show(now), show(to));
                    if self.attempt("fault fields", change, c)? {
                        shrank = true;
                        break;
                    }
                }
            }
        }
        Ok(shrank)
    }

    /// A shorter safety phase (still holding every `at_ms` entry).
    fn safety(&mut self) -> Pass {
        let now = self.best.safety_s;
        let lo = self
            .best
            .schedule
            .iter()
            .filter_map(|f| f.at_ms)
            .map(|at| at / 1000 + 1)
            .max()
            .unwrap_or(0);
        for to in smaller(now as f64, lo as f64) {
            let mut c = self.best.clone();
            c.safety_s = to as u64;
            if self.attempt("safety phase", format!("safety_s {now} -> {}", to as u64), c)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Zeller's ddmin over `items`: the smallest subset `build` makes fail the same way that
    /// it finds; at its end removing any one item loses the failure (1-minimal), unless the
    /// budget stopped it.
    fn ddmin<T: Clone>(
        &mut self,
        pass: &'static str,
        mut items: Vec<T>,
        build: &dyn Fn(&[T]) -> SimConfig,
        label: &dyn Fn(&[T], usize) -> String,
    ) -> Pass {
        let mut shrank = false;
        let mut n = 2;
        while items.len() >= 2 {
            let chunks = split(&items, n);
            let mut reduced = false;
            for chunk in &chunks {
                if self.attempt(pass, label(chunk, items.len()), build(chunk))? {
                    items = chunk.clone();
                    n = 2;
                    reduced = true;
                    break;
                }
            }
            if !reduced && n > 2 {
                for i in 0..chunks.len() {
                    let rest: Vec<T> = chunks
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .flat_map(|(_, c)| c.iter().cloned())
                        .collect();
                    if self.attempt(pass, label(&rest, items.len()), build(&rest))? {
                        items = rest;
                        n = (n - 1).max(2);
                        reduced = true;
                        break;
                    }
                }
            }
            if reduced {
                shrank = true;
            } else if n >= items.len() {
                break;
            } else {
                n = (n * 2).min(items.len());
            }
        }
        Ok(shrank)
    }

    /// For each `[[schedule]]` entry of the result, whether removing it alone loses the
    /// failure. After a last round that shrank nothing, ddmin (or, for a single entry, the
    /// kinds pass) has tried each removal already: remembered, not run again.
    fn necessary(&mut self) -> Vec<bool> {
        let mut out = Vec::new();
        for i in 0..self.best.schedule.len() {
            let mut c = self.best.clone();
            c.schedule.remove(i);
            let text = c.to_toml();
            let fp = match self.seen.get(&text) {
                Some(o) => o.fingerprint.clone(),
                None => {
                    let o = (self.run)(&c);
                    self.runs += 1;
                    let fp = o.fingerprint.clone();
                    self.seen.insert(text, o);
                    fp
                }
            };
            out.push(fp != self.target);
        }
        out
    }

    /// The result's knobs tried at other values ([`variations`]), each run at most once and
    /// within the budget of runs and time (the ones left when it ends are left out); none is
    /// accepted: the result stays as it is.
    fn vary(&mut self) -> Vec<Varied> {
        let mut out: Vec<Varied> = Vec::new();
        for (knob, now, value, c) in variations(&self.best) {
            let text = c.to_toml();
            let outcome = match self.seen.get(&text) {
                Some(o) => o.clone(),
                None => {
                    if self.runs >= self.budget.max_runs || self.started.elapsed() >= self.budget.max_time {
                        break;
                    }
                    let o = (self.run)(&c);
                    self.runs += 1;
                    self.seen.insert(text, o.clone());
                    o
                }
            };
            let tried = if outcome.fingerprint == self.target {
                Tried::Kept
            } else if outcome.fingerprint.passes() {
                Tried::Passed
            } else {
                Tried::Other(outcome.fingerprint)
            };
            match out.last_mut() {
                Some(v) if v.knob == knob => v.tried.push((value, tried)),
                _ => out.push(Varied {
                    knob,
                    now,
                    tried: vec![(value, tried)],
                }),
            }
        }
        out
    }
}

/// One knob of a shrink's result tried at other values (Hypothesis's explain phase: what
/// could vary without losing the failure).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Varied {
    /// The knob, as a scenario file names it (`seed`, `handler_ms_max`,
    /// `schedule[0].at_ms`).
    pub knob: String,
    /// Its value in the result.
    pub now: String,
    /// Each value tried, with what the run did (`Kept`: it failed the same way).
    pub tried: Vec<(String, Tried)>,
}

impl Varied {
    /// How many of the values tried kept the failure.
    pub fn held(&self) -> usize {
        self.tried.iter().filter(|(_, t)| *t == Tried::Kept).count()
    }
}

impl fmt::Display for Varied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (held, n) = (self.held(), self.tried.len());
        let verdict = if held == n {
            format!("can vary ({held} of {n} tried hold)")
        } else if held == 0 {
            format!("none tried holds (0 of {n})")
        } else {
            format!("some tried hold ({held} of {n})")
        };
        let each: Vec<String> = self
            .tried
            .iter()
            .map(|(value, tried)| match tried {
                Tried::Kept => format!("{value} holds"),
                Tried::Passed => format!("{value} passes"),
                Tried::Other(fp) => format!("{value} fails differently ({fp})"),
            })
            .collect();
        write!(f, "{} = {}: {verdict}: {}", self.knob, self.now, each.join(", "))
    }
}

/// How many other seeds [`variations`] tries.
pub const OTHER_SEEDS: u64 = 5;

/// The variations tried on a shrink's result, a fixed list made from it alone (at most 13
/// runs): the next [`OTHER_SEEDS`] seeds (each draws its own workload and timings; the faults
/// stay as listed); the handler's longest run halved (not below the shortest) and four times
/// as long; the network's highest latency four times as high; the Redis and call timeouts
/// doubled; the first `[[schedule]]` entry a tenth earlier and later (at least 100 ms) and
/// twice as long (at least 100 ms; the safety phase made long enough). Each as (knob, its value now, the value tried, the
/// config); invalid configs and values equal to the result's are left out.
pub fn variations(c: &SimConfig) -> Vec<(String, String, String, SimConfig)> {
    let mut out = Vec::new();
    let mut push = |knob: &str, now: u64, to: u64, c2: SimConfig| {
        if to != now && c2.validate().is_ok() {
            out.push((knob.to_owned(), now.to_string(), to.to_string(), c2));
        }
    };
    // Each knob tried as (name, its value now, the values tried, how to set it).
    type Set = fn(&mut SimConfig, u64);
    let knobs: [(&str, u64, Vec<u64>, Set); 5] = [
        (
            "seed",
            c.seed,
            (1..=OTHER_SEEDS).map(|k| c.seed.wrapping_add(k)).collect(),
            |c, v| c.seed = v,
        ),
        (
            "handler_ms_max",
            c.handler_ms_max,
            vec![
                (c.handler_ms_max / 2).max(c.handler_ms_min),
                c.handler_ms_max.saturating_mul(4),
            ],
            |c, v| c.handler_ms_max = v,
        ),
        (
            "latency_ms_max",
            c.latency_ms_max,
            vec![c.latency_ms_max.max(1).saturating_mul(4)],
            |c, v| c.latency_ms_max = v,
        ),
        (
            "redis_timeout_ms",
            c.redis_timeout_ms,
            vec![c.redis_timeout_ms.saturating_mul(2)],
            |c, v| c.redis_timeout_ms = v,
        ),
        (
            "call_timeout_ms",
            c.call_timeout_ms,
            vec![c.call_timeout_ms.saturating_mul(2)],
            |c, v| c.call_timeout_ms = v,
        ),
    ];
    for (knob, now, tried, set) in knobs {
        for to in tried {
            let mut c2 = c.clone();
            set(&mut c2, to);
            push(knob, now, to, c2);
        }
    }
    if let Some(first) = c.schedule.first() {
        if let Some(at) = first.at_ms {
            let d = (at / 10).max(100);
            for to in [at.saturating_sub(d), at.saturating_add(d)] {
                let mut c2 = c.clone();
                c2.schedule[0].at_ms = Some(to);
                // (The safety phase made as long as the later time needs, as the shrink made
                // it as short as the fault allowed.)
                c2.safety_s = c2.safety_s.max(to / 1000 + 1);
                push("schedule[0].at_ms", at, to, c2);
            }
        }
        if let Some(d) = first.duration_ms {
            let to = d.saturating_mul(2).max(100);
            let mut c2 = c.clone();
            c2.schedule[0].duration_ms = Some(to);
            push("schedule[0].duration_ms", d, to, c2);
        }
    }
    out
}

/// The places a candidate keeps, as a step names them: `#3 #7`, or `#0..#49` for a run.
fn places(kept: impl IntoIterator<Item = u64>) -> String {
    let v: Vec<u64> = kept.into_iter().collect();
    let contiguous = v.windows(2).all(|w| w[1] == w[0] + 1);
    match (v.first(), v.last()) {
        (Some(a), Some(b)) if contiguous && v.len() > 2 => format!("#{a}..#{b}"),
        _ if v.len() <= 6 => v.iter().map(|x| format!("#{x}")).collect::<Vec<_>>().join(" "),
        (Some(a), Some(b)) => format!("{} places from #{a} to #{b}", v.len()),
        _ => String::new(),
    }
}

/// `items` in `n` chunks of near-equal size, in order.
fn split<T: Clone>(items: &[T], n: usize) -> Vec<Vec<T>> {
    let n = n.clamp(1, items.len().max(1));
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    for i in 0..n {
        let end = start + (items.len() - start) / (n - i);
        out.push(items[start..end].to_vec());
        start = end;
    }
    out
}

/// Whether `f` names a worker numbered above `workers`.
fn names_worker_above(f: &ScheduledFault, workers: u32) -> bool {
    let peer = match &f.fault {
        Fault::Partition { peer, .. } => Some(*peer),
        _ => None,
    };
    [f.fault.node(), peer, f.by, f.while_holding]
        .into_iter()
        .flatten()
        .any(|n| matches!(n, NodeName::Worker(w) if u32::from(w) > workers))
}

/// `f` with worker `k` gone: `None` if it names that worker, else with every worker after it
/// renumbered one down.
fn without_worker(f: &ScheduledFault, k: u32) -> Option<ScheduledFault> {
    let mut f = f.clone();
    let mut gone = false;
    let mut rename = |n: &mut Option<NodeName>| {
        if let Some(NodeName::Worker(w)) = n {
            match u32::from(*w).cmp(&k) {
                std::cmp::Ordering::Equal => gone = true,
                std::cmp::Ordering::Greater => *w -= 1,
                std::cmp::Ordering::Less => {}
            }
        }
    };
    rename(&mut f.by);
    rename(&mut f.while_holding);
    match &mut f.fault {
        Fault::Crash { node }
        | Fault::Pause { node }
        | Fault::Clog { node }
        | Fault::Clock { node, .. }
        | Fault::HandlerError { node } => rename(node),
        Fault::Partition { node, peer } => {
            rename(node);
            let mut p = Some(*peer);
            rename(&mut p);
            *peer = p.unwrap_or(*peer);
        }
        Fault::SlowLink { node, peer, .. } => {
            rename(node);
            rename(peer);
        }
        Fault::Latency { .. }
        | Fault::RedisErrors { .. }
        | Fault::AckLoss { .. }
        | Fault::DbErrors { .. }
        | Fault::LostReplies { .. }
        | Fault::Failover { .. } => {}
    }
    (!gone).then_some(f)
}

/// The numeric fields of an entry the fields pass makes smaller.
const FIELDS: [&str; 9] = [
    "duration_ms",
    "at_ms",
    "after_ms",
    "on_delivery",
    "latency_ms_max",
    "offset_ms",
    "share",
    "acks",
    "lag_ms",
];

/// The smallest value `field` is shrunk towards.
fn floor(field: &str) -> f64 {
    match field {
        "on_delivery" | "acks" => 1.0,
        _ => 0.0,
    }
}

/// The candidates below `now` (in magnitude, towards `floor`), smallest first: the floor,
/// then half-way. Integers stay integers; a repeated pass goes on halving.
fn smaller(now: f64, floor: f64) -> Vec<f64> {
    let sign = if now < 0.0 { -1.0 } else { 1.0 };
    let magnitude = now.abs();
    // (A share below 1% is as small as it need be: halving it on would never end.)
    if magnitude <= floor || (now.fract() != 0.0 && magnitude < floor + 0.01) {
        return Vec::new();
    }
    let half = floor + (magnitude - floor) / 2.0;
    let half = if now.fract() == 0.0 { half.floor() } else { half };
    let mut out = vec![floor * sign];
    if half > floor && half < magnitude {
        out.push(half * sign);
    }
    out
}

fn show(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn get(f: &ScheduledFault, field: &str) -> Option<f64> {
    let int = |v: Option<u64>| v.map(|v| v as f64);
    match (field, &f.fault) {
        ("duration_ms", _) => int(f.duration_ms),
        ("at_ms", _) => int(f.at_ms),
        ("after_ms", _) => int(f.after_ms),
        ("on_delivery", _) => f.on_delivery.map(f64::from),
        ("latency_ms_max", Fault::Latency { latency_ms_max } | Fault::SlowLink { latency_ms_max, .. }) => {
            Some(*latency_ms_max as f64)
        }
        ("offset_ms", Fault::Clock { offset_ms, .. }) => Some(*offset_ms as f64),
        (
            "share",
            Fault::RedisErrors { share } | Fault::DbErrors { share } | Fault::LostReplies { share, .. },
        ) => Some(*share),
        ("acks", Fault::AckLoss { acks }) => Some(f64::from(*acks)),
        ("lag_ms", Fault::Failover { lag_ms }) => Some(*lag_ms as f64),
        _ => None,
    }
}

fn set(f: &mut ScheduledFault, field: &str, v: f64) {
    match (field, &mut f.fault) {
        ("duration_ms", _) => f.duration_ms = Some(v as u64),
        ("at_ms", _) => f.at_ms = Some(v as u64),
        ("after_ms", _) => f.after_ms = Some(v as u64),
        ("on_delivery", _) => f.on_delivery = Some(v as u32),
        ("latency_ms_max", Fault::Latency { latency_ms_max } | Fault::SlowLink { latency_ms_max, .. }) => {
            *latency_ms_max = v as u64
        }
        ("offset_ms", Fault::Clock { offset_ms, .. }) => *offset_ms = v as i64,
        (
            "share",
            Fault::RedisErrors { share } | Fault::DbErrors { share } | Fault::LostReplies { share, .. },
        ) => *share = v,
        ("acks", Fault::AckLoss { acks }) => *acks = v as u32,
        ("lag_ms", Fault::Failover { lag_ms }) => *lag_ms = v as u64,
        _ => {}
    }
}

#[cfg(test)]
mod tests;
