//! What each trace event shows in the diagram, before any text is escaped: the participants
//! (and their order), arrows for what crosses the network, notes for the rest. Kept apart
//! from the rendering so the mapping from trace to story can be read in one place.

use super::text::{compact, cut, field, mask_numbers, short_id, short_key, shorten_ids, time};
use crate::trace::Event;
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
    let node = Who::parse(&e.node);
    let id = e.str("event_id").map(short_id);
    let num = |name: &str| field(e, name).unwrap_or_else(|| "?".into());
    let record = || format!("p{}/{}", num("partition"), num("offset"));
    let note = |over, text: String| Step::Note { over, text };
    let arrow = |from, to, arrow, text: String| Step::Arrow {
        from,
        to,
        arrow,
        text,
        same: None,
        loop_shows_same: false,
    };
    match (e.kind, node, id) {
        ("fault" | "heal", ..) => vec![fault(e)],
        ("phase", ..) => vec![note(
            Over::All,
            format!("{} {} phase begins", time(e.t_us), num("phase")),
        )],
        ("verdict", ..) => verdict(e),
        ("start", Some(w), _) => vec![note(
            Over::One(w),
            format!("{} start, incarnation {}", time(e.t_us), num("incarnation")),
        )],
        ("produce", _, Some(id)) => {
            let from = e.str("from").and_then(Who::parse).unwrap_or(Who::Producer);
            let mut text = format!("produce {id} {}", record());
            if let Some(seq) = field(e, "sequence") {
                write!(text, " seq {seq}").expect("write to string");
            }
            if e.fields.get("retry") == Some(&Value::Bool(true)) {
                text.push_str(" retry");
            }
            vec![arrow(from, Who::Kafka, "->>", text)]
        }
        ("produce_deduplicated", _, Some(id)) => vec![note(
            Over::One(Who::Kafka),
            format!("{id} produced again, deduplicated (kept {})", record()),
        )],
        ("produce_retry", _, Some(id)) => vec![note(
            Over::One(Who::Producer),
            format!("{id} no ack, produce again"),
        )],
        ("ack_lost", ..) => vec![arrow(Who::Kafka, Who::Producer, "--x", "produce ack lost".into())],
        ("deliver", Some(w @ Who::Worker(_)), Some(id)) => {
            let same = format!("deliver {id} {}", record());
            let text = match e.u64("attempt") {
                Some(a) if a > 1 => format!("{same} attempt {a}"),
                _ => same.clone(),
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
        ("redis", ..) => redis(e),
        ("effect_attempt", _, Some(id)) => match e.str("worker").and_then(Who::parse) {
            Some(w) => {
                let fence = field(e, "fence").map_or(String::new(), |f| format!(" fence {f}"));
                vec![arrow(
                    w,
                    Who::Db,
                    "->>",
                    format!("effect {id}{fence} → {}", num("result")),
                )]
            }
            None => vec![note(Over::One(Who::Db), generic(e))],
        },
        ("effect_applied", ..) => vec![],
        ("offset_commit" | "join", ..) => match e.str("member").and_then(Who::parse) {
            Some(w) if e.kind == "join" => vec![arrow(
                w,
                Who::Kafka,
                "->>",
                format!("join, generation {}", num("generation")),
            )],
            Some(w) => {
                let mut text = format!("commit {}", record());
                if e.fields.get("accepted") == Some(&Value::Bool(false)) {
                    write!(
                        text,
                        " rejected {} (generation {})",
                        num("error"),
                        num("generation")
                    )
                    .expect("write to string");
                }
                vec![arrow(w, Who::Kafka, "->>", text)]
            }
            None => vec![note(Over::One(Who::Kafka), generic(e))],
        },
        (kind, Some(w @ Who::Worker(_)), Some(id)) => {
            let text = match kind {
                "acquire" => match field(e, "fence") {
                    Some(fence) => format!("{} (fence {fence})", num("outcome")),
                    None => num("outcome"),
                },
                "handler_start" => "handler start".into(),
                "handler_end" => format!("handler end {}", num("result")),
                "confirm" => format!("confirm {}", num("result")),
                "release" => format!("release {} after {}", num("status"), num("error")),
                "unprotected" => format!("unprotected, {}", num("reason")),
                _ => generic(e),
            };
            vec![Step::Local { who: w, id, text }]
        }
        (_, Some(w), _) => vec![note(Over::One(w), generic(e))],
        (_, None, _) => vec![note(Over::All, format!("{} {}", e.node, generic(e)))],
    }
}

/// A fault or heal: a note over the node it hits (both ends of a partition), or over everyone.
fn fault(e: &Event) -> Step {
    let what = field(e, e.kind).unwrap_or_else(|| "?".into());
    let node = e.str("node");
    let peer = e.str("peer");
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
    for (name, value) in &e.fields {
        let v = compact(value);
        details.push(match *name {
            "fault" | "heal" | "node" | "peer" => continue,
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
    let mut text = format!("{} {} {what}", time(e.t_us), e.kind);
    if !details.is_empty() {
        write!(text, " ({})", details.join(", ")).expect("write to string");
    }
    Step::Note { over, text }
}

/// The checker's verdict: a note, then one per violation and per note.
fn verdict(e: &Event) -> Vec<Step> {
    let all = |text| Step::Note {
        over: Over::All,
        text,
    };
    let mut out = vec![all(format!(
        "{} verdict {}",
        time(e.t_us),
        field(e, "verdict").unwrap_or_else(|| "?".into())
    ))];
    for (name, label) in [("violations", "violation"), ("notes", "note")] {
        let items: Vec<String> = match e.fields.get(name) {
            Some(Value::Array(items)) => items.iter().map(compact).collect(),
            _ => vec![],
        };
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
fn redis(e: &Event) -> Vec<Step> {
    let cmd = field(e, "cmd").unwrap_or_else(|| "?".into());
    let mut request = format!("{cmd} {}", short_key(e.str("key").unwrap_or("")));
    if let Some(Value::Array(args)) = e.fields.get("args") {
        for n in args.iter().filter(|a| a.is_number()) {
            write!(request, " {n}").expect("write to string");
        }
    }
    let reply = reply_summary(e.str("reply").unwrap_or("?"));
    match e.str("from").and_then(Who::parse) {
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
            text: format!("{} {request} → {reply}", e.str("from").unwrap_or("?")),
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
    let mut out = e.kind.to_owned();
    for (name, value) in &e.fields {
        let v = match *name {
            "event_id" => short_id(&compact(value)),
            "key" => short_key(&compact(value)),
            _ => cut(&compact(value), 40),
        };
        write!(out, " {name}={v}").expect("write to string");
    }
    out
}
