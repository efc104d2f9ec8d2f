//! The broker node: the pure [`KafkaModel`] on the network, ticking its timers, with the
//! nemesis's lost produce acks. The model is the broker's disk: it lives in the node's lasting
//! state, so a restart loses nothing acknowledged.

use super::NodeCtx;
use crate::fault::{Fault, NodeFaults, Progress};
use crate::model::kafka::{GroupEvent, KafkaModel, KafkaRequest};
use crate::trace::Typed;
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

impl crate::net::rpc::Message for KafkaRequest {
    fn kind(&self) -> &'static str {
        self.api_name()
    }
}

/// Records `events` in the trace.
fn record_events(ctx: &NodeCtx, events: Vec<GroupEvent>) {
    for e in events {
        if let Some(t) = typed(e) {
            ctx.emit(t);
        }
    }
}

/// What the broker did as a trace event, or `None` for what the trace shows otherwise (a
/// duplicate append is the `produce` event with `retry: true`).
fn typed(e: GroupEvent) -> Option<Typed> {
    Some(match e {
        GroupEvent::Produced {
            event_id,
            partition,
            offset,
            producer,
            sequence,
            retry,
        } => Typed::Produce {
            event_id,
            partition,
            offset,
            producer,
            sequence,
            retry,
        },
        GroupEvent::ProduceDuplicate {
            appended_offset: Some(_),
            ..
        } => return None,
        GroupEvent::ProduceDuplicate {
            event_id,
            partition,
            producer,
            sequence,
            original_offset,
            appended_offset: None,
        } => Typed::ProduceDeduplicated {
            event_id,
            partition,
            offset: original_offset,
            producer,
            sequence,
        },
        GroupEvent::Join { member, generation } => Typed::Join { member, generation },
        GroupEvent::Rebalance {
            generation,
            reason,
            members,
        } => Typed::Rebalance {
            generation,
            reason: reason.into(),
            members,
        },
        GroupEvent::Assignment {
            generation,
            assignment,
        } => Typed::Assignment {
            generation,
            assignment,
        },
        GroupEvent::MemberRemoved { member, reason } => Typed::MemberRemoved {
            member,
            reason: reason.into(),
        },
        GroupEvent::CommitAccepted {
            member,
            generation,
            partition,
            offset,
        } => Typed::OffsetCommit {
            member,
            generation,
            partition,
            offset,
            accepted: true,
            error: None,
        },
        GroupEvent::CommitRejected {
            member,
            generation,
            partition,
            offset,
            error,
        } => Typed::OffsetCommit {
            member,
            generation,
            partition,
            offset,
            accepted: false,
            error: Some(error.name().into()),
        },
    })
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
            ctx.emit(Typed::AckLost);
            return None;
        }
        Some(reply)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::kafka::GroupError;
    use std::collections::BTreeMap;

    #[test]
    fn broker_events_become_the_trace_fields_the_checkers_read() {
        let json = |e: &GroupEvent| {
            let t = typed(e.clone()).expect("traced");
            let fields: BTreeMap<&str, String> =
                t.fields().iter().map(|(k, v)| (*k, v.to_string())).collect();
            format!("{} {fields:?}", t.kind())
        };
        let produced = GroupEvent::Produced {
            event_id: "e1".into(),
            partition: 2,
            offset: 7,
            producer: "producer".into(),
            sequence: 4,
            retry: true,
        };
        assert_eq!(
            json(&produced),
            r#"produce {"event_id": "\"e1\"", "offset": "7", "partition": "2", "producer": "\"producer\"", "retry": "true", "sequence": "4"}"#
        );
        let dup = GroupEvent::ProduceDuplicate {
            event_id: "e1".into(),
            partition: 2,
            producer: "producer".into(),
            sequence: 4,
            original_offset: 6,
            appended_offset: Some(7),
        };
        assert_eq!(typed(dup), None);
        let dedup = GroupEvent::ProduceDuplicate {
            event_id: "e1".into(),
            partition: 2,
            producer: "producer".into(),
            sequence: 4,
            original_offset: 6,
            appended_offset: None,
        };
        assert_eq!(
            json(&dedup),
            r#"produce_deduplicated {"event_id": "\"e1\"", "offset": "6", "partition": "2", "producer": "\"producer\"", "sequence": "4"}"#
        );
        let assignment = GroupEvent::Assignment {
            generation: 3,
            assignment: BTreeMap::from([("a".into(), vec![0, 1]), ("b".into(), vec![])]),
        };
        assert_eq!(
            json(&assignment),
            r#"assignment {"assignment": "{\"a\":[0,1],\"b\":[]}", "generation": "3"}"#
        );
        let rebalance = GroupEvent::Rebalance {
            generation: 3,
            reason: "join",
            members: vec!["a".into(), "b".into()],
        };
        assert_eq!(
            json(&rebalance),
            r#"rebalance {"generation": "3", "members": "[\"a\",\"b\"]", "reason": "\"join\""}"#
        );
        let rejected = GroupEvent::CommitRejected {
            member: "a".into(),
            generation: 2,
            partition: 1,
            offset: 5,
            error: GroupError::IllegalGeneration,
        };
        assert_eq!(
            json(&rejected),
            r#"offset_commit {"accepted": "false", "error": "\"illegal_generation\"", "generation": "2", "member": "\"a\"", "offset": "5", "partition": "1"}"#
        );
        let accepted = GroupEvent::CommitAccepted {
            member: "worker-1".into(),
            generation: 0,
            partition: 1,
            offset: 5,
        };
        assert_eq!(
            json(&accepted),
            r#"offset_commit {"accepted": "true", "generation": "0", "member": "\"worker-1\"", "offset": "5", "partition": "1"}"#
        );
        let removed = GroupEvent::MemberRemoved {
            member: "a".into(),
            reason: "max_poll_interval",
        };
        assert_eq!(
            json(&removed),
            r#"member_removed {"member": "\"a\"", "reason": "\"max_poll_interval\""}"#
        );
        let join = GroupEvent::Join {
            member: "a".into(),
            generation: 3,
        };
        assert_eq!(json(&join), r#"join {"generation": "3", "member": "\"a\""}"#);
    }
}
