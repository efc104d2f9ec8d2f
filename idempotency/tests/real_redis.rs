#![cfg(feature = "redis")]
//! The library against a real redis-server, per protocol: what each protocol does on the wire
//! and what the effect log shows the handler really did.
//!
//! Every test here is `#[ignore]`d with the reason, so a plain `cargo test` shows them as
//! ignored rather than passed. `scripts/test` starts a server, sets `IDEMPOTENCY_REDIS_URL` and
//! runs them with `-- --include-ignored`; run that way without the variable, each test fails.
//! The outage tests start servers of their own (`IDEMPOTENCY_REDIS_SERVER`, else `redis-server`).

mod support;

use idempotency::record::{parse_record, RecordState};
use idempotency::{
    Config, ConfirmError, ConfirmStatus, FailurePolicy, Outcome, ProcessError, Protocol, ReleaseStatus,
    StoreError, Unprotected,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::*;

const SPELLCHECK: &str = "huleedu.essay.spellcheck.requested.v1"; // 3600 s in v2's table
const UNLISTED: &str = "huleedu.some.unlisted.event.v1"; // default 86400 s

type HandlerResult = Result<(), String>;

fn config(protocol: Protocol) -> Config {
    Config::new(unique("svc").replace('-', "_")).protocol(protocol)
}

macro_rules! per_protocol {
    ($($name:ident),* $(,)?) => {
        mod v2 { $( #[tokio::test] #[ignore = "needs a redis-server: run scripts/test (or set IDEMPOTENCY_REDIS_URL and pass -- --include-ignored)"] async fn $name() { super::$name(idempotency::Protocol::V2).await } )* }
        mod fenced { $( #[tokio::test] #[ignore = "needs a redis-server: run scripts/test (or set IDEMPOTENCY_REDIS_URL and pass -- --include-ignored)"] async fn $name() { super::$name(idempotency::Protocol::Fenced).await } )* }
    };
}

per_protocol!(
    first_delivery_is_processed_with_the_processing_ttl_then_the_event_types_ttl,
    a_duplicate_after_confirm_is_skipped_without_calling_the_handler,
    a_delivery_while_another_worker_holds_the_key_is_busy,
    a_handler_error_releases_the_lock_and_the_retry_runs_at_once,
    a_confirm_after_the_lease_was_lost,
    a_lock_left_by_a_worker_with_a_slow_clock,
    a_processing_record_without_ttl_or_started_at,
    a_handler_that_outlives_the_lock,
    redis_stopped_mid_test_fail_open,
    redis_stopped_mid_test_fail_closed,
);

async fn first_delivery_is_processed_with_the_processing_ttl_then_the_event_types_ttl(protocol: Protocol) {
    let url = redis_url("first_delivery");
    let store = store(&url).await;
    let c = consumer(config(protocol), store, Arc::new(SkewedClock::default()));
    for (event_type, ttl_s) in [(SPELLCHECK, 3_600), (UNLISTED, 86_400)] {
        let msg = envelope(event_type);
        let key = c.key(&msg).unwrap().key;
        let effects = Effects::default();
        let outcome = c
            .process(&msg, |ctx| {
                let (effects, url, key) = (effects.clone(), url.clone(), key.clone());
                async move {
                    let mut con = raw(&url).await;
                    let ttl = pttl(&mut con, &key).await;
                    assert!((299_000..=300_000).contains(&ttl), "processing PTTL {ttl}");
                    let value = get(&mut con, &key).await.unwrap();
                    assert!(matches!(
                        parse_record(&value),
                        RecordState::Processing {
                            started_at: Some(_),
                            ..
                        }
                    ));
                    assert_eq!(ctx.fence().is_some(), protocol == Protocol::Fenced);
                    effects.apply(ctx.event_id().unwrap());
                    ctx.confirm().await.map_err(|e| e.to_string())
                }
            })
            .await
            .unwrap();
        assert!(
            matches!(
                outcome,
                Outcome::Processed {
                    confirm: ConfirmStatus::Confirmed,
                    ..
                }
            ),
            "{outcome:?}"
        );
        assert_eq!(effects.all().len(), 1);
        let mut con = raw(&url).await;
        let ttl = pttl(&mut con, &key).await;
        assert!(
            (ttl_s * 1000 - 1_000..=ttl_s * 1000).contains(&ttl),
            "{event_type}: completed PTTL {ttl}"
        );
        assert_eq!(
            parse_record(&get(&mut con, &key).await.unwrap()),
            RecordState::Completed
        );
    }
}

async fn a_duplicate_after_confirm_is_skipped_without_calling_the_handler(protocol: Protocol) {
    let url = redis_url("duplicate_after_confirm");
    let c = consumer(
        config(protocol),
        store(&url).await,
        Arc::new(SkewedClock::default()),
    );
    let msg = envelope(SPELLCHECK);
    let effects = &Effects::default();
    let calls = &AtomicUsize::new(0);
    for _ in 0..3 {
        let _ = c
            .process(&msg, |ctx| async move {
                calls.fetch_add(1, Ordering::SeqCst);
                effects.apply("applied");
                ctx.confirm().await.map_err(|e| e.to_string())
            })
            .await
            .unwrap();
    }
    // The same event through a second consumer (another worker of the same service).
    let other = Consumer2::of(&c, &url).await;
    let outcome = other
        .process(&msg, |_| async { HandlerResult::Ok(()) })
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Duplicate);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(effects.all(), vec!["applied"]);
}

/// A second worker of the same service: same config, its own connection and identity.
struct Consumer2;
impl Consumer2 {
    async fn of(c: &idempotency::Consumer, url: &str) -> idempotency::Consumer {
        consumer(
            c.config().clone(),
            store(url).await,
            Arc::new(SkewedClock::default()),
        )
    }
}

async fn a_delivery_while_another_worker_holds_the_key_is_busy(protocol: Protocol) {
    let url = redis_url("busy");
    let a = consumer(
        config(protocol),
        store(&url).await,
        Arc::new(SkewedClock::default()),
    );
    let b = Consumer2::of(&a, &url).await;
    let msg = envelope(SPELLCHECK);
    let (held_tx, held_rx) = tokio::sync::oneshot::channel::<()>();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let first = a.process(&msg, |ctx| async move {
        held_tx.send(()).unwrap();
        go_rx.await.unwrap();
        ctx.confirm().await.map_err(|e| e.to_string())
    });
    let second = async {
        held_rx.await.unwrap();
        let outcome = b
            .process(&msg, |_| async { HandlerResult::Ok(()) })
            .await
            .unwrap();
        go_tx.send(()).unwrap();
        outcome
    };
    let (first, second) = tokio::join!(first, second);
    assert!(matches!(
        first.unwrap(),
        Outcome::Processed {
            confirm: ConfirmStatus::Confirmed,
            ..
        }
    ));
    assert_eq!(second, Outcome::Busy);
}

async fn a_handler_error_releases_the_lock_and_the_retry_runs_at_once(protocol: Protocol) {
    let url = redis_url("error_releases");
    let c = consumer(
        config(protocol),
        store(&url).await,
        Arc::new(SkewedClock::default()),
    );
    let msg = envelope(SPELLCHECK);
    let key = c.key(&msg).unwrap().key;
    let calls = &AtomicUsize::new(0);
    let effects = &Effects::default();
    let first = c
        .process(&msg, |_| async {
            calls.fetch_add(1, Ordering::SeqCst);
            HandlerResult::Err("first attempt fails".into())
        })
        .await;
    assert_eq!(
        first,
        Err(ProcessError::Handler {
            error: "first attempt fails".into(),
            release: ReleaseStatus::Released
        })
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the handler runs once per process call"
    );
    assert_eq!(get(&mut raw(&url).await, &key).await, None, "the lock is gone");
    let second = c
        .process(&msg, |ctx| async move {
            calls.fetch_add(1, Ordering::SeqCst);
            effects.apply("applied");
            ctx.confirm().await.map_err(|e| e.to_string())
        })
        .await
        .unwrap();
    assert!(matches!(
        second,
        Outcome::Processed {
            confirm: ConfirmStatus::Confirmed,
            ..
        }
    ));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(effects.all(), vec!["applied"]);
}

/// Worker A's lock disappears (expired, deleted) and worker B takes the key while A's handler
/// still runs; then A confirms. `fenced` reports the loss and leaves B's lock alone; `v2`
/// overwrites B's lock with "completed" (its weakness D).
async fn a_confirm_after_the_lease_was_lost(protocol: Protocol) {
    let url = redis_url("confirm_after_lease_loss");
    let a = consumer(
        config(protocol),
        store(&url).await,
        Arc::new(SkewedClock::default()),
    );
    let b = Consumer2::of(&a, &url).await;
    let msg = envelope(SPELLCHECK);
    let key = &a.key(&msg).unwrap().key;
    let (url, b, msg) = (&url, &b, &msg);
    let outcome = a
        .process(msg, |ctx| async move {
            let mut con = raw(url).await;
            let _: i64 = redis::cmd("DEL").arg(key).query_async(&mut con).await.unwrap();
            // B takes the key and its handler is still running (it does not confirm).
            let b_outcome = b.process(msg, |_| async { HandlerResult::Ok(()) }).await.unwrap();
            assert!(matches!(
                b_outcome,
                Outcome::Processed {
                    confirm: ConfirmStatus::NotCalled,
                    ..
                }
            ));
            let b_lock = get(&mut con, key).await.unwrap();
            let confirmed = ctx.confirm().await;
            let after = get(&mut con, key).await.unwrap();
            match protocol {
                Protocol::Fenced => {
                    assert_eq!(confirmed, Err(ConfirmError::LeaseLost));
                    assert_eq!(after, b_lock, "B's lock is untouched");
                }
                Protocol::V2 => {
                    assert_eq!(confirmed, Ok(()));
                    assert_eq!(
                        parse_record(&after),
                        RecordState::Completed,
                        "v2 overwrote B's lock"
                    );
                }
            }
            HandlerResult::Ok(())
        })
        .await
        .unwrap();
    let expected = match protocol {
        Protocol::Fenced => ConfirmStatus::LeaseLost,
        Protocol::V2 => ConfirmStatus::Confirmed,
    };
    assert!(matches!(outcome, Outcome::Processed { confirm, .. } if confirm == expected));
}

/// Worker A, whose clock is 400 s slow, takes the key and crashes before confirming. Worker B
/// (correct clock) gets the event 1 s later: v2 judges A's lock stale by comparing clocks and
/// takes over (weakness C); fenced trusts Redis's expiry and reports busy.
async fn a_lock_left_by_a_worker_with_a_slow_clock(protocol: Protocol) {
    let url = redis_url("slow_clock");
    let slow = Arc::new(SkewedClock::default());
    slow.skew_us.store(-400_000_000, Ordering::Relaxed);
    let a = consumer(config(protocol), store(&url).await, slow);
    let b = Consumer2::of(&a, &url).await;
    let msg = envelope(SPELLCHECK);
    let crashed = a
        .process(&msg, |_| async { HandlerResult::Ok(()) })
        .await
        .unwrap();
    assert!(matches!(
        crashed,
        Outcome::Processed {
            confirm: ConfirmStatus::NotCalled,
            ..
        }
    ));
    let effects = &Effects::default();
    let outcome = b
        .process(&msg, |ctx| async move {
            effects.apply("B");
            ctx.confirm().await.map_err(|e| e.to_string())
        })
        .await
        .unwrap();
    match protocol {
        Protocol::V2 => {
            assert!(
                matches!(
                    outcome,
                    Outcome::Processed {
                        took_over_stale: true,
                        ..
                    }
                ),
                "{outcome:?}"
            );
            assert_eq!(effects.all(), vec!["B"]);
        }
        Protocol::Fenced => {
            assert_eq!(outcome, Outcome::Busy);
            assert!(effects.all().is_empty());
        }
    }
}

/// A processing record written without TTL and without `started_at` (as a buggy or older
/// writer can leave): v2 takes it over at once; fenced reports busy and gives it the lease
/// TTL, so it can no longer block the event forever.
async fn a_processing_record_without_ttl_or_started_at(protocol: Protocol) {
    let url = redis_url("no_ttl");
    let c = consumer(
        config(protocol),
        store(&url).await,
        Arc::new(SkewedClock::default()),
    );
    let msg = envelope(SPELLCHECK);
    let key = c.key(&msg).unwrap().key;
    let mut con = raw(&url).await;
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(r#"{"status": "processing", "processed_by": "other"}"#)
        .query_async(&mut con)
        .await
        .unwrap();
    let outcome = c
        .process(&msg, |_| async { HandlerResult::Ok(()) })
        .await
        .unwrap();
    match protocol {
        Protocol::V2 => assert!(matches!(
            outcome,
            Outcome::Processed {
                took_over_stale: true,
                ..
            }
        )),
        Protocol::Fenced => {
            assert_eq!(outcome, Outcome::Busy);
            let ttl = pttl(&mut con, &key).await;
            assert!(
                (299_000..=300_000).contains(&ttl),
                "the TTL-less lock got the lease TTL: {ttl}"
            );
        }
    }
}

/// The lock's TTL is 1 s and A's handler takes 2.5 s. Fenced renews A's lease, so B is busy at
/// 1.5 s and A confirms normally. v2 lets the lock expire: B processes too (weakness D).
async fn a_handler_that_outlives_the_lock(protocol: Protocol) {
    let url = redis_url("outlives_lock");
    let mut cfg = config(protocol);
    cfg.processing_ttl_s = 1;
    let a = consumer(cfg, store(&url).await, Arc::new(SkewedClock::default()));
    let b = Consumer2::of(&a, &url).await;
    let msg = envelope(SPELLCHECK);
    let effects = &Effects::default();
    let first = a.process(&msg, |ctx| async move {
        effects.apply("A");
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        ctx.confirm().await.map_err(|e| e.to_string())
    });
    let second = async {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        b.process(&msg, |_| async move {
            effects.apply("B");
            HandlerResult::Ok(())
        })
        .await
        .unwrap()
    };
    let (first, second) = tokio::join!(first, second);
    match protocol {
        Protocol::Fenced => {
            assert!(matches!(
                first.unwrap(),
                Outcome::Processed {
                    confirm: ConfirmStatus::Confirmed,
                    ..
                }
            ));
            assert_eq!(second, Outcome::Busy);
            assert_eq!(effects.all(), vec!["A"]);
        }
        Protocol::V2 => {
            assert!(matches!(second, Outcome::Processed { .. }));
            assert_eq!(
                effects.all(),
                vec!["A", "B"],
                "both ran: the lock expired under A"
            );
        }
    }
}

/// The server dies between two deliveries. Fail-open: the handler runs, its effect is in the
/// log, and the outcome says it was unprotected. The effect log holds exactly what the outcomes
/// claim.
async fn redis_stopped_mid_test_fail_open(protocol: Protocol) {
    let mut server = PrivateServer::start("fail_open");
    let c = consumer(
        config(protocol).on_redis_failure(FailurePolicy::FailOpen),
        store(&server.url()).await,
        Arc::new(SkewedClock::default()),
    );
    let effects = Effects::default();
    let handler = |tag: &'static str| {
        let effects = effects.clone();
        move |ctx: idempotency::Context| async move {
            effects.apply(tag);
            ctx.confirm().await.map_err(|e| e.to_string())
        }
    };
    let before = c.process(&envelope(SPELLCHECK), handler("before")).await.unwrap();
    assert!(matches!(
        before,
        Outcome::Processed {
            confirm: ConfirmStatus::Confirmed,
            ..
        }
    ));
    server.stop();
    let during = c.process(&envelope(SPELLCHECK), handler("during")).await.unwrap();
    assert!(
        matches!(
            during,
            Outcome::Unprotected {
                reason: Unprotected::Redis(_),
                ..
            }
        ),
        "{during:?}"
    );
    server.resume();
    let after = c.process(&envelope(SPELLCHECK), handler("after")).await;
    assert!(matches!(after, Ok(Outcome::Processed { .. })), "{after:?}");
    assert_eq!(effects.all(), vec!["before", "during", "after"]);
}

/// The server dies between two deliveries. Fail-closed: the handler does not run and the error
/// says so; once the server is back the retry is processed, exactly once.
async fn redis_stopped_mid_test_fail_closed(protocol: Protocol) {
    let mut server = PrivateServer::start("fail_closed");
    let c = consumer(
        config(protocol).on_redis_failure(FailurePolicy::FailClosed),
        store(&server.url()).await,
        Arc::new(SkewedClock::default()),
    );
    let effects = &Effects::default();
    let msg = envelope(SPELLCHECK);
    server.stop();
    let during = c
        .process(&msg, |ctx| async move {
            effects.apply("during");
            ctx.confirm().await.map_err(|e| e.to_string())
        })
        .await;
    assert!(
        matches!(
            during,
            Err(ProcessError::Redis(
                StoreError::Unavailable(_) | StoreError::Timeout
            ))
        ),
        "{during:?}"
    );
    assert!(effects.all().is_empty(), "nothing ran while Redis was down");
    server.resume();
    for _ in 0..2 {
        // Retried until processed; the second delivery is a duplicate.
        let mut outcome = None;
        for _ in 0..50 {
            match c
                .process(&msg, |ctx| async move {
                    effects.apply("retry");
                    ctx.confirm().await.map_err(|e| e.to_string())
                })
                .await
            {
                Ok(o) => {
                    outcome = Some(o);
                    break;
                }
                Err(ProcessError::Redis(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(e) => panic!("{e:?}"),
            }
        }
        assert!(
            outcome.is_some(),
            "Redis came back but the retry never went through"
        );
    }
    assert_eq!(effects.all(), vec!["retry"]);
}

#[tokio::test]
#[ignore = "needs a redis-server: run scripts/test (or set IDEMPOTENCY_REDIS_URL and pass -- --include-ignored)"]
async fn fencing_tokens_grow_for_a_key_and_start_above_redis_time() {
    let url = redis_url("fencing_tokens");
    let c = consumer(
        config(Protocol::Fenced),
        store(&url).await,
        Arc::new(SkewedClock::default()),
    );
    let msg = envelope(SPELLCHECK);
    let mut con = raw(&url).await;
    let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(&mut con).await.unwrap();
    let mut last = (secs * 1_000_000 + micros) as u64;
    for _ in 0..5 {
        let r = c
            .process(&msg, |ctx| async move {
                HandlerResult::Err(format!("{}", ctx.fence().unwrap()))
            })
            .await;
        let Err(ProcessError::Handler {
            error,
            release: ReleaseStatus::Released,
        }) = r
        else {
            panic!("{r:?}")
        };
        let fence: u64 = error.parse().unwrap();
        assert!(fence > last, "fence {fence} after {last}");
        last = fence;
    }
}

/// A fenced handler that holds its lease long past v2's stale rule is not taken over by a v2
/// worker (this crate's `v2` protocol, which judges staleness exactly as the Python decorator
/// does: `now - started_at > processing_ttl_s`, by the record alone, never by the key's TTL).
/// The TTL is shortened to 1 s, so the handler's 3.5 s are three and a half stale periods of
/// `started_at` as first written; renewal rewrites `started_at`, so every v2 look sees a live
/// lock. Before renewal rewrote the record, the v2 worker deleted the live lease at about 1 s,
/// ran its handler and confirmed, and the fenced confirm got `LeaseLost`.
#[tokio::test]
#[ignore = "needs a redis-server: run scripts/test (or set IDEMPOTENCY_REDIS_URL and pass -- --include-ignored)"]
async fn a_long_fenced_lease_is_not_taken_over_by_a_v2_worker() {
    let url = redis_url("long_fenced_lease_vs_v2");
    let mut cfg = config(Protocol::Fenced);
    cfg.processing_ttl_s = 1;
    let fenced = consumer(cfg.clone(), store(&url).await, Arc::new(SkewedClock::default()));
    let v2 = consumer(
        cfg.protocol(Protocol::V2),
        store(&url).await,
        Arc::new(SkewedClock::default()),
    );
    let msg = envelope(SPELLCHECK);
    let key = fenced.key(&msg).unwrap().key;
    assert_eq!(key, v2.key(&msg).unwrap().key, "one key for both protocols");
    let effects = &Effects::default();
    let mut con = raw(&url).await;
    let (held_tx, held_rx) = tokio::sync::oneshot::channel::<()>();
    let first = fenced.process(&msg, |ctx| async move {
        effects.apply("fenced");
        held_tx.send(()).unwrap();
        tokio::time::sleep(Duration::from_millis(3_500)).await;
        ctx.confirm().await.map_err(|e| e.to_string())
    });
    let looks = async {
        held_rx.await.unwrap();
        let mut outcomes = Vec::new();
        let mut ages_s = Vec::new();
        for _ in 0..12 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            // What a v2 reader sees: the record's age by its started_at.
            if let Some(v) = get(&mut con, &key).await {
                if let RecordState::Processing {
                    started_at: Some(t), ..
                } = parse_record(&v)
                {
                    let now = idempotency::clock::unix_seconds(idempotency::clock::Clock::now_unix_us(
                        &idempotency::clock::TokioClock,
                    ));
                    ages_s.push(now - t);
                }
            }
            let outcome = v2
                .process(&msg, |_| async move {
                    effects.apply("v2");
                    HandlerResult::Ok(())
                })
                .await
                .unwrap();
            outcomes.push(outcome);
        }
        (outcomes, ages_s)
    };
    let (first, (outcomes, ages_s)) = tokio::join!(first, looks);
    assert!(
        matches!(
            first,
            Ok(Outcome::Processed {
                confirm: ConfirmStatus::Confirmed,
                ..
            })
        ),
        "the fenced lease held to its confirm: {first:?}"
    );
    assert!(
        outcomes.iter().all(|o| *o == Outcome::Busy),
        "every v2 look while the lease lived was busy: {outcomes:?}"
    );
    assert!(
        ages_s.len() >= 10 && ages_s.iter().all(|&a| a < 1.0),
        "started_at stayed fresh: {ages_s:?}"
    );
    assert_eq!(effects.all(), vec!["fenced"], "only the fenced handler ran");
    let after = v2
        .process(&msg, |_| async move { HandlerResult::Ok(()) })
        .await
        .unwrap();
    assert_eq!(after, Outcome::Duplicate, "v2 reads the fenced completed record");
}
