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
//!   so is the phase change. The checker's verdict (from the run's result, not the trace: the
//!   history does not hold its own verdict) closes the diagram, one note per violation and
//!   per note (at most 10 of each). `effect_applied` adds nothing to `effect_attempt` and is left out;
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
//!
//! # The code
//! The events a focus keeps are chosen in `focus.rs`; what each event shows (arrows and notes
//! between participants) in `steps.rs`; the steps become Mermaid lines, repeats folded into
//! loops, in `lines.rs`; the shortening and escaping of text all of them share is `text.rs`.
//! This file puts them together.

mod focus;
mod lines;
mod steps;
#[cfg(test)]
mod tests;
mod text;

use crate::run::RunResult;
use crate::trace::Event;
use focus::select;
use lines::{collapse, line, Line};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use steps::{steps_of, verdict, Over, Step, Who};

/// The longest diagram GitHub draws, in characters (Mermaid's default `maxTextSize`).
pub const RENDER_CHARS_MAX: usize = 50_000;

/// The shortest event id prefix a focus may be.
pub const FOCUS_CHARS_MIN: usize = 4;

/// The participants every diagram declares.
const FIXED: [Who; 4] = [Who::Producer, Who::Kafka, Who::Redis, Who::Db];

/// How a run ended, for the diagram's closing notes: the verdict at the run's end, its
/// violations and notes as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ending {
    /// The virtual time of the run's end (µs).
    pub t_us: u64,
    /// The verdict's name.
    pub verdict: String,
    /// The violations.
    pub violations: Vec<String>,
    /// The notes.
    pub notes: Vec<String>,
}

impl Ending {
    /// How `result` ended.
    pub fn of(result: &RunResult) -> Ending {
        Ending {
            t_us: result.virtual_us,
            verdict: result.verdict.name().to_owned(),
            violations: result
                .verdict
                .violations()
                .iter()
                .map(|v| v.to_string())
                .collect(),
            notes: result.notes.iter().map(|v| v.to_string()).collect(),
        }
    }
}

/// The sequence diagram of `events` (Mermaid source, ending in a newline), closed by how the
/// run ended if `ending` says; with `focus`, only what is about the event with that id or id
/// prefix (see the module's doc).
pub fn mermaid(events: &[Event], ending: Option<&Ending>, focus: Option<&str>) -> String {
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
    if let Some(end) = ending {
        let closing = verdict(end.t_us, &end.verdict, &end.violations, &end.notes);
        steps.extend(closing.into_iter().map(|step| (end.t_us, step)));
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
pub fn mermaid_markdown(
    events: &[Event],
    ending: Option<&Ending>,
    focus: Option<&str>,
    title: &str,
) -> String {
    let diagram = mermaid(events, ending, focus);
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
