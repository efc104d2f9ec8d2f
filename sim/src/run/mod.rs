//! One run: a seed and a config become a simulated world on a fresh thread and a fresh madsim
//! runtime, which runs a safety phase with faults, then a liveness phase (everything healed)
//! until every event is applied or the time limit passes.
//!
//! Nodes (each a madsim node with its own IP, started from a restartable init closure):
//! `redis` 10.0.0.1, `kafka` 10.0.0.2, `db` 10.0.0.3, `producer` 10.0.0.4, `worker-N`
//! 10.0.1.N. Their state that must outlive a crash (the broker's log, the database, Redis's
//! disk, a host's clock) lives here in [`Shared`], one per run: there is no global state.

pub mod faults;

use crate::check::{self, Severity, Violation};
use crate::fault::nemesis::Nemesis;
use crate::fault::schedule::Trigger;
use crate::fault::{FaultState, Heal};
use crate::fields;
use crate::model::db::DbModel;
use crate::model::kafka::KafkaModel;
use crate::net::rpc::PORT;
use crate::node::clock::NodeClock;
use crate::node::producer;
use crate::node::redis::RedisState;
use crate::node::worker;
use crate::rng;
use crate::scenario::config::SimConfig;
use crate::trace::{self, now_us, Event, Trace};
use idempotency::clock::Clock;
use madsim::runtime::{Handle, Runtime};
use madsim::task::NodeId;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// A worker's state that outlives its incarnations.
pub struct WorkerState {
    incarnations: AtomicU64,
    /// Draws its handler durations.
    pub rng: Mutex<ChaCha8Rng>,
}

impl WorkerState {
    /// Counts a (re)start; returns the incarnation number, from 1.
    pub fn start(&self) -> u64 {
        self.incarnations.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// Everything the nodes of one run share.
pub struct Shared {
    /// The run's seed.
    pub seed: u64,
    /// The run's config.
    pub config: SimConfig,
    /// The history.
    pub trace: Trace,
    /// The Redis node's data (live and on disk) and injected errors.
    pub redis: Mutex<RedisState>,
    /// The database: the ground truth of effects.
    pub db: Mutex<DbModel>,
    /// The broker's log and offsets.
    pub kafka: Mutex<KafkaModel>,
    /// The events to publish.
    pub workload: Vec<crate::workload::WorkloadEvent>,
    /// Each event's place in the workload, by event id (looked up on every delivery).
    event_indexes: BTreeMap<String, u32>,
    /// How many of them the producer has published.
    pub producer_next: Mutex<usize>,
    /// Faults in force, node statuses, the heal agenda.
    pub faults: Mutex<FaultState>,
    /// How often each event has been delivered (by anyone), for `on_delivery` triggers.
    pub deliveries: Mutex<BTreeMap<String, u32>>,
    /// Scheduled entries that fired (each fires once).
    pub fired: Mutex<BTreeSet<usize>>,
    clocks: BTreeMap<String, NodeClock>,
    workers: BTreeMap<String, WorkerState>,
    names: BTreeMap<IpAddr, String>,
    node_ids: Mutex<BTreeMap<String, NodeId>>,
    steps: AtomicU64,
    /// Set by the watchdog: the run's next step ends it.
    abort: std::sync::atomic::AtomicBool,
    /// Reply tags for every RPC client of the run (see [`crate::net::rpc::Client::bind`]).
    pub reply_tags: Arc<AtomicU64>,
}

fn ip(node: &str) -> IpAddr {
    let [a, b, c, d] = match node {
        "redis" => [10, 0, 0, 1],
        "kafka" => [10, 0, 0, 2],
        "db" => [10, 0, 0, 3],
        "producer" => [10, 0, 0, 4],
        w => {
            let n: u8 = w
                .strip_prefix("worker-")
                .and_then(|n| n.parse().ok())
                .expect("a worker's name");
            [10, 0, 1, n]
        }
    };
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

impl Shared {
    fn new(seed: u64, config: SimConfig) -> Self {
        let workers: Vec<String> = (1..=config.workers).map(|i| format!("worker-{i}")).collect();
        let mut nodes: Vec<String> = ["redis", "kafka", "db", "producer"].map(String::from).to_vec();
        nodes.extend(workers.iter().cloned());
        let workload = crate::workload::workload(&config, &mut rng::stream(seed, "workload"));
        Shared {
            seed,
            redis: Mutex::new(RedisState::new(rng::stream(seed, "redis"))),
            db: Mutex::new(DbModel::new(config.database)),
            kafka: Mutex::new(KafkaModel::with_config(config.partitions, &config.kafka)),
            event_indexes: workload
                .iter()
                .enumerate()
                .map(|(i, e)| (e.event_id.clone(), i as u32))
                .collect(),
            workload,
            producer_next: Mutex::new(0),
            clocks: nodes.iter().map(|n| (n.clone(), NodeClock::default())).collect(),
            workers: workers
                .iter()
                .map(|n| {
                    let state = WorkerState {
                        incarnations: AtomicU64::new(0),
                        rng: Mutex::new(rng::stream(seed, n)),
                    };
                    (n.clone(), state)
                })
                .collect(),
            names: nodes.iter().map(|n| (ip(n), n.clone())).collect(),
            faults: Mutex::new(FaultState::new(&nodes)),
            deliveries: Mutex::default(),
            fired: Mutex::default(),
            node_ids: Mutex::default(),
            steps: AtomicU64::new(0),
            abort: Default::default(),
            reply_tags: Arc::default(),
            trace: Trace::default(),
            config,
        }
    }

    /// `node`'s wall clock.
    pub fn clock(&self, node: &str) -> NodeClock {
        self.clocks.get(node).expect("a known node").clone()
    }

    /// A worker's lasting state.
    pub fn worker(&self, name: &str) -> &WorkerState {
        self.workers.get(name).expect("a known worker")
    }

    fn addr(node: &str) -> SocketAddr {
        SocketAddr::new(ip(node), PORT)
    }

    /// The Redis node's address.
    pub fn redis_addr(&self) -> SocketAddr {
        Self::addr("redis")
    }

    /// The database node's address.
    pub fn db_addr(&self) -> SocketAddr {
        Self::addr("db")
    }

    /// The broker's address.
    pub fn kafka_addr(&self) -> SocketAddr {
        Self::addr("kafka")
    }

    /// The name of the node at `addr`.
    pub fn node_of(&self, addr: SocketAddr) -> String {
        self.names
            .get(&addr.ip())
            .cloned()
            .unwrap_or_else(|| addr.ip().to_string())
    }

    /// The madsim id of `node`.
    pub fn node_id(&self, node: &str) -> NodeId {
        *self
            .node_ids
            .lock()
            .expect("node ids")
            .get(node)
            .expect("a known node")
    }

    /// Every node's name.
    pub fn node_names(&self) -> Vec<String> {
        self.names.values().cloned().collect()
    }

    /// The workload index of `event_id`.
    pub fn event_index(&self, event_id: &str) -> Option<u32> {
        self.event_indexes.get(event_id).copied()
    }

    /// Fires the scheduled entries whose trigger `matches` (each at most once), on behalf of
    /// `worker`. Returns how many fired.
    pub fn fire(&self, worker: &str, matches: impl Fn(&Trigger) -> bool) -> usize {
        let mut fired = 0;
        for (i, entry) in self.config.schedule.iter().enumerate() {
            let Ok(trigger) = entry.trigger() else { continue };
            if !matches(&trigger) || !self.fired.lock().expect("fired").insert(i) {
                continue;
            }
            if crate::run::faults::inject(self, entry.fault(Some(worker)), entry.lasts_us(), "schedule") {
                fired += 1;
            }
        }
        fired
    }

    fn converged(&self) -> bool {
        let produced = *self.producer_next.lock().expect("producer progress")
            == self.workload.len() * self.config.copies.max(1) as usize;
        let applied = {
            let db = self.db.lock().expect("db state");
            self.workload.iter().all(|e| db.applied_count(&e.event_id) > 0)
        };
        produced && applied && self.kafka.lock().expect("kafka state").drained()
    }
}

/// Counts polls of a node's main task and stops the run past `steps_max` (a livelock guard).
struct Counted<F> {
    inner: Pin<Box<F>>,
    s: Arc<Shared>,
}

impl<F: Future> Future for Counted<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let steps = self.s.steps.fetch_add(1, Ordering::Relaxed) + 1;
        if steps > self.s.config.steps_max {
            panic!("{STEP_LIMIT}: {steps} polls");
        }
        if self.s.abort.load(Ordering::Relaxed) {
            panic!("{ABORTED} after {steps} polls");
        }
        self.inner.as_mut().poll(cx)
    }
}

const STEP_LIMIT: &str = "step limit exceeded";
const ABORTED: &str = "stopped by the watchdog";

fn counted<F: Future>(s: &Arc<Shared>, f: F) -> Counted<F> {
    Counted {
        inner: Box::pin(f),
        s: s.clone(),
    }
}

/// How a run ended.
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

    /// A one-word name.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Correctness(_) => "correctness",
            Verdict::Liveness(_) => "liveness",
            Verdict::Crash(_) => "crash",
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
    /// Events the producer published.
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
}

impl RunResult {
    /// The run's fingerprint (SHA-256 of the canonical trace).
    pub fn fingerprint(&self) -> String {
        trace::fingerprint(&self.events)
    }
}

/// Runs `seed` on a fresh thread with a fresh runtime and judges it. A run that takes longer
/// than `watchdog_s` real seconds is a liveness failure that still judges the history recorded
/// so far; its thread is told to stop at its next step.
pub fn run(seed: u64, config: &SimConfig) -> RunResult {
    let watchdog = Duration::from_secs(config.watchdog_s);
    let config = config.clone();
    let world: WorldSlot = Arc::default();
    let (tx, rx) = std::sync::mpsc::channel();
    let world2 = world.clone();
    std::thread::Builder::new()
        .name(format!("seed-{seed}"))
        .spawn(move || {
            let _ = tx.send(run_here(seed, config, &world2));
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
                return judged_nothing(seed, stopped, watchdog);
            };
            s.abort.store(true, Ordering::Relaxed);
            let end_us = s.trace.events().last().map_or(0, |e| e.t_us);
            let redis_now_us = redis_clock_at(&s, end_us);
            judge(&s, seed, Some(stopped), end_us, redis_now_us, watchdog)
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            panic!("seed {seed}: the run's thread panicked outside the simulation")
        }
    }
}

/// Where a run's thread leaves its world, so the watchdog can judge a run that overran.
type WorldSlot = Arc<Mutex<Option<Arc<Shared>>>>;

/// A watchdog verdict for a run that had not even built its world.
fn judged_nothing(seed: u64, stopped: Violation, wall: Duration) -> RunResult {
    RunResult {
        seed,
        events: Vec::new(),
        verdict: Verdict::Liveness(vec![stopped]),
        events_total: 0,
        produced: 0,
        applied: 0,
        duplicates: 0,
        faults: BTreeMap::new(),
        notes: Vec::new(),
        kafka: Default::default(),
        virtual_us: 0,
        wall,
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
fn redis_clock_at(s: &Shared, t_us: u64) -> i64 {
    crate::node::clock::EPOCH_UNIX_US + t_us as i64 + s.clock("redis").offset_us()
}

fn run_here(seed: u64, config: SimConfig, slot: &WorldSlot) -> RunResult {
    let started = Instant::now();
    let mut net = madsim::Config::default();
    net.net.send_latency = Duration::from_millis(config.latency_ms_min)
        ..Duration::from_millis(config.latency_ms_max) + Duration::from_nanos(1);
    // The runtime first: it seeds this thread's HashMap keys.
    let mut rt = Runtime::with_seed_and_config(seed, net);
    // Past the liveness phase's end, plus time for the last work to land (checked: the
    // ranges keep it small, this keeps it honest).
    rt.set_time_limit(Duration::from_micros(
        config.liveness_end_us().saturating_add(120_000_000),
    ));
    let _log = crate::trace::log::sim_logger();
    let s = Arc::new(Shared::new(seed, config));
    *slot.lock().expect("world slot") = Some(s.clone());
    let end_us = Arc::new(AtomicU64::new(0));
    let redis_end_us = Arc::new(AtomicI64::new(0));
    let (s2, end2, redis_end2) = (s.clone(), end_us.clone(), redis_end_us.clone());
    let ran = std::panic::catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(async move {
            simulate(s2.clone()).await;
            end2.store(now_us(), Ordering::Relaxed);
            redis_end2.store(s2.clock("redis").now_unix_us(), Ordering::Relaxed);
            end_world(&s2).await;
        })
    }));
    if ran.is_err() {
        // A limit or a panic stopped the run inside the runtime: end the nodes all the same,
        // so the world is freed (a second panic here changes nothing about the verdict).
        let s3 = s.clone();
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| {
            rt.block_on(async move { end_world(&s3).await })
        }));
    }
    drop(rt);
    slot.lock().expect("world slot").take();
    // (After a watchdog stop the watchdog itself still holds the world while it judges.)
    debug_assert!(
        Arc::strong_count(&s) == 1 || s.abort.load(Ordering::Relaxed),
        "seed {seed}: a node outlived the run and still holds the world (memory grows per seed)"
    );
    let (stopped, end_us, redis_now_us) = match ran {
        Ok(()) => (
            None,
            end_us.load(Ordering::Relaxed),
            redis_end_us.load(Ordering::Relaxed),
        ),
        Err(payload) => {
            let msg = panic_message(&*payload);
            let stopped = if msg.starts_with(STEP_LIMIT) {
                limit_violation("step_limit", msg)
            } else if msg.starts_with(ABORTED) {
                limit_violation("watchdog", msg)
            } else if msg.contains("time limit exceeded") {
                limit_violation("time_limit", msg)
            } else {
                return crashed(&s, seed, msg, started.elapsed());
            };
            let end_us = s.trace.events().last().map_or(0, |e| e.t_us);
            (Some(stopped), end_us, redis_clock_at(&s, end_us))
        }
    };
    judge(&s, seed, stopped, end_us, redis_now_us, started.elapsed())
}

/// The verdict of a run whose simulation panicked: a harness bug, not a finding.
fn crashed(s: &Shared, seed: u64, msg: String, wall: Duration) -> RunResult {
    let mut result = judge(
        s,
        seed,
        None,
        s.trace.events().last().map_or(0, |e| e.t_us),
        0,
        wall,
    );
    result.verdict = Verdict::Crash(msg);
    result.notes.clear();
    if let Some(last) = result.events.last_mut() {
        last.fields = fields! {
            "verdict" => result.verdict.name(),
            "violations" => Vec::<String>::new(),
            "notes" => Vec::<String>::new(),
        };
    }
    result
}

/// Judges the history recorded so far and the models' state. `stopped` is the limit that cut
/// the run short, if one did: the history is judged all the same (correctness outranks
/// liveness), only the end-state checks are left out.
fn judge(
    s: &Shared,
    seed: u64,
    stopped: Option<Violation>,
    end_us: u64,
    redis_now_us: i64,
    wall: Duration,
) -> RunResult {
    let events_now = s.trace.events();
    let copies = s.config.copies.max(1) as usize;
    let produced_records = *s.producer_next.lock().expect("producer progress");
    let all: Vec<String> = s.workload.iter().map(|e| e.event_id.clone()).collect();
    let db = s.db.lock().expect("db state").clone();
    let redis = s.redis.lock().expect("redis state").model.clone();
    let input = check::Input {
        trace: &events_now,
        db: &db,
        redis: &redis,
        redis_now_us,
        config: &s.config,
        produced: &all,
        complete: stopped.is_none(),
    };
    let (notes, found): (Vec<Violation>, Vec<Violation>) = check::check(&input)
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
    let mut events = events_now;
    let virtual_us = end_us.max(events.last().map_or(0, |e| e.t_us));
    events.push(Event {
        t_us: virtual_us,
        node: "checker".into(),
        kind: "verdict",
        fields: fields! {
            "verdict" => verdict.name(),
            "violations" => verdict.violations().iter().map(|v| v.to_string()).collect::<Vec<_>>(),
            "notes" => notes.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
        },
    });
    let mut faults = BTreeMap::new();
    for e in events.iter().filter(|e| e.kind == "fault") {
        *faults
            .entry(e.str("fault").unwrap_or("?").to_owned())
            .or_insert(0) += 1;
    }
    RunResult {
        seed,
        verdict,
        events_total: all.len(),
        produced: produced_records.div_ceil(copies),
        applied: db.effects().len(),
        duplicates: db.effects().values().map(|v| v.len() - 1).sum(),
        faults,
        notes,
        kafka: check::kafka::check(&events).1,
        virtual_us,
        wall,
        events,
    }
}

/// A node's main task, made anew at every (re)start.
type NodeMain = Box<dyn Fn(Arc<Shared>) -> Pin<Box<dyn Future<Output = ()>>> + Send + Sync>;

async fn simulate(s: Arc<Shared>) {
    let h = Handle::current();
    let build = |name: &str, node: NodeMain| {
        let s2 = s.clone();
        let handle = h
            .create_node()
            .name(name)
            .ip(ip(name))
            .init(move || counted(&s2, node(s2.clone())))
            .build();
        s.node_ids
            .lock()
            .expect("node ids")
            .insert(name.to_owned(), handle.id());
    };
    build("redis", Box::new(|s| Box::pin(crate::node::redis::run(s))));
    build("kafka", Box::new(|s| Box::pin(crate::node::kafka::serve(s))));
    build("db", Box::new(|s| Box::pin(crate::node::db::serve(s))));
    build("producer", Box::new(|s| Box::pin(producer::run(s))));
    let workers: Vec<String> = (1..=s.config.workers).map(|i| format!("worker-{i}")).collect();
    for w in &workers {
        let name = w.clone();
        build(w, Box::new(move |s| Box::pin(worker::run(s, name.clone()))));
    }
    let nemesis = Nemesis::new(
        rng::stream(s.seed, "nemesis"),
        s.config.faults.clone(),
        workers,
        s.config.kafka.max_poll_interval_ms,
    );
    control(s, nemesis).await
}

/// Ends every node so that madsim drops their tasks (and with them the world they hold):
/// a dropped runtime keeps its still-pending tasks alive, which leaked about 2 MB per seed.
/// A killed node's tasks are woken and dropped at their next poll, hence the short sleep.
async fn end_world(s: &Shared) {
    let h = Handle::current();
    let ids: Vec<NodeId> = s.node_ids.lock().expect("node ids").values().copied().collect();
    for id in ids {
        h.kill(id);
    }
    madsim::time::sleep(Duration::from_millis(1)).await;
}

/// The supervisor: random faults and scheduled ones during the safety phase, heals when due,
/// then the liveness phase until every event is applied (plus a moment for late work).
/// Whether it converged or ran out of time, the checkers tell from the database's record.
async fn control(s: Arc<Shared>, mut nemesis: Nemesis) {
    let safety_end = s.config.safety_end_us();
    let liveness_end = s.config.liveness_end_us();
    let timed: Vec<(u64, usize)> = s
        .config
        .schedule
        .iter()
        .enumerate()
        .filter_map(|(i, e)| e.at_us().map(|t| (t, i)))
        .collect();
    let mut safety = true;
    let mut converged_at: Option<u64> = None;
    loop {
        let now = now_us();
        let due: Vec<Heal> = s.faults.lock().expect("fault state").due_heals(now);
        for h in due {
            crate::run::faults::heal(&s, h);
        }
        for &(at, i) in &timed {
            if at <= now && s.fired.lock().expect("fired").insert(i) {
                let entry = &s.config.schedule[i];
                crate::run::faults::inject(&s, entry.fault(None), entry.lasts_us(), "schedule");
            }
        }
        if safety {
            if now >= safety_end {
                crate::run::faults::heal_everything(&s);
                safety = false;
            } else {
                let status = s.faults.lock().expect("fault state").status.clone();
                if let Some((fault, lasts)) = nemesis.due_fault(now, &status) {
                    crate::run::faults::inject(&s, fault, lasts, "nemesis");
                }
            }
        } else if let Some(at) = converged_at {
            // Let in-flight work land, so late duplicates are seen too.
            if now >= at + 2_000_000 {
                return;
            }
        } else if s.converged() {
            converged_at = Some(now);
        } else if now >= liveness_end {
            return;
        }
        // In the safety phase wake for what is scheduled (at least every 10 s); in the
        // liveness phase check progress every 100 ms.
        let mut next = if safety {
            (now + 10_000_000).min(nemesis.next_fault_us()).min(safety_end)
        } else {
            now + 100_000
        };
        {
            let mut state = s.faults.lock().expect("fault state");
            state.planned();
            if let Some(h) = state.next_heal_us() {
                next = next.min(h);
            }
        }
        if let Some(&(at, _)) = timed.iter().filter(|(at, _)| *at > now).min() {
            next = next.min(at);
        }
        // Sleep until then, or until a worker schedules an earlier heal.
        crate::run::faults::nap(&s, next.max(now + 1_000)).await;
    }
}
