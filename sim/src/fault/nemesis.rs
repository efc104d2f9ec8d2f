//! The nemesis: decides which random fault to inject when, and how long it lasts.
//!
//! The decisions are a pure function of the run's `nemesis` random stream, the faults config and
//! which nodes are up, separate from madsim's scheduler RNG; [`crate::fault`] carries them out.

use crate::fault::config::FaultConfig;
use crate::fault::FaultPoint;
use crate::fault::{Fault, NodeStatus};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// The nemesis's state: its stream and when it acts next.
pub struct Nemesis {
    rng: ChaCha8Rng,
    cfg: FaultConfig,
    /// Nodes that can crash or pause (workers, redis, db, kafka).
    servers: Vec<String>,
    workers: Vec<String>,
    next_fault_us: u64,
    max_poll_interval_ms: u64,
}

/// ms to µs; saturating, though validated knobs (at most three days) never get near it.
fn ms(v: u64) -> u64 {
    v.saturating_mul(1000)
}

impl Nemesis {
    /// A nemesis over `workers` (and the redis, db and kafka nodes).
    pub fn new(rng: ChaCha8Rng, cfg: FaultConfig, workers: Vec<String>, max_poll_interval_ms: u64) -> Self {
        let mut servers = workers.clone();
        servers.extend(["redis", "db", "kafka"].map(String::from));
        let mut n = Nemesis {
            rng,
            cfg,
            servers,
            workers,
            next_fault_us: 0,
            max_poll_interval_ms,
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

    /// When the nemesis next wants to act (never, without random faults).
    pub fn next_fault_us(&self) -> u64 {
        if self.cfg.random {
            self.next_fault_us
        } else {
            u64::MAX
        }
    }

    /// A random fault if one is due at `now_us`, with how long it lasts (µs; `None`: until
    /// the liveness phase). Nodes that are not up are neither crashed nor paused.
    pub fn due_fault(
        &mut self,
        now_us: u64,
        status: &BTreeMap<String, NodeStatus>,
    ) -> Option<(Fault, Option<u64>)> {
        if !self.cfg.random || now_us < self.next_fault_us {
            return None;
        }
        self.next_fault_us = now_us.saturating_add(self.gap_us());
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
            c.zombie_weight,
            c.ack_loss_weight,
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
                if status.get(&node) != Some(&NodeStatus::Up) {
                    return None;
                }
                if kind == 0 {
                    let down = ms(self.rng.gen_range(0..=self.cfg.down_ms_max));
                    return Some((Fault::Crash(node), Some(down)));
                }
                let paused = ms(self.rng.gen_range(1..=self.cfg.pause_ms_max.max(1)));
                return Some((Fault::Pause(node), Some(paused)));
            }
            2 => {
                let mut all = servers.clone();
                all.push("producer".into());
                let node = self.pick(&all).to_owned();
                let lasts = ms(self.rng.gen_range(1..=self.cfg.clog_ms_max.max(1)));
                (Fault::Clog(node), Some(lasts))
            }
            3 => {
                let worker = self.pick(&workers).to_owned();
                let other = self
                    .pick(&["redis".into(), "db".into(), "kafka".into()])
                    .to_owned();
                let lasts = ms(self.rng.gen_range(1..=self.cfg.clog_ms_max.max(1)));
                (Fault::Partition(worker, other), Some(lasts))
            }
            4 => {
                let latency = self.rng.gen_range(1..=self.cfg.latency_ms_max.max(1));
                let lasts = ms(self.rng.gen_range(1..=self.cfg.latency_spike_ms_max.max(1)));
                (Fault::Latency(latency), Some(lasts))
            }
            5 => {
                let share = self.rng.gen_range(0.0..=self.cfg.redis_error_share_max);
                let lasts = ms(self.rng.gen_range(1..=self.cfg.redis_errors_ms_max.max(1)));
                (Fault::RedisErrors(share), Some(lasts))
            }
            6 => {
                let mut clocked = workers.clone();
                clocked.push("redis".into());
                let node = self.pick(&clocked).to_owned();
                let max = if node == "redis" {
                    self.cfg.redis_clock_offset_ms_max
                } else {
                    self.cfg.clock_offset_ms_max
                } as i64;
                (Fault::Clock(node, self.rng.gen_range(-max..=max)), None)
            }
            8 => {
                let worker = self.pick(&workers).to_owned();
                if status.get(&worker) != Some(&NodeStatus::Up) {
                    return None;
                }
                let beyond = self
                    .max_poll_interval_ms
                    .saturating_add(self.rng.gen_range(1_000..=30_000));
                (Fault::Pause(worker), Some(ms(beyond)))
            }
            9 => (Fault::AckLoss(self.rng.gen_range(1..=3)), None),
            _ => {
                let worker = self.pick(&workers).to_owned();
                let point = FaultPoint::ALL[self.rng.gen_range(0..FaultPoint::ALL.len())];
                let down = ms(self.rng.gen_range(0..=self.cfg.down_ms_max));
                (Fault::FaultPoint(worker, point, None), Some(down))
            }
        };
        Some(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::collections::BTreeSet;

    fn nemesis(cfg: FaultConfig) -> Nemesis {
        Nemesis::new(
            ChaCha8Rng::seed_from_u64(1),
            cfg,
            vec!["worker-1".into(), "worker-2".into()],
            30_000,
        )
    }

    fn all_up() -> BTreeMap<String, NodeStatus> {
        ["worker-1", "worker-2", "redis", "db", "kafka", "producer"]
            .map(|n| (n.to_owned(), NodeStatus::Up))
            .into()
    }

    #[test]
    fn every_kind_is_drawn_and_every_node_fault_lasts_a_bounded_time() {
        let mut n = nemesis(FaultConfig::default());
        let mut kinds = BTreeSet::new();
        let mut t = 0;
        while t < 600_000_000 {
            t = n.next_fault_us();
            if let Some((f, lasts)) = n.due_fault(t, &all_up()) {
                kinds.insert(f.kind());
                if matches!(
                    f,
                    Fault::Crash(_) | Fault::Pause(_) | Fault::Clog(_) | Fault::Partition(..)
                ) {
                    assert!(lasts.is_some_and(|l| l <= 60_000_000), "{f:?} lasts {lasts:?}");
                }
            }
        }
        assert_eq!(kinds.len(), 9, "{kinds:?}");
    }

    #[test]
    fn a_node_that_is_not_up_is_neither_crashed_nor_paused_and_nothing_without_random_faults() {
        let cfg = FaultConfig {
            clog_weight: 0,
            partition_weight: 0,
            latency_weight: 0,
            redis_errors_weight: 0,
            clock_weight: 0,
            fault_point_weight: 0,
            ack_loss_weight: 0,
            ..FaultConfig::default()
        };
        let mut n = nemesis(cfg.clone());
        let mut status = all_up();
        for node in ["worker-1", "redis", "db", "kafka"] {
            status.insert(node.into(), NodeStatus::Down);
        }
        for t in (0..200).map(|i| i * 10_000_000) {
            if let Some((f, _)) = n.due_fault(t, &status) {
                assert!(
                    matches!(&f, Fault::Crash(x) | Fault::Pause(x) if x == "worker-2"),
                    "{f:?}"
                );
            }
        }
        let mut off = nemesis(FaultConfig { random: false, ..cfg });
        assert_eq!(off.due_fault(u64::MAX / 2, &all_up()), None);
        assert_eq!(off.next_fault_us(), u64::MAX);
    }
}
