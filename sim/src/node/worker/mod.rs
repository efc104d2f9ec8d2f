//! A worker node: a Kafka consumer loop that runs every record through the `idempotency`
//! decorator, with a handler that works for a while, commits the effect to the database, then
//! confirms. Named fault points in the handler path let the nemesis crash it at the exact moment.
//!
//! - [`config`]: its settings and policies (re-exported here).
//! - `group`: the consumer loop's I/O: join, sync, heartbeat, fetch, commit.
//! - [`session`]: the pure state machine `group` asks where to fetch and what to commit.
//! - `delivery`: one record through the library.
//! - [`handler`]: the business handler's seam ([`handler::Handler`], its context, the built-in
//!   handler).
//! - `floor`: the fenced database as the floor of fencing tokens.
//!
//! This file holds what outlives an incarnation ([`WorkerNode`]) and starts one ([`run`]).

pub mod config;
mod delivery;
mod floor;
mod group;
pub mod handler;
pub mod session;

pub use config::{BusyPolicy, FailurePolicyKind, OffsetCommit, ProtocolKind, WorkerConfig};

use super::NodeCtx;
use crate::fault::{Fault, FaultPoint, NodeFaults, Standing};
use crate::model::db::DbMode;
use crate::model::kafka::{KafkaReply, KafkaRequest};
use crate::net::rpc::Client;
use crate::net::topology::NodeName;
use crate::node::redis::SimRedis;
use crate::trace::Typed;
use floor::DbFloor;
use handler::Handler;
use idempotency::{Consumer, EventKey, KeyError};
use rand_chacha::ChaCha8Rng;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long to wait before asking the group again after a lost or refused call (join, sync,
/// committed offsets), and the base of a record's retry backoff (see `delivery`).
const BACKOFF: Duration = Duration::from_millis(100);

/// Each record's key, by (partition, offset), once derived. A record never changes and its key
/// is a pure function of it and the consumer's config (the same for every worker of a run),
/// while deriving it (v2's canonical JSON and SHA-256) is the costliest step of a delivery, and
/// a record is delivered about three times per run (busy retries, redeliveries). Nothing but
/// speed depends on it: a key taken from here is the key the worker would derive. Bounded by
/// the log's records.
pub type KeyMemo = Mutex<BTreeMap<(u32, u64), Result<Arc<EventKey>, KeyError>>>;

/// A worker's lasting state: what outlives its incarnations.
pub struct WorkerNode {
    incarnations: AtomicU64,
    /// Draws its handler durations.
    rng: Mutex<ChaCha8Rng>,
    /// Handlers to fail (the nemesis's handler errors).
    failing_handlers: Mutex<u32>,
    /// Records' keys already derived, shared by the run's workers ([`KeyMemo`]).
    keys: Arc<KeyMemo>,
    /// The business handler every delivery runs.
    handler: Arc<dyn Handler>,
    /// Its settings.
    pub config: WorkerConfig,
}

impl WorkerNode {
    /// A worker drawing from `rng`, sharing `keys` with the run's other workers, running
    /// `handler` for every delivery.
    pub fn new(rng: ChaCha8Rng, config: WorkerConfig, keys: Arc<KeyMemo>, handler: Arc<dyn Handler>) -> Self {
        WorkerNode {
            incarnations: AtomicU64::new(0),
            rng: Mutex::new(rng),
            failing_handlers: Mutex::new(0),
            keys,
            handler,
            config,
        }
    }

    /// Counts a (re)start; returns the incarnation number, from 1.
    fn start(&self) -> u64 {
        self.incarnations.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// True (once) if the next handler was made to fail.
    fn take_handler_error(&self) -> bool {
        let mut n = self.failing_handlers.lock().expect("failing handlers");
        let fail = *n > 0;
        *n = n.saturating_sub(1);
        fail
    }
}

impl NodeFaults for WorkerNode {
    fn inject(&self, fault: &Fault) -> bool {
        let Fault::HandlerError { .. } = fault else {
            return false;
        };
        *self.failing_handlers.lock().expect("failing handlers") += 1;
        true
    }
    fn heal(&self, _: &Fault) {}
    fn heal_all(&self) {
        *self.failing_handlers.lock().expect("failing handlers") = 0;
    }
}

/// One incarnation of a worker: what its tasks share until the node is killed.
struct Worker {
    ctx: NodeCtx,
    node: Arc<WorkerNode>,
    name: NodeName,
    /// The connection of the consumer loop and its handlers (Kafka, Redis, the database).
    client: Arc<Client>,
    /// The heartbeat's own connection, so a held fetch never holds up a heartbeat.
    heartbeat_client: Arc<Client>,
    consumer: Consumer,
    /// This incarnation's number, from 1.
    incarnation: u64,
    /// `process()` calls so far in this incarnation (each delivery is one call).
    calls: Cell<u64>,
}

/// The worker's main task (its node's init future): runs until the node is killed.
pub async fn run(ctx: NodeCtx, node: Arc<WorkerNode>) {
    let incarnation = node.start();
    let name = ctx.name;
    let cfg = &node.config;
    let client = Arc::new(ctx.client().await);
    let heartbeat_client = Arc::new(ctx.client().await);
    let store = SimRedis {
        client: client.clone(),
        addr: NodeName::Redis.addr(),
        timeout: Duration::from_millis(cfg.redis_timeout_ms),
    };
    let mut config = idempotency::Config::new("sim_worker")
        .protocol(cfg.protocol.to_lib())
        .on_redis_failure(cfg.on_redis_failure.to_lib());
    config.processing_ttl_s = cfg.processing_ttl_s;
    let consumer = Consumer::new(
        config,
        Arc::new(store),
        Arc::new(ctx.clock.clone()),
        format!("{name}#{incarnation}"),
    )
    .expect("the run's config was validated");
    // A database that checks tokens is the authority for their floor (see FenceFloor).
    let consumer = if cfg.database == DbMode::Fenced {
        consumer.with_fence_floor(Arc::new(DbFloor {
            client: client.clone(),
            addr: NodeName::Db.addr(),
            timeout: Duration::from_millis(cfg.call_timeout_ms),
            worker: name.to_string(),
        }))
    } else {
        consumer
    };
    ctx.emit(Typed::Start { incarnation });
    let w = Worker {
        ctx,
        node,
        name,
        client,
        heartbeat_client,
        consumer,
        incarnation,
        calls: Cell::new(0),
    };
    w.consume().await
}

impl Worker {
    /// How long a Kafka or database call may take.
    fn timeout(&self) -> Duration {
        Duration::from_millis(self.node.config.call_timeout_ms)
    }

    /// A Kafka call; `None` if it was lost or timed out.
    async fn kafka(&self, req: KafkaRequest) -> Option<KafkaReply> {
        self.kafka_within(req, self.timeout()).await
    }

    /// A Kafka call that may take up to `timeout` (a long poll waits longer than other calls);
    /// `None` if it was lost or timed out.
    async fn kafka_within(&self, req: KafkaRequest, timeout: Duration) -> Option<KafkaReply> {
        self.client.call(NodeName::Kafka.addr(), req, timeout).await.ok()
    }

    /// Reports reaching `point`; stops here for good if the world crashed this worker.
    async fn fault_point(&self, point: FaultPoint, event_id: &str) {
        let standing = self.ctx.control.reached(self.name, &point, event_id);
        self.stop_if_down(standing).await;
    }

    /// A crashed worker does nothing more: its tasks wait to be dropped.
    async fn stop_if_down(&self, standing: Standing) {
        if standing == Standing::Down {
            std::future::pending::<()>().await;
        }
    }
}
