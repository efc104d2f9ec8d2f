//! The nemesis: decides which random fault to inject when, how hard, and for how long.
//!
//! Its decisions are a pure function of the run's `nemesis` random stream and its
//! [`FaultConfig`]: they do not look at the running world (a fault at a node that is down
//! when it comes due is refused there, and left out of the trace), so they are a concrete list
//! of [`ScheduledFault`] entries, drawn one by one as the safety phase goes on. The run keeps
//! them; `--save-scenario` writes them into a scenario file, and replaying that file with
//! random faults off gives the same run.
//!
//! Each kind of fault is one row of [`KINDS`]: its name, its weight in the config, and how its
//! node, size and duration are drawn. A new kind is a new row (and its knobs here).

use crate::fault::schedule::ScheduledFault;
use crate::fault::{Fault, FaultPoint};
use crate::knob::Range;
use crate::net::topology::NodeName;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The nemesis's random faults. Gaps, durations and sizes are drawn uniformly from the ranges;
/// the kind of each fault by weight (0 disables a kind).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Inject random faults during the safety phase.
    pub random: bool,
    /// Shortest gap between two random faults.
    pub gap_ms_min: u64,
    /// Longest gap between two random faults.
    pub gap_ms_max: u64,
    /// Weight of: crash a node (worker, redis, database or broker) and restart it later.
    pub crash_weight: u32,
    /// Weight of: pause a node (a GC pause), then resume it.
    pub pause_weight: u32,
    /// Weight of: cut a node off the network, then heal it.
    pub clog_weight: u32,
    /// Weight of: cut the link between two nodes (both ways), then heal it.
    pub partition_weight: u32,
    /// Weight of: raise the network latency for a while.
    pub latency_weight: u32,
    /// Weight of: make a share of Redis commands fail for a while.
    pub redis_errors_weight: u32,
    /// Weight of: skew or jump a node's wall clock.
    pub clock_weight: u32,
    /// Weight of: crash a worker at the next named point of its handler path.
    pub fault_point_weight: u32,
    /// Weight of: pause a worker past `kafka.max_poll_interval_ms`, so the group removes it
    /// while it is still working, then resume it (the zombie).
    pub zombie_weight: u32,
    /// Weight of: lose 1 to 3 of the broker's produce acks (the producer retries).
    pub ack_loss_weight: u32,
    /// Weight of: make a share of the database's transactions fail for a while (off by
    /// default, so the default scenario's seeds keep their histories).
    pub db_errors_weight: u32,
    /// Longest a crashed node stays down.
    pub down_ms_max: u64,
    /// Longest pause.
    pub pause_ms_max: u64,
    /// Longest clog or partition.
    pub clog_ms_max: u64,
    /// Highest latency during a spike.
    pub latency_ms_max: u64,
    /// Longest latency spike.
    pub latency_spike_ms_max: u64,
    /// Largest share of Redis commands that fail during an error window.
    pub redis_error_share_max: f64,
    /// Longest Redis error window.
    pub redis_errors_ms_max: u64,
    /// Largest clock offset (either way) a skew or jump sets on a worker.
    pub clock_offset_ms_max: u64,
    /// Largest clock offset (either way) on the Redis node. Redis expires keys by its own
    /// clock: a jump beyond the lock's TTL expires every lock at once, so two workers hold one
    /// (the `redis-clock-jump` scenario shows it); the default stays below the 300 s TTL.
    pub redis_clock_offset_ms_max: u64,
    /// Largest share of database transactions that fail during an error window.
    pub db_error_share_max: f64,
    /// Longest database error window.
    pub db_errors_ms_max: u64,
    /// Weight of: lose a share of Redis replies after their commands ran, for a while (the
    /// caller times out; an acquire that won leaves a lock nobody knows it holds). This and
    /// the knobs below are off or at their defaults unless set, and left out of the trace's
    /// config line then, so adding them changed no history.
    #[serde(skip_serializing_if = "at_default::is_zero")]
    pub lost_replies_weight: u32,
    /// Largest share of Redis replies lost during a lost-reply window.
    #[serde(skip_serializing_if = "at_default::lost_reply_share_max")]
    pub lost_reply_share_max: f64,
    /// Longest lost-reply window.
    #[serde(skip_serializing_if = "at_default::lost_replies_ms_max")]
    pub lost_replies_ms_max: u64,
    /// Weight of: fail Redis over to a replica that lags (the writes of its lag are lost,
    /// connections reset, commands refused until the replica is promoted).
    #[serde(skip_serializing_if = "at_default::is_zero")]
    pub failover_weight: u32,
    /// Largest replication lag of a failover: the writes of up to this much virtual time are
    /// lost.
    #[serde(skip_serializing_if = "at_default::failover_lag_ms_max")]
    pub failover_lag_ms_max: u64,
    /// Longest promotion of a failover (commands are refused meanwhile).
    #[serde(skip_serializing_if = "at_default::promote_ms_max")]
    pub promote_ms_max: u64,
    /// Weight of: slow every link of one node (a worker, Redis, the database or the broker)
    /// down for a while.
    #[serde(skip_serializing_if = "at_default::is_zero")]
    pub slow_link_weight: u32,
    /// Highest one-way latency on a slowed node's links.
    #[serde(skip_serializing_if = "at_default::slow_link_latency_ms_max")]
    pub slow_link_latency_ms_max: u64,
    /// Longest a node's links stay slow.
    #[serde(skip_serializing_if = "at_default::slow_link_ms_max")]
    pub slow_link_ms_max: u64,
}

/// Whether a knob added after the first histories is at its default (then it is left out of
/// the trace's config line, so those histories keep their fingerprints).
mod at_default {
    pub(super) const LOST_REPLY_SHARE_MAX: f64 = 0.5;
    pub(super) const LOST_REPLIES_MS_MAX: u64 = 3_000;
    pub(super) const FAILOVER_LAG_MS_MAX: u64 = 1_000;
    pub(super) const PROMOTE_MS_MAX: u64 = 5_000;
    pub(super) const SLOW_LINK_LATENCY_MS_MAX: u64 = 300;
    pub(super) const SLOW_LINK_MS_MAX: u64 = 10_000;
    pub(super) fn slow_link_latency_ms_max(v: &u64) -> bool {
        *v == SLOW_LINK_LATENCY_MS_MAX
    }
    pub(super) fn slow_link_ms_max(v: &u64) -> bool {
        *v == SLOW_LINK_MS_MAX
    }
    pub(super) fn is_zero(w: &u32) -> bool {
        *w == 0
    }
    pub(super) fn lost_reply_share_max(v: &f64) -> bool {
        *v == LOST_REPLY_SHARE_MAX
    }
    pub(super) fn lost_replies_ms_max(v: &u64) -> bool {
        *v == LOST_REPLIES_MS_MAX
    }
    pub(super) fn failover_lag_ms_max(v: &u64) -> bool {
        *v == FAILOVER_LAG_MS_MAX
    }
    pub(super) fn promote_ms_max(v: &u64) -> bool {
        *v == PROMOTE_MS_MAX
    }
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            random: true,
            gap_ms_min: 100,
            gap_ms_max: 2_000,
            crash_weight: 3,
            pause_weight: 2,
            clog_weight: 2,
            partition_weight: 2,
            latency_weight: 1,
            redis_errors_weight: 2,
            clock_weight: 2,
            fault_point_weight: 3,
            zombie_weight: 1,
            ack_loss_weight: 1,
            down_ms_max: 5_000,
            pause_ms_max: 8_000,
            clog_ms_max: 3_000,
            latency_ms_max: 300,
            latency_spike_ms_max: 3_000,
            redis_error_share_max: 0.5,
            redis_errors_ms_max: 3_000,
            clock_offset_ms_max: 600_000,
            redis_clock_offset_ms_max: 60_000,
            db_errors_weight: 0,
            db_error_share_max: 0.5,
            db_errors_ms_max: 3_000,
            lost_replies_weight: 0,
            lost_reply_share_max: at_default::LOST_REPLY_SHARE_MAX,
            lost_replies_ms_max: at_default::LOST_REPLIES_MS_MAX,
            failover_weight: 0,
            failover_lag_ms_max: at_default::FAILOVER_LAG_MS_MAX,
            promote_ms_max: at_default::PROMOTE_MS_MAX,
            slow_link_weight: 0,
            slow_link_latency_ms_max: at_default::SLOW_LINK_LATENCY_MS_MAX,
            slow_link_ms_max: at_default::SLOW_LINK_MS_MAX,
        }
    }
}

/// The longest virtual time a knob in ms may say (as the scenario's other knobs).
const MS: i64 = crate::knob::MAX_VIRTUAL_MS as i64;
/// A kind's weight.
const WEIGHT: Range = Range::Int(0, 1_000);

/// Every knob of [`FaultConfig`] with its range, by its dotted name.
pub const RANGES: &[(&str, Range)] = &[
    ("faults.gap_ms_min", Range::Int(10, MS)),
    ("faults.gap_ms_max", Range::Int(10, MS)),
    ("faults.crash_weight", WEIGHT),
    ("faults.pause_weight", WEIGHT),
    ("faults.clog_weight", WEIGHT),
    ("faults.partition_weight", WEIGHT),
    ("faults.latency_weight", WEIGHT),
    ("faults.redis_errors_weight", WEIGHT),
    ("faults.clock_weight", WEIGHT),
    ("faults.fault_point_weight", WEIGHT),
    ("faults.zombie_weight", WEIGHT),
    ("faults.ack_loss_weight", WEIGHT),
    ("faults.down_ms_max", Range::Int(0, MS)),
    ("faults.pause_ms_max", Range::Int(0, MS)),
    ("faults.clog_ms_max", Range::Int(0, MS)),
    ("faults.latency_ms_max", Range::Int(0, 60_000)),
    ("faults.latency_spike_ms_max", Range::Int(0, MS)),
    ("faults.redis_error_share_max", Range::Real(0.0, 1.0)),
    ("faults.redis_errors_ms_max", Range::Int(0, MS)),
    ("faults.clock_offset_ms_max", Range::Int(0, MS)),
    ("faults.redis_clock_offset_ms_max", Range::Int(0, MS)),
    ("faults.db_errors_weight", WEIGHT),
    ("faults.db_error_share_max", Range::Real(0.0, 1.0)),
    ("faults.db_errors_ms_max", Range::Int(0, MS)),
    ("faults.lost_replies_weight", WEIGHT),
    ("faults.lost_reply_share_max", Range::Real(0.0, 1.0)),
    ("faults.lost_replies_ms_max", Range::Int(0, MS)),
    ("faults.failover_weight", WEIGHT),
    ("faults.failover_lag_ms_max", Range::Int(0, MAX_LAG_MS)),
    ("faults.promote_ms_max", Range::Int(0, MS)),
    ("faults.slow_link_weight", WEIGHT),
    ("faults.slow_link_latency_ms_max", Range::Int(0, 60_000)),
    ("faults.slow_link_ms_max", Range::Int(0, MS)),
];

/// The longest replication lag a failover may have (the Redis model keeps that much of its
/// write stream).
pub const MAX_LAG_MS: i64 = 600_000;

/// One kind of random fault: its name (as [`Fault::kind`] or a variation of one), its weight,
/// and how one is drawn.
pub struct Kind {
    /// The kind's name, as the config's `<name>_weight` says it.
    pub name: &'static str,
    /// Its weight in the config.
    pub weight: fn(&FaultConfig) -> u32,
    /// Draws one, to come due at `at_ms`.
    pub draw: fn(&mut Nemesis, at_ms: u64) -> ScheduledFault,
}

/// Every kind the nemesis draws from, in the order weights are rolled over.
pub const KINDS: &[Kind] = &[
    Kind {
        name: "crash",
        weight: |c| c.crash_weight,
        draw: |n, at_ms| {
            let node = n.pick(&n.servers.clone());
            let down = n.rng.gen_range(0..=n.cfg.down_ms_max);
            ScheduledFault::at(at_ms, Fault::Crash { node: Some(node) }, Some(down))
        },
    },
    Kind {
        name: "pause",
        weight: |c| c.pause_weight,
        draw: |n, at_ms| {
            let node = n.pick(&n.servers.clone());
            let paused = n.rng.gen_range(1..=n.cfg.pause_ms_max.max(1));
            ScheduledFault::at(at_ms, Fault::Pause { node: Some(node) }, Some(paused))
        },
    },
    Kind {
        name: "clog",
        weight: |c| c.clog_weight,
        draw: |n, at_ms| {
            let mut all = n.servers.clone();
            all.push(NodeName::Producer);
            let node = n.pick(&all);
            let lasts = n.rng.gen_range(1..=n.cfg.clog_ms_max.max(1));
            ScheduledFault::at(at_ms, Fault::Clog { node: Some(node) }, Some(lasts))
        },
    },
    Kind {
        name: "partition",
        weight: |c| c.partition_weight,
        draw: |n, at_ms| {
            let worker = n.pick(&n.workers.clone());
            let peer = n.pick(&NodeName::SERVERS);
            let lasts = n.rng.gen_range(1..=n.cfg.clog_ms_max.max(1));
            let fault = Fault::Partition {
                node: Some(worker),
                peer,
            };
            ScheduledFault::at(at_ms, fault, Some(lasts))
        },
    },
    Kind {
        name: "latency",
        weight: |c| c.latency_weight,
        draw: |n, at_ms| {
            let latency_ms_max = n.rng.gen_range(1..=n.cfg.latency_ms_max.max(1));
            let lasts = n.rng.gen_range(1..=n.cfg.latency_spike_ms_max.max(1));
            ScheduledFault::at(at_ms, Fault::Latency { latency_ms_max }, Some(lasts))
        },
    },
    Kind {
        name: "redis_errors",
        weight: |c| c.redis_errors_weight,
        draw: |n, at_ms| {
            let share = n.rng.gen_range(0.0..=n.cfg.redis_error_share_max);
            let lasts = n.rng.gen_range(1..=n.cfg.redis_errors_ms_max.max(1));
            ScheduledFault::at(at_ms, Fault::RedisErrors { share }, Some(lasts))
        },
    },
    Kind {
        name: "clock",
        weight: |c| c.clock_weight,
        draw: |n, at_ms| {
            let mut clocked = n.workers.clone();
            clocked.push(NodeName::Redis);
            let node = n.pick(&clocked);
            let max = if node == NodeName::Redis {
                n.cfg.redis_clock_offset_ms_max
            } else {
                n.cfg.clock_offset_ms_max
            } as i64;
            let fault = Fault::Clock {
                node: Some(node),
                offset_ms: n.rng.gen_range(-max..=max),
            };
            ScheduledFault::at(at_ms, fault, None)
        },
    },
    Kind {
        name: "fault_point",
        weight: |c| c.fault_point_weight,
        // Arms a crash at the worker's next fault point from now on.
        draw: |n, at_ms| {
            let worker = n.pick(&n.workers.clone());
            let point = n.points[n.rng.gen_range(0..n.points.len())].clone();
            let down = n.rng.gen_range(0..=n.cfg.down_ms_max);
            ScheduledFault {
                at_ms: None,
                point: Some(point),
                by: Some(worker),
                after_ms: Some(at_ms),
                duration_ms: Some(down),
                ..ScheduledFault::at(at_ms, Fault::Crash { node: None }, None)
            }
        },
    },
    Kind {
        name: "zombie",
        weight: |c| c.zombie_weight,
        draw: |n, at_ms| {
            let worker = n.pick(&n.workers.clone());
            let beyond = n
                .max_poll_interval_ms
                .saturating_add(n.rng.gen_range(1_000..=30_000));
            ScheduledFault::at(at_ms, Fault::Pause { node: Some(worker) }, Some(beyond))
        },
    },
    Kind {
        name: "ack_loss",
        weight: |c| c.ack_loss_weight,
        draw: |n, at_ms| {
            let acks = n.rng.gen_range(1..=3);
            ScheduledFault::at(at_ms, Fault::AckLoss { acks }, None)
        },
    },
    Kind {
        name: "db_errors",
        weight: |c| c.db_errors_weight,
        draw: |n, at_ms| {
            let share = n.rng.gen_range(0.0..=n.cfg.db_error_share_max);
            let lasts = n.rng.gen_range(1..=n.cfg.db_errors_ms_max.max(1));
            ScheduledFault::at(at_ms, Fault::DbErrors { share }, Some(lasts))
        },
    },
    Kind {
        name: "lost_replies",
        weight: |c| c.lost_replies_weight,
        draw: |n, at_ms| {
            let share = n.rng.gen_range(0.0..=n.cfg.lost_reply_share_max);
            let lasts = n.rng.gen_range(1..=n.cfg.lost_replies_ms_max.max(1));
            let fault = Fault::LostReplies { share, command: None };
            ScheduledFault::at(at_ms, fault, Some(lasts))
        },
    },
    Kind {
        name: "failover",
        weight: |c| c.failover_weight,
        draw: |n, at_ms| {
            let lag_ms = n.rng.gen_range(0..=n.cfg.failover_lag_ms_max);
            let promote = n.rng.gen_range(1..=n.cfg.promote_ms_max.max(1));
            ScheduledFault::at(at_ms, Fault::Failover { lag_ms }, Some(promote))
        },
    },
    Kind {
        name: "slow_link",
        weight: |c| c.slow_link_weight,
        draw: |n, at_ms| {
            let node = n.pick(&n.servers.clone());
            let latency_ms_max = n.rng.gen_range(1..=n.cfg.slow_link_latency_ms_max.max(1));
            let lasts = n.rng.gen_range(1..=n.cfg.slow_link_ms_max.max(1));
            let fault = Fault::SlowLink {
                node: Some(node),
                peer: None,
                latency_ms_max,
            };
            ScheduledFault::at(at_ms, fault, Some(lasts))
        },
    },
];

/// The nemesis's state: its stream and when it acts next.
pub struct Nemesis {
    rng: ChaCha8Rng,
    cfg: FaultConfig,
    /// Nodes that can crash or pause (workers, redis, db, kafka).
    servers: Vec<NodeName>,
    workers: Vec<NodeName>,
    next_ms: u64,
    max_poll_interval_ms: u64,
    /// The fault points it arms crashes at: the built-in ones, then the handler's own.
    points: Vec<FaultPoint>,
}

impl Nemesis {
    /// A nemesis over `workers` workers (and the redis, db and kafka nodes).
    pub fn new(rng: ChaCha8Rng, cfg: FaultConfig, workers: u32, max_poll_interval_ms: u64) -> Self {
        let workers: Vec<NodeName> = NodeName::workers(workers).collect();
        let mut servers = workers.clone();
        servers.extend(NodeName::SERVERS);
        let mut n = Nemesis {
            rng,
            cfg,
            servers,
            workers,
            next_ms: 0,
            max_poll_interval_ms,
            points: FaultPoint::ALL.to_vec(),
        };
        n.next_ms = n.gap_ms();
        n
    }

    /// Also arms crashes at a handler's own fault points, `names` (after the built-in ones:
    /// with none, the draws are the built-in handler's).
    pub fn with_points(mut self, names: &[&str]) -> Self {
        self.points.extend(names.iter().map(|n| FaultPoint::from(*n)));
        self
    }

    fn gap_ms(&mut self) -> u64 {
        // At least 1 ms, so the list advances whatever the config says.
        self.rng
            .gen_range(self.cfg.gap_ms_min..=self.cfg.gap_ms_max)
            .max(1)
    }

    fn pick(&mut self, from: &[NodeName]) -> NodeName {
        from[self.rng.gen_range(0..from.len())]
    }

    /// When the nemesis next wants to act, in µs (never, without random faults).
    pub fn next_fault_us(&self) -> u64 {
        // Without any weight it never draws, and never wakes anyone for it.
        let weighed = KINDS.iter().any(|k| (k.weight)(&self.cfg) > 0);
        if self.cfg.random && weighed {
            self.next_ms.saturating_mul(1000)
        } else {
            u64::MAX
        }
    }

    /// The next entry of the list, if it comes due at or before `now_us` (at most one per
    /// call; the entry's own time is when it was due).
    pub fn due(&mut self, now_us: u64) -> Option<ScheduledFault> {
        if self.next_fault_us() > now_us {
            return None;
        }
        let at_ms = self.next_ms;
        self.next_ms = at_ms.saturating_add(self.gap_ms());
        let total: u32 = KINDS.iter().map(|k| (k.weight)(&self.cfg)).sum();
        if total == 0 {
            return None;
        }
        let mut roll = self.rng.gen_range(0..total);
        let kind = KINDS.iter().find(|k| {
            let w = (k.weight)(&self.cfg);
            if roll < w {
                true
            } else {
                roll -= w;
                false
            }
        })?;
        Some((kind.draw)(self, at_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::collections::BTreeSet;

    fn nemesis(cfg: FaultConfig) -> Nemesis {
        Nemesis::new(ChaCha8Rng::seed_from_u64(1), cfg, 2, 30_000)
    }

    fn list(n: &mut Nemesis, until_us: u64) -> Vec<ScheduledFault> {
        let mut out = Vec::new();
        while n.next_fault_us() < until_us {
            let t = n.next_fault_us();
            out.extend(n.due(t));
        }
        out
    }

    #[test]
    fn every_kind_is_drawn_and_every_node_fault_lasts_a_bounded_time() {
        let every_kind = FaultConfig {
            db_errors_weight: 1,
            lost_replies_weight: 1,
            failover_weight: 1,
            slow_link_weight: 1,
            ..FaultConfig::default()
        };
        let entries = list(&mut nemesis(every_kind), 600_000_000);
        let mut kinds = BTreeSet::new();
        for e in &entries {
            kinds.insert(if e.point.is_some() {
                "fault_point"
            } else {
                e.fault.kind()
            });
            if matches!(
                e.fault,
                Fault::Crash { .. }
                    | Fault::Pause { .. }
                    | Fault::Clog { .. }
                    | Fault::Partition { .. }
                    | Fault::Failover { .. }
            ) {
                assert!(e.duration_ms.is_some_and(|l| l <= 60_000), "{e:?}");
            }
            assert_eq!(e.validate(2, 1), Ok(()), "{e:?}");
        }
        assert_eq!(kinds.len(), KINDS.len() - 1, "{kinds:?} (zombie is a pause)");
    }

    #[test]
    fn the_list_depends_on_the_stream_alone_and_is_empty_without_random_faults() {
        let a = list(&mut nemesis(FaultConfig::default()), 60_000_000);
        let b = list(&mut nemesis(FaultConfig::default()), 60_000_000);
        assert!(a.len() > 10);
        assert_eq!(a, b);
        // Each comes due at or after the one before.
        let due = |e: &ScheduledFault| e.at_ms.or(e.after_ms).unwrap();
        assert!(a.windows(2).all(|w| due(&w[0]) <= due(&w[1])));
        let mut off = nemesis(FaultConfig {
            random: false,
            ..FaultConfig::default()
        });
        assert_eq!(off.due(u64::MAX / 2), None);
        assert_eq!(off.next_fault_us(), u64::MAX);
    }
}
