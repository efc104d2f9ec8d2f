//! The Python services' protocol ("v2"), step for step, weaknesses included.
//!
//! It exists so the simulator can show what v2 does under faults, and so a Rust consumer can
//! stand in for a Python one. New consumers should use [`crate::fenced`].
//!
//! One delivery: `GET key`; a completed record → duplicate; a processing record whose
//! `started_at` is more than `processing_ttl_s` old by *this worker's* wall clock → `DEL` it and
//! go on, else busy; `SET key processing NX EX 300` (lost → race lost); run the handler; its
//! `confirm` does `SETEX key <event type's TTL> completed`; a handler error does `DEL key`.
//! Any Redis error on the way in runs the handler unprotected (fail-open) unless the consumer
//! is configured to fail closed.
//!
//! Unlike the Python original we never call the handler twice (its weakness A).

use crate::clock::{unix_seconds, Clock};
use crate::config::Config;
use crate::key::EventKey;
use crate::record::{self, RecordState};
use crate::store::{Command, Expiry, Reply, SetCondition, Store, StoreError};

/// How old a processing record's `started_at` must be for a Python v2 worker to judge it stale
/// (`now - started_at > 300`, by the reader's clock, whatever the key's TTL). Hard-coded in the
/// Python decorator; [`V2`] here reads its cutoff from `Config::processing_ttl_s`, which
/// defaults to this value. Fenced leases renew often enough for it
/// ([`crate::consumer::MAX_RENEW_INTERVAL`]).
pub const STALE_AFTER_S: u64 = 300;

/// The v2 protocol. Its known weaknesses, all reproducible in the simulator:
///
/// - **B. Non-atomic stale takeover.** GET, then DEL, then SET NX: two workers that both read
///   the same stale record can both delete it; the first SET NX wins, but a DEL that lands after
///   it deletes the winner's fresh lock, and the second SET NX wins too. Both process.
/// - **C. Staleness by the reader's wall clock.** `now - started_at > 300` compares clocks of
///   different hosts, with the same 300 s as the TTL: a worker whose clock runs fast takes over a
///   live lock; a record without TTL or without `started_at` is stale at once.
/// - **D. Unchecked confirm and release.** `SETEX` and `DEL` do not check who holds the key. A
///   handler that outlives its 300 s lock (slow work, GC pause) runs next to the worker that took
///   the key over, and then overwrites (confirm) or deletes (error) that worker's lock.
/// - **F. Confirm failure and outages.** A failed confirm leaves the processing record, so the
///   event is processed again once it expires; while Redis is down there is no dedup at all.
/// - Crash after the business commit and before confirm: processed again after the lock expires
///   (unless the effect store dedupes by itself).
#[derive(Clone, Copy, Debug, Default)]
pub struct V2;

/// What the acquire phase of either protocol decided.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Acquired {
    /// This call holds the key; `owner` names a fenced lease (v2 has none).
    Lease {
        owner: Option<record::Owner>,
        /// The Redis key of a stale lock this call deleted first (v2 only).
        took_over_stale: bool,
    },
    Duplicate,
    Busy,
    RaceLost,
}

pub(crate) fn unexpected(what: &str, reply: &Reply) -> StoreError {
    StoreError::Protocol(format!("{what}: {reply}"))
}

impl V2 {
    pub(crate) async fn acquire(
        store: &dyn Store,
        clock: &dyn Clock,
        config: &Config,
        id: &EventKey,
    ) -> Result<Acquired, StoreError> {
        let key = id.key.clone();
        let mut took_over_stale = false;
        match store.exec(Command::Get { key: key.clone() }).await? {
            Reply::Nil => {}
            Reply::Bulk(value) => match record::parse_record(&value) {
                RecordState::Completed => return Ok(Acquired::Duplicate),
                RecordState::Processing { started_at, .. } => {
                    let age_s = unix_seconds(clock.now_unix_us()) - started_at.unwrap_or(0.0);
                    if age_s > config.processing_ttl_s as f64 {
                        store
                            .exec(Command::Del {
                                keys: vec![key.clone()],
                            })
                            .await?;
                        took_over_stale = true;
                    } else {
                        return Ok(Acquired::Busy);
                    }
                }
                // v2 neither skips nor deletes an unknown status: SET NX then fails.
                RecordState::Other(_) => {}
            },
            other => return Err(unexpected("GET", &other)),
        }
        let set = Command::Set {
            key,
            value: record::processing(&config.service_name, id, clock.now_unix_us()),
            condition: SetCondition::Nx,
            expiry: Some(Expiry::Ex(config.processing_ttl_s)),
        };
        match store.exec(set).await? {
            Reply::Ok => Ok(Acquired::Lease {
                owner: None,
                took_over_stale,
            }),
            Reply::Nil => Ok(Acquired::RaceLost),
            other => Err(unexpected("SET NX", &other)),
        }
    }

    /// `SETEX key ttl completed`, whoever holds the key.
    pub(crate) async fn confirm(
        store: &dyn Store,
        clock: &dyn Clock,
        config: &Config,
        id: &EventKey,
    ) -> Result<(), StoreError> {
        let value = record::completed(&config.service_name, id, clock.now_unix_us());
        let ttl_s = config.ttl_for(&id.event_type);
        match store
            .exec(Command::SetEx {
                key: id.key.clone(),
                ttl_s,
                value,
            })
            .await?
        {
            Reply::Ok => Ok(()),
            other => Err(unexpected("SETEX", &other)),
        }
    }

    /// `DEL key`, whoever holds the key. True when a key was deleted.
    pub(crate) async fn release(store: &dyn Store, id: &EventKey) -> Result<bool, StoreError> {
        match store
            .exec(Command::Del {
                keys: vec![id.key.clone()],
            })
            .await?
        {
            Reply::Int(n) => Ok(n > 0),
            other => Err(unexpected("DEL", &other)),
        }
    }
}
