//! The history's events as one Rust type: a variant per kind, its fields typed.
//!
//! A trace [`Event`] holds a [`Typed`]. Its serde form, derived (`kind` the variant's name,
//! every field by its own name), is what the canonical JSON line and the fingerprint are made
//! of, so a kind and its fields are written once, in the enum. The two forms are exact
//! inverses: [`Typed::fields`] gives the keys and values the nodes have always recorded (an
//! optional key is absent, not null, where it always was), and [`Typed::parse`] (a whole line:
//! [`Event::parse`]) reads them back, refusing a missing, mistyped or unknown field and
//! anything it would not write back the same (tests hold every real run's events to that).
//! Readers (the checkers, the diagram) match variants ([`Event::typed`]); nothing parses on the
//! way.

use super::{tag, Event, Label};
use crate::fault::{Fault, FaultPoint};
use crate::net::topology::NodeName;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// An event's fields, by name (sorted), as the trace keeps them.
pub type Fields = Map<String, Value>;

/// What a worker's acquire came to. In the trace, its name is the acquire's `outcome`, and a
/// handler that runs adds its `fence` (null when none) and `key`.
///
/// ```
/// use sim::{AcquireOutcome, Typed};
///
/// // Two copies of one event: the first delivery takes the lock, the second finds the event
/// // done.
/// let r = sim::Sim::new("duplicate-detection").unwrap().run(1);
/// let outcomes: Vec<&AcquireOutcome> = r
///     .events
///     .iter()
///     .filter_map(|e| match e.typed() {
///         Typed::Acquire { outcome, .. } => Some(outcome),
///         _ => None,
///     })
///     .collect();
/// let names: Vec<&str> = outcomes.iter().map(|o| o.name()).collect();
/// assert_eq!(names, ["acquired", "duplicate"]);
/// // The one that runs the handler carries the lease's fencing token and the key.
/// let (fence, key) = outcomes[0].running().unwrap();
/// assert!(fence.is_some() && !key.is_empty());
/// assert_eq!(*outcomes[1], AcquireOutcome::Duplicate);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AcquireOutcome {
    /// The lock is held: the handler runs protected.
    Acquired {
        /// The fencing token (fenced protocol), if any.
        fence: Option<u64>,
        /// The idempotency key.
        key: String,
    },
    /// The handler runs without the lock (fail-open).
    Unprotected {
        /// The fencing token, if any (none: nothing is held).
        fence: Option<u64>,
        /// The idempotency key (empty when there is none).
        key: String,
    },
    /// The event was already processed.
    Duplicate,
    /// Another worker holds it.
    Busy,
    /// Another worker took it first.
    RaceLost,
    /// Redis failed (fail-closed).
    RedisError,
    /// No key could be made of the message.
    Unkeyable,
}

impl AcquireOutcome {
    /// Its name in the trace (`outcome`).
    pub fn name(&self) -> &'static str {
        static NAMES: OnceLock<&'static [&'static str]> = OnceLock::new();
        tag::of(
            self,
            NAMES.get_or_init(|| tag::names::<AcquireOutcome>("outcome")),
        )
    }

    /// The token and key of a handler that runs (acquired or unprotected).
    pub fn running(&self) -> Option<(Option<u64>, &str)> {
        match self {
            AcquireOutcome::Acquired { fence, key } | AcquireOutcome::Unprotected { fence, key } => {
                Some((*fence, key.as_str()))
            }
            _ => None,
        }
    }
}

/// One event of the history, typed. See the module's doc.
///
/// Its serde form is the canonical line's fields: `kind` is the variant's name in snake case,
/// every field by its own name, an `Option` absent when `None` where it carries
/// `skip_serializing_if`, else `null`. Add a kind here and nowhere else (and an example to
/// [`Typed::examples`], which a test checks).
///
/// ```
/// use sim::{Fault, NodeName, Typed};
///
/// let sim = sim::Sim::new("gc-pause-v2").unwrap();
/// let r = sim.run(sim.config().seed);
/// // The scenario's pause, as its schedule asked.
/// let pause = r.events.iter().find_map(|e| match e.typed() {
///     Typed::Fault {
///         fault: Fault::Pause { node },
///         by,
///         lasts_ms,
///         ..
///     } => Some((*node, by.as_str(), *lasts_ms)),
///     _ => None,
/// });
/// assert_eq!(pause, Some((Some(NodeName::Worker(1)), "schedule", Some(400_000))));
/// // The handlers that started, by worker: worker-1 paused inside its, worker-2 took over.
/// let started: Vec<&str> = r
///     .events
///     .iter()
///     .filter(|e| matches!(e.typed(), Typed::HandlerStart { .. }))
///     .map(|e| e.node.as_str())
///     .collect();
/// assert_eq!(started, ["worker-1", "worker-2"]);
/// let applied = r.events.iter().filter(|e| matches!(e.typed(), Typed::EffectApplied { .. }));
/// assert_eq!(applied.count(), 2);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Typed {
    // --- the run ---
    /// The run's first event: its seed and every knob of its config (the scenario as run,
    /// command-line overrides included; not its prose `description`), so a trace says what
    /// made it.
    Config {
        /// The seed.
        seed: u64,
        /// The config, as a scenario file's fields (nested tables as objects).
        config: Value,
    },
    // --- a worker ---
    /// A worker (re)started.
    Start {
        /// Its incarnation, from 1.
        incarnation: u64,
    },
    /// A member got its partitions.
    Assigned {
        /// The member id.
        member: String,
        /// The generation.
        generation: u64,
        /// Its partitions.
        partitions: Vec<u32>,
    },
    /// A member's session ended.
    Revoked {
        /// The member id.
        member: String,
        /// The generation.
        generation: u64,
        /// The partitions it had.
        partitions: Vec<u32>,
        /// Why (a group error's name).
        why: String,
    },
    /// A member starts a partition at its committed offset.
    Seek {
        /// The member id.
        member: String,
        /// The partition.
        partition: u32,
        /// The offset.
        offset: u64,
    },
    /// An offset commit got no answer.
    OffsetCommitFailed {
        /// The partition.
        partition: u32,
        /// The offset.
        offset: u64,
    },
    /// One `process()` call for a record.
    Deliver {
        /// The topic.
        topic: Label,
        /// The partition.
        partition: u32,
        /// The offset.
        offset: u64,
        /// The event.
        event_id: String,
        /// The attempt at this record by this member, from 1.
        attempt: u32,
        /// The event's deliveries so far, by any worker, this one included.
        delivery: u32,
        /// The `process()` call's number in the worker's incarnation.
        call: u64,
        /// The member id.
        member: String,
        /// The generation.
        generation: u64,
    },
    /// What the acquire came to.
    Acquire {
        /// The event.
        event_id: String,
        /// The outcome (with the token and key when the handler runs).
        #[serde(flatten)]
        outcome: AcquireOutcome,
        /// The call.
        call: u64,
    },
    /// The handler failed and the lock was released (or not).
    Release {
        /// The event.
        event_id: String,
        /// The handler's error.
        error: String,
        /// What became of the lock.
        status: String,
        /// The call.
        call: u64,
    },
    /// The handler ran without protection, and why.
    Unprotected {
        /// The event.
        event_id: String,
        /// Why.
        reason: String,
        /// The call.
        call: u64,
    },
    /// The handler starts.
    HandlerStart {
        /// The event.
        event_id: String,
        /// The fencing token, if any.
        fence: Option<u64>,
        /// The call.
        call: u64,
    },
    /// Something a handler recorded about its own work (a user's handler: an email sent, a
    /// call to another service), for checkers of the user's own properties.
    Custom {
        /// The event.
        event_id: String,
        /// The call.
        call: u64,
        /// What happened, a short stable name (`email_sent`).
        name: String,
        /// Anything else worth reading.
        detail: String,
    },
    /// The handler ends.
    HandlerEnd {
        /// The event.
        event_id: String,
        /// `ok`, or `error: ...`.
        result: Label,
        /// The call.
        call: u64,
    },
    /// The handler confirmed.
    Confirm {
        /// The event.
        event_id: String,
        /// `confirmed`, `noop`, or the error.
        result: Label,
        /// The call.
        call: u64,
    },
    // --- the producer ---
    /// A produce got no ack and is sent again.
    ProduceRetry {
        /// The event.
        event_id: String,
    },
    // --- the broker ---
    /// A record was appended.
    Produce {
        /// The record key.
        event_id: String,
        /// Its partition.
        partition: u32,
        /// Its offset.
        offset: u64,
        /// The producer.
        producer: String,
        /// The sequence number.
        sequence: u64,
        /// A duplicate of an appended sequence.
        retry: bool,
    },
    /// A sequence came again and was deduplicated.
    ProduceDeduplicated {
        /// The record key.
        event_id: String,
        /// Its partition.
        partition: u32,
        /// Where it was first appended.
        offset: u64,
        /// The producer.
        producer: String,
        /// The sequence number.
        sequence: u64,
    },
    /// A member joined a round.
    Join {
        /// The member.
        member: String,
        /// The generation.
        generation: u64,
    },
    /// A round opened.
    Rebalance {
        /// The new generation.
        generation: u64,
        /// What opened it.
        reason: String,
        /// The members, sorted.
        members: Vec<String>,
    },
    /// A round closed.
    Assignment {
        /// The generation.
        generation: u64,
        /// Each member's partitions.
        assignment: BTreeMap<String, Vec<u32>>,
    },
    /// A member left or was removed.
    MemberRemoved {
        /// The member.
        member: String,
        /// Why.
        reason: String,
    },
    /// A commit, stored or refused.
    OffsetCommit {
        /// Who committed.
        member: String,
        /// Its generation.
        generation: u64,
        /// The partition.
        partition: u32,
        /// The next offset to read.
        offset: u64,
        /// Whether it was stored.
        accepted: bool,
        /// Why it was refused (only then).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A produce's ack was lost (the nemesis).
    AckLost,
    // --- the database ---
    /// The fence floor a worker asked for.
    FenceFloor {
        /// The key.
        key: String,
        /// The worker.
        worker: String,
        /// The highest token accepted for it.
        highest: u64,
    },
    /// A fenced acquire's token claimed in the database, before the handler runs.
    FenceClaim {
        /// The key.
        key: String,
        /// The worker.
        worker: String,
        /// The token claimed.
        fence: u64,
        /// The highest token for the key before the claim.
        before: u64,
    },
    /// A transaction and its result.
    EffectAttempt {
        /// The event.
        event_id: String,
        /// The worker.
        worker: String,
        /// The worker's incarnation (its last `start`'s) and its `process()` call in it that
        /// commits (its `deliver`'s `call`).
        incarnation: u64,
        /// See `incarnation`.
        call: u64,
        /// Its token, if any.
        fence: Option<u64>,
        /// `applied`, `duplicate`, `stale_fence`, `aborted`.
        result: String,
    },
    /// An effect was applied.
    EffectApplied {
        /// The event.
        event_id: String,
        /// The worker.
        worker: String,
        /// The worker's incarnation and its `process()` call in it whose commit this is.
        incarnation: u64,
        /// See `incarnation`.
        call: u64,
        /// Its token, if any.
        fence: Option<u64>,
    },
    // --- Redis ---
    /// A command and its reply.
    Redis {
        /// Who sent it (a node's name, else its address).
        from: Label,
        /// The command's name.
        cmd: Label,
        /// Its key.
        key: String,
        /// Its arguments after the key.
        args: Vec<Value>,
        /// The reply as text.
        reply: String,
        /// The Redis node's clock (µs since the epoch).
        clock_us: i64,
        /// The command ran but its reply was dropped on purpose (a `lost_replies` fault): the
        /// caller times out. Written only when true, so histories without it are unchanged.
        #[serde(default, skip_serializing_if = "is_false")]
        reply_lost: bool,
    },
    /// Every live key's PTTL.
    PttlProbe {
        /// The Redis node's clock (µs since the epoch).
        clock_us: i64,
        /// Each live key's PTTL (ms).
        keys: BTreeMap<String, i64>,
    },
    // --- the nemesis ---
    /// A fault was injected.
    Fault {
        /// The fault, its own fields among the event's (its `node` is `target` in the trace,
        /// where `node` is the recording node).
        #[serde(flatten, with = "fault_fields")]
        fault: Fault,
        /// Who asked (`nemesis`, `schedule`, ...).
        by: String,
        /// How long it lasts, if it has a duration.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lasts_ms: Option<u64>,
        /// What a crashed Redis lost.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lost_keys: Option<Vec<String>>,
        /// The fault point that triggered it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        point: Option<FaultPoint>,
        /// The event being processed at that point.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event_id: Option<String>,
    },
    /// A fault was healed.
    Heal {
        /// The heal's name ([`Fault::heal_name`]).
        heal: String,
        /// The node, if the fault had one (`target` in the trace, as a fault's node is).
        #[serde(rename = "target", default, skip_serializing_if = "Option::is_none")]
        node: Option<NodeName>,
        /// A partition's other side.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<NodeName>,
    },
    /// A phase began.
    Phase {
        /// Its name.
        phase: String,
    },
}

/// For `skip_serializing_if`: a flag written only when set.
fn is_false(b: &bool) -> bool {
    !b
}

/// A `fault` event's [`Fault`]: its own fields (`fault` and the rest, as scenario files write
/// them) among the event's, but `node` named `target`: every line's `node` is the node that
/// recorded it (`nemesis` for these), and one JSON object has one field of a name.
mod fault_fields {
    use super::*;
    use serde::de::Error as _;
    use serde::{Deserializer, Serializer};

    const TARGET: &str = "target";

    pub fn serialize<S: Serializer>(fault: &Fault, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(fault.fields().into_iter().map(|(k, v)| match k.as_str() {
            "node" => (TARGET.to_owned(), v),
            _ => (k, v),
        }))
    }

    /// Reads the fields the event's own did not take (a fault refuses one it does not know).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Fault, D::Error> {
        let mut own = Map::deserialize(d)?;
        if own.contains_key("node") {
            return Err(D::Error::unknown_field("node", &[TARGET]));
        }
        if let Some(target) = own.remove(TARGET) {
            own.insert("node".to_owned(), target);
        }
        Fault::deserialize(Value::Object(own)).map_err(D::Error::custom)
    }
}

impl Typed {
    /// Every kind's name, in the order [`Typed`] declares them.
    pub fn kinds() -> &'static [&'static str] {
        static KINDS: OnceLock<&'static [&'static str]> = OnceLock::new();
        KINDS.get_or_init(|| tag::names::<Typed>("kind"))
    }

    /// The event's kind, as the trace names it.
    pub fn kind(&self) -> &'static str {
        tag::of(self, Typed::kinds())
    }

    /// The event id it is about, if it names one.
    pub fn event_id(&self) -> Option<&str> {
        match self {
            Typed::Deliver { event_id, .. }
            | Typed::Acquire { event_id, .. }
            | Typed::Release { event_id, .. }
            | Typed::Unprotected { event_id, .. }
            | Typed::HandlerStart { event_id, .. }
            | Typed::HandlerEnd { event_id, .. }
            | Typed::Custom { event_id, .. }
            | Typed::Confirm { event_id, .. }
            | Typed::ProduceRetry { event_id }
            | Typed::Produce { event_id, .. }
            | Typed::ProduceDeduplicated { event_id, .. }
            | Typed::EffectAttempt { event_id, .. }
            | Typed::EffectApplied { event_id, .. } => Some(event_id),
            Typed::Fault { event_id, .. } => event_id.as_deref(),
            _ => None,
        }
    }

    /// The event's serde form: `kind` and its fields, by name.
    pub(super) fn object(&self) -> Fields {
        match serde_json::to_value(self).expect("an event serializes") {
            Value::Object(m) => m,
            other => unreachable!("an event is an object, not {other}"),
        }
    }

    /// The event's fields (all but `kind`), exactly as the trace records them.
    pub fn fields(&self) -> Fields {
        let mut fields = self.object();
        fields.remove("kind");
        fields
    }

    /// The event of kind `kind` with `fields`: the inverse of [`Typed::kind`] and
    /// [`Typed::fields`]. An unknown kind, a missing or mistyped field, one the kind does not
    /// have, or anything else that the event would not write back as it is (`reply_lost:
    /// false`) is an error naming it.
    pub fn parse(kind: &str, fields: &Fields) -> Result<Typed, String> {
        let with_kind = |fields: &Fields| {
            let mut object = fields.clone();
            object.insert("kind".to_owned(), Value::from(kind));
            Typed::deserialize(Value::Object(object))
        };
        let t = with_kind(fields).map_err(|e| {
            // An internally tagged enum reads its fields from a buffer, so serde's message for
            // a mistyped field does not name it: it is the one that, left out, is all that is
            // wrong (the event reads, or only it is missing).
            let e = e.to_string();
            let field = fields
                .keys()
                .filter(|_| !e.starts_with("missing field"))
                .find(|k| {
                    let mut without = fields.clone();
                    without.remove(*k);
                    with_kind(&without)
                        .map_or_else(|e| e.to_string() == format!("missing field `{k}`"), |_| true)
                });
            match field {
                Some(k) => format!("{kind}: `{k}` = {}: {e}", fields[k]),
                None => format!("{kind}: {e}"),
            }
        })?;
        let back = t.fields();
        if let Some(k) = fields.keys().find(|k| !back.contains_key(*k)) {
            return Err(format!("{kind}: unknown field `{k}`"));
        }
        if let Some((k, v)) = back.iter().find(|(k, v)| fields.get(*k) != Some(v)) {
            return match fields.get(k) {
                None => Err(format!("{kind}: no `{k}`")),
                Some(was) => Err(format!("{kind}: `{k}` = {was} reads back as {v}")),
            };
        }
        Ok(t)
    }

    /// The trace event: this, at `t_us`, seen by `node`.
    pub fn event(&self, t_us: u64, node: &str) -> Event {
        Event {
            t_us,
            node: node.into(),
            what: self.clone(),
        }
    }

    /// One event of every kind (and of every acquire outcome and optional field), for tests.
    pub fn examples() -> Vec<Typed> {
        let id = || "cd0497ab-0000-4000-8000-000000000001".to_owned();
        let mut out = vec![
            Typed::Config {
                seed: 7,
                config: serde_json::json!({"workers": 3, "kafka": {"partitions": 3}}),
            },
            Typed::Start { incarnation: 2 },
            Typed::Assigned {
                member: "worker-1-1".into(),
                generation: 3,
                partitions: vec![0, 2],
            },
            Typed::Revoked {
                member: "worker-1-1".into(),
                generation: 3,
                partitions: vec![],
                why: "rebalance_in_progress".into(),
            },
            Typed::Seek {
                member: "worker-1-1".into(),
                partition: 2,
                offset: 7,
            },
            Typed::OffsetCommitFailed {
                partition: 1,
                offset: 4,
            },
            Typed::Deliver {
                topic: "events".into(),
                partition: 1,
                offset: 3,
                event_id: id(),
                attempt: 2,
                delivery: 3,
                call: 9,
                member: "worker-1-1".into(),
                generation: 3,
            },
            Typed::Release {
                event_id: id(),
                error: "injected handler error".into(),
                status: "released".into(),
                call: 9,
            },
            Typed::Unprotected {
                event_id: id(),
                reason: "redis timeout".into(),
                call: 9,
            },
            Typed::HandlerStart {
                event_id: id(),
                fence: Some(12),
                call: 9,
            },
            Typed::HandlerStart {
                event_id: id(),
                fence: None,
                call: 9,
            },
            Typed::Custom {
                event_id: id(),
                call: 9,
                name: "email_sent".into(),
                detail: "to=a@example.com".into(),
            },
            Typed::HandlerEnd {
                event_id: id(),
                result: "ok".into(),
                call: 9,
            },
            Typed::Confirm {
                event_id: id(),
                result: "confirmed".into(),
                call: 9,
            },
            Typed::ProduceRetry { event_id: id() },
            Typed::Produce {
                event_id: id(),
                partition: 1,
                offset: 3,
                producer: "producer".into(),
                sequence: 4,
                retry: true,
            },
            Typed::ProduceDeduplicated {
                event_id: id(),
                partition: 1,
                offset: 3,
                producer: "producer".into(),
                sequence: 4,
            },
            Typed::Join {
                member: "worker-2-1".into(),
                generation: 1,
            },
            Typed::Rebalance {
                generation: 2,
                reason: "join".into(),
                members: vec!["worker-1-1".into(), "worker-2-1".into()],
            },
            Typed::Assignment {
                generation: 2,
                assignment: BTreeMap::from([("worker-1-1".into(), vec![0]), ("worker-2-1".into(), vec![])]),
            },
            Typed::MemberRemoved {
                member: "worker-2-1".into(),
                reason: "session_timeout".into(),
            },
            Typed::OffsetCommit {
                member: "worker-1-1".into(),
                generation: 2,
                partition: 0,
                offset: 5,
                accepted: true,
                error: None,
            },
            Typed::OffsetCommit {
                member: "worker-1-1".into(),
                generation: 1,
                partition: 0,
                offset: 5,
                accepted: false,
                error: Some("illegal_generation".into()),
            },
            Typed::AckLost,
            Typed::FenceFloor {
                key: "p:s:t:abc".into(),
                worker: "worker-1".into(),
                highest: 11,
            },
            Typed::FenceClaim {
                key: "p:s:t:abc".into(),
                worker: "worker-1".into(),
                fence: 12,
                before: 11,
            },
            Typed::EffectAttempt {
                event_id: id(),
                worker: "worker-1".into(),
                incarnation: 1,
                call: 3,
                fence: Some(12),
                result: "applied".into(),
            },
            Typed::EffectAttempt {
                event_id: id(),
                worker: "worker-1".into(),
                incarnation: 1,
                call: 3,
                fence: None,
                result: "aborted".into(),
            },
            Typed::EffectApplied {
                event_id: id(),
                worker: "worker-1".into(),
                incarnation: 1,
                call: 3,
                fence: None,
            },
            Typed::Redis {
                from: "worker-1".into(),
                cmd: "SET".into(),
                key: "p:s:t:abc".into(),
                args: vec!["{}".into(), "NX".into(), "EX".into(), 300.into()],
                reply: "OK".into(),
                clock_us: 1_764_315_200_000_000,
                reply_lost: true,
            },
            Typed::PttlProbe {
                clock_us: 1_764_315_200_000_000,
                keys: BTreeMap::from([("p:s:t:abc".into(), 299_000), ("p:s:t:def".into(), -1)]),
            },
            Typed::Fault {
                fault: Fault::Crash {
                    node: Some(NodeName::Redis),
                },
                by: "nemesis".into(),
                lasts_ms: Some(1500),
                lost_keys: Some(vec!["p:s:t:abc".into()]),
                point: None,
                event_id: None,
            },
            Typed::Fault {
                fault: Fault::Crash {
                    node: Some(NodeName::Worker(1)),
                },
                by: "schedule".into(),
                lasts_ms: None,
                lost_keys: None,
                point: Some(FaultPoint::BeforeConfirm),
                event_id: Some(id()),
            },
            Typed::Heal {
                heal: "unpartition".into(),
                node: Some(NodeName::Worker(2)),
                peer: Some(NodeName::Redis),
            },
            Typed::Heal {
                heal: "latency".into(),
                node: None,
                peer: None,
            },
            Typed::Phase {
                phase: "liveness".into(),
            },
        ];
        let outcomes = [
            AcquireOutcome::Acquired {
                fence: Some(12),
                key: "p:s:t:abc".into(),
            },
            AcquireOutcome::Acquired {
                fence: None,
                key: "p:s:t:abc".into(),
            },
            AcquireOutcome::Unprotected {
                fence: None,
                key: String::new(),
            },
            AcquireOutcome::Duplicate,
            AcquireOutcome::Busy,
            AcquireOutcome::RaceLost,
            AcquireOutcome::RedisError,
            AcquireOutcome::Unkeyable,
        ];
        out.extend(outcomes.into_iter().map(|outcome| Typed::Acquire {
            event_id: id(),
            outcome,
            call: 9,
        }));
        out.extend(Fault::examples().into_iter().map(|fault| Typed::Fault {
            fault,
            by: "nemesis".into(),
            lasts_ms: Some(100),
            lost_keys: None,
            point: None,
            event_id: None,
        }));
        out
    }
}

/// Every event of `events` as data, in order.
pub fn typed(events: &[Event]) -> Vec<&Typed> {
    events.iter().map(Event::typed).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// A strict JSON reader: a value whose objects (at any depth) never repeat a key.
    /// serde_json keeps the last of duplicate keys without a word; so do many readers, while
    /// others refuse the line: a trace line must not depend on which.
    struct Strict;

    impl<'de> serde::Deserialize<'de> for Strict {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(StrictVisitor)
        }
    }

    struct StrictVisitor;

    impl<'de> serde::de::Visitor<'de> for StrictVisitor {
        type Value = Strict;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON value without duplicate keys")
        }
        fn visit_bool<E>(self, _: bool) -> Result<Strict, E> {
            Ok(Strict)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Strict, E> {
            Ok(Strict)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Strict, E> {
            Ok(Strict)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Strict, E> {
            Ok(Strict)
        }
        fn visit_str<E>(self, _: &str) -> Result<Strict, E> {
            Ok(Strict)
        }
        fn visit_unit<E>(self) -> Result<Strict, E> {
            Ok(Strict)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
            while seq.next_element::<Strict>()?.is_some() {}
            Ok(Strict)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
            let mut seen = BTreeSet::new();
            while let Some(key) = map.next_key::<String>()? {
                if !seen.insert(key.clone()) {
                    return Err(serde::de::Error::custom(format!("duplicate key `{key}`")));
                }
                map.next_value::<Strict>()?;
            }
            Ok(Strict)
        }
    }

    /// Reads `line` strictly (one JSON value, no key twice in one object).
    fn strict(line: &str) -> Result<(), String> {
        serde_json::from_str::<Strict>(line)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_strict_reader_refuses_a_duplicate_key_at_any_depth() {
        assert_eq!(strict(r#"{"a":1,"b":[{"c":null}],"d":{"e":"x"}}"#), Ok(()));
        for bad in [
            r#"{"node":"nemesis","kind":"heal","heal":"resume","node":"db"}"#,
            r#"{"a":[{"b":1,"b":2}]}"#,
            r#"{"a":{"b":1,"b":1}}"#,
        ] {
            let err = strict(bad).unwrap_err();
            assert!(err.contains("duplicate key"), "{bad}: {err}");
        }
    }

    /// Every kind's canonical line, faults and heals of every shape included, reads strictly.
    #[test]
    fn every_kinds_line_has_each_key_once() {
        for t in Typed::examples() {
            let line = t.event(5, "nemesis").json();
            assert_eq!(strict(&line), Ok(()), "{line}");
        }
    }

    #[test]
    fn every_kind_round_trips_through_its_fields() {
        let examples = Typed::examples();
        let kinds: BTreeSet<&str> = examples.iter().map(Typed::kind).collect();
        assert_eq!(
            kinds,
            Typed::kinds().iter().copied().collect(),
            "an example of every kind"
        );
        for t in examples {
            let fields = t.fields();
            assert_eq!(Typed::parse(t.kind(), &fields), Ok(t.clone()), "{fields:?}");
            let e = t.event(5, "worker-1");
            assert_eq!(e.typed(), &t);
            let line = e.json();
            let back = Event::parse(&line).unwrap_or_else(|err| panic!("{err}: {line}"));
            assert_eq!(back, e);
            assert_eq!(back.json(), line);
        }
    }

    /// The serde form writes what the hand-written field lists wrote before it: a line of
    /// every shape, by hand (sorted keys, an absent `Option` left out or null as the kind
    /// always had it, a fault's `node` as `target`, `reply_lost` only when true).
    #[test]
    fn the_derived_lines_are_the_lines_traces_always_had() {
        let id = "cd0497ab-0000-4000-8000-000000000001";
        let line = |t: Typed| t.event(5, "n").json();
        let want = |rest: &str| format!(r#"{{"t_us":5,"node":"n",{rest}}}"#);
        let examples = Typed::examples();
        let find = |kind: &str, n: usize| {
            examples
                .iter()
                .filter(|t| t.kind() == kind)
                .nth(n)
                .cloned()
                .unwrap_or_else(|| panic!("an example {kind} #{n}"))
        };
        assert_eq!(
            line(find("config", 0)),
            want(r#""kind":"config","config":{"kafka":{"partitions":3},"workers":3},"seed":7"#)
        );
        assert_eq!(
            line(find("acquire", 0)),
            want(&format!(
                r#""kind":"acquire","call":9,"event_id":"{id}","fence":12,"key":"p:s:t:abc","outcome":"acquired""#
            ))
        );
        assert_eq!(
            line(find("acquire", 2)),
            want(&format!(
                r#""kind":"acquire","call":9,"event_id":"{id}","fence":null,"key":"","outcome":"unprotected""#
            ))
        );
        assert_eq!(
            line(find("acquire", 3)),
            want(&format!(
                r#""kind":"acquire","call":9,"event_id":"{id}","outcome":"duplicate""#
            ))
        );
        assert_eq!(
            line(find("handler_start", 1)),
            want(&format!(
                r#""kind":"handler_start","call":9,"event_id":"{id}","fence":null"#
            ))
        );
        assert_eq!(
            line(find("offset_commit", 0)),
            want(
                r#""kind":"offset_commit","accepted":true,"generation":2,"member":"worker-1-1","offset":5,"partition":0"#
            )
        );
        assert_eq!(
            line(find("offset_commit", 1)),
            want(
                r#""kind":"offset_commit","accepted":false,"error":"illegal_generation","generation":1,"member":"worker-1-1","offset":5,"partition":0"#
            )
        );
        assert_eq!(line(Typed::AckLost), want(r#""kind":"ack_lost""#));
        assert_eq!(
            line(find("redis", 0)),
            want(
                r#""kind":"redis","args":["{}","NX","EX",300],"clock_us":1764315200000000,"cmd":"SET","from":"worker-1","key":"p:s:t:abc","reply":"OK","reply_lost":true"#
            )
        );
        let Typed::Redis {
            from,
            cmd,
            key,
            args,
            reply,
            clock_us,
            ..
        } = find("redis", 0)
        else {
            unreachable!()
        };
        let kept = Typed::Redis {
            from,
            cmd,
            key,
            args,
            reply,
            clock_us,
            reply_lost: false,
        };
        assert!(!line(kept).contains("reply_lost"));
        assert_eq!(
            line(find("fault", 0)),
            want(
                r#""kind":"fault","by":"nemesis","fault":"crash","lasts_ms":1500,"lost_keys":["p:s:t:abc"],"target":"redis""#
            )
        );
        assert_eq!(
            line(find("fault", 1)),
            want(&format!(
                r#""kind":"fault","by":"schedule","event_id":"{id}","fault":"crash","point":"before_confirm","target":"worker-1""#
            ))
        );
        assert_eq!(
            line(find("heal", 0)),
            want(r#""kind":"heal","heal":"unpartition","peer":"redis","target":"worker-2""#)
        );
        assert_eq!(line(find("heal", 1)), want(r#""kind":"heal","heal":"latency""#));
        assert_eq!(
            line(find("pttl_probe", 0)),
            want(
                r#""kind":"pttl_probe","clock_us":1764315200000000,"keys":{"p:s:t:abc":299000,"p:s:t:def":-1}"#
            )
        );
    }

    #[test]
    fn a_missing_unknown_or_mistyped_field_is_refused() {
        let deliver = Typed::Deliver {
            topic: "events".into(),
            partition: 1,
            offset: 3,
            event_id: "e".into(),
            attempt: 1,
            delivery: 1,
            call: 1,
            member: "m".into(),
            generation: 0,
        };
        let refused = |change: &dyn Fn(&mut Fields), kind: &str| {
            let mut f = deliver.fields();
            change(&mut f);
            Typed::parse(kind, &f).unwrap_err()
        };
        let err = refused(&|f| _ = f.remove("call"), "deliver");
        assert!(err.contains("missing field `call`"), "{err}");
        let err = refused(&|f| _ = f.insert("extra".into(), Value::from(1)), "deliver");
        assert!(err.contains("unknown field `extra`"), "{err}");
        let err = refused(&|f| _ = f.insert("offset".into(), Value::from("x")), "deliver");
        assert!(err.contains("`offset` = \"x\""), "{err}");
        let err = refused(&|_| {}, "nothing");
        assert!(err.contains("unknown variant `nothing`"), "{err}");
        // A field the kind reads but would not write back so.
        let redis = Typed::examples()
            .into_iter()
            .find(|t| t.kind() == "redis")
            .expect("a redis example");
        let mut f = redis.fields();
        f.insert("reply_lost".into(), Value::from(false));
        let err = Typed::parse("redis", &f).unwrap_err();
        assert!(err.contains("unknown field `reply_lost`"), "{err}");
        let acquired = Typed::examples()
            .into_iter()
            .find(|t| t.kind() == "acquire")
            .expect("an acquire");
        let mut f = acquired.fields();
        f.remove("fence");
        let err = Typed::parse("acquire", &f).unwrap_err();
        assert!(err.contains("no `fence`"), "{err}");
        // A fault's node is `target`; `node` is the line's own.
        let fault = Typed::examples()
            .into_iter()
            .find(|t| t.kind() == "fault")
            .expect("a fault");
        let mut f = fault.fields();
        let target = f.remove("target").expect("a target");
        f.insert("node".into(), target);
        let err = Typed::parse("fault", &f).unwrap_err();
        assert!(err.contains("unknown field `node`"), "{err}");
    }

    #[test]
    fn a_line_that_is_not_an_event_is_refused_with_what_is_wrong() {
        for (line, want) in [
            ("", "EOF"),
            ("[]", "invalid type"),
            (r#"{"node":"n","kind":"ack_lost"}"#, "no `t_us`"),
            (r#"{"t_us":-1,"node":"n","kind":"ack_lost"}"#, "`t_us` = -1"),
            (r#"{"t_us":1,"node":2,"kind":"ack_lost"}"#, "`node` = 2"),
            (r#"{"t_us":1,"node":"n"}"#, "no `kind`"),
            (
                r#"{"t_us":1,"node":"n","kind":"ack_lost","x":1}"#,
                "unknown field `x`",
            ),
        ] {
            let err = Event::parse(line).unwrap_err();
            assert!(err.contains(want), "{line}: {err}");
        }
        let e = Event::parse(r#"{"t_us":1,"node":"n","kind":"ack_lost"}"#);
        assert_eq!(e, Ok(Typed::AckLost.event(1, "n")));
    }

    /// Every event of real runs reads back from its canonical fields as itself, its canonical
    /// line reads back ([`Event::parse`]) as itself and writes the same bytes again, and the
    /// line reads with a strict JSON reader (no key twice): the default scenario with random
    /// faults (the database's errors too), v2 on a plain database, and every embedded scenario
    /// on its pinned seed.
    #[test]
    fn every_event_of_real_runs_parses_back_to_its_fields() {
        use crate::model::db::DbMode;
        use crate::node::worker::ProtocolKind;
        use crate::scenario::{self, config::SimConfig};
        let mut runs: Vec<(String, u64, SimConfig)> = Vec::new();
        let mut faulty = SimConfig::default();
        faulty.faults.db_errors_weight = 2;
        for seed in 0..3 {
            runs.push(("default".into(), seed, SimConfig::default()));
            runs.push(("default+db_errors".into(), seed, faulty.clone()));
            let v2 = SimConfig {
                protocol: ProtocolKind::V2,
                database: DbMode::Plain,
                ..SimConfig::default()
            };
            runs.push(("v2+plain".into(), seed, v2));
        }
        for (name, _) in scenario::EMBEDDED {
            let config = scenario::load(name).expect("an embedded scenario loads");
            runs.push((name.to_string(), config.seed, config));
        }
        let mut kinds = BTreeSet::new();
        std::thread::scope(|s| {
            let handles: Vec<_> = runs
                .chunks(4)
                .map(|chunk| {
                    s.spawn(move || {
                        let mut kinds = BTreeSet::new();
                        for (name, seed, config) in chunk {
                            let r = crate::run::run(*seed, config);
                            for e in &r.events {
                                let line = e.json();
                                if let Err(err) = strict(&line) {
                                    panic!("{name} seed {seed}: a strict reader refuses {line}: {err}");
                                }
                                let t = Typed::parse(e.kind(), &e.fields())
                                    .unwrap_or_else(|err| panic!("{name} seed {seed}: {err}: {}", e.json()));
                                assert_eq!(&t, e.typed(), "{name} seed {seed}: {}", e.json());
                                let back = Event::parse(&line)
                                    .unwrap_or_else(|err| panic!("{name} seed {seed}: {err}: {line}"));
                                assert_eq!(&back, e, "{name} seed {seed}: {line}");
                                assert_eq!(back.json(), line, "{name} seed {seed}");
                                kinds.insert(e.kind());
                            }
                        }
                        kinds
                    })
                })
                .collect();
            for h in handles {
                kinds.extend(h.join().expect("a run"));
            }
        });
        assert!(kinds.len() >= 25, "the runs show most kinds: {kinds:?}");
    }
}
