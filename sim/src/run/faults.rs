//! What is in force: each node's status, the agenda of heals, and the phase. Every fault and
//! heal goes through here, whoever asked for it, so each is guarded by the node's status (a down
//! node is not crashed again, a running node is not "restarted"), every lasting fault heals at
//! its start plus its duration, and each becomes one trace event (`fault`, `heal`, `phase`).

use crate::fault::{Fault, FaultPoint, Verbs};
use crate::net::topology::NodeName;
use crate::trace::{Trace, Typed};
use std::collections::BTreeMap;
use std::task::Waker;

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

/// The faults' bookkeeping, one per run.
pub struct FaultState {
    status: BTreeMap<NodeName, NodeStatus>,
    /// The faults to heal, by due time (µs) and order of scheduling.
    agenda: BTreeMap<(u64, u64), Fault>,
    seq: u64,
    /// The network's latency is raised.
    latency_raised: bool,
    /// The supervisor, asleep until its next planned wake-up: woken when a heal is scheduled
    /// (by a worker's trigger), so that every fault heals at its start plus its duration.
    supervisor: Option<Waker>,
    /// A heal was scheduled since the supervisor last planned its wake-up.
    agenda_changed: bool,
    /// The liveness phase has begun: everything is healed and no new fault is injected.
    liveness: bool,
    trace: Trace,
}

/// Where faults are recorded.
const NODE: &str = "nemesis";

impl FaultState {
    /// Every node up, nothing in force; events go to `trace`.
    pub fn new(nodes: &[NodeName], trace: Trace) -> Self {
        FaultState {
            status: nodes.iter().map(|n| (*n, NodeStatus::Up)).collect(),
            agenda: BTreeMap::new(),
            seq: 0,
            latency_raised: false,
            supervisor: None,
            agenda_changed: false,
            liveness: false,
            trace,
        }
    }

    /// `node`'s status.
    pub fn status(&self, node: NodeName) -> NodeStatus {
        *self.status.get(&node).expect("a node of the run")
    }

    /// Whether the liveness phase has begun.
    pub fn liveness(&self) -> bool {
        self.liveness
    }

    /// The earliest heal's due time (not counting those left for the liveness phase).
    pub fn next_heal_us(&self) -> Option<u64> {
        self.agenda.keys().next().map(|k| k.0).filter(|t| *t < u64::MAX)
    }

    /// The supervisor is about to plan its next wake-up from the agenda as it is now.
    pub fn planned(&mut self) {
        self.agenda_changed = false;
    }

    /// Whether a heal was scheduled since [`Self::planned`]; else the supervisor's waker is
    /// kept, to be woken when one is.
    pub fn changed_or_wait(&mut self, waker: &Waker) -> bool {
        if self.agenda_changed {
            return true;
        }
        self.supervisor = Some(waker.clone());
        false
    }

    fn set(&mut self, node: NodeName, from: &[NodeStatus], to: NodeStatus) -> bool {
        let status = self.status.get_mut(&node).expect("a node of the run");
        if !from.contains(status) {
            return false;
        }
        // The only transitions: up -> down | paused, paused -> down | up, down -> up.
        assert!(
            matches!(
                (*status, to),
                (NodeStatus::Up, NodeStatus::Down | NodeStatus::Paused)
                    | (NodeStatus::Paused, NodeStatus::Down | NodeStatus::Up)
                    | (NodeStatus::Down, NodeStatus::Up)
            ),
            "{node}: {status:?} -> {to:?}"
        );
        *status = to;
        true
    }

    /// Injects `fault` (its node filled in) now at `now_us`, if the node's status allows it,
    /// and schedules its heal after `lasts_us` (`None`: it lasts until the liveness phase).
    /// `by` says who asked; `at` is the trigger's fault point and the event being processed
    /// there, if a worker met one. Returns whether anything was done.
    pub fn inject(
        &mut self,
        verbs: &dyn Verbs,
        fault: &Fault,
        lasts_us: Option<u64>,
        now_us: u64,
        by: &str,
        at: Option<(&FaultPoint, &str)>,
    ) -> bool {
        // The liveness phase promises a healed world: a trigger met then (a late delivery, a
        // handler starting) injects nothing, or a fault without a duration would never heal.
        if self.liveness {
            return false;
        }
        assert!(
            !fault.needs_node() || fault.node().is_some(),
            "{fault:?}: its node was not filled in"
        );
        let mut lost_keys = None;
        let done = match fault {
            Fault::Crash { node: Some(n) } => {
                let up = self.set(*n, &[NodeStatus::Up, NodeStatus::Paused], NodeStatus::Down);
                if up {
                    lost_keys = verbs.kill(*n);
                }
                up
            }
            Fault::Pause { node: Some(n) } => {
                let up = self.set(*n, &[NodeStatus::Up], NodeStatus::Paused);
                if up {
                    verbs.pause(*n);
                }
                up
            }
            Fault::Clog { node: Some(n) } => {
                verbs.clog(*n);
                true
            }
            Fault::SlowLink {
                node: Some(n),
                peer,
                latency_ms_max,
            } => {
                verbs.slow_link(*n, *peer, Some(*latency_ms_max));
                true
            }
            Fault::Failover { lag_ms } => {
                let up = self.set(
                    NodeName::Redis,
                    &[NodeStatus::Up, NodeStatus::Paused],
                    NodeStatus::Down,
                );
                if up {
                    lost_keys = verbs.fail_over(*lag_ms);
                }
                up
            }
            Fault::Partition { node: Some(a), peer } => {
                verbs.cut(*a, *peer);
                true
            }
            Fault::Latency { latency_ms_max } => {
                verbs.set_latency_ms_max(Some(*latency_ms_max));
                self.latency_raised = true;
                true
            }
            Fault::Clock {
                node: Some(n),
                offset_ms,
            } => {
                verbs.set_clock_offset_ms(*n, *offset_ms);
                true
            }
            f => match f.local_to() {
                Some(n) => verbs.local(n).inject(f),
                None => unreachable!("{f:?} is neither the world's nor a node's"),
            },
        };
        if !done {
            return false;
        }
        if fault.heal_name().is_some() {
            // Without a duration it heals when the liveness phase begins (and is recorded then).
            let at_us = lasts_us.map_or(u64::MAX, |l| now_us.saturating_add(l));
            self.schedule(at_us, fault.clone());
        }
        self.emit(Typed::Fault {
            fault: fault.clone(),
            by: by.to_owned(),
            lasts_ms: lasts_us.map(|l| l / 1000),
            lost_keys,
            point: at.map(|(p, _)| p.clone()),
            event_id: at.map(|(_, id)| id.to_owned()),
        });
        true
    }

    fn schedule(&mut self, at_us: u64, fault: Fault) {
        self.seq += 1;
        self.agenda.insert((at_us, self.seq), fault);
        if at_us < u64::MAX {
            self.agenda_changed = true;
            if let Some(w) = self.supervisor.take() {
                w.wake();
            }
        }
    }

    /// Heals every fault due at `now_us`, in the order they were scheduled.
    pub fn heal_due(&mut self, verbs: &dyn Verbs, now_us: u64) {
        while let Some(entry) = self.agenda.first_entry() {
            if entry.key().0 > now_us {
                break;
            }
            let fault = entry.remove();
            self.heal(verbs, &fault);
        }
    }

    /// Undoes `fault` if it still applies, and records it.
    fn heal(&mut self, verbs: &dyn Verbs, fault: &Fault) {
        let Some(name) = fault.heal_name() else { return };
        let mut peer_of = None;
        match fault {
            Fault::Crash { node: Some(n) } => {
                if !self.set(*n, &[NodeStatus::Down], NodeStatus::Up) {
                    return;
                }
                verbs.restart(*n);
            }
            Fault::Pause { node: Some(n) } => {
                if !self.set(*n, &[NodeStatus::Paused], NodeStatus::Up) {
                    return;
                }
                verbs.resume(*n);
            }
            Fault::Failover { .. } => {
                if !self.set(NodeName::Redis, &[NodeStatus::Down], NodeStatus::Up) {
                    return;
                }
                verbs.restart(NodeName::Redis);
            }
            Fault::Clog { node: Some(n) } => verbs.unclog(*n),
            Fault::SlowLink {
                node: Some(n), peer, ..
            } => {
                verbs.slow_link(*n, *peer, None);
                peer_of = *peer;
            }
            Fault::Partition { node: Some(a), peer } => {
                verbs.repair(*a, *peer);
                peer_of = Some(*peer);
            }
            Fault::Latency { .. } => {
                verbs.set_latency_ms_max(None);
                self.latency_raised = false;
            }
            Fault::Clock { node: Some(n), .. } => {
                if verbs.set_clock_offset_ms(*n, 0) == 0 {
                    return;
                }
            }
            f => match f.local_to() {
                Some(n) => verbs.local(n).heal(f),
                None => unreachable!("{f:?} has a heal but no one to do it"),
            },
        }
        self.emit(Typed::Heal {
            heal: name.to_owned(),
            node: fault.node(),
            peer: peer_of,
        });
    }

    /// The start of the liveness phase: every fault ends, whether or not its heal was planned,
    /// and none is injected from now on. Each node heals its own.
    pub fn begin_liveness(&mut self, verbs: &dyn Verbs) {
        self.emit(Typed::Phase {
            phase: "liveness".into(),
        });
        self.liveness = true;
        self.heal_due(verbs, u64::MAX);
        let nodes: Vec<NodeName> = self.status.keys().copied().collect();
        for &n in &nodes {
            self.heal(verbs, &Fault::Crash { node: Some(n) });
            self.heal(verbs, &Fault::Pause { node: Some(n) });
            self.heal(
                verbs,
                &Fault::Clock {
                    node: Some(n),
                    offset_ms: 0,
                },
            );
        }
        for &a in &nodes {
            verbs.unclog(a);
            for &b in &nodes {
                verbs.repair(a, b);
            }
        }
        if self.latency_raised {
            self.heal(verbs, &Fault::Latency { latency_ms_max: 0 });
        }
        for &n in &nodes {
            verbs.local(n).heal_all();
        }
        assert!(self.agenda.is_empty() && self.status.values().all(|s| *s == NodeStatus::Up));
    }

    fn emit(&self, event: Typed) {
        self.trace.emit_as(crate::trace::Label::fixed(NODE), event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A status change outside the node's life cycle (here: up to up) is caught in every
    /// build, not only in debug ones.
    #[test]
    #[should_panic(expected = "redis: Up -> Up")]
    fn a_transition_outside_the_life_cycle_is_caught() {
        let mut state = FaultState::new(&[NodeName::Redis], Trace::default());
        state.set(NodeName::Redis, &[NodeStatus::Up], NodeStatus::Up);
    }
}
