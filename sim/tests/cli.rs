//! The command line as users meet it: the summary, exit codes, bad input, the `key` command,
//! and a panic inside a node reported as a crash.

use sim::config::SimConfig;
use sim::world::{self, Verdict};
use std::io::Write;
use std::process::{Command, Stdio};

fn sim(args: &[&str], stdin: &[u8]) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The program may exit without reading its input (a bad argument): a broken pipe is fine.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().expect("exited"), text)
}

#[test]
fn a_run_prints_the_seed_then_every_knob_then_the_summary() {
    let (code, out) = sim(&["--seed", "42"], b"");
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "SEED=42");
    for knob in SimConfig::default().knobs() {
        assert!(lines.contains(&knob.as_str()), "knob {knob} not printed");
    }
    let summary = lines
        .iter()
        .find(|l| l.starts_with("verdict="))
        .expect("a summary line");
    for part in [
        "verdict=pass",
        "events=100",
        "produced=100",
        "applied=100",
        "duplicates=0",
        "faults=",
        "virtual_s=",
        "wall_ms=",
        "trace_sha256=",
    ] {
        assert!(summary.contains(part), "{summary} lacks {part}");
    }
}

#[test]
fn bad_arguments_exit_with_2_and_say_what_is_wrong() {
    for (args, says) in [
        (vec!["--seed", "x"], "invalid value 'x'"),
        (vec!["--protocol", "v3"], "possible values: v2, fenced"),
        (
            vec!["--database", "mongo"],
            "possible values: plain, unique, fenced",
        ),
        (vec!["--frobnicate"], "unexpected argument"),
    ] {
        let (code, out) = sim(&args, b"");
        assert_eq!(code, 2, "{args:?}: {out}");
        assert!(out.contains(says), "{args:?}: {out}");
    }
}

#[test]
fn key_prints_the_key_alone_on_the_first_line_then_the_path() {
    let body =
        br#"{"event_id": "e-1", "event_type": "huleedu.essay.spellcheck.requested.v1", "data": {"a": 1}}"#;
    let (code, out) = sim(&["key", "--service", "svc"], body);
    assert_eq!(code, 0, "{out}");
    let mut lines = out.lines();
    let msg = idempotency::Message::new("t", body.to_vec());
    let expected = idempotency::key::derive_key("huleedu:idempotency:v2", "svc", &msg)
        .unwrap()
        .key;
    assert_eq!(lines.next(), Some(expected.as_str()));
    assert!(lines
        .next()
        .unwrap()
        .starts_with("path=body event_type=huleedu.essay.spellcheck.requested.v1"));

    let (code, out) = sim(
        &[
            "key",
            "--service",
            "svc",
            "--prefix",
            "p",
            "--header",
            "event_id=e-1",
            "--header",
            "event_type=a.b",
            "-",
        ],
        b"garbage",
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.lines().next().unwrap().starts_with("p:svc:a_b:"), "{out}");
    assert!(out.contains("path=header"));
}

#[test]
fn key_refuses_what_it_cannot_key_with_exit_2_and_the_reason() {
    for (args, stdin, says) in [
        (vec!["key", "--service", "svc"], &b"not json"[..], "body_not_json"),
        (
            vec!["key", "--service", "svc"],
            &br#"{"event_id": "e"}"#[..],
            "data_missing",
        ),
        (vec!["key", "--service", "a:b"], &b"{}"[..], "service_name"),
        (
            vec!["key", "--service", "svc", "--header", "novalue"],
            &b"{}"[..],
            "NAME=VALUE",
        ),
        (
            vec!["key", "--service", "svc", "/no/such/file"],
            &b""[..],
            "cannot read /no/such/file",
        ),
    ] {
        let (code, out) = sim(&args, stdin);
        assert_eq!(code, 2, "{args:?}: {out}");
        assert!(out.contains(says), "{args:?}: {out}");
    }
}

#[test]
fn a_panic_inside_a_node_is_a_crash_verdict_with_the_seed() {
    let config = SimConfig {
        panic_at_ms: 1_500,
        ..SimConfig::default()
    };
    let r = world::run(9, &config);
    match &r.verdict {
        Verdict::Crash(msg) => assert!(msg.contains("self-test panic"), "{msg}"),
        other => panic!("expected a crash, got {other:?}"),
    }
    assert_eq!(r.verdict.exit_code(), 5);
    assert_eq!(r.seed, 9);
    assert!(r
        .events
        .last()
        .is_some_and(|e| e.kind == "verdict" && e.str("verdict") == Some("crash")));
}

#[test]
fn a_run_that_cannot_finish_is_a_liveness_verdict() {
    let tiny = SimConfig {
        steps_max: 2_000,
        ..SimConfig::default()
    };
    let r = world::run(1, &tiny);
    assert_eq!(r.verdict.exit_code(), 4, "{:?}", r.verdict);
    assert_eq!(r.verdict.violations()[0].kind, "step_limit");

    // Workers that never get Redis (fail_closed, every command fails) cannot converge.
    let mut stuck = SimConfig {
        liveness_s_max: 60,
        on_redis_failure: sim::config::FailurePolicyKind::FailClosed,
        ..SimConfig::default()
    };
    stuck.faults.random = false;
    stuck.redis_timeout_ms = 1;
    stuck.latency_ms_min = 5;
    let r = world::run(1, &stuck);
    assert_eq!(r.verdict.exit_code(), 4, "{:?}", r.verdict);
    assert!(r
        .verdict
        .violations()
        .iter()
        .all(|v| v.kind == "lost_event" || v.kind == "lost"));
}

#[test]
fn bench_reports_runs_and_virtual_time_per_second() {
    let (code, out) = sim(
        &["bench", "--count", "2", "--scenario", "duplicate-detection"],
        b"",
    );
    assert_eq!(code, 0, "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("bench: 2 runs in"))
        .expect("a bench line");
    assert!(
        line.contains("runs/s") && line.contains("virtual s per wall s"),
        "{line}"
    );
}
