//! Many seeds, a few at a time: `jobs` workers take the next seed as soon as they finish one
//! (no batch waits for its slowest seed), and the results reach the caller in seed order.
//!
//! Each seed still runs on its own fresh thread and runtime ([`super::run`] makes them); the
//! workers only hand out seeds. Memory stays flat however many seeds run: a result is handed
//! on as soon as the seeds before it are, and no worker runs more than [`WINDOW_PER_JOB`]
//! times `jobs` seeds ahead of the oldest seed not yet handed on.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};

/// How far (in seeds per job) workers may run ahead of the oldest result not yet handed on.
pub const WINDOW_PER_JOB: u64 = 4;

/// Runs `work` for every seed of `seeds` on `jobs` workers and gives each result to `sink` in
/// seed order. `sink` returns false to stop: no new seed starts, the ones running finish and
/// are dropped.
pub fn in_order<T: Send>(
    seeds: std::ops::Range<u64>,
    jobs: usize,
    work: impl Fn(u64) -> T + Sync,
    mut sink: impl FnMut(u64, T) -> bool,
) {
    // Never more workers than seeds: a worker with no seed to run is a thread for nothing.
    let seeds_n = usize::try_from(seeds.end.saturating_sub(seeds.start)).unwrap_or(usize::MAX);
    let jobs = jobs.clamp(1, seeds_n.max(1));
    let window = WINDOW_PER_JOB * jobs as u64;
    // The next seed to hand out, the oldest not yet handed on, and whether to stop.
    let state = Arc::new((Mutex::new((seeds.start, seeds.start, false)), Condvar::new()));
    let (tx, rx) = mpsc::channel::<(u64, T)>();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let (tx, state, work) = (tx.clone(), state.clone(), &work);
            let end = seeds.end;
            scope.spawn(move || loop {
                let seed = {
                    let (lock, ready) = &*state;
                    let mut st = lock.lock().expect("pool state");
                    // Bounded: the window moves on whenever the caller takes a result.
                    while !st.2 && st.0 < end && st.0 >= st.1 + window {
                        st = ready.wait(st).expect("pool state");
                    }
                    if st.2 || st.0 >= end {
                        return;
                    }
                    st.0 += 1;
                    st.0 - 1
                };
                if tx.send((seed, work(seed))).is_err() {
                    return;
                }
            });
        }
        drop(tx);
        let mut waiting: BTreeMap<u64, T> = BTreeMap::new();
        let mut next = seeds.start;
        let mut stopped = false;
        for (seed, result) in rx {
            if stopped {
                continue;
            }
            waiting.insert(seed, result);
            while let Some(result) = waiting.remove(&next) {
                let go_on = sink(next, result);
                next += 1;
                let (lock, ready) = &*state;
                let mut st = lock.lock().expect("pool state");
                st.1 = next;
                st.2 |= !go_on;
                ready.notify_all();
                if !go_on {
                    stopped = true;
                    waiting.clear();
                    break;
                }
            }
            assert!(waiting.len() as u64 <= window, "the window holds");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_arrive_in_seed_order_whatever_order_they_finish_in() {
        let mut seen = Vec::new();
        in_order(
            10..40,
            3,
            |seed| {
                // Later seeds finish first within a window.
                std::thread::sleep(std::time::Duration::from_micros((40 - seed) * 50));
                seed * 2
            },
            |seed, doubled| {
                assert_eq!(doubled, seed * 2);
                seen.push(seed);
                true
            },
        );
        assert_eq!(seen, (10..40).collect::<Vec<_>>());
    }

    #[test]
    fn a_sink_that_stops_starts_no_more_seeds() {
        let started = std::sync::atomic::AtomicU64::new(0);
        let mut seen = Vec::new();
        in_order(
            0..1000,
            2,
            |seed| {
                started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                seed
            },
            |seed, _| {
                seen.push(seed);
                seed < 5
            },
        );
        assert_eq!(seen, vec![0, 1, 2, 3, 4, 5]);
        let started = started.into_inner();
        assert!(started <= 6 + WINDOW_PER_JOB * 2, "{started} seeds started");
    }
}
