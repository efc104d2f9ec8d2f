//! Sweep reports as CI uses them: a sweep killed midway has every failure it printed in its
//! report, the merge of four shard reports is the unsharded sweep's report, the JUnit file is
//! well-formed JUnit XML that lists the failures, and `merge` refuses what is not one sweep.
//!
//! The sweeps run `v2-takeover-race` with its expectation turned into a pass, so its known
//! race (about one seed in twenty) is a failure here: many failures, cheap seeds.

use super::{sim_in, Ran};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A scratch directory holding `racy.toml`: `v2-takeover-race` expecting a pass.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sim-sweep-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/v2-takeover-race.toml"
    ))
    .unwrap();
    let text = text.replace(
        "expect = [\"duplicate_effect\", \"lock_overlap\"]",
        "expect = \"pass\"",
    );
    assert!(
        text.contains("expect = \"pass\""),
        "the scenario's expect line moved"
    );
    std::fs::write(dir.join("racy.toml"), text).unwrap();
    dir
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn failing_seeds(report: &serde_json::Value) -> Vec<u64> {
    report["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["seed"].as_u64().unwrap())
        .collect()
}

/// The report's parts that must agree between a merged and an unsharded sweep (not the wall
/// time, nor which shard it was).
fn comparable(mut report: serde_json::Value) -> serde_json::Value {
    let o = report.as_object_mut().unwrap();
    o.remove("wall_s");
    o.remove("shard");
    report
}

#[test]
fn a_sweep_killed_midway_has_every_failure_it_printed_in_its_report() {
    let dir = scratch("killed");
    let report = dir.join("report.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args([
            "--scenario",
            "racy.toml",
            "sweep",
            "--count",
            "1000000",
            "--jobs",
            "1",
            "--report",
            "report.json",
        ])
        .current_dir(&dir)
        .stdout(std::fs::File::create(dir.join("stdout")).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait (bounded) for a few failures, then kill it without warning.
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let printed = std::fs::read_to_string(dir.join("stdout")).unwrap_or_default();
        if printed.matches("  reproduce: ").count() >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "no 3 failures within 240 s: {printed}");
        assert!(child.try_wait().unwrap().is_none(), "the sweep ended on its own");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let printed = std::fs::read_to_string(dir.join("stdout")).unwrap();
    let printed_seeds: Vec<u64> = printed
        .lines()
        .filter_map(|l| l.strip_prefix("seed ")?.split(':').next()?.parse().ok())
        .collect();
    assert!(printed_seeds.len() >= 3, "{printed}");
    let r = json(&report);
    assert_eq!(r["status"], "running", "{r:#}");
    let in_report = failing_seeds(&r);
    for seed in &printed_seeds {
        assert!(
            in_report.contains(seed),
            "seed {seed} was printed but is not in the report: {r:#}"
        );
    }
    // Each failure in the report is real: its seed, run on its own, gives the same trace.
    let f = &r["failures"][0];
    let seed = f["seed"].as_u64().unwrap().to_string();
    let Ran { code, stdout, .. } = sim_in(Some(&dir), &["--scenario", "racy.toml", "--seed", &seed], b"");
    assert_eq!(code, 3, "{stdout}");
    assert!(stdout.contains(f["fingerprint"].as_str().unwrap()), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn four_merged_shards_equal_the_unsharded_sweep_and_junit_lists_the_failures() {
    let dir = scratch("shards");
    let sweep = |extra: &[&str]| {
        let mut args = vec!["--scenario", "racy.toml", "sweep", "--seeds", "0..120"];
        args.extend_from_slice(extra);
        sim_in(Some(&dir), &args, b"")
    };
    let whole = sweep(&["--report", "whole.json", "--junit", "whole.xml"]);
    assert_eq!(whole.code, 3, "{}", whole.text());
    let whole_report = json(&dir.join("whole.json"));
    assert!(failing_seeds(&whole_report).len() >= 2, "{whole_report:#}");
    // Shards in an order other than their numbers: the merge does not care.
    for k in [3, 1, 4, 2] {
        let shard = format!("{k}/4");
        let file = format!("shard{k}.json");
        let ran = sweep(&["--shard", &shard, "--report", &file]);
        assert!(ran.code == 0 || ran.code == 3, "{}", ran.text());
        assert_eq!(json(&dir.join(&file))["status"], "complete");
    }
    let merged = sim_in(
        Some(&dir),
        &[
            "merge",
            "shard2.json",
            "shard4.json",
            "shard1.json",
            "shard3.json",
            "--report",
            "merged.json",
            "--junit",
            "merged.xml",
        ],
        b"",
    );
    assert_eq!(merged.code, whole.code, "{}", merged.text());
    assert_eq!(
        comparable(json(&dir.join("merged.json"))),
        comparable(whole_report.clone())
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("merged.xml"))
            .unwrap()
            .lines()
            .filter(|l| !l.contains("time="))
            .collect::<Vec<_>>(),
        std::fs::read_to_string(dir.join("whole.xml"))
            .unwrap()
            .lines()
            .filter(|l| !l.contains("time="))
            .collect::<Vec<_>>(),
        "the merged JUnit is the unsharded one (but for times)"
    );
    // The JUnit file is JUnit XML: testsuites > testsuite > testcase, counts that match, and
    // one failing testcase per distinct failure naming every failing seed.
    let xml = std::fs::read_to_string(dir.join("whole.xml")).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let suites: Vec<_> = root.children().filter(|n| n.has_tag_name("testsuite")).collect();
    assert_eq!(suites.len(), 1);
    let suite = suites[0];
    assert_eq!(suite.attribute("name"), Some("v2-takeover-race"));
    let cases: Vec<_> = suite.children().filter(|n| n.has_tag_name("testcase")).collect();
    let failed: Vec<_> = cases
        .iter()
        .filter(|c| c.children().any(|n| n.has_tag_name("failure")))
        .collect();
    assert_eq!(suite.attribute("tests"), Some(cases.len().to_string().as_str()));
    assert_eq!(
        suite.attribute("failures"),
        Some(failed.len().to_string().as_str())
    );
    assert_eq!(
        root.attribute("failures"),
        Some(failed.len().to_string().as_str())
    );
    assert_eq!(
        cases.len(),
        failed.len() + 1,
        "one passing testcase besides the failures"
    );
    for c in &cases {
        assert!(c.attribute("name").is_some_and(|n| !n.is_empty()) && c.attribute("classname").is_some());
    }
    let failure_text: String = failed
        .iter()
        .flat_map(|c| c.children().filter(|n| n.has_tag_name("failure")))
        .map(|f| {
            format!(
                "{} {}",
                f.attribute("message").unwrap_or(""),
                f.text().unwrap_or("")
            )
        })
        .collect();
    for seed in failing_seeds(&whole_report) {
        assert!(
            failure_text.contains(&format!(" {seed}")),
            "seed {seed} not in the JUnit failures: {failure_text}"
        );
    }
    assert!(
        failure_text.contains("reproduce: cargo run -p sim -- --seed"),
        "{failure_text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn merge_refuses_reports_that_are_not_one_sweep() {
    let dir = scratch("refuse");
    for (args, file) in [
        (vec!["--shard", "1/2"], "a1.json"),
        (vec!["--shard", "2/2"], "a2.json"),
        (vec!["--shard", "2/2", "--protocol", "fenced"], "b2.json"),
    ] {
        let mut all = vec![
            "--scenario",
            "racy.toml",
            "sweep",
            "--seeds",
            "0..10",
            "--report",
            file,
        ];
        all.extend(args);
        let ran = sim_in(Some(&dir), &all, b"");
        assert!(ran.code == 0 || ran.code == 3, "{}", ran.text());
    }
    std::fs::write(dir.join("bad.json"), "{\"format\": 1").unwrap();
    for (args, says) in [
        (vec!["merge", "a1.json"], "shard 2/2 is missing"),
        (vec!["merge", "a1.json", "a1.json"], "both shard 1/2"),
        (vec!["merge", "a1.json", "b2.json"], "differ in"),
        (
            vec!["merge", "a1.json", "bad.json"],
            "bad.json: not a sweep report",
        ),
        (vec!["merge", "a1.json", "missing.json"], "missing.json"),
    ] {
        let Ran { code, stderr, .. } = sim_in(Some(&dir), &args, b"");
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let ok = sim_in(Some(&dir), &["merge", "a2.json", "a1.json"], b"");
    assert!(ok.code == 0 || ok.code == 3, "{}", ok.text());
    assert!(ok.stdout.contains("merge: "), "{}", ok.stdout);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stop_after_failures_and_duration_end_a_sweep_early_and_say_so() {
    let dir = scratch("early");
    let ran = sim_in(
        Some(&dir),
        &[
            "--scenario",
            "racy.toml",
            "sweep",
            "--count",
            "100000",
            "--stop-after-failures",
            "2",
            "--report",
            "r.json",
        ],
        b"",
    );
    assert_eq!(ran.code, 3, "{}", ran.text());
    assert!(ran.stdout.contains("stopped after 2 failures"), "{}", ran.stdout);
    let r = json(&dir.join("r.json"));
    assert_eq!(
        (r["status"].as_str(), failing_seeds(&r).len()),
        (Some("stopped"), 2),
        "{r:#}"
    );
    let ran = sim_in(
        Some(&dir),
        &[
            "--scenario",
            "gc-pause-v2",
            "sweep",
            "--duration",
            "1s",
            "--report",
            "d.json",
        ],
        b"",
    );
    assert_eq!(ran.code, 0, "{}", ran.text());
    assert!(ran.stdout.contains("--duration ran out after"), "{}", ran.stdout);
    assert_eq!(json(&dir.join("d.json"))["status"], "out_of_time");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--save-failures` keeps the first seed of each distinct failure as a corpus entry that
/// replays to the same verdict; an entry whose bug no longer shows fails the replay.
#[test]
fn saved_failures_become_corpus_entries_that_replay() {
    let dir = scratch("save");
    let ran = sim_in(
        Some(&dir),
        &[
            "--scenario",
            "racy.toml",
            "sweep",
            "--seeds",
            "0..60",
            "--report",
            "r.json",
            "--save-failures",
            "found",
        ],
        b"",
    );
    assert_eq!(ran.code, 3, "{}", ran.text());
    let r = json(&dir.join("r.json"));
    let first = failing_seeds(&r)[0];
    let entries: Vec<_> = std::fs::read_dir(dir.join("found"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    // Every failure here is one bug (the takeover race): one entry, its first seed.
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(
        entries[0].ends_with(format!("v2-takeover-race-seed{first}.toml")),
        "{entries:?}"
    );
    let replay = sim_in(Some(&dir), &["replay", "found"], b"");
    assert_eq!(replay.code, 0, "{}", replay.text());
    assert!(
        replay.stdout.contains("1 of 1 entries as they expect"),
        "{}",
        replay.stdout
    );
    // Claim the bug fixed: the entry now expects a pass, and the replay says it does not hold.
    let text = std::fs::read_to_string(&entries[0]).unwrap();
    let fixed: String = text
        .lines()
        .map(|l| {
            if l.starts_with("expect = ") {
                "expect = \"pass\"".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&entries[0], fixed).unwrap();
    let replay = sim_in(Some(&dir), &["replay", "found"], b"");
    assert_eq!(replay.code, 3, "{}", replay.text());
    assert!(replay.stdout.contains("FAIL "), "{}", replay.stdout);
    assert!(
        replay
            .stdout
            .contains("reproduce: cargo run -p sim -- --scenario found/"),
        "{}",
        replay.stdout
    );
    // A corpus that cannot be read is a usage error.
    assert_eq!(sim_in(Some(&dir), &["replay", "nowhere"], b"").code, 2);
    let _ = std::fs::remove_dir_all(&dir);
}
