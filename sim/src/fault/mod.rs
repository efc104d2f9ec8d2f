//! Faults as data: the one vocabulary that scenario files, the nemesis and the trace share, and
//! the bookkeeping of what is in force and when it heals.
//!
//! A [`Fault`] is one serde type: a scenario's `[[schedule]]` entry is a trigger plus a fault
//! ([`schedule::ScheduledFault`]), the nemesis's decisions are such entries
//! ([`nemesis::Nemesis`]), and the trace's `fault` event is the same fields (plus who asked and
//! how long it lasts; the node it hits is named `target` there, since every trace line's `node`
//! is the node that recorded it). `sim --save-scenario` writes a run's random faults back as entries, and
//! replaying that file gives the same run.
//!
//! Faults act on the world through two narrow traits, so this module knows nothing of madsim
//! or of the nodes: [`Verbs`] (crash, restart, pause, resume, clog, partition, latency, clocks:
//! what the world does to a node from outside) and [`NodeFaults`] (what a node does to itself:
//! Redis failing commands, the broker losing acks, a handler throwing, the database failing
//! transactions). Nodes [`Control::reached`] fault points and report deliveries; the world
//! decides. The run's `FaultState` (in `run/faults.rs`, since it writes the trace, which sits
//! below this vocabulary) guards every change by the node's status, puts every lasting fault's
//! heal on one agenda, and turns each into a trace event.

use crate::net::topology::NodeName;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub mod nemesis;
pub mod schedule;

pub use nemesis::FaultConfig;

/// A fault: what breaks, and where. `node` is `None` only in a schedule entry whose trigger
/// names the worker (it defaults to that worker).
///
/// ```
/// use sim::{Fault, NodeName};
///
/// // Pause worker-1, as a GC pause does (a `ScheduledFault` says when and for how long).
/// let pause = Fault::Pause { node: Some(NodeName::Worker(1)) };
/// assert_eq!(pause.kind(), "pause");
/// assert_eq!(pause.node(), Some(NodeName::Worker(1)));
/// // Its fields as a scenario file's `[[schedule]]` entry writes them.
/// let fields = pause.fields();
/// assert_eq!(fields["fault"], "pause");
/// assert_eq!(fields["node"], "worker-1");
///
/// // A fault is checked against the run: a run of 2 workers has no worker-3.
/// let crash = Fault::Crash { node: Some(NodeName::Worker(3)) };
/// assert!(crash.validate(2).unwrap_err().contains("unknown node \"worker-3\""));
/// assert!(Fault::RedisErrors { share: 1.5 }.validate(2).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Kill a node (it restarts at its heal).
    Crash {
        /// The node.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<NodeName>,
    },
    /// Pause a node, as a GC pause does (it resumes at its heal).
    Pause {
        /// The node.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<NodeName>,
    },
    /// Cut a node off the network.
    Clog {
        /// The node.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<NodeName>,
    },
    /// Cut the link between two nodes, both ways.
    Partition {
        /// One side.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<NodeName>,
        /// The other side.
        peer: NodeName,
    },
    /// Raise the highest latency of every link (a link with a `link_latency` range of its own keeps
    /// its range, raised to this if it is higher).
    Latency {
        /// The highest latency.
        #[serde(alias = "latency_ms")]
        latency_ms_max: u64,
    },
    /// Fail a share of Redis commands.
    RedisErrors {
        /// The share, within 0..=1.
        share: f64,
    },
    /// Set a node's clock offset from true time.
    Clock {
        /// The node.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<NodeName>,
        /// The offset, either way.
        offset_ms: i64,
    },
    /// Make a worker's next handler fail (an exception in the business code).
    HandlerError {
        /// The worker.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<NodeName>,
    },
    /// Lose the broker's next produce acks (the records are appended; the producer retries).
    AckLoss {
        /// How many.
        acks: u32,
    },
    /// Fail a share of the database's transactions: each aborts with no effect and no answer,
    /// as when the connection drops before the commit (the handler sees a timeout).
    DbErrors {
        /// The share, within 0..=1.
        share: f64,
    },
    /// Lose a share of Redis replies after their commands ran: the server executed the
    /// command, its answer never reaches the caller, who times out (an acquire that won leaves
    /// a lock its caller does not know it holds).
    LostReplies {
        /// The share, within 0..=1.
        share: f64,
        /// Only the replies to this command (as the trace names it: `SET`, `GET`,
        /// `EVALSHA:acquire`, ...); every command's if left out.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        command: Option<String>,
    },
    /// Fail the Redis primary over to a replica that lags by `lag_ms` of writes, as Sentinel
    /// promotes one (replication is asynchronous; `WAIT` is best-effort): the writes of the
    /// last `lag_ms` are lost, every connection is reset, and commands are refused until the
    /// replica is promoted (the fault's duration). The replica's keys expire by its own clock.
    Failover {
        /// How far the replica lags behind the primary, in virtual time.
        lag_ms: u64,
    },
    /// Slow a node's links (or its link to `peer` alone) down: each message on them takes
    /// `latency_ms_min`..=`latency_ms_max` (a slow Redis, a slow database, a congested host).
    SlowLink {
        /// The node.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<NodeName>,
        /// Only its link to this node; every link of `node` if left out.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<NodeName>,
        /// The highest one-way latency on those links meanwhile.
        latency_ms_max: u64,
    },
}

impl Fault {
    /// One fault of every kind, with every field set (for docs and tests).
    pub fn examples() -> Vec<Fault> {
        let node = Some(NodeName::Redis);
        vec![
            Fault::Crash { node },
            Fault::Pause { node },
            Fault::Clog { node },
            Fault::Partition {
                node,
                peer: NodeName::Db,
            },
            Fault::Latency { latency_ms_max: 1 },
            Fault::RedisErrors { share: 0.5 },
            Fault::Clock { node, offset_ms: 1 },
            Fault::HandlerError {
                node: Some(NodeName::Worker(1)),
            },
            Fault::AckLoss { acks: 1 },
            Fault::DbErrors { share: 0.5 },
            Fault::LostReplies {
                share: 0.5,
                command: Some("SET".into()),
            },
            Fault::Failover { lag_ms: 1 },
            Fault::SlowLink {
                node,
                peer: Some(NodeName::Db),
                latency_ms_max: 1,
            },
        ]
    }

    /// The fault's kind, as traces, scenario files and summaries name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Crash { .. } => "crash",
            Fault::Pause { .. } => "pause",
            Fault::Clog { .. } => "clog",
            Fault::Partition { .. } => "partition",
            Fault::Latency { .. } => "latency",
            Fault::RedisErrors { .. } => "redis_errors",
            Fault::Clock { .. } => "clock",
            Fault::HandlerError { .. } => "handler_error",
            Fault::AckLoss { .. } => "ack_loss",
            Fault::DbErrors { .. } => "db_errors",
            Fault::LostReplies { .. } => "lost_replies",
            Fault::Failover { .. } => "failover",
            Fault::SlowLink { .. } => "slow_link",
        }
    }

    /// The node it names (`None`: to be filled in from the trigger, or none applies).
    pub fn node(&self) -> Option<NodeName> {
        match self {
            Fault::Crash { node }
            | Fault::Pause { node }
            | Fault::Clog { node }
            | Fault::Partition { node, .. }
            | Fault::Clock { node, .. }
            | Fault::SlowLink { node, .. }
            | Fault::HandlerError { node } => *node,
            Fault::Latency { .. }
            | Fault::RedisErrors { .. }
            | Fault::AckLoss { .. }
            | Fault::DbErrors { .. }
            | Fault::LostReplies { .. }
            | Fault::Failover { .. } => None,
        }
    }

    /// Whether the fault needs a node (its own, or the trigger's worker).
    pub fn needs_node(&self) -> bool {
        !matches!(
            self,
            Fault::Latency { .. }
                | Fault::RedisErrors { .. }
                | Fault::AckLoss { .. }
                | Fault::DbErrors { .. }
                | Fault::LostReplies { .. }
                | Fault::Failover { .. }
        )
    }

    /// The same fault at `node`, if it names none yet (a trigger's worker).
    pub fn at(&self, node: Option<NodeName>) -> Fault {
        let mut f = self.clone();
        match &mut f {
            Fault::Crash { node: n }
            | Fault::Pause { node: n }
            | Fault::Clog { node: n }
            | Fault::Partition { node: n, .. }
            | Fault::Clock { node: n, .. }
            | Fault::SlowLink { node: n, .. }
            | Fault::HandlerError { node: n } => {
                if n.is_none() {
                    *n = node;
                }
            }
            Fault::Latency { .. }
            | Fault::RedisErrors { .. }
            | Fault::AckLoss { .. }
            | Fault::DbErrors { .. }
            | Fault::LostReplies { .. }
            | Fault::Failover { .. } => {}
        }
        f
    }

    /// The node that carries it out itself, for the faults a node does to itself (the rest the
    /// world does from outside, through [`Verbs`]).
    pub fn local_to(&self) -> Option<NodeName> {
        match self {
            Fault::RedisErrors { .. } | Fault::LostReplies { .. } => Some(NodeName::Redis),
            Fault::AckLoss { .. } => Some(NodeName::Kafka),
            Fault::DbErrors { .. } => Some(NodeName::Db),
            Fault::HandlerError { node } => *node,
            _ => None,
        }
    }

    /// What its heal is called in the trace, if it has one (ack loss and a handler error are
    /// used up, not healed).
    pub fn heal_name(&self) -> Option<&'static str> {
        Some(match self {
            Fault::Crash { .. } => "restart",
            Fault::Pause { .. } => "resume",
            Fault::Clog { .. } => "unclog",
            Fault::Partition { .. } => "unpartition",
            Fault::Latency { .. } => "latency",
            Fault::RedisErrors { .. } => "redis_errors",
            Fault::Clock { .. } => "clock",
            Fault::DbErrors { .. } => "db_errors",
            Fault::LostReplies { .. } => "lost_replies",
            Fault::Failover { .. } => "promoted",
            Fault::SlowLink { .. } => "slow_link",
            Fault::HandlerError { .. } | Fault::AckLoss { .. } => return None,
        })
    }

    /// Checks the fault's own fields; the error names the field.
    pub fn validate(&self, workers: u32) -> Result<(), String> {
        let known = |field: &str, n: NodeName| {
            match n {
            NodeName::Worker(w) if u32::from(w) > workers => Err(format!(
                "`{field}`: unknown node \"{n}\"; valid: redis, kafka, db, producer, worker-1 to worker-{workers}"
            )),
            _ => Ok(()),
        }
        };
        if let Some(n) = self.node() {
            known("node", n)?;
        }
        match self {
            Fault::Partition { peer, .. } => known("peer", *peer)?,
            Fault::SlowLink {
                node, peer: Some(p), ..
            } => {
                known("peer", *p)?;
                if *node == Some(*p) {
                    return Err(format!("`peer`: {p} is `node` itself; a link has two ends"));
                }
            }
            Fault::RedisErrors { share } | Fault::DbErrors { share } | Fault::LostReplies { share, .. }
                if !(0.0..=1.0).contains(share) =>
            {
                return Err("`share` must be within 0..=1".into())
            }
            Fault::LostReplies { command: Some(c), .. } if !REDIS_COMMANDS.contains(&c.as_str()) => {
                return Err(format!(
                    "`command`: unknown Redis command {c:?}; valid: {}",
                    REDIS_COMMANDS.join(", ")
                ))
            }
            Fault::HandlerError { node: Some(n) } if !n.is_worker() => {
                return Err(format!("`node`: {n} is not a worker; a handler runs on a worker"))
            }
            _ => {}
        }
        Ok(())
    }

    /// The fault's fields by their own names (`fault` and the rest, sorted by name), as
    /// scenario files write them; the trace writes `node` as `target`.
    pub fn fields(&self) -> Map<String, Value> {
        match serde_json::to_value(self).expect("a fault serializes") {
            Value::Object(m) => m,
            other => unreachable!("a fault is a table, not {other}"),
        }
    }
}

/// The Redis commands the workers send, as the trace names them (a `lost_replies` fault's
/// `command`).
pub const REDIS_COMMANDS: [&str; 11] = [
    "GET",
    "SET",
    "SETEX",
    "DEL",
    "PEXPIRE",
    "PTTL",
    "INCR",
    "EVALSHA:acquire",
    "EVALSHA:renew",
    "EVALSHA:confirm",
    "EVALSHA:release",
];

/// A place in the handler path where the nemesis or a `[[schedule]]` entry can crash a worker:
/// one of the built-in points, or one a handler names itself (`cx.point("after_email")`).
///
/// ```
/// use sim::FaultPoint;
/// assert_eq!(FaultPoint::from("before_confirm"), FaultPoint::BeforeConfirm);
/// assert_eq!(FaultPoint::from("after_email").name(), "after_email");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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
    /// A point a handler names (a scenario file writes its bare name, as for the built-in
    /// ones). Only a handler that reaches it makes it fire.
    #[serde(untagged)]
    Named(String),
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
    pub fn name(&self) -> &str {
        match self {
            FaultPoint::AfterAcquire => "after_acquire",
            FaultPoint::AfterEffectCommit => "after_effect_commit",
            FaultPoint::BeforeConfirm => "before_confirm",
            FaultPoint::AfterConfirm => "after_confirm",
            FaultPoint::BeforeOffsetCommit => "before_offset_commit",
            FaultPoint::Named(name) => name,
        }
    }

    /// Why `name` cannot name a point, if it cannot: a point's name is 1 to 64 characters of
    /// `a-z`, `0-9` and `_`, starting with a letter (it is written bare in traces and files).
    pub fn invalid_name(name: &str) -> Option<String> {
        let ok = (1..=64).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        (!ok).then(|| {
            format!("{name:?} is not a fault point's name (1 to 64 of a-z, 0-9 and _, from a letter)")
        })
    }
}

impl From<&str> for FaultPoint {
    /// The built-in point of that name, or a named one.
    fn from(name: &str) -> Self {
        FaultPoint::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .unwrap_or_else(|| FaultPoint::Named(name.to_owned()))
    }
}

/// What the world does to a node from outside: the verbs faults are made of. The run's world
/// implements them on madsim; a test can implement them on a recorder.
pub trait Verbs {
    /// Kills `node` (its tasks stop; its lasting state stays). Returns the keys the node lost,
    /// for the trace, if it keeps keys (Redis).
    fn kill(&self, node: NodeName) -> Option<Vec<String>>;
    /// Starts `node` again, from its lasting state.
    fn restart(&self, node: NodeName);
    /// Stops scheduling `node`'s tasks.
    fn pause(&self, node: NodeName);
    /// Schedules `node`'s tasks again.
    fn resume(&self, node: NodeName);
    /// Drops everything `node` sends or is sent.
    fn clog(&self, node: NodeName);
    /// Undoes [`Verbs::clog`].
    fn unclog(&self, node: NodeName);
    /// Drops everything between `a` and `b`, both ways.
    fn cut(&self, a: NodeName, b: NodeName);
    /// Undoes [`Verbs::cut`].
    fn repair(&self, a: NodeName, b: NodeName);
    /// Sets the network's highest latency (`None`: back to the configured one).
    fn set_latency_ms_max(&self, ms: Option<u64>);
    /// Fails the Redis primary over to a replica `lag_ms` behind: its connections reset, the
    /// node goes down (commands are refused) until [`Verbs::restart`] promotes the replica,
    /// whose data set is the primary's as of `lag_ms` ago. Returns the keys it lost, as
    /// [`Verbs::kill`] does.
    fn fail_over(&self, lag_ms: u64) -> Option<Vec<String>>;
    /// Gives the links of `node` (to `peer` alone, if given) the latency range up to
    /// `latency_ms_max`, ahead of the configured ones; `None` takes that range away again.
    fn slow_link(&self, node: NodeName, peer: Option<NodeName>, latency_ms_max: Option<u64>);
    /// Sets `node`'s clock offset from true time. Returns the offset it had.
    fn set_clock_offset_ms(&self, node: NodeName, offset_ms: i64) -> i64;
    /// The node that carries out its own faults.
    fn local(&self, node: NodeName) -> &dyn NodeFaults;
    /// Every node of the run.
    fn nodes(&self) -> Vec<NodeName>;
}

/// A node's faults on itself, kept in the node's lasting state.
pub trait NodeFaults {
    /// Starts `fault` (one of this node's [`Fault::local_to`] kinds). Returns whether anything
    /// was done.
    fn inject(&self, fault: &Fault) -> bool;
    /// Ends `fault`.
    fn heal(&self, fault: &Fault);
    /// Ends every fault of this node: the liveness phase.
    fn heal_all(&self);
    /// The node was just killed: the keys its lasting state loses (a crash API, as turmoil's
    /// hosts have), for the trace. `None` (it keeps no keys), unless the node says otherwise.
    fn crashed(&self) -> Option<Vec<String>> {
        None
    }
}

/// A node with no faults of its own.
pub struct NoFaults;

impl NodeFaults for NoFaults {
    fn inject(&self, _: &Fault) -> bool {
        false
    }
    fn heal(&self, _: &Fault) {}
    fn heal_all(&self) {}
}

/// Whether a node may go on after reporting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Go on.
    Up,
    /// The node was crashed where it stands: do nothing more (its tasks are being dropped).
    Down,
}

/// What nodes tell the world: where they are (so it can fire triggers) and how far the run has
/// come (so it can tell convergence). Nodes never inject faults; they report, the world decides.
pub trait Control: Send + Sync {
    /// Counts a delivery of `event_id` (by any worker); returns how many it has had so far,
    /// this one included.
    fn count_delivery(&self, event_id: &str) -> u32;
    /// `worker` delivers `event_id` for the `n`-th time (as counted).
    fn delivered(&self, worker: NodeName, event_id: &str, n: u32) -> Standing;
    /// `worker` holds `event_id`'s lock (its handler is about to start).
    fn holding(&self, worker: NodeName, event_id: &str) -> Standing;
    /// `worker` reached `point` while processing `event_id`.
    fn reached(&self, worker: NodeName, point: &FaultPoint, event_id: &str) -> Standing;
    /// How far the run has come.
    fn progress(&self, progress: Progress);
}

/// A step of the run's progress, as the node that made it reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The producer has published this many records.
    Published(usize),
    /// The database has applied an effect for this many distinct events.
    Applied(usize),
    /// Whether every partition's committed offset has reached its log's end.
    Drained(bool),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_is_its_fields_and_reads_todays_spelling() {
        let f: Fault = toml::from_str("fault = \"latency\"\nlatency_ms = 200").unwrap();
        assert_eq!(f, Fault::Latency { latency_ms_max: 200 });
        assert_eq!(
            Value::Object(f.fields()).to_string(),
            r#"{"fault":"latency","latency_ms_max":200}"#
        );
        let p: Fault =
            toml::from_str("fault = \"partition\"\nnode = \"worker-2\"\npeer = \"redis\"").unwrap();
        assert_eq!(p.node(), Some(NodeName::Worker(2)));
        assert_eq!(p.heal_name(), Some("unpartition"));
        let bad = toml::from_str::<Fault>("fault = \"crash\"\nnode = \"worker-1\"\nshare = 1.0");
        assert!(bad.unwrap_err().to_string().contains("unknown field `share`"));
        assert_eq!(
            Fault::Crash { node: None }.at(Some(NodeName::Worker(3))),
            Fault::Crash {
                node: Some(NodeName::Worker(3))
            }
        );
    }
}
