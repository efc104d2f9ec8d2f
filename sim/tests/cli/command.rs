//! The command line as users meet it: the summary, exit codes, bad input, the `key` command,
//! and a panic inside a node reported as a crash.

use crate::{branches, sim_in, Ran};
use sha2::Digest;
use sim::internal::run::{self, Verdict};
use sim::internal::scenario::config::SimConfig;

fn sim(args: &[&str], stdin: &[u8]) -> (i32, String) {
    let ran = sim_in(None, args, stdin);
    (ran.code, ran.text())
}

/// A run starts with the seed, the scenario, its description and the knobs the command line
/// changed: three lines, not every knob (a sweep's and a CI shard's log would repeat them all);
/// `-v` prints every knob.
#[test]
fn a_run_prints_the_seed_scenario_and_overrides_then_the_summary() {
    let (code, out) = sim(&["--seed", "42"], b"");
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "SEED=42 scenario=default");
    assert_eq!(
        lines[1],
        format!("description: {}", SimConfig::default().description)
    );
    assert!(lines[2].starts_with("overrides: none"), "{out}");
    assert!(
        lines[3].starts_with("verdict="),
        "no knob before the summary: {out}"
    );
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
    let (code, out) = sim(&["--seed", "42", "-v"], b"");
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    for knob in SimConfig::default().knobs() {
        assert!(lines.contains(&knob.as_str()), "-v: knob {knob} not printed");
    }
}

/// The knobs the command line changes are named first, and the description written for the
/// scenario's file says it was overridden rather than claim "fenced protocol" for a v2 run;
/// a saved scenario keeps that description, and the trace's first line holds every knob.
#[test]
fn overrides_are_named_and_the_description_does_not_contradict_them() {
    let dir = std::env::temp_dir().join(format!("sim-overrides-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (saved, trace) = (dir.join("saved.toml"), dir.join("t.jsonl"));
    let (saved, trace) = (saved.to_str().unwrap(), trace.to_str().unwrap());
    let (_, out) = sim(
        &[
            "--seed",
            "3",
            "--protocol",
            "v2",
            "--save-scenario",
            saved,
            "--trace",
            trace,
        ],
        b"",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "SEED=3 scenario=default", "{out}");
    let description = SimConfig::default().description;
    assert!(description.contains("fenced protocol"), "{description}");
    assert_eq!(
        lines[1],
        format!("description: {description} (overridden: protocol=v2)")
    );
    assert!(lines[2].starts_with("overrides: protocol=v2 ("), "{out}");
    let text = std::fs::read_to_string(saved).unwrap();
    let config = sim::internal::scenario::parse(&text, "saved.toml").unwrap();
    assert!(
        config.description.ends_with("(overridden: protocol=v2)"),
        "{text}"
    );
    let first = std::fs::read_to_string(trace).unwrap();
    let first: serde_json::Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    assert_eq!(first["kind"], "config");
    assert_eq!(first["seed"], 3);
    assert_eq!(first["config"]["protocol"], "v2");
    // Every knob of the run: the default's, but for the override. Not the description, which
    // is prose (reading the trace's config fills in the default's).
    assert!(first["config"].get("description").is_none(), "{first}");
    let run = SimConfig {
        protocol: sim::internal::scenario::config::ProtocolKind::V2,
        ..SimConfig::default()
    };
    assert_eq!(
        serde_json::from_value::<SimConfig>(first["config"].clone()).unwrap(),
        run
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_arguments_exit_with_2_and_say_what_is_wrong() {
    for (args, says) in [
        (vec!["--seed", "x"], "invalid value 'x'"),
        (vec!["--protocol", "v3"], "possible values: v2, fenced, python-v2"),
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

/// `sim key` against `scripts/v2_keys.py` (our model of the Python decorator, written from the
/// protocol page) on messages with partial headers, where the two paths mix: the key and every
/// record field agree, and a message v2 cannot key is refused with exit 2.
#[test]
fn key_agrees_with_the_v2_rules_on_partial_headers() {
    let body =
        br#"{"event_id": "body-id", "event_type": "body.type.v1", "correlation_id": "c", "data": {"n": 1}}"#;
    let cases: Vec<(Vec<&str>, &[u8])> = vec![
        (vec!["event_id=header-id"], body),
        (vec!["event_type=header.type.v1"], body),
        (vec!["event_id=header-id", "trace_id=t", "source_service=s"], body),
        (vec!["event_type=header.type.v1", "trace_id=t"], body),
        (vec!["event_id=body-id", "event_type="], body),
        (vec!["event_id=header-id"], br#"{"event_type": "", "data": 1}"#),
        (
            vec!["event_id=header-id"],
            br#"{"source_service": null, "data": [1]}"#,
        ),
        (vec![], br#"{"event_type": null, "data": 1}"#),
        (vec!["event_id=h"], b"[1, 2]"),
    ];
    let mut input = String::new();
    for (headers, value) in &cases {
        let headers: Vec<String> = headers
            .iter()
            .map(|h| {
                let (n, v) = h.split_once('=').unwrap();
                format!("[\"{n}\", \"{}\"]", branches::base64(v.as_bytes()))
            })
            .collect();
        input.push_str(&format!(
            "{{\"prefix\": \"huleedu:idempotency:v2\", \"service\": \"svc\", \"headers\": [{}], \"value_b64\": \"{}\"}}\n",
            headers.join(", "),
            branches::base64(value)
        ));
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/v2_keys.py");
    let Some(model) = python_lines(script, &input) else {
        return;
    };
    assert_eq!(model.len(), cases.len());
    for ((headers, value), model) in cases.iter().zip(&model) {
        let mut args = vec!["key", "--service", "svc"];
        for h in headers {
            args.extend(["--header", h]);
        }
        let (code, out) = sim(&args, value);
        if let Some(kind) = model.strip_prefix("ERR ") {
            assert_eq!(code, 2, "{headers:?}: {out}");
            assert!(
                out.contains(kind) && out.contains("without idempotency"),
                "{headers:?}: {out}"
            );
            continue;
        }
        assert_eq!(code, 0, "{headers:?}: {out}");
        let model = idempotency::pyjson::loads(model.strip_prefix("OK ").unwrap().as_bytes()).unwrap();
        let idempotency::pyjson::PyValue::List(fields) = model else {
            panic!()
        };
        let json = |v: &idempotency::pyjson::PyValue| idempotency::pyjson::dumps(v, false);
        let key = fields[0].as_str().unwrap().to_string_lossless().unwrap();
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some(key.as_str()), "{headers:?}");
        let detail = lines.next().unwrap();
        for (name, v) in [
            ("event_id", &fields[2]),
            ("correlation_id", &fields[3]),
            ("source_service", &fields[4]),
        ] {
            assert!(
                detail.contains(&format!("{name}={}", json(v))),
                "{headers:?}: {detail}"
            );
        }
    }
    // One by hand: an event_id header alone hashes the body (its data and its own id).
    let (_, out) = sim(
        &["key", "--service", "svc", "--header", "event_id=header-id"],
        body,
    );
    let x = r#"{"data": {"n": 1}, "event_id": "body-id"}"#;
    let hash: String = sha2::Sha256::digest(x.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        out.lines().next(),
        Some(format!("huleedu:idempotency:v2:svc:body_type_v1:{hash}").as_str())
    );
}

/// Runs a model script on `input`: its output lines (`None`, SKIPPED, without python3 unless
/// `CI=true`).
fn python_lines(script: &str, input: &str) -> Option<Vec<String>> {
    let out = branches::run_python(
        &[script],
        input.as_bytes().to_vec(),
        "sim key against the v2 model",
    )?;
    Some(
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect(),
    )
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
    let r = run::run(9, &config);
    match &r.verdict {
        Verdict::Crash(msg) => assert!(msg.contains("self-test panic"), "{msg}"),
        other => panic!("expected a crash, got {other:?}"),
    }
    assert_eq!(r.verdict.exit_code(), 5);
    assert_eq!(r.seed, 9);
    assert!(!r.events.is_empty(), "the history up to the panic is kept");
    assert!(r.notes.is_empty());
}

#[test]
fn a_run_that_cannot_finish_is_a_liveness_verdict() {
    let tiny = SimConfig {
        steps_max: 2_000,
        ..SimConfig::default()
    };
    let r = run::run(1, &tiny);
    assert_eq!(r.verdict.exit_code(), 4, "{:?}", r.verdict);
    assert_eq!(r.verdict.violations()[0].kind, "step_limit");

    // Workers that never get Redis (fail_closed, every command fails) cannot converge.
    let mut stuck = SimConfig {
        liveness_s_max: 60,
        on_redis_failure: sim::internal::scenario::config::FailurePolicyKind::FailClosed,
        ..SimConfig::default()
    };
    stuck.faults.random = false;
    stuck.redis_timeout_ms = 1;
    stuck.latency_ms_min = 5;
    let r = run::run(1, &stuck);
    assert_eq!(r.verdict.exit_code(), 4, "{:?}", r.verdict);
    assert!(r
        .verdict
        .violations()
        .iter()
        .all(|v| v.kind == "lost_event" || v.kind == "lost"));
}

#[test]
fn bench_reports_every_figure_and_writes_them_as_json() {
    let json = std::env::temp_dir().join(format!("sim-bench-{}.json", std::process::id()));
    let json = json.to_str().expect("a UTF-8 temp path");
    let (code, out) = sim(
        &[
            "bench",
            "--count",
            "2",
            "--jobs",
            "2",
            "--rss-seeds",
            "3",
            "--scale-events",
            "10,30",
            "--scenario",
            "duplicate-detection",
            "--json",
            json,
        ],
        b"",
    );
    assert_eq!(code, 0, "{out}");
    for (starts, says) in [
        (
            "BENCH scenario=duplicate-detection seeds=0..2 jobs=2",
            "rss_seeds=3",
        ),
        ("seeds/s: ", "with 2 jobs"),
        ("floor: ", "harness/floor per seed: median"),
        ("ttl-lifecycle: ", "virtual s per wall s"),
        ("events=10: ", "µs per event"),
        ("events=30: ", "µs per event"),
        ("scale: 30 events cost ", "what 10 cost"),
        ("peak rss: ", "after 3 seeds"),
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(starts) && l.contains(says)),
            "no line {starts}...{says} in\n{out}"
        );
    }
    // Counted in instructions where callgrind can count (a release build with valgrind), else
    // said why not.
    let instructions = out
        .lines()
        .find_map(|l| l.strip_prefix("scale in instructions: "))
        .expect("a scale line in instructions");
    assert!(
        instructions.starts_with("30 events cost ") || instructions.starts_with("unavailable ("),
        "{instructions}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).expect("the JSON file")).expect("JSON");
    std::fs::remove_file(json).ok();
    assert!(report["scale_instructions"].is_object(), "{report:#}");
    for pointer in [
        "/seeds_per_s/jobs_1",
        "/seeds_per_s/jobs_all",
        "/floor/rpc_seeds_per_s",
        "/floor/sleeps_seeds_per_s",
        "/floor/datagrams_seeds_per_s",
        "/floor/harness_over_floor_median",
        "/floor/harness_over_floor_max",
        "/ttl_lifecycle/virtual_s_per_wall_s",
        "/scale/largest_over_smallest",
        "/scale/runs/1/us_per_event",
        "/per_seed/round_trips",
    ] {
        let v = report.pointer(pointer).and_then(serde_json::Value::as_f64);
        assert!(v.is_some_and(|v| v > 0.0), "{pointer} = {v:?} in {report:#}");
    }
    assert_eq!(report["scenario"], "duplicate-detection");
    assert_eq!(report["scale"]["runs"][0]["events"], 10);
    assert!(
        report["peak_rss_kib"]["after_all"].as_u64().is_some(),
        "{report:#}"
    );
}

/// A scenario whose expectation holds exits 0, in a run and in a sweep; one whose expected
/// violation does not appear exits 7.
#[test]
fn exit_codes_follow_the_scenarios_expectation() {
    let (code, out) = sim(&["--scenario", "gc-pause-v2"], b"");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("(as expected)"), "{out}");
    let (code, out) = sim(&["--scenario", "gc-pause-v2", "sweep", "--count", "3"], b"");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("sweep: 3 passed, 0 failed"), "{out}");
    // A crash before confirm on a unique database: the duplicate it expects cannot happen.
    let (code, out) = sim(
        &["--scenario", "async-confirm-crash-plain", "--database", "unique"],
        b"",
    );
    assert_eq!(code, 7, "{out}");
    assert!(out.contains("NOT as expected"), "{out}");
    assert!(out.lines().last().unwrap().starts_with("reproduce: "), "{out}");
}

/// Flags a command would ignore are rejected; sweeps of no seeds or past the last seed are
/// errors; output paths and `--focus` are checked before the run; errors go to stderr.
#[test]
fn flags_that_do_not_apply_and_bad_outputs_are_refused_before_running() {
    for (args, says) in [
        (vec!["--seed", "5", "sweep"], "does not take --seed"),
        (vec!["--mermaid", "x.md", "sweep"], "does not take --mermaid"),
        (
            vec!["--check-determinism", "bench"],
            "does not take --check-determinism",
        ),
        (vec!["sweep", "--count", "0"], "--count must be at least 1"),
        (
            vec!["sweep", "--from", "18446744073709551615", "--count", "2"],
            "past the last seed",
        ),
        (
            vec!["--trace", "/nonexistent/dir/t.jsonl"],
            "cannot write /nonexistent/dir/t.jsonl",
        ),
        (
            vec!["--mermaid", "/nonexistent/m.md"],
            "cannot write /nonexistent/m.md",
        ),
        (
            vec!["--mermaid", "/dev/null", "--focus", "zzzz"],
            "matches no event",
        ),
    ] {
        let Ran { code, stdout, stderr } = sim_in(None, &args, b"");
        assert_eq!(code, 2, "{args:?}: {stdout}{stderr}");
        assert!(stderr.contains(says), "{args:?}: stderr {stderr:?}");
        assert!(!stdout.contains("verdict="), "{args:?}: nothing ran: {stdout}");
    }
}

/// `--version` names the commit the binary was built from.
#[test]
fn version_names_the_commit() {
    let (code, out) = sim(&["--version"], b"");
    assert_eq!(code, 0, "{out}");
    let line = out.lines().next().unwrap();
    let commit = line
        .strip_prefix(concat!("sim ", env!("CARGO_PKG_VERSION"), " (commit "))
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{line}"));
    let hex = commit.trim_end_matches("-dirty");
    assert!(
        commit == "unknown" || (hex.len() >= 7 && hex.bytes().all(|b| b.is_ascii_hexdigit())),
        "{line}"
    );
}

#[test]
fn a_saved_scenario_replays_the_run_it_was_saved_from() {
    let dir = std::env::temp_dir().join(format!("sim-save-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("seed3.toml");
    let file = file.to_str().unwrap();
    let (code, first) = sim(
        &[
            "--seed",
            "3",
            "--protocol",
            "v2",
            "--database",
            "plain",
            "--save-scenario",
            file,
        ],
        b"",
    );
    let saved = std::fs::read_to_string(file).unwrap();
    assert!(
        saved.contains("[[schedule]]") && saved.contains("random = false"),
        "{saved}"
    );
    let (again_code, again) = sim(&["--scenario", file], b"");
    assert_eq!(code, again_code, "{first}\n{again}");
    // The summary is the same but for the trace's hash (who asked for each fault differs) and
    // the wall time.
    let summary = |out: &str| {
        let line = out
            .lines()
            .find(|l| l.starts_with("verdict="))
            .unwrap()
            .to_owned();
        line.split(' ')
            .filter(|w| !w.starts_with("trace_sha256=") && !w.starts_with("wall_ms="))
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(summary(&first), summary(&again));
    assert!(summary(&first).contains("faults="), "{first}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `-v` numbers the trace's lines as violations name them (`#N`, the JSONL's 0-based line):
/// the line `#N` is the event the violation's "first seen" shows.
#[test]
fn verbose_lines_are_numbered_as_violations_name_them() {
    let (code, out) = sim(&["--scenario", "gc-pause-v2", "-v"], b"");
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    let mut checked = 0;
    for (i, line) in lines.iter().enumerate() {
        let Some(n) = line
            .strip_prefix("violation: ")
            .and_then(|l| l.rsplit_once("(trace event #"))
            .and_then(|(_, n)| n.strip_suffix(')'))
        else {
            continue;
        };
        let seen = lines[i + 1].trim().strip_prefix("first seen: ").unwrap();
        let numbered = lines
            .iter()
            .find(|l| {
                l.strip_prefix('#')
                    .and_then(|r| r.split_once(' '))
                    .is_some_and(|(k, _)| k == n)
            })
            .unwrap_or_else(|| panic!("no line #{n}:\n{out}"));
        assert_eq!(numbered.split_once(' ').unwrap().1.trim(), seen, "#{n}");
        checked += 1;
    }
    assert_eq!(checked, 2, "{out}");
    assert!(
        lines.iter().any(|l| l.starts_with("#0 ") && l.contains("config")),
        "{out}"
    );
}

/// A failing run prints the command of its focused diagram next to the one that reproduces
/// it, and that command draws the violation's event.
#[test]
fn a_failure_prints_its_focused_diagram_command() {
    let (code, out) = sim(&["--seed", "7", "--protocol", "v2", "--database", "plain"], b"");
    assert_eq!(code, 3, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    let n = lines.len();
    assert!(lines[n - 1].starts_with("reproduce: "), "{out}");
    let diagram = lines[n - 2]
        .strip_prefix("diagram: cargo run -p sim -- ")
        .unwrap_or_else(|| panic!("{out}"));
    let focus = diagram.rsplit(' ').next().unwrap();
    let violation = lines.iter().find(|l| l.starts_with("violation: ")).unwrap();
    assert!(
        violation.contains(&format!("event={focus}")),
        "{violation} / {focus}"
    );
    let file = std::env::temp_dir().join(format!("sim-focus-{}.md", std::process::id()));
    let args: Vec<&str> = diagram.split(' ').collect();
    let args: Vec<&str> = args
        .iter()
        .map(|a| {
            if *a == "failure.md" {
                file.to_str().unwrap()
            } else {
                a
            }
        })
        .collect();
    let (code, _) = sim(&args, b"");
    assert_eq!(code, 3);
    let md = std::fs::read_to_string(&file).unwrap();
    assert!(
        md.contains(&format!("focus {focus}")) || md.contains(focus),
        "{md}"
    );
    std::fs::remove_file(&file).unwrap();
}

/// Past 20 violations a run counts the rest and says where to see them all, truthfully: `-v`
/// prints every one (the trace holds events, not verdicts).
#[test]
fn the_hint_for_more_violations_is_true() {
    let dir = std::env::temp_dir().join(format!("sim-many-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("many.toml");
    let canary = sim::internal::scenario::EMBEDDED
        .iter()
        .find(|(n, _)| *n == "canary")
        .unwrap()
        .1;
    std::fs::write(&file, canary.replace("events = 5", "events = 30")).unwrap();
    let file = file.to_str().unwrap();
    let (_, out) = sim(&["--scenario", file], b"");
    let count = |out: &str| out.lines().filter(|l| l.starts_with("violation: ")).count();
    assert_eq!(count(&out), sim::internal::cli::PRINTED_MAX, "{out}");
    let more = out.lines().find(|l| l.starts_with("... and ")).unwrap();
    assert!(more.contains("-v prints every one"), "{more}");
    assert!(!more.contains("trace"), "{more}");
    let total: usize = more
        .split(" in all")
        .next()
        .and_then(|l| l.rsplit('(').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    let (_, all) = sim(&["--scenario", file, "-v"], b"");
    assert_eq!(count(&all), total);
    assert!(!all.contains("... and "), "{all}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The flags' bounds: jobs (never more threads than seeds), bench's count, unsigned seeds; an
/// unwritable JUnit file is refused before any seed runs, as the JSON report is.
#[test]
fn jobs_counts_seeds_and_outputs_are_bounded_before_running() {
    for (args, says) in [
        (
            vec!["sweep", "--jobs", "100000", "--count", "1"],
            "not in 1..=256",
        ),
        (vec!["sweep", "--jobs", "0"], "not in 1..=256"),
        (vec!["bench", "--count", "0"], "'0' for '--count"),
        (vec!["bench", "--jobs", "100000"], "not in 1..=256"),
        (vec!["--seed", "-1"], "seeds are unsigned"),
        (vec!["sweep", "--from", "-5"], "seeds are unsigned"),
        (
            vec!["sweep", "--count", "1", "--junit", "/nonexistent/dir/r.xml"],
            "cannot write /nonexistent/dir/r.xml",
        ),
        (
            vec!["--scenario", "canary", "sweep", "--scenario", "default"],
            "given both before and after `sweep`",
        ),
    ] {
        let Ran { code, stdout, stderr } = sim_in(None, &args, b"");
        assert_eq!(code, 2, "{args:?}: {stdout}{stderr}");
        assert!(stderr.contains(says), "{args:?}: stderr {stderr:?}");
        assert!(
            !stdout.contains("sweep: seeds="),
            "{args:?}: nothing ran: {stdout}"
        );
    }
    // The most jobs, for one seed: one thread.
    let (code, out) = sim(&["sweep", "--jobs", "256", "--count", "1"], b"");
    assert_eq!(code, 0, "{out}");
    assert!(out.lines().next().unwrap().contains(" jobs=1 "), "{out}");
}

/// Each command's help lists its own flags: `merge` and `replay` none of a run's, `sweep` the
/// run flags that apply to its seeds and which do not.
#[test]
fn each_commands_help_lists_its_own_flags() {
    for command in ["merge", "replay", "key", "scenarios"] {
        let (code, out) = sim(&[command, "--help"], b"");
        assert_eq!(code, 0, "{out}");
        for flag in ["--scenario", "--protocol", "--database", "--check-determinism"] {
            assert!(!out.contains(flag), "`{command} --help` lists {flag}:\n{out}");
        }
    }
    let (code, out) = sim(&["sweep", "--help"], b"");
    assert_eq!(code, 0, "{out}");
    for says in [
        "--scenario, --protocol, --database and --check-determinism",
        "--seed, --trace, --mermaid, --focus, --save-scenario, --save-corpus and -v do not apply",
    ] {
        assert!(out.contains(says), "sweep --help: {says}\n{out}");
    }
    // The flags still work before the subcommand, as scripts/sweep-all gives them.
    let (code, out) = sim(&["--scenario", "gc-pause-v2", "sweep", "--count", "1"], b"");
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("SWEEP scenario=gc-pause-v2 "), "{out}");
}

/// Under each repeated effect a run and a sweep print the mechanism that let the second
/// handler in: the issue's example, v2 seed 0 on a plain database (a database timeout whose
/// write landed after the redelivery took the lock).
#[test]
fn a_repeated_effect_is_followed_by_its_why() {
    let flags = ["--protocol", "v2", "--database", "plain"];
    let (code, out) = sim(&[&["--seed", "0"][..], &flags].concat(), b"");
    assert_ne!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("violation: duplicate_effect"))
        .unwrap_or_else(|| panic!("{out}"));
    let why = lines[at + 2];
    assert!(
        why.starts_with("    why: db_timeout_late_write: worker-2's call 5 timed out on the database")
            && why.contains("call 6 took the lock"),
        "{out}"
    );
    let (_, swept) = sim(&[&["sweep", "--seeds", "0..1"][..], &flags].concat(), b"");
    assert!(swept.contains("\n    why: db_timeout_late_write: "), "{swept}");
}

/// A scenario file whose path has a space and a quote: the failure's reproduce line quotes it
/// so a shell reads it back as one argument, and that line, run, fails the same way.
#[test]
fn a_reproduce_line_quotes_a_scenario_path_a_shell_would_split() {
    let dir = std::env::temp_dir().join(format!("sim reproduce 'quoted' {}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let path = dir.join("my canary.toml");
    let canary = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/canary.toml"))
        .expect("the canary scenario");
    std::fs::write(
        &path,
        canary.replace("expect = \"duplicate_effect\"", "expect = \"pass\""),
    )
    .expect("the scenario file");
    let path = path.to_str().expect("a UTF-8 path");
    let (code, text) = sim(&["--seed", "1", "--scenario", path], b"");
    assert_eq!(code, 3, "{text}");
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("reproduce: cargo run -p sim -- "))
        .expect("a reproduce line");
    // The words a POSIX shell makes of it (sh -c 'printf "%s\n" ARGS').
    let words = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("printf '%s\\n' {line}"))
        .output()
        .expect("sh");
    let words: Vec<String> = String::from_utf8_lossy(&words.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(words, ["--seed", "1", "--scenario", path], "{line}");
    let args: Vec<&str> = words.iter().map(String::as_str).collect();
    let (again, _) = sim(&args, b"");
    assert_eq!(again, 3);
    let _ = std::fs::remove_dir_all(&dir);
}
