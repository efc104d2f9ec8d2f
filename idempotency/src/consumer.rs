//! The decorator: [`Consumer::process`] guards one delivery with the configured protocol.
//!
//! ```text
//! key ──► acquire ──► duplicate / busy / race lost            (handler not called)
//!            │
//!            ├─ Redis failed ──► fail_open: handler unprotected, no-op confirm
//!            │                   fail_closed: error, handler not called
//!            ▼
//!         handler(ctx) ── ctx.confirm() after its own commit ──► completed record
//!            │   (fenced: lease renewed meanwhile, owner-checked)
//!            └─ error ──► release (owner-checked for fenced) and the error is returned
//! ```
//! The handler is called at most once per `process` call.

use crate::clock::Clock;
use crate::config::{Config, ConfigError, FailurePolicy, Protocol};
use crate::fenced::{ConfirmReply, FenceFloor, Fenced};
use crate::key::{derive_key, EventKey, KeyError};
use crate::message::Message;
use crate::record::Owner;
use crate::store::{Store, StoreError};
use crate::v2::{Acquired, V2};
use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

/// The longest a fenced lease waits between renewals, whatever its TTL: a third of v2's
/// stale cutoff ([`crate::v2::STALE_AFTER_S`], 300 s). A v2 worker judges a processing record
/// by its `started_at` alone, never by the key's TTL, and each renewal rewrites `started_at`:
/// renewing every third of a `processing_ttl_s` of 900 s or more would let the record grow
/// older than 300 s between renewals, and a v2 worker would take over a live lease. Every
/// 100 s, a record never looks older than about 100 s to a v2 reader with the same clock; a
/// renewal that fails (Redis unreachable) is tried again when it is 200 s old, still 100 s
/// short of the cutoff, which is also the room left for a v2 host whose clock is ahead.
pub const MAX_RENEW_INTERVAL: Duration = Duration::from_secs(crate::v2::STALE_AFTER_S / 3);

/// What happened to a delivery.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome<T> {
    /// The handler ran under the lock (lease).
    Processed {
        /// The handler's result.
        value: T,
        /// The fencing token of the lease (`fenced` only).
        fence: Option<u64>,
        /// Whether and how the handler confirmed.
        confirm: ConfirmStatus,
        /// v2 deleted a stale processing record before taking the key.
        took_over_stale: bool,
    },
    /// A completed record exists: skipped as a duplicate.
    Duplicate,
    /// Another worker holds the key: skipped.
    Busy,
    /// The key was taken between the check and the lock (v2's SET NX lost): skipped.
    RaceLost,
    /// The handler ran without protection (fail-open).
    Unprotected {
        /// The handler's result.
        value: T,
        /// Why there was no protection.
        reason: Unprotected,
    },
}

impl<T> Outcome<T> {
    /// A short stable name: `processed`, `duplicate`, `busy`, `race_lost`, `unprotected`.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Processed { .. } => "processed",
            Outcome::Duplicate => "duplicate",
            Outcome::Busy => "busy",
            Outcome::RaceLost => "race_lost",
            Outcome::Unprotected { .. } => "unprotected",
        }
    }
}

/// Why a handler ran without protection.
#[derive(Clone, Debug, PartialEq)]
pub enum Unprotected {
    /// Redis failed while acquiring, or the effect store's fence floor could not be read or
    /// claimed ([`FenceFloor`]).
    Redis(StoreError),
    /// The message has no key.
    Unkeyable(KeyError),
}

/// Whether and how the handler's confirm went.
#[derive(Clone, Debug, PartialEq)]
pub enum ConfirmStatus {
    /// The handler did not call `confirm` (the lock stays until its TTL).
    NotCalled,
    /// The completed record was written.
    Confirmed,
    /// The lease was gone (expired, or lost by Redis in a restart without persistence) but
    /// nobody held the key: the completed record was written.
    ConfirmedAfterExpiry,
    /// Another worker holds the key: nothing was written.
    LeaseLost,
    /// Redis failed, after the resends `idempotency::retry` allows; the processing record
    /// stays until its TTL (v2's weakness F).
    Failed(StoreError),
}

/// Why `confirm` did not write the completed record.
#[derive(Clone, Debug, PartialEq)]
pub enum ConfirmError {
    /// Another worker holds the key (the lease expired and was taken).
    LeaseLost,
    /// Redis failed.
    Redis(StoreError),
}

impl fmt::Display for ConfirmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfirmError::LeaseLost => f.write_str("lease lost: another worker holds the key"),
            ConfirmError::Redis(e) => write!(f, "confirm failed: {e}"),
        }
    }
}

impl std::error::Error for ConfirmError {}

/// What became of the lock after a handler error.
#[derive(Clone, Debug, PartialEq)]
pub enum ReleaseStatus {
    /// The key was deleted.
    Released,
    /// There was nothing to delete, or (fenced) another worker holds the key.
    NotHeld,
    /// Redis failed; the lock stays until its TTL.
    Failed(StoreError),
    /// The handler ran unprotected: there was no lock.
    Unprotected,
}

/// Why `process` returned no outcome.
#[derive(Debug, PartialEq)]
pub enum ProcessError<E> {
    /// The handler failed; the lock was released as `release` says.
    Handler {
        /// The handler's error.
        error: E,
        /// What became of the lock.
        release: ReleaseStatus,
    },
    /// Redis failed and the policy is `fail_closed`: the handler did not run.
    Redis(StoreError),
    /// The message has no key and the policy is `fail_closed`: the handler did not run.
    Unkeyable(KeyError),
}

impl<E: fmt::Display> fmt::Display for ProcessError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessError::Handler { error, release } => {
                write!(f, "handler failed: {error} (lock {release:?})")
            }
            ProcessError::Redis(e) => write!(f, "not processed (fail_closed): {e}"),
            ProcessError::Unkeyable(e) => write!(f, "not processed (fail_closed): {e}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for ProcessError<E> {}

struct Shared {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: Config,
    instance_id: String,
    calls: AtomicU64,
    floor: Option<Arc<dyn FenceFloor>>,
}

/// Guards deliveries with the configured protocol. Cheap to clone; clones share the store.
#[derive(Clone)]
pub struct Consumer {
    shared: Arc<Shared>,
}

impl fmt::Debug for Consumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("config", &self.shared.config)
            .field("instance_id", &self.shared.instance_id)
            .finish()
    }
}

/// The lease of one `process` call, shared by the handler's context and the renewal loop.
struct Lease {
    owner: Option<Owner>,
    state: Mutex<LeaseState>,
}

#[derive(Default)]
struct LeaseState {
    confirm: Option<ConfirmStatus>,
    /// Renewal found another owner's record (or none): the lease is gone.
    lost: bool,
}

/// What a handler gets: who the event is, and the `confirm` to call after its commit.
#[derive(Clone)]
pub struct Context {
    shared: Arc<Shared>,
    id: Option<Arc<EventKey>>,
    lease: Option<Arc<Lease>>,
}

impl Context {
    /// The event's Redis key; `None` when the message has no key (unprotected).
    pub fn key(&self) -> Option<&str> {
        self.id.as_deref().map(|id| id.key.as_str())
    }

    /// The event's identity, when it has one.
    pub fn event(&self) -> Option<&EventKey> {
        self.id.as_deref()
    }

    /// The event id as text, when the event has one.
    pub fn event_id(&self) -> Option<String> {
        self.id.as_deref().and_then(EventKey::event_id_text)
    }

    /// The lease's fencing token (`fenced` only): pass it to the effect store, which must
    /// reject a commit with a lower token than it has seen for this event.
    pub fn fence(&self) -> Option<u64> {
        self.lease
            .as_ref()
            .and_then(|l| l.owner.as_ref())
            .map(|o| o.fence)
    }

    /// False when the handler runs without protection (fail-open).
    pub fn is_protected(&self) -> bool {
        self.lease.is_some()
    }

    /// True once renewal found the lease taken by someone else (`fenced` only). A handler may
    /// check it before committing, but only the fencing token makes the commit safe.
    pub fn lease_lost(&self) -> bool {
        self.lease
            .as_ref()
            .is_some_and(|l| l.state.lock().expect("lease state").lost)
    }

    /// Marks the event completed. Call it after the handler's own transaction commits.
    /// Unprotected, it does nothing (as v2's no-op confirm). Calling it again returns the first
    /// call's result without asking Redis.
    pub async fn confirm(&self) -> Result<(), ConfirmError> {
        let (Some(lease), Some(id)) = (&self.lease, &self.id) else {
            return Ok(());
        };
        let earlier = lease.state.lock().expect("lease state").confirm.clone();
        let status = match earlier {
            Some(status) => status,
            None => {
                let status = self.confirm_once(lease, id).await;
                lease.state.lock().expect("lease state").confirm = Some(status.clone());
                status
            }
        };
        match status {
            ConfirmStatus::Confirmed | ConfirmStatus::ConfirmedAfterExpiry => Ok(()),
            ConfirmStatus::LeaseLost => Err(ConfirmError::LeaseLost),
            ConfirmStatus::Failed(e) => Err(ConfirmError::Redis(e)),
            ConfirmStatus::NotCalled => unreachable!("a confirm call never records NotCalled"),
        }
    }

    async fn confirm_once(&self, lease: &Lease, id: &EventKey) -> ConfirmStatus {
        let s = &self.shared;
        let now_us = s.clock.now_unix_us();
        let result = match &lease.owner {
            None => V2::confirm(&*s.store, &*s.clock, &s.config, id)
                .await
                .map(|()| ConfirmReply::Confirmed),
            Some(owner) => Fenced::confirm(&*s.store, &s.config, id, owner, now_us).await,
        };
        match result {
            Ok(ConfirmReply::Confirmed) => ConfirmStatus::Confirmed,
            Ok(ConfirmReply::ConfirmedAfterExpiry) => ConfirmStatus::ConfirmedAfterExpiry,
            Ok(ConfirmReply::LeaseLost) => ConfirmStatus::LeaseLost,
            Err(e) => ConfirmStatus::Failed(e),
        }
    }
}

impl Consumer {
    /// A consumer for `config` on `store`, reading time from `clock`. `instance_id` must be
    /// unique among all processes (and incarnations) sharing the store, e.g. host, pid and
    /// start time: fenced owner tokens are `{instance_id}/{call number}`.
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        instance_id: impl Into<String>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Consumer {
            shared: Arc::new(Shared {
                store,
                clock,
                config,
                instance_id: instance_id.into(),
                calls: AtomicU64::new(0),
                floor: None,
            }),
        })
    }

    /// Takes each fenced acquire's floor from `floor` (the effect store's highest accepted
    /// token for the event): tokens then stay above every accepted one even when Redis loses
    /// its counter or its clock is behind. Costs one read of the effect store per acquire.
    /// `floor` must key its tokens by the identifier the handler's commit uses
    /// ([`Context::key`] or [`Context::event_id`]; see [`FenceFloor`]), or it reads 0.
    pub fn with_fence_floor(self, floor: Arc<dyn FenceFloor>) -> Self {
        let s = &self.shared;
        Consumer {
            shared: Arc::new(Shared {
                store: s.store.clone(),
                clock: s.clock.clone(),
                config: s.config.clone(),
                instance_id: s.instance_id.clone(),
                calls: AtomicU64::new(s.calls.load(Ordering::Relaxed)),
                floor: Some(floor),
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Derives the key of `msg` under this consumer's configuration.
    pub fn key(&self, msg: &Message) -> Result<EventKey, KeyError> {
        derive_key(
            &self.shared.config.key_prefix,
            &self.shared.config.service_name,
            msg,
        )
    }

    /// Processes one delivery: runs `handler` at most once, under the protocol's lock.
    pub async fn process<T, E, F, Fut>(
        &self,
        msg: &Message,
        handler: F,
    ) -> Result<Outcome<T>, ProcessError<E>>
    where
        F: FnOnce(Context) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.process_keyed(self.key(msg), handler).await
    }

    /// [`Consumer::process`] for a delivery whose key the caller already derived with
    /// [`Consumer::key`] (to log its event id first, say): the key is the costly part of a
    /// delivery (canonical JSON and SHA-256), so it is derived once. The key may be an
    /// `Arc<EventKey>`, for a caller that keeps keys to use again (a redelivery, a busy retry):
    /// handing over its `Arc` copies nothing.
    pub async fn process_keyed<K, T, E, F, Fut>(
        &self,
        key: Result<K, KeyError>,
        handler: F,
    ) -> Result<Outcome<T>, ProcessError<E>>
    where
        K: Into<Arc<EventKey>>,
        F: FnOnce(Context) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let s = &self.shared;
        let fail_open = s.config.on_redis_failure == FailurePolicy::FailOpen;
        let id: Arc<EventKey> = match key {
            Ok(id) => id.into(),
            Err(e) if fail_open => return self.unprotected(None, Unprotected::Unkeyable(e), handler).await,
            Err(e) => return Err(ProcessError::Unkeyable(e)),
        };
        let acquired = match s.config.protocol {
            Protocol::V2 => V2::acquire(&*s.store, &*s.clock, &s.config, &id).await,
            Protocol::Fenced => {
                let call = s.calls.fetch_add(1, Ordering::Relaxed);
                // `{instance}/{call}`, joined by hand (the formatter cost more than the join).
                let mut token = String::with_capacity(s.instance_id.len() + 21);
                token.push_str(&s.instance_id);
                token.push('/');
                token.push_str(itoa::Buffer::new().format(call));
                let floor = match &s.floor {
                    None => Ok(0),
                    Some(f) => f.highest(&id).await,
                };
                match floor {
                    Ok(floor) => {
                        Fenced::acquire(&*s.store, &s.config, &id, s.clock.now_unix_us(), &token, floor).await
                    }
                    Err(e) => Err(e),
                }
            }
        };
        let (owner, took_over_stale) = match acquired {
            Ok(Acquired::Lease {
                owner,
                took_over_stale,
            }) => (owner, took_over_stale),
            Ok(Acquired::Duplicate) => return Ok(Outcome::Duplicate),
            Ok(Acquired::Busy) => return Ok(Outcome::Busy),
            Ok(Acquired::RaceLost) => return Ok(Outcome::RaceLost),
            Err(e) if fail_open => return self.unprotected(Some(id), Unprotected::Redis(e), handler).await,
            Err(e) => return Err(ProcessError::Redis(e)),
        };
        let fence = owner.as_ref().map(|o| o.fence);
        if let (Some(floor), Some(owner)) = (&s.floor, &owner) {
            // Claim the token in the effect store before the handler runs (see
            // FenceFloor::claim). A store that cannot take the claim is a store failure: give
            // the lease back and let the policy decide, as for a floor that cannot be read.
            if let Err(e) = floor.claim(&id, owner.fence).await {
                // Best effort: a lease not released expires with its TTL.
                let _ = Fenced::release(&*s.store, &id.key, owner).await;
                if fail_open {
                    return self.unprotected(Some(id), Unprotected::Redis(e), handler).await;
                }
                return Err(ProcessError::Redis(e));
            }
        }
        let lease = Arc::new(Lease {
            owner,
            state: Mutex::default(),
        });
        let ctx = Context {
            shared: s.clone(),
            id: Some(id.clone()),
            lease: Some(lease.clone()),
        };
        let result = if let Some(owner) = &lease.owner {
            with_renewal(handler(ctx), self.renew_loop(&id, owner, &lease)).await
        } else {
            handler(ctx).await
        };
        match result {
            Ok(value) => {
                let confirm = lease.state.lock().expect("lease state").confirm.clone();
                Ok(Outcome::Processed {
                    value,
                    fence,
                    confirm: confirm.unwrap_or(ConfirmStatus::NotCalled),
                    took_over_stale,
                })
            }
            Err(error) => {
                let released = match &lease.owner {
                    None => V2::release(&*s.store, &id).await,
                    Some(owner) => Fenced::release(&*s.store, &id.key, owner).await,
                };
                let release = match released {
                    Ok(true) => ReleaseStatus::Released,
                    Ok(false) => ReleaseStatus::NotHeld,
                    Err(e) => ReleaseStatus::Failed(e),
                };
                Err(ProcessError::Handler { error, release })
            }
        }
    }

    async fn unprotected<T, E, F, Fut>(
        &self,
        id: Option<Arc<EventKey>>,
        reason: Unprotected,
        handler: F,
    ) -> Result<Outcome<T>, ProcessError<E>>
    where
        F: FnOnce(Context) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let ctx = Context {
            shared: self.shared.clone(),
            id,
            lease: None,
        };
        match handler(ctx).await {
            Ok(value) => Ok(Outcome::Unprotected { value, reason }),
            Err(error) => Err(ProcessError::Handler {
                error,
                release: ReleaseStatus::Unprotected,
            }),
        }
    }

    /// Renews the lease every third of its TTL, and at least every [`MAX_RENEW_INTERVAL`],
    /// until it is confirmed or lost, each time with a fresh `started_at` so v2 readers see it
    /// live. Never returns while the lease is held; `with_renewal` drops it when the handler
    /// finishes.
    async fn renew_loop(&self, id: &EventKey, owner: &Owner, lease: &Lease) {
        let s = &self.shared;
        let interval = renew_interval(s.config.processing_ttl_s);
        loop {
            s.clock.sleep(interval).await;
            if lease.state.lock().expect("lease state").confirm.is_some() {
                return;
            }
            match Fenced::renew(&*s.store, &s.config, id, owner, s.clock.now_unix_us()).await {
                Ok(true) => {}
                Ok(false) => {
                    let mut state = lease.state.lock().expect("lease state");
                    // A confirm that landed meanwhile replaced the record: not a loss.
                    if state.confirm.is_none() {
                        state.lost = true;
                    }
                    return;
                }
                // Redis is unreachable: try again next time; the lease may expire meanwhile,
                // which confirm will notice.
                Err(_) => {}
            }
        }
    }
}

/// How long a fenced lease waits between renewals: a third of its TTL, at most
/// [`MAX_RENEW_INTERVAL`].
fn renew_interval(processing_ttl_s: u64) -> Duration {
    Duration::from_millis(processing_ttl_s * 1000 / 3).min(MAX_RENEW_INTERVAL)
}

/// Runs `main` to completion while also driving `side`; `side` is dropped when `main` ends.
async fn with_renewal<F: Future>(main: F, side: impl Future<Output = ()>) -> F::Output {
    let mut main = pin!(main);
    let mut side = pin!(side);
    let mut side_done = false;
    poll_fn(|cx| {
        if let Poll::Ready(v) = main.as_mut().poll(cx) {
            return Poll::Ready(v);
        }
        if !side_done && side.as_mut().poll(cx).is_ready() {
            side_done = true;
        }
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{BoxFuture, Command, Reply};
    use std::sync::atomic::AtomicUsize;

    /// A Redis that is down, or that answers nonsense.
    struct Broken(Result<Reply, StoreError>);
    impl Store for Broken {
        fn exec(&self, _: Command) -> BoxFuture<'_, Result<Reply, StoreError>> {
            let r = self.0.clone();
            Box::pin(async move { r })
        }
    }
    struct Fixed;
    impl Clock for Fixed {
        fn now_unix_us(&self) -> i64 {
            1_700_000_000_000_000
        }
        fn sleep(&self, _: Duration) -> crate::store::BoxFuture<'static, ()> {
            Box::pin(std::future::pending())
        }
    }

    fn consumer(protocol: Protocol, policy: FailurePolicy, reply: Result<Reply, StoreError>) -> Consumer {
        let config = Config::new("svc").protocol(protocol).on_redis_failure(policy);
        Consumer::new(config, Arc::new(Broken(reply)), Arc::new(Fixed), "test").unwrap()
    }

    fn msg() -> Message {
        Message::new("t", br#"{"event_id": "e1", "data": {}}"#.to_vec())
    }

    async fn run(
        c: &Consumer,
        m: &Message,
        calls: &AtomicUsize,
    ) -> Result<Outcome<()>, ProcessError<String>> {
        c.process(m, |ctx| async move {
            calls.fetch_add(1, Ordering::SeqCst);
            assert!(!ctx.is_protected());
            assert_eq!(ctx.fence(), None);
            ctx.confirm().await.map_err(|e| e.to_string())
        })
        .await
    }

    #[tokio::test]
    async fn redis_down_fail_open_runs_the_handler_unprotected_and_fail_closed_does_not() {
        let down = Err(StoreError::Unavailable("connection refused".into()));
        for protocol in [Protocol::V2, Protocol::Fenced] {
            let calls = AtomicUsize::new(0);
            let open = consumer(protocol, FailurePolicy::FailOpen, down.clone());
            let outcome = run(&open, &msg(), &calls).await.unwrap();
            assert!(matches!(
                outcome,
                Outcome::Unprotected {
                    reason: Unprotected::Redis(_),
                    ..
                }
            ));
            assert_eq!(calls.load(Ordering::SeqCst), 1);

            let closed = consumer(protocol, FailurePolicy::FailClosed, down.clone());
            let err = run(&closed, &msg(), &calls).await.unwrap_err();
            assert_eq!(
                err,
                ProcessError::Redis(StoreError::Unavailable("connection refused".into()))
            );
            assert_eq!(
                calls.load(Ordering::SeqCst),
                1,
                "fail_closed did not run the handler"
            );
        }
    }

    #[tokio::test]
    async fn a_reply_the_protocol_does_not_expect_counts_as_a_redis_failure() {
        for protocol in [Protocol::V2, Protocol::Fenced] {
            let calls = AtomicUsize::new(0);
            let c = consumer(protocol, FailurePolicy::FailClosed, Ok(Reply::Int(42)));
            let err = run(&c, &msg(), &calls).await.unwrap_err();
            assert!(
                matches!(err, ProcessError::Redis(StoreError::Protocol(_))),
                "{err:?}"
            );
            assert_eq!(calls.load(Ordering::SeqCst), 0);
        }
    }

    #[tokio::test]
    async fn a_message_without_a_key_follows_the_failure_policy() {
        let bad = Message::new("t", b"not json".to_vec());
        let calls = AtomicUsize::new(0);
        let open = consumer(Protocol::Fenced, FailurePolicy::FailOpen, Ok(Reply::Nil));
        let outcome = run(&open, &bad, &calls).await.unwrap();
        assert!(matches!(
            outcome,
            Outcome::Unprotected {
                reason: Unprotected::Unkeyable(KeyError::BodyNotJson(_)),
                ..
            }
        ));
        let closed = consumer(Protocol::Fenced, FailurePolicy::FailClosed, Ok(Reply::Nil));
        assert!(matches!(
            run(&closed, &bad, &calls).await,
            Err(ProcessError::Unkeyable(_))
        ));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_unprotected_handler_error_is_returned_once() {
        let calls = AtomicUsize::new(0);
        let c = consumer(Protocol::V2, FailurePolicy::FailOpen, Err(StoreError::Timeout));
        let r = c
            .process(&msg(), |_| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>("boom")
            })
            .await;
        assert_eq!(
            r,
            Err(ProcessError::Handler {
                error: "boom",
                release: ReleaseStatus::Unprotected
            })
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "unlike v2's original, no second call"
        );
    }

    /// Answers every acquire with "busy" and remembers the floor it was given.
    struct Floors(Mutex<Vec<u64>>);
    impl Store for Floors {
        fn exec(&self, cmd: Command) -> BoxFuture<'_, Result<Reply, StoreError>> {
            if let Command::Script(crate::store::Script::Acquire { floor, .. }) = cmd {
                self.0.lock().unwrap().push(floor);
            }
            Box::pin(async { Ok(Reply::Array(vec![Reply::Bulk(b"busy".to_vec()), Reply::Int(5)])) })
        }
    }
    struct Highest(Result<u64, StoreError>);
    impl FenceFloor for Highest {
        fn highest<'a>(&'a self, event: &'a EventKey) -> BoxFuture<'a, Result<u64, StoreError>> {
            // The event's whole identity: the Redis key and the event id the handler sees.
            assert!(
                event.key.starts_with("huleedu:idempotency:v2:svc:"),
                "{}",
                event.key
            );
            assert_eq!(event.event_id_text().as_deref(), Some("e1"));
            let r = self.0.clone();
            Box::pin(async move { r })
        }
        fn claim<'a>(&'a self, _: &'a EventKey, _: u64) -> BoxFuture<'a, Result<(), StoreError>> {
            unreachable!("every acquire here is busy")
        }
    }

    /// Grants every acquire with token 7 and records the commands it saw.
    struct Grants(Mutex<Vec<&'static str>>);
    impl Store for Grants {
        fn exec(&self, cmd: Command) -> BoxFuture<'_, Result<Reply, StoreError>> {
            let reply = match cmd {
                Command::Script(crate::store::Script::Acquire { .. }) => {
                    self.0.lock().unwrap().push("acquire");
                    Reply::Array(vec![Reply::Bulk(b"acquired".to_vec()), Reply::Int(7)])
                }
                Command::Script(crate::store::Script::Release { .. }) => {
                    self.0.lock().unwrap().push("release");
                    Reply::Int(1)
                }
                _ => {
                    self.0.lock().unwrap().push("other");
                    Reply::Int(1)
                }
            };
            Box::pin(async move { Ok(reply) })
        }
    }
    /// A floor of 0 that records each claim and answers it with `claim`.
    struct Claims(Mutex<Vec<u64>>, Result<(), StoreError>);
    impl FenceFloor for Claims {
        fn highest<'a>(&'a self, _: &'a EventKey) -> BoxFuture<'a, Result<u64, StoreError>> {
            Box::pin(async { Ok(0) })
        }
        fn claim<'a>(&'a self, _: &'a EventKey, fence: u64) -> BoxFuture<'a, Result<(), StoreError>> {
            self.0.lock().unwrap().push(fence);
            let r = self.1.clone();
            Box::pin(async move { r })
        }
    }

    #[tokio::test]
    async fn an_acquired_token_is_claimed_before_the_handler_runs_and_a_failed_claim_gives_the_lease_back() {
        for (claim, policy) in [
            (Ok(()), FailurePolicy::FailClosed),
            (Err(StoreError::Timeout), FailurePolicy::FailClosed),
            (Err(StoreError::Timeout), FailurePolicy::FailOpen),
        ] {
            let store = Arc::new(Grants(Mutex::default()));
            let floor = Arc::new(Claims(Mutex::default(), claim.clone()));
            let c = Consumer::new(
                Config::new("svc").on_redis_failure(policy),
                store.clone(),
                Arc::new(Fixed),
                "test",
            )
            .unwrap()
            .with_fence_floor(floor.clone());
            let seen = Arc::new(Mutex::new(Vec::new()));
            let result = c
                .process(&msg(), |ctx| {
                    let (seen, store) = (seen.clone(), store.clone());
                    async move {
                        // What the store had seen when the handler started.
                        seen.lock()
                            .unwrap()
                            .extend(store.0.lock().unwrap().iter().copied());
                        Ok::<_, String>(ctx.fence())
                    }
                })
                .await;
            assert_eq!(*floor.0.lock().unwrap(), [7], "the acquired token is claimed");
            match (claim, policy) {
                (Ok(()), _) => {
                    assert!(matches!(result, Ok(Outcome::Processed { value: Some(7), .. })));
                    assert_eq!(*seen.lock().unwrap(), ["acquire"]);
                }
                (Err(_), FailurePolicy::FailClosed) => {
                    assert_eq!(result, Err(ProcessError::Redis(StoreError::Timeout)));
                    assert!(seen.lock().unwrap().is_empty(), "the handler did not run");
                    assert_eq!(*store.0.lock().unwrap(), ["acquire", "release"]);
                }
                (Err(_), FailurePolicy::FailOpen) => {
                    assert!(matches!(
                        result,
                        Ok(Outcome::Unprotected {
                            value: None,
                            reason: Unprotected::Redis(StoreError::Timeout)
                        })
                    ));
                    assert_eq!(
                        *seen.lock().unwrap(),
                        ["acquire", "release"],
                        "released, then unprotected"
                    );
                }
            }
        }
    }

    #[tokio::test]
    async fn a_fence_floor_is_read_before_each_acquire_and_its_failure_follows_the_policy() {
        let store = Arc::new(Floors(Mutex::default()));
        let make = |policy, floor| {
            Consumer::new(
                Config::new("svc").on_redis_failure(policy),
                store.clone(),
                Arc::new(Fixed),
                "test",
            )
            .unwrap()
            .with_fence_floor(Arc::new(Highest(floor)))
        };
        let calls = AtomicUsize::new(0);
        let c = make(FailurePolicy::FailClosed, Ok(1_764_315_276_376_294));
        assert_eq!(run(&c, &msg(), &calls).await, Ok(Outcome::Busy));
        let plain = Consumer::new(Config::new("svc"), store.clone(), Arc::new(Fixed), "t").unwrap();
        assert_eq!(run(&plain, &msg(), &calls).await, Ok(Outcome::Busy));
        assert_eq!(
            *store.0.lock().unwrap(),
            [1_764_315_276_376_294, 0],
            "no floor source: 0"
        );
        let down = make(FailurePolicy::FailClosed, Err(StoreError::Timeout));
        assert_eq!(
            run(&down, &msg(), &calls).await,
            Err(ProcessError::Redis(StoreError::Timeout))
        );
        let open = make(FailurePolicy::FailOpen, Err(StoreError::Timeout));
        assert!(matches!(
            run(&open, &msg(), &calls).await,
            Ok(Outcome::Unprotected { .. })
        ));
        assert_eq!(store.0.lock().unwrap().len(), 2, "no acquire without a floor");
    }

    #[test]
    fn a_lease_renews_every_third_of_its_ttl_and_at_least_every_100_s() {
        assert_eq!(renew_interval(30), Duration::from_secs(10));
        assert_eq!(
            renew_interval(300),
            Duration::from_secs(100),
            "v2's TTL: unchanged"
        );
        for ttl_s in [301, 900, 1_800, 86_400] {
            assert_eq!(renew_interval(ttl_s), Duration::from_secs(100), "{ttl_s}");
        }
        assert!(MAX_RENEW_INTERVAL.as_secs() * 2 < crate::v2::STALE_AFTER_S);
    }

    #[test]
    fn with_renewal_drops_the_side_future_when_the_main_one_ends() {
        let side_polls = AtomicUsize::new(0);
        let side = poll_fn(|_| {
            side_polls.fetch_add(1, Ordering::SeqCst);
            Poll::<()>::Pending
        });
        let out = block_on(with_renewal(async { 7 }, side));
        assert_eq!(out, 7);
        assert_eq!(side_polls.load(Ordering::SeqCst), 0, "main was ready first");
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }
}
