//! Carrying out faults and heals on the running world, whoever asks: the random nemesis, a
//! scenario's schedule, or a worker reaching a trigger.
//!
//! Every fault is guarded by the node's status (a down node is not crashed again, a running
//! node is not "restarted"), every lasting fault puts its heal on one agenda, and every action
//! is recorded in the trace (`fault`, `heal`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub mod config;
pub mod nemesis;
pub mod schedule;

/// A fault to inject.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Kill a node (it restarts at its heal).
    Crash(String),
    /// Pause a node, as a GC pause does (it resumes at its heal).
    Pause(String),
    /// Cut a node off the network.
    Clog(String),
    /// Cut the link between two nodes, both ways.
    Partition(String, String),
    /// Raise the network's highest latency to this many ms.
    Latency(u64),
    /// Fail this share of Redis commands.
    RedisErrors(f64),
    /// Set a node's clock offset (ms, either way).
    Clock(String, i64),
    /// Crash a worker the next time it reaches this point (for this event id, if given).
    FaultPoint(String, FaultPoint, Option<String>),
    /// Make a worker's next handler fail (an exception in the business code).
    HandlerError(String),
    /// Lose the broker's next produce acks (the records are appended): the producer retries.
    AckLoss(u32),
}

impl Fault {
    /// The fault's kind, as traces, scenario files and summaries name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Crash(_) => "crash",
            Fault::Pause(_) => "pause",
            Fault::Clog(_) => "clog",
            Fault::Partition(..) => "partition",
            Fault::Latency(_) => "latency",
            Fault::RedisErrors(_) => "redis_errors",
            Fault::Clock(..) => "clock",
            Fault::FaultPoint(..) => "fault_point",
            Fault::HandlerError(_) => "handler_error",
            Fault::AckLoss(_) => "ack_loss",
        }
    }

    /// The heal that undoes it, if it lasts.
    pub(crate) fn heal(&self) -> Option<Heal> {
        match self {
            Fault::Crash(n) => Some(Heal::Restart(n.clone())),
            Fault::Pause(n) => Some(Heal::Resume(n.clone())),
            Fault::Clog(n) => Some(Heal::Unclog(n.clone())),
            Fault::Partition(a, b) => Some(Heal::Unpartition(a.clone(), b.clone())),
            Fault::Latency(_) => Some(Heal::Latency),
            Fault::RedisErrors(_) => Some(Heal::RedisErrors),
            Fault::Clock(n, _) => Some(Heal::Clock(n.clone())),
            Fault::FaultPoint(..) | Fault::HandlerError(_) | Fault::AckLoss(_) => None,
        }
    }
}

/// Undoing a fault.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Heal {
    /// Restart a crashed node.
    Restart(String),
    /// Resume a paused node.
    Resume(String),
    /// Reconnect a node.
    Unclog(String),
    /// Reconnect two nodes.
    Unpartition(String, String),
    /// Back to the configured latency.
    Latency,
    /// No more injected Redis errors.
    RedisErrors,
    /// The node's clock back to true time.
    Clock(String),
}

/// Whether a node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeStatus {
    /// Running.
    Up,
    /// Killed, waiting for its restart.
    Down,
    /// Paused, waiting to resume.
    Paused,
}

/// An armed fault point: the point, only for this event id (if any), and how long the worker
/// stays down after (`None`: until the liveness phase).
pub type Armed = (FaultPoint, Option<String>, Option<u64>);

/// The faults' bookkeeping, one per run (in [`Shared`]).
#[derive(Default)]
pub struct FaultState {
    /// Each node's status.
    pub status: BTreeMap<String, NodeStatus>,
    /// Heals by due time (µs) and order of scheduling.
    agenda: BTreeMap<(u64, u64), Heal>,
    seq: u64,
    /// Armed fault points per worker.
    pub armed: BTreeMap<String, Vec<Armed>>,
    /// Workers whose next handler fails.
    pub failing_handlers: BTreeMap<String, u32>,
    /// Produce acks the broker will not send.
    pub lost_acks: u32,
    /// The supervisor, asleep until its next planned wake-up: woken when a heal is scheduled
    /// (by a worker's trigger or fault point), so that every fault heals at its inject time
    /// plus its duration, whoever injected it.
    pub(crate) supervisor: Option<std::task::Waker>,
    /// A heal was scheduled since the supervisor last planned its wake-up.
    pub(crate) agenda_changed: bool,
    /// The liveness phase has begun: everything is healed and no new fault is injected.
    pub liveness: bool,
}

impl FaultState {
    /// Starts with every node up.
    pub fn new(nodes: &[String]) -> Self {
        FaultState {
            status: nodes.iter().map(|n| (n.clone(), NodeStatus::Up)).collect(),
            ..Default::default()
        }
    }

    /// The earliest heal's due time.
    pub fn next_heal_us(&self) -> Option<u64> {
        self.agenda.keys().next().map(|k| k.0)
    }

    pub(crate) fn schedule(&mut self, at_us: u64, heal: Heal) {
        self.seq += 1;
        self.agenda.insert((at_us, self.seq), heal);
        self.agenda_changed = true;
        if let Some(w) = self.supervisor.take() {
            w.wake();
        }
    }

    /// The supervisor is about to plan its next wake-up from the agenda as it is now.
    pub fn planned(&mut self) {
        self.agenda_changed = false;
    }

    /// Removes and returns the heals due at `now_us` (all of them for `u64::MAX`).
    pub fn due_heals(&mut self, now_us: u64) -> Vec<Heal> {
        let mut out = Vec::new();
        while let Some(entry) = self.agenda.first_entry() {
            if entry.key().0 > now_us {
                break;
            }
            out.push(entry.remove());
        }
        out
    }

    /// If `worker` had `point` armed for `event_id` (or for any event), disarms it and returns
    /// how long the worker stays down (`Some(None)`: until the liveness phase).
    pub fn disarm(&mut self, worker: &str, point: FaultPoint, event_id: &str) -> Option<Option<u64>> {
        let armed = self.armed.get_mut(worker)?;
        let i = armed
            .iter()
            .position(|(p, e, _)| *p == point && e.as_deref().is_none_or(|e| e == event_id))?;
        Some(armed.remove(i).2)
    }

    /// True (once per lost ack) if the next produce ack is to be lost.
    pub fn take_lost_ack(&mut self) -> bool {
        let lost = self.lost_acks > 0;
        self.lost_acks = self.lost_acks.saturating_sub(1);
        lost
    }

    /// True (once) if `worker`'s next handler was made to fail.
    pub fn take_handler_error(&mut self, worker: &str) -> bool {
        match self.failing_handlers.get_mut(worker) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }
}

/// A place in the handler path where the nemesis can crash a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultPoint {
    /// The lock is held and the handler is about to start.
    AfterAcquire,
    /// The effect is committed; nothing else happened yet.
    AfterEffectCommit,
    /// Just before the handler confirms.
    BeforeConfirm,
    /// Just after the handler confirmed.
    AfterConfirm,
    /// Processing is over; the offset is not committed yet.
    BeforeOffsetCommit,
}

impl FaultPoint {
    /// Every fault point.
    pub const ALL: [FaultPoint; 5] = [
        FaultPoint::AfterAcquire,
        FaultPoint::AfterEffectCommit,
        FaultPoint::BeforeConfirm,
        FaultPoint::AfterConfirm,
        FaultPoint::BeforeOffsetCommit,
    ];

    /// Its name in traces and scenario files.
    pub fn name(self) -> &'static str {
        match self {
            FaultPoint::AfterAcquire => "after_acquire",
            FaultPoint::AfterEffectCommit => "after_effect_commit",
            FaultPoint::BeforeConfirm => "before_confirm",
            FaultPoint::AfterConfirm => "after_confirm",
            FaultPoint::BeforeOffsetCommit => "before_offset_commit",
        }
    }
}
