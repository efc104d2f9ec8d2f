//! `sim bench`: seeds run one after another on this thread, to measure speed (runs, virtual
//! seconds and trace events per wall second, and the slowest seed). It judges nothing: the exit
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
    for seed in 0..count {
        let r = crate::run::run(seed, config);
        virtual_us += r.virtual_us;
        events += r.events.len();
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
    0
}
