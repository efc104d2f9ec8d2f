//! Every scenario in `scenarios/`: on its pinned seed it gives what it expects, and over a
//! sweep of 200 seeds it shows nothing it does not expect (a scenario that demonstrates a
//! violation shows it on at least one seed; the counts are printed). Broken scenario files get
//! an error with file, line and field, and exit code 2.

use crate::sim_in;
use sim::internal::check::{as_expected, only_expected};
use sim::internal::run::{self, Verdict};
use sim::internal::scenario::{self, EMBEDDED};
use std::io::Write;

const SWEEP: u64 = 200;

#[test]
fn every_scenario_meets_its_expectation_on_its_pinned_seed_and_a_sweep() {
    for (name, _) in EMBEDDED {
        let config = scenario::load(name).unwrap();
        let expected = config.expect.kinds();
        let pinned = run::run(config.seed, &config);
        assert!(
            !matches!(pinned.verdict, Verdict::Crash(_))
                && as_expected(&expected, pinned.verdict.violations()),
            "{name}: seed {} gave {:?}, expected {expected:?}: cargo run -p sim -- --scenario {name}",
            config.seed,
            pinned.verdict
        );
        let seeds: Vec<u64> = (0..SWEEP).filter(|s| *s != config.seed).collect();
        let mut showing = 0;
        for pair in seeds.chunks(2) {
            let results: Vec<_> = std::thread::scope(|scope| {
                let hs: Vec<_> = pair
                    .iter()
                    .map(|&seed| {
                        scope.spawn({
                            let config = &config;
                            move || (seed, run::run(seed, config))
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).collect()
            });
            for (seed, r) in results {
                assert!(
                    !matches!(r.verdict, Verdict::Crash(_))
                        && only_expected(&expected, r.verdict.violations()),
                    "{name}: seed {seed} gave {:?}: cargo run -p sim -- --scenario {name} --seed {seed}",
                    r.verdict
                );
                showing +=
                    usize::from(!expected.is_empty() && as_expected(&expected, r.verdict.violations()));
            }
        }
        if expected.is_empty() {
            println!(
                "{name}: pass on its pinned seed and on all {} sweep seeds",
                seeds.len()
            );
        } else {
            println!(
                "{name}: {expected:?} on its pinned seed and on {showing} of {} sweep seeds",
                seeds.len()
            );
            assert!(showing > 0, "{name}: no sweep seed showed {expected:?}");
        }
    }
}

fn run_file(contents: &str) -> (i32, String) {
    let dir = std::env::temp_dir().join(format!("sim-broken-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("broken.toml");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(contents.as_bytes())
        .unwrap();
    let path = path.display().to_string();
    let ran = sim_in(None, &["--scenario", &path], b"");
    (ran.code, ran.text().replace(&path, "broken.toml"))
}

#[test]
fn broken_scenario_files_are_refused_with_the_place_and_the_field() {
    let cases: &[(&str, &[&str])] = &[
        ("", &["broken.toml: the file is empty"]),
        ("   \n# only a comment\n", &["the file is empty"]),
        (
            "name = \"x\"\nworkers = 3\nworkers = 4\n",
            &["broken.toml:3:1", "duplicate key"],
        ),
        ("name = \"x\"\nworkers = [1\n", &["broken.toml:2:"]),
        (
            "name = \"x\"\nworkers = \"three\"\n",
            &[
                "broken.toml:2:11",
                "field `workers`",
                "invalid type: string \"three\", expected u32",
            ],
        ),
        (
            "name = \"x\"\nevents = -5\n",
            &["broken.toml:2:10", "field `events`"],
        ),
        (
            "name = \"x\"\nwrokers = 3\n",
            &[
                "broken.toml:2:1",
                "unknown field `wrokers`",
                "expected one of",
                "`workers`",
            ],
        ),
        (
            "name = \"x\"\ndatabase = \"mongo\"\n",
            &[
                "broken.toml:2:12",
                "field `database`",
                "unknown variant `mongo`",
                "`plain`, `unique`, `fenced`",
            ],
        ),
        (
            "name = \"x\"\nprotocol = \"v3\"\n",
            &["field `protocol`", "expected one of `v2`, `fenced`, `python-v2`"],
        ),
        (
            "name = \"x\"\nworker_protocols = [\"v2\", \"fenced2\", \"v2\"]\n",
            &[
                "broken.toml:2",
                "field `worker_protocols`",
                "unknown variant `fenced2`",
                "`v2`, `fenced`, `python-v2`",
            ],
        ),
        (
            "name = \"x\"\nworker_protocols = [\"v2\", \"fenced\"]\n",
            &[
                "broken.toml",
                "`worker_protocols` has 2 entries but `workers` = 3",
                "one protocol per worker",
            ],
        ),
        (
            "name = \"x\"\n[faults]\ngap_ms_min = 0\n",
            &[
                "broken.toml:3",
                "field `faults.gap_ms_min`",
                "outside its range 10..=259_200_000",
            ],
        ),
        (
            "name = \"x\"\n[faults]\ncrash_wieght = 1\n",
            &["broken.toml:3:1", "unknown field `crash_wieght`"],
        ),
        (
            "name = \"x\"\nworkers = 0\n",
            &["broken.toml:2", "field `workers`", "outside its range 1..=254"],
        ),
        (
            "name = \"x\"\nheaders_share = 1.5\n",
            &[
                "broken.toml:2",
                "field `headers_share`",
                "outside its range 0.0..=1.0",
            ],
        ),
        (
            "name = \"x\"\nhandler_ms_min = 50\nhandler_ms_max = 10\n",
            &[
                "field `handler_ms_min`",
                "handler_ms_min <= handler_ms_max",
                "(50) must be <= `handler_ms_max` (10)",
            ],
        ),
        (
            "name = \"x\"\nexpect = \"dupe\"\n",
            &[
                "broken.toml:2",
                "field `expect`",
                "unknown \"dupe\"",
                "duplicate_effect",
            ],
        ),
        (
            "name = \"x\"\ncopies = 9\n",
            &["field `copies`", "must be <= `partitions`"],
        ),
        (
            "name = \"x\"\nevent_types = [\"a:b\"]\n",
            &["field `event_types`", "contains ':'"],
        ),
        (
            "name = \"x\"\n\n[[schedule]]\nat_ms = 1\nfault = \"crash\"\n",
            &["broken.toml:3", "field `schedule[0]`", "needs `node`"],
        ),
        (
            "name = \"x\"\n[[schedule]]\nat_ms = 1\nfault = \"crash\"\nnode = \"worker-9\"\n",
            &[
                "broken.toml:5",
                "field `schedule[0].node`: unknown node \"worker-9\"",
                "valid: redis, kafka, db, producer, worker-1 to worker-3",
            ],
        ),
        (
            "name = \"x\"\n[[schedule]]\nat_ms = 1\nfault = \"explode\"\nnode = \"redis\"\n",
            // A fault's fields are read as one table; the error still points at the key.
            &[
                "broken.toml:4",
                "field `schedule[0].fault`",
                "unknown variant `explode`",
                "`crash`",
            ],
        ),
        (
            "name = \"x\"\n[[schedule]]\nat_ms = 1\nfault = \"latency\"\nlatency_ms = 50\nnode = \"redis\"\n",
            &[
                "broken.toml:6",
                "field `schedule[0].node`",
                "unknown field `node`",
                "expected `latency_ms`",
            ],
        ),
        (
            "name = \"x\"\n[[schedule]]\nat_ms = 1\nfault = \"latency\"\nlatency_ms_max = \"x\"\n",
            &[
                "broken.toml:5",
                "field `schedule[0].latency_ms_max`",
                "invalid type: string \"x\"",
            ],
        ),
        (
            "name = \"x\"\n[[schedule]]\nat_ms = 1\nfault = \"crash\"\nnode = \"redis\"\n[[schedule]]\nat_ms = 2\nfault = \"pause\"\nnode = 3\n",
            &[
                "broken.toml:9",
                "field `schedule[1].node`",
            ],
        ),
        (
            "description = \"no name\"\n",
            &["field `name`", "every scenario has a name"],
        ),
    ];
    for (contents, says) in cases {
        let (code, out) = run_file(contents);
        assert_eq!(code, 2, "{contents:?} gave exit {code}:\n{out}");
        for s in *says {
            assert!(
                out.contains(s),
                "{contents:?}: the error does not say {s:?}:\n{out}"
            );
        }
        assert!(!out.contains("panicked"), "{out}");
    }
    let (code, out) = run_file_missing();
    assert_eq!(code, 2);
    assert!(
        out.contains("cannot read it") && out.contains("default, "),
        "{out}"
    );
}

fn run_file_missing() -> (i32, String) {
    let ran = sim_in(None, &["--scenario", "/no/such/scenario.toml"], b"");
    (ran.code, ran.stderr)
}

#[test]
fn scenarios_lists_every_embedded_scenario_with_its_description() {
    let ran = sim_in(None, &["scenarios"], b"");
    let text = ran.stdout;
    assert_eq!(ran.code, 0);
    for (name, _) in EMBEDDED {
        let description = scenario::load(name).unwrap().description;
        assert!(
            text.lines()
                .any(|l| l.starts_with(name) && l.ends_with(&description)),
            "{name} missing:\n{text}"
        );
    }
}
