//! `sim findings` as CI and the README use it: shards add up to the whole sweep, the table
//! goes between the README's markers and nowhere else, a shrunk finding is a corpus entry that
//! replays with its mechanism, and bad input is refused with exit 2.

use super::sim_in;
use std::path::{Path, PathBuf};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sim-findings-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The counts of a report, without what differs by shard.
fn counts(mut v: serde_json::Value) -> serde_json::Value {
    v["shards"] = serde_json::Value::Null;
    v
}

#[test]
fn two_shards_merge_into_the_unsharded_tally_and_the_table_lands_between_the_markers() {
    let dir = scratch("shards");
    let d = |f: &str| dir.join(f).display().to_string();
    let common = ["findings", "--from", "0", "--count", "24", "--arms", "v2+plain"];
    let whole = sim_in(
        None,
        &[&common[..], &["--report", &d("whole.json")]].concat(),
        b"",
    );
    assert_eq!(whole.code, 0, "{}", whole.text());
    for k in ["1/2", "2/2"] {
        let part = format!("part{}.json", &k[..1]);
        let r = sim_in(
            None,
            &[&common[..], &["--shard", k, "--report", &d(&part)]].concat(),
            b"",
        );
        assert_eq!(r.code, 0, "{}", r.text());
    }
    let readme = dir.join("README.md");
    std::fs::write(
        &readme,
        "# Title\n\nbefore\n<!-- findings:begin (sim findings --readme README.md rewrites this) -->\nold table\n<!-- findings:end -->\nafter\n",
    )
    .unwrap();
    let merged = sim_in(
        None,
        &[
            "findings",
            "--arms",
            "v2+plain",
            "--merge",
            &d("part1.json"),
            &d("part2.json"),
            "--report",
            &d("merged.json"),
            "--readme",
            &d("README.md"),
        ],
        b"",
    );
    assert_eq!(merged.code, 0, "{}", merged.text());
    assert_eq!(
        counts(json(&dir.join("merged.json"))),
        counts(json(&dir.join("whole.json")))
    );
    let v2 = &json(&dir.join("whole.json"))["arms"]["v2+plain"];
    assert_eq!(v2["seeds"], 24);
    assert!(
        !v2["findings"].as_object().unwrap().is_empty(),
        "v2 on a plain database finds something in 24 swarm seeds: {v2}"
    );
    let text = std::fs::read_to_string(&readme).unwrap();
    assert!(
        text.starts_with("# Title\n\nbefore\n<!-- findings:begin"),
        "{text}"
    );
    assert!(text.ends_with("<!-- findings:end -->\nafter\n"), "{text}");
    assert!(!text.contains("old table"));
    assert!(text.contains("| finding | v2+plain |"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_shrunk_finding_is_a_corpus_entry_that_replays_with_its_mechanism() {
    let dir = scratch("shrink");
    let shrunk = dir.join("found");
    // Seed 9 of the swarm: copies with mixed headers, v2's two keys for one event.
    let r = sim_in(
        None,
        &[
            "findings",
            "--from",
            "9",
            "--count",
            "1",
            "--arms",
            "v2+plain",
            "--shrink",
            &shrunk.display().to_string(),
            "--shrink-seconds",
            "60",
        ],
        b"",
    );
    assert_eq!(r.code, 0, "{}", r.text());
    assert!(r.stdout.contains("duplicate_effect/two_keys"), "{}", r.stdout);
    let entry = shrunk.join("finding-v2-plain-duplicate-effect-two-keys.toml");
    let text = std::fs::read_to_string(&entry).unwrap();
    assert!(text.contains("finding = \"duplicate_effect/two_keys\""), "{text}");
    let replayed = sim_in(None, &["replay", &shrunk.display().to_string()], b"");
    assert_eq!(replayed.code, 0, "{}", replayed.text());
    // The same entry with its mechanism changed no longer replays: the check is real.
    std::fs::write(
        &entry,
        text.replace(
            "finding = \"duplicate_effect/two_keys\"",
            "finding = \"duplicate_effect/fail_open\"",
        ),
    )
    .unwrap();
    let wrong = sim_in(None, &["replay", &shrunk.display().to_string()], b"");
    assert_ne!(wrong.code, 0, "{}", wrong.text());
    assert!(
        wrong.text().contains("without duplicate_effect/fail_open"),
        "{}",
        wrong.text()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_is_refused_with_exit_2() {
    let dir = scratch("bad");
    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{not json").unwrap();
    for (args, says) in [
        (vec!["findings", "--scenario", "nope", "--count", "1"], "nope"),
        (
            vec!["findings", "--arms", "v3", "--count", "1"],
            "unknown arm \"v3\"",
        ),
        (vec!["findings", "--shard", "3/2", "--count", "1"], "--shard"),
        (
            vec!["--protocol", "v2", "findings", "--count", "1"],
            "does not take --protocol",
        ),
        (
            vec!["findings", "--merge", bad.to_str().unwrap()],
            "not a findings report",
        ),
    ] {
        let r = sim_in(None, &args, b"");
        assert_eq!(r.code, 2, "{args:?}: {}", r.text());
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_swarm_sweep_prints_and_reports_what_each_failing_seed_drew() {
    let dir = scratch("sweep");
    let report = dir.join("r.json");
    let r = sim_in(
        None,
        &[
            "sweep",
            "--scenario",
            "swarm",
            "--protocol",
            "v2",
            "--database",
            "plain",
            "--from",
            "0",
            "--count",
            "12",
            "--report",
            &report.display().to_string(),
        ],
        b"",
    );
    let failures = json(&report)["failures"].as_array().unwrap().clone();
    assert!(
        !failures.is_empty(),
        "v2 fails some of 12 swarm seeds: {}",
        r.text()
    );
    for f in failures {
        let seed = f["seed"].as_u64().unwrap();
        let drawn = f["drawn"].as_str().unwrap();
        assert!(drawn.starts_with(&format!("swarm seed {seed}: ")), "{drawn}");
        assert!(drawn.contains("faults on: "), "{drawn}");
    }
    assert!(r.stdout.contains("  drawn: swarm seed "), "{}", r.stdout);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_readme_findings_table_reproduces_each_row_from_a_corpus_entry_of_its_finding() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let begin = readme
        .find("<!-- findings:begin")
        .expect("the README has the findings table");
    let end = readme.find("<!-- findings:end -->").unwrap();
    let rows: Vec<&str> = readme[begin..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .collect();
    assert!(rows.len() >= 10, "the table has its rows: {rows:?}");
    let mut named = Vec::new();
    for row in rows {
        let label = row.split('`').nth(1).unwrap();
        let Some((_, path)) = row.split_once("--scenario seeds/") else {
            panic!("row {label} does not reproduce from a corpus entry: {row}");
        };
        let file = path.split('`').next().unwrap();
        let text = std::fs::read_to_string(root.join("seeds").join(file))
            .unwrap_or_else(|e| panic!("{label}: seeds/{file}: {e}"));
        assert!(
            text.contains(&format!("finding = \"{label}\"")),
            "seeds/{file} is not the entry of {label}"
        );
        named.push(file.to_owned());
    }
    // Every finding entry is in the table (an entry left over from an older table is not).
    for entry in std::fs::read_dir(root.join("seeds")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.starts_with("finding-") {
            assert!(named.contains(&name), "seeds/{name} is not in the README's table");
        }
    }
}
