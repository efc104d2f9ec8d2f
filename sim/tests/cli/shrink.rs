//! `sim shrink` on a known failure: seed 0 of the default scenario under v2 with a plain
//! database (33 faults, ~1,800 trace events) shrinks to a run that fails the same way, with
//! far fewer faults and a far shorter history, and replays identically.

use super::sim_in;

/// A number after `label` on the line that starts with it, as `label A -> B`: (A, B).
fn sizes(out: &str, label: &str) -> (u64, u64) {
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{out}"));
    let (a, b) = line[line.find(label).unwrap() + label.len()..]
        .split_once("->")
        .unwrap();
    let num = |s: &str| s.trim().split(' ').next().unwrap().parse::<u64>().unwrap();
    (num(a), num(b))
}

#[test]
fn shrink_takes_a_v2_failure_to_a_few_faults_that_fail_the_same_way_and_replay() {
    let dir = std::env::temp_dir().join(format!("sim-shrink-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let flags = ["--protocol", "v2", "--database", "plain"];
    let mut args = vec![
        "shrink",
        "--seed",
        "0",
        "--out",
        "s0.toml",
        "--max-runs",
        "120",
        "--mermaid",
        "s0.md",
        "--save-corpus",
        "corpus",
        "--note",
        "one pause of the database",
    ];
    args.extend(flags);
    let ran = sim_in(Some(&dir), &args, b"");
    let out = ran.text();
    assert_eq!(ran.code, 3, "a correctness violation, as the file gives:\n{out}");
    // The fingerprint names the duplicate's mechanism, and the shrunk run keeps it.
    assert!(
        out.contains("fails with: duplicate_effect/db_timeout_late_write"),
        "{out}"
    );
    assert!(
        out.contains("shrunk: still fails with duplicate_effect/db_timeout_late_write"),
        "{out}"
    );
    let (faults, shrunk_faults) = sizes(&out, "faults:  ");
    assert!(faults >= 20 && shrunk_faults <= 3, "{out}");
    let (trace, shrunk_trace) = sizes(&out, "trace events:");
    assert!(shrunk_trace * 10 <= trace, "{out}");
    let (events, shrunk_events) = sizes(&out, "events:  ");
    assert!(events == 100 && shrunk_events < 10, "{out}");
    assert!(out.contains("replayed twice: identical traces"), "{out}");
    assert!(out.contains(": necessary"), "{out}");
    // Which knobs could vary: each tried alone on the result, the next 5 seeds among them.
    let section = out
        .split("could vary (")
        .nth(1)
        .unwrap_or_else(|| panic!("no could vary section in:\n{out}"));
    assert!(section.contains("\n  seed = 0: "), "{out}");
    assert!(
        section.contains(" of 5)") || section.contains(" of 5 tried"),
        "{out}"
    );
    assert!(section.contains("\n  call_timeout_ms = 1000: "), "{out}");
    assert!(section.contains("\n  schedule[0].at_ms = "), "{out}");
    // The diagram, focused on the violating event, and the corpus entry.
    let diagram = std::fs::read_to_string(dir.join("s0.md")).unwrap();
    assert!(diagram.contains("```mermaid"), "{diagram}");
    assert!(out.contains("diagram: s0.md, focused on "), "{out}");
    let focus = out.split("focused on ").nth(1).unwrap().lines().next().unwrap();
    assert!(diagram.contains(focus), "{diagram}");
    let entry = dir.join("corpus/default-seed-0-shrunk-seed0.toml");
    let entry = std::fs::read_to_string(&entry).unwrap_or_else(|e| panic!("{e}:\n{out}"));
    assert!(entry.contains("expect = \"duplicate_effect\""), "{entry}");
    assert!(entry.contains("note = \"one pause of the database\""), "{entry}");
    let replayed = sim_in(Some(&dir), &["replay", "corpus"], b"");
    assert_eq!(replayed.code, 0, "{}", replayed.text());
    // The file: its header says what it shows; it fails the same way, identically twice.
    let text = std::fs::read_to_string(dir.join("s0.toml")).unwrap();
    assert!(
        text.starts_with("# Made by `sim shrink --seed 0 --protocol v2 --database plain`"),
        "{text}"
    );
    assert!(text.contains("\n# could vary ("), "{text}");
    assert!(text.contains("\n#   seed = 0: "), "{text}");
    assert!(
        text.contains("random = false") && text.contains("[[schedule]]"),
        "{text}"
    );
    let replay = || sim_in(Some(&dir), &["--scenario", "s0.toml"], b"");
    let (a, b) = (replay(), replay());
    assert_eq!(a.code, 3, "{}", a.text());
    assert!(a.stdout.contains("violation: duplicate_effect"), "{}", a.text());
    let sha = |out: &str| {
        out.split_whitespace()
            .find(|w| w.starts_with("trace_sha256="))
            .map(str::to_owned)
    };
    assert!(sha(&a.stdout).is_some());
    assert_eq!(sha(&a.stdout), sha(&b.stdout));
    // `--save-scenario` round-trips `keep_events`: the saved file is the same run.
    assert!(text.contains("keep_events = ["), "{text}");
    let saved = sim_in(
        Some(&dir),
        &["--scenario", "s0.toml", "--save-scenario", "s1.toml"],
        b"",
    );
    let again = std::fs::read_to_string(dir.join("s1.toml")).unwrap();
    let keep = |t: &str| {
        t.lines()
            .find(|l| l.starts_with("keep_events"))
            .map(str::to_owned)
    };
    assert_eq!(keep(&again), keep(&text), "{again}");
    assert_eq!(sha(&saved.stdout), sha(&a.stdout));
    assert_eq!(
        sha(&sim_in(Some(&dir), &["--scenario", "s1.toml"], b"").stdout),
        sha(&a.stdout)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A passing seed has nothing to shrink (exit 0, said so); a bad budget is bad usage.
#[test]
fn shrink_says_when_there_is_nothing_to_shrink_and_refuses_a_bad_budget() {
    let dir = std::env::temp_dir().join(format!("sim-shrink-pass-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ran = sim_in(Some(&dir), &["shrink", "--seed", "42"], b"");
    assert_eq!(ran.code, 0, "{}", ran.text());
    assert!(
        ran.stdout.contains("seed 42 passes: nothing to shrink"),
        "{}",
        ran.text()
    );
    assert!(!dir.join("shrunk-default-seed-42.toml").exists());
    let ran = sim_in(Some(&dir), &["shrink", "--seed", "0", "--max-runs", "0"], b"");
    assert_eq!(ran.code, 2, "{}", ran.text());
    assert!(ran.stderr.contains("--max-runs"), "{}", ran.text());
    let ran = sim_in(Some(&dir), &["--seed", "1", "shrink", "--seed", "0"], b"");
    assert_eq!(ran.code, 2, "{}", ran.text());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `sweep --shrink DIR` shrinks the first seed of each distinct failure; the JSON and JUnit
/// reports carry the shrunk scenario and its size next to the seed.
#[test]
fn sweep_shrinks_the_first_seed_of_each_distinct_failure_into_its_reports() {
    let dir = std::env::temp_dir().join(format!("sim-sweep-shrink-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let args = [
        "sweep",
        "--protocol",
        "v2",
        "--database",
        "plain",
        "--from",
        "0",
        "--count",
        "3",
        "--shrink",
        "shrunk",
        "--report",
        "r.json",
        "--junit",
        "r.xml",
    ];
    let ran = sim_in(Some(&dir), &args, b"");
    assert_eq!(ran.code, 3, "{}", ran.text());
    assert!(
        ran.stdout
            .contains("  shrunk: shrunk/shrunk-default-seed-0.toml (33 -> "),
        "{}",
        ran.text()
    );
    let report = std::fs::read_to_string(dir.join("r.json")).unwrap();
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    let failures = report["failures"].as_array().unwrap();
    let first = &failures[0]["shrunk"];
    assert_eq!(first["scenario"], "shrunk/shrunk-default-seed-0.toml", "{report}");
    assert!(first["faults"].as_u64().unwrap() <= 3, "{report}");
    assert!(first["trace_events"].as_u64().unwrap() * 10 <= failures[0]["trace_events"].as_u64().unwrap());
    // The first seed of each distinct failure (its causes: seed 0's duplicate and seed 2's
    // have different mechanisms) is shrunk, and no other.
    let mut seen = std::collections::BTreeSet::new();
    for f in failures {
        let first_of_its_kind = seen.insert(f["causes"].to_string());
        assert_eq!(f.get("shrunk").is_some(), first_of_its_kind, "{report}");
    }
    assert!(seen.len() >= 2, "{report}");
    assert!(dir.join("shrunk/shrunk-default-seed-0.toml").exists());
    let junit = std::fs::read_to_string(dir.join("r.xml")).unwrap();
    assert!(
        junit.contains("shrunk: shrunk/shrunk-default-seed-0.toml ("),
        "{junit}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
