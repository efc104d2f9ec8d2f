//! A worker node: a Kafka consumer loop that runs every record through the `idempotency`
//! decorator, with a handler that works for a while, commits the effect to the database, then
//! confirms. Named fault points in the handler path let the nemesis crash it at the exact moment.

use crate::config::{BusyPolicy, OffsetCommit};
use crate::db::{Apply, ApplyResult};
use crate::faults;
use crate::fields;
use crate::kafka::{KafkaReply, KafkaRequest, Record};
use crate::redis_node::SimRedis;
use crate::rpc::Client;
use crate::schedule::Trigger;
use crate::world::Shared;
use idempotency::{Consumer, Context, Message, Outcome, ProcessError, ReleaseStatus, Unprotected};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// A place in the handler path where the nemesis can crash a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultPoint {
    /// The lock is held and the handler is about to start.
    AfterAcquire,
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
    pub const ALL: [FaultPoint; 5] = [
        FaultPoint::AfterAcquire,
        FaultPoint::AfterEffectCommit,
        FaultPoint::BeforeConfirm,
        FaultPoint::AfterConfirm,
        FaultPoint::BeforeOffsetCommit,
    ];

    /// Its name in traces and scenario files.
    pub fn name(self) -> &'static str {
        match self {
            FaultPoint::AfterAcquire => "after_acquire",
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
    /// `process()` calls so far in this incarnation (each delivery is one call).
    calls: std::cell::Cell<u64>,
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
        calls: std::cell::Cell::new(0),
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
                    let mut event_id = String::new();
                    while let Delivery::Retry = self
                        .deliver(partition, offset, &record, attempt, &mut event_id)
                        .await
                    {
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
                        self.fault_point(FaultPoint::BeforeOffsetCommit, &event_id).await;
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

    /// One `process()` call for a fetched record. `event_id` is filled in with the event's id.
    async fn deliver(
        &self,
        partition: u32,
        offset: u64,
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
        let delivery = {
            let mut deliveries = self.s.deliveries.lock().expect("deliveries");
            let n = deliveries.entry(event_id.to_owned()).or_default();
            *n += 1;
            *n
        };
        let call = self.calls.get() + 1;
        self.calls.set(call);
        self.s.trace.record(
            &self.name,
            "deliver",
            fields! {"topic" => "events", "partition" => partition, "offset" => offset, "event_id" => event_id,
                "attempt" => attempt, "delivery" => delivery, "call" => call},
        );
        let index = self.s.event_index(event_id);
        self.s.fire(
            &self.name,
            |t| matches!(t, Trigger::OnDelivery(e, n) if Some(*e) == index && *n == delivery),
        );
        let result = self
            .consumer
            .process(&msg, |ctx| self.handle(ctx, event_id, call))
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
                self.s.trace.record(
                    &self.name,
                    "release",
                    fields! {"event_id" => event_id, "error" => error.as_str(), "status" => status, "call" => call},
                );
            }
            Ok(Outcome::Unprotected { reason, .. }) => {
                let reason = match reason {
                    Unprotected::Redis(e) => e.to_string(),
                    Unprotected::Unkeyable(e) => e.to_string(),
                };
                self.s.trace.record(
                    &self.name,
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
        self.s.trace.record(
            &self.name,
            "acquire",
            fields! {"event_id" => event_id, "outcome" => outcome, "fence" => fence, "key" => ctx.key().unwrap_or(""), "call" => call},
        );
        if ctx.is_protected() {
            let index = self.s.event_index(event_id);
            self.s.fire(
                &self.name,
                |t| matches!(t, Trigger::WhileHolding(w, e) if *w == self.name && Some(*e) == index),
            );
            self.fault_point(FaultPoint::AfterAcquire, event_id).await;
        }
        self.s.trace.record(
            &self.name,
            "handler_start",
            fields! {"event_id" => event_id, "fence" => fence, "call" => call},
        );
        let end = |result: &str| {
            self.s.trace.record(
                &self.name,
                "handler_end",
                fields! {"event_id" => event_id, "result" => result, "call" => call},
            );
        };
        let work_ms = {
            let mut rng = self.s.worker(&self.name).rng.lock().expect("worker rng");
            rng.gen_range(self.s.config.handler_ms_min..=self.s.config.handler_ms_max)
        };
        madsim::time::sleep(Duration::from_millis(work_ms)).await;
        if self
            .s
            .faults
            .lock()
            .expect("fault state")
            .take_handler_error(&self.name)
        {
            end("error: injected handler error");
            return Err("injected handler error".into());
        }
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
            end(&format!("error: {e}"));
            return Err(e);
        }
        self.fault_point(FaultPoint::AfterEffectCommit, event_id).await;
        if self.s.config.confirm_delay_ms > 0 {
            madsim::time::sleep(Duration::from_millis(self.s.config.confirm_delay_ms)).await;
        }
        self.fault_point(FaultPoint::BeforeConfirm, event_id).await;
        let confirmed = match ctx.confirm().await {
            Ok(()) if ctx.is_protected() => "confirmed".to_owned(),
            Ok(()) => "noop".to_owned(),
            Err(e) => e.to_string(),
        };
        self.s.trace.record(
            &self.name,
            "confirm",
            fields! {"event_id" => event_id, "result" => confirmed, "call" => call},
        );
        self.fault_point(FaultPoint::AfterConfirm, event_id).await;
        end("ok");
        Ok(())
    }

    /// Fires the schedule's entries for `point` and the nemesis's armed crash; stops here for
    /// good if this worker went down.
    async fn fault_point(&self, point: FaultPoint, event_id: &str) {
        let index = self.s.event_index(event_id);
        self.s.fire(&self.name, |t| {
            matches!(t, Trigger::Point(p, e, by)
                if *p == point && e.is_none_or(|e| Some(e) == index) && by.as_deref().is_none_or(|b| b == self.name))
        });
        let armed = self
            .s
            .faults
            .lock()
            .expect("fault state")
            .disarm(&self.name, point, event_id);
        if let Some(down_us) = armed {
            faults::crash_self(&self.s, &self.name, point, event_id, down_us);
        }
        if self.s.faults.lock().expect("fault state").status.get(&self.name)
            == Some(&faults::NodeStatus::Down)
        {
            std::future::pending::<()>().await;
        }
    }
}
