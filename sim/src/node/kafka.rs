//! The broker node: the pure [`KafkaModel`] on the network, ticking its timers, with the
//! nemesis's lost produce acks. The model is the broker's disk: it lives in the node's lasting
//! state, so a restart loses nothing acknowledged.

use super::NodeCtx;
use crate::fault::{Fault, NodeFaults, Progress};
use crate::model::kafka::{GroupEvent, KafkaModel, KafkaRequest};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the broker node evaluates expiry when no request comes.
pub const TICK_MS: u64 = 1_000;

/// The broker's lasting state.
pub struct KafkaNode {
    /// The log, the offsets and the group.
    pub model: Mutex<KafkaModel>,
    /// Produce acks the broker will not send (the nemesis's ack loss).
    lost_acks: Mutex<u32>,
}

impl KafkaNode {
    /// A broker over `model`.
    pub fn new(model: KafkaModel) -> Self {
        KafkaNode {
            model: Mutex::new(model),
            lost_acks: Mutex::new(0),
        }
    }

    /// True (once per lost ack) if the next produce ack is to be lost.
    fn take_lost_ack(&self) -> bool {
        let mut lost = self.lost_acks.lock().expect("lost acks");
        let take = *lost > 0;
        *lost = lost.saturating_sub(1);
        take
    }
}

impl NodeFaults for KafkaNode {
    fn inject(&self, fault: &Fault) -> bool {
        let Fault::AckLoss { acks } = fault else {
            return false;
        };
        *self.lost_acks.lock().expect("lost acks") += acks;
        true
    }
    fn heal(&self, _: &Fault) {}
    fn heal_all(&self) {
        *self.lost_acks.lock().expect("lost acks") = 0;
    }
}

/// Records `events` in the trace.
fn record_events(ctx: &NodeCtx, events: Vec<GroupEvent>) {
    for e in events {
        if let Some((kind, fields)) = e.trace() {
            ctx.record(kind, fields);
        }
    }
}

/// Evaluates expiry now (virtual time) and records what it did.
fn tick_and_record(ctx: &NodeCtx, node: &KafkaNode) {
    let events = {
        let mut k = node.model.lock().expect("kafka state");
        k.tick(crate::trace::now_us() / 1000);
        k.take_events()
    };
    record_events(ctx, events);
}

/// The broker node's main task: serve requests until killed, and tick every [`TICK_MS`] so
/// members expire on time while no request comes (the ticker dies with the node, like a real
/// coordinator's timers). A restart restarts the members' timers
/// ([`KafkaModel::restarted`]). After each request it reports whether the log is drained.
pub async fn serve(ctx: NodeCtx, node: Arc<KafkaNode>) {
    node.model
        .lock()
        .expect("kafka state")
        .restarted(crate::trace::now_us() / 1000);
    let (ticker, ticker_ctx) = (node.clone(), ctx.clone());
    madsim::task::spawn(async move {
        loop {
            madsim::time::sleep(Duration::from_millis(TICK_MS)).await;
            tick_and_record(&ticker_ctx, &ticker);
        }
    });
    let mut drained = None;
    crate::net::rpc::serve(move |req: KafkaRequest, _from| {
        let produce = matches!(req, KafkaRequest::ProduceSeq { .. });
        let (reply, events, now_drained) = {
            let mut k = node.model.lock().expect("kafka state");
            let reply = k.handle(req, crate::trace::now_us() / 1000);
            (reply, k.take_events(), k.drained())
        };
        record_events(&ctx, events);
        if drained != Some(now_drained) {
            drained = Some(now_drained);
            ctx.control.progress(Progress::Drained(now_drained));
        }
        // The nemesis's ack loss: the record is appended, its ack never arrives.
        if produce && node.take_lost_ack() {
            ctx.record("ack_lost", crate::fields! {});
            return None;
        }
        Some(reply)
    })
    .await
}
