//! A scenario's scheduled faults: what to break, and the moment to break it.
//!
//! Each entry has exactly one trigger:
//! - `at_ms`: at a virtual time;
//! - `point`: when a worker (`by`, or any) reaches a named fault point (`after_acquire`,
//!   `after_effect_commit`, `before_confirm`, `after_confirm`, `before_offset_commit`), for
//!   event `event` only if given; `node` defaults to that worker (so `fault = "crash"` crashes
//!   it right there);
//! - `on_delivery = n` (with `event`): when event `event` is delivered for the n-th time
//!   (counting every worker's deliveries); `node` defaults to the worker that got it;
//! - `while_holding = "worker-N"` (with `event`): as soon as that worker holds the event's lock
//!   (its handler starts); `node` defaults to that worker.
//!
//! and one `fault`: `crash`, `pause`, `clog`, `partition` (with `peer`), `latency` (with
//! `latency_ms`), `redis_errors` (with `share`), `clock` (with `offset_ms`), or `handler_error`
//! (the worker's next handler fails). `duration_ms` says when it heals (a crashed node
//! restarts, a paused one resumes, ...); without it the fault lasts until the liveness phase.
//! Events are numbered by their place in the workload, from 0. Every entry fires at most once.

use crate::fault::Fault;
use crate::fault::FaultPoint;
use serde::{Deserialize, Serialize};

/// What a scheduled entry does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Kill the node.
    Crash,
    /// Pause the node.
    Pause,
    /// Cut the node off the network.
    Clog,
    /// Cut the link between `node` and `peer`.
    Partition,
    /// Raise the highest network latency to `latency_ms`.
    Latency,
    /// Fail `share` of Redis commands.
    RedisErrors,
    /// Set the node's clock offset to `offset_ms`.
    Clock,
    /// Make the worker's next handler fail.
    HandlerError,
    /// Lose the broker's next `acks` produce acks.
    AckLoss,
}

/// One scheduled fault (see the module documentation).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledFault {
    /// Trigger: at this virtual time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<u64>,
    /// Trigger: when a worker reaches this fault point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point: Option<FaultPoint>,
    /// For `point`: only when this worker reaches it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Trigger: on the n-th delivery of `event`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_delivery: Option<u32>,
    /// Trigger: when this worker holds `event`'s lock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub while_holding: Option<String>,
    /// The event the trigger is about (its place in the workload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<u32>,
    /// What to do.
    pub fault: FaultKind,
    /// The node it happens to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// For `partition`: the other side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// How long it lasts (no value: until the liveness phase).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// For `latency`: the highest latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// For `redis_errors`: the share of commands that fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<f64>,
    /// For `clock`: the offset from true time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset_ms: Option<i64>,
    /// For `ack_loss`: how many acks are lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acks: Option<u32>,
}

/// The trigger of an entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// At a virtual time (ms).
    At(u64),
    /// At a fault point, for one event or any, reached by one worker or any.
    Point(FaultPoint, Option<u32>, Option<String>),
    /// On the n-th delivery of an event.
    OnDelivery(u32, u32),
    /// While a worker holds an event's lock.
    WhileHolding(String, u32),
}

impl ScheduledFault {
    /// The entry's trigger; the error says what is wrong (for `schedule[i]`).
    pub fn trigger(&self) -> Result<Trigger, String> {
        let set = [
            self.at_ms.is_some(),
            self.point.is_some(),
            self.on_delivery.is_some(),
            self.while_holding.is_some(),
        ];
        if set.iter().filter(|&&b| b).count() != 1 {
            return Err(
                "needs exactly one trigger: `at_ms`, `point`, `on_delivery` or `while_holding`".into(),
            );
        }
        let event = || self.event.ok_or_else(|| "this trigger needs `event`".to_owned());
        Ok(if let Some(t) = self.at_ms {
            Trigger::At(t)
        } else if let Some(p) = self.point {
            Trigger::Point(p, self.event, self.by.clone())
        } else if let Some(n) = self.on_delivery {
            if n == 0 {
                return Err("`on_delivery` counts from 1".into());
            }
            Trigger::OnDelivery(event()?, n)
        } else {
            Trigger::WhileHolding(self.while_holding.clone().expect("checked"), event()?)
        })
    }

    /// Checks the entry against the run's nodes and events; the error names the field.
    pub fn validate(&self, nodes: &[String], workers: &[String], events: u32) -> Result<(), String> {
        let trigger = self.trigger()?;
        let known = |field: &str, n: &Option<String>, among: &[String]| match n {
            Some(n) if !among.contains(n) => Err(format!(
                "`{field}`: unknown node {n:?}; valid: {}",
                among.join(", ")
            )),
            _ => Ok(()),
        };
        known("node", &self.node, nodes)?;
        known("peer", &self.peer, nodes)?;
        if let Some(e) = self.event {
            if e >= events {
                return Err(format!(
                    "`event`: {e} is out of range (the workload has {events} events, numbered from 0)"
                ));
            }
        }
        if self.by.is_some() && !matches!(trigger, Trigger::Point(..)) {
            return Err("`by` only goes with a `point` trigger".into());
        }
        match &trigger {
            Trigger::Point(_, _, by) => known("by", by, workers)?,
            Trigger::WhileHolding(w, _) => known("while_holding", &Some(w.clone()), workers)?,
            Trigger::At(_) | Trigger::OnDelivery(..) => {}
        }
        let node_default = matches!(
            trigger,
            Trigger::OnDelivery(..) | Trigger::WhileHolding(..) | Trigger::Point(..)
        );
        let needs_node = matches!(
            self.fault,
            FaultKind::Crash
                | FaultKind::Pause
                | FaultKind::Clog
                | FaultKind::Partition
                | FaultKind::Clock
                | FaultKind::HandlerError
        );
        if needs_node && self.node.is_none() && !node_default {
            return Err(format!("`fault = {:?}` needs `node`", self.fault));
        }
        // These act on the whole world: a `node` or `peer` would be silently ignored.
        // (Latency is one range for every link of madsim's network; per-link latency needs a
        // transport of our own.)
        if matches!(
            self.fault,
            FaultKind::Latency | FaultKind::RedisErrors | FaultKind::AckLoss
        ) {
            for (field, set) in [("node", self.node.is_some()), ("peer", self.peer.is_some())] {
                if set {
                    return Err(format!(
                        "`{field}` does not apply to `fault = {:?}`: it acts on every link and node",
                        self.fault
                    ));
                }
            }
        }
        let need = |ok: bool, field: &str| {
            if ok {
                Ok(())
            } else {
                Err(format!("`fault = {:?}` needs `{field}`", self.fault))
            }
        };
        match self.fault {
            FaultKind::Partition => need(self.peer.is_some(), "peer")?,
            FaultKind::Latency => need(self.latency_ms.is_some(), "latency_ms")?,
            FaultKind::RedisErrors => {
                need(self.share.is_some(), "share")?;
                if !(0.0..=1.0).contains(&self.share.unwrap_or(0.0)) {
                    return Err("`share` must be within 0..=1".into());
                }
            }
            FaultKind::Clock => need(self.offset_ms.is_some(), "offset_ms")?,
            FaultKind::HandlerError => known("node", &self.node, workers)?,
            FaultKind::AckLoss => need(self.acks.is_some(), "acks")?,
            FaultKind::Crash | FaultKind::Pause | FaultKind::Clog => {}
        }
        Ok(())
    }

    /// The fault to inject, `worker` being the one that met the trigger (if any).
    pub fn fault(&self, worker: Option<&str>) -> Fault {
        let node = self
            .node
            .clone()
            .or_else(|| worker.map(str::to_owned))
            .unwrap_or_default();
        match self.fault {
            FaultKind::Crash => Fault::Crash(node),
            FaultKind::Pause => Fault::Pause(node),
            FaultKind::Clog => Fault::Clog(node),
            FaultKind::Partition => Fault::Partition(node, self.peer.clone().unwrap_or_default()),
            FaultKind::Latency => Fault::Latency(self.latency_ms.unwrap_or(0)),
            FaultKind::RedisErrors => Fault::RedisErrors(self.share.unwrap_or(0.0)),
            FaultKind::Clock => Fault::Clock(node, self.offset_ms.unwrap_or(0)),
            FaultKind::HandlerError => Fault::HandlerError(node),
            FaultKind::AckLoss => Fault::AckLoss(self.acks.unwrap_or(1)),
        }
    }

    /// How long the fault lasts, in µs (saturating; validated entries stay far below).
    pub fn lasts_us(&self) -> Option<u64> {
        self.duration_ms.map(|d| d.saturating_mul(1000))
    }

    /// For an `at_ms` trigger: when, in virtual µs (saturating, as [`Self::lasts_us`]).
    pub fn at_us(&self) -> Option<u64> {
        self.at_ms.map(|t| t.saturating_mul(1000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(toml_text: &str) -> ScheduledFault {
        toml::from_str(toml_text).unwrap()
    }

    fn nodes() -> (Vec<String>, Vec<String>) {
        let workers: Vec<String> = vec!["worker-1".into(), "worker-2".into()];
        let mut nodes: Vec<String> = ["redis", "db", "kafka", "producer"].map(String::from).to_vec();
        nodes.extend(workers.clone());
        (nodes, workers)
    }

    #[test]
    fn each_trigger_is_read_and_checked() {
        let (n, w) = nodes();
        let cases = [
            (
                "at_ms = 5\nfault = \"crash\"\nnode = \"redis\"\nduration_ms = 10",
                Ok(Trigger::At(5)),
            ),
            (
                "point = \"before_confirm\"\nfault = \"crash\"\nby = \"worker-1\"\nevent = 0",
                Ok(Trigger::Point(
                    FaultPoint::BeforeConfirm,
                    Some(0),
                    Some("worker-1".into()),
                )),
            ),
            (
                "on_delivery = 2\nevent = 1\nfault = \"handler_error\"",
                Ok(Trigger::OnDelivery(1, 2)),
            ),
            (
                "while_holding = \"worker-2\"\nevent = 0\nfault = \"pause\"",
                Ok(Trigger::WhileHolding("worker-2".into(), 0)),
            ),
        ];
        let redis_at_point = entry("point = \"after_confirm\"\nfault = \"crash\"\nnode = \"redis\"");
        assert_eq!(
            redis_at_point.trigger(),
            Ok(Trigger::Point(FaultPoint::AfterConfirm, None, None))
        );
        assert_eq!(redis_at_point.validate(&n, &w, 3), Ok(()));
        for (text, want) in cases {
            let e = entry(text);
            assert_eq!(e.trigger(), want.clone(), "{text}");
            assert_eq!(e.validate(&n, &w, 3), Ok(()), "{text}");
        }
    }

    #[test]
    fn mistakes_name_the_field() {
        let (n, w) = nodes();
        let cases = [
            ("fault = \"crash\"\nnode = \"redis\"", "exactly one trigger"),
            (
                "at_ms = 1\npoint = \"after_confirm\"\nfault = \"crash\"\nnode = \"worker-1\"",
                "exactly one trigger",
            ),
            ("at_ms = 1\nfault = \"crash\"", "needs `node`"),
            (
                "at_ms = 1\nfault = \"crash\"\nnode = \"worker-9\"",
                "unknown node \"worker-9\"",
            ),
            (
                "point = \"after_confirm\"\nfault = \"crash\"\nby = \"redis\"",
                "unknown node \"redis\"",
            ),
            (
                "at_ms = 1\nfault = \"crash\"\nnode = \"redis\"\nby = \"worker-1\"",
                "only goes with a `point`",
            ),
            ("on_delivery = 1\nfault = \"pause\"", "needs `event`"),
            ("on_delivery = 0\nevent = 0\nfault = \"pause\"", "counts from 1"),
            (
                "at_ms = 1\nfault = \"partition\"\nnode = \"redis\"",
                "needs `peer`",
            ),
            ("at_ms = 1\nfault = \"redis_errors\"\nshare = 2.0", "within 0..=1"),
            ("at_ms = 1\nfault = \"latency\"", "needs `latency_ms`"),
            ("on_delivery = 1\nevent = 7\nfault = \"pause\"", "out of range"),
        ];
        for (text, says) in cases {
            let err = entry(text).validate(&n, &w, 3).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
    }
}
