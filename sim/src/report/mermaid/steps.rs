//! What each trace event shows in the diagram, before any text is escaped: the participants
//! (and their order), arrows for what crosses the network, notes for the rest. Kept apart
//! from the rendering so the mapping from trace to story can be read in one place.

use super::text::{compact, cut, mask_numbers, short_id, short_key, shorten_ids, time};
use crate::fault::Fault;
use crate::trace::{Event, Typed};
use serde_json::Value;
use std::fmt::Write as _;

/// The most violations (and, apart, notes) the verdict lists.
const VERDICT_ITEMS_MAX: usize = 10;

/// A participant; the derived order is the diagram's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Who {
    Producer,
    Kafka,
    Worker(u64),
    Redis,
    Db,
}

impl Who {
    /// The participant named `name`: a node name, or a group member id (`worker-2-1` is
    /// `worker-2`'s first member).
    pub(super) fn parse(name: &str) -> Option<Who> {
        Some(match name {
            "producer" => Who::Producer,
            "kafka" => Who::Kafka,
            "redis" => Who::Redis,
            "db" => Who::Db,
            _ => {
                let rest = name.strip_prefix("worker-")?;
                let (n, member) = rest.split_once('-').unwrap_or((rest, "0"));
                let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
                if !digits(n) || !digits(member) {
                    return None;
                }
                Who::Worker(n.parse().ok()?)
            }
        })
    }

    /// Its id in the diagram.
    pub(super) fn id(self) -> String {
        match self {
            Who::Producer => "producer".into(),
            Who::Kafka => "kafka".into(),
            Who::Worker(n) => format!("w{n}"),
            Who::Redis => "redis".into(),
            Who::Db => "db".into(),
        }
    }

    /// Its declaration line.
    pub(super) fn declaration(self) -> String {
        match self {
            Who::Worker(n) => format!("participant w{n} as worker-{n}"),
            other => format!("participant {}", other.id()),
        }
    }
}

/// What a note spans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Over {
    One(Who),
    Two(Who, Who),
    All,
}

/// One thing the diagram shows, before escaping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// A message; `same` replaces `text` when looking for repeats, and inside a `loop` too
    /// when `loop_shows_same`.
    Arrow {
        from: Who,
        to: Who,
        arrow: &'static str,
        text: String,
        same: Option<String>,
        loop_shows_same: bool,
    },
    /// A note.
    Note { over: Over, text: String },
    /// A worker's own step about one event (merged with the steps right after it).
    Local { who: Who, id: String, text: String },
}

/// What `e` shows in the diagram (nothing for an event another one already shows).
pub(super) fn steps_of(e: &Event) -> Vec<Step> {
    typed_steps(e, e.typed())
}

/// An event shown only as its kind and fields: over its node, or over everyone.
fn other(e: &Event) -> Step {
    match Who::parse(&e.node) {
        Some(w) => Step::Note {
            over: Over::One(w),
            text: generic(e),
        },
        None => Step::Note {
            over: Over::All,
            text: format!("{} {}", e.node, generic(e)),
        },
    }
}

fn typed_steps(e: &Event, t: &Typed) -> Vec<Step> {
    let node = Who::parse(&e.node);
    let record = |p: u32, o: u64| format!("p{p}/{o}");
    let note = |over, text: String| Step::Note { over, text };
    let arrow = |from, to, arrow, text: String| Step::Arrow {
        from,
        to,
        arrow,
        text,
        same: None,
        loop_shows_same: false,
    };
    match (t, node) {
        // The diagram's title names the scenario and the seed; the knobs are the trace's.
        (Typed::Config { .. }, _) => vec![],
        (Typed::Fault { .. } | Typed::Heal { .. }, _) => vec![fault(e, t)],
        (Typed::Phase { phase }, _) => {
            vec![note(Over::All, format!("{} {phase} phase begins", time(e.t_us)))]
        }
        (Typed::Start { incarnation }, Some(w)) => vec![note(
            Over::One(w),
            format!("{} start, incarnation {incarnation}", time(e.t_us)),
        )],
        (
            Typed::Produce {
                event_id,
                partition,
                offset,
                sequence,
                retry,
                ..
            },
            _,
        ) => {
            let mut text = format!(
                "produce {} {} seq {sequence}",
                short_id(event_id),
                record(*partition, *offset)
            );
            if *retry {
                text.push_str(" retry");
            }
            vec![arrow(Who::Producer, Who::Kafka, "->>", text)]
        }
        (
            Typed::ProduceDeduplicated {
                event_id,
                partition,
                offset,
                ..
            },
            _,
        ) => vec![note(
            Over::One(Who::Kafka),
            format!(
                "{} produced again, deduplicated (kept {})",
                short_id(event_id),
                record(*partition, *offset)
            ),
        )],
        (Typed::ProduceRetry { event_id }, _) => vec![note(
            Over::One(Who::Producer),
            format!("{} no ack, produce again", short_id(event_id)),
        )],
        (Typed::AckLost, _) => vec![arrow(Who::Kafka, Who::Producer, "--x", "produce ack lost".into())],
        (
            Typed::Deliver {
                event_id,
                partition,
                offset,
                attempt,
                ..
            },
            Some(w @ Who::Worker(_)),
        ) => {
            let same = format!("deliver {} {}", short_id(event_id), record(*partition, *offset));
            let text = if *attempt > 1 {
                format!("{same} attempt {attempt}")
            } else {
                same.clone()
            };
            vec![Step::Arrow {
                from: Who::Kafka,
                to: w,
                arrow: "->>",
                text,
                same: Some(same),
                loop_shows_same: true,
            }]
        }
        (
            Typed::Redis {
                from,
                cmd,
                key,
                args,
                reply,
                ..
            },
            _,
        ) => redis(from, cmd, key, args, reply),
        (
            Typed::EffectAttempt {
                event_id,
                worker,
                call,
                fence,
                result,
                ..
            },
            _,
        ) => match Who::parse(worker) {
            Some(w) => {
                let fence = fence.map_or(String::new(), |f| format!(" fence {f}"));
                vec![arrow(
                    w,
                    Who::Db,
                    "->>",
                    format!("effect {} call {call}{fence} → {result}", short_id(event_id)),
                )]
            }
            None => vec![note(Over::One(Who::Db), generic(e))],
        },
        (Typed::EffectApplied { .. }, _) => vec![],
        (Typed::Join { member, generation }, _) => match Who::parse(member) {
            Some(w) => vec![arrow(
                w,
                Who::Kafka,
                "->>",
                format!("join, generation {generation}"),
            )],
            None => vec![note(Over::One(Who::Kafka), generic(e))],
        },
        (
            Typed::OffsetCommit {
                member,
                generation,
                partition,
                offset,
                accepted,
                error,
            },
            _,
        ) => match Who::parse(member) {
            Some(w) => {
                let mut text = format!("commit {}", record(*partition, *offset));
                if !accepted {
                    write!(
                        text,
                        " rejected {} (generation {generation})",
                        error.as_deref().unwrap_or("?")
                    )
                    .expect("write to string");
                }
                vec![arrow(w, Who::Kafka, "->>", text)]
            }
            None => vec![note(Over::One(Who::Kafka), generic(e))],
        },
        (local, Some(w @ Who::Worker(_))) if is_local(local) => {
            let text = match local {
                Typed::Acquire { outcome, .. } => match outcome.running().and_then(|(fence, _)| fence) {
                    Some(fence) => format!("{} (fence {fence})", outcome.name()),
                    None => outcome.name().to_owned(),
                },
                Typed::HandlerStart { .. } => "handler start".into(),
                Typed::HandlerEnd { result, .. } => format!("handler end {result}"),
                Typed::Confirm { result, .. } => format!("confirm {result}"),
                Typed::Release { error, status, .. } => format!("release {status} after {error}"),
                Typed::Unprotected { reason, .. } => format!("unprotected, {reason}"),
                _ => generic(e),
            };
            let id = short_id(local.event_id().unwrap_or(""));
            vec![Step::Local { who: w, id, text }]
        }
        _ => vec![other(e)],
    }
}

/// A worker's own step about one event: a note over it, merged with the steps right after.
fn is_local(t: &Typed) -> bool {
    matches!(
        t,
        Typed::Acquire { .. }
            | Typed::HandlerStart { .. }
            | Typed::HandlerEnd { .. }
            | Typed::Confirm { .. }
            | Typed::Release { .. }
            | Typed::Unprotected { .. }
    )
}

/// A fault or heal: a note over the node it hits (both ends of a partition), or over everyone.
fn fault(e: &Event, t: &Typed) -> Step {
    let (what, node, peer) = match t {
        Typed::Fault { fault, .. } => {
            let peer = match fault {
                Fault::Partition { peer, .. } => Some(*peer),
                _ => None,
            };
            (fault.kind().to_owned(), fault.node(), peer)
        }
        Typed::Heal { heal, node, peer } => (heal.clone(), *node, *peer),
        _ => unreachable!("a fault or a heal"),
    };
    let (node, peer) = (node.map(|n| n.to_string()), peer.map(|n| n.to_string()));
    let (node, peer) = (node.as_deref(), peer.as_deref());
    let mut details = Vec::new();
    let over = match (node.map(|n| (n, Who::parse(n))), peer.map(|p| (p, Who::parse(p)))) {
        (Some((_, Some(a))), Some((_, Some(b)))) if a != b => Over::Two(a.min(b), a.max(b)),
        (Some((_, Some(a))), None | Some((_, Some(_)))) => Over::One(a),
        (Some((_, Some(a))), Some((p, None))) => {
            details.push(format!("peer {p}"));
            Over::One(a)
        }
        (Some((n, None)), _) => {
            details.push(format!("on {n}"));
            if let Some(p) = peer {
                details.push(format!("peer {p}"));
            }
            Over::All
        }
        (None, _) => {
            if let Some(p) = peer {
                details.push(format!("peer {p}"));
            }
            Over::All
        }
    };
    // The rest of its fields, by name: they vary by fault kind, and reading them from the
    // canonical form means a new fault kind shows its knobs here with no change to this file.
    for (name, value) in &e.fields() {
        let v = compact(value);
        details.push(match name.as_str() {
            "fault" | "heal" | "target" | "peer" => continue,
            "by" => format!("by {v}"),
            "lasts_ms" => format!("lasts {v} ms"),
            "latency_ms_max" => format!("up to {v} ms"),
            "offset_ms" => format!("offset {v} ms"),
            "share" => match value.as_f64() {
                Some(share) => format!("share {share:.3}"),
                None => format!("share {v}"),
            },
            "event_id" => format!("event {}", short_id(&v)),
            other => format!("{other} {v}"),
        });
    }
    let mut text = format!("{} {} {what}", time(e.t_us), e.kind());
    if !details.is_empty() {
        write!(text, " ({})", details.join(", ")).expect("write to string");
    }
    Step::Note { over, text }
}

/// The checker's verdict: a note, then one per violation and per note.
pub(super) fn verdict(t_us: u64, verdict: &str, violations: &[String], notes: &[String]) -> Vec<Step> {
    let all = |text| Step::Note {
        over: Over::All,
        text,
    };
    let mut out = vec![all(format!("{} verdict {verdict}", time(t_us)))];
    for (items, name, label) in [(violations, "violations", "violation"), (notes, "notes", "note")] {
        for item in items.iter().take(VERDICT_ITEMS_MAX) {
            out.push(all(format!("{label} {}", shorten_ids(item))));
        }
        if items.len() > VERDICT_ITEMS_MAX {
            out.push(all(format!(
                "and {} more {name}",
                items.len() - VERDICT_ITEMS_MAX
            )));
        }
    }
    out
}

/// A Redis command: the request from the worker, the reply back.
fn redis(from: &str, cmd: &str, key: &str, args: &[Value], reply: &str) -> Vec<Step> {
    let mut request = format!("{cmd} {}", short_key(key));
    for n in args.iter().filter(|a| a.is_number()) {
        write!(request, " {n}").expect("write to string");
    }
    let reply = reply_summary(reply);
    match Who::parse(from) {
        Some(w) => vec![
            Step::Arrow {
                from: w,
                to: Who::Redis,
                arrow: "->>",
                text: request,
                same: None,
                loop_shows_same: false,
            },
            Step::Arrow {
                from: Who::Redis,
                to: w,
                arrow: "-->>",
                same: Some(mask_numbers(&reply)),
                text: reply,
                loop_shows_same: false,
            },
        ],
        None => vec![Step::Note {
            over: Over::One(Who::Redis),
            text: format!("{from} {request} → {reply}"),
        }],
    }
}

/// A reply, short: records as `record(status, owner)`, arrays as their items.
fn reply_summary(reply: &str) -> String {
    match serde_json::from_str::<Value>(reply) {
        Ok(Value::String(bulk)) => record_summary(&bulk),
        Ok(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => record_summary(s),
                other => compact(other),
            })
            .collect::<Vec<_>>()
            .join(" "),
        _ => reply.to_owned(),
    }
}

/// A JSON record as `record(status, owner)`; any other string as it is.
fn record_summary(text: &str) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(record)) => {
            let status = record.get("status").map_or_else(|| "?".into(), compact);
            match record.get("owner") {
                Some(owner) => format!("record({status}, {})", compact(owner)),
                None => format!("record({status})"),
            }
        }
        _ => text.to_owned(),
    }
}

/// An event shown as its kind and fields.
fn generic(e: &Event) -> String {
    let mut out = e.kind().to_owned();
    for (name, value) in &e.fields() {
        let v = match name.as_str() {
            "event_id" => short_id(&compact(value)),
            "key" => short_key(&compact(value)),
            _ => cut(&compact(value), 40),
        };
        write!(out, " {name}={v}").expect("write to string");
    }
    out
}
