//! What a consumer is configured with: names, TTLs, the protocol and the failure policy.
//!
//! # Default values
//! - `key_prefix`: `huleedu:idempotency:v2` (v2's)
//! - `default_ttl_s`: 86400
//! - `ttl_by_event_type_s`: v2's table ([`v2_default_ttls`]); a caller's table replaces it whole
//! - `processing_ttl_s`: 300
//! - `protocol`: [`Protocol::Fenced`]
//! - `on_redis_failure`: [`FailurePolicy::FailOpen`] (v2's behaviour)

use crate::key::name_problem;
use std::collections::BTreeMap;
use std::fmt;

/// v2's key prefix.
pub const DEFAULT_KEY_PREFIX: &str = "huleedu:idempotency:v2";
/// v2's TTL for completed records of event types not in the table.
pub const DEFAULT_TTL_S: u64 = 86_400;
/// v2's processing-lock TTL.
pub const PROCESSING_TTL_S: u64 = 300;

/// Which protocol guards a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Protocol {
    /// The Python services' protocol, faithfully, weaknesses included (see [`crate::v2`]).
    V2,
    /// The safe protocol: atomic acquire, fencing tokens, owner-checked renew, confirm and
    /// release (see [`crate::fenced`]).
    #[default]
    Fenced,
}

impl Protocol {
    /// The protocol's name as written in configuration (`v2`, `fenced`).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::V2 => "v2",
            Protocol::Fenced => "fenced",
        }
    }
}

/// What to do when Redis cannot be asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FailurePolicy {
    /// Run the handler without protection (v2's behaviour): no delivery waits for Redis, and
    /// during an outage there is no dedup at all.
    #[default]
    FailOpen,
    /// Return an error without running the handler, so the consumer retries later without
    /// committing its offset.
    FailClosed,
}

impl FailurePolicy {
    /// The policy's name as written in configuration (`fail_open`, `fail_closed`).
    pub fn name(self) -> &'static str {
        match self {
            FailurePolicy::FailOpen => "fail_open",
            FailurePolicy::FailClosed => "fail_closed",
        }
    }
}

/// v2's per-event-type TTLs for completed records, in seconds.
pub fn v2_default_ttls() -> BTreeMap<String, u64> {
    const TABLE: &[(&str, u64)] = &[
        ("huleedu.essay.spellcheck.requested.v1", 3_600),
        ("huleedu.essay.spellcheck.completed.v1", 3_600),
        ("huleedu.file.essay.content.provisioned.v1", 3_600),
        ("huleedu.file.essay.validation.failed.v1", 3_600),
        ("huleedu.batch.essays.registered.v1", 43_200),
        ("huleedu.els.batch.essays.ready.v1", 43_200),
        ("huleedu.els.batch.phase.outcome.v1", 43_200),
        ("huleedu.cj_assessment.completed.v1", 86_400),
        ("huleedu.batch.cj_assessment.initiate.command.v1", 86_400),
        ("huleedu.batch.spellcheck.initiate.command.v1", 86_400),
        ("huleedu.result_aggregator.batch.completed.v1", 259_200),
        ("huleedu.result_aggregator.class.summary.updated.v1", 259_200),
    ];
    TABLE.iter().map(|&(t, s)| (t.to_owned(), s)).collect()
}

/// A consumer's configuration. Build with [`Config::new`], adjust the public fields or the
/// setters, and [`Config::validate`] runs when a consumer is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The service's name, the key's second segment.
    pub service_name: String,
    /// The key's first segment(s).
    pub key_prefix: String,
    /// TTL of completed records whose event type is not in the table.
    pub default_ttl_s: u64,
    /// TTL of completed records per event type (dots as sent, not replaced).
    pub ttl_by_event_type_s: BTreeMap<String, u64>,
    /// TTL of the processing lock (the lease, for `fenced`).
    pub processing_ttl_s: u64,
    /// The protocol.
    pub protocol: Protocol,
    /// What to do when Redis fails.
    pub on_redis_failure: FailurePolicy,
}

/// A configuration that cannot work, naming the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The field at fault.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid `{}`: {}", self.field, self.reason)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// v2's defaults for `service_name`, with the `fenced` protocol.
    pub fn new(service_name: impl Into<String>) -> Self {
        Config {
            service_name: service_name.into(),
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            default_ttl_s: DEFAULT_TTL_S,
            ttl_by_event_type_s: v2_default_ttls(),
            processing_ttl_s: PROCESSING_TTL_S,
            protocol: Protocol::default(),
            on_redis_failure: FailurePolicy::default(),
        }
    }

    /// Sets the protocol.
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// Sets the failure policy.
    pub fn on_redis_failure(mut self, policy: FailurePolicy) -> Self {
        self.on_redis_failure = policy;
        self
    }

    /// Replaces the per-event-type TTL table (it does not merge, as in v2).
    pub fn ttl_table(mut self, table: BTreeMap<String, u64>) -> Self {
        self.ttl_by_event_type_s = table;
        self
    }

    /// The completed record's TTL for `event_type`.
    pub fn ttl_for(&self, event_type: &str) -> u64 {
        self.ttl_by_event_type_s
            .get(event_type)
            .copied()
            .unwrap_or(self.default_ttl_s)
    }

    /// Checks that keys can be built and TTLs make sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field, reason: String| Err(ConfigError { field, reason });
        if let Some(why) = name_problem(&self.service_name, false) {
            return bad("service_name", format!("{:?} {why}", self.service_name));
        }
        if let Some(why) = name_problem(&self.key_prefix, true) {
            return bad("key_prefix", format!("{:?} {why}", self.key_prefix));
        }
        if self.default_ttl_s == 0 {
            return bad("default_ttl_s", "must be > 0".into());
        }
        if self.processing_ttl_s == 0 {
            return bad("processing_ttl_s", "must be > 0".into());
        }
        if let Some((t, _)) = self.ttl_by_event_type_s.iter().find(|(_, &s)| s == 0) {
            return bad("ttl_by_event_type_s", format!("TTL of {t:?} must be > 0"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_v2s() {
        let c = Config::new("svc");
        assert_eq!(c.key_prefix, "huleedu:idempotency:v2");
        assert_eq!((c.default_ttl_s, c.processing_ttl_s), (86_400, 300));
        assert_eq!(c.ttl_for("huleedu.essay.spellcheck.requested.v1"), 3_600);
        assert_eq!(c.ttl_for("huleedu.result_aggregator.batch.completed.v1"), 259_200);
        assert_eq!(c.ttl_for("not.in.table"), 86_400);
        assert_eq!(c.protocol, Protocol::Fenced);
        assert_eq!(c.on_redis_failure, FailurePolicy::FailOpen);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn a_callers_table_replaces_v2s() {
        let c = Config::new("svc").ttl_table(BTreeMap::from([("x.v1".to_owned(), 60)]));
        assert_eq!(c.ttl_for("x.v1"), 60);
        assert_eq!(c.ttl_for("huleedu.essay.spellcheck.requested.v1"), 86_400);
    }

    #[test]
    fn invalid_settings_name_their_field() {
        let field = |c: Config| c.validate().unwrap_err().field;
        assert_eq!(field(Config::new("a:b")), "service_name");
        assert_eq!(field(Config::new("a b")), "service_name");
        assert_eq!(field(Config::new("")), "service_name");
        assert_eq!(field(Config::new("x".repeat(257))), "service_name");
        assert_eq!(
            field(Config {
                key_prefix: "p*".into(),
                ..Config::new("s")
            }),
            "key_prefix"
        );
        assert_eq!(
            field(Config {
                default_ttl_s: 0,
                ..Config::new("s")
            }),
            "default_ttl_s"
        );
        assert_eq!(
            field(Config {
                processing_ttl_s: 0,
                ..Config::new("s")
            }),
            "processing_ttl_s"
        );
        let zero = BTreeMap::from([("t".to_owned(), 0)]);
        assert_eq!(field(Config::new("s").ttl_table(zero)), "ttl_by_event_type_s");
        assert!(Config::new("s:")
            .validate()
            .unwrap_err()
            .to_string()
            .contains("service_name"));
    }
}
