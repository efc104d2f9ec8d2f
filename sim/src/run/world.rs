//! The world of one run: the nodes' lasting states, the madsim nodes that serve them, the fault
//! verbs carried out on madsim, and what the nodes report.
//!
//! Nodes (each a madsim node with its own IP, started from a restartable init closure; see
//! [`crate::net::topology`]) get a [`NodeCtx`] and their lasting state, never the world. The
//! world keeps a handle on each lasting state, to carry out the faults a node does to itself,
//! and to read the models at the end for the checkers.

use super::faults::{FaultState, NodeStatus};
use super::Extensions;
use crate::fault::schedule::{ScheduledFault, Trigger};
use crate::fault::{Control, Fault, FaultPoint, NoFaults, NodeFaults, Progress, Standing, Verbs};
use crate::model::db::DbModel;
use crate::model::kafka::KafkaModel;
use crate::net::topology::NodeName;
use crate::net::transport::{LinkLatency, Network, Rules};
use crate::node::clock::NodeClock;
use crate::node::db::DbNode;
use crate::node::kafka::KafkaNode;
use crate::node::producer::{ProducerConfig, ProducerNode};
use crate::node::redis::{RedisConfig, RedisNode, RedisState};
use crate::node::worker::{KeyMemo, WorkerConfig, WorkerNode};
use crate::node::NodeCtx;
use crate::rng;
use crate::scenario::config::SimConfig;
use crate::trace::{now_us, Trace, Typed};
use crate::workload::WorkloadEvent;
use madsim::runtime::Handle;
use madsim::task::NodeId;
use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// One entry of the run's fault list: a scenario's or the nemesis's.
pub(crate) struct Entry {
    pub(crate) fault: ScheduledFault,
    /// Who asked: `schedule` or `nemesis`.
    pub(crate) by: &'static str,
    pub(crate) fired: bool,
    /// For a `point` trigger with `after_ms`: the supervisor has passed that time.
    pub(crate) armed: bool,
}

impl Entry {
    /// Whether a worker can fire it now (an armed entry that is not timed and has not fired):
    /// the entries a worker's trigger looks through.
    pub(crate) fn fireable(&self) -> bool {
        !self.fired && self.armed && self.fault.at_ms.is_none()
    }
}

/// How far the run has come, as the nodes report it.
#[derive(Default)]
struct Reported {
    published: usize,
    applied: usize,
    drained: bool,
    /// The supervisor, waiting in the liveness phase for the run to converge.
    waiting: Option<std::task::Waker>,
}

/// The run's step limit and the watchdog's stop, read at every poll of a node's task.
///
/// A limit stops the run without a panic: a panic inside a madsim task is printed to stderr
/// (by the panic hook, and by madsim itself, which names the task), and a limit is a verdict,
/// not a crash. The node's task stops polling its work, records why and wakes the run's main
/// future ([`Stoppable`]), which then ends.
#[derive(Default)]
pub(crate) struct Limits {
    steps: AtomicU64,
    steps_max: u64,
    /// Set by the watchdog: the run's next step ends it.
    pub(crate) abort: AtomicBool,
    /// Why the run was stopped (the first limit met), and the main future to wake then.
    stop: Mutex<Stop>,
}

#[derive(Default)]
struct Stop {
    why: Option<String>,
    main: Option<Waker>,
}

impl Limits {
    /// The node tasks' polls so far.
    pub(crate) fn steps(&self) -> u64 {
        self.steps.load(Ordering::Relaxed)
    }

    /// Stops the run for `why` (the first reason is kept) and wakes its main future.
    fn stop(&self, why: impl FnOnce() -> String) {
        let mut stop = self.stop.lock().expect("limits");
        if stop.why.is_none() {
            stop.why = Some(why());
            if let Some(main) = stop.main.take() {
                main.wake();
            }
        }
    }
}

/// How long the end of a run waits for killed nodes' tasks to be dropped.
const END_GRACE: Duration = Duration::from_millis(1);

/// The first words of a step-limit stop.
pub(crate) const STEP_LIMIT: &str = "step limit exceeded";
/// The first words of a watchdog stop.
pub(crate) const ABORTED: &str = "stopped by the watchdog";

/// Everything of one run.
pub struct World {
    /// The run's seed.
    pub seed: u64,
    /// The run's config.
    pub config: SimConfig,
    /// The history.
    pub trace: Trace,
    pub(crate) redis: Arc<RedisNode>,
    pub(crate) kafka: Arc<KafkaNode>,
    pub(crate) db: Arc<DbNode>,
    pub(crate) producer: Arc<ProducerNode>,
    workers: BTreeMap<NodeName, Arc<WorkerNode>>,
    clocks: BTreeMap<NodeName, NodeClock>,
    node_ids: Mutex<BTreeMap<NodeName, NodeId>>,
    /// What is in force.
    pub(crate) faults: Mutex<FaultState>,
    /// The scenario's entries, then the nemesis's as it draws them.
    pub(crate) entries: Mutex<Vec<Entry>>,
    /// How many of `entries` are [`Entry::fireable`], kept under the entries' lock: with none
    /// (most of a run), a worker's fault point, delivery or hold looks at no entry.
    pub(crate) fireable: AtomicUsize,
    /// How often each event has been delivered (by anyone), for `on_delivery` triggers.
    deliveries: Mutex<BTreeMap<String, u32>>,
    /// Each event's place in the workload, by event id.
    /// Built the first time an entry names an event (most runs never do: no seed pays for it).
    event_indexes: std::sync::OnceLock<BTreeMap<String, u32>>,
    reported: Mutex<Reported>,
    pub(crate) limits: Arc<Limits>,
    /// The run's network: its rules (the network faults) and the round trips counted.
    pub(crate) net: Arc<Network>,
    /// The user's additions: the workers' handler, more checkers.
    pub(crate) ext: Extensions,
}

impl World {
    /// The world of `seed` under `config`, before any node runs.
    pub(crate) fn new(seed: u64, config: SimConfig, ext: Extensions) -> Self {
        let nodes = NodeName::all(config.workers);
        let workload = Arc::new(crate::workload::workload(
            &config.workload(),
            &mut rng::stream(seed, "workload"),
        ));
        // About 17 trace events per workload event in the default scenario.
        let trace = Trace::with_capacity(16 * config.events as usize + 256);
        let clocks: BTreeMap<NodeName, NodeClock> = nodes
            .iter()
            .map(|n| (*n, NodeClock::new(trace.clock())))
            .collect();
        // The trace's first line says what made it: the seed and every knob. Not the
        // description: it is prose, and rewording it must not change a run's fingerprint.
        let mut knobs = serde_json::to_value(&config).expect("a config serializes");
        if let Some(m) = knobs.as_object_mut() {
            m.remove("description");
        }
        trace.emit_as(
            crate::trace::Label::fixed("sim"),
            Typed::Config { seed, config: knobs },
        );
        let worker_config = worker_config(&config);
        let entries: Vec<Entry> = config
            .schedule
            .iter()
            .map(|f| Entry {
                fault: f.clone(),
                by: "schedule",
                fired: false,
                armed: f.after_ms.is_none(),
            })
            .collect();
        World {
            seed,
            redis: Arc::new(RedisNode {
                state: Mutex::new({
                    let mut st = RedisState::new(rng::stream(seed, "redis"));
                    st.keep_writes_for(failover_lag_ms_max(&config).saturating_mul(1000));
                    st
                }),
                clock: clocks[&NodeName::Redis].clone(),
                config: RedisConfig {
                    persistence: config.redis_persistence,
                    ttl_probe_ms: config.ttl_probe_ms,
                },
            }),
            kafka: Arc::new(KafkaNode::new(KafkaModel::with_config(
                config.partitions,
                &config.kafka,
            ))),
            db: Arc::new(DbNode::new(DbModel::new(config.database))),
            producer: Arc::new(ProducerNode {
                workload: workload.clone(),
                next: Mutex::new(0),
                config: ProducerConfig {
                    copies: config.copies.max(1) as usize,
                    copy_gap_ms: config.copy_gap_ms,
                    copy_headers: config.copy_headers.clone(),
                    copy_partitions: config.copy_partitions.clone(),
                    partitions: config.partitions,
                    call_timeout_ms: config.call_timeout_ms,
                    panic_at_ms: config.panic_at_ms,
                },
            }),
            workers: {
                let keys = Arc::new(KeyMemo::default());
                NodeName::workers(config.workers)
                    .map(|w| {
                        let rng = rng::stream(seed, &w.to_string());
                        let NodeName::Worker(n) = w else {
                            unreachable!("workers() names workers")
                        };
                        let worker_config = WorkerConfig {
                            protocol: config.protocol_of(u32::from(n)),
                            ..worker_config.clone()
                        };
                        let node = WorkerNode::new(rng, worker_config, keys.clone(), ext.handler.clone());
                        (w, Arc::new(node))
                    })
                    .collect()
            },
            clocks,
            node_ids: Mutex::default(),
            faults: Mutex::new(FaultState::new(&nodes, trace.clone())),
            fireable: AtomicUsize::new(entries.iter().filter(|e| e.fireable()).count()),
            entries: Mutex::new(entries),
            deliveries: Mutex::default(),
            event_indexes: std::sync::OnceLock::new(),
            reported: Mutex::new(Reported {
                drained: true,
                ..Reported::default()
            }),
            limits: Arc::new(Limits {
                steps_max: config.steps_max,
                ..Limits::default()
            }),
            net: Arc::new(Network::new(
                Rules {
                    links: config.link_latency.clone(),
                    ..Rules::open((config.latency_ms_min * 1000, config.latency_ms_max * 1000))
                },
                rng::stream(seed, "net"),
            )),
            trace,
            config,
            ext,
        }
    }

    /// The events to publish.
    pub(crate) fn workload(&self) -> &[WorkloadEvent] {
        &self.producer.workload
    }

    /// `node`'s wall clock.
    pub(crate) fn clock(&self, node: NodeName) -> &NodeClock {
        self.clocks.get(&node).expect("a node of the run")
    }

    fn node_id(&self, node: NodeName) -> NodeId {
        *self
            .node_ids
            .lock()
            .expect("node ids")
            .get(&node)
            .expect("a node of the run")
    }

    /// Creates every node on the current runtime; each starts at once.
    pub(crate) fn build(self: &Arc<Self>) {
        let h = Handle::current();
        for name in NodeName::all(self.config.workers) {
            let ctx = NodeCtx {
                name,
                clock: self.clock(name).clone(),
                trace: self.trace.clone(),
                control: self.clone(),
                net: self.net.clone(),
            };
            let main = self.main_of(name);
            let limits = self.limits.clone();
            let handle = h
                .create_node()
                .name(name.to_string())
                .ip(name.ip())
                .init(move || Counted {
                    inner: main(ctx.clone()),
                    limits: limits.clone(),
                })
                .build();
            self.node_ids.lock().expect("node ids").insert(name, handle.id());
        }
    }

    /// The main task of `name`, made anew at every (re)start from its lasting state.
    fn main_of(&self, name: NodeName) -> impl Fn(NodeCtx) -> NodeMain + Send + Sync + 'static {
        let redis = self.redis.clone();
        let kafka = self.kafka.clone();
        let db = self.db.clone();
        let producer = self.producer.clone();
        let worker = self.workers.get(&name).cloned();
        move |ctx| -> NodeMain {
            match name {
                NodeName::Redis => Box::pin(crate::node::redis::run(ctx, redis.clone())),
                NodeName::Kafka => Box::pin(crate::node::kafka::serve(ctx, kafka.clone())),
                NodeName::Db => Box::pin(crate::node::db::serve(ctx, db.clone())),
                NodeName::Producer => Box::pin(crate::node::producer::run(ctx, producer.clone())),
                NodeName::Worker(_) => Box::pin(crate::node::worker::run(
                    ctx,
                    worker.clone().expect("a worker of the run"),
                )),
            }
        }
    }

    /// Ends every node so that madsim drops their tasks (and with them the world they hold):
    /// a dropped runtime keeps its still-pending tasks alive, which leaked about 2 MB per seed.
    /// A killed node's tasks are woken and dropped at their next poll, hence the short sleep.
    pub(crate) async fn end(&self) {
        let h = Handle::current();
        let ids: Vec<NodeId> = self
            .node_ids
            .lock()
            .expect("node ids")
            .values()
            .copied()
            .collect();
        for id in ids {
            h.kill(id);
        }
        madsim::time::sleep(END_GRACE).await;
    }

    /// Whether every record is published, every event applied and every offset committed.
    pub(crate) fn converged(&self) -> bool {
        self.converged_by(&self.reported.lock().expect("progress"))
    }

    fn converged_by(&self, r: &Reported) -> bool {
        let records = self.workload().len() * self.producer.config.copies;
        r.published == records && r.applied == self.workload().len() && r.drained
    }

    /// Whether the run has converged; if not, `waker` is woken when it does (the supervisor
    /// waits on the nodes' reports instead of polling them).
    pub(crate) fn converged_or_wait(&self, waker: &std::task::Waker) -> bool {
        let mut r = self.reported.lock().expect("progress");
        if self.converged_by(&r) {
            return true;
        }
        r.waiting = Some(waker.clone());
        false
    }

    /// Fires the entries whose trigger `matches` (each at most once), met by `worker` (at a
    /// fault point, processing an event, if `at` says so); returns whether `worker` still
    /// stands.
    fn fire(
        &self,
        worker: NodeName,
        at: Option<(&FaultPoint, &str)>,
        matches: impl Fn(&Trigger) -> bool,
    ) -> Standing {
        let mut entries = self.entries.lock().expect("entries");
        let mut faults = self.faults.lock().expect("fault state");
        debug_assert_eq!(
            self.fireable.load(Ordering::Relaxed),
            entries.iter().filter(|e| e.fireable()).count(),
            "the fireable entries are counted"
        );
        // With no entry a worker can fire (most of a run), the entries are not looked at.
        let looked_at = if self.fireable.load(Ordering::Relaxed) == 0 {
            0
        } else {
            entries.len()
        };
        for e in entries.iter_mut().take(looked_at) {
            // Timed entries (most of a nemesis's) are the world's to fire, never a worker's:
            // skipped before their trigger is built. The event's index is looked up only for
            // an entry that names an event (`OnceCell`s in the callers).
            if !e.fireable() {
                continue;
            }
            let Ok(trigger) = e.fault.trigger() else { continue };
            if matches!(trigger, Trigger::At(_)) || !matches(&trigger) {
                continue;
            }
            e.fired = true;
            self.fireable.fetch_sub(1, Ordering::Relaxed);
            let fault = e.fault.fault_for(Some(worker));
            faults.inject(self, &fault, e.fault.lasts_us(), now_us(), e.by, at);
        }
        match faults.status(worker) {
            NodeStatus::Down => Standing::Down,
            _ => Standing::Up,
        }
    }

    fn index_of(&self, event_id: &str) -> Option<u32> {
        self.event_indexes
            .get_or_init(|| {
                self.workload()
                    .iter()
                    .map(|e| (e.event_id.clone(), e.index))
                    .collect()
            })
            .get(event_id)
            .copied()
    }

    fn network_latency_us(&self, max_ms: u64) -> (u64, u64) {
        let lo = self.config.latency_ms_min;
        (lo * 1000, max_ms.max(lo) * 1000)
    }
}

/// The longest lag any failover of the run can have (0: the run has none), so the Redis model
/// keeps that much of its write stream and no more.
fn failover_lag_ms_max(c: &SimConfig) -> u64 {
    let scheduled = c.schedule.iter().filter_map(|e| match e.fault {
        Fault::Failover { lag_ms } => Some(lag_ms),
        _ => None,
    });
    let random = (c.faults.random && c.faults.failover_weight > 0).then_some(c.faults.failover_lag_ms_max);
    scheduled.chain(random).max().unwrap_or(0)
}

/// A node's main task.
type NodeMain = Pin<Box<dyn Future<Output = ()>>>;

/// The settings the workers run with.
fn worker_config(c: &SimConfig) -> WorkerConfig {
    WorkerConfig {
        protocol: c.protocol,
        on_redis_failure: c.on_redis_failure,
        processing_ttl_s: c.processing_ttl_s,
        database: c.database,
        heartbeat_interval_ms: c.kafka.heartbeat_interval_ms,
        rebalance_timeout_ms: c.kafka.session_timeout_ms,
        fetch_max_wait_ms: c.kafka.fetch_max_wait_ms,
        call_timeout_ms: c.call_timeout_ms,
        redis_timeout_ms: c.redis_timeout_ms,
        offset_commit: c.offset_commit,
        offset_commit_every: c.offset_commit_every,
        on_busy: c.on_busy,
        poll_idle_ms: c.poll_idle_ms,
        handler_ms_min: c.handler_ms_min,
        handler_ms_max: c.handler_ms_max,
        confirm_delay_ms: c.confirm_delay_ms,
    }
}

/// Counts polls of a node's main task and stops the run past `steps_max` (a livelock guard).
struct Counted {
    inner: NodeMain,
    limits: Arc<Limits>,
}

impl Future for Counted {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let steps = self.limits.steps.fetch_add(1, Ordering::Relaxed) + 1;
        // Past a limit the node's work is never polled again (the run is ending).
        if steps > self.limits.steps_max {
            self.limits.stop(|| format!("{STEP_LIMIT}: {steps} polls"));
            return Poll::Pending;
        }
        if self.limits.abort.load(Ordering::Relaxed) {
            self.limits.stop(|| format!("{ABORTED} after {steps} polls"));
            return Poll::Pending;
        }
        self.inner.as_mut().poll(cx)
    }
}

/// The run's main future, ended early with the reason when a limit stops the run.
pub(crate) struct Stoppable<F> {
    inner: Pin<Box<F>>,
    limits: Arc<Limits>,
}

impl<F: Future> Stoppable<F> {
    /// `inner`, stopped by `limits`.
    pub(crate) fn new(inner: F, limits: Arc<Limits>) -> Self {
        Stoppable {
            inner: Box::pin(inner),
            limits,
        }
    }
}

impl<F: Future> Future for Stoppable<F> {
    type Output = Result<F::Output, String>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        {
            let mut stop = self.limits.stop.lock().expect("limits");
            if let Some(why) = &stop.why {
                return Poll::Ready(Err(why.clone()));
            }
            if !stop.main.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                stop.main = Some(cx.waker().clone());
            }
        }
        self.inner.as_mut().poll(cx).map(Ok)
    }
}

impl Verbs for World {
    fn kill(&self, node: NodeName) -> Option<Vec<String>> {
        // Its connections reset before madsim drops its tasks (at their next poll).
        self.net.crash(node);
        Handle::current().kill(self.node_id(node));
        self.local(node).crashed()
    }
    fn fail_over(&self, lag_ms: u64) -> Option<Vec<String>> {
        // The old primary is gone: its connections reset, and nobody listens until the
        // replica is promoted (the heal restarts the node on the replica's data set).
        self.net.crash(NodeName::Redis);
        Handle::current().kill(self.node_id(NodeName::Redis));
        let clock_us = idempotency::clock::Clock::now_unix_us(&self.redis.clock);
        let lost = self.redis.state.lock().expect("redis state").fail_over(
            lag_ms.saturating_mul(1000),
            now_us(),
            clock_us,
        );
        Some(lost)
    }
    fn slow_link(&self, node: NodeName, peer: Option<NodeName>, latency_ms_max: Option<u64>) {
        let lo = self.config.latency_ms_min;
        self.net.update(|r| match latency_ms_max {
            // First, so it wins over the configured ranges of the same links.
            Some(ms) => r.links.insert(
                0,
                LinkLatency {
                    node,
                    peer,
                    ms_min: lo,
                    ms_max: ms.max(lo),
                },
            ),
            None => {
                if let Some(i) = r.links.iter().position(|l| l.node == node && l.peer == peer) {
                    r.links.remove(i);
                }
            }
        });
    }
    fn restart(&self, node: NodeName) {
        Handle::current().restart(self.node_id(node));
    }
    fn pause(&self, node: NodeName) {
        self.net.set_paused(node, true);
        Handle::current().pause(self.node_id(node));
    }
    fn resume(&self, node: NodeName) {
        self.net.set_paused(node, false);
        Handle::current().resume(self.node_id(node));
    }
    fn clog(&self, node: NodeName) {
        self.net.update(|r| {
            r.clogged.insert(node);
        });
    }
    fn unclog(&self, node: NodeName) {
        self.net.update(|r| {
            r.clogged.remove(&node);
        });
    }
    fn cut(&self, a: NodeName, b: NodeName) {
        self.net.update(|r| r.set_cut(a, b, true));
    }
    fn repair(&self, a: NodeName, b: NodeName) {
        self.net.update(|r| r.set_cut(a, b, false));
    }
    fn set_latency_ms_max(&self, ms: Option<u64>) {
        let range = self.network_latency_us(ms.unwrap_or(self.config.latency_ms_max));
        self.net.update(|r| {
            r.latency_us = range;
            r.spike_us = ms.map(|m| m * 1000);
        });
    }
    fn set_clock_offset_ms(&self, node: NodeName, offset_ms: i64) -> i64 {
        let clock = self.clock(node);
        let was_ms = clock.offset_us() / 1000;
        clock.set_offset_us(offset_ms.saturating_mul(1000));
        was_ms
    }
    fn local(&self, node: NodeName) -> &dyn NodeFaults {
        match node {
            NodeName::Redis => &*self.redis,
            NodeName::Kafka => &*self.kafka,
            NodeName::Db => &*self.db,
            NodeName::Producer => &NoFaults,
            NodeName::Worker(_) => &**self.workers.get(&node).expect("a worker of the run"),
        }
    }
    fn nodes(&self) -> Vec<NodeName> {
        NodeName::all(self.config.workers)
    }
}

impl Control for World {
    fn count_delivery(&self, event_id: &str) -> u32 {
        let mut deliveries = self.deliveries.lock().expect("deliveries");
        // The id is copied only the first time (most deliveries are of an id seen before).
        if let Some(n) = deliveries.get_mut(event_id) {
            *n += 1;
            return *n;
        }
        deliveries.insert(event_id.to_owned(), 1);
        1
    }

    fn delivered(&self, worker: NodeName, event_id: &str, n: u32) -> Standing {
        let index = OnceCell::new();
        self.fire(worker, None, |t| {
            matches!(t, Trigger::OnDelivery { event, n: nth }
                if *nth == n && Some(*event) == *index.get_or_init(|| self.index_of(event_id)))
        })
    }

    fn holding(&self, worker: NodeName, event_id: &str) -> Standing {
        let index = OnceCell::new();
        self.fire(worker, None, |t| {
            matches!(t, Trigger::WhileHolding { worker: w, event }
                if *w == worker && Some(*event) == *index.get_or_init(|| self.index_of(event_id)))
        })
    }

    fn reached(&self, worker: NodeName, point: &FaultPoint, event_id: &str) -> Standing {
        let index = OnceCell::new();
        self.fire(worker, Some((point, event_id)), |t| {
            matches!(t, Trigger::Point { point: p, event, by, .. }
                if p == point
                    && event.is_none_or(|e| Some(e) == *index.get_or_init(|| self.index_of(event_id)))
                    && by.is_none_or(|b| b == worker))
        })
    }

    fn progress(&self, progress: Progress) {
        let mut r = self.reported.lock().expect("progress");
        match progress {
            Progress::Published(n) => r.published = n,
            Progress::Applied(n) => r.applied = n,
            Progress::Drained(d) => r.drained = d,
        }
        if self.converged_by(&r) {
            if let Some(supervisor) = r.waiting.take() {
                supervisor.wake();
            }
        }
    }
}

/// A fault the world injects on its own (not met by a worker): a timed entry.
pub(crate) fn inject_timed(world: &World, fault: &Fault, lasts_us: Option<u64>, by: &str) {
    world
        .faults
        .lock()
        .expect("fault state")
        .inject(world, fault, lasts_us, now_us(), by, None);
}
