//! Long fenced leases among v2 readers, on the Redis model at virtual time: a fenced holder
//! with a processing TTL of 900 s or 1,800 s runs a handler three TTLs long while a v2
//! consumer sharing the store (Python's 300 s stale cutoff) keeps asking for the same event.
//! v2 judges a record stale by `now - started_at > 300` alone, never by the key's TTL, so the
//! fenced lease must rewrite `started_at` more often than every 300 s whatever its TTL, with a
//! margin for a v2 host whose clock is ahead. Renewing every third of the TTL (300 s and 600 s
//! here) lets v2 take over the live lease.
//!
//! The library runs unchanged (`idempotency::Consumer`, both protocols) on
//! `sim::internal::model::redis::RedisModel`, which runs the fenced Lua scripts as the real server does,
//! behind a small [`Store`] adapter with a 1 ms round trip; time is madsim's virtual clock.

use idempotency::clock::Clock;
use idempotency::store::{BoxFuture, Command, Reply, Store, StoreError};
use idempotency::{Config, ConfirmStatus, Consumer, Message, Outcome, Protocol};
use madsim::runtime::Runtime;
use madsim::time::Instant;
use sim::internal::model::redis::RedisModel;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Wall time at virtual time zero.
const EPOCH_US: i64 = 1_764_315_200_000_000;
/// A command's round trip to the model.
const RTT: Duration = Duration::from_millis(1);
/// How often the v2 consumer asks again.
const V2_RETRY: Duration = Duration::from_millis(500);

/// A host's wall clock: virtual time plus a skew.
struct HostClock {
    start: Instant,
    skew_us: i64,
}

impl Clock for HostClock {
    fn now_unix_us(&self) -> i64 {
        EPOCH_US + self.start.elapsed().as_micros() as i64 + self.skew_us
    }
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(madsim::time::sleep(duration))
    }
}

/// The Redis model behind the library's store trait, at true virtual time.
struct ModelRedis {
    model: Mutex<RedisModel>,
    start: Instant,
}

impl Store for ModelRedis {
    fn exec(&self, cmd: Command) -> BoxFuture<'_, Result<Reply, StoreError>> {
        Box::pin(async move {
            madsim::time::sleep(RTT / 2).await;
            let now_us = EPOCH_US + self.start.elapsed().as_micros() as i64;
            let reply = self.model.lock().unwrap().exec(&cmd, now_us);
            madsim::time::sleep(RTT / 2).await;
            reply
        })
    }
}

fn message() -> Message {
    Message::new(
        "events",
        br#"{"event_id": "e-long", "event_type": "a.b.v1", "data": {}}"#.to_vec(),
    )
}

/// Runs one fenced holder with `ttl_s` against a v2 consumer whose clock is `v2_skew_s` ahead;
/// returns the virtual times (s) at which v2 ran its handler while the fenced one ran.
fn takeovers(ttl_s: u64, v2_skew_s: i64) -> Vec<f64> {
    Runtime::with_seed_and_config(1, madsim::Config::default()).block_on(async move {
        let start = Instant::now();
        let store = Arc::new(ModelRedis {
            model: Mutex::new(RedisModel::new()),
            start,
        });
        let mut fenced_config = Config::new("svc");
        fenced_config.processing_ttl_s = ttl_s;
        let fenced = Consumer::new(
            fenced_config,
            store.clone(),
            Arc::new(HostClock { start, skew_us: 0 }),
            "fenced-host",
        )
        .unwrap();
        // v2's cutoff is Python's 300 s: the Rust v2 reads it from processing_ttl_s.
        let v2 = Consumer::new(
            Config::new("svc").protocol(Protocol::V2),
            store.clone(),
            Arc::new(HostClock {
                start,
                skew_us: v2_skew_s * 1_000_000,
            }),
            "v2-host",
        )
        .unwrap();

        let msg = message();
        let done = AtomicBool::new(false);
        let ran = Mutex::new(Vec::new());
        let holder = async {
            let outcome = fenced
                .process(&msg, |ctx| async move {
                    madsim::time::sleep(Duration::from_secs(3 * ttl_s)).await;
                    let lost = ctx.lease_lost();
                    let _ = ctx.confirm().await; // its status is in the outcome
                    Ok::<_, String>(lost)
                })
                .await;
            done.store(true, Ordering::SeqCst);
            outcome
        };
        let other = async {
            // The holder acquires first.
            madsim::time::sleep(Duration::from_millis(10)).await;
            while !done.load(Ordering::SeqCst) {
                let outcome = v2
                    .process(&msg, |_ctx| async {
                        if !done.load(Ordering::SeqCst) {
                            ran.lock().unwrap().push(start.elapsed().as_secs_f64());
                        }
                        Ok::<_, String>(())
                    })
                    .await
                    .unwrap();
                assert!(
                    matches!(outcome, Outcome::Busy | Outcome::Processed { .. }),
                    "{outcome:?}"
                );
                madsim::time::sleep(V2_RETRY).await;
            }
            // Once confirmed, the event is a duplicate to v2 as well.
            v2.process(&msg, |_ctx| async { Ok::<_, String>(()) })
                .await
                .unwrap()
        };
        let (held, after) = tokio::join!(holder, other);
        let ran = ran.into_inner().unwrap();
        if ran.is_empty() {
            assert!(
                matches!(
                    held,
                    Ok(Outcome::Processed {
                        value: false, // the lease was never found lost
                        confirm: ConfirmStatus::Confirmed,
                        ..
                    })
                ),
                "ttl {ttl_s}: {held:?}"
            );
            assert_eq!(after, Outcome::Duplicate, "ttl {ttl_s}");
        }
        ran
    })
}

#[test]
fn a_v2_consumer_never_takes_over_a_live_fenced_lease_with_a_long_ttl() {
    let mut problems = Vec::new();
    for ttl_s in [900, 1_800] {
        // v2's clock right, a second ahead, a minute ahead.
        for skew_s in [0, 1, 60] {
            let ran = takeovers(ttl_s, skew_s);
            if let Some(first) = ran.first() {
                problems.push(format!(
                    "processing_ttl_s={ttl_s}, v2 clock {skew_s} s ahead: v2 took over the live fenced \
                     lease {} times, first at {first:.3} s",
                    ran.len()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
