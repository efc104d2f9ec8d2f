//! The broker node: the pure [`KafkaModel`] on the network, ticking its timers, with the
//! nemesis's lost produce acks.

use crate::model::kafka::{GroupEvent, KafkaRequest};

/// How often the broker node evaluates expiry when no request comes.
pub const TICK_MS: u64 = 1_000;

/// Records `events` in the trace (node `kafka`).
pub fn record_events(s: &crate::run::Shared, events: Vec<GroupEvent>) {
    for e in events {
        if let Some((kind, fields)) = e.trace() {
            s.trace.record("kafka", kind, fields);
        }
    }
}

/// Evaluates expiry now (virtual time) and records what it did.
pub fn tick_and_record(s: &crate::run::Shared) {
    let events = {
        let mut k = s.kafka.lock().expect("kafka state");
        k.tick(crate::trace::now_us() / 1000);
        k.take_events()
    };
    record_events(s, events);
}

/// The broker node's main task: serve requests until killed, and tick every [`TICK_MS`] so
/// members expire on time while no request comes (the ticker dies with the node, like a real
/// coordinator's timers). The log, the offsets and the group live in the world (the broker's
/// disk), so a restart loses nothing acknowledged; it restarts the members' timers
/// ([`KafkaModel::restarted`]).
pub async fn serve(s: std::sync::Arc<crate::run::Shared>) {
    s.kafka
        .lock()
        .expect("kafka state")
        .restarted(crate::trace::now_us() / 1000);
    let ticker = s.clone();
    madsim::task::spawn(async move {
        loop {
            madsim::time::sleep(std::time::Duration::from_millis(TICK_MS)).await;
            tick_and_record(&ticker);
        }
    });
    crate::net::rpc::serve(move |req: KafkaRequest, _from| {
        let produce = matches!(req, KafkaRequest::ProduceSeq { .. });
        let (reply, events) = {
            let mut k = s.kafka.lock().expect("kafka state");
            let reply = k.handle(req, crate::trace::now_us() / 1000);
            (reply, k.take_events())
        };
        record_events(&s, events);
        // The nemesis's ack loss: the record is appended, its ack never arrives.
        if produce && s.faults.lock().expect("fault state").take_lost_ack() {
            s.trace.record("kafka", "ack_lost", crate::fields! {});
            return None;
        }
        Some(reply)
    })
    .await
}
