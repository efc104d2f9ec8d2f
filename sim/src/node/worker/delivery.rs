//! One record through the library: a delivery is one `process()` call, traced with its
//! outcome and mapped to done-or-retry; inside it the worker's [`super::handler::Handler`]
//! runs (the built-in one works for a while, commits the effect to the database, then
//! confirms). Named fault points on that path let the nemesis crash the worker at the exact
//! moment.
//!
//! Under `python-v2` a handler error does what the Python original does (v2's weakness A): the
//! library has released the lock and returned the error; the error falls into the decorator's
//! outer fail-open branch, which calls the handler a second time within the same call, without
//! a lock and with a no-op confirm. The library never does this; the worker does it here.

use super::handler::{Cx, Guard};
use super::{BusyPolicy, Worker, BACKOFF};
use crate::fault::FaultPoint;
use crate::model::kafka::Record;
use crate::trace::{AcquireOutcome, Label, Typed};
use idempotency::{Message, Outcome, ProcessError, ReleaseStatus, Unprotected};
use std::sync::Arc;
use std::time::Duration;

/// The retry backoff doubles per attempt up to `2^RETRY_MAX_DOUBLINGS` times [`BACKOFF`]
/// (6.4 s): long enough to outlast a lock left by a crashed worker, which holds for its TTL.
const RETRY_MAX_DOUBLINGS: u32 = 6;

/// The topic every record is consumed from (the library keys messages on it).
const TOPIC: &str = "events";

/// How long to wait after the `attempt`-th delivery (from 1) of a record before the next.
fn retry_backoff(attempt: u32) -> Duration {
    BACKOFF * 2u32.pow(attempt.min(RETRY_MAX_DOUBLINGS))
}

/// What became of one delivery.
enum Delivery {
    /// Processed, a duplicate, or given up on: the record is done.
    Done,
    /// Deliver it again after a backoff.
    Retry,
}

/// Where a record is delivered: its partition and offset, and the member and generation
/// consuming it.
pub(super) type At<'a> = (u32, u64, &'a str, u64);

impl Worker {
    /// Delivers the record until a delivery says it is done, backing off between attempts;
    /// returns the event's id (what the offset commit's fault point names).
    pub(super) async fn deliver_until_done(&self, at: At<'_>, record: &Record) -> String {
        let mut attempt = 1u32;
        let mut event_id = String::new();
        while let Delivery::Retry = self.deliver(at, record, attempt, &mut event_id).await {
            crate::net::timer::sleep(retry_backoff(attempt)).await;
            attempt += 1;
        }
        event_id
    }

    /// One `process()` call for a fetched record. `event_id` is filled in with the event's id.
    async fn deliver(
        &self,
        (partition, offset, member, generation): At<'_>,
        record: &Record,
        attempt: u32,
        event_id: &mut String,
    ) -> Delivery {
        let key = {
            let mut keys = self.node.keys.lock().expect("worker keys");
            keys.entry((partition, offset))
                .or_insert_with(|| {
                    // The message is built only to derive the key: a record delivered again
                    // (a busy retry, a redelivery) has its key already.
                    let msg = Message {
                        topic: TOPIC.into(),
                        partition: partition as i32,
                        offset: offset as i64,
                        headers: record.headers.to_vec(),
                        value: record.value.to_vec(),
                    };
                    self.consumer.key(&msg).map(Arc::new)
                })
                .clone()
        };
        *event_id = key
            .as_ref()
            .ok()
            .and_then(|k| k.event_id_text())
            .unwrap_or_else(|| record.key.clone());
        let event_id = event_id.as_str();
        let delivery = self.ctx.control.count_delivery(event_id);
        let call = self.calls.get() + 1;
        self.calls.set(call);
        self.ctx.emit(Typed::Deliver {
            topic: Label::fixed(TOPIC),
            partition,
            offset,
            event_id: event_id.to_owned(),
            attempt,
            delivery,
            call,
            member: member.to_owned(),
            generation,
        });
        let standing = self.ctx.control.delivered(self.name, event_id, delivery);
        self.stop_if_down(standing).await;
        // Kept (a reference, not a copy) for the Python original's second call.
        let event_key = key.as_ref().ok().cloned();
        let result = self
            .consumer
            .process_keyed(key, |ctx| self.handle(Guard::Lib(ctx), event_id, call))
            .await;
        let busy_retries = self.node.config.on_busy == BusyPolicy::Retry;
        // The outcome the handler did not trace itself (it traces "acquired"/"unprotected"),
        // and whether to deliver again: a Redis error or a failed handler left the record
        // unprocessed, a busy event waits for its holder unless the policy skips it.
        let (acquire, retry) = match &result {
            Ok(Outcome::Processed { .. } | Outcome::Unprotected { .. }) => (None, false),
            Ok(Outcome::Duplicate) => (Some(AcquireOutcome::Duplicate), false),
            Ok(Outcome::Busy) => (Some(AcquireOutcome::Busy), busy_retries),
            Ok(Outcome::RaceLost) => (Some(AcquireOutcome::RaceLost), busy_retries),
            Err(ProcessError::Redis(_)) => (Some(AcquireOutcome::RedisError), true),
            Err(ProcessError::Unkeyable(_)) => (Some(AcquireOutcome::Unkeyable), false),
            Err(ProcessError::Handler { .. }) => (None, true),
        };
        if let Some(outcome) = acquire {
            self.ctx.emit(Typed::Acquire {
                event_id: event_id.to_owned(),
                outcome,
                call,
            });
        }
        match &result {
            Err(ProcessError::Handler { error, release }) => {
                let status = match release {
                    ReleaseStatus::Released => "released".to_owned(),
                    ReleaseStatus::NotHeld => "not_held".to_owned(),
                    ReleaseStatus::Unprotected => "unprotected".to_owned(),
                    ReleaseStatus::Failed(e) => format!("failed: {e}"),
                };
                self.ctx.emit(Typed::Release {
                    event_id: event_id.to_owned(),
                    error: error.clone(),
                    status,
                    call,
                });
            }
            Ok(Outcome::Unprotected { reason, .. }) => {
                let reason = match reason {
                    Unprotected::Redis(e) => e.to_string(),
                    Unprotected::Unkeyable(e) => e.to_string(),
                };
                self.ctx.emit(Typed::Unprotected {
                    event_id: event_id.to_owned(),
                    reason,
                    call,
                });
            }
            _ => {}
        }
        let retry = match &result {
            Err(ProcessError::Handler { error, release })
                if self.node.config.protocol.calls_handler_again_on_error()
                    && *release != ReleaseStatus::Unprotected =>
            {
                // The Python original: the re-raised error lands in the outer fail-open
                // branch, which runs the handler again unprotected. Its success swallows the
                // error (the offset is committed, no key is left); its error propagates.
                self.ctx.emit(Typed::Unprotected {
                    event_id: event_id.to_owned(),
                    reason: format!(
                        "python-v2: the handler raised ({error}); the decorator's fail-open branch calls it again"
                    ),
                    call,
                });
                let key = event_key.map(|k| k.key.clone()).unwrap_or_default();
                let again = Guard::SecondCall { key };
                self.handle(again, event_id, call).await.is_err()
            }
            _ => retry,
        };
        if retry {
            Delivery::Retry
        } else {
            Delivery::Done
        }
    }

    /// One call of the business handler ([`super::handler::Handler`]): traced as acquired (or
    /// unprotected), then, under a lock, the `after_acquire` fault point; its start and its
    /// end (`ok` or `error: ...`) around the handler's own work.
    async fn handle(&self, guard: Guard, event_id: &str, call: u64) -> Result<(), String> {
        let fence = guard.fence();
        let key = guard.key().to_owned();
        let outcome = if guard.is_protected() {
            AcquireOutcome::Acquired { fence, key }
        } else {
            AcquireOutcome::Unprotected { fence, key }
        };
        self.ctx.emit(Typed::Acquire {
            event_id: event_id.to_owned(),
            outcome,
            call,
        });
        if guard.is_protected() {
            let standing = self.ctx.control.holding(self.name, event_id);
            self.stop_if_down(standing).await;
            self.fault_point(FaultPoint::AfterAcquire, event_id).await;
        }
        self.ctx.emit(Typed::HandlerStart {
            event_id: event_id.to_owned(),
            fence,
            call,
        });
        let cx = Cx {
            worker: self,
            guard: &guard,
            event_id,
            call,
        };
        let result = self.node.handler.handle(&cx).await;
        self.ctx.emit(Typed::HandlerEnd {
            event_id: event_id.to_owned(),
            result: match &result {
                Ok(()) => Label::fixed("ok"),
                Err(e) => format!("error: {e}").into(),
            },
            call,
        });
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_backoff_doubles_from_twice_the_backoff_and_stops_at_64_times() {
        let ms = |attempt| retry_backoff(attempt).as_millis();
        assert_eq!([1, 2, 3, 4, 5, 6].map(ms), [200, 400, 800, 1_600, 3_200, 6_400]);
        assert_eq!(ms(7), 6_400);
        assert_eq!(ms(u32::MAX), 6_400);
    }
}
