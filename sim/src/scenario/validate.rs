//! [`SimConfig::validate`]: whether a scenario can be built and stays bounded, checked before
//! any run so a bad file is a usage error naming the field, not a panic or a run that never
//! ends. First every numeric knob against its range (so the rules between knobs compute
//! inside `u64`), then the rules between knobs, then what the idempotency library itself
//! accepts.

use super::config::{Expect, SimConfig};
use super::ranges::{MAX_EVENT_TYPES, MAX_LINK_LATENCIES, MAX_OUTAGE_WINDOWS, MAX_RECORDS, MAX_SCHEDULE};
use crate::net::topology::NodeName;

impl SimConfig {
    /// Checks that the run can be built and stays bounded: every numeric knob within its
    /// [`super::ranges::ranges`] entry, then the rules between knobs. The error names the field (in
    /// backticks, first) and the allowed range.
    pub fn validate(&self) -> Result<(), String> {
        let json = serde_json::to_value(self).expect("config serializes");
        for (name, range) in super::ranges::ranges() {
            let path: Vec<&str> = name.split('.').collect();
            let mut found = Vec::new();
            values_at(&json, &path, String::new(), &mut found);
            for (field, value) in found {
                if !range.contains(value) {
                    return Err(format!("`{field}` = {value} is outside its range {range}"));
                }
            }
        }
        for (name, len, max) in [
            ("event_types", self.event_types.len(), MAX_EVENT_TYPES),
            ("schedule", self.schedule.len(), MAX_SCHEDULE),
            (
                "outage_windows_ms",
                self.outage_windows_ms.len(),
                MAX_OUTAGE_WINDOWS,
            ),
            ("link_latency", self.link_latency.len(), MAX_LINK_LATENCIES),
        ] {
            if len > max {
                return Err(format!("`{name}` has {len} entries; at most {max} are allowed"));
            }
        }
        let records = u64::from(self.events) * u64::from(self.copies);
        if records > MAX_RECORDS {
            return Err(format!(
                "`events` × `copies` = {records} records: at most {MAX_RECORDS} are allowed"
            ));
        }
        if self.event_types.is_empty() {
            return Err("`event_types` must not be empty".into());
        }
        for (i, &e) in self.keep_events.iter().enumerate() {
            if e >= self.events {
                return Err(format!(
                    "`keep_events[{i}]` = {e} is out of range: the workload draws {} events, numbered from 0",
                    self.events
                ));
            }
            if i > 0 && self.keep_events[i - 1] >= e {
                return Err(format!(
                    "`keep_events[{i}]` = {e}: the list must be sorted with each event once (after {})",
                    self.keep_events[i - 1]
                ));
            }
        }
        for (lo, hi, low, high) in [
            (
                self.handler_ms_min,
                self.handler_ms_max,
                "handler_ms_min",
                "handler_ms_max",
            ),
            (
                self.latency_ms_min,
                self.latency_ms_max,
                "latency_ms_min",
                "latency_ms_max",
            ),
            (
                self.faults.gap_ms_min,
                self.faults.gap_ms_max,
                "faults.gap_ms_min",
                "faults.gap_ms_max",
            ),
        ] {
            if lo > hi {
                return Err(format!(
                    "`{low}` ({lo}) must be <= `{high}` ({hi}): `{low} <= {high}` does not hold"
                ));
            }
        }
        if self.kafka.heartbeat_interval_ms >= self.kafka.session_timeout_ms {
            return Err(format!(
                "`kafka.session_timeout_ms` ({}) must be above `kafka.heartbeat_interval_ms` ({}): every member would be removed between two heartbeats",
                self.kafka.session_timeout_ms, self.kafka.heartbeat_interval_ms
            ));
        }
        if self.poll_idle_ms >= self.kafka.max_poll_interval_ms {
            return Err(format!(
                "`poll_idle_ms` ({}) must be below `kafka.max_poll_interval_ms` ({}): an idle worker would be removed from the group",
                self.poll_idle_ms, self.kafka.max_poll_interval_ms
            ));
        }
        if self.kafka.fetch_max_wait_ms >= self.kafka.max_poll_interval_ms {
            return Err(format!(
                "`kafka.fetch_max_wait_ms` ({}) must be below `kafka.max_poll_interval_ms` ({}): a worker waiting in a fetch would be removed from the group",
                self.kafka.fetch_max_wait_ms, self.kafka.max_poll_interval_ms
            ));
        }
        if self.copies > self.partitions {
            return Err(format!(
                "`copies` ({}) must be <= `partitions` ({}): each copy goes to its own partition",
                self.copies, self.partitions
            ));
        }
        for (i, &p) in self.copy_partitions.iter().enumerate() {
            if p >= self.partitions {
                return Err(format!(
                    "`copy_partitions[{i}]` = {p} is outside its range 0..={} (`partitions` = {}, numbered from 0)",
                    self.partitions - 1,
                    self.partitions
                ));
            }
        }
        for (name, len) in [
            ("copy_partitions", self.copy_partitions.len()),
            ("copy_headers", self.copy_headers.len()),
        ] {
            if len > self.copies as usize {
                return Err(format!(
                    "`{name}` has {len} entries but `copies` = {}: one per copy at most",
                    self.copies
                ));
            }
        }
        if !self.worker_protocols.is_empty() && self.worker_protocols.len() != self.workers as usize {
            return Err(format!(
                "`worker_protocols` has {} entries but `workers` = {}: one protocol per worker \
                 (worker-N runs entry N - 1), or none (every worker runs `protocol`)",
                self.worker_protocols.len(),
                self.workers
            ));
        }
        let known = crate::check::registry::expectable();
        for k in match &self.expect {
            Expect::One(s) => vec![s.clone()],
            Expect::Any(v) => v.clone(),
        } {
            if !known.contains(&k.as_str()) {
                return Err(format!("`expect`: unknown {k:?}; valid: {}", known.join(", ")));
            }
        }
        for (i, l) in self.link_latency.iter().enumerate() {
            for (field, n) in [("node", Some(l.node)), ("peer", l.peer)] {
                if let Some(NodeName::Worker(w)) = n {
                    if u32::from(w) > self.workers {
                        return Err(format!(
                            "`link_latency[{i}].{field}`: unknown node \"worker-{w}\"; valid: redis, kafka, db, producer, worker-1 to worker-{}",
                            self.workers
                        ));
                    }
                }
            }
            if l.peer == Some(l.node) {
                return Err(format!(
                    "`link_latency[{i}].peer`: {} is `node` itself; a link has two ends",
                    l.node
                ));
            }
            if l.ms_min > l.ms_max {
                return Err(format!(
                    "`link_latency[{i}].ms_min` ({}) must be <= `link_latency[{i}].ms_max` ({})",
                    l.ms_min, l.ms_max
                ));
            }
        }
        for w in &self.outage_windows_ms {
            if w[0] > w[1] {
                return Err(format!(
                    "`outage_windows_ms`: [{}, {}] ends before it starts",
                    w[0], w[1]
                ));
            }
        }
        for (i, entry) in self.schedule.iter().enumerate() {
            entry
                .validate(self.workers, self.events)
                .map_err(|e| nested(&format!("schedule[{i}]"), &e))?;
            if let Some(at) = entry.at_ms {
                if at >= self.safety_s.saturating_mul(1000) {
                    return Err(format!(
                        "`schedule[{i}].at_ms` = {at} is outside the safety phase: it must be below `safety_s` × 1000 = {}",
                        self.safety_s.saturating_mul(1000)
                    ));
                }
            }
        }
        let mut lib = idempotency::Config::new("sim_worker");
        lib.processing_ttl_s = self.processing_ttl_s;
        for t in &self.event_types {
            if let Some(why) = idempotency::key::name_problem(t, false) {
                return Err(format!("`event_types`: {t:?} {why}"));
            }
        }
        lib.validate().map_err(|e| e.to_string())
    }
}

/// An entry's error as the scenario's: "`node`: unknown node" of `schedule[0]` becomes
/// "`schedule[0].node`: unknown node"; an error that does not start with a key's name keeps
/// the entry's (`schedule[0]`: ...).
fn nested(entry: &str, e: &str) -> String {
    let key = e
        .strip_prefix('`')
        .and_then(|rest| rest.split_once("`: "))
        .filter(|(k, _)| k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    match key {
        Some((key, rest)) => format!("`{entry}.{key}`: {rest}"),
        None => format!("`{entry}`: {e}"),
    }
}

/// The values at `path` under `v`, each with its name as errors give it (`schedule[2].at_ms`,
/// `copy_partitions[1]`, `outage_windows_ms[0][1]`); lists are entered element by element.
fn values_at<'a>(
    v: &'a serde_json::Value,
    path: &[&str],
    name: String,
    out: &mut Vec<(String, &'a serde_json::Value)>,
) {
    match v {
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                values_at(item, path, format!("{name}[{i}]"), out);
            }
        }
        _ if path.is_empty() => out.push((name, v)),
        serde_json::Value::Object(m) => {
            if let Some(child) = m.get(path[0]) {
                let name = if name.is_empty() {
                    path[0].to_owned()
                } else {
                    format!("{name}.{}", path[0])
                };
                values_at(child, &path[1..], name, out);
            }
        }
        _ => {}
    }
}
