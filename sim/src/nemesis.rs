//! The nemesis: decides which fault to inject when, and when each one heals.
//!
//! The decisions are a pure function of the run's `nemesis` random stream and the faults
//! config, separate from madsim's scheduler RNG; [`crate::world`] carries them out (kill,
//! restart, pause, clog, latency, Redis errors, clock offsets, fault points). Every fault that
//! lasts has a heal on the agenda; the liveness phase heals whatever is left.

use crate::config::FaultConfig;
use crate::worker::FaultPoint;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};

/// A fault to inject.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Kill a node; it restarts at its heal.
    Crash(String),
    /// Pause a node (a GC pause); it resumes at its heal.
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
    /// Crash a worker the next time it reaches this point.
    FaultPoint(String, FaultPoint),
}

impl Fault {
    /// The fault's kind, as traces and summaries name it.
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
}

/// The nemesis's state: its stream, what is broken, and the agenda of heals.
pub struct Nemesis {
    rng: ChaCha8Rng,
    cfg: FaultConfig,
    /// Nodes that can crash or pause (workers, redis, db, kafka).
    servers: Vec<String>,
    workers: Vec<String>,
    /// Nodes that are down or paused: no second fault of that kind until healed.
    pub down: BTreeSet<String>,
    /// Nodes that are paused.
    pub paused: BTreeSet<String>,
    agenda: BTreeMap<(u64, u64), Heal>,
    seq: u64,
    next_fault_us: u64,
}

fn ms(v: u64) -> u64 {
    v * 1000
}

impl Nemesis {
    /// A nemesis over `workers` (and the redis, db and kafka nodes).
    pub fn new(rng: ChaCha8Rng, cfg: FaultConfig, workers: Vec<String>) -> Self {
        let mut servers = workers.clone();
        servers.extend(["redis", "db", "kafka"].map(String::from));
        let mut n = Nemesis {
            rng,
            cfg,
            servers,
            workers,
            down: BTreeSet::new(),
            paused: BTreeSet::new(),
            agenda: BTreeMap::new(),
            seq: 0,
            next_fault_us: 0,
        };
        n.next_fault_us = n.gap_us();
        n
    }

    fn gap_us(&mut self) -> u64 {
        ms(self.rng.gen_range(self.cfg.gap_ms_min..=self.cfg.gap_ms_max))
    }

    fn pick<'a>(&mut self, from: &'a [String]) -> &'a str {
        &from[self.rng.gen_range(0..from.len())]
    }

    fn schedule(&mut self, at_us: u64, heal: Heal) {
        self.seq += 1;
        self.agenda.insert((at_us, self.seq), heal);
    }

    /// When the nemesis next wants to act (a fault or a heal).
    pub fn next_action_us(&self) -> u64 {
        let heal = self.agenda.keys().next().map_or(u64::MAX, |k| k.0);
        if self.cfg.random {
            heal.min(self.next_fault_us)
        } else {
            heal
        }
    }

    /// Heals that are due at `now_us`, in order.
    pub fn due_heals(&mut self, now_us: u64) -> Vec<Heal> {
        let mut out = Vec::new();
        while let Some(entry) = self.agenda.first_entry() {
            if entry.key().0 > now_us {
                break;
            }
            out.push(entry.remove());
        }
        for h in &out {
            match h {
                Heal::Restart(n) => {
                    self.down.remove(n);
                }
                Heal::Resume(n) => {
                    self.paused.remove(n);
                }
                _ => {}
            }
        }
        out
    }

    /// Every heal still on the agenda (for the liveness phase), emptying it.
    pub fn all_heals(&mut self) -> Vec<Heal> {
        self.due_heals(u64::MAX)
    }

    /// A random fault, if one is due at `now_us`.
    pub fn due_fault(&mut self, now_us: u64) -> Option<Fault> {
        if !self.cfg.random || now_us < self.next_fault_us {
            return None;
        }
        self.next_fault_us = now_us + self.gap_us();
        let c = &self.cfg;
        let weights = [
            c.crash_weight,
            c.pause_weight,
            c.clog_weight,
            c.partition_weight,
            c.latency_weight,
            c.redis_errors_weight,
            c.clock_weight,
            c.fault_point_weight,
        ];
        let total: u32 = weights.iter().sum();
        if total == 0 {
            return None;
        }
        let mut roll = self.rng.gen_range(0..total);
        let kind = weights.iter().position(|&w| {
            if roll < w {
                true
            } else {
                roll -= w;
                false
            }
        })?;
        let servers = self.servers.clone();
        let workers = self.workers.clone();
        let fault = match kind {
            0 | 1 => {
                let node = self.pick(&servers).to_owned();
                if self.down.contains(&node) || self.paused.contains(&node) {
                    return None;
                }
                if kind == 0 {
                    let at = now_us + ms(self.rng.gen_range(0..=self.cfg.down_ms_max));
                    self.down.insert(node.clone());
                    self.schedule(at, Heal::Restart(node.clone()));
                    Fault::Crash(node)
                } else {
                    let at = now_us + ms(self.rng.gen_range(1..=self.cfg.pause_ms_max.max(1)));
                    self.paused.insert(node.clone());
                    self.schedule(at, Heal::Resume(node.clone()));
                    Fault::Pause(node)
                }
            }
            2 => {
                let mut all = servers.clone();
                all.push("producer".into());
                let node = self.pick(&all).to_owned();
                let at = now_us + ms(self.rng.gen_range(1..=self.cfg.clog_ms_max.max(1)));
                self.schedule(at, Heal::Unclog(node.clone()));
                Fault::Clog(node)
            }
            3 => {
                let worker = self.pick(&workers).to_owned();
                let other = self
                    .pick(&["redis".into(), "db".into(), "kafka".into()])
                    .to_owned();
                let at = now_us + ms(self.rng.gen_range(1..=self.cfg.clog_ms_max.max(1)));
                self.schedule(at, Heal::Unpartition(worker.clone(), other.clone()));
                Fault::Partition(worker, other)
            }
            4 => {
                let latency = self.rng.gen_range(1..=self.cfg.latency_ms_max.max(1));
                let at = now_us + ms(self.rng.gen_range(1..=self.cfg.latency_spike_ms_max.max(1)));
                self.schedule(at, Heal::Latency);
                Fault::Latency(latency)
            }
            5 => {
                let share = self.rng.gen_range(0.0..=self.cfg.redis_error_share_max);
                let at = now_us + ms(self.rng.gen_range(1..=self.cfg.redis_errors_ms_max.max(1)));
                self.schedule(at, Heal::RedisErrors);
                Fault::RedisErrors(share)
            }
            6 => {
                let mut clocked = workers.clone();
                clocked.push("redis".into());
                let node = self.pick(&clocked).to_owned();
                let max = self.cfg.clock_offset_ms_max as i64;
                Fault::Clock(node, self.rng.gen_range(-max..=max))
            }
            _ => {
                let worker = self.pick(&workers).to_owned();
                let point = FaultPoint::ALL[self.rng.gen_range(0..FaultPoint::ALL.len())];
                Fault::FaultPoint(worker, point)
            }
        };
        Some(fault)
    }

    /// How long a node that crashed itself (at a fault point) stays down, in µs.
    pub fn down_us(&mut self) -> u64 {
        ms(self.rng.gen_range(0..=self.cfg.down_ms_max))
    }

    /// Puts a restart on the agenda (for a node that crashed itself).
    pub fn schedule_restart(&mut self, at_us: u64, node: String) {
        self.down.insert(node.clone());
        self.schedule(at_us, Heal::Restart(node));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn nemesis(cfg: FaultConfig) -> Nemesis {
        Nemesis::new(
            ChaCha8Rng::seed_from_u64(1),
            cfg,
            vec!["worker-1".into(), "worker-2".into()],
        )
    }

    #[test]
    fn every_kind_is_drawn_and_every_lasting_fault_is_healed() {
        let mut n = nemesis(FaultConfig::default());
        let mut kinds = BTreeSet::new();
        let mut t = 0;
        while t < 600_000_000 {
            t = n.next_action_us();
            n.due_heals(t);
            if let Some(f) = n.due_fault(t) {
                kinds.insert(f.kind());
            }
        }
        assert_eq!(kinds.len(), 8, "{kinds:?}");
        n.all_heals();
        assert!(n.down.is_empty());
        assert!(n.paused.is_empty());
        assert_eq!(n.next_action_us(), n.next_fault_us);
    }

    #[test]
    fn a_down_node_is_not_crashed_again_and_no_random_faults_when_disabled() {
        let cfg = FaultConfig {
            crash_weight: 1,
            pause_weight: 0,
            clog_weight: 0,
            partition_weight: 0,
            latency_weight: 0,
            redis_errors_weight: 0,
            clock_weight: 0,
            fault_point_weight: 0,
            ..FaultConfig::default()
        };
        let mut n = nemesis(cfg.clone());
        let mut crashed = Vec::new();
        for t in (0..100).map(|i| i * 10_000_000) {
            if let Some(Fault::Crash(node)) = n.due_fault(t) {
                assert!(!crashed.contains(&node), "{node} crashed while down");
                crashed.push(node);
            }
        }
        let mut off = nemesis(FaultConfig { random: false, ..cfg });
        assert_eq!(off.due_fault(u64::MAX / 2), None);
        assert_eq!(off.next_action_us(), u64::MAX);
    }
}
