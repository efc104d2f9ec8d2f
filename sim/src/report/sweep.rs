//! Sweep reports: what a sweep of many seeds found, in the forms CI reads.
//!
//! - [`SweepReport`], JSON: the scenario and its content hash, the build, the seed range and
//!   shard, the counts, and every failing seed with its verdict, violation kinds, trace
//!   fingerprint and reproduce command. [`SweepReport::write_atomic`] replaces the file in one
//!   rename, and the sweep rewrites it whenever it finds a failure, so a sweep killed midway
//!   leaves a report with every failure it had printed.
//! - [`SweepReport::junit`], JUnit XML as cargo-nextest writes it (one testsuite per scenario,
//!   one testcase per distinct failure, one testcase for the seeds as expected), made with the
//!   `quick-junit` crate that nextest itself uses, so CI systems show it as they show nextest's.
//! - [`merge`]: shard reports into the report of the whole sweep; the same result in any order,
//!   and an error when the shards ran different things or one is missing.
//!
//! A failure is a seed whose verdict is not as the scenario expects. Failures are *distinct* by
//! their signature ([`Failure::signature`]): the verdict and the set of violation kinds (for a
//! crash, its message with the numbers taken out), so a thousand seeds showing one bug are one
//! line and one testcase.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Seeds of one distinct failure the JUnit file lists (the JSON report lists them all).
const SEEDS_LISTED_MAX: usize = 100;

/// The `format` field of every report this build writes.
pub const FORMAT: &str = "sim-sweep-report/1";

/// Which part of a sweep's seeds one machine runs: seed `s` of `start..end` belongs to shard
/// `index` (1-based) of `total` when `(s - start) % total == index - 1`. Stable: the same
/// seeds go to the same shard whatever else runs, and the shards together are the range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Shard {
    /// 1-based.
    pub index: u64,
    /// At least 1.
    pub total: u64,
}

impl Shard {
    /// Whether `seed` of a range starting at `start` is this shard's.
    pub fn owns(&self, start: u64, seed: u64) -> bool {
        assert!(self.index >= 1 && self.index <= self.total);
        (seed - start) % self.total == self.index - 1
    }

    /// `K/N` with 1 ≤ K ≤ N.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let bad = || format!("--shard {text:?}: expected K/N with 1 <= K <= N (e.g. 2/4), or auto");
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, total) = (
            k.trim().parse::<u64>().map_err(|_| bad())?,
            n.trim().parse::<u64>().map_err(|_| bad())?,
        );
        if index == 0 || total == 0 || index > total {
            return Err(bad());
        }
        Ok(Shard { index, total })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.total)
    }
}

/// How far a sweep got, least finished first (a merge takes the least finished shard's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Still running (a report read in this state is from a sweep that was killed).
    Running,
    /// `--stop-after-failures` ended it early.
    Stopped,
    /// `--duration` ran out: the seeds that fitted ran.
    OutOfTime,
    /// Every seed of the range (of the shard) ran.
    Complete,
}

/// One failing seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// `correctness`, `liveness`, `crash`, `nondeterminism`, or `pass` for a seed whose
    /// verdict passed but ran differently twice.
    pub verdict: String,
    /// The exit code a single run of the seed gives.
    pub exit_code: i32,
    /// The violation kinds shown, sorted, each once.
    pub kinds: Vec<String>,
    /// The violations with the mechanism `why:` names for each repeated effect
    /// (`duplicate_effect/db_timeout_late_write`), sorted, each once (`check::why::labels`);
    /// empty when no violation is a repeated effect.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<String>,
    /// The first violation (or the crash message, or where two runs parted).
    pub detail: String,
    /// SHA-256 of the canonical trace.
    pub fingerprint: String,
    /// Trace events: the smaller, the quicker to read and to reproduce.
    pub trace_events: usize,
    /// The command that reproduces it.
    pub reproduce: String,
    /// For a seed of a swarm: what it drew (its regime, the fault kinds on, the shapes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drawn: Option<String>,
    /// With `sweep --shrink`, for the first seed of each distinct failure: its shrunk scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shrunk: Option<Shrunk>,
}

/// A failing seed shrunk by `sweep --shrink`: where the scenario is and its size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shrunk {
    /// The shrunk scenario file (`sim --scenario` replays it).
    pub scenario: String,
    /// Its `[[schedule]]` entries.
    pub faults: usize,
    /// Its events published.
    pub events: usize,
    /// Its trace's events.
    pub trace_events: usize,
    /// Runs the shrink made.
    pub runs: u64,
    /// Why the shrink stopped.
    pub stop: String,
}

impl Failure {
    /// What makes two failures the same bug: the verdict and the violation kinds, each repeated
    /// effect with its mechanism ([`Failure::causes`]); for a crash or a non-determinism, the
    /// detail with its digits taken out (seeds, times and counts differ from seed to seed, the
    /// message does not).
    pub fn signature(&self) -> String {
        if self.kinds.is_empty() {
            let line = self.detail.lines().next().unwrap_or("");
            let mut shape = String::with_capacity(line.len());
            for c in line.chars() {
                if c.is_ascii_digit() {
                    if !shape.ends_with('N') {
                        shape.push('N');
                    }
                } else {
                    shape.push(c);
                }
            }
            shape.truncate(120);
            format!("{}: {shape}", self.verdict)
        } else if !self.causes.is_empty() {
            format!("{}: {}", self.verdict, self.causes.join(" + "))
        } else {
            format!("{}: {}", self.verdict, self.kinds.join(" + "))
        }
    }
}

/// Seeds counted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Seeds run (of this shard).
    pub seeds: u64,
    /// Seeds whose verdict is as the scenario expects.
    pub as_expected: u64,
    /// Seeds that failed (every one is in `failures`).
    pub failed: u64,
    /// Seeds that showed the scenario's expected violations (0 when it expects a pass).
    pub showing_expected: u64,
    /// Seeds by verdict name.
    pub verdicts: BTreeMap<String, u64>,
}

/// What a sweep found (see the module doc).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepReport {
    /// [`FORMAT`].
    pub format: String,
    /// The scenario's name.
    pub scenario: String,
    /// SHA-256 over the scenario's every knob as `sim -v` prints them: two reports with the
    /// same hash ran the same configuration.
    pub scenario_sha256: String,
    /// The build: version and commit.
    pub build: String,
    /// The command-line flags that configured the scenario (part of every reproduce command).
    pub flags: String,
    /// Whether each seed ran twice and the traces were compared.
    pub check_determinism: bool,
    /// The violation kinds the scenario expects (empty: it expects a pass).
    pub expect: Vec<String>,
    /// The whole sweep's seed range, `start..end` (all shards together).
    pub start: u64,
    /// End of the range (exclusive).
    pub end: u64,
    /// The shard this report covers; `None` for the whole range.
    pub shard: Option<Shard>,
    /// How far the sweep got.
    pub status: Status,
    /// The counts.
    pub counts: Counts,
    /// Every failing seed, in seed order.
    pub failures: Vec<Failure>,
    /// Wall time so far, in seconds (for a merge, the longest shard's).
    pub wall_s: f64,
}

/// A distinct failure: its signature, the seeds that show it, its first and its smallest seed.
#[derive(Clone, Debug, PartialEq)]
pub struct Distinct<'a> {
    /// [`Failure::signature`].
    pub signature: String,
    /// The lowest seed that shows it.
    pub first: &'a Failure,
    /// The seed with the fewest trace events (the quickest to reproduce and read); the
    /// lowest such seed on a tie.
    pub smallest: &'a Failure,
    /// How many seeds show it.
    pub seeds: u64,
}

impl SweepReport {
    /// Whether the "must show the expected violations on some seed" rule judges this report:
    /// a whole sweep (a shard's seeds may by chance show none; [`merge`] judges the whole) that
    /// was not killed (a killed sweep's counts are partial). A sweep stopped early or out of
    /// time is judged on the seeds it ran, as a run cut short by a limit is.
    fn judges_expectation(&self) -> bool {
        !self.expect.is_empty() && self.shard.is_none() && self.status != Status::Running
    }

    /// Whether this is a whole sweep of a scenario that expects violations in which no seed
    /// showed them.
    pub fn expectation_unmet(&self) -> bool {
        self.judges_expectation() && self.counts.showing_expected == 0
    }

    /// The sweep's exit code: the worst failing seed's; else 7 when the expectation is unmet
    /// ([`SweepReport::expectation_unmet`]); else 0.
    pub fn exit_code(&self) -> i32 {
        let worst = self.failures.iter().map(|f| f.exit_code).max().unwrap_or(0);
        if worst == 0 && self.expectation_unmet() {
            return crate::run::verdict::EXIT_EXPECTATION_UNMET;
        }
        worst
    }

    /// The distinct failures, most seeds first (then by signature).
    pub fn distinct(&self) -> Vec<Distinct<'_>> {
        let mut by: BTreeMap<String, Distinct<'_>> = BTreeMap::new();
        for f in &self.failures {
            let d = by.entry(f.signature()).or_insert_with_key(|signature| Distinct {
                signature: signature.clone(),
                first: f,
                smallest: f,
                seeds: 0,
            });
            d.seeds += 1;
            if f.seed < d.first.seed {
                d.first = f;
            }
            if (f.trace_events, f.seed) < (d.smallest.trace_events, d.smallest.seed) {
                d.smallest = f;
            }
        }
        let mut out: Vec<Distinct<'_>> = by.into_values().collect();
        out.sort_by(|a, b| b.seeds.cmp(&a.seeds).then_with(|| a.signature.cmp(&b.signature)));
        out
    }

    /// Writes the report to `path` atomically: a reader sees the old file or the new one,
    /// never half of one (written beside it, then renamed over it).
    pub fn write_atomic(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        write_atomic(path, text.as_bytes())
    }

    /// Reads a report; the error names the file and what is wrong.
    pub fn read(path: &Path) -> Result<SweepReport, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let report: SweepReport = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a sweep report: {e}", path.display()))?;
        if report.format != FORMAT {
            return Err(format!(
                "{}: report format {:?}, this build reads {FORMAT:?}",
                path.display(),
                report.format
            ));
        }
        Ok(report)
    }

    /// The report as JUnit XML (see the module doc).
    pub fn junit(&self) -> String {
        use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
        let mut report = Report::new("sim-sweep");
        let mut suite = TestSuite::new(self.scenario.as_str());
        let range = match self.shard {
            Some(s) => format!("seeds {}..{} shard {s}", self.start, self.end),
            None => format!("seeds {}..{}", self.start, self.end),
        };
        suite.add_property(("scenario_sha256", self.scenario_sha256.as_str()));
        suite.add_property(("build", self.build.as_str()));
        suite.add_property(("seeds", range.as_str()));
        suite.add_property(("status", format!("{:?}", self.status).to_lowercase().as_str()));
        suite.add_property(("seeds_run", self.counts.seeds.to_string().as_str()));
        for d in self.distinct() {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status.set_message(format!(
                "{} seeds; first {}; smallest {}",
                d.seeds, d.first.seed, d.smallest.seed
            ));
            status.set_type(d.first.verdict.as_str());
            // Every seed up to a hundred (the report has them all).
            let mut seeds: Vec<String> = self
                .failures
                .iter()
                .filter(|f| f.signature() == d.signature)
                .map(|f| f.seed.to_string())
                .take(SEEDS_LISTED_MAX + 1)
                .collect();
            if seeds.len() > SEEDS_LISTED_MAX {
                seeds.truncate(SEEDS_LISTED_MAX);
                seeds.push(format!("... {} in all (see the JSON report)", d.seeds));
            }
            let shrunk = d.first.shrunk.as_ref().map_or(String::new(), |s| {
                format!(
                    "shrunk: {} ({} faults, {} events, {} trace events)\n",
                    s.scenario, s.faults, s.events, s.trace_events
                )
            });
            status.set_description(format!(
                "{}\nseeds: {}\nreproduce: {}\nsmallest: {}\n{shrunk}",
                d.first.detail,
                seeds.join(" "),
                d.first.reproduce,
                d.smallest.reproduce
            ));
            let mut case = TestCase::new(d.signature.as_str(), status);
            case.set_classname(self.scenario.as_str());
            suite.add_test_case(case);
        }
        // A stable name, so CI's test history follows it from run to run; the counts go in its
        // output.
        let name = "seeds as expected";
        let status = if !self.expectation_unmet() {
            TestCaseStatus::success()
        } else {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(format!("no seed showed {}", self.expect.join(" or ")));
            s
        };
        let mut case = TestCase::new(name, status);
        case.set_system_out(format!(
            "{} of {} seeds as expected ({range}, {:?})\n",
            self.counts.as_expected, self.counts.seeds, self.status
        ));
        case.set_classname(self.scenario.as_str());
        case.set_time(std::time::Duration::from_secs_f64(self.wall_s.max(0.0)));
        suite.add_test_case(case);
        report.add_test_suite(suite);
        report
            .to_string()
            .unwrap_or_else(|e| format!("<!-- junit: {e} -->"))
    }
}

/// Writes `bytes` to `path` through a temporary file beside it and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Combines shard reports (each named by where it came from) into the report of the whole
/// sweep. Order-independent. Errors, naming the report: a different scenario, configuration,
/// build, flags or range; a shard given twice, or missing; two different results for a seed.
pub fn merge(reports: &[(String, SweepReport)]) -> Result<SweepReport, String> {
    let Some((first_name, first)) = reports.first() else {
        return Err("merge needs at least one report".into());
    };
    for (name, r) in reports {
        let same = [
            ("scenario", r.scenario == first.scenario),
            ("scenario_sha256", r.scenario_sha256 == first.scenario_sha256),
            ("build", r.build == first.build),
            ("flags", r.flags == first.flags),
            (
                "check_determinism",
                r.check_determinism == first.check_determinism,
            ),
            ("expect", r.expect == first.expect),
            ("seed range", (r.start, r.end) == (first.start, first.end)),
            (
                "shard total",
                r.shard.map(|s| s.total) == first.shard.map(|s| s.total),
            ),
        ];
        if let Some((what, _)) = same.iter().find(|(_, ok)| !ok) {
            return Err(format!(
                "{name} and {first_name} differ in {what}: they are not shards of one sweep"
            ));
        }
    }
    let total = first.shard.map_or(1, |s| s.total);
    let mut seen: BTreeMap<u64, &str> = BTreeMap::new();
    for (name, r) in reports {
        let index = r.shard.map_or(1, |s| s.index);
        if let Some(other) = seen.insert(index, name) {
            return Err(format!("{name} and {other} are both shard {index}/{total}"));
        }
    }
    if let Some(missing) = (1..=total).find(|i| !seen.contains_key(i)) {
        return Err(format!(
            "shard {missing}/{total} is missing (got {} of {total} reports)",
            reports.len()
        ));
    }
    let mut merged = SweepReport {
        shard: None,
        status: Status::Complete,
        counts: Counts::default(),
        failures: Vec::new(),
        wall_s: 0.0,
        ..first.clone()
    };
    let mut failures: BTreeMap<u64, (&str, &Failure)> = BTreeMap::new();
    for (name, r) in reports {
        // The least finished shard says how far the whole sweep got.
        merged.status = merged.status.min(r.status);
        merged.wall_s = merged.wall_s.max(r.wall_s);
        let c = &mut merged.counts;
        c.seeds += r.counts.seeds;
        c.as_expected += r.counts.as_expected;
        c.failed += r.counts.failed;
        c.showing_expected += r.counts.showing_expected;
        for (k, n) in &r.counts.verdicts {
            *c.verdicts.entry(k.clone()).or_default() += n;
        }
        for f in &r.failures {
            if let Some((other, g)) = failures.insert(f.seed, (name, f)) {
                if g != f {
                    return Err(format!(
                        "seed {} has different results in {name} and {other}",
                        f.seed
                    ));
                }
            }
        }
    }
    merged.failures = failures.into_values().map(|(_, f)| f.clone()).collect();
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(seed: u64, kinds: &[&str], events: usize) -> Failure {
        Failure {
            seed,
            verdict: "correctness".into(),
            exit_code: 3,
            kinds: kinds.iter().map(|k| k.to_string()).collect(),
            causes: Vec::new(),
            detail: format!("{} event=e{seed} seen", kinds.first().unwrap_or(&"")),
            fingerprint: format!("fp{seed}"),
            trace_events: events,
            reproduce: format!("cargo run -p sim -- --seed {seed}"),
            drawn: None,
            shrunk: None,
        }
    }

    fn report(shard: Option<Shard>, failures: Vec<Failure>, seeds: u64) -> SweepReport {
        SweepReport {
            format: FORMAT.into(),
            scenario: "default".into(),
            scenario_sha256: "abc".into(),
            build: "0.1.0 (commit x)".into(),
            flags: String::new(),
            check_determinism: false,
            expect: Vec::new(),
            start: 0,
            end: 8,
            shard,
            status: Status::Complete,
            counts: Counts {
                seeds,
                as_expected: seeds - failures.len() as u64,
                failed: failures.len() as u64,
                showing_expected: 0,
                verdicts: BTreeMap::from([
                    ("pass".into(), seeds - failures.len() as u64),
                    ("correctness".into(), failures.len() as u64),
                ]),
            },
            failures,
            wall_s: 1.0,
        }
    }

    #[test]
    fn shards_split_a_range_into_disjoint_parts_that_cover_it() {
        for total in 1..6 {
            for seed in 10..40 {
                let owners = (1..=total)
                    .filter(|&index| Shard { index, total }.owns(10, seed))
                    .count();
                assert_eq!(owners, 1, "seed {seed} of {total} shards");
            }
        }
        assert_eq!(Shard::parse("2/4"), Ok(Shard { index: 2, total: 4 }));
        for bad in ["0/4", "5/4", "1/0", "x/2", "3", ""] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn distinct_failures_group_by_verdict_and_kinds_with_first_and_smallest_seed() {
        let r = report(
            None,
            vec![
                failure(3, &["lost_event"], 900),
                failure(5, &["lost_event"], 400),
                failure(6, &["duplicate_effect"], 10),
            ],
            8,
        );
        let d = r.distinct();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].signature, "correctness: lost_event");
        assert_eq!((d[0].seeds, d[0].first.seed, d[0].smallest.seed), (2, 3, 5));
        assert_eq!((d[1].seeds, d[1].first.seed), (1, 6));
        // Two duplicates of different mechanisms are two distinct failures.
        let caused = |seed, cause: &str| Failure {
            causes: vec![format!("duplicate_effect/{cause}")],
            ..failure(seed, &["duplicate_effect"], 10)
        };
        let r = report(
            None,
            vec![
                caused(1, "fail_open"),
                caused(2, "db_timeout_late_write"),
                caused(3, "fail_open"),
            ],
            8,
        );
        let d = r.distinct();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].signature, "correctness: duplicate_effect/fail_open");
        assert_eq!((d[0].seeds, d[0].first.seed), (2, 1));
        assert_eq!(
            d[1].signature,
            "correctness: duplicate_effect/db_timeout_late_write"
        );
        let crash = |detail: &str| Failure {
            kinds: Vec::new(),
            causes: Vec::new(),
            verdict: "crash".into(),
            detail: detail.into(),
            ..failure(1, &[], 1)
        };
        assert_eq!(
            crash("step limit 100 at 5 s").signature(),
            crash("step limit 2000 at 17 s").signature()
        );
        assert_ne!(crash("step limit").signature(), crash("panicked").signature());
    }

    #[test]
    fn merge_is_order_independent_and_refuses_what_is_not_one_sweep() {
        let a = (
            "a".to_string(),
            report(
                Some(Shard { index: 1, total: 2 }),
                vec![failure(2, &["lost_event"], 5)],
                4,
            ),
        );
        let b = (
            "b".to_string(),
            report(
                Some(Shard { index: 2, total: 2 }),
                vec![failure(1, &["lost_event"], 5)],
                4,
            ),
        );
        let ab = merge(&[a.clone(), b.clone()]).unwrap();
        assert_eq!(ab, merge(&[b.clone(), a.clone()]).unwrap());
        assert_eq!(ab.counts.seeds, 8);
        assert_eq!(ab.failures.iter().map(|f| f.seed).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(ab.shard, None);
        assert!(merge(std::slice::from_ref(&a))
            .unwrap_err()
            .contains("shard 2/2 is missing"));
        assert!(merge(&[a.clone(), a.clone()])
            .unwrap_err()
            .contains("both shard 1/2"));
        let mut other = b.clone();
        other.1.scenario_sha256 = "def".into();
        assert!(merge(&[a.clone(), other])
            .unwrap_err()
            .contains("scenario_sha256"));
        let mut killed = b.clone();
        killed.1.status = Status::Running;
        assert_eq!(merge(&[a, killed]).unwrap().status, Status::Running);
    }

    #[test]
    fn only_a_whole_sweep_that_ran_to_its_end_or_a_limit_is_judged_for_the_expected_violation() {
        let mut r = report(None, Vec::new(), 8);
        r.expect = vec!["lost_event".into()];
        assert_eq!(r.exit_code(), 7, "no seed showed it");
        r.counts.showing_expected = 1;
        assert_eq!(r.exit_code(), 0);
        r.counts.showing_expected = 0;
        r.status = Status::OutOfTime;
        assert_eq!(r.exit_code(), 7, "judged on the seeds it ran");
        r.status = Status::Running;
        assert_eq!(r.exit_code(), 0, "a killed sweep's counts are partial");
        r.status = Status::Complete;
        r.shard = Some(Shard { index: 1, total: 2 });
        assert_eq!(
            r.exit_code(),
            0,
            "a shard's seeds may show none; the merge judges"
        );
        let mut other = r.clone();
        other.shard = Some(Shard { index: 2, total: 2 });
        let merged = merge(&[("a".into(), r.clone()), ("b".into(), other.clone())]).unwrap();
        assert_eq!(merged.exit_code(), 7);
        other.counts.showing_expected = 1;
        assert_eq!(
            merge(&[("a".into(), r), ("b".into(), other)])
                .unwrap()
                .exit_code(),
            0
        );
    }

    #[test]
    fn a_report_reads_back_as_written() {
        let dir = std::env::temp_dir().join(format!("sim-report-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.json");
        let r = report(None, vec![failure(2, &["lost_event"], 5)], 8);
        r.write_atomic(&path).unwrap();
        assert_eq!(SweepReport::read(&path).unwrap(), r);
        std::fs::write(&path, "{").unwrap();
        assert!(SweepReport::read(&path).unwrap_err().contains("r.json"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
