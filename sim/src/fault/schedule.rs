//! A scenario's scheduled faults: what to break, and the moment to break it.
//!
//! Each entry has exactly one trigger:
//! - `at_ms`: at a virtual time;
//! - `point`: when a worker (`by`, or any) reaches a named fault point (`after_acquire`,
//!   `after_effect_commit`, `before_confirm`, `after_confirm`, `before_offset_commit`), for
//!   event `event` only if given, and only from `after_ms` on if given; `node` defaults to that
//!   worker (so `fault = "crash"` crashes it right there);
//! - `on_delivery = n` (with `event`): when event `event` is delivered for the n-th time
//!   (counting every worker's deliveries); `node` defaults to the worker that got it;
//! - `while_holding = "worker-N"` (with `event`): as soon as that worker holds the event's lock
//!   (its handler starts); `node` defaults to that worker.
//!
//! and one [`Fault`] (its fields flattened into the entry): `crash`, `pause`, `clog`,
//! `partition` (with `peer`), `latency` (with `latency_ms_max`; `latency_ms` is read too),
//! `redis_errors` (with `share`), `clock` (with `offset_ms`), `handler_error` (the worker's next
//! handler fails), `ack_loss` (with `acks`), `db_errors` (with `share`), `lost_replies` (with
//! `share`, optionally `command`) or `failover` (with `lag_ms`; its duration is the promotion).
//! `duration_ms` says when it heals (a crashed node
//! restarts, a paused one resumes, ...); without it the fault lasts until the liveness phase.
//! Events are numbered by their place in the workload, from 0. Every entry fires at most once.

use crate::fault::{Fault, FaultPoint};
use crate::net::topology::NodeName;
use serde::{Deserialize, Serialize};

/// One scheduled fault (see the module documentation): a trigger, a [`Fault`], a duration.
/// (Unknown fields are refused by the [`Fault`] it flattens.)
///
/// ```
/// use sim::{Fault, ScheduledFault};
///
/// // Redis fails every command from the start until the liveness phase heals it. The workers
/// // fail open, so both copies of the event run unprotected and the plain database applies
/// // the effect twice.
/// let outage = ScheduledFault::at(0, Fault::RedisErrors { share: 1.0 }, None);
/// let sim = sim::Sim::new("duplicate-detection")
///     .unwrap()
///     .configure(|c| c.schedule.push(outage.clone()));
/// let r = sim.run(1);
/// assert_eq!(r.faults["redis_errors"], 1);
/// assert_eq!(r.duplicates, 1);
/// let failure = sim.failure(&r).unwrap();
/// assert!(failure.shows("duplicate_effect"));
/// assert_eq!(failure.faults, [outage]);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduledFault {
    /// Trigger: at this virtual time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<u64>,
    /// Trigger: when a worker reaches this fault point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point: Option<FaultPoint>,
    /// For `point`: only when this worker reaches it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<NodeName>,
    /// For `point`: only when it is reached at or after this virtual time (the nemesis arms a
    /// worker's next fault point this way).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_ms: Option<u64>,
    /// Trigger: on the n-th delivery of `event`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_delivery: Option<u32>,
    /// Trigger: when this worker holds `event`'s lock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub while_holding: Option<NodeName>,
    /// The event the trigger is about (its place in the workload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<u32>,
    /// How long it lasts (no value: until the liveness phase).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// What happens.
    #[serde(flatten)]
    pub fault: Fault,
}

/// The trigger of an entry: when a [`ScheduledFault`] fires.
///
/// ```
/// use sim::{Fault, NodeName, ScheduledFault, Trigger};
///
/// // Pause the database on the second delivery of event 3, for 1.5 s.
/// let on_redelivery = Trigger::OnDelivery { event: 3, n: 2 };
/// let entry = ScheduledFault::when(on_redelivery.clone(), Fault::Pause { node: Some(NodeName::Db) }, Some(1_500));
/// assert_eq!(entry.trigger(), Ok(on_redelivery));
/// assert_eq!((entry.on_delivery, entry.event), (Some(2), Some(3)));
/// assert!(!Trigger::At(1_000).has_worker(), "a time names no worker");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// At a virtual time (ms).
    At(u64),
    /// At a fault point, for one event or any, reached by one worker or any, from a time on.
    Point {
        /// The point.
        point: FaultPoint,
        /// Only for this event.
        event: Option<u32>,
        /// Only by this worker.
        by: Option<NodeName>,
        /// Only from this virtual time (ms).
        after_ms: Option<u64>,
    },
    /// On the n-th delivery of an event.
    OnDelivery {
        /// The event.
        event: u32,
        /// Which delivery, from 1.
        n: u32,
    },
    /// While a worker holds an event's lock.
    WhileHolding {
        /// The worker.
        worker: NodeName,
        /// The event.
        event: u32,
    },
}

impl Trigger {
    /// Whether the trigger names the worker that meets it (so a fault's node defaults to it).
    pub fn has_worker(&self) -> bool {
        !matches!(self, Trigger::At(_))
    }
}

impl ScheduledFault {
    /// An entry that injects `fault` at `at_ms`, lasting `duration_ms`.
    pub fn at(at_ms: u64, fault: Fault, duration_ms: Option<u64>) -> Self {
        ScheduledFault {
            at_ms: Some(at_ms),
            point: None,
            by: None,
            after_ms: None,
            on_delivery: None,
            while_holding: None,
            event: None,
            duration_ms,
            fault,
        }
    }

    /// An entry that injects `fault` when `trigger` is met, lasting `duration_ms`: the same
    /// entry a scenario file's `[[schedule]]` table writes, built in code.
    ///
    /// ```
    /// use sim::{Fault, FaultPoint, ScheduledFault, Trigger};
    ///
    /// // Crash the worker that first reaches `after_email` while handling event 0.
    /// let crash = ScheduledFault::when(
    ///     Trigger::Point { point: FaultPoint::from("after_email"), event: Some(0), by: None, after_ms: None },
    ///     Fault::Crash { node: None },
    ///     Some(2_000),
    /// );
    /// assert_eq!(crash.trigger(), Ok(Trigger::Point {
    ///     point: FaultPoint::from("after_email"), event: Some(0), by: None, after_ms: None,
    /// }));
    /// ```
    pub fn when(trigger: Trigger, fault: Fault, duration_ms: Option<u64>) -> Self {
        let mut entry = ScheduledFault::at(0, fault, duration_ms);
        entry.at_ms = None;
        match trigger {
            Trigger::At(at_ms) => entry.at_ms = Some(at_ms),
            Trigger::Point {
                point,
                event,
                by,
                after_ms,
            } => {
                entry.point = Some(point);
                entry.event = event;
                entry.by = by;
                entry.after_ms = after_ms;
            }
            Trigger::OnDelivery { event, n } => {
                entry.on_delivery = Some(n);
                entry.event = Some(event);
            }
            Trigger::WhileHolding { worker, event } => {
                entry.while_holding = Some(worker);
                entry.event = Some(event);
            }
        }
        assert!(entry.trigger().is_ok(), "a built entry has exactly one trigger");
        entry
    }

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
        } else if let Some(point) = &self.point {
            Trigger::Point {
                point: point.clone(),
                event: self.event,
                by: self.by,
                after_ms: self.after_ms,
            }
        } else if let Some(n) = self.on_delivery {
            if n == 0 {
                return Err("`on_delivery` counts from 1".into());
            }
            Trigger::OnDelivery { event: event()?, n }
        } else {
            Trigger::WhileHolding {
                worker: self.while_holding.expect("checked"),
                event: event()?,
            }
        })
    }

    /// Checks the entry against the run's workers and events; the error names the field.
    pub fn validate(&self, workers: u32, events: u32) -> Result<(), String> {
        let trigger = self.trigger()?;
        let worker = |field: &str, n: Option<NodeName>| match n {
            Some(NodeName::Worker(w)) if u32::from(w) <= workers => Ok(()),
            Some(n) => Err(format!(
                "`{field}`: unknown node \"{n}\"; valid: worker-1 to worker-{workers}"
            )),
            None => Ok(()),
        };
        self.fault.validate(workers)?;
        if let Some(e) = self.event {
            if e >= events {
                return Err(format!(
                    "`event`: {e} is out of range (the workload has {events} events, numbered from 0)"
                ));
            }
        }
        if self.by.is_some() && !matches!(trigger, Trigger::Point { .. }) {
            return Err("`by` only goes with a `point` trigger".into());
        }
        if self.after_ms.is_some() && !matches!(trigger, Trigger::Point { .. }) {
            return Err("`after_ms` only goes with a `point` trigger".into());
        }
        if let Trigger::Point {
            point: FaultPoint::Named(name),
            ..
        } = &trigger
        {
            if let Some(why) = FaultPoint::invalid_name(name) {
                let built_in: Vec<&str> = FaultPoint::ALL.iter().map(FaultPoint::name).collect();
                return Err(format!(
                    "`point`: {why}; the built-in points are {}, and a handler may name its own",
                    built_in.join(", ")
                ));
            }
        }
        match &trigger {
            Trigger::Point { by, .. } => worker("by", *by)?,
            Trigger::WhileHolding { worker: w, .. } => worker("while_holding", Some(*w))?,
            Trigger::At(_) | Trigger::OnDelivery { .. } => {}
        }
        if self.fault.needs_node() && self.fault.node().is_none() && !trigger.has_worker() {
            return Err(format!("`fault = {:?}` needs `node`", self.fault.kind()));
        }
        Ok(())
    }

    /// The fault to inject, `worker` being the one that met the trigger (if any).
    pub fn fault_for(&self, worker: Option<NodeName>) -> Fault {
        self.fault.at(worker)
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

    const WORKERS: u32 = 2;

    #[test]
    fn each_trigger_is_read_and_checked() {
        let cases = [
            (
                "at_ms = 5\nfault = \"crash\"\nnode = \"redis\"\nduration_ms = 10",
                Trigger::At(5),
            ),
            (
                "point = \"before_confirm\"\nfault = \"crash\"\nby = \"worker-1\"\nevent = 0",
                Trigger::Point {
                    point: FaultPoint::BeforeConfirm,
                    event: Some(0),
                    by: Some(NodeName::Worker(1)),
                    after_ms: None,
                },
            ),
            (
                "point = \"after_acquire\"\nafter_ms = 300\nfault = \"crash\"\nby = \"worker-2\"",
                Trigger::Point {
                    point: FaultPoint::AfterAcquire,
                    event: None,
                    by: Some(NodeName::Worker(2)),
                    after_ms: Some(300),
                },
            ),
            (
                "on_delivery = 2\nevent = 1\nfault = \"handler_error\"",
                Trigger::OnDelivery { event: 1, n: 2 },
            ),
            (
                "while_holding = \"worker-2\"\nevent = 0\nfault = \"pause\"",
                Trigger::WhileHolding {
                    worker: NodeName::Worker(2),
                    event: 0,
                },
            ),
        ];
        let named = entry("point = \"after_email\"\nfault = \"crash\"");
        assert_eq!(
            named.trigger().map(
                |t| matches!(t, Trigger::Point { point: FaultPoint::Named(n), .. } if n == "after_email")
            ),
            Ok(true),
            "a handler's own point, by its bare name"
        );
        assert_eq!(named.validate(WORKERS, 3), Ok(()));
        let bad = entry("point = \"After Email\"\nfault = \"crash\"");
        let err = bad.validate(WORKERS, 3).unwrap_err();
        assert!(
            err.starts_with("`point`: \"After Email\" is not a fault point's name"),
            "{err}"
        );
        let redis_at_point = entry("point = \"after_confirm\"\nfault = \"crash\"\nnode = \"redis\"");
        assert_eq!(redis_at_point.validate(WORKERS, 3), Ok(()));
        for (text, want) in cases {
            let e = entry(text);
            assert_eq!(e.trigger(), Ok(want), "{text}");
            assert_eq!(e.validate(WORKERS, 3), Ok(()), "{text}");
        }
    }

    #[test]
    fn an_entry_is_written_back_as_it_was_read() {
        let text = "at_ms = 5\nduration_ms = 10\nfault = \"partition\"\nnode = \"worker-1\"\npeer = \"db\"\n";
        let e = entry(text);
        assert_eq!(toml::to_string(&e).unwrap(), text);
        assert_eq!(entry(&toml::to_string(&e).unwrap()), e);
    }

    #[test]
    fn mistakes_name_the_field() {
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
            (
                "at_ms = 1\nafter_ms = 3\nfault = \"crash\"\nnode = \"redis\"",
                "only goes with a `point`",
            ),
            ("on_delivery = 1\nfault = \"pause\"", "needs `event`"),
            ("on_delivery = 0\nevent = 0\nfault = \"pause\"", "counts from 1"),
            ("at_ms = 1\nfault = \"redis_errors\"\nshare = 2.0", "within 0..=1"),
            ("on_delivery = 1\nevent = 7\nfault = \"pause\"", "out of range"),
            (
                "at_ms = 1\nfault = \"handler_error\"\nnode = \"db\"",
                "not a worker",
            ),
        ];
        for (text, says) in cases {
            let err = entry(text).validate(WORKERS, 3).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
        for (text, says) in [
            (
                "at_ms = 1\nfault = \"partition\"\nnode = \"redis\"",
                "missing field `peer`",
            ),
            ("at_ms = 1\nfault = \"latency\"", "missing field `latency_ms_max`"),
            (
                "at_ms = 1\nfault = \"latency\"\nlatency_ms = 5\nnode = \"db\"",
                "unknown field `node`",
            ),
            ("at_ms = 1\nfault = \"crash\"\nnode = \"wrker-1\"", "unknown node"),
            ("at_ms = 1\nfault = \"melt\"", "unknown variant `melt`"),
        ] {
            let err = toml::from_str::<ScheduledFault>(text).unwrap_err().to_string();
            assert!(err.contains(says), "{text}: {err}");
        }
    }
}
