//! The history's events as one Rust type: a variant per kind, its fields typed.
//!
//! A trace [`Event`] holds a [`Typed`]; its fields by name, as JSON values, are what the
//! canonical JSON line and the fingerprint are made of. The two forms are exact inverses:
//! [`Typed::fields`] gives the keys and values the nodes have always recorded (an optional key
//! is absent, not null, where it always was), and [`Typed::parse`] reads them back, refusing a
//! missing, mistyped or unknown field (tests hold every real run's events to that). Readers
//! (the checkers, the diagram) match variants ([`Event::typed`]); nothing parses on the way.

use super::Event;
use crate::fault::{Fault, FaultPoint};
use crate::net::topology::NodeName;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// An event's fields, by name, as the trace keeps them.
pub type Fields = BTreeMap<&'static str, Value>;

/// What a worker's acquire came to.
#[derive(Clone, Debug, PartialEq, Eq)]
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
        match self {
            AcquireOutcome::Acquired { .. } => "acquired",
            AcquireOutcome::Unprotected { .. } => "unprotected",
            AcquireOutcome::Duplicate => "duplicate",
            AcquireOutcome::Busy => "busy",
            AcquireOutcome::RaceLost => "race_lost",
            AcquireOutcome::RedisError => "redis_error",
            AcquireOutcome::Unkeyable => "unkeyable",
        }
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
#[derive(Clone, Debug, PartialEq)]
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
        topic: String,
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
        result: String,
        /// The call.
        call: u64,
    },
    /// The handler confirmed.
    Confirm {
        /// The event.
        event_id: String,
        /// `confirmed`, `noop`, or the error.
        result: String,
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
        from: String,
        /// The command's name.
        cmd: String,
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
        /// The fault (its `node` is `target` in the trace, where `node` is the recording node).
        fault: Fault,
        /// Who asked (`nemesis`, `schedule`, ...).
        by: String,
        /// How long it lasts, if it has a duration.
        lasts_ms: Option<u64>,
        /// What a crashed Redis lost.
        lost_keys: Option<Vec<String>>,
        /// The fault point that triggered it.
        point: Option<FaultPoint>,
        /// The event being processed at that point.
        event_id: Option<String>,
    },
    /// A fault was healed.
    Heal {
        /// The heal's name ([`Fault::heal_name`]).
        heal: String,
        /// The node, if the fault had one (`target` in the trace, as a fault's node is).
        node: Option<NodeName>,
        /// A partition's other side.
        peer: Option<NodeName>,
    },
    /// A phase began.
    Phase {
        /// Its name.
        phase: String,
    },
}

/// Builds a field map.
#[derive(Default)]
struct Put(Fields);

impl Put {
    fn put(mut self, name: &'static str, value: impl Serialize) -> Self {
        self.0
            .insert(name, serde_json::to_value(value).expect("a field serializes"));
        self
    }

    fn opt(self, name: &'static str, value: Option<impl Serialize>) -> Self {
        match value {
            Some(v) => self.put(name, v),
            None => self,
        }
    }
}

/// Reads a field map, keeping count of what it read.
struct Take<'a> {
    kind: &'a str,
    fields: &'a Fields,
    read: BTreeSet<&'a str>,
}

impl<'a> Take<'a> {
    fn get<T: DeserializeOwned>(&mut self, name: &'a str) -> Result<T, String> {
        self.opt(name)?
            .ok_or_else(|| format!("{}: no `{name}`", self.kind))
    }

    fn opt<T: DeserializeOwned>(&mut self, name: &'a str) -> Result<Option<T>, String> {
        let Some(v) = self.fields.get(name) else {
            return Ok(None);
        };
        self.read.insert(name);
        serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|e| format!("{}: `{name}` = {v}: {e}", self.kind))
    }

    fn done(self) -> Result<(), String> {
        match self.fields.keys().find(|k| !self.read.contains(**k)) {
            Some(k) => Err(format!("{}: unknown field `{k}`", self.kind)),
            None => Ok(()),
        }
    }
}

/// What the trace calls the node a fault or heal acts on: every line's `node` is the node
/// that recorded it (`nemesis` for these), and one JSON object has one field of a name.
const TARGET: &str = "target";

/// The trace's name for a [`Fault`]'s field `name` (scenario files keep the fault's own names).
fn trace_name(name: &'static str) -> &'static str {
    if name == "node" {
        TARGET
    } else {
        name
    }
}

/// The fields a [`Fault`] itself has (the rest of a `fault` event is about its injection).
const FAULT_FIELDS: [&str; 9] = [
    "fault",
    "node",
    "peer",
    "latency_ms_max",
    "share",
    "offset_ms",
    "acks",
    "lag_ms",
    "command",
];

impl Typed {
    /// The event's kind, as the trace names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Typed::Config { .. } => "config",
            Typed::Start { .. } => "start",
            Typed::Assigned { .. } => "assigned",
            Typed::Revoked { .. } => "revoked",
            Typed::Seek { .. } => "seek",
            Typed::OffsetCommitFailed { .. } => "offset_commit_failed",
            Typed::Deliver { .. } => "deliver",
            Typed::Acquire { .. } => "acquire",
            Typed::Release { .. } => "release",
            Typed::Unprotected { .. } => "unprotected",
            Typed::HandlerStart { .. } => "handler_start",
            Typed::Custom { .. } => "custom",
            Typed::HandlerEnd { .. } => "handler_end",
            Typed::Confirm { .. } => "confirm",
            Typed::ProduceRetry { .. } => "produce_retry",
            Typed::Produce { .. } => "produce",
            Typed::ProduceDeduplicated { .. } => "produce_deduplicated",
            Typed::Join { .. } => "join",
            Typed::Rebalance { .. } => "rebalance",
            Typed::Assignment { .. } => "assignment",
            Typed::MemberRemoved { .. } => "member_removed",
            Typed::OffsetCommit { .. } => "offset_commit",
            Typed::AckLost => "ack_lost",
            Typed::FenceFloor { .. } => "fence_floor",
            Typed::FenceClaim { .. } => "fence_claim",
            Typed::EffectAttempt { .. } => "effect_attempt",
            Typed::EffectApplied { .. } => "effect_applied",
            Typed::Redis { .. } => "redis",
            Typed::PttlProbe { .. } => "pttl_probe",
            Typed::Fault { .. } => "fault",
            Typed::Heal { .. } => "heal",
            Typed::Phase { .. } => "phase",
        }
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

    /// The event's fields, exactly as the trace records them.
    pub fn fields(&self) -> Fields {
        let p = Put::default();
        let p = match self {
            Typed::Config { seed, config } => p.put("seed", seed).put("config", config),
            Typed::Start { incarnation } => p.put("incarnation", incarnation),
            Typed::Assigned {
                member,
                generation,
                partitions,
            } => p
                .put("member", member)
                .put("generation", generation)
                .put("partitions", partitions),
            Typed::Revoked {
                member,
                generation,
                partitions,
                why,
            } => p
                .put("member", member)
                .put("generation", generation)
                .put("partitions", partitions)
                .put("why", why),
            Typed::Seek {
                member,
                partition,
                offset,
            } => p
                .put("member", member)
                .put("partition", partition)
                .put("offset", offset),
            Typed::OffsetCommitFailed { partition, offset } => {
                p.put("partition", partition).put("offset", offset)
            }
            Typed::Deliver {
                topic,
                partition,
                offset,
                event_id,
                attempt,
                delivery,
                call,
                member,
                generation,
            } => p
                .put("topic", topic)
                .put("partition", partition)
                .put("offset", offset)
                .put("event_id", event_id)
                .put("attempt", attempt)
                .put("delivery", delivery)
                .put("call", call)
                .put("member", member)
                .put("generation", generation),
            Typed::Acquire {
                event_id,
                outcome,
                call,
            } => {
                let p = p
                    .put("event_id", event_id)
                    .put("outcome", outcome.name())
                    .put("call", call);
                match outcome.running() {
                    Some((fence, key)) => p.put("fence", fence).put("key", key),
                    None => p,
                }
            }
            Typed::Release {
                event_id,
                error,
                status,
                call,
            } => p
                .put("event_id", event_id)
                .put("error", error)
                .put("status", status)
                .put("call", call),
            Typed::Unprotected {
                event_id,
                reason,
                call,
            } => p
                .put("event_id", event_id)
                .put("reason", reason)
                .put("call", call),
            Typed::HandlerStart {
                event_id,
                fence,
                call,
            } => p.put("event_id", event_id).put("fence", fence).put("call", call),
            Typed::Custom {
                event_id,
                call,
                name,
                detail,
            } => p
                .put("event_id", event_id)
                .put("call", call)
                .put("name", name)
                .put("detail", detail),
            Typed::HandlerEnd {
                event_id,
                result,
                call,
            }
            | Typed::Confirm {
                event_id,
                result,
                call,
            } => p
                .put("event_id", event_id)
                .put("result", result)
                .put("call", call),
            Typed::ProduceRetry { event_id } => p.put("event_id", event_id),
            Typed::Produce {
                event_id,
                partition,
                offset,
                producer,
                sequence,
                retry,
            } => p
                .put("event_id", event_id)
                .put("partition", partition)
                .put("offset", offset)
                .put("producer", producer)
                .put("sequence", sequence)
                .put("retry", retry),
            Typed::ProduceDeduplicated {
                event_id,
                partition,
                offset,
                producer,
                sequence,
            } => p
                .put("event_id", event_id)
                .put("partition", partition)
                .put("offset", offset)
                .put("producer", producer)
                .put("sequence", sequence),
            Typed::Join { member, generation } => p.put("member", member).put("generation", generation),
            Typed::Rebalance {
                generation,
                reason,
                members,
            } => p
                .put("generation", generation)
                .put("reason", reason)
                .put("members", members),
            Typed::Assignment {
                generation,
                assignment,
            } => p.put("generation", generation).put("assignment", assignment),
            Typed::MemberRemoved { member, reason } => p.put("member", member).put("reason", reason),
            Typed::OffsetCommit {
                member,
                generation,
                partition,
                offset,
                accepted,
                error,
            } => p
                .put("member", member)
                .put("generation", generation)
                .put("partition", partition)
                .put("offset", offset)
                .put("accepted", accepted)
                .opt("error", error.as_ref()),
            Typed::AckLost => p,
            Typed::FenceFloor { key, worker, highest } => {
                p.put("key", key).put("worker", worker).put("highest", highest)
            }
            Typed::FenceClaim {
                key,
                worker,
                fence,
                before,
            } => p
                .put("key", key)
                .put("worker", worker)
                .put("fence", fence)
                .put("before", before),
            Typed::EffectAttempt {
                event_id,
                worker,
                incarnation,
                call,
                fence,
                result,
            } => p
                .put("event_id", event_id)
                .put("worker", worker)
                .put("incarnation", incarnation)
                .put("call", call)
                .put("fence", fence)
                .put("result", result),
            Typed::EffectApplied {
                event_id,
                worker,
                incarnation,
                call,
                fence,
            } => p
                .put("event_id", event_id)
                .put("worker", worker)
                .put("incarnation", incarnation)
                .put("call", call)
                .put("fence", fence),
            Typed::Redis {
                from,
                cmd,
                key,
                args,
                reply,
                clock_us,
                reply_lost,
            } => p
                .put("from", from)
                .put("cmd", cmd)
                .put("key", key)
                .put("args", args)
                .put("reply", reply)
                .put("clock_us", clock_us)
                .opt("reply_lost", reply_lost.then_some(true)),
            Typed::PttlProbe { clock_us, keys } => p.put("clock_us", clock_us).put("keys", keys),
            Typed::Fault {
                fault,
                by,
                lasts_ms,
                lost_keys,
                point,
                event_id,
            } => {
                let mut p = p;
                for (k, v) in fault.fields() {
                    p = p.put(trace_name(Fault::field_name(&k)), v);
                }
                p.put("by", by)
                    .opt("lasts_ms", lasts_ms.as_ref())
                    .opt("lost_keys", lost_keys.as_ref())
                    .opt("point", point.map(FaultPoint::name))
                    .opt("event_id", event_id.as_ref())
            }
            Typed::Heal { heal, node, peer } => p
                .put("heal", heal)
                .opt(TARGET, node.map(|n| n.to_string()))
                .opt("peer", peer.map(|n| n.to_string())),
            Typed::Phase { phase } => p.put("phase", phase),
        };
        p.0
    }

    /// The event of kind `kind` with `fields`: the inverse of [`Typed::kind`] and
    /// [`Typed::fields`]. An unknown kind, a missing or mistyped field, or one the kind does
    /// not have is an error naming it.
    pub fn parse(kind: &str, fields: &Fields) -> Result<Typed, String> {
        let mut f = Take {
            kind,
            fields,
            read: BTreeSet::new(),
        };
        let t = match kind {
            "config" => Typed::Config {
                seed: f.get("seed")?,
                config: f.get("config")?,
            },
            "start" => Typed::Start {
                incarnation: f.get("incarnation")?,
            },
            "assigned" => Typed::Assigned {
                member: f.get("member")?,
                generation: f.get("generation")?,
                partitions: f.get("partitions")?,
            },
            "revoked" => Typed::Revoked {
                member: f.get("member")?,
                generation: f.get("generation")?,
                partitions: f.get("partitions")?,
                why: f.get("why")?,
            },
            "seek" => Typed::Seek {
                member: f.get("member")?,
                partition: f.get("partition")?,
                offset: f.get("offset")?,
            },
            "offset_commit_failed" => Typed::OffsetCommitFailed {
                partition: f.get("partition")?,
                offset: f.get("offset")?,
            },
            "deliver" => Typed::Deliver {
                topic: f.get("topic")?,
                partition: f.get("partition")?,
                offset: f.get("offset")?,
                event_id: f.get("event_id")?,
                attempt: f.get("attempt")?,
                delivery: f.get("delivery")?,
                call: f.get("call")?,
                member: f.get("member")?,
                generation: f.get("generation")?,
            },
            "acquire" => {
                let event_id = f.get("event_id")?;
                let call = f.get("call")?;
                let name: String = f.get("outcome")?;
                let outcome = match name.as_str() {
                    "acquired" => AcquireOutcome::Acquired {
                        fence: f.get("fence")?,
                        key: f.get("key")?,
                    },
                    "unprotected" => AcquireOutcome::Unprotected {
                        fence: f.get("fence")?,
                        key: f.get("key")?,
                    },
                    "duplicate" => AcquireOutcome::Duplicate,
                    "busy" => AcquireOutcome::Busy,
                    "race_lost" => AcquireOutcome::RaceLost,
                    "redis_error" => AcquireOutcome::RedisError,
                    "unkeyable" => AcquireOutcome::Unkeyable,
                    other => return Err(format!("acquire: unknown outcome {other:?}")),
                };
                Typed::Acquire {
                    event_id,
                    outcome,
                    call,
                }
            }
            "release" => Typed::Release {
                event_id: f.get("event_id")?,
                error: f.get("error")?,
                status: f.get("status")?,
                call: f.get("call")?,
            },
            "unprotected" => Typed::Unprotected {
                event_id: f.get("event_id")?,
                reason: f.get("reason")?,
                call: f.get("call")?,
            },
            "handler_start" => Typed::HandlerStart {
                event_id: f.get("event_id")?,
                fence: f.get("fence")?,
                call: f.get("call")?,
            },
            "custom" => Typed::Custom {
                event_id: f.get("event_id")?,
                call: f.get("call")?,
                name: f.get("name")?,
                detail: f.get("detail")?,
            },
            "handler_end" => Typed::HandlerEnd {
                event_id: f.get("event_id")?,
                result: f.get("result")?,
                call: f.get("call")?,
            },
            "confirm" => Typed::Confirm {
                event_id: f.get("event_id")?,
                result: f.get("result")?,
                call: f.get("call")?,
            },
            "produce_retry" => Typed::ProduceRetry {
                event_id: f.get("event_id")?,
            },
            "produce" => Typed::Produce {
                event_id: f.get("event_id")?,
                partition: f.get("partition")?,
                offset: f.get("offset")?,
                producer: f.get("producer")?,
                sequence: f.get("sequence")?,
                retry: f.get("retry")?,
            },
            "produce_deduplicated" => Typed::ProduceDeduplicated {
                event_id: f.get("event_id")?,
                partition: f.get("partition")?,
                offset: f.get("offset")?,
                producer: f.get("producer")?,
                sequence: f.get("sequence")?,
            },
            "join" => Typed::Join {
                member: f.get("member")?,
                generation: f.get("generation")?,
            },
            "rebalance" => Typed::Rebalance {
                generation: f.get("generation")?,
                reason: f.get("reason")?,
                members: f.get("members")?,
            },
            "assignment" => Typed::Assignment {
                generation: f.get("generation")?,
                assignment: f.get("assignment")?,
            },
            "member_removed" => Typed::MemberRemoved {
                member: f.get("member")?,
                reason: f.get("reason")?,
            },
            "offset_commit" => Typed::OffsetCommit {
                member: f.get("member")?,
                generation: f.get("generation")?,
                partition: f.get("partition")?,
                offset: f.get("offset")?,
                accepted: f.get("accepted")?,
                error: f.opt("error")?,
            },
            "ack_lost" => Typed::AckLost,
            "fence_floor" => Typed::FenceFloor {
                key: f.get("key")?,
                worker: f.get("worker")?,
                highest: f.get("highest")?,
            },
            "fence_claim" => Typed::FenceClaim {
                key: f.get("key")?,
                worker: f.get("worker")?,
                fence: f.get("fence")?,
                before: f.get("before")?,
            },
            "effect_attempt" => Typed::EffectAttempt {
                event_id: f.get("event_id")?,
                worker: f.get("worker")?,
                incarnation: f.get("incarnation")?,
                call: f.get("call")?,
                fence: f.get("fence")?,
                result: f.get("result")?,
            },
            "effect_applied" => Typed::EffectApplied {
                event_id: f.get("event_id")?,
                worker: f.get("worker")?,
                incarnation: f.get("incarnation")?,
                call: f.get("call")?,
                fence: f.get("fence")?,
            },
            "redis" => Typed::Redis {
                from: f.get("from")?,
                cmd: f.get("cmd")?,
                key: f.get("key")?,
                args: f.get("args")?,
                reply: f.get("reply")?,
                clock_us: f.get("clock_us")?,
                reply_lost: f.opt("reply_lost")?.unwrap_or(false),
            },
            "pttl_probe" => Typed::PttlProbe {
                clock_us: f.get("clock_us")?,
                keys: f.get("keys")?,
            },
            "fault" => {
                let mut own = serde_json::Map::new();
                for name in FAULT_FIELDS {
                    if let Some(v) = f.opt::<Value>(trace_name(name))? {
                        own.insert(name.to_owned(), v);
                    }
                }
                let fault = serde_json::from_value(Value::Object(own)).map_err(|e| format!("fault: {e}"))?;
                Typed::Fault {
                    fault,
                    by: f.get("by")?,
                    lasts_ms: f.opt("lasts_ms")?,
                    lost_keys: f.opt("lost_keys")?,
                    point: f.opt("point")?,
                    event_id: f.opt("event_id")?,
                }
            }
            "heal" => Typed::Heal {
                heal: f.get("heal")?,
                node: f.opt(TARGET)?,
                peer: f.opt("peer")?,
            },
            "phase" => Typed::Phase {
                phase: f.get("phase")?,
            },
            other => return Err(format!("unknown kind {other:?}")),
        };
        f.done()?;
        Ok(t)
    }

    /// The trace event: this, at `t_us`, seen by `node`.
    pub fn event(&self, t_us: u64, node: &str) -> Event {
        Event {
            t_us,
            node: node.to_owned(),
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
        assert_eq!(kinds.len(), 32, "an example of every kind: {kinds:?}");
        for t in examples {
            let fields = t.fields();
            assert_eq!(Typed::parse(t.kind(), &fields), Ok(t.clone()), "{fields:?}");
            let e = t.event(5, "worker-1");
            assert_eq!(e.typed(), &t);
        }
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
        let mut f = deliver.fields();
        f.remove("call");
        assert!(Typed::parse("deliver", &f).unwrap_err().contains("no `call`"));
        let mut f = deliver.fields();
        f.insert("extra", Value::from(1));
        assert!(Typed::parse("deliver", &f)
            .unwrap_err()
            .contains("unknown field `extra`"));
        let mut f = deliver.fields();
        f.insert("offset", Value::from("x"));
        assert!(Typed::parse("deliver", &f).unwrap_err().contains("`offset`"));
        assert!(Typed::parse("nothing", &Fields::new()).is_err());
    }

    /// Every event of real runs reads back from its canonical fields as itself, and its
    /// canonical line reads with a strict JSON reader (no key twice): the default scenario
    /// with random faults (the database's errors too), v2 on a plain database, and every
    /// embedded scenario on its pinned seed.
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
