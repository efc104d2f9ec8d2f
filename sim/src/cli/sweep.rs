//! `sim sweep`: many seeds, a few at a time on their own threads, each judged like a single
//! run, in the forms CI wants.
//!
//! Which seeds: `--seeds A..B`, or `--from N --count M`, or `--seed-base git` (the first seed
//! derived from the build's commit, so each commit's CI covers new seeds); `--shard K/N` (or
//! `--shard auto`, from a Kubernetes Indexed Job's `JOB_COMPLETION_INDEX` and [`SHARD_COUNT_ENV`])
//! keeps a stable part of them; `--duration` runs as many as fit and `--stop-after-failures`
//! ends early. While it runs: a progress bar on a terminal, else a status line on stderr every
//! few seconds. What it finds: each failing seed with its reproduce command as found, then a
//! summary with the distinct failures; `--report` JSON rewritten atomically as failures come
//! (so a killed sweep loses none) and `--junit` XML (see [`crate::report::sweep`]). The exit
//! code is the worst failing seed's, or [`EXIT_EXPECTATION_UNMET`] when a scenario that expects
//! a violation saw it on no seed.

use super::{EXIT_EXPECTATION_UNMET, EXIT_NONDETERMINISM, EXIT_USAGE};
use crate::report::sweep::{Counts, Failure, Shard, Status, SweepReport, FORMAT};
use crate::report::{first_difference, summary};
use crate::run::RunResult;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The environment variable `--shard auto` reads the number of shards from (the index comes
/// from `JOB_COMPLETION_INDEX`, which a Kubernetes Indexed Job sets, 0-based).
pub const SHARD_COUNT_ENV: &str = "SIM_SHARD_COUNT";

/// The environment variable a Kubernetes Indexed Job sets to each pod's index (0-based).
pub const SHARD_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// Failing seeds of one distinct failure printed in full as they are found; the rest are
/// counted (all of them are in the report).
const PRINTED_PER_FAILURE: u64 = 3;

/// How often the report is rewritten (besides at every failure) and the status line printed.
const STATUS_EVERY: Duration = Duration::from_secs(5);

/// The sweep's command line, as parsed.
#[derive(Debug, Default)]
pub(super) struct SweepArgs {
    pub from: Option<u64>,
    pub count: Option<u64>,
    pub seeds: Option<String>,
    pub seed_base_git: bool,
    pub duration: Option<String>,
    pub jobs: usize,
    pub shard: Option<String>,
    pub report: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub stop_after_failures: Option<u64>,
    pub save_failures: Option<PathBuf>,
    pub shrink: Option<PathBuf>,
    pub check_determinism: bool,
}

/// What to run, resolved from [`SweepArgs`] and checked.
struct Plan {
    start: u64,
    end: u64,
    shard: Option<Shard>,
    duration: Option<Duration>,
    /// How the range was chosen, for the header line.
    origin: String,
}

impl Plan {
    /// How many seeds of the range are this shard's.
    fn positions(&self) -> u64 {
        let len = self.end - self.start;
        match self.shard {
            None => len,
            Some(s) if len >= s.index => (len - (s.index - 1)).div_ceil(s.total),
            Some(_) => 0,
        }
    }

    /// The seed at `position` of this shard's seeds.
    fn seed(&self, position: u64) -> u64 {
        match self.shard {
            None => self.start + position,
            Some(s) => self.start + (s.index - 1) + position * s.total,
        }
    }
}

/// The first seed `--seed-base git` gives for the build `commit`: 48 bits of its SHA-256, so a
/// range of any practical length after it stays below `u64::MAX`.
pub fn seed_base(commit: &str) -> u64 {
    use sha2::Digest;
    let d = sha2::Sha256::digest(commit.as_bytes());
    d[..6].iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
}

fn plan(a: &SweepArgs, env: &dyn Fn(&str) -> Option<String>) -> Result<Plan, String> {
    let duration = a
        .duration
        .as_deref()
        .map(|d| {
            humantime::parse_duration(d)
                .map_err(|e| format!("--duration {d:?}: {e} (e.g. 90s, 10m, 1h)"))
                .and_then(|d| {
                    if d.is_zero() {
                        Err("--duration must be more than 0".into())
                    } else {
                        Ok(d)
                    }
                })
        })
        .transpose()?;
    let (start, end, origin) = if let Some(text) = &a.seeds {
        if a.from.is_some() || a.count.is_some() || a.seed_base_git {
            return Err(
                "--seeds A..B is the whole range: give it without --from, --count or --seed-base".into(),
            );
        }
        let bad = || format!("--seeds {text:?}: expected A..B with A < B (B not included), e.g. 0..1000");
        let (lo, hi) = text.split_once("..").ok_or_else(bad)?;
        let (lo, hi) = (
            lo.trim().parse::<u64>().map_err(|_| bad())?,
            hi.trim().parse::<u64>().map_err(|_| bad())?,
        );
        if lo >= hi {
            return Err(bad());
        }
        (lo, hi, format!("seeds={lo}..{hi}"))
    } else {
        let (start, origin) = match (a.seed_base_git, a.from) {
            (true, Some(_)) => {
                return Err("--seed-base git chooses the first seed: give it without --from".into())
            }
            (true, None) => {
                let commit = env!("SIM_GIT_COMMIT");
                if commit == "unknown" {
                    return Err("--seed-base git: this build does not know its commit (built outside a git checkout); give --from".into());
                }
                let start = seed_base(commit);
                (start, format!("seed_base=git commit={commit} from={start}"))
            }
            (false, from) => {
                let from = from.unwrap_or(0);
                (from, format!("from={from}"))
            }
        };
        let count = match (a.count, duration) {
            (Some(0), _) => return Err("sweep --count must be at least 1".into()),
            (Some(n), _) => n,
            // Bounded by the clock instead.
            (None, Some(_)) => u64::MAX - start,
            (None, None) => 100,
        };
        let end = start.checked_add(count).ok_or_else(|| {
            format!(
                "sweep --from {start} --count {count} runs past the last seed ({}): lower --from or --count",
                u64::MAX
            )
        })?;
        let origin = if duration.is_some() && a.count.is_none() {
            origin
        } else {
            format!("{origin} count={count}")
        };
        (start, end, origin)
    };
    if a.stop_after_failures == Some(0) {
        return Err("--stop-after-failures must be at least 1".into());
    }
    if start == end {
        return Err(format!("the range {start}..{end} holds no seed"));
    }
    let shard = match a.shard.as_deref() {
        None => None,
        Some("auto") => {
            let read = |name: &str| -> Result<u64, String> {
                let v = env(name).ok_or_else(|| {
                    format!("--shard auto reads {SHARD_INDEX_ENV} (0-based) and {SHARD_COUNT_ENV}: {name} is not set")
                })?;
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| format!("--shard auto: {name}={v:?} is not a number"))
            };
            let (index, total) = (read(SHARD_INDEX_ENV)?, read(SHARD_COUNT_ENV)?);
            Some(Shard::parse(&format!("{}/{total}", index + 1)).map_err(|_| {
                format!("--shard auto: {SHARD_INDEX_ENV}={index} is not below {SHARD_COUNT_ENV}={total}")
            })?)
        }
        Some(text) => Some(Shard::parse(text)?),
    };
    Ok(Plan {
        start,
        end,
        shard,
        duration,
        origin,
    })
}

/// When a sweep will end, `elapsed` into it with `done` seeds run: when its `total` seeds are
/// run at the rate so far, or when its `duration` runs out, whichever comes first (`None`
/// before a rate is known with neither bound a duration).
fn eta(done: u64, total: Option<u64>, elapsed: Duration, duration: Option<Duration>) -> Option<Duration> {
    let by_count = total.filter(|_| done > 0).map(|n| {
        let per_seed = elapsed.as_secs_f64() / done as f64;
        Duration::from_secs_f64(n.saturating_sub(done) as f64 * per_seed)
    });
    let by_clock = duration.map(|d| d.saturating_sub(elapsed));
    match (by_count, by_clock) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Progress on stderr: a bar on a terminal, a plain line every [`STATUS_EVERY`] otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    last_line: Instant,
    total: Option<u64>,
    duration: Option<Duration>,
}

impl Progress {
    fn new(total: Option<u64>, duration: Option<Duration>) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = match total {
                Some(n) => indicatif::ProgressBar::new(n),
                None => indicatif::ProgressBar::new_spinner(),
            };
            // The ETA is ours (in the message): indicatif's knows the seed count, not the
            // --duration that may end the sweep first.
            let template = if total.is_some() {
                "{elapsed_precise} [{bar:30}] {pos}/{len} seeds, {msg}, {per_sec}"
            } else {
                "{elapsed_precise} {spinner} {pos} seeds, {msg}, {per_sec}"
            };
            if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message("0 failures");
            bar
        });
        Progress {
            bar,
            started: Instant::now(),
            last_line: Instant::now(),
            total,
            duration,
        }
    }

    fn update(&mut self, done: u64, failures: u64) {
        let elapsed = self.started.elapsed();
        let eta = eta(done, self.total, elapsed, self.duration)
            .map_or(String::new(), |d| format!(", eta {:.0} s", d.as_secs_f64()));
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            bar.set_message(format!("{failures} failures{eta}"));
            return;
        }
        if self.last_line.elapsed() < STATUS_EVERY {
            return;
        }
        self.last_line = Instant::now();
        let rate = done as f64 / elapsed.as_secs_f64().max(1e-9);
        let of = match self.total {
            Some(n) => format!("{done}/{n} seeds"),
            None => format!("{done} seeds"),
        };
        eprintln!("sweep: {of}{eta}, {failures} failures, {rate:.1} seeds/s");
    }

    /// Prints `line` to `out` without tearing the bar.
    fn println(&self, out: &mut dyn Write, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| {
                let _ = writeln!(out, "{line}");
            }),
            None => {
                let _ = writeln!(out, "{line}");
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// SHA-256 of the scenario's knobs as printed: the report's configuration hash.
fn config_hash(knobs: &[String]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for k in knobs {
        h.update(k.as_bytes());
        h.update(b"\n");
    }
    format!("{:x}", h.finalize())
}

/// Whether `r` expected violations on every seed and showed none of them (not a crash).
fn missed_expected(r: &RunResult, expected: &[String], every_seed: bool) -> bool {
    let crashed = matches!(r.verdict, crate::run::Verdict::Crash(_));
    every_seed
        && !expected.is_empty()
        && !crashed
        && !crate::check::as_expected(expected, r.verdict.violations())
}

/// Whether `r`'s verdict is what the scenario expects: no crash, only expected violations,
/// and none missed (a determinism difference aside).
fn as_expected(r: &RunResult, expected: &[String], every_seed: bool) -> bool {
    let crashed = matches!(r.verdict, crate::run::Verdict::Crash(_));
    !crashed
        && crate::check::only_expected(expected, r.verdict.violations())
        && !missed_expected(r, expected, every_seed)
}

/// A seed's failure record, or `None` if it is as expected. A seed is as expected when it
/// shows nothing but the scenario's expected violations; under `expect_on_every_seed` it must
/// also show them.
fn failure(
    r: &RunResult,
    diff: Option<String>,
    expected: &[String],
    every_seed: bool,
    reproduce: impl FnOnce() -> String,
) -> Option<Failure> {
    let violations = r.verdict.violations();
    let missed = missed_expected(r, expected, every_seed);
    if diff.is_none() && as_expected(r, expected, every_seed) {
        return None;
    }
    let mut kinds: Vec<String> = violations.iter().map(|v| v.kind.to_string()).collect();
    kinds.sort();
    kinds.dedup();
    let (verdict, exit_code, detail) = match (&diff, &r.verdict) {
        (Some(d), _) => ("nondeterminism".to_string(), EXIT_NONDETERMINISM, d.clone()),
        (None, crate::run::Verdict::Crash(m)) => ("crash".to_string(), r.verdict.exit_code(), m.clone()),
        (None, v) if missed && v.violations().is_empty() => (
            "missed".to_string(),
            EXIT_EXPECTATION_UNMET,
            format!(
                "expected {} on every seed; this seed showed none",
                expected.join(" or ")
            ),
        ),
        (None, v) => (
            v.name().to_string(),
            v.exit_code_against(expected).max(1),
            v.violations().first().map(|v| v.to_string()).unwrap_or_default(),
        ),
    };
    Some(Failure {
        seed: r.seed,
        verdict,
        exit_code,
        causes: if diff.is_some() || !violations.iter().any(|v| crate::check::why::explains(v.kind)) {
            Vec::new()
        } else {
            crate::check::why::labels(&r.events, violations)
                .into_iter()
                .collect()
        },
        kinds: if diff.is_some() { Vec::new() } else { kinds },
        detail,
        fingerprint: r.fingerprint(),
        trace_events: r.events.len(),
        reproduce: reproduce(),
        drawn: None,
        shrunk: None,
    })
}

/// Shrinks the failing run `r` into `dir` (`sweep --shrink`): its report entry and the line
/// the sweep prints.
fn shrink_first(
    config: &crate::scenario::config::SimConfig,
    flags: &str,
    r: &RunResult,
    dir: &std::path::Path,
) -> Result<(crate::report::sweep::Shrunk, String), String> {
    use crate::shrink::Size;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(format!("shrunk-{}-seed-{}.toml", config.name, r.seed));
    let budget = crate::shrink::Budget::default();
    match super::shrink::shrink_to_file(config, flags, r.seed, r, &path, budget, &mut |_| {}) {
        Ok((s, _)) => {
            let (a, b) = (Size::of(&s.original), Size::of(&s.config));
            let entry = crate::report::sweep::Shrunk {
                scenario: path.display().to_string(),
                faults: b.faults,
                events: b.events,
                trace_events: s.outcome.trace_events,
                runs: s.runs,
                stop: s.stop.to_string(),
            };
            let line = format!(
                "  shrunk: {} ({} -> {} faults, {} -> {} events, {} -> {} trace events; {} runs; {})",
                entry.scenario,
                a.faults,
                b.faults,
                a.events,
                b.events,
                s.original_outcome.trace_events,
                s.outcome.trace_events,
                s.runs,
                s.stop
            );
            Ok((entry, line))
        }
        Err(super::shrink::Failed::Differs(got)) => Err(format!(
            "its run made explicit fails with {got}, not as the seed did"
        )),
        Err(super::shrink::Failed::Input(e)) => {
            eprintln!("error: {e}");
            Err(e)
        }
    }
}

pub(super) fn sweep(configured: &super::Configured, args: &SweepArgs, out: &mut dyn Write) -> i32 {
    let (config, flags) = (&configured.config, configured.flags.as_str());
    let plan = match plan(args, &|name| std::env::var(name).ok()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    // The JUnit file is written at the end: find out now that it can be (the JSON report is
    // written at once, below). A file the check created is removed again, so a killed sweep
    // leaves no empty XML for a CI step to choke on.
    let junit_existed = args.junit.as_ref().is_some_and(|p| p.exists());
    if let Err(e) = super::run::check_writable(&[&args.junit]) {
        eprintln!("error: {e}");
        return EXIT_USAGE;
    }
    if let (Some(path), false) = (&args.junit, junit_existed) {
        let _ = std::fs::remove_file(path);
    }
    let determinism = args.check_determinism;
    let positions = plan.positions();
    // A seed per thread: never more threads than seeds.
    let jobs = (args.jobs.max(1) as u64).min(positions.max(1)) as usize;
    let shard_text = plan.shard.map_or(String::new(), |s| format!(" shard={s}"));
    let duration_text = plan
        .duration
        .map_or(String::new(), |d| format!(" duration_s={}", d.as_secs_f64()));
    let _ = writeln!(
        out,
        "SWEEP scenario={} {}{shard_text}{duration_text} jobs={jobs} check_determinism={determinism}",
        config.name, plan.origin
    );
    for line in configured.header() {
        let _ = writeln!(out, "{line}");
    }
    let knobs = config.knobs();
    let expected = config.expect.kinds();
    let mut report = SweepReport {
        format: FORMAT.into(),
        scenario: config.name.clone(),
        scenario_sha256: config_hash(&knobs),
        build: super::VERSION.into(),
        flags: flags.to_string(),
        check_determinism: determinism,
        expect: expected.clone(),
        start: plan.start,
        end: plan.end,
        shard: plan.shard,
        status: Status::Running,
        counts: Counts::default(),
        failures: Vec::new(),
        wall_s: 0.0,
    };
    let write_report = |report: &SweepReport| -> bool {
        match &args.report {
            Some(path) => match report.write_atomic(path) {
                Ok(()) => true,
                Err(e) => {
                    eprintln!("error: cannot write the report {}: {e}", path.display());
                    false
                }
            },
            None => true,
        }
    };
    if !write_report(&report) {
        return EXIT_USAGE;
    }
    let started = Instant::now();
    let mut progress = Progress::new(
        (plan.duration.is_none() || args.count.is_some() || args.seeds.is_some()).then_some(positions),
        plan.duration,
    );
    let mut faults: std::collections::BTreeMap<String, usize> = Default::default();
    let (mut duplicates, mut virtual_us) = (0usize, 0u64);
    let mut kafka = crate::check::kafka::KafkaStats::default();
    let mut printed: std::collections::BTreeMap<String, u64> = Default::default();
    let mut last_write = Instant::now();
    let mut report_ok = true;
    let check = if determinism { " --check-determinism" } else { "" };
    // Only a seed the sweep reports needs its history back (to explain it, fingerprint it or
    // compare it with its second run): the others' is dropped on their own threads.
    let shared_expected = std::sync::Arc::new(expected.clone());
    let work = |position: u64| -> (RunResult, Option<String>) {
        let seed = plan.seed(position);
        let (expected, every_seed) = (shared_expected.clone(), config.expect_on_every_seed);
        let keep = move |r: &RunResult| determinism || !as_expected(r, &expected, every_seed);
        let r = crate::run::run_keeping(seed, config, &crate::run::Extensions::default(), keep);
        let diff = determinism
            .then(|| first_difference(&r, &crate::run::run(seed, config)))
            .flatten();
        (r, diff)
    };
    crate::run::pool::in_order(0..positions, jobs, work, |_, (r, diff)| {
        let c = &mut report.counts;
        c.seeds += 1;
        *c.verdicts.entry(r.verdict.name().to_string()).or_default() += 1;
        for (k, n) in &r.faults {
            *faults.entry(k.clone()).or_default() += n;
        }
        duplicates += r.duplicates;
        kafka += &r.kafka;
        virtual_us += r.virtual_us;
        if !expected.is_empty() && crate::check::as_expected(&expected, r.verdict.violations()) {
            c.showing_expected += 1;
        }
        let reproduce = || format!("cargo run -p sim -- --seed {}{flags}{check}", r.seed);
        match failure(&r, diff, &expected, config.expect_on_every_seed, reproduce) {
            None => c.as_expected += 1,
            Some(mut f) => {
                // A swarm seed's failure says what the seed drew (the run printed it too).
                if config.swarm {
                    f.drawn = Some(config.for_seed(r.seed).description);
                }
                c.failed += 1;
                let signature = f.signature();
                let lines: Vec<String> = if f.verdict == "nondeterminism" {
                    vec![format!("seed {} NON-DETERMINISM: {}", f.seed, f.detail)]
                } else {
                    let mut l = vec![format!("seed {}: {}", r.seed, summary(&r))];
                    if let Some(d) = &f.drawn {
                        l.push(format!("  drawn: {d}"));
                    }
                    for v in r.verdict.violations().iter().take(3) {
                        l.push(format!("  violation: {v}"));
                        if let Some(why) = crate::check::why::explain(&r.events, v) {
                            l.push(format!("    why: {why}"));
                        }
                    }
                    l
                };
                let mut lines = lines;
                let focus = r
                    .verdict
                    .violations()
                    .iter()
                    .find_map(|v| super::run::focus_of(&v.event_id));
                if let (Some(focus), true) = (focus, f.verdict != "nondeterminism") {
                    lines.push(format!(
                        "  diagram: cargo run -p sim -- --seed {}{flags} --mermaid failure.md --focus {focus}",
                        r.seed
                    ));
                }
                let reproduce = format!("  reproduce: {}", f.reproduce);
                let first_of_its_kind = !printed.contains_key(&signature);
                // A non-determinism has no verdict to expect: it is reported, not saved.
                let savable = f.verdict != "nondeterminism";
                if let (Some(dir), true, true) = (&args.save_failures, first_of_its_kind, savable) {
                    let note = format!("found by a sweep: {signature}");
                    // A seed that missed the expected violations is kept expecting them (it
                    // replays as a failure until the harness finds them again).
                    let kinds: Vec<&str> = if f.verdict == "missed" {
                        expected.iter().map(String::as_str).collect()
                    } else {
                        r.verdict.violations().iter().map(|v| v.kind).collect()
                    };
                    let saved = crate::scenario::corpus::save_entry(
                        dir,
                        config,
                        r.seed,
                        &r.drawn,
                        &kinds,
                        crate::scenario::config::CorpusMeta {
                            found: super::now_utc(),
                            origin: f.reproduce.clone(),
                            note,
                            finding: None,
                        },
                    );
                    match saved {
                        Ok((path, true)) => lines.push(format!("  saved: {}", path.display())),
                        Ok((path, false)) => {
                            lines.push(format!("  kept the existing entry {}", path.display()))
                        }
                        Err(e) => {
                            eprintln!("error: cannot save the corpus entry: {e}");
                            report_ok = false;
                        }
                    }
                }
                let mut f = f;
                let shrinkable = matches!(f.verdict.as_str(), "correctness" | "liveness" | "crash");
                if let (Some(dir), true, true) = (&args.shrink, first_of_its_kind, shrinkable) {
                    match shrink_first(config, flags, &r, dir) {
                        Ok((entry, line)) => {
                            lines.push(line);
                            f.shrunk = Some(entry);
                        }
                        Err(e) => lines.push(format!("  not shrunk: {e}")),
                    }
                }
                report.failures.push(f);
                let n = printed.entry(signature).or_default();
                *n += 1;
                if *n <= PRINTED_PER_FAILURE {
                    // The report first: what the sweep prints as found is in it even if the
                    // sweep is killed the next moment. (Failures not printed wait for the next
                    // periodic write, so a sweep where every seed fails does not rewrite the
                    // report at every seed.)
                    report.wall_s = started.elapsed().as_secs_f64();
                    report_ok &= write_report(&report);
                    last_write = Instant::now();
                    for line in lines.iter().chain([&reproduce]) {
                        progress.println(out, line);
                    }
                }
            }
        }
        progress.update(report.counts.seeds, report.counts.failed);
        if last_write.elapsed() >= STATUS_EVERY {
            report.wall_s = started.elapsed().as_secs_f64();
            report_ok &= write_report(&report);
            last_write = Instant::now();
        }
        if report.counts.seeds == positions {
            return true; // the last seed: complete, whatever else holds
        }
        if args
            .stop_after_failures
            .is_some_and(|m| report.counts.failed >= m)
        {
            report.status = Status::Stopped;
            return false;
        }
        if plan.duration.is_some_and(|d| started.elapsed() >= d) {
            report.status = Status::OutOfTime;
            return false;
        }
        true
    });
    progress.finish();
    if report.status == Status::Running {
        report.status = if report.counts.seeds == positions {
            Status::Complete
        } else {
            Status::OutOfTime
        };
    }
    let wall = started.elapsed().as_secs_f64();
    report.wall_s = wall;
    report_ok &= write_report(&report);
    if let Some(path) = &args.junit {
        if let Err(e) = crate::report::sweep::write_atomic(path, report.junit().as_bytes()) {
            eprintln!("error: cannot write the JUnit report {}: {e}", path.display());
            report_ok = false;
        }
    }
    let c = &report.counts;
    let verdicts: Vec<String> = c.verdicts.iter().map(|(k, n)| format!("{k}:{n}")).collect();
    let faults: Vec<String> = faults.iter().map(|(k, n)| format!("{k}:{n}")).collect();
    let _ = writeln!(
        out,
        "sweep: seeds={} verdicts={} duplicates={duplicates} faults={} virtual_s={:.0} wall_s={wall:.1}",
        c.seeds,
        verdicts.join(","),
        faults.join(","),
        virtual_us as f64 / 1e6,
    );
    let _ = writeln!(
        out,
        "kafka: rebalances={} redeliveries={} rejected_commits={} zombie_commits_rejected={} duplicate_records={} duplicate_deliveries={}",
        kafka.rebalances,
        kafka.redeliveries,
        kafka.rejected_commits,
        kafka.zombie_commits_rejected,
        kafka.producer_duplicates,
        kafka.duplicate_deliveries
    );
    print_findings(&report, out);
    match report.status {
        Status::Stopped => {
            let _ = writeln!(out, "stopped after {} failures (--stop-after-failures)", c.failed);
        }
        Status::OutOfTime => {
            let _ = writeln!(out, "--duration ran out after {} seeds", c.seeds);
        }
        Status::Complete | Status::Running => {}
    }
    let mut code = report.exit_code();
    if report.expectation_unmet() {
        let _ = writeln!(
            out,
            "expectation unmet: no seed showed {} (exit {EXIT_EXPECTATION_UNMET})",
            expected.join(" or ")
        );
    }
    let _ = writeln!(
        out,
        "sweep: {} passed, {} failed (a seed passes when its verdict is as the scenario expects); {:.1} seeds/s",
        c.as_expected,
        c.failed,
        c.seeds as f64 / wall.max(1e-9)
    );
    if !report_ok && code == 0 {
        code = EXIT_USAGE;
    }
    code
}

/// How often the expected violations showed (for a scenario that expects some), then the
/// distinct failures, each with its first and its smallest seed and how to reproduce them.
/// `sweep` and `merge` both end with it.
pub(super) fn print_findings(report: &SweepReport, out: &mut dyn Write) {
    let c = &report.counts;
    if !report.expect.is_empty() {
        let _ = writeln!(
            out,
            "expected {}: shown on {} of {} seeds; seeds with anything else: {}",
            report.expect.join(" or "),
            c.showing_expected,
            c.seeds,
            c.failed
        );
    }
    let distinct = report.distinct();
    if distinct.is_empty() {
        return;
    }
    let _ = writeln!(out, "distinct failures: {}", distinct.len());
    for d in distinct {
        let _ = writeln!(
            out,
            "  {}: {} seeds, first {}, smallest {} ({} trace events)",
            d.signature, d.seeds, d.first.seed, d.smallest.seed, d.smallest.trace_events
        );
        let _ = writeln!(out, "    reproduce: {}", d.first.reproduce);
        if d.smallest.seed != d.first.seed {
            let _ = writeln!(out, "    smallest:  {}", d.smallest.reproduce);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> SweepArgs {
        SweepArgs {
            jobs: 1,
            ..Default::default()
        }
    }

    #[test]
    fn a_sharded_plan_runs_exactly_its_part_of_the_range() {
        for total in 1..5u64 {
            let mut all = Vec::new();
            for index in 1..=total {
                let a = SweepArgs {
                    seeds: Some("10..21".into()),
                    shard: Some(format!("{index}/{total}")),
                    ..args()
                };
                let p = plan(&a, &|_| None).unwrap();
                all.extend((0..p.positions()).map(|i| p.seed(i)));
            }
            all.sort();
            assert_eq!(all, (10..21).collect::<Vec<_>>(), "{total} shards");
        }
    }

    /// Under `--duration` the ETA is when the duration runs out (or the count is done, if
    /// sooner); with neither a count nor a rate there is none.
    #[test]
    fn the_eta_under_a_duration_comes_from_the_duration() {
        let s = Duration::from_secs;
        assert_eq!(eta(100, None, s(10), Some(s(60))), Some(s(50)));
        assert_eq!(eta(0, None, s(0), Some(s(60))), Some(s(60)));
        // 10 s per seed for 1000 more seeds, but the duration ends in 50 s.
        assert_eq!(eta(1, Some(1001), s(10), Some(s(60))), Some(s(50)));
        assert_eq!(eta(1, Some(3), s(10), Some(s(600))), Some(s(20)));
        assert_eq!(eta(1, Some(3), s(10), None), Some(s(20)));
        assert_eq!(eta(0, Some(3), s(0), None), None);
        assert_eq!(eta(5, None, s(70), Some(s(60))), Some(s(0)));
    }

    #[test]
    fn shard_auto_reads_the_indexed_jobs_environment() {
        let env = |name: &str| match name {
            SHARD_INDEX_ENV => Some("2".to_string()),
            SHARD_COUNT_ENV => Some("4".to_string()),
            _ => None,
        };
        let a = SweepArgs {
            shard: Some("auto".into()),
            ..args()
        };
        assert_eq!(plan(&a, &env).unwrap().shard, Some(Shard { index: 3, total: 4 }));
        let e = plan(&a, &|_| None).err().unwrap();
        assert!(e.contains(SHARD_INDEX_ENV), "{e}");
        let past = |_: &str| Some("4".to_string());
        assert!(plan(&a, &past).err().unwrap().contains("not below"));
    }

    #[test]
    fn ranges_are_checked() {
        for (a, says) in [
            (
                SweepArgs {
                    seeds: Some("5..5".into()),
                    ..args()
                },
                "A < B",
            ),
            (
                SweepArgs {
                    seeds: Some("1..3".into()),
                    from: Some(1),
                    ..args()
                },
                "without --from",
            ),
            (
                SweepArgs {
                    seed_base_git: true,
                    from: Some(1),
                    ..args()
                },
                "without --from",
            ),
            (
                SweepArgs {
                    count: Some(0),
                    ..args()
                },
                "at least 1",
            ),
            (
                SweepArgs {
                    duration: Some("soon".into()),
                    ..args()
                },
                "--duration",
            ),
        ] {
            let e = plan(&a, &|_| None).err().unwrap_or_default();
            assert!(e.contains(says), "{a:?}: {e}");
        }
        let p = plan(
            &SweepArgs {
                duration: Some("2s".into()),
                from: Some(7),
                ..args()
            },
            &|_| None,
        )
        .unwrap();
        assert_eq!(
            (p.start, p.end, p.duration),
            (7, u64::MAX, Some(Duration::from_secs(2)))
        );
        assert_eq!(seed_base("abc1234"), seed_base("abc1234"));
        assert!(seed_base("abc1234") < 1 << 48);
        assert_ne!(seed_base("abc1234"), seed_base("abc1235"));
    }
}
