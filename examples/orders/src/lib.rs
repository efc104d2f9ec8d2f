//! An order service's Kafka consumer, as a team would test it in the simulator: each event
//! places an order (one row in the database) and sends the customer a confirmation email.
//!
//! [`SendsFirst`] has the bug the seed document warns about: a side effect outside the
//! idempotent transaction. It sends the email before it commits the order, so every time the
//! event is handled again (the commit timed out, the worker crashed, the lock expired) the
//! customer gets another email, although the database holds one order. [`SendsAfterCommit`]
//! sends it only when its own commit placed the order. [`OneEmailPerOrder`] is the property
//! both are judged by.

use sim::{Checker, Commit, Cx, FaultPoint, Handler, HandlerFuture, Input, Severity, Typed, Violation};
use std::collections::BTreeMap;

/// The buggy handler: email first, then the order.
pub struct SendsFirst;

impl Handler for SendsFirst {
    fn handle<'a>(&'a self, cx: &'a Cx<'a>) -> HandlerFuture<'a> {
        Box::pin(async move {
            cx.work().await?;
            cx.record("email_sent", "your order is placed");
            cx.commit().await?;
            cx.point(FaultPoint::AfterEffectCommit).await;
            cx.confirm().await.ok();
            Ok(())
        })
    }
}

/// The fixed handler: the order first; the email only if this commit placed it (a duplicate
/// delivery finds the order there and sends nothing).
pub struct SendsAfterCommit;

impl Handler for SendsAfterCommit {
    fn handle<'a>(&'a self, cx: &'a Cx<'a>) -> HandlerFuture<'a> {
        Box::pin(async move {
            cx.work().await?;
            if cx.commit().await? == Commit::Applied {
                cx.point(FaultPoint::AfterEffectCommit).await;
                cx.record("email_sent", "your order is placed");
            }
            cx.confirm().await.ok();
            Ok(())
        })
    }
}

/// The customer gets at most one email per order.
pub struct OneEmailPerOrder;

impl Checker for OneEmailPerOrder {
    fn kinds(&self) -> &[&'static str] {
        &["duplicate_email"]
    }

    fn check(&self, input: &Input<'_>) -> Vec<Violation> {
        let mut sent: BTreeMap<&str, u32> = BTreeMap::new();
        let mut violations = Vec::new();
        for (i, event) in input.trace.iter().enumerate() {
            let Typed::Custom { event_id, name, .. } = event.typed() else {
                continue;
            };
            if name != "email_sent" {
                continue;
            }
            let count = sent.entry(event_id).or_default();
            *count += 1;
            if *count == 2 {
                violations.push(Violation {
                    kind: "duplicate_email",
                    severity: Severity::Correctness,
                    event_id: event_id.clone(),
                    detail: "the customer got a second email for one order".into(),
                    first_event: Some(i),
                });
            }
        }
        violations
    }
}
