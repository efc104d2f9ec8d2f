//! A run's trace as a Mermaid sequence diagram, for pull requests and issues: GitHub and GitLab
//! draw a fenced ```` ```mermaid ```` block in Markdown, so the story of a run can sit next to
//! the diff that changed it. [`mermaid`] gives the diagram, [`mermaid_markdown`] a Markdown
//! file around it.
//!
//! ```text
//! sequenceDiagram
//!     participant producer
//!     participant kafka
//!     participant w1 as worker-1
//!     participant redis
//!     participant db
//!     producer->>kafka: produce cd0497ab p0/0
//!     kafka->>w1: deliver cd0497ab p0/0
//!     w1->>redis: EVALSHA:acquire huleedu_batch_essays_registered_v1:20ab57db 300000
//!     redis-->>w1: acquired 1764315200293614
//!     Note over w1: cd0497ab acquired (fence 1764315200293614), handler start
//!     Note over w1: 0.297s fault pause (by schedule, lasts 400000 ms)
//! ```
//!
//! # What becomes what
//! - **Participants**, always in this order: `producer`, `kafka`, the workers that appear (by
//!   number), `redis`, `db`. A worker is declared `wN as worker-N`: older Mermaid versions
//!   reject a `-` in a declared participant's id.
//! - **Arrows** for what crosses the network: `produce` (producer to kafka), `deliver` (kafka to
//!   the worker, with partition/offset, and the attempt when it is a retry), every `redis`
//!   command (the worker to redis with the command, the key and its numeric arguments, then
//!   redis's reply back, dotted), `effect_attempt` (the worker to db, with the fence and the
//!   result), `offset_commit` and `join` (the worker to kafka), a lost produce ack (a cross).
//! - **Notes** for the rest. A worker's own steps (`acquire`, `handler_start`, `handler_end`,
//!   `confirm`, `release`, `unprotected`) are notes over it, one per run of consecutive steps
//!   about one event. Faults and heals are notes over the node they hit (both ends of a
//!   partition; every participant for a fault without a node), with the virtual time;
//!   so are the phase change and the checker's verdict, one note per violation and per note
//!   (at most 10 of each). `effect_applied` adds nothing to `effect_attempt` and is left out;
//!   an event of a kind not named here is a note with its fields, so nothing is lost silently.
//! - **Repeats**: a block of up to 8 lines that comes 3 or more times in a row, the same but
//!   for a retry's attempt number or a busy lock's remaining TTL, is drawn once inside
//!   `loop N times, FROM to TO`.
//!
//! # Text
//! Ids are shortened like the human trace: an event id to its first 8 characters, a key to
//! `event_type:hash8`, a Redis record to `record(status, owner)`. The characters Mermaid
//! chokes on become its entity codes (`#59;` for `;`, `#35;` for `#`, `#34;` for `"`, `#60;`
//! and `#62;` for `<` and `>`, `#37;` for `%`, which could start a directive), line breaks and other control characters become spaces, and a
//! message is cut at 160 characters.
//!
//! # Focus
//! With `focus: Some(id)` (a whole event id, or a prefix of at least 4 characters) the
//! diagram keeps only what is about that event: events whose `event_id` starts with it, Redis
//! commands on the keys its `acquire` events name, the offset commits that move a group past
//! its records (the rejected ones on the way too), the faults, heals and phase changes between
//! its first and last step, and the verdict, as context. The first note says what the focus
//! matched.
//!
//! # Size
//! GitHub draws diagrams of at most [`RENDER_CHARS_MAX`] characters. A small scenario fits; a
//! whole default run does not: focus on one event.

use crate::trace::Event;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// The longest diagram GitHub draws, in characters (Mermaid's default `maxTextSize`).
pub const RENDER_CHARS_MAX: usize = 50_000;

/// The shortest event id prefix a focus may be.
pub const FOCUS_CHARS_MIN: usize = 4;

/// The longest message or note text, in characters before escaping.
const TEXT_CHARS_MAX: usize = 160;

/// The longest block of lines that can repeat into one `loop`.
const LOOP_LINES_MAX: usize = 8;

/// How many times in a row a block must come to become a `loop`.
const LOOP_REPEATS_MIN: usize = 3;

/// The most violations (and, apart, notes) the verdict lists.
const VERDICT_ITEMS_MAX: usize = 10;

/// A participant; the derived order is the diagram's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    Producer,
    Kafka,
    Worker(u64),
    Redis,
    Db,
}

/// The participants every diagram declares.
const FIXED: [Who; 4] = [Who::Producer, Who::Kafka, Who::Redis, Who::Db];

impl Who {
    /// The participant named `name`: a node name, or a group member id (`worker-2-1` is
    /// `worker-2`'s first member).
    fn parse(name: &str) -> Option<Who> {
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
    fn id(self) -> String {
        match self {
            Who::Producer => "producer".into(),
            Who::Kafka => "kafka".into(),
            Who::Worker(n) => format!("w{n}"),
            Who::Redis => "redis".into(),
            Who::Db => "db".into(),
        }
    }

    /// Its declaration line.
    fn declaration(self) -> String {
        match self {
            Who::Worker(n) => format!("participant w{n} as worker-{n}"),
            other => format!("participant {}", other.id()),
        }
    }
}

/// What a note spans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Over {
    One(Who),
    Two(Who, Who),
    All,
}

/// One thing the diagram shows, before escaping.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
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

/// A finished line, what it is compared by when looking for repeats, and how it reads inside a
/// `loop`.
struct Line {
    t_us: u64,
    text: String,
    same: String,
    in_loop: String,
}

/// The sequence diagram of `events` (Mermaid source, ending in a newline); with `focus`, only
/// what is about the event with that id or id prefix (see the module's doc).
pub fn mermaid(events: &[Event], focus: Option<&str>) -> String {
    let mut steps: Vec<(u64, Step)> = Vec::new();
    let kept: Vec<&Event> = match focus {
        None => events.iter().collect(),
        Some(prefix) => {
            let (kept, note) = select(events, prefix);
            steps.push((
                0,
                Step::Note {
                    over: Over::All,
                    text: note,
                },
            ));
            kept
        }
    };
    for e in kept {
        for step in steps_of(e) {
            match (steps.last_mut(), step) {
                (
                    Some((_, Step::Local { who, id, text })),
                    Step::Local {
                        who: w,
                        id: i,
                        text: t,
                    },
                ) if *who == w && *id == i => {
                    text.push_str(", ");
                    text.push_str(&t);
                }
                (_, step) => steps.push((e.t_us, step)),
            }
        }
    }
    let mut participants: BTreeSet<Who> = FIXED.into_iter().collect();
    for (_, step) in &steps {
        match step {
            Step::Arrow { from, to, .. } => participants.extend([*from, *to]),
            Step::Note {
                over: Over::One(a), ..
            }
            | Step::Local { who: a, .. } => {
                participants.insert(*a);
            }
            Step::Note {
                over: Over::Two(a, b),
                ..
            } => participants.extend([*a, *b]),
            Step::Note { over: Over::All, .. } => {}
        }
    }
    let lines: Vec<Line> = steps.iter().map(|(t_us, step)| line(*t_us, step)).collect();
    let mut out = String::from("sequenceDiagram\n");
    for p in participants {
        writeln!(out, "    {}", p.declaration()).expect("write to string");
    }
    for l in collapse(&lines) {
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// A Markdown file: `# title`, then [`mermaid`]'s diagram in a ```` ```mermaid ```` fence (and a
/// warning above it when GitHub would not draw it).
pub fn mermaid_markdown(events: &[Event], focus: Option<&str>, title: &str) -> String {
    let diagram = mermaid(events, focus);
    let title: String = title
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut out = format!("# {}\n\n", title.trim());
    if diagram.chars().count() > RENDER_CHARS_MAX {
        writeln!(
            out,
            "The diagram has {} characters: GitHub draws at most {RENDER_CHARS_MAX}. Focus on one \
             event to shorten it.\n",
            diagram.chars().count()
        )
        .expect("write to string");
    }
    out.push_str("```mermaid\n");
    out.push_str(&diagram);
    out.push_str("```\n");
    out
}

/// The events about the event `prefix` names, and the note that says what it matched.
fn select<'a>(events: &'a [Event], prefix: &str) -> (Vec<&'a Event>, String) {
    let prefix = prefix.trim().to_lowercase();
    let context = |e: &Event| matches!(e.kind, "fault" | "heal" | "phase" | "verdict");
    if prefix.chars().count() < FOCUS_CHARS_MIN {
        let note =
            format!("focus {prefix}: too short, give at least {FOCUS_CHARS_MIN} characters of an event id");
        return (events.iter().filter(|e| context(e)).collect(), note);
    }
    let about = |e: &Event| {
        e.str("event_id")
            .is_some_and(|id| id.to_lowercase().starts_with(&prefix))
    };
    let mut ids = BTreeSet::new();
    let mut keys = BTreeSet::new();
    let mut records = BTreeSet::new();
    for e in events.iter().filter(|e| about(e)) {
        let id = e.str("event_id").unwrap_or("");
        ids.insert(id.split('/').next().unwrap_or(id));
        match (e.kind, e.str("key"), e.u64("partition"), e.u64("offset")) {
            ("acquire", Some(key), ..) if !key.is_empty() => {
                keys.insert(key);
            }
            ("deliver" | "produce", _, Some(p), Some(o)) => {
                records.insert((p, o));
            }
            _ => {}
        }
    }
    // Faults and heals only while the event is around: from its first to its last step.
    let window = {
        let times: Vec<u64> = events.iter().filter(|e| about(e)).map(|e| e.t_us).collect();
        times.first().copied().unwrap_or(0)..=times.last().copied().unwrap_or(u64::MAX)
    };
    let context = |e: &Event| e.kind == "verdict" || (context(e) && window.contains(&e.t_us));
    let mut covered = BTreeSet::new();
    let mut kept = Vec::new();
    for e in events {
        let keep = if e.kind == "offset_commit" {
            let (p, o) = (e.u64("partition"), e.u64("offset"));
            let moves_past: Vec<(u64, u64)> = records
                .iter()
                .filter(|&&(rp, ro)| Some(rp) == p && o.is_some_and(|o| ro < o))
                .filter(|r| !covered.contains(*r))
                .copied()
                .collect();
            if e.fields.get("accepted") != Some(&Value::Bool(false)) {
                covered.extend(moves_past.iter().copied());
            }
            !moves_past.is_empty()
        } else {
            about(e) || context(e) || (e.kind == "redis" && e.str("key").is_some_and(|k| keys.contains(k)))
        };
        if keep {
            kept.push(e);
        }
    }
    let note = match ids.len() {
        0 => format!("focus {prefix}: no event has this id"),
        1 => format!("focus on event {}", ids.first().expect("one id")),
        n => format!(
            "focus {prefix}: {n} events ({})",
            ids.iter().map(|id| short_id(id)).collect::<Vec<_>>().join(", ")
        ),
    };
    (kept, note)
}

/// What `e` shows in the diagram (nothing for an event another one already shows).
fn steps_of(e: &Event) -> Vec<Step> {
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

/// Turns finished steps into lines.
fn line(t_us: u64, step: &Step) -> Line {
    let (text, same, in_loop) = match step {
        Step::Arrow {
            from,
            to,
            arrow,
            text,
            same,
            loop_shows_same,
        } => {
            let head = format!("{}{arrow}{}: ", from.id(), to.id());
            let text = format!("{head}{}", escape(text));
            let same = same
                .as_ref()
                .map_or_else(|| text.clone(), |s| format!("{head}{}", escape(s)));
            let in_loop = if *loop_shows_same {
                same.clone()
            } else {
                text.clone()
            };
            (text, same, in_loop)
        }
        Step::Note { over, text } => {
            let over = match over {
                Over::One(a) => a.id(),
                Over::Two(a, b) => format!("{},{}", a.id(), b.id()),
                Over::All => format!("{},{}", Who::Producer.id(), Who::Db.id()),
            };
            let text = format!("Note over {over}: {}", escape(text));
            (text.clone(), text.clone(), text)
        }
        Step::Local { who, id, text } => {
            let text = format!("Note over {}: {}", who.id(), escape(&format!("{id} {text}")));
            (text.clone(), text.clone(), text)
        }
    };
    Line {
        t_us,
        text,
        same,
        in_loop,
    }
}

/// The lines, indented, with every block that repeats (see the module's doc) drawn once in a
/// `loop`.
fn collapse(lines: &[Line]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let mut best: Option<(usize, usize)> = None;
        for period in 1..=LOOP_LINES_MAX.min((lines.len() - i) / LOOP_REPEATS_MIN) {
            let same = |k: usize| (0..period).all(|j| lines[i + j].same == lines[i + k * period + j].same);
            let mut repeats = 1;
            while i + (repeats + 1) * period <= lines.len() && same(repeats) {
                repeats += 1;
            }
            if repeats >= LOOP_REPEATS_MIN && best.is_none_or(|(p, r)| period * repeats > p * r) {
                best = Some((period, repeats));
            }
        }
        match best {
            Some((period, repeats)) => {
                let last = &lines[i + period * repeats - 1];
                out.push(format!(
                    "    loop {repeats} times, {} to {}",
                    time(lines[i].t_us),
                    time(last.t_us)
                ));
                out.extend(
                    lines[i..i + period]
                        .iter()
                        .map(|l| format!("        {}", l.in_loop)),
                );
                out.push("    end".into());
                i += period * repeats;
            }
            None => {
                out.push(format!("    {}", lines[i].text));
                i += 1;
            }
        }
    }
    out
}

/// A field as text; `None` when absent or null.
fn field(e: &Event, name: &str) -> Option<String> {
    e.fields.get(name).filter(|v| !v.is_null()).map(compact)
}

/// A value as short text: strings bare, arrays `[a, b]`, objects `{k=v, ...}`.
fn compact(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => format!("[{}]", items.iter().map(compact).collect::<Vec<_>>().join(", ")),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{k}={}", compact(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

/// Virtual time in seconds, to the millisecond.
fn time(t_us: u64) -> String {
    format!("{}.{:03}s", t_us / 1_000_000, t_us / 1000 % 1000)
}

/// Whether `text` starts with a UUID (`8-4-4-4-12` hex digits).
fn starts_with_uuid(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() >= 36
        && b[..36].iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// An event id to its first 8 characters (a suffix after the UUID, like a record key's
/// `/copy/salt`, stays).
fn short_id(id: &str) -> String {
    if starts_with_uuid(id) {
        format!("{}{}", &id[..8], &id[36..])
    } else {
        id.to_owned()
    }
}

/// Every UUID in `text` to its first 8 characters.
fn shorten_ids(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if starts_with_uuid(rest) {
            out.push_str(&rest[..8]);
            rest = &rest[36..];
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// A key `prefix:service:event_type:hash` to `event_type:hash8`, like the human trace.
fn short_key(key: &str) -> String {
    let parts: Vec<&str> = key.rsplitn(3, ':').collect();
    match parts.as_slice() {
        [hash, event_type, _] => format!("{event_type}:{}", hash.chars().take(8).collect::<String>()),
        _ => key.to_owned(),
    }
}

/// Every number standing alone in `text` as `N` (for comparing repeats).
fn mask_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let alone = chars[i].is_ascii_digit() && (i == 0 || !chars[i - 1].is_alphanumeric());
        if alone {
            let end = (i..chars.len())
                .find(|&j| !chars[j].is_ascii_digit())
                .unwrap_or(chars.len());
            if end == chars.len() || !chars[end].is_alphanumeric() {
                out.push('N');
                i = end;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// `text` cut to `max` characters (the last one `…`).
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() > max {
        text.chars().take(max - 1).collect::<String>() + "…"
    } else {
        text.to_owned()
    }
}

/// Message or note text, safe for Mermaid: cut, then its troublesome characters as entity
/// codes and control characters as spaces.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in cut(text, TEXT_CHARS_MAX).chars() {
        match c {
            ';' => out.push_str("#59;"),
            '#' => out.push_str("#35;"),
            '"' => out.push_str("#34;"),
            '<' => out.push_str("#60;"),
            '>' => out.push_str("#62;"),
            '%' => out.push_str("#37;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    if out.trim().is_empty() {
        out = "?".into();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields;
    use serde_json::json;
    use std::collections::BTreeMap;

    const ID: &str = "cd0497ab-ac68-7a31-f75d-5ecec21cf229";
    const OTHER: &str = "1b4085db-5040-bad7-a33c-b6a5004fcf09";
    const KEY: &str = "huleedu:idempotency:v2:sim_worker:huleedu_batch_essays_registered_v1:20ab57db1122";
    const OTHER_KEY: &str =
        "huleedu:idempotency:v2:sim_worker:huleedu_cj_assessment_completed_v1:17418d05aabb";

    fn ev(t_us: u64, node: &str, kind: &'static str, fields: BTreeMap<&'static str, Value>) -> Event {
        Event {
            t_us,
            node: node.into(),
            kind,
            fields,
        }
    }

    /// One event through a worker with v2 locks, a latency fault, a crash fault point and the
    /// verdict.
    fn small_trace() -> Vec<Event> {
        let fence = 1764315200293614u64;
        vec![
            ev(1000, "worker-1", "start", fields! {"incarnation" => 1}),
            ev(
                192_868,
                "kafka",
                "produce",
                fields! {"event_id" => ID, "from" => "producer", "offset" => 0, "partition" => 0},
            ),
            ev(
                281_226,
                "worker-1",
                "deliver",
                fields! {"event_id" => ID, "attempt" => 1, "call" => 1, "delivery" => 1, "offset" => 0,
                "partition" => 0, "topic" => "events"},
            ),
            ev(
                293_614,
                "redis",
                "redis",
                fields! {"cmd" => "EVALSHA:acquire", "key" => KEY,
                "args" => json!(["huleedu:idempotency:v2:sim_worker:__fence__", 300000, "{\"status\": \"processing\"}"]),
                "from" => "worker-1", "reply" => format!("[\"acquired\", {fence}]"), "clock_us" => 1u64},
            ),
            ev(
                297_349,
                "worker-1",
                "acquire",
                fields! {"event_id" => ID, "key" => KEY, "call" => 1, "fence" => fence, "outcome" => "acquired"},
            ),
            ev(
                297_349,
                "worker-1",
                "handler_start",
                fields! {"event_id" => ID, "call" => 1, "fence" => fence},
            ),
            ev(
                300_000,
                "nemesis",
                "fault",
                fields! {"by" => "nemesis", "fault" => "latency", "latency_ms_max" => 200, "lasts_ms" => 1500},
            ),
            ev(
                302_483,
                "db",
                "effect_attempt",
                fields! {"event_id" => ID, "fence" => fence, "result" => "applied", "worker" => "worker-1"},
            ),
            ev(
                302_483,
                "db",
                "effect_applied",
                fields! {"event_id" => ID, "fence" => fence, "worker" => "worker-1"},
            ),
            ev(
                302_494,
                "redis",
                "redis",
                fields! {"cmd" => "GET", "key" => KEY, "args" => json!([]), "from" => "worker-1",
                "reply" => "\"{\\\"status\\\": \\\"processing\\\", \\\"owner\\\": \\\"worker-1#1/0\\\"}\""},
            ),
            ev(
                302_499,
                "worker-1",
                "confirm",
                fields! {"event_id" => ID, "call" => 1, "result" => "confirmed"},
            ),
            ev(
                302_499,
                "worker-1",
                "handler_end",
                fields! {"event_id" => ID, "call" => 1, "result" => "ok"},
            ),
            ev(
                302_505,
                "kafka",
                "offset_commit",
                fields! {"accepted" => true, "generation" => 0, "member" => "worker-1", "offset" => 1, "partition" => 0},
            ),
            ev(
                400_000,
                "nemesis",
                "fault",
                fields! {"by" => "fault_point", "fault" => "crash", "node" => "worker-1", "point" => "before_confirm",
                "event_id" => ID},
            ),
            ev(1_800_000, "nemesis", "heal", fields! {"heal" => "latency"}),
            ev(
                2_000_000,
                "checker",
                "verdict",
                fields! {"verdict" => "pass", "violations" => json!([]), "notes" => json!([])},
            ),
        ]
    }

    /// Checks what code hosts' Mermaid needs: the header, every participant declared before the
    /// first line that uses it, ids that are plain words, balanced loops, and message text with
    /// no raw character Mermaid chokes on.
    fn validate(diagram: &str) -> Result<(), String> {
        let mut lines = diagram.lines().enumerate();
        if lines.next().map(|(_, l)| l) != Some("sequenceDiagram") {
            return Err("the first line is not `sequenceDiagram`".into());
        }
        if !diagram.ends_with('\n') || diagram.contains('\r') {
            return Err("no final newline, or a carriage return".into());
        }
        let word = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let mut declared = BTreeSet::new();
        let mut body = false;
        let mut depth = 0usize;
        for (n, line) in lines {
            let n = n + 1;
            let l = line.trim_start();
            let at = |e: String| format!("line {n} `{line}`: {e}");
            if let Some(rest) = l.strip_prefix("participant ") {
                let (id, alias) = rest.split_once(" as ").unwrap_or((rest, "alias"));
                check_text(alias).map_err(at)?;
                if body || !word(id) || !declared.insert(id.to_owned()) {
                    return Err(at("a bad or late participant".into()));
                }
                continue;
            }
            body = true;
            if l == "end" {
                depth = depth.checked_sub(1).ok_or(at("`end` without `loop`".into()))?;
                continue;
            }
            if let Some(label) = l.strip_prefix("loop ") {
                check_text(label).map_err(at)?;
                depth += 1;
                continue;
            }
            let (head, text) = l.split_once(": ").ok_or(at("no text".into()))?;
            check_text(text).map_err(at)?;
            let ids: Vec<&str> = match head.strip_prefix("Note over ") {
                Some(over) => over.split(',').collect(),
                None => {
                    let from_end = head.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(0);
                    let (from, rest) = head.split_at(from_end);
                    let arrow = ["-->>", "->>", "--x", "-x"]
                        .into_iter()
                        .find(|a| rest.starts_with(a))
                        .ok_or(at("no arrow".into()))?;
                    vec![from, &rest[arrow.len()..]]
                }
            };
            for id in ids {
                if !word(id) || !declared.contains(id) {
                    return Err(at(format!("`{id}` used but not declared")));
                }
            }
        }
        if depth != 0 {
            return Err("a `loop` without `end`".into());
        }
        Ok(())
    }

    /// Text that is not empty and has no raw `;`, `#`, `"`, `<`, `>`, `%` or control character
    /// outside entity codes (`#59;`).
    fn check_text(text: &str) -> Result<(), String> {
        if text.trim().is_empty() {
            return Err("empty text".into());
        }
        let mut rest = text;
        while let Some(i) = rest.find(['#', ';', '"', '<', '>', '%']) {
            let code = rest[i..]
                .strip_prefix('#')
                .and_then(|a| a.split_once(';'))
                .filter(|(digits, _)| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
            match code {
                Some((_, tail)) => rest = tail,
                None => return Err(format!("a raw `{}`", &rest[i..i + 1])),
            }
        }
        match text.chars().find(|c| c.is_control()) {
            Some(c) => Err(format!("a control character {c:?}")),
            None => Ok(()),
        }
    }

    /// The lines after the participants.
    fn body(diagram: &str) -> Vec<&str> {
        diagram
            .lines()
            .skip(1)
            .filter(|l| !l.starts_with("    participant "))
            .collect()
    }

    #[test]
    fn a_small_trace_renders_to_the_expected_diagram() {
        let expected = "\
sequenceDiagram
    participant producer
    participant kafka
    participant w1 as worker-1
    participant redis
    participant db
    Note over w1: 0.001s start, incarnation 1
    producer->>kafka: produce cd0497ab p0/0
    kafka->>w1: deliver cd0497ab p0/0
    w1->>redis: EVALSHA:acquire huleedu_batch_essays_registered_v1:20ab57db 300000
    redis-->>w1: acquired 1764315200293614
    Note over w1: cd0497ab acquired (fence 1764315200293614), handler start
    Note over producer,db: 0.300s fault latency (by nemesis, lasts 1500 ms, up to 200 ms)
    w1->>db: effect cd0497ab fence 1764315200293614 → applied
    w1->>redis: GET huleedu_batch_essays_registered_v1:20ab57db
    redis-->>w1: record(processing, worker-1#35;1/0)
    Note over w1: cd0497ab confirm confirmed, handler end ok
    w1->>kafka: commit p0/1
    Note over w1: 0.400s fault crash (by fault_point, event cd0497ab, point before_confirm)
    Note over producer,db: 1.800s heal latency
    Note over producer,db: 2.000s verdict pass
";
        let diagram = mermaid(&small_trace(), None);
        assert_eq!(diagram, expected);
        validate(&diagram).unwrap();
    }

    #[test]
    fn markdown_puts_a_title_over_a_mermaid_fence() {
        let md = mermaid_markdown(&small_trace(), None, "gc-pause-v2\nseed 1");
        assert!(md.starts_with("# gc-pause-v2 seed 1\n\n```mermaid\nsequenceDiagram\n"));
        assert!(md.ends_with("    Note over producer,db: 2.000s verdict pass\n```\n"));
        assert!(!md.contains("GitHub draws at most"));
    }

    #[test]
    fn a_focus_keeps_its_event_its_keys_its_commits_and_the_faults() {
        let mut events = small_trace();
        let verdict = events.pop().unwrap();
        events.extend([
            ev(
                500_000,
                "kafka",
                "produce",
                fields! {"event_id" => OTHER, "from" => "producer", "offset" => 0, "partition" => 1},
            ),
            ev(
                600_000,
                "worker-2",
                "deliver",
                fields! {"event_id" => OTHER, "attempt" => 1, "offset" => 0, "partition" => 1},
            ),
            ev(
                610_000,
                "redis",
                "redis",
                fields! {"cmd" => "GET", "key" => OTHER_KEY, "from" => "worker-2", "reply" => "nil"},
            ),
            ev(
                620_000,
                "worker-2",
                "acquire",
                fields! {"event_id" => OTHER, "key" => OTHER_KEY, "fence" => Value::Null, "outcome" => "acquired"},
            ),
            ev(
                630_000,
                "kafka",
                "offset_commit",
                fields! {"accepted" => true, "member" => "worker-2-1", "offset" => 1, "partition" => 1},
            ),
            // A second commit past the focused record is not shown: the first moved past it.
            ev(
                640_000,
                "kafka",
                "offset_commit",
                fields! {"accepted" => true, "member" => "worker-1", "offset" => 2, "partition" => 0},
            ),
            ev(
                650_000,
                "nemesis",
                "fault",
                fields! {"by" => "nemesis", "fault" => "partition", "node" => "worker-2", "peer" => "redis"},
            ),
            verdict,
        ]);
        let focused = mermaid(&events, Some("CD04"));
        validate(&focused).unwrap();
        let lines: Vec<&str> = focused.lines().collect();
        // worker-2 is not there: its only focused line, the partition at 0.650s, falls after
        // the event's last step.
        assert_eq!(
            lines[1..6],
            [
                "    participant producer",
                "    participant kafka",
                "    participant w1 as worker-1",
                "    participant redis",
                "    participant db"
            ]
        );
        assert_eq!(
            lines[6],
            "    Note over producer,db: focus on event cd0497ab-ac68-7a31-f75d-5ecec21cf229"
        );
        for kept in [
            "    producer->>kafka: produce cd0497ab p0/0",
            "    w1->>redis: GET huleedu_batch_essays_registered_v1:20ab57db",
            "    w1->>kafka: commit p0/1",
            "    Note over producer,db: 0.300s fault latency (by nemesis, lasts 1500 ms, up to 200 ms)",
            "    Note over producer,db: 2.000s verdict pass",
        ] {
            assert!(lines.contains(&kept), "{kept} missing from\n{focused}");
        }
        for dropped in ["1b4085db", "assessment", "p1/", "p0/2", "fault partition"] {
            assert!(!focused.contains(dropped), "{dropped} in\n{focused}");
        }
        let whole = mermaid(&events, None);
        validate(&whole).unwrap();
        for shown in [
            "    kafka->>w2: deliver 1b4085db p1/0",
            "    Note over w2: 1b4085db acquired",
            "    w2->>kafka: commit p1/1",
        ] {
            assert!(whole.lines().any(|l| l == shown), "{shown} missing from\n{whole}");
        }
    }

    #[test]
    fn a_focus_that_is_too_short_or_matches_nothing_says_so_and_keeps_the_context() {
        let events = small_trace();
        for (focus, note) in [
            (
                "cd0",
                "focus cd0: too short, give at least 4 characters of an event id",
            ),
            ("ffff0000", "focus ffff0000: no event has this id"),
        ] {
            let diagram = mermaid(&events, Some(focus));
            validate(&diagram).unwrap();
            let body = body(&diagram);
            assert_eq!(body[0], format!("    Note over producer,db: {note}"));
            assert_eq!(body.len(), 5, "{diagram}");
            assert!(!diagram.contains("cd0497ab p0"));
        }
    }

    #[test]
    fn hostile_text_is_escaped() {
        let id = "e\"1;#2\n<b>x</b>";
        let events = vec![
            ev(
                1,
                "worker-1",
                "deliver",
                fields! {"event_id" => id, "offset" => 0, "partition" => 0},
            ),
            ev(
                2,
                "redis",
                "redis",
                fields! {"cmd" => "GET", "key" => "a;b:c#d:e\"f\ng", "from" => "worker-1",
                "reply" => "\"say \\\"hi\\\"; #1\\nbye\""},
            ),
            ev(
                3,
                "worker-1",
                "unprotected",
                fields! {"event_id" => id, "reason" => "redis error reply: ERR \"x\"; y # z\r\n<script>"},
            ),
            ev(
                4,
                "worker-1",
                "custom;kind",
                fields! {"note" => "a;b", "#" => "\"q\""},
            ),
            ev(
                5,
                "elsewhere\n;#",
                "mystery",
                fields! {"text" => "%%{init}%% end"},
            ),
            ev(
                6,
                "checker",
                "verdict",
                fields! {"verdict" => "correctness", "violations" => json!(["lost_event event=x \"y\"; (trace event #3)"]),
                "notes" => json!([])},
            ),
        ];
        let diagram = mermaid(&events, None);
        validate(&diagram).unwrap_or_else(|e| panic!("{e}\n{diagram}"));
        assert_eq!(diagram.lines().count(), 1 + 5 + 8, "{diagram}");
        for expected in [
            "    kafka->>w1: deliver e#34;1#59;#35;2 #60;b#62;x#60;/b#62; p0/0",
            "    w1->>redis: GET c#35;d:e#34;f g",
            "    redis-->>w1: say #34;hi#34;#59; #35;1 bye",
            "    Note over producer,db: violation lost_event event=x #34;y#34;#59; (trace event #35;3)",
        ] {
            assert!(
                diagram.lines().any(|l| l == expected),
                "{expected} missing from\n{diagram}"
            );
        }
    }

    #[test]
    fn a_block_that_repeats_is_drawn_once_in_a_loop() {
        let mut events = Vec::new();
        for attempt in 2..=6u64 {
            let t = attempt * 1_000_000;
            events.push(ev(
                t,
                "worker-2",
                "deliver",
                fields! {"event_id" => ID, "attempt" => attempt, "offset" => 0, "partition" => 1},
            ));
            events.push(ev(
                t + 1000,
                "redis",
                "redis",
                fields! {"cmd" => "EVALSHA:acquire", "key" => KEY, "from" => "worker-2",
                "reply" => format!("[\"busy\", {}]", 300_000 - attempt)},
            ));
            events.push(ev(
                t + 2000,
                "worker-2",
                "acquire",
                fields! {"event_id" => ID, "outcome" => "busy"},
            ));
        }
        let diagram = mermaid(&events, None);
        validate(&diagram).unwrap();
        assert_eq!(
            body(&diagram),
            [
                "    loop 5 times, 2.000s to 6.002s",
                "        kafka->>w2: deliver cd0497ab p1/0",
                "        w2->>redis: EVALSHA:acquire huleedu_batch_essays_registered_v1:20ab57db",
                "        redis-->>w2: busy 299998",
                "        Note over w2: cd0497ab busy",
                "    end",
            ]
        );
    }

    #[test]
    fn member_ids_and_nodes_name_participants() {
        assert_eq!(Who::parse("worker-12"), Some(Who::Worker(12)));
        assert_eq!(Who::parse("worker-12-3"), Some(Who::Worker(12)));
        assert_eq!(Who::parse("worker-"), None);
        assert_eq!(Who::parse("worker-1-x"), None);
        assert_eq!(Who::parse("nemesis"), None);
        assert!(Who::Producer < Who::Kafka && Who::Kafka < Who::Worker(1));
        assert!(Who::Worker(2) < Who::Worker(10) && Who::Worker(10) < Who::Redis && Who::Redis < Who::Db);
        assert_eq!(mask_numbers("busy 297659, p0/12 a1b2"), "busy N, p0/N a1b2");
        assert_eq!(
            shorten_ids(&format!("x={ID}/0/1 {OTHER}")),
            "x=cd0497ab/0/1 1b4085db"
        );
    }

    #[test]
    fn a_real_run_renders_a_valid_diagram() {
        let config = crate::scenario::load("gc-pause-v2").unwrap();
        let run = crate::run::run(config.seed, &config);
        let diagram = mermaid(&run.events, None);
        validate(&diagram).unwrap_or_else(|e| panic!("{e}\n{diagram}"));
        assert!(diagram.len() < RENDER_CHARS_MAX, "{} characters", diagram.len());
        for participant in [
            "producer",
            "kafka",
            "w1 as worker-1",
            "w2 as worker-2",
            "redis",
            "db",
        ] {
            assert!(diagram.contains(&format!("\n    participant {participant}\n")));
        }
        assert!(
            diagram.contains("\n    loop "),
            "the busy retries repeat:\n{diagram}"
        );
        let applied = run.events.iter().find(|e| e.kind == "effect_applied").unwrap();
        let id = applied.str("event_id").unwrap();
        let focused = mermaid(&run.events, Some(&id[..8]));
        validate(&focused).unwrap_or_else(|e| panic!("{e}\n{focused}"));
        assert!(focused.contains(&format!("focus on event {id}")));
    }

    #[test]
    fn every_scenario_renders_a_valid_diagram_and_markdown_warns_when_github_would_not_draw_it() {
        for (name, _) in crate::scenario::EMBEDDED {
            let config = crate::scenario::load(name).unwrap();
            let run = crate::run::run(config.seed, &config);
            let diagram = mermaid(&run.events, None);
            validate(&diagram).unwrap_or_else(|e| panic!("{name}: {e}"));
            let md = mermaid_markdown(&run.events, None, name);
            assert_eq!(
                md.contains("GitHub draws at most"),
                diagram.chars().count() > RENDER_CHARS_MAX,
                "{name}"
            );
        }
    }
}
