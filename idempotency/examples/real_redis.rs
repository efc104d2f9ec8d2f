//! A consumer guarding its effects with the fenced protocol on a real Redis: one message is
//! delivered twice; the first delivery runs the handler, which commits its effect with the
//! lease's fencing token and then confirms, and the second is a duplicate. Prints both outcomes
//! and exits with an error when they are not these.
//!
//! Redis: `IDEMPOTENCY_REDIS_URL` (default `redis://127.0.0.1:6379/`). The effect store is in
//! memory here; in production it is the service's database, whose commit checks the token in
//! the same transaction as the effect.

use idempotency::clock::{Clock, TokioClock};
use idempotency::fenced::FenceFloor;
use idempotency::redis_store::RedisStore;
use idempotency::store::{BoxFuture, StoreError};
use idempotency::{Config, ConfirmError, ConfirmStatus, Consumer, Context, EventKey, Message, Outcome};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The effect store. Fencing tokens are keyed by the event's Redis key: the handler's commit
/// passes `ctx.key()` and the floor reads `event.key`, the same identifier on both sides (a
/// floor that reads another identifier than the commit writes answers 0: no floor at all).
#[derive(Clone, Default)]
pub struct Db(Arc<Mutex<BTreeMap<String, Row>>>);

/// What the effect store holds for one event.
#[derive(Clone, Debug, Default)]
pub struct Row {
    /// The highest fencing token a commit carried.
    pub highest_fence: u64,
    /// The effects applied, in order.
    pub effects: Vec<String>,
}

impl Db {
    /// One transaction: rejects a token lower than the highest accepted for `key` (a worker
    /// that lost its lease), else applies `effect` and remembers the token.
    pub async fn apply(&self, key: &str, fence: Option<u64>, effect: &str) -> Result<(), AppError> {
        let mut rows = self.0.lock().unwrap();
        let row = rows.entry(key.to_owned()).or_default();
        if let Some(fence) = fence {
            if fence < row.highest_fence {
                let highest = row.highest_fence;
                return Err(AppError::StaleFence { fence, highest });
            }
            row.highest_fence = fence;
        }
        row.effects.push(effect.to_owned());
        Ok(())
    }

    /// What the store holds for `key`.
    pub fn row(&self, key: &str) -> Row {
        self.0.lock().unwrap().get(key).cloned().unwrap_or_default()
    }
}

impl FenceFloor for Db {
    fn highest<'a>(&'a self, event: &'a EventKey) -> BoxFuture<'a, Result<u64, StoreError>> {
        // The identifier `apply` is given: the Redis key.
        let highest = self.row(&event.key).highest_fence;
        Box::pin(async move { Ok(highest) })
    }

    fn claim<'a>(&'a self, event: &'a EventKey, fence: u64) -> BoxFuture<'a, Result<(), StoreError>> {
        // From now on `apply` rejects every earlier lease's commit for this key.
        let mut rows = self.0.lock().unwrap();
        let row = rows.entry(event.key.clone()).or_default();
        row.highest_fence = row.highest_fence.max(fence);
        Box::pin(async { Ok(()) })
    }
}

/// Why the handler failed.
#[derive(Debug)]
pub enum AppError {
    /// The message has no key (it ran unprotected): this service refuses such events.
    NoKey,
    /// A newer lease's commit is already in: this worker lost its lease.
    StaleFence {
        /// This commit's token.
        fence: u64,
        /// The highest token accepted.
        highest: u64,
    },
    /// The effect committed but Redis did not record it as completed.
    Confirm(ConfirmError),
}

impl From<ConfirmError> for AppError {
    fn from(e: ConfirmError) -> Self {
        AppError::Confirm(e)
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppError::NoKey => f.write_str("the message has no key"),
            AppError::StaleFence { fence, highest } => {
                write!(f, "stale fencing token {fence} (the store has seen {highest})")
            }
            AppError::Confirm(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for AppError {}

/// The handler: the business transaction, carrying the fencing token, then the confirm.
pub async fn handle(db: &Db, ctx: Context) -> Result<(), AppError> {
    let key = ctx.key().ok_or(AppError::NoKey)?;
    db.apply(key, ctx.fence(), "essay scored").await?;
    ctx.confirm().await?; // only after the commit
    Ok(())
}

/// A message in v2's header form: `event_id` and `event_type` headers, the envelope as value.
pub fn message(id: &str) -> Message {
    let ty = "huleedu.essay.scored.v1";
    let payload = format!(r#"{{"event_id": "{id}", "event_type": "{ty}", "data": {{"score": 4}}}}"#);
    Message::new("events", payload)
        .with_header("event_id", id)
        .with_header("event_type", ty)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("IDEMPOTENCY_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    let store = RedisStore::connect(&url, Duration::from_millis(500)).await?;
    let db = Db::default();
    let config = Config::new("essay_lifecycle_service"); // v2's prefix and TTL table, fenced protocol
                                                         // Unique among every process (and restart) sharing the Redis: fenced owner tokens start with it.
    let started = TokioClock.now_unix_us();
    let instance = format!("example/{}/{started}", std::process::id());
    let consumer = Consumer::new(config, Arc::new(store), Arc::new(TokioClock), instance)?
        // The effect store's highest accepted token, so tokens stay above it even when Redis
        // loses its counter.
        .with_fence_floor(Arc::new(db.clone()));

    // A new event id per run, so that a second run against the same Redis starts afresh.
    let msg = message(&format!("example-{started}"));
    let key = consumer.key(&msg)?.key;
    println!("event key: {key}");
    let mut outcomes = Vec::new();
    for delivery in ["first", "second"] {
        let outcome = consumer.process(&msg, |ctx| handle(&db, ctx)).await?;
        match &outcome {
            Outcome::Processed { fence, confirm, .. } => {
                println!("{delivery} delivery: processed with fencing token {fence:?}, confirm {confirm:?}")
            }
            Outcome::Duplicate | Outcome::Busy | Outcome::RaceLost => {
                println!("{delivery} delivery: skipped ({})", outcome.kind())
            }
            Outcome::Unprotected { reason, .. } => {
                println!("{delivery} delivery: ran without deduplication ({reason:?})")
            }
        }
        outcomes.push(outcome);
    }
    let row = db.row(&key);
    println!("effects in the store: {:?}", row.effects);

    let expected = matches!(
        outcomes.as_slice(),
        [
            Outcome::Processed {
                fence: Some(_),
                confirm: ConfirmStatus::Confirmed,
                ..
            },
            Outcome::Duplicate,
        ]
    ) && row.effects.len() == 1;
    if !expected {
        return Err("expected processed and confirmed, then a duplicate, and one effect".into());
    }
    println!("as expected: processed once, then a duplicate");
    Ok(())
}
