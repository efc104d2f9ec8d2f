//! The nemesis's knobs: how often it strikes, with which kinds of fault, and how hard.

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
        }
    }
}
