//! One run: a seed and a config become a simulated world on a fresh thread and a fresh madsim
//! runtime, which runs a safety phase with faults, then a liveness phase (everything healed)
//! until every event is applied or the time limit passes; then the checkers judge it.
//!
//! [`world`] builds the nodes and carries out the fault verbs, [`control`] runs the phases,
//! [`verdict`] is what comes out. A panic inside the simulation is a crash verdict (its message
//! on stderr, as any panic's); the step limit, madsim's time limit and the real-time watchdog
//! are liveness verdicts that still judge the history recorded so far, and print nothing on
//! stderr: a limit is a verdict, not a crash.

pub mod control;
pub mod faults;
pub mod floor;
pub mod pool;
pub mod replay;
pub mod verdict;
pub mod world;

pub use verdict::{RunResult, Verdict};

use crate::check::{self, Checker, Severity, Violation};
use crate::fault::nemesis::Nemesis;
use crate::model::kafka::KafkaModel;
use crate::net::topology::NodeName;
use crate::node::worker::handler::{BuiltIn, Handler};
use crate::rng;
use crate::scenario::config::SimConfig;
use crate::trace::{now_us, Typed};
use crate::workload::WorkloadEvent;
use idempotency::clock::Clock;
use madsim::runtime::Runtime;
use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use world::{Stoppable, World, ABORTED, STEP_LIMIT};

/// Virtual time the runtime allows past the liveness phase's end, for the last work to land.
const TIME_LIMIT_SLACK_US: u64 = 120_000_000;

/// The first words of madsim's panic when a run passes its virtual time limit.
const TIME_LIMIT: &str = "time limit exceeded";

/// Installs (once per process) a panic hook that stays quiet for madsim's time-limit panic on
/// a run's own thread: that limit is a verdict (`time_limit`), not a crash, and madsim can only
/// say it by panicking. Every other panic goes to the hook that was installed before, so a
/// real crash still prints its message (and backtrace, as `RUST_BACKTRACE` asks).
fn quiet_limit_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let before = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            if !is_limit_panic(thread.name(), &panic_message(info.payload())) {
                before(info);
            }
        }));
    });
}

/// Whether a panic on `thread` with `message` is a run's time limit (kept quiet), not a crash.
fn is_limit_panic(thread: Option<&str>, message: &str) -> bool {
    thread.is_some_and(|n| n.starts_with(SEED_THREAD)) && message.starts_with(TIME_LIMIT)
}

/// The name of a run's thread begins with this (then the seed).
const SEED_THREAD: &str = "seed-";

/// What a user adds to a run: the handler every worker runs and checkers beside the built-in
/// ones. The default is the built-in handler and no more checkers: the built-in scenarios.
#[derive(Clone)]
pub struct Extensions {
    /// The business handler of every worker.
    pub handler: Arc<dyn Handler>,
    /// Checkers run after the built-in ones.
    pub checkers: Vec<Arc<dyn Checker>>,
}

impl Default for Extensions {
    fn default() -> Self {
        Extensions {
            handler: Arc::new(BuiltIn),
            checkers: Vec::new(),
        }
    }
}

/// Runs `seed` on a fresh thread with a fresh runtime and judges it, with the built-in handler
/// and checkers (see [`run_with`]).
pub fn run(seed: u64, config: &SimConfig) -> RunResult {
    run_with(seed, config, &Extensions::default())
}

/// Runs `seed` on a fresh thread with a fresh runtime, its workers running `ext`'s handler,
/// and judges it with the built-in checkers and `ext`'s. A run that takes longer than
/// `watchdog_s` real seconds is a liveness failure that still judges the history recorded so
/// far; its thread is told to stop at its next step.
///
/// # Panics
/// Inside a simulation (a `#[madsim::test]`), which cannot start threads: use
/// [`run_current`] there.
pub fn run_with(seed: u64, config: &SimConfig, ext: &Extensions) -> RunResult {
    run_keeping(seed, config, ext, |_| true)
}

/// [`run_with`], keeping the run's history (its trace and the database's effects) only when
/// `keep` says so of the judged result: a sweep keeps the seeds it reports. A history not kept
/// is dropped on the seed's own thread, where it was allocated (freeing it on the thread that
/// collects the results cost that thread about as much as judging), and the result comes
/// back without it. A run the watchdog stopped keeps its history whatever `keep` says.
pub(crate) fn run_keeping(
    seed: u64,
    config: &SimConfig,
    ext: &Extensions,
    keep: impl FnOnce(&RunResult) -> bool + Send + 'static,
) -> RunResult {
    assert!(
        madsim::runtime::Handle::try_current().is_err(),
        "sim: a run starts its own thread and runtime, which a madsim runtime cannot do; \
         inside a #[madsim::test] run the seed on the test's runtime with \
         Sim::run_on_current(seed).await (run::run_current)"
    );
    if let Some(why) = unreached_point(config, ext) {
        return crashed_before(seed, why);
    }
    let watchdog = Duration::from_secs(config.watchdog_s);
    // A swarm base runs the seed's draw; any other config runs as it is.
    let config = config.for_seed(seed);
    let world: WorldSlot = Arc::default();
    let (tx, rx) = std::sync::mpsc::channel();
    let world2 = world.clone();
    let ext = ext.clone();
    std::thread::Builder::new()
        .name(format!("{SEED_THREAD}{seed}"))
        .spawn(move || {
            let mut result = run_here(seed, config, ext, &world2);
            if !keep(&result) {
                // Freed here, on the thread that allocated them, before the thread ends.
                drop(std::mem::take(&mut result.events));
                drop(std::mem::take(&mut result.effects));
            }
            let _ = tx.send(result);
        })
        .expect("spawn the seed's thread");
    match rx.recv_timeout(watchdog) {
        Ok(result) => result,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            let stopped = limit_violation(
                "watchdog",
                format!("the run took more than {}s of real time", watchdog.as_secs()),
            );
            let s = world.lock().expect("world slot").take();
            let Some(s) = s else {
                return judged_nothing(seed, Verdict::Liveness(vec![stopped]), watchdog);
            };
            s.limits.abort.store(true, Ordering::Relaxed);
            let end_us = s.trace.last_t_us().unwrap_or(0);
            let redis_now_us = redis_clock_at(&s, end_us);
            judge(&s, seed, Some(stopped), end_us, redis_now_us, watchdog)
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            panic!("seed {seed}: the run's thread panicked outside the simulation")
        }
    }
}

/// Why `config` cannot run with `ext`'s handler, if it cannot: a `[[schedule]]` entry crashes
/// at a point of a name the handler does not list ([`Handler::points`]) and no built-in point
/// has, so it could never fire and the run would pass for the wrong reason.
fn unreached_point(config: &SimConfig, ext: &Extensions) -> Option<String> {
    let points = ext.handler.points();
    config
        .schedule
        .iter()
        .enumerate()
        .find_map(|(i, entry)| match &entry.point {
            Some(crate::fault::FaultPoint::Named(name)) if !points.contains(&name.as_str()) => {
                let built_in: Vec<&str> = crate::fault::FaultPoint::ALL
                    .iter()
                    .map(crate::fault::FaultPoint::name)
                    .collect();
                Some(format!(
                    "`schedule[{i}].point` = {name:?}: no such fault point; the built-in ones are {}, \
                 and the handler lists {:?} as its own (Handler::points)",
                    built_in.join(", "),
                    points
                ))
            }
            _ => None,
        })
}

/// A crash verdict for a run that could not start, with the reason.
fn crashed_before(seed: u64, why: String) -> RunResult {
    judged_nothing(seed, Verdict::Crash(why), Duration::ZERO)
}

/// Where a run's thread leaves its world, so the watchdog can judge a run that overran.
type WorldSlot = Arc<Mutex<Option<Arc<World>>>>;

/// The result of a run with no history: a watchdog that fired before the world was built, or
/// a run refused before it started.
fn judged_nothing(seed: u64, verdict: Verdict, wall: Duration) -> RunResult {
    RunResult {
        seed,
        events: Vec::new(),
        verdict,
        events_total: 0,
        produced: 0,
        applied: 0,
        duplicates: 0,
        faults: BTreeMap::new(),
        notes: Vec::new(),
        kafka: Default::default(),
        virtual_us: 0,
        wall,
        effects: BTreeMap::new(),
        drawn: Vec::new(),
        round_trips: Vec::new(),
        polls: 0,
    }
}

fn limit_violation(kind: &'static str, detail: String) -> Violation {
    Violation {
        kind,
        severity: Severity::Liveness,
        event_id: String::new(),
        detail,
        first_event: None,
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".into())
}

/// The Redis node's wall clock at virtual time `t_us`, read outside the runtime.
fn redis_clock_at(s: &World, t_us: u64) -> i64 {
    crate::node::clock::EPOCH_UNIX_US + t_us as i64 + s.clock(NodeName::Redis).offset_us()
}

// Never inlined: `sim bench` counts one seed's instructions as those inside this function
// (callgrind's `--toggle-collect=sim::run::run_here`), so it must keep its symbol.
#[inline(never)]
fn run_here(seed: u64, config: SimConfig, ext: Extensions, slot: &WorldSlot) -> RunResult {
    let started = Instant::now();
    // The runtime first: it seeds this thread's HashMap keys. (Its network is unused: the
    // nodes talk over the run's own transport, whose latencies come from the `net` stream.)
    let mut rt = Runtime::with_seed_and_config(seed, madsim::Config::default());
    // Past the liveness phase's end, plus time for the last work to land (checked: the
    // ranges keep it small, this keeps it honest).
    rt.set_time_limit(Duration::from_micros(
        config.liveness_end_us().saturating_add(TIME_LIMIT_SLACK_US),
    ));
    let _log = crate::trace::log::sim_logger();
    let s = Arc::new(World::new(seed, config, ext));
    *slot.lock().expect("world slot") = Some(s.clone());
    let end_us = Arc::new(AtomicU64::new(0));
    let redis_end_us = Arc::new(AtomicI64::new(0));
    let (s2, end2, redis_end2) = (s.clone(), end_us.clone(), redis_end_us.clone());
    let limits = s.limits.clone();
    quiet_limit_panics();
    let ran = std::panic::catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(Stoppable::new(live(s2, end2, redis_end2), limits))
    }));
    // What stopped the run early, if anything: a limit (the step limit and the watchdog stop
    // the main future; madsim's time limit panics, quietly: see `quiet_limit_panics`) or a
    // panic inside the simulation.
    let cut: Option<String> = match ran {
        Ok(Ok(())) => None,
        Ok(Err(why)) => Some(why),
        Err(payload) => Some(panic_message(&*payload)),
    };
    if cut.is_some() {
        // A limit or a panic stopped the run inside the runtime: end the nodes all the same,
        // so the world is freed (a second panic here changes nothing about the verdict).
        let s3 = s.clone();
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| rt.block_on(async move { s3.end().await })));
    }
    drop(rt);
    slot.lock().expect("world slot").take();
    // (After a watchdog stop the watchdog itself still holds the world while it judges.)
    assert!(
        Arc::strong_count(&s) == 1 || s.limits.abort.load(Ordering::Relaxed),
        "seed {seed}: a node outlived the run and still holds the world (memory grows per seed)"
    );
    let (stopped, end_us, redis_now_us) = match cut {
        None => (
            None,
            end_us.load(Ordering::Relaxed),
            redis_end_us.load(Ordering::Relaxed),
        ),
        Some(msg) => {
            let stopped = if msg.starts_with(STEP_LIMIT) {
                limit_violation("step_limit", msg)
            } else if msg.starts_with(ABORTED) {
                limit_violation("watchdog", msg)
            } else if msg.starts_with(TIME_LIMIT) {
                limit_violation("time_limit", msg)
            } else {
                return crashed(&s, seed, msg, started.elapsed());
            };
            let end_us = s.trace.last_t_us().unwrap_or(0);
            (Some(stopped), end_us, redis_clock_at(&s, end_us))
        }
    };
    judge(&s, seed, stopped, end_us, redis_now_us, started.elapsed())
}

/// The world's life on the current runtime: its nodes built, the phases supervised, then its
/// nodes ended; records the virtual time and the Redis clock at the end.
async fn live(s: Arc<World>, end_us: Arc<AtomicU64>, redis_end_us: Arc<AtomicI64>) {
    s.build();
    let nemesis = Nemesis::new(
        rng::stream(s.seed, "nemesis"),
        s.config.faults.clone(),
        s.config.workers,
        s.config.kafka.max_poll_interval_ms,
    )
    .with_points(s.ext.handler.points());
    control::supervise(s.clone(), nemesis).await;
    end_us.store(now_us(), Ordering::Relaxed);
    redis_end_us.store(s.clock(NodeName::Redis).now_unix_us(), Ordering::Relaxed);
    s.end().await;
}

/// Runs `seed` on the madsim runtime this future runs on (a `#[madsim::test]`'s), not on a
/// thread and runtime of its own, and judges it.
///
/// The run is deterministic for the pair of `seed` and the runtime's own seed (madsim orders
/// tasks ready at the same instant by it): on a runtime built with `seed` as its seed the
/// history is [`run_with`]'s, byte for byte. `#[madsim::test]` takes its seed from
/// `MADSIM_TEST_SEED` (by default the time of day), so set it to rerun a failure. The step
/// limit still stops the run; the watchdog and the runtime's time limit are the caller's, and
/// a panic inside is the caller's too. `wall` is left at zero (real time cannot be read
/// inside a simulation).
pub async fn run_current(seed: u64, config: &SimConfig, ext: &Extensions) -> RunResult {
    if let Some(why) = unreached_point(config, ext) {
        return crashed_before(seed, why);
    }
    let s = Arc::new(World::new(seed, config.for_seed(seed), ext.clone()));
    let end_us = Arc::new(AtomicU64::new(0));
    let redis_end_us = Arc::new(AtomicI64::new(0));
    let ran = Stoppable::new(
        live(s.clone(), end_us.clone(), redis_end_us.clone()),
        s.limits.clone(),
    )
    .await;
    let (stopped, end_us, redis_now_us) = match ran {
        Ok(()) => (
            None,
            end_us.load(Ordering::Relaxed),
            redis_end_us.load(Ordering::Relaxed),
        ),
        Err(msg) => {
            // The step limit stopped it: end the nodes all the same, then judge what happened.
            s.end().await;
            let end_us = s.trace.last_t_us().unwrap_or(0);
            (
                Some(limit_violation("step_limit", msg)),
                end_us,
                redis_clock_at(&s, end_us),
            )
        }
    };
    judge(&s, seed, stopped, end_us, redis_now_us, Duration::ZERO)
}

/// The verdict of a run whose simulation panicked: a harness bug, not a finding.
fn crashed(s: &World, seed: u64, msg: String, wall: Duration) -> RunResult {
    let mut result = judge(s, seed, None, s.trace.last_t_us().unwrap_or(0), 0, wall);
    result.verdict = Verdict::Crash(msg);
    result.notes.clear();
    result
}

/// The ids of the events of `workload` that were produced: a record of theirs is in the
/// broker's log. Judged from the log, not from the producer's acks: a lost ack leaves a written
/// record unacknowledged, and a run may end while the producer still waits for one. A record
/// is the event's when its value is the event's (copies differ only in key and headers; each
/// value carries its event id).
fn produced_events(workload: &[WorkloadEvent], kafka: &KafkaModel) -> Vec<String> {
    let in_log: BTreeSet<&[u8]> = kafka.records().map(|r| &r.value[..]).collect();
    workload
        .iter()
        .filter(|e| in_log.contains(&e.record.value[..]))
        .map(|e| e.event_id.clone())
        .collect()
}

/// Judges the history recorded so far and the models' state. `stopped` is the limit that cut
/// the run short, if one did: the history is judged all the same (correctness outranks
/// liveness), only the end-state checks are left out.
fn judge(
    s: &World,
    seed: u64,
    stopped: Option<Violation>,
    end_us: u64,
    redis_now_us: i64,
    wall: Duration,
) -> RunResult {
    // The run is over (or abandoned by the watchdog): its history is taken, not copied.
    let events_now = s.trace.take();
    let produced = produced_events(s.workload(), &s.kafka.model.lock().expect("kafka state"));
    // The run is over: the models are read where they are, not copied.
    let mut db_state = s.db.model.lock().expect("db state");
    let db = &*db_state;
    let records = check::final_records(&s.redis.state.lock().expect("redis state").model, redis_now_us);
    let params = check::Params {
        database: s.config.database,
        redis_persistence: s.config.redis_persistence,
        processing_ttl_s: s.config.processing_ttl_s,
        outage_windows_ms: s.config.outage_windows_ms.clone(),
    };
    let kafka = check::kafka::check(&events_now);
    let input = check::Input {
        kafka: &kafka,
        trace: &events_now,
        db,
        records: &records,
        redis_now_us,
        params: &params,
        produced: &produced,
        complete: stopped.is_none(),
    };
    let (notes, found): (Vec<Violation>, Vec<Violation>) = check::check_with(&input, &s.ext.checkers)
        .into_iter()
        .partition(|v| v.severity == Severity::Note);
    let violations: Vec<Violation> = stopped.into_iter().chain(found).collect();
    let verdict = if violations.is_empty() {
        Verdict::Pass
    } else if violations.iter().any(|v| v.severity == Severity::Correctness) {
        Verdict::Correctness(violations)
    } else {
        Verdict::Liveness(violations)
    };
    // The verdict is not written into the history it judged: the result carries it.
    let events = events_now;
    let virtual_us = end_us.max(events.last().map_or(0, |e| e.t_us));
    let mut faults = BTreeMap::new();
    for e in &events {
        if let Typed::Fault { fault, .. } = e.typed() {
            *faults.entry(fault.kind().to_owned()).or_insert(0) += 1;
        }
    }
    let applied = db.effects().len();
    let duplicates = db.effects().values().map(|v| v.len() - 1).sum();
    // Judged: the effects move into the result (the world is dropped after judging, or, when
    // the watchdog judged, abandoned).
    let effects = db_state.take_effects();
    RunResult {
        seed,
        verdict,
        events_total: s.workload().len(),
        produced: produced.len(),
        applied,
        duplicates,
        faults,
        notes,
        kafka: kafka.1,
        virtual_us,
        wall,
        events,
        effects,
        drawn: s
            .entries
            .lock()
            .expect("entries")
            .iter()
            .filter(|e| e.by == "nemesis")
            .map(|e| e.fault.clone())
            .collect(),
        round_trips: s.net.round_trips(),
        polls: s.limits.steps(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// madsim's time limit panics with the words the run reads as `time_limit` (a madsim
    /// upgrade that rewords it would otherwise turn the verdict into a crash), on the run's
    /// thread, where the hook keeps it quiet.
    #[test]
    fn madsims_time_limit_is_read_as_a_limit_and_kept_quiet() {
        quiet_limit_panics();
        let message = std::thread::Builder::new()
            .name(format!("{SEED_THREAD}0"))
            .spawn(|| {
                let mut rt = Runtime::with_seed_and_config(0, madsim::Config::default());
                rt.set_time_limit(Duration::from_secs(1));
                let ran = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    rt.block_on(async { madsim::time::sleep(Duration::from_secs(10)).await })
                }));
                panic_message(&*ran.expect_err("the time limit stops it"))
            })
            .unwrap()
            .join()
            .unwrap();
        assert!(message.starts_with(TIME_LIMIT), "{message}");
        assert!(is_limit_panic(Some("seed-0"), &message));
    }

    /// A run whose history `keep` declines comes back without its trace and effects, judged
    /// the same as the run that kept them (a sweep keeps only the seeds it reports).
    #[test]
    fn a_history_not_kept_is_dropped_and_the_judgement_is_the_same() {
        let config = SimConfig {
            events: 3,
            ..SimConfig::default()
        };
        let ext = Extensions::default();
        let kept = run_keeping(1, &config, &ext, |_| true);
        let dropped = run_keeping(1, &config, &ext, |r| r.events.is_empty());
        assert!(!kept.events.is_empty() && !kept.effects.is_empty());
        assert!(dropped.events.is_empty() && dropped.effects.is_empty());
        assert_eq!(
            (kept.verdict.name(), kept.applied, &kept.faults, kept.virtual_us),
            (
                dropped.verdict.name(),
                dropped.applied,
                &dropped.faults,
                dropped.virtual_us
            )
        );
    }

    /// An event is produced when a record of it is in the log, whatever its key and headers
    /// (a copy) and whatever the producer heard back; an event with no record is not.
    #[test]
    fn produced_means_a_record_in_the_log() {
        let config = SimConfig {
            events: 3,
            ..SimConfig::default()
        };
        let workload = crate::workload::workload(&config.workload(), &mut rng::stream(1, "workload"));
        let mut kafka = KafkaModel::new(3);
        let produce = |kafka: &mut KafkaModel, sequence: u64, record: crate::model::kafka::Record| {
            let req = crate::model::kafka::KafkaRequest::ProduceSeq {
                producer: "producer".into(),
                sequence,
                record,
            };
            // The reply is the ack, which the producer may never get: it does not matter here.
            let _ = kafka.handle(req, 0);
        };
        assert!(produced_events(&workload, &kafka).is_empty());
        let mut copy = workload[2].record.clone();
        copy.key = format!("{}/1/7", workload[2].event_id);
        copy.headers = std::sync::Arc::new([]);
        produce(&mut kafka, 5, copy);
        produce(&mut kafka, 0, workload[0].record.clone());
        assert_eq!(
            produced_events(&workload, &kafka),
            vec![workload[0].event_id.clone(), workload[2].event_id.clone()]
        );
    }

    /// Only the time limit on a run's thread is kept quiet: a crash (any other message), or
    /// the same words on another thread, goes to the hook installed before.
    #[test]
    fn every_other_panic_is_reported() {
        assert!(!is_limit_panic(
            Some("seed-3"),
            "self-test panic in the producer node"
        ));
        assert!(!is_limit_panic(Some("main"), "time limit exceeded: 1s"));
        assert!(!is_limit_panic(None, "time limit exceeded: 1s"));
    }
}
