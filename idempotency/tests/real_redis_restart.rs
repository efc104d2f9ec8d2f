#![cfg(feature = "redis")]
//! The library across a real redis-server restart, and commands whose reply was lost.
//!
//! A fenced handler runs while its server is killed and started again on the same port. With
//! `appendfsync always` the lease survives, the confirm (which finds its connection broken) is
//! sent again after the reconnect and lands, and a redelivery is a duplicate. Without
//! persistence the lease is gone with the restart: a delivery in between runs the handler again
//! (the limit of a lock kept only in Redis) and the first confirm then meets the lost lease;
//! with no delivery in between the confirm writes the completed record.
//!
//! `#[ignore]`d with the reason like every real-Redis test; `scripts/test` runs them.

mod support;

use idempotency::store::{BoxFuture, Command, Reply, Script, Store};
use idempotency::{Config, ConfirmStatus, Outcome, Protocol, StoreError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::*;

const SPELLCHECK: &str = "huleedu.essay.spellcheck.requested.v1";

type HandlerResult = Result<(), String>;

fn config() -> Config {
    Config::new(unique("svc").replace('-', "_")).protocol(Protocol::Fenced)
}

/// Runs one delivery whose handler applies `tag`, then waits `hold` (while the test restarts the
/// server), then confirms.
async fn deliver_holding(
    c: &idempotency::Consumer,
    msg: &idempotency::Message,
    effects: &Effects,
    tag: &'static str,
    hold: Duration,
    held: tokio::sync::oneshot::Sender<()>,
) -> Outcome<ConfirmStatus> {
    c.process(msg, |ctx| async move {
        effects.apply(tag);
        held.send(()).unwrap();
        tokio::time::sleep(hold).await;
        let r = ctx.confirm().await;
        HandlerResult::Ok(()).map(|()| match r {
            Ok(()) => ConfirmStatus::Confirmed,
            Err(idempotency::ConfirmError::LeaseLost) => ConfirmStatus::LeaseLost,
            Err(idempotency::ConfirmError::Redis(e)) => ConfirmStatus::Failed(e),
        })
    })
    .await
    .unwrap()
}

/// [`deliver_holding`] with the server killed and started again 300 ms into the handler.
async fn deliver_across_a_restart(
    c: &idempotency::Consumer,
    msg: &idempotency::Message,
    effects: &Effects,
    tag: &'static str,
    hold: Duration,
    server: &mut PrivateServer,
) -> Outcome<ConfirmStatus> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let run = deliver_holding(c, msg, effects, tag, hold, tx);
    let restart = async {
        rx.await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        server.restart();
    };
    tokio::join!(run, restart).0
}

fn confirm_of(outcome: &Outcome<ConfirmStatus>) -> ConfirmStatus {
    match outcome {
        Outcome::Processed { confirm, .. } => confirm.clone(),
        other => panic!("not processed: {other:?}"),
    }
}

#[tokio::test]
#[ignore = "needs a redis-server: run scripts/test (or set IDEMPOTENCY_REDIS_URL and pass -- --include-ignored)"]
async fn with_appendfsync_always_the_confirm_lands_after_a_restart_and_a_redelivery_is_a_duplicate() {
    let mut server = PrivateServer::start_persistent("restart_always");
    let c = consumer(
        config(),
        store(&server.url()).await,
        Arc::new(SkewedClock::default()),
    );
    let msg = envelope(SPELLCHECK);
    let effects = Effects::default();
    let hold = Duration::from_millis(1_500);
    let outcome = deliver_across_a_restart(&c, &msg, &effects, "first", hold, &mut server).await;
    assert_eq!(
        confirm_of(&outcome),
        ConfirmStatus::Confirmed,
        "the confirm is sent again after the reconnect: {outcome:?}"
    );
    assert!(matches!(
        outcome,
        Outcome::Processed {
            fence: Some(_),
            took_over_stale: false,
            ..
        }
    ));
    let again = c
        .process(&msg, |_| async { HandlerResult::Ok(()) })
        .await
        .unwrap();
    assert_eq!(again, Outcome::Duplicate, "the redelivery is a duplicate");
    assert_eq!(effects.all(), vec!["first"]);
    // The record is the completed one, with the event type's TTL.
    let mut con = raw(&server.url()).await;
    let key = c.key(&msg).unwrap().key;
    let ttl = pttl(&mut con, &key).await;
    assert!(ttl > 3_500_000 && ttl <= 3_600_000, "{ttl}");
}

#[tokio::test]
#[ignore = "needs a redis-server: run scripts/test (or set IDEMPOTENCY_REDIS_URL and pass -- --include-ignored)"]
async fn without_persistence_a_restart_loses_the_lease_a_redelivery_runs_again_and_the_confirm_meets_the_lost_lease(
) {
    let mut server = PrivateServer::start("restart_none");
    let a = consumer(
        config(),
        store(&server.url()).await,
        Arc::new(SkewedClock::default()),
    );
    let b = consumer(
        a.config().clone(),
        store(&server.url()).await,
        Arc::new(SkewedClock::default()),
    );
    let msg = envelope(SPELLCHECK);
    let effects = Effects::default();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let run = deliver_holding(&a, &msg, &effects, "first", Duration::from_millis(2_000), tx);
    let redeliver = async {
        rx.await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        server.restart();
        // The lease went with the restart: the redelivery takes the key and runs the handler.
        let (tx, _rx) = tokio::sync::oneshot::channel();
        deliver_holding(&b, &msg, &effects, "second", Duration::ZERO, tx).await
    };
    let (first, second) = tokio::join!(run, redeliver);
    assert_eq!(confirm_of(&second), ConfirmStatus::Confirmed);
    assert_eq!(
        confirm_of(&first),
        ConfirmStatus::LeaseLost,
        "the first confirm meets the record of the second, not a broken pipe"
    );
    assert_eq!(effects.all(), vec!["first", "second"], "the documented limit");

    // No delivery in between: the confirm finds no record and writes the completed one.
    let msg = envelope(SPELLCHECK);
    let hold = Duration::from_millis(1_000);
    let third = deliver_across_a_restart(&a, &msg, &effects, "third", hold, &mut server).await;
    match &third {
        Outcome::Processed { confirm, .. } => assert_eq!(*confirm, ConfirmStatus::ConfirmedAfterExpiry),
        other => panic!("{other:?}"),
    }
    let again = b
        .process(&msg, |_| async { HandlerResult::Ok(()) })
        .await
        .unwrap();
    assert_eq!(again, Outcome::Duplicate);
}

/// Runs every command on the real server, and loses the reply of the first `lose` commands
/// whose name is `name` (the command ran; the caller hears of a broken connection). Each
/// command goes through the retry policy the real store uses ([`idempotency::retry::exec`]),
/// with the lossy attempt inside it, where a connection would lose the reply.
struct LosesReplies {
    inner: Arc<dyn Store>,
    name: &'static str,
    lose: AtomicUsize,
    sent: AtomicUsize,
}

impl LosesReplies {
    async fn attempt(&self, command: std::sync::Arc<Command>) -> Result<Reply, StoreError> {
        let matches = command.name() == self.name;
        if matches {
            self.sent.fetch_add(1, Ordering::SeqCst);
        }
        let reply = self.inner.exec((*command).clone()).await;
        if matches && reply.is_ok() && self.lose.load(Ordering::SeqCst) > 0 {
            self.lose.fetch_sub(1, Ordering::SeqCst);
            return Err(StoreError::ConnectionLost("reply lost by the test".into()));
        }
        reply
    }
}

impl Store for LosesReplies {
    fn exec(&self, command: Command) -> BoxFuture<'_, Result<Reply, StoreError>> {
        Box::pin(async move {
            let start = tokio::time::Instant::now();
            idempotency::retry::exec(
                command,
                Duration::from_millis(500),
                |command, _| self.attempt(command),
                || start.elapsed(),
                tokio::time::sleep,
            )
            .await
        })
    }
}

/// The real server runs each script twice, as after a lost reply: the second acquire finds the
/// caller's own lease and answers `acquired` with its token, the second confirm finds the
/// lease's completed record and answers confirmed; the retry policy sends them again.
#[tokio::test]
#[ignore = "needs a redis-server: run scripts/test (or set IDEMPOTENCY_REDIS_URL and pass -- --include-ignored)"]
async fn an_acquire_or_confirm_sent_again_after_its_reply_was_lost_recognises_its_own_lease() {
    let url = redis_url("lost_replies");
    for name in ["EVALSHA:acquire", "EVALSHA:confirm"] {
        let lossy = Arc::new(LosesReplies {
            inner: store(&url).await,
            name,
            lose: AtomicUsize::new(1),
            sent: AtomicUsize::new(0),
        });
        let c = idempotency::Consumer::new(
            config(),
            lossy.clone(),
            Arc::new(SkewedClock::default()),
            unique("i"),
        )
        .unwrap();
        let msg = envelope(SPELLCHECK);
        let effects = &Effects::default();
        let outcome = c
            .process(&msg, |ctx| async move {
                effects.apply("once");
                ctx.confirm().await.map_err(|e| e.to_string())
            })
            .await;
        assert!(
            matches!(
                outcome,
                Ok(Outcome::Processed {
                    confirm: ConfirmStatus::Confirmed,
                    fence: Some(_),
                    ..
                })
            ),
            "{name}: {outcome:?}"
        );
        assert_eq!(lossy.sent.load(Ordering::SeqCst), 2, "{name} was sent twice");
        assert_eq!(effects.all(), vec!["once"]);
        let again = c
            .process(&msg, |_| async { HandlerResult::Ok(()) })
            .await
            .unwrap();
        assert_eq!(again, Outcome::Duplicate, "{name}");
    }

    // The scripts themselves, run twice with the same arguments.
    let s = store(&url).await;
    let cfg = config();
    let c = consumer(cfg.clone(), s.clone(), Arc::new(SkewedClock::default()));
    let id = c.key(&envelope(SPELLCHECK)).unwrap();
    let (head, tail) = idempotency::record::processing_fenced_parts(&cfg.service_name, &id, 1, "me/1");
    let acquire = Command::Script(Script::Acquire {
        key: id.key.clone(),
        fence_key: idempotency::fenced::fence_key(&cfg),
        ttl_ms: 60_000,
        head,
        tail,
        floor: 0,
    });
    let first = s.exec(acquire.clone()).await.unwrap();
    assert_eq!(
        s.exec(acquire).await.unwrap(),
        first,
        "the same lease, the same token"
    );
    let Reply::Array(items) = &first else {
        panic!("{first:?}")
    };
    let Reply::Int(fence) = items[1] else {
        panic!("{first:?}")
    };
    let owner = idempotency::record::Owner {
        token: "me/1".into(),
        fence: fence as u64,
    };
    let confirm = Command::Script(Script::Confirm {
        key: id.key.clone(),
        lease: idempotency::record::lease_tail(&owner),
        value: idempotency::record::completed_fenced(&cfg.service_name, &id, 2, &owner),
        ttl_s: 60,
    });
    assert_eq!(s.exec(confirm.clone()).await.unwrap(), Reply::Int(1));
    assert_eq!(
        s.exec(confirm).await.unwrap(),
        Reply::Int(1),
        "its own completed record"
    );
    // Another call's acquire finds the completed record: a duplicate.
    let other = idempotency::record::processing_fenced_parts(&cfg.service_name, &id, 1, "other/1");
    let reply = s
        .exec(Command::Script(Script::Acquire {
            key: id.key.clone(),
            fence_key: idempotency::fenced::fence_key(&cfg),
            ttl_ms: 60_000,
            head: other.0,
            tail: other.1,
            floor: 0,
        }))
        .await
        .unwrap();
    assert_eq!(reply, Reply::Array(vec![Reply::Bulk(b"duplicate".to_vec())]));
}
