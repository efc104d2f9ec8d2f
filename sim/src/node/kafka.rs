//! The broker node: the pure [`KafkaModel`] on the network, ticking its timers, holding its
//! long polls (joins and fetches) until the model answers them, with the nemesis's lost
//! produce acks. The model is the broker's disk: it lives in the node's lasting
//! state, so a restart loses nothing acknowledged.

use super::NodeCtx;
use crate::fault::{Fault, NodeFaults, Progress};
use crate::model::kafka::{GroupEvent, KafkaModel, KafkaReply, KafkaRequest, Ticket, MAX_HELD};
use crate::net::rpc::Responder;
use crate::net::timer::WakeAt;
use crate::net::transport::{Incoming, Inline, Listener};
use crate::trace::Typed;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

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

/// Virtual time in ms, as the model counts it.
fn now_ms(trace: &crate::trace::Trace) -> u64 {
    trace.now_us() / 1000
}

/// One incarnation of the broker: the replies it owes to held requests and the wake-ups it has
/// set. It dies with the node, as a broker's connections do (the model's own held requests are
/// dropped by [`KafkaModel::restarted`] at the next start).
struct Incarnation {
    ctx: NodeCtx,
    node: Arc<KafkaNode>,
    owed: Mutex<Owed>,
}

#[derive(Default)]
struct Owed {
    /// The next request's ticket.
    next_ticket: Ticket,
    /// Where each held request's reply goes.
    responders: BTreeMap<Ticket, Responder<KafkaReply>>,
    /// The times wake-ups of the node's task are set for, with their timers (`None` until the
    /// task has polled once and its waker is known; it sets them then). A new one is set only
    /// when it is earlier than all of these, and the task, woken, ticks and so sets the next:
    /// a few at a time, however many requests are held.
    wakes: BTreeMap<u64, Option<WakeAt>>,
    /// The node's task's waker, once it has polled.
    task: Option<Waker>,
    /// The last drained state reported.
    drained: Option<bool>,
}

impl Incarnation {
    /// Runs `f` on the model now (virtual time), then records what it did, answers the held
    /// requests that fell due, and sets a wake-up for the next deadline, so a held request is
    /// answered on time even when no request comes.
    fn step<T>(self: &Arc<Self>, f: impl FnOnce(&mut KafkaModel, u64) -> T) -> T {
        let (out, events, answers, next) = {
            let mut k = self.node.model.lock().expect("kafka state");
            let out = f(&mut k, now_ms(&self.ctx.trace));
            assert!(k.held() <= MAX_HELD, "the model bounds what it holds");
            (out, k.take_events(), k.take_answers(), k.next_deadline())
        };
        self.settle(events, answers, next);
        out
    }

    /// Evaluates expiry and the held requests' deadlines now.
    fn tick(self: &Arc<Self>) {
        self.step(|k, now| k.tick(now));
    }

    /// What a step did: its events go to the trace, its answers to their callers, and a
    /// wake-up is set for `next` unless one is set for then or before (that one, when it
    /// fires, sets the next).
    fn settle(
        self: &Arc<Self>,
        events: Vec<GroupEvent>,
        answers: Vec<(Ticket, KafkaReply)>,
        next: Option<u64>,
    ) {
        record_events(&self.ctx, events);
        let mut owed = self.owed.lock().expect("owed replies");
        for (ticket, reply) in answers {
            // A ticket without a responder was cancelled meanwhile (superseded).
            if let Some(r) = owed.responders.remove(&ticket) {
                r.reply(reply);
            }
        }
        if let Some(at) = next {
            if owed.wakes.first_key_value().is_none_or(|(&first, _)| at < first) {
                // A timer for the node's own task, not a task of its own: this runs in whichever
                // task the transport served the request in (see `rpc::serve_deferred`).
                let timer = owed
                    .task
                    .as_ref()
                    .and_then(|task| wake_at(&self.ctx.trace, at, task));
                owed.wakes.insert(at, timer);
            }
        }
    }

    /// The node's task: serves what queued while the node was paused, and ticks when a
    /// wake-up falls due (the transport serves the other requests as they arrive).
    async fn run(self: Arc<Self>, listener: Listener, handler: Arc<Mutex<Inline>>) {
        enum Next {
            Request(Incoming),
            Due,
        }
        loop {
            let next = std::future::poll_fn(|cx| {
                if let Poll::Ready(incoming) = listener.poll_next(cx) {
                    return Poll::Ready(Next::Request(incoming));
                }
                let mut owed = self.owed.lock().expect("owed replies");
                if !owed.task.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    owed.task = Some(cx.waker().clone());
                }
                let now = now_ms(&self.ctx.trace);
                let Some((&first, timer)) = owed.wakes.iter_mut().next() else {
                    return Poll::Pending;
                };
                if first <= now {
                    // Every wake-up due now is one tick (the tick sees all that fell due).
                    owed.wakes.retain(|&at, _| at > now);
                    return Poll::Ready(Next::Due);
                }
                if timer.is_none() {
                    *timer = wake_at(&self.ctx.trace, first, cx.waker());
                }
                Poll::Pending
            })
            .await;
            match next {
                Next::Request(incoming) => (handler.lock().expect("handler"))(incoming),
                Next::Due => self.tick(),
            }
        }
    }

    /// Takes one request: held requests whose callers have sent a newer one are let go (their
    /// connection is gone), then the model answers it now or holds it under a fresh ticket.
    fn take(self: &Arc<Self>, req: KafkaRequest, responder: Responder<KafkaReply>) {
        let produce = matches!(req, KafkaRequest::ProduceSeq { .. });
        let (ticket, superseded) = {
            let mut owed = self.owed.lock().expect("owed replies");
            let superseded: Vec<Ticket> = owed
                .responders
                .iter()
                .filter(|(_, r)| !r.is_current())
                .map(|(t, _)| *t)
                .collect();
            for t in &superseded {
                owed.responders.remove(t);
            }
            let ticket = owed.next_ticket;
            owed.next_ticket += 1;
            owed.responders.insert(ticket, responder);
            (ticket, superseded)
        };
        let (reply, now_drained) = self.step(|k, now| {
            for t in superseded {
                k.cancel(t);
            }
            (k.request(req, now, ticket), k.drained())
        });
        let report = {
            let mut owed = self.owed.lock().expect("owed replies");
            let changed = owed.drained != Some(now_drained);
            owed.drained = Some(now_drained);
            changed
        };
        if report {
            self.ctx.control.progress(Progress::Drained(now_drained));
        }
        let Some(reply) = reply else {
            return; // held: `step` answers it when it falls due
        };
        let responder = self
            .owed
            .lock()
            .expect("owed replies")
            .responders
            .remove(&ticket)
            .expect("an answered request's responder");
        // The nemesis's ack loss: the record is appended, its ack never arrives.
        if produce && self.node.take_lost_ack() {
            self.ctx.emit(Typed::AckLost);
            return;
        }
        responder.reply(reply);
    }
}

/// The broker node's main task: serve requests until killed, waking by itself only when
/// something falls due ([`KafkaModel::next_deadline`]: a member's session, a round's timeout, a
/// held fetch's wait), so members expire on time while no request comes and an idle broker
/// costs nothing (its wake-ups die with the node, like a real coordinator's timers). A restart restarts the members' timers and lets go of the requests
/// held before it ([`KafkaModel::restarted`]). Joins and fetches are long polls: the model
/// holds them ([`KafkaModel::request`]) and the node keeps their responders until they are
/// answered. After each request it reports whether the log is drained.
pub async fn serve(ctx: NodeCtx, node: Arc<KafkaNode>) {
    node.model
        .lock()
        .expect("kafka state")
        .restarted(now_ms(&ctx.trace));
    let (net, me) = (ctx.net.clone(), ctx.name);
    let inc = Arc::new(Incarnation {
        ctx,
        node,
        owed: Mutex::default(),
    });
    // Members restored by `restarted` expire on time even if no request ever comes.
    inc.tick();
    let taker = inc.clone();
    let handler = crate::net::rpc::inline(me, move |req: KafkaRequest, responder| taker.take(req, responder));
    let listener = net.listen_inline(me, handler.clone());
    inc.run(listener, handler).await
}

/// A timer waking `task` at virtual millisecond `at_ms` (at least a millisecond from now, as
/// every sleep; `None` if that has passed).
fn wake_at(trace: &crate::trace::Trace, at_ms: u64, task: &Waker) -> Option<WakeAt> {
    let time = madsim::time::TimeHandle::current();
    let wait = Duration::from_millis(at_ms.saturating_sub(now_ms(trace)));
    WakeAt::on(&time, time.now_instant() + wait, task)
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
            let fields: BTreeMap<String, String> =
                t.fields().into_iter().map(|(k, v)| (k, v.to_string())).collect();
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
