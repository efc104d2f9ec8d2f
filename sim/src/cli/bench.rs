//! `sim bench`: seeds run one after another on this thread, to measure speed (runs, virtual
//! seconds and trace events per wall second, the slowest seed, and the RPC round trips per run
//! by request kind). It judges nothing: the exit
//! code is 0.

use crate::scenario::config::SimConfig;
use std::io::Write;

pub(super) fn bench(config: &SimConfig, count: u64, out: &mut dyn Write) -> i32 {
    let profile = if cfg!(debug_assertions) {
        "debug (use --release for numbers)"
    } else {
        "release"
    };
    let _ = writeln!(
        out,
        "BENCH scenario={} seeds=0..{count} build={profile}",
        config.name
    );
    let started = std::time::Instant::now();
    let (mut virtual_us, mut events, mut slowest) = (0u64, 0usize, (0u64, std::time::Duration::ZERO));
    let mut round_trips: std::collections::BTreeMap<&'static str, u64> = Default::default();
    for seed in 0..count {
        let r = crate::run::run(seed, config);
        virtual_us += r.virtual_us;
        events += r.events.len();
        for (kind, n) in &r.round_trips {
            *round_trips.entry(kind).or_insert(0) += n;
        }
        if r.wall > slowest.1 {
            slowest = (seed, r.wall);
        }
    }
    let wall = started.elapsed().as_secs_f64().max(1e-9);
    let _ = writeln!(
        out,
        "bench: {count} runs in {wall:.2} s: {:.1} runs/s, {:.2} ms/run, {:.0} virtual s per wall s, {:.0} trace events/s; slowest seed {} ({} ms)",
        count as f64 / wall,
        wall * 1000.0 / count.max(1) as f64,
        virtual_us as f64 / 1e6 / wall,
        events as f64 / wall,
        slowest.0,
        slowest.1.as_millis()
    );
    let per_run = |n: u64| n as f64 / count.max(1) as f64;
    let total: u64 = round_trips.values().sum();
    let kinds: Vec<String> = round_trips
        .iter()
        .map(|(kind, n)| format!("{kind}={:.1}", per_run(*n)))
        .collect();
    let _ = writeln!(
        out,
        "round trips per run: {:.1} ({})",
        per_run(total),
        kinds.join(" ")
    );
    0
}
