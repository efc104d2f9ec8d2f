//! A worker node: a Kafka consumer loop that runs every record through the `idempotency`
//! decorator, with a handler that works for a while, commits the effect to the database, then
//! confirms. Named fault points in the handler path let the nemesis crash it at the exact moment.

use crate::config::{BusyPolicy, OffsetCommit};
use crate::db::{Apply, ApplyResult};
use crate::fields;
use crate::kafka::{KafkaReply, KafkaRequest, Record};
use crate::redis_node::SimRedis;
use crate::rpc::Client;
use crate::world::Shared;
use idempotency::{
    ConfirmStatus, Consumer, Context, Message, Outcome, ProcessError, ReleaseStatus, Unprotected,
};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// A place in the handler path where the nemesis can crash a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultPoint {
    /// The effect is committed; nothing else happened yet.
    AfterEffectCommit,
    /// Just before the handler confirms.
    BeforeConfirm,
    /// Just after the handler confirmed.
    AfterConfirm,
    /// Processing is over; the offset is not committed yet.
    BeforeOffsetCommit,
}

impl FaultPoint {
    /// Every fault point.
    pub const ALL: [FaultPoint; 4] = [
        FaultPoint::AfterEffectCommit,
        FaultPoint::BeforeConfirm,
        FaultPoint::AfterConfirm,
        FaultPoint::BeforeOffsetCommit,
    ];

    /// Its name in traces and scenario files.
    pub fn name(self) -> &'static str {
        match self {
            FaultPoint::AfterEffectCommit => "after_effect_commit",
            FaultPoint::BeforeConfirm => "before_confirm",
            FaultPoint::AfterConfirm => "after_confirm",
            FaultPoint::BeforeOffsetCommit => "before_offset_commit",
        }
    }
}

/// How long to wait before delivering a record again, or polling an empty partition.
const BACKOFF: Duration = Duration::from_millis(100);
/// Records per fetch.
const FETCH_MAX: usize = 10;

struct Worker {
    s: Arc<Shared>,
    name: String,
    client: Arc<Client>,
    consumer: Consumer,
}

/// What became of one delivery.
enum Delivery {
    Done,
    Retry,
}

/// The worker's main task (its node's init future): runs until the node is killed.
pub async fn run(s: Arc<Shared>, name: String) {
    let incarnation = s.worker(&name).start();
    let client = Arc::new(Client::bind(s.reply_tags.clone()).await);
    let store = SimRedis {
        client: client.clone(),
        addr: s.redis_addr(),
        timeout: Duration::from_millis(s.config.redis_timeout_ms),
    };
    let mut config = idempotency::Config::new("sim_worker")
        .protocol(s.config.protocol.to_lib())
        .on_redis_failure(s.config.on_redis_failure.to_lib());
    config.processing_ttl_s = s.config.processing_ttl_s;
    let consumer = Consumer::new(
        config,
        Arc::new(store),
        Arc::new(s.clock(&name)),
        format!("{name}#{incarnation}"),
    )
    .expect("the run's config was validated");
    s.trace
        .record(&name, "start", fields! {"incarnation" => incarnation});
    let w = Worker {
        s,
        name,
        client,
        consumer,
    };
    w.consume().await
}

impl Worker {
    fn timeout(&self) -> Duration {
        Duration::from_millis(self.s.config.call_timeout_ms)
    }

    async fn kafka(&self, req: KafkaRequest) -> Option<KafkaReply> {
        self.client
            .call(self.s.kafka_addr(), req, self.timeout())
            .await
            .ok()
    }

    async fn consume(&self) {
        let index = self.s.worker(&self.name).index;
        let partitions: Vec<u32> = (0..self.s.config.partitions)
            .filter(|p| p % self.s.config.workers == index)
            .collect();
        let committed = loop {
            match self.kafka(KafkaRequest::Committed).await {
                Some(KafkaReply::Offsets(o)) => break o,
                _ => madsim::time::sleep(BACKOFF).await,
            }
        };
        let mut positions: Vec<u64> = partitions.iter().map(|&p| committed[p as usize]).collect();
        let mut uncommitted = 0u32;
        loop {
            let mut idle = true;
            for (i, &partition) in partitions.iter().enumerate() {
                let req = KafkaRequest::Fetch {
                    partition,
                    from: positions[i],
                    max: FETCH_MAX,
                };
                let Some(KafkaReply::Records(records)) = self.kafka(req).await else {
                    continue;
                };
                for (offset, record) in records {
                    idle = false;
                    let before = self.s.config.offset_commit == OffsetCommit::BeforeProcessing;
                    if before {
                        self.commit(partition, offset + 1).await;
                    }
                    let mut attempt = 1u32;
                    while let Delivery::Retry = self.deliver(partition, offset, &record, attempt).await {
                        // Exponential backoff: a lock left by a crashed worker lasts its TTL.
                        madsim::time::sleep(BACKOFF * 2u32.pow(attempt.min(6))).await;
                        attempt += 1;
                    }
                    positions[i] = offset + 1;
                    uncommitted += 1;
                    if !before
                        && (self.s.config.offset_commit == OffsetCommit::AfterEach
                            || uncommitted >= self.s.config.offset_commit_every)
                    {
                        self.fault_point(FaultPoint::BeforeOffsetCommit).await;
                        self.commit(partition, offset + 1).await;
                        uncommitted = 0;
                    }
                }
            }
            if idle {
                madsim::time::sleep(Duration::from_millis(self.s.config.poll_idle_ms)).await;
            }
        }
    }

    async fn commit(&self, partition: u32, offset: u64) {
        let req = KafkaRequest::Commit {
            partition,
            offset,
            member: self.name.clone(),
        };
        if self.kafka(req).await.is_none() {
            self.s.trace.record(
                &self.name,
                "offset_commit_failed",
                fields! {"partition" => partition, "offset" => offset},
            );
        }
    }

    async fn deliver(&self, partition: u32, offset: u64, record: &Record, attempt: u32) -> Delivery {
        let event_id = record.key.as_str();
        self.s.trace.record(
            &self.name,
            "deliver",
            fields! {"topic" => "events", "partition" => partition, "offset" => offset, "event_id" => event_id, "attempt" => attempt},
        );
        let msg = Message {
            topic: "events".into(),
            partition: partition as i32,
            offset: offset as i64,
            headers: record.headers.clone(),
            value: record.value.clone(),
        };
        let result = self
            .consumer
            .process(&msg, |ctx| self.handle(ctx, event_id))
            .await;
        let (acquire, retry) = match &result {
            Ok(Outcome::Processed { .. } | Outcome::Unprotected { .. }) => (None, false),
            Ok(Outcome::Duplicate) => (Some("duplicate"), false),
            Ok(Outcome::Busy) => (Some("busy"), self.s.config.on_busy == BusyPolicy::Retry),
            Ok(Outcome::RaceLost) => (Some("race_lost"), self.s.config.on_busy == BusyPolicy::Retry),
            Err(ProcessError::Redis(_)) => (Some("redis_error"), true),
            Err(ProcessError::Unkeyable(_)) => (Some("unkeyable"), false),
            Err(ProcessError::Handler { .. }) => (None, true),
        };
        if let Some(outcome) = acquire {
            self.s.trace.record(
                &self.name,
                "acquire",
                fields! {"event_id" => event_id, "outcome" => outcome},
            );
        }
        if let Err(ProcessError::Handler { error, release }) = &result {
            let status = match release {
                ReleaseStatus::Released => "released".to_owned(),
                ReleaseStatus::NotHeld => "not_held".to_owned(),
                ReleaseStatus::Unprotected => "unprotected".to_owned(),
                ReleaseStatus::Failed(e) => format!("failed: {e}"),
            };
            self.s.trace.record(
                &self.name,
                "release",
                fields! {"event_id" => event_id, "error" => error.as_str(), "status" => status},
            );
        }
        if let Ok(Outcome::Processed {
            confirm: ConfirmStatus::NotCalled,
            ..
        }) = &result
        {
            self.s.trace.record(
                &self.name,
                "confirm",
                fields! {"event_id" => event_id, "result" => "not_called"},
            );
        }
        if retry {
            Delivery::Retry
        } else {
            Delivery::Done
        }
    }

    /// The business handler: work, commit the effect, confirm.
    async fn handle(&self, ctx: Context, event_id: &str) -> Result<(), String> {
        let (outcome, reason) = match ctx.is_protected() {
            true => ("acquired", String::new()),
            false => ("unprotected", String::new()),
        };
        let _ = reason;
        let fence = ctx.fence();
        self.s.trace.record(
            &self.name,
            "acquire",
            fields! {"event_id" => event_id, "outcome" => outcome, "fence" => fence, "key" => ctx.key().unwrap_or("")},
        );
        self.s.trace.record(
            &self.name,
            "handler_start",
            fields! {"event_id" => event_id, "fence" => fence},
        );
        let work_ms = {
            let mut rng = self.s.worker(&self.name).rng.lock().expect("worker rng");
            rng.gen_range(self.s.config.handler_ms_min..=self.s.config.handler_ms_max)
        };
        madsim::time::sleep(Duration::from_millis(work_ms)).await;
        let apply = Apply {
            event_id: event_id.to_owned(),
            key: ctx.key().unwrap_or("").to_owned(),
            fence,
            worker: self.name.clone(),
        };
        let committed = self
            .client
            .call::<Apply, ApplyResult>(self.s.db_addr(), apply, self.timeout())
            .await;
        let result = match committed {
            Ok(ApplyResult::Applied | ApplyResult::Duplicate) => Ok(()),
            Ok(ApplyResult::StaleFence { highest }) => Err(format!("stale fence (highest {highest})")),
            Err(e) => Err(format!("database: {e}")),
        };
        if let Err(e) = result {
            self.s.trace.record(
                &self.name,
                "handler_end",
                fields! {"event_id" => event_id, "result" => e.as_str()},
            );
            return Err(e);
        }
        self.fault_point(FaultPoint::AfterEffectCommit).await;
        self.fault_point(FaultPoint::BeforeConfirm).await;
        let confirmed = match ctx.confirm().await {
            Ok(()) if ctx.is_protected() => "confirmed".to_owned(),
            Ok(()) => "noop".to_owned(),
            Err(e) => e.to_string(),
        };
        self.s.trace.record(
            &self.name,
            "confirm",
            fields! {"event_id" => event_id, "result" => confirmed},
        );
        self.fault_point(FaultPoint::AfterConfirm).await;
        self.s.trace.record(
            &self.name,
            "handler_end",
            fields! {"event_id" => event_id, "result" => "ok"},
        );
        Ok(())
    }

    /// Crashes this node here if the nemesis armed `point`.
    async fn fault_point(&self, point: FaultPoint) {
        if self.s.worker(&self.name).disarm(point) {
            self.s.crash_self(&self.name, point.name());
            std::future::pending::<()>().await;
        }
    }
}

/// Why a handler ran unprotected, for the trace.
pub fn unprotected_reason(reason: &Unprotected) -> String {
    match reason {
        Unprotected::Redis(e) => e.to_string(),
        Unprotected::Unkeyable(e) => e.to_string(),
    }
}
