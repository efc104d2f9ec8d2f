//! A worker node: a Kafka consumer loop that runs every record through the `idempotency`
//! decorator, with a handler that works for a while, commits the effect to the database, then
//! confirms. Named fault points in the handler path let the nemesis crash it at the exact moment.

use super::NodeCtx;
use crate::fault::{Fault, FaultPoint, NodeFaults, Standing};
use crate::fields;
use crate::model::db::{Apply, ApplyResult, DbMode, DbReply, DbRequest};
use crate::model::kafka::{GroupError, KafkaReply, KafkaRequest, Record};
use crate::net::rpc::{Client, RpcError};
use crate::net::topology::NodeName;
use crate::node::redis::SimRedis;
use idempotency::fenced::FenceFloor;
use idempotency::store::{BoxFuture, StoreError};
use idempotency::{Consumer, Context, Message, Outcome, ProcessError, ReleaseStatus, Unprotected};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Which idempotency protocol the workers run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProtocolKind {
    /// The Python services' protocol.
    V2,
    /// The safe protocol (the default).
    Fenced,
}

impl ProtocolKind {
    /// The library's protocol.
    pub fn to_lib(self) -> idempotency::Protocol {
        match self {
            ProtocolKind::V2 => idempotency::Protocol::V2,
            ProtocolKind::Fenced => idempotency::Protocol::Fenced,
        }
    }
}

/// What workers do when Redis fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailurePolicyKind {
    /// Run unprotected (v2's behaviour).
    FailOpen,
    /// Retry later without committing the offset.
    FailClosed,
}

impl FailurePolicyKind {
    /// The library's policy.
    pub fn to_lib(self) -> idempotency::FailurePolicy {
        match self {
            FailurePolicyKind::FailOpen => idempotency::FailurePolicy::FailOpen,
            FailurePolicyKind::FailClosed => idempotency::FailurePolicy::FailClosed,
        }
    }
}

/// When a worker commits its Kafka offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OffsetCommit {
    /// After each record is processed (at-least-once).
    AfterEach,
    /// After every `offset_commit_every` records.
    EveryN,
    /// Before processing (at-most-once: a crash loses the record).
    BeforeProcessing,
}

/// What a worker does when the event is busy (another worker holds it) or the race is lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BusyPolicy {
    /// Wait and deliver it again until it is processed or a duplicate.
    Retry,
    /// Skip it and move on, as v2's consumers do (the event is lost if the holder died).
    Skip,
}

/// How long to wait before delivering a record again, or polling an empty partition.
const BACKOFF: Duration = Duration::from_millis(100);
/// Records per fetch.
const FETCH_MAX: usize = 10;

/// A worker's own settings.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// The idempotency protocol.
    pub protocol: ProtocolKind,
    /// What to do when Redis fails.
    pub on_redis_failure: FailurePolicyKind,
    /// The processing lock's TTL.
    pub processing_ttl_s: u64,
    /// The database's mode (a fenced one is the floor of fencing tokens).
    pub database: DbMode,
    /// How often to heartbeat the group.
    pub heartbeat_interval_ms: u64,
    /// How long a Kafka or database call may take.
    pub call_timeout_ms: u64,
    /// How long a Redis command may take.
    pub redis_timeout_ms: u64,
    /// When to commit offsets.
    pub offset_commit: OffsetCommit,
    /// For `every_n`: how many records between commits.
    pub offset_commit_every: u32,
    /// What to do with a busy event.
    pub on_busy: BusyPolicy,
    /// How long to wait when a poll brings nothing.
    pub poll_idle_ms: u64,
    /// The shortest handler.
    pub handler_ms_min: u64,
    /// The longest handler.
    pub handler_ms_max: u64,
    /// A pause between the effect's commit and the confirm.
    pub confirm_delay_ms: u64,
}

/// A worker's lasting state: what outlives its incarnations.
pub struct WorkerNode {
    incarnations: AtomicU64,
    /// Draws its handler durations.
    rng: Mutex<ChaCha8Rng>,
    /// Handlers to fail (the nemesis's handler errors).
    failing_handlers: Mutex<u32>,
    /// Its settings.
    pub config: WorkerConfig,
}

impl WorkerNode {
    /// A worker drawing from `rng`.
    pub fn new(rng: ChaCha8Rng, config: WorkerConfig) -> Self {
        WorkerNode {
            incarnations: AtomicU64::new(0),
            rng: Mutex::new(rng),
            failing_handlers: Mutex::new(0),
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

struct Worker {
    ctx: NodeCtx,
    node: Arc<WorkerNode>,
    name: NodeName,
    client: Arc<Client>,
    consumer: Consumer,
    /// `process()` calls so far in this incarnation (each delivery is one call).
    calls: std::cell::Cell<u64>,
}

/// One group session's state, shared with its heartbeat task.
#[derive(Default)]
struct Session {
    /// Set by the heartbeat when the coordinator ends the session, with its reason.
    lost: std::sync::Mutex<Option<GroupError>>,
    /// The consumer loop, while it sleeps.
    sleeper: std::sync::Mutex<Option<std::task::Waker>>,
}

impl Session {
    /// Why the session ended, if it did.
    fn ended(&self) -> Option<GroupError> {
        *self.lost.lock().expect("session")
    }

    /// Ends the session and wakes the consumer loop.
    fn end(&self, why: GroupError) {
        *self.lost.lock().expect("session") = Some(why);
        if let Some(w) = self.sleeper.lock().expect("session").take() {
            w.wake();
        }
    }

    /// Sleeps for `d`, or until the session ends.
    async fn sleep(&self, d: Duration) {
        let mut timer = std::pin::pin!(madsim::time::sleep(d));
        std::future::poll_fn(|cx| {
            if self.ended().is_some() {
                return std::task::Poll::Ready(());
            }
            *self.sleeper.lock().expect("session") = Some(cx.waker().clone());
            timer.as_mut().poll(cx)
        })
        .await
    }
}

/// Heartbeats every `heartbeat_interval_ms` until the coordinator ends the session.
async fn heartbeat(
    config: WorkerConfig,
    client: Arc<Client>,
    member: String,
    generation: u64,
    session: Arc<Session>,
) {
    let every = Duration::from_millis(config.heartbeat_interval_ms);
    let timeout = Duration::from_millis(config.call_timeout_ms);
    loop {
        madsim::time::sleep(every).await;
        let req = KafkaRequest::Heartbeat {
            member_id: member.clone(),
            generation,
        };
        if let Ok(KafkaReply::Error(e)) = client
            .call::<KafkaRequest, KafkaReply>(NodeName::Kafka.addr(), req, timeout)
            .await
        {
            session.end(e);
            return;
        }
    }
}

/// What became of one delivery.
enum Delivery {
    Done,
    Retry,
}

/// The worker's main task (its node's init future): runs until the node is killed.
pub async fn run(ctx: NodeCtx, node: Arc<WorkerNode>) {
    let incarnation = node.start();
    let name = ctx.name;
    let cfg = &node.config;
    let client = Arc::new(ctx.client().await);
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
    ctx.record("start", fields! {"incarnation" => incarnation});
    let w = Worker {
        ctx,
        node,
        name,
        client,
        consumer,
        calls: std::cell::Cell::new(0),
    };
    w.consume().await
}

/// The fenced database as the floor of a worker's fencing tokens.
struct DbFloor {
    client: Arc<Client>,
    addr: std::net::SocketAddr,
    timeout: Duration,
    worker: String,
}

impl FenceFloor for DbFloor {
    fn highest<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let req = DbRequest::HighestFence {
                key: key.to_owned(),
                worker: self.worker.clone(),
            };
            match self
                .client
                .call::<DbRequest, DbReply>(self.addr, req, self.timeout)
                .await
            {
                Ok(DbReply::HighestFence(h)) => Ok(h),
                Ok(other) => Err(StoreError::Protocol(format!("fence floor: {other:?}"))),
                Err(RpcError::Timeout) => Err(StoreError::Timeout),
                Err(RpcError::Io(e)) => Err(StoreError::Unavailable(e)),
            }
        })
    }
}

impl Worker {
    fn timeout(&self) -> Duration {
        Duration::from_millis(self.node.config.call_timeout_ms)
    }

    async fn kafka(&self, req: KafkaRequest) -> Option<KafkaReply> {
        self.client
            .call(NodeName::Kafka.addr(), req, self.timeout())
            .await
            .ok()
    }

    /// The consumer loop: join the group, consume the assigned partitions until the session
    /// ends (a rebalance, removal, or a rejected commit), then join again.
    async fn consume(&self) {
        // A new incarnation is a new member; a rebalance keeps the member id.
        let mut member_id: Option<String> = None;
        loop {
            let (member, generation) = self.join(&mut member_id).await;
            let Some(partitions) = self.sync(&member, generation).await else {
                continue;
            };
            let session = Arc::new(Session::default());
            self.ctx.record("assigned",
                fields! {"member" => member.as_str(), "generation" => generation, "partitions" => partitions.clone()},
            );
            let heartbeat = madsim::task::spawn(heartbeat(
                self.node.config.clone(),
                self.client.clone(),
                member.clone(),
                generation,
                session.clone(),
            ));
            let ended = self
                .consume_session(&member, generation, &partitions, &session)
                .await;
            heartbeat.abort();
            self.ctx.record("revoked",
                fields! {"member" => member.as_str(), "generation" => generation, "partitions" => partitions, "why" => ended.name()},
            );
            if ended == GroupError::UnknownMemberId {
                member_id = None;
            }
        }
    }

    /// Joins (or rejoins) the group; returns the member id and generation.
    async fn join(&self, member_id: &mut Option<String>) -> (String, u64) {
        loop {
            let req = KafkaRequest::JoinGroup {
                member_id: member_id.clone(),
                client: self.name.to_string(),
            };
            match self.kafka(req).await {
                Some(KafkaReply::Joined {
                    member_id: id,
                    generation,
                }) => {
                    *member_id = Some(id.clone());
                    return (id, generation);
                }
                Some(KafkaReply::JoinPending { member_id: id, .. }) => *member_id = Some(id),
                Some(KafkaReply::Error(GroupError::UnknownMemberId)) => *member_id = None,
                _ => {}
            }
            madsim::time::sleep(BACKOFF).await;
        }
    }

    /// This member's partitions in `generation`, or `None` if a new rebalance began.
    async fn sync(&self, member: &str, generation: u64) -> Option<Vec<u32>> {
        loop {
            let req = KafkaRequest::SyncGroup {
                member_id: member.to_owned(),
                generation,
            };
            match self.kafka(req).await {
                Some(KafkaReply::Assignment { partitions, .. }) => return Some(partitions),
                Some(KafkaReply::Error(_)) => return None,
                _ => madsim::time::sleep(BACKOFF).await,
            }
        }
    }

    /// Consumes `partitions` from their committed offsets until the session ends; returns why.
    async fn consume_session(
        &self,
        member: &str,
        generation: u64,
        partitions: &[u32],
        session: &Session,
    ) -> GroupError {
        let committed = loop {
            match self.kafka(KafkaRequest::CommittedGroup).await {
                Some(KafkaReply::GroupOffsets(o)) => break o,
                _ => madsim::time::sleep(BACKOFF).await,
            }
        };
        let mut positions: Vec<u64> = partitions
            .iter()
            .map(|&p| committed[p as usize].unwrap_or(0))
            .collect();
        for (&partition, &offset) in partitions.iter().zip(&positions) {
            self.ctx.record(
                "seek",
                fields! {"member" => member, "partition" => partition, "offset" => offset},
            );
        }
        let before = self.node.config.offset_commit == OffsetCommit::BeforeProcessing;
        let mut uncommitted: Vec<Option<u64>> = vec![None; partitions.len()];
        let mut since_commit = 0u32;
        loop {
            if let Some(why) = session.ended() {
                return why;
            }
            let mut idle = true;
            if partitions.is_empty() {
                // A member without partitions still polls, or it is removed as stuck.
                let req = KafkaRequest::FetchGroup {
                    member_id: member.to_owned(),
                    generation,
                    partition: 0,
                    from: 0,
                    max: 0,
                };
                self.kafka(req).await;
            }
            for (i, &partition) in partitions.iter().enumerate() {
                let req = KafkaRequest::FetchGroup {
                    member_id: member.to_owned(),
                    generation,
                    partition,
                    from: positions[i],
                    max: FETCH_MAX,
                };
                let Some(KafkaReply::Records(records)) = self.kafka(req).await else {
                    continue;
                };
                for (offset, record) in records {
                    idle = false;
                    if before {
                        if let Err(why) = self.commit(member, generation, partition, offset + 1).await {
                            return why;
                        }
                    }
                    let mut attempt = 1u32;
                    let mut event_id = String::new();
                    let at = (partition, offset, member, generation);
                    while let Delivery::Retry = self.deliver(at, &record, attempt, &mut event_id).await {
                        // Exponential backoff: a lock left by a crashed worker lasts its TTL.
                        madsim::time::sleep(BACKOFF * 2u32.pow(attempt.min(6))).await;
                        attempt += 1;
                    }
                    positions[i] = offset + 1;
                    uncommitted[i] = Some(offset + 1);
                    since_commit += 1;
                    let due = self.node.config.offset_commit == OffsetCommit::AfterEach
                        || since_commit >= self.node.config.offset_commit_every;
                    if !before && due {
                        self.fault_point(FaultPoint::BeforeOffsetCommit, &event_id).await;
                        for (j, pending) in uncommitted.iter_mut().enumerate() {
                            if let Some(next) = pending.take() {
                                if let Err(why) = self.commit(member, generation, partitions[j], next).await {
                                    return why;
                                }
                            }
                        }
                        since_commit = 0;
                    }
                    if let Some(why) = session.ended() {
                        // Revoked: stop, and commit what is done while still a member.
                        for (j, pending) in uncommitted.iter_mut().enumerate() {
                            if let Some(next) = pending.take() {
                                let _ = self.commit(member, generation, partitions[j], next).await;
                            }
                        }
                        return why;
                    }
                }
            }
            if idle {
                // Wait for new records, but hear a rebalance at once (the heartbeat wakes us).
                session
                    .sleep(Duration::from_millis(self.node.config.poll_idle_ms))
                    .await;
            }
        }
    }

    /// Commits `offset` as the next to read; a refusal ends the session.
    async fn commit(
        &self,
        member: &str,
        generation: u64,
        partition: u32,
        offset: u64,
    ) -> Result<(), GroupError> {
        let req = KafkaRequest::CommitGroup {
            member_id: member.to_owned(),
            generation,
            partition,
            offset,
        };
        match self.kafka(req).await {
            Some(KafkaReply::Error(e)) => Err(e),
            Some(_) => Ok(()),
            None => {
                self.ctx.record(
                    "offset_commit_failed",
                    fields! {"partition" => partition, "offset" => offset},
                );
                Ok(())
            }
        }
    }

    /// One `process()` call for a fetched record. `event_id` is filled in with the event's id.
    async fn deliver(
        &self,
        (partition, offset, member, generation): (u32, u64, &str, u64),
        record: &Record,
        attempt: u32,
        event_id: &mut String,
    ) -> Delivery {
        let msg = Message {
            topic: "events".into(),
            partition: partition as i32,
            offset: offset as i64,
            headers: record.headers.clone(),
            value: record.value.clone(),
        };
        *event_id = self
            .consumer
            .key(&msg)
            .ok()
            .and_then(|k| k.event_id_text())
            .unwrap_or_else(|| record.key.clone());
        let event_id = event_id.as_str();
        let delivery = self.ctx.control.count_delivery(event_id);
        let call = self.calls.get() + 1;
        self.calls.set(call);
        self.ctx.record("deliver",
            fields! {"topic" => "events", "partition" => partition, "offset" => offset, "event_id" => event_id,
                "attempt" => attempt, "delivery" => delivery, "call" => call, "member" => member, "generation" => generation},
        );
        let standing = self.ctx.control.delivered(self.name, event_id, delivery);
        self.stop_if_down(standing).await;
        let result = self
            .consumer
            .process(&msg, |ctx| self.handle(ctx, event_id, call))
            .await;
        let (acquire, retry) = match &result {
            Ok(Outcome::Processed { .. } | Outcome::Unprotected { .. }) => (None, false),
            Ok(Outcome::Duplicate) => (Some("duplicate"), false),
            Ok(Outcome::Busy) => (Some("busy"), self.node.config.on_busy == BusyPolicy::Retry),
            Ok(Outcome::RaceLost) => (Some("race_lost"), self.node.config.on_busy == BusyPolicy::Retry),
            Err(ProcessError::Redis(_)) => (Some("redis_error"), true),
            Err(ProcessError::Unkeyable(_)) => (Some("unkeyable"), false),
            Err(ProcessError::Handler { .. }) => (None, true),
        };
        if let Some(outcome) = acquire {
            self.ctx.record(
                "acquire",
                fields! {"event_id" => event_id, "outcome" => outcome, "call" => call},
            );
        }
        match &result {
            Err(ProcessError::Handler { error, release }) => {
                let status = match release {
                    ReleaseStatus::Released => "released".to_owned(),
                    ReleaseStatus::NotHeld => "not_held".to_owned(),
                    ReleaseStatus::Unprotected => "unprotected".to_owned(),
                    ReleaseStatus::Failed(e) => format!("failed: {e}"),
                };
                self.ctx.record("release",
                    fields! {"event_id" => event_id, "error" => error.as_str(), "status" => status, "call" => call},
                );
            }
            Ok(Outcome::Unprotected { reason, .. }) => {
                let reason = match reason {
                    Unprotected::Redis(e) => e.to_string(),
                    Unprotected::Unkeyable(e) => e.to_string(),
                };
                self.ctx.record(
                    "unprotected",
                    fields! {"event_id" => event_id, "reason" => reason, "call" => call},
                );
            }
            _ => {}
        }
        if retry {
            Delivery::Retry
        } else {
            Delivery::Done
        }
    }

    /// The business handler: work, commit the effect, confirm.
    async fn handle(&self, ctx: Context, event_id: &str, call: u64) -> Result<(), String> {
        let fence = ctx.fence();
        let outcome = if ctx.is_protected() {
            "acquired"
        } else {
            "unprotected"
        };
        self.ctx.record("acquire",
            fields! {"event_id" => event_id, "outcome" => outcome, "fence" => fence, "key" => ctx.key().unwrap_or(""), "call" => call},
        );
        if ctx.is_protected() {
            let standing = self.ctx.control.holding(self.name, event_id);
            self.stop_if_down(standing).await;
            self.fault_point(FaultPoint::AfterAcquire, event_id).await;
        }
        self.ctx.record(
            "handler_start",
            fields! {"event_id" => event_id, "fence" => fence, "call" => call},
        );
        let end = |result: &str| {
            self.ctx.record(
                "handler_end",
                fields! {"event_id" => event_id, "result" => result, "call" => call},
            );
        };
        let work_ms = {
            let mut rng = self.node.rng.lock().expect("worker rng");
            rng.gen_range(self.node.config.handler_ms_min..=self.node.config.handler_ms_max)
        };
        madsim::time::sleep(Duration::from_millis(work_ms)).await;
        if self.node.take_handler_error() {
            end("error: injected handler error");
            return Err("injected handler error".into());
        }
        let apply = Apply {
            event_id: event_id.to_owned(),
            key: ctx.key().unwrap_or("").to_owned(),
            fence,
            worker: self.name.to_string(),
        };
        let committed = self
            .client
            .call::<DbRequest, DbReply>(NodeName::Db.addr(), DbRequest::Apply(apply), self.timeout())
            .await;
        let result = match committed {
            Ok(DbReply::Applied(ApplyResult::Applied | ApplyResult::Duplicate)) => Ok(()),
            Ok(DbReply::Applied(ApplyResult::StaleFence { highest })) => {
                Err(format!("stale fence (highest {highest})"))
            }
            Ok(DbReply::HighestFence(_)) => Err("database: unexpected reply".to_owned()),
            Err(e) => Err(format!("database: {e}")),
        };
        if let Err(e) = result {
            end(&format!("error: {e}"));
            return Err(e);
        }
        self.fault_point(FaultPoint::AfterEffectCommit, event_id).await;
        if self.node.config.confirm_delay_ms > 0 {
            madsim::time::sleep(Duration::from_millis(self.node.config.confirm_delay_ms)).await;
        }
        self.fault_point(FaultPoint::BeforeConfirm, event_id).await;
        let confirmed = match ctx.confirm().await {
            Ok(()) if ctx.is_protected() => "confirmed".to_owned(),
            Ok(()) => "noop".to_owned(),
            Err(e) => e.to_string(),
        };
        self.ctx.record(
            "confirm",
            fields! {"event_id" => event_id, "result" => confirmed, "call" => call},
        );
        self.fault_point(FaultPoint::AfterConfirm, event_id).await;
        end("ok");
        Ok(())
    }

    /// Reports reaching `point`; stops here for good if the world crashed this worker.
    async fn fault_point(&self, point: FaultPoint, event_id: &str) {
        let standing = self.ctx.control.reached(self.name, point, event_id);
        self.stop_if_down(standing).await;
    }

    /// A crashed worker does nothing more: its tasks wait to be dropped.
    async fn stop_if_down(&self, standing: Standing) {
        if standing == Standing::Down {
            std::future::pending::<()>().await;
        }
    }
}
