//! The world carrying out faults and heals, whoever asks: the random nemesis, a scenario's
//! schedule, or a worker reaching a trigger.

use crate::fault::{Fault, FaultPoint, Heal, NodeStatus};
use crate::fields;
use crate::run::Shared;
use crate::trace::now_us;
use idempotency::clock::Clock as _;
use madsim::net::NetSim;
use madsim::runtime::Handle;
use serde_json::Value;
use std::future::Future;
use std::time::Duration;

/// Sleeps until `until_us` (virtual time), or until a heal is scheduled meanwhile
/// ([`FaultState::planned`] marks what the sleeper already knows).
pub async fn nap(s: &Shared, until_us: u64) {
    let mut sleep = std::pin::pin!(madsim::time::sleep(Duration::from_micros(
        until_us.saturating_sub(now_us())
    )));
    std::future::poll_fn(|cx| {
        if sleep.as_mut().poll(cx).is_ready() {
            return std::task::Poll::Ready(());
        }
        let mut state = s.faults.lock().expect("fault state");
        if state.agenda_changed {
            return std::task::Poll::Ready(());
        }
        state.supervisor = Some(cx.waker().clone());
        std::task::Poll::Pending
    })
    .await
}

fn latency(s: &Shared, max_ms: u64) -> std::ops::Range<Duration> {
    let lo = Duration::from_millis(s.config.latency_ms_min);
    lo..Duration::from_millis(max_ms.max(s.config.latency_ms_min)) + Duration::from_nanos(1)
}

/// Injects `fault` now (if the node's status allows it) and schedules its heal after
/// `lasts_us` (`None`: it lasts until the liveness phase heals everything). `by` says who
/// asked (`nemesis`, `schedule`). Returns whether anything was done.
pub fn inject(s: &Shared, fault: Fault, lasts_us: Option<u64>, by: &str) -> bool {
    // The liveness phase promises a healed world: a trigger met then (a late delivery, a
    // handler starting) injects nothing, or a fault without a duration would never heal.
    if s.faults.lock().expect("fault state").liveness {
        return false;
    }
    let h = Handle::current();
    let net = NetSim::current();
    let mut f = fields! {"fault" => fault.kind(), "by" => by};
    let mut state = s.faults.lock().expect("fault state");
    let mut set_status = |node: &str, from: NodeStatus, to: NodeStatus| -> bool {
        let status = state.status.get_mut(node).expect("a known node");
        if *status != from {
            return false;
        }
        *status = to;
        true
    };
    let done = match &fault {
        Fault::Crash(node) => {
            let up = set_status(node, NodeStatus::Up, NodeStatus::Down)
                || set_status(node, NodeStatus::Paused, NodeStatus::Down);
            if up {
                h.kill(s.node_id(node));
                if node == "redis" {
                    let now_us = s.clock("redis").now_unix_us();
                    let lost = s
                        .redis
                        .lock()
                        .expect("redis state")
                        .crash(s.config.redis_persistence, now_us);
                    f.insert("lost_keys", lost.into());
                }
            }
            up
        }
        Fault::Pause(node) => {
            let up = set_status(node, NodeStatus::Up, NodeStatus::Paused);
            if up {
                h.pause(s.node_id(node));
            }
            up
        }
        Fault::Clog(node) => {
            net.clog_node(s.node_id(node));
            true
        }
        Fault::Partition(a, b) => {
            net.clog_link(s.node_id(a), s.node_id(b));
            net.clog_link(s.node_id(b), s.node_id(a));
            f.insert("peer", b.as_str().into());
            true
        }
        Fault::Latency(ms) => {
            f.insert("latency_ms_max", (*ms).into());
            net.update_config(|c| c.send_latency = latency(s, *ms));
            true
        }
        Fault::RedisErrors(share) => {
            f.insert("share", (*share).into());
            s.redis.lock().expect("redis state").error_share = *share;
            true
        }
        Fault::Clock(node, offset_ms) => {
            f.insert("offset_ms", (*offset_ms).into());
            s.clock(node).set_offset_us(offset_ms.saturating_mul(1000));
            true
        }
        Fault::FaultPoint(worker, point, event_id) => {
            f.insert("point", point.name().into());
            if let Some(e) = event_id {
                f.insert("event_id", e.as_str().into());
            }
            state
                .armed
                .entry(worker.clone())
                .or_default()
                .push((*point, event_id.clone(), lasts_us));
            true
        }
        Fault::HandlerError(worker) => {
            *state.failing_handlers.entry(worker.clone()).or_default() += 1;
            true
        }
        Fault::AckLoss(n) => {
            f.insert("acks", (*n).into());
            state.lost_acks += n;
            true
        }
    };
    if !done {
        return false;
    }
    let node = match &fault {
        Fault::Crash(n) | Fault::Pause(n) | Fault::Clog(n) | Fault::Partition(n, _) | Fault::Clock(n, _) => {
            Some(n)
        }
        Fault::FaultPoint(n, ..) | Fault::HandlerError(n) => Some(n),
        Fault::Latency(_) | Fault::RedisErrors(_) | Fault::AckLoss(_) => None,
    };
    if let Some(n) = node {
        f.insert("node", n.as_str().into());
    }
    if let Some(lasts) = lasts_us {
        f.insert("lasts_ms", Value::from(lasts / 1000));
        if let Some(heal) = fault.heal() {
            state.schedule(now_us() + lasts, heal);
        }
    }
    drop(state);
    s.trace.record("nemesis", "fault", f);
    true
}

/// Crashes the calling worker's node where it stands (a fault point fired); it restarts
/// after `down_us`, or when the liveness phase begins.
pub fn crash_self(s: &Shared, worker: &str, point: FaultPoint, event_id: &str, down_us: Option<u64>) {
    {
        let mut state = s.faults.lock().expect("fault state");
        *state.status.get_mut(worker).expect("a known worker") = NodeStatus::Down;
        if let Some(d) = down_us {
            state.schedule(now_us() + d, Heal::Restart(worker.to_owned()));
        }
    }
    s.trace.record(
        "nemesis",
        "fault",
        fields! {"fault" => "crash", "by" => "fault_point", "node" => worker, "point" => point.name(), "event_id" => event_id},
    );
    Handle::current().kill(madsim::plugin::node());
}

/// Carries out `heal` (if it still applies) and records it.
pub fn heal(s: &Shared, heal: Heal) {
    let h = Handle::current();
    let net = NetSim::current();
    let f = {
        let mut state = s.faults.lock().expect("fault state");
        match &heal {
            Heal::Restart(node) => {
                let status = state.status.get_mut(node).expect("a known node");
                if *status != NodeStatus::Down {
                    return;
                }
                *status = NodeStatus::Up;
                h.restart(s.node_id(node));
                fields! {"heal" => "restart", "node" => node.as_str()}
            }
            Heal::Resume(node) => {
                let status = state.status.get_mut(node).expect("a known node");
                if *status != NodeStatus::Paused {
                    return;
                }
                *status = NodeStatus::Up;
                h.resume(s.node_id(node));
                fields! {"heal" => "resume", "node" => node.as_str()}
            }
            Heal::Unclog(node) => {
                net.unclog_node(s.node_id(node));
                fields! {"heal" => "unclog", "node" => node.as_str()}
            }
            Heal::Unpartition(a, b) => {
                net.unclog_link(s.node_id(a), s.node_id(b));
                net.unclog_link(s.node_id(b), s.node_id(a));
                fields! {"heal" => "unpartition", "node" => a.as_str(), "peer" => b.as_str()}
            }
            Heal::Latency => {
                net.update_config(|c| c.send_latency = latency(s, s.config.latency_ms_max));
                fields! {"heal" => "latency"}
            }
            Heal::RedisErrors => {
                s.redis.lock().expect("redis state").error_share = 0.0;
                fields! {"heal" => "redis_errors"}
            }
            Heal::Clock(node) => {
                if s.clock(node).offset_us() == 0 {
                    return;
                }
                s.clock(node).set_offset_us(0);
                fields! {"heal" => "clock", "node" => node.as_str()}
            }
        }
    };
    s.trace.record("nemesis", "heal", f);
}

/// The start of the liveness phase: undo every fault, whether or not it had a heal planned.
pub fn heal_everything(s: &Shared) {
    s.trace
        .record("nemesis", "phase", fields! {"phase" => "liveness"});
    let (planned, nodes) = {
        let mut state = s.faults.lock().expect("fault state");
        state.liveness = true;
        state.armed.clear();
        state.failing_handlers.clear();
        state.lost_acks = 0;
        (
            state.due_heals(u64::MAX),
            state.status.keys().cloned().collect::<Vec<_>>(),
        )
    };
    for h in planned {
        heal(s, h);
    }
    for node in nodes {
        heal(s, Heal::Restart(node.clone()));
        heal(s, Heal::Resume(node.clone()));
        heal(s, Heal::Clock(node));
    }
    let net = NetSim::current();
    for a in s.node_names() {
        net.unclog_node(s.node_id(&a));
        for b in s.node_names() {
            net.unclog_link(s.node_id(&a), s.node_id(&b));
        }
    }
    heal(s, Heal::Latency);
    heal(s, Heal::RedisErrors);
}
