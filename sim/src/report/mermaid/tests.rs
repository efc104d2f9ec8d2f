//! The diagram's tests: a small hand-made trace drawn line for line, focus, escaping, loops,
//! and every embedded scenario's run checked against what code hosts' Mermaid accepts.

use super::steps::Who;
use super::text::{mask_numbers, shorten_ids};
use super::*;
use crate::fault::{Fault, FaultPoint};
use crate::net::topology::NodeName;
use crate::trace::{AcquireOutcome, Typed};
use serde_json::Value;

const ID: &str = "cd0497ab-ac68-7a31-f75d-5ecec21cf229";
const OTHER: &str = "1b4085db-5040-bad7-a33c-b6a5004fcf09";
const KEY: &str = "huleedu:idempotency:v2:sim_worker:huleedu_batch_essays_registered_v1:20ab57db1122";
const OTHER_KEY: &str = "huleedu:idempotency:v2:sim_worker:huleedu_cj_assessment_completed_v1:17418d05aabb";

/// A typed event at `t_us` on `node`.
fn at(t_us: u64, node: &str, t: Typed) -> Event {
    t.event(t_us, node)
}

fn produce(id: &str, partition: u32) -> Typed {
    Typed::Produce {
        event_id: id.into(),
        partition,
        offset: 0,
        producer: "producer".into(),
        sequence: 0,
        retry: false,
    }
}

fn deliver(id: &str, partition: u32, attempt: u32) -> Typed {
    Typed::Deliver {
        topic: "events".into(),
        partition,
        offset: 0,
        event_id: id.into(),
        attempt,
        delivery: attempt,
        call: 1,
        member: "worker-1-1".into(),
        generation: 0,
    }
}

fn redis(from: &str, cmd: &str, key: &str, args: Vec<Value>, reply: &str) -> Typed {
    Typed::Redis {
        from: from.into(),
        cmd: cmd.into(),
        key: key.into(),
        args,
        reply: reply.into(),
        clock_us: 1,
        reply_lost: false,
    }
}

fn acquire(id: &str, outcome: AcquireOutcome) -> Typed {
    Typed::Acquire {
        event_id: id.into(),
        outcome,
        call: 1,
    }
}

fn commit(member: &str, partition: u32, offset: u64) -> Typed {
    Typed::OffsetCommit {
        member: member.into(),
        generation: 0,
        partition,
        offset,
        accepted: true,
        error: None,
    }
}

fn fault(fault: Fault, by: &str, lasts_ms: Option<u64>) -> Typed {
    Typed::Fault {
        fault,
        by: by.into(),
        lasts_ms,
        lost_keys: None,
        point: None,
        event_id: None,
    }
}

fn ending(t_us: u64, verdict: &str, violations: &[&str]) -> Ending {
    Ending {
        t_us,
        verdict: verdict.into(),
        violations: violations.iter().map(|v| v.to_string()).collect(),
        notes: vec![],
    }
}

/// How the small trace ends.
fn passed() -> Ending {
    ending(2_000_000, "pass", &[])
}

/// One event through a worker with v2 locks, a latency fault and a crash fault point (it
/// ends as [`passed`] says).
fn small_trace() -> Vec<Event> {
    let token = 1764315200293614u64;
    let fence = Some(token);
    let acquire_args = vec![
        "huleedu:idempotency:v2:sim_worker:__fence__".into(),
        300000.into(),
        "{\"status\": \"processing\"}".into(),
    ];
    let record = "\"{\\\"status\\\": \\\"processing\\\", \\\"owner\\\": \\\"worker-1#1/0\\\"}\"";
    vec![
        at(1000, "worker-1", Typed::Start { incarnation: 1 }),
        at(192_868, "kafka", produce(ID, 0)),
        at(281_226, "worker-1", deliver(ID, 0, 1)),
        at(
            293_614,
            "redis",
            redis(
                "worker-1",
                "EVALSHA:acquire",
                KEY,
                acquire_args,
                &format!("[\"acquired\", {token}]"),
            ),
        ),
        at(
            297_349,
            "worker-1",
            acquire(
                ID,
                AcquireOutcome::Acquired {
                    fence,
                    key: KEY.into(),
                },
            ),
        ),
        at(
            297_349,
            "worker-1",
            Typed::HandlerStart {
                event_id: ID.into(),
                fence,
                call: 1,
            },
        ),
        at(
            300_000,
            "nemesis",
            fault(Fault::Latency { latency_ms_max: 200 }, "nemesis", Some(1500)),
        ),
        at(
            302_483,
            "db",
            Typed::EffectAttempt {
                event_id: ID.into(),
                worker: "worker-1".into(),
                incarnation: 1,
                call: 1,
                fence,
                result: "applied".into(),
            },
        ),
        at(
            302_483,
            "db",
            Typed::EffectApplied {
                event_id: ID.into(),
                worker: "worker-1".into(),
                incarnation: 1,
                call: 1,
                fence,
            },
        ),
        at(302_494, "redis", redis("worker-1", "GET", KEY, vec![], record)),
        at(
            302_499,
            "worker-1",
            Typed::Confirm {
                event_id: ID.into(),
                result: "confirmed".into(),
                call: 1,
            },
        ),
        at(
            302_499,
            "worker-1",
            Typed::HandlerEnd {
                event_id: ID.into(),
                result: "ok".into(),
                call: 1,
            },
        ),
        at(302_505, "kafka", commit("worker-1", 0, 1)),
        at(
            400_000,
            "nemesis",
            Typed::Fault {
                fault: Fault::Crash {
                    node: Some(NodeName::Worker(1)),
                },
                by: "fault_point".into(),
                lasts_ms: None,
                lost_keys: None,
                point: Some(FaultPoint::BeforeConfirm),
                event_id: Some(ID.into()),
            },
        ),
        at(
            1_800_000,
            "nemesis",
            Typed::Heal {
                heal: "latency".into(),
                node: None,
                peer: None,
            },
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
    producer->>kafka: produce cd0497ab p0/0 seq 0
    kafka->>w1: deliver cd0497ab p0/0
    w1->>redis: EVALSHA:acquire huleedu_batch_essays_registered_v1:20ab57db 300000
    redis-->>w1: acquired 1764315200293614
    Note over w1: cd0497ab acquired (fence 1764315200293614), handler start
    Note over producer,db: 0.300s fault latency (by nemesis, lasts 1500 ms, up to 200 ms)
    w1->>db: effect cd0497ab call 1 fence 1764315200293614 → applied
    w1->>redis: GET huleedu_batch_essays_registered_v1:20ab57db
    redis-->>w1: record(processing, worker-1#35;1/0)
    Note over w1: cd0497ab confirm confirmed, handler end ok
    w1->>kafka: commit p0/1
    Note over w1: 0.400s fault crash (by fault_point, event cd0497ab, point before_confirm)
    Note over producer,db: 1.800s heal latency
    Note over producer,db: 2.000s verdict pass
";
    let diagram = mermaid(&small_trace(), Some(&passed()), None);
    assert_eq!(diagram, expected);
    validate(&diagram).unwrap();
}

#[test]
fn markdown_puts_a_title_over_a_mermaid_fence() {
    let md = mermaid_markdown(&small_trace(), Some(&passed()), None, "gc-pause-v2\nseed 1");
    assert!(md.starts_with("# gc-pause-v2 seed 1\n\n```mermaid\nsequenceDiagram\n"));
    assert!(md.ends_with("    Note over producer,db: 2.000s verdict pass\n```\n"));
    assert!(!md.contains("GitHub draws at most"));
}

#[test]
fn a_focus_keeps_its_event_its_keys_its_commits_and_the_faults() {
    let mut events = small_trace();
    events.extend([
        at(500_000, "kafka", produce(OTHER, 1)),
        at(600_000, "worker-2", deliver(OTHER, 1, 1)),
        at(
            610_000,
            "redis",
            redis("worker-2", "GET", OTHER_KEY, vec![], "nil"),
        ),
        at(
            620_000,
            "worker-2",
            acquire(
                OTHER,
                AcquireOutcome::Acquired {
                    fence: None,
                    key: OTHER_KEY.into(),
                },
            ),
        ),
        at(630_000, "kafka", commit("worker-2-1", 1, 1)),
        // A second commit past the focused record is not shown: the first moved past it.
        at(640_000, "kafka", commit("worker-1", 0, 2)),
        at(
            650_000,
            "nemesis",
            fault(
                Fault::Partition {
                    node: Some(NodeName::Worker(2)),
                    peer: NodeName::Redis,
                },
                "nemesis",
                None,
            ),
        ),
    ]);
    let focused = mermaid(&events, Some(&passed()), Some("CD04"));
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
        "    producer->>kafka: produce cd0497ab p0/0 seq 0",
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
    let whole = mermaid(&events, Some(&passed()), None);
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
        let diagram = mermaid(&events, Some(&passed()), Some(focus));
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
        at(1, "worker-1", deliver(id, 0, 1)),
        at(
            2,
            "redis",
            redis(
                "worker-1",
                "GET",
                "a;b:c#d:e\"f\ng",
                vec![],
                "\"say \\\"hi\\\"; #1\\nbye\"",
            ),
        ),
        at(
            3,
            "worker-1",
            Typed::Unprotected {
                event_id: id.into(),
                reason: "redis error reply: ERR \"x\"; y # z\r\n<script>".into(),
                call: 1,
            },
        ),
        at(
            4,
            "worker-1",
            Typed::Phase {
                phase: "a;b \"q\" #".into(),
            },
        ),
        at(
            5,
            "elsewhere\n;#",
            Typed::Heal {
                heal: "%%{init}%% end".into(),
                node: None,
                peer: None,
            },
        ),
    ];
    let end = ending(6, "correctness", &["lost_event event=x \"y\"; (trace event #3)"]);
    let diagram = mermaid(&events, Some(&end), None);
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
    for attempt in 2..=6u32 {
        let t = u64::from(attempt) * 1_000_000;
        events.push(at(t, "worker-2", deliver(ID, 1, attempt)));
        events.push(at(
            t + 1000,
            "redis",
            redis(
                "worker-2",
                "EVALSHA:acquire",
                KEY,
                vec![],
                &format!("[\"busy\", {}]", 300_000 - attempt),
            ),
        ));
        events.push(at(t + 2000, "worker-2", acquire(ID, AcquireOutcome::Busy)));
    }
    let diagram = mermaid(&events, None, None);
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
    let diagram = mermaid(&run.events, Some(&Ending::of(&run)), None);
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
    let id = run
        .events
        .iter()
        .find_map(|e| match e.typed() {
            Typed::EffectApplied { event_id, .. } => Some(event_id),
            _ => None,
        })
        .unwrap();
    let focused = mermaid(&run.events, Some(&Ending::of(&run)), Some(&id[..8]));
    validate(&focused).unwrap_or_else(|e| panic!("{e}\n{focused}"));
    assert!(focused.contains(&format!("focus on event {id}")));
}

#[test]
fn every_scenario_renders_a_valid_diagram_and_markdown_warns_when_github_would_not_draw_it() {
    for (name, _) in crate::scenario::EMBEDDED {
        let config = crate::scenario::load(name).unwrap();
        let run = crate::run::run(config.seed, &config);
        let ending = Ending::of(&run);
        let diagram = mermaid(&run.events, Some(&ending), None);
        validate(&diagram).unwrap_or_else(|e| panic!("{name}: {e}"));
        let md = mermaid_markdown(&run.events, Some(&ending), None, name);
        assert_eq!(
            md.contains("GitHub draws at most"),
            diagram.chars().count() > RENDER_CHARS_MAX,
            "{name}"
        );
    }
}
