//! `sim sweep`: a range of seeds, run a few at a time on their own threads, each judged like a
//! single run; the failing seeds are printed with the command that reproduces each, then the
//! totals. The exit code is the worst seed's, or [`EXIT_EXPECTATION_UNMET`] when a scenario that
//! expects a violation saw it on no seed.

use super::{EXIT_EXPECTATION_UNMET, EXIT_NONDETERMINISM, EXIT_USAGE};
use crate::report::{first_difference, summary};
use crate::run::RunResult;
use crate::scenario::config::SimConfig;
use std::io::Write;

pub(super) fn sweep(
    config: &SimConfig,
    flags: &str,
    from: u64,
    count: u64,
    jobs: usize,
    determinism: bool,
    out: &mut dyn Write,
) -> i32 {
    if count == 0 {
        eprintln!("error: sweep --count must be at least 1");
        return EXIT_USAGE;
    }
    if from.checked_add(count).is_none() {
        eprintln!(
            "error: sweep --from {from} --count {count} runs past the last seed ({}): lower --from or --count",
            u64::MAX
        );
        return EXIT_USAGE;
    }
    let _ = writeln!(
        out,
        "SWEEP from={from} count={count} jobs={jobs} check_determinism={determinism}"
    );
    for knob in config.knobs() {
        let _ = writeln!(out, "{knob}");
    }
    let started = std::time::Instant::now();
    let mut verdicts: std::collections::BTreeMap<&'static str, u64> = Default::default();
    let mut faults: std::collections::BTreeMap<String, usize> = Default::default();
    let (mut duplicates, mut virtual_us, mut worst, mut passed) = (0usize, 0u64, 0i32, 0u64);
    let expected = config.expect.kinds();
    let (mut showing, mut unexpected) = (0u64, 0u64);
    let mut kafka = crate::check::kafka::KafkaStats::default();
    let work = |seed: u64| -> (RunResult, Option<String>) {
        let r = crate::run::run(seed, config);
        let diff = determinism
            .then(|| first_difference(&r, &crate::run::run(seed, config)))
            .flatten();
        (r, diff)
    };
    crate::run::pool::in_order(from..from + count, jobs, work, |_, (r, diff)| {
        {
            *verdicts.entry(r.verdict.name()).or_default() += 1;
            for (k, n) in &r.faults {
                *faults.entry(k.clone()).or_default() += n;
            }
            duplicates += r.duplicates;
            kafka += &r.kafka;
            if !expected.is_empty() && crate::check::as_expected(&expected, r.verdict.violations()) {
                showing += 1;
            }
            let crashed = matches!(r.verdict, crate::run::Verdict::Crash(_));
            let seed_ok = !crashed && crate::check::only_expected(&expected, r.verdict.violations());
            if !seed_ok {
                unexpected += 1;
            }
            virtual_us += r.virtual_us;
            // A seed is as expected when it shows nothing but the scenario's expected
            // violations (a seed of a violation-expecting scenario may also pass; the sweep
            // as a whole must show them at least once).
            let mut code = if seed_ok { 0 } else { r.verdict.exit_code() };
            if let Some(d) = &diff {
                let _ = writeln!(out, "seed {} NON-DETERMINISM: {d}", r.seed);
                code = EXIT_NONDETERMINISM;
            }
            if code != 0 {
                let _ = writeln!(out, "seed {}: {}", r.seed, summary(&r));
                for v in r.verdict.violations().iter().take(3) {
                    let _ = writeln!(out, "  violation: {v}");
                }
                let check = if determinism { " --check-determinism" } else { "" };
                let _ = writeln!(
                    out,
                    "  reproduce: cargo run -p sim -- --seed {}{flags}{check}",
                    r.seed
                );
            }
            worst = worst.max(code);
            passed += u64::from(code == 0);
        }
        true
    });
    let verdicts: Vec<String> = verdicts.iter().map(|(k, n)| format!("{k}:{n}")).collect();
    let faults: Vec<String> = faults.iter().map(|(k, n)| format!("{k}:{n}")).collect();
    let _ = writeln!(
        out,
        "sweep: seeds={count} verdicts={} duplicates={duplicates} faults={} virtual_s={:.0} wall_s={:.1}",
        verdicts.join(","),
        faults.join(","),
        virtual_us as f64 / 1e6,
        started.elapsed().as_secs_f64()
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
    if !expected.is_empty() {
        let _ = writeln!(
            out,
            "expected {}: shown on {showing} of {} seeds; seeds with anything else: {unexpected}",
            expected.join(" or "),
            count
        );
    }
    if !expected.is_empty() && showing == 0 && worst == 0 {
        let _ = writeln!(
            out,
            "expectation unmet: no seed showed {} (exit {EXIT_EXPECTATION_UNMET})",
            expected.join(" or ")
        );
        worst = EXIT_EXPECTATION_UNMET;
    }
    let _ = writeln!(
        out,
        "sweep: {passed} passed, {} failed (a seed passes when its verdict is as the scenario expects)",
        count - passed
    );
    worst
}
