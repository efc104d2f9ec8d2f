#![cfg(feature = "redis")]
//! The README's example (`examples/real_redis.rs`, quoted in the README byte for byte) keeps
//! its fence floor and its commits on one identifier. A first lease commits a token through
//! the example's handler; Redis then loses the record and its counter (a crash without
//! `appendfsync always`, a failover) and the event comes again: the example's floor must read
//! the token its handler committed, so the new token is above it and the commit lands. A floor
//! keyed by another identifier than the handler's commit (the README's snippet before issue 19
//! committed `ctx.event_id()` while the floor was asked for the Redis key) reads 0, the token
//! comes out below the stored one and the example's own store rejects the commit as stale.
//!
//! The first test runs on a stand-in Redis that implements the acquire script's floor rule
//! (without `TIME`); the second on the real server (`scripts/test`).

#[path = "../examples/real_redis.rs"]
#[allow(dead_code)]
mod example;
mod support;

use idempotency::clock::{Clock, TokioClock};
use idempotency::fenced::fence_key;
use idempotency::store::{BoxFuture, Command, Reply, Script, Store, StoreError};
use idempotency::{Config, ConfirmStatus, Consumer, Outcome};
use std::sync::{Arc, Mutex};

/// A Redis that lost its fence counter: acquire hands out `max(counter, floor) + 1`, as the
/// acquire script does when its `TIME` is behind; renew, confirm and release succeed. Records
/// each floor it was given.
#[derive(Default)]
struct CounterLost {
    counter: Mutex<u64>,
    floors: Mutex<Vec<u64>>,
}

impl Store for CounterLost {
    fn exec(&self, cmd: Command) -> BoxFuture<'_, Result<Reply, StoreError>> {
        let reply = match cmd {
            Command::Script(Script::Acquire { floor, .. }) => {
                self.floors.lock().unwrap().push(floor);
                let mut counter = self.counter.lock().unwrap();
                *counter = (*counter).max(floor) + 1;
                Ok(Reply::Array(vec![
                    Reply::Bulk(b"acquired".to_vec()),
                    Reply::Int(*counter as i64),
                ]))
            }
            Command::Script(_) => Ok(Reply::Int(1)),
            other => Err(StoreError::Protocol(format!("unexpected {}", other.name()))),
        };
        Box::pin(async move { reply })
    }
}

/// Where the first Redis's counter stood: tokens from it are above the second's.
const EARLIER: u64 = 1_000_000;

fn consumer(redis: &Arc<CounterLost>, db: &example::Db) -> Consumer {
    Consumer::new(Config::new("svc"), redis.clone(), Arc::new(TokioClock), "test")
        .unwrap()
        .with_fence_floor(Arc::new(db.clone()))
}

#[tokio::test]
async fn the_readme_examples_floor_reads_what_its_handler_commits() {
    let db = example::Db::default();
    let msg = example::message("e-floor");
    // A first lease, from a Redis whose counter stood at EARLIER, commits through the
    // example's handler, under whichever identifier the handler uses.
    let before = Arc::new(CounterLost::default());
    *before.counter.lock().unwrap() = EARLIER;
    let first = consumer(&before, &db)
        .process(&msg, |ctx| example::handle(&db, ctx))
        .await
        .unwrap();
    assert!(
        matches!(first, Outcome::Processed { fence: Some(f), .. } if f == EARLIER + 1),
        "{first:?}"
    );

    // Redis loses everything (the record and the counter); the event is delivered again.
    let after = Arc::new(CounterLost::default());
    let again = consumer(&after, &db)
        .process(&msg, |ctx| example::handle(&db, ctx))
        .await
        .unwrap_or_else(|e| {
            panic!("the example's handler failed: {e} (did its floor read what it commits?)")
        });
    assert_eq!(
        *after.floors.lock().unwrap(),
        [EARLIER + 1],
        "the floor read the token the handler committed"
    );
    match again {
        Outcome::Processed {
            fence: Some(fence),
            confirm: ConfirmStatus::Confirmed,
            ..
        } => assert_eq!(fence, EARLIER + 2, "the token is above the stored one"),
        other => panic!("{other:?}"),
    }
    let key = consumer(&after, &db).key(&msg).unwrap().key;
    assert_eq!(db.row(&key).effects.len(), 2, "both commits landed");
}

#[tokio::test]
#[ignore = "needs a redis-server: run scripts/test (or set IDEMPOTENCY_REDIS_URL and pass -- --include-ignored)"]
async fn the_readme_examples_floor_lifts_real_redis_tokens_above_the_stored_one() {
    let url = support::redis_url("the_readme_examples_floor_lifts_real_redis_tokens_above_the_stored_one");
    let mut raw = support::raw(&url).await;
    let db = example::Db::default();
    let config = Config::new(support::unique("svc").replace('-', "_"));
    let counter = fence_key(&config);
    let consumer = support::consumer(config, support::store(&url).await, Arc::new(TokioClock))
        .with_fence_floor(Arc::new(db.clone()));
    let msg = example::message(&support::unique("e-floor"));
    let key = consumer.key(&msg).unwrap().key;

    // The counter stands a week ahead of this server's TIME (a Redis whose clock ran ahead);
    // a first lease commits through the example's handler.
    let earlier = TokioClock.now_unix_us() as u64 + 7 * 86_400 * 1_000_000;
    let _: () = redis::cmd("SET")
        .arg(&counter)
        .arg(earlier)
        .query_async(&mut raw)
        .await
        .unwrap();
    let first = consumer
        .process(&msg, |ctx| example::handle(&db, ctx))
        .await
        .unwrap();
    assert!(
        matches!(first, Outcome::Processed { fence: Some(f), .. } if f == earlier + 1),
        "{first:?}"
    );

    // Redis loses the record and the counter; the event is delivered again.
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .arg(&counter)
        .query_async(&mut raw)
        .await
        .unwrap();
    let again = consumer
        .process(&msg, |ctx| example::handle(&db, ctx))
        .await
        .unwrap_or_else(|e| {
            panic!("the example's handler failed: {e} (did its floor read what it commits?)")
        });
    match again {
        Outcome::Processed {
            fence: Some(fence),
            confirm: ConfirmStatus::Confirmed,
            ..
        } => assert_eq!(fence, earlier + 2, "the token is just above the stored one"),
        other => panic!("{other:?}"),
    }
    assert_eq!(db.row(&key).effects.len(), 2, "both commits landed");
}
