//! The supervisor: the run's phases. During the safety phase it injects the timed entries
//! (the scenario's and the nemesis's, as the nemesis draws them) and heals what is due; at the
//! safety phase's end every node heals; in the liveness phase it waits until every event is
//! applied (plus a moment for late work) or the liveness phase's time is up. Whether it
//! converged or ran out of time, the checkers tell from the record.
//!
//! It never polls: it sleeps until the next thing it knows of (a timed entry, a heal, the
//! phase's end), and is woken early when a worker's trigger plans a heal or, in the liveness
//! phase, when the nodes' reports say the run has converged.

use super::world::{inject_timed, Entry, World};
use crate::fault::nemesis::Nemesis;
use crate::fault::schedule::{ScheduledFault, Trigger};
use crate::trace::now_us;
use std::sync::Arc;
use std::time::Duration;

/// In the safety phase the supervisor wakes at least this often.
const SAFETY_WAKE_US: u64 = 10_000_000;
/// After convergence, how long in-flight work has to land (so late duplicates are seen too).
const SETTLE_US: u64 = 2_000_000;
/// The shortest sleep between two wake-ups (bounds the loop).
const NAP_MIN_US: u64 = 1_000;

/// Runs the phases to the end; returns the entries the nemesis drew, in order.
pub(crate) async fn supervise(world: Arc<World>, mut nemesis: Nemesis) -> Vec<ScheduledFault> {
    let safety_end = world.config.safety_end_us();
    let liveness_end = world.config.liveness_end_us();
    let mut drawn = Vec::new();
    let mut safety = true;
    let mut converged_at: Option<u64> = None;
    loop {
        let now = now_us();
        world.faults.lock().expect("fault state").heal_due(&*world, now);
        fire_timed(&world, now);
        if safety {
            if now >= safety_end {
                world.faults.lock().expect("fault state").begin_liveness(&*world);
                safety = false;
            } else {
                // Bounded: each entry comes due at least 1 ms after the one before.
                while let Some(entry) = nemesis.due(now) {
                    drawn.push(entry.clone());
                    world.entries.lock().expect("entries").push(Entry {
                        fault: entry,
                        by: "nemesis",
                        fired: false,
                        armed: false,
                    });
                    fire_timed(&world, now);
                }
            }
        } else if let Some(at) = converged_at {
            if now >= at + SETTLE_US {
                return drawn;
            }
        } else if world.converged() {
            converged_at = Some(now);
        } else if now >= liveness_end {
            return drawn;
        }
        let mut next = if safety {
            (now + SAFETY_WAKE_US)
                .min(nemesis.next_fault_us())
                .min(safety_end)
        } else {
            converged_at.map_or(liveness_end, |at| at + SETTLE_US)
        };
        if let Some(t) = next_timed_us(&world, now) {
            next = next.min(t);
        }
        {
            let mut faults = world.faults.lock().expect("fault state");
            faults.planned();
            if let Some(h) = faults.next_heal_us() {
                next = next.min(h);
            }
        }
        // Sleep until then, or until a worker's trigger schedules an earlier heal, or (in
        // the liveness phase, before convergence) until the run converges.
        let wait_convergence = !safety && converged_at.is_none();
        nap(&world, next.max(now + NAP_MIN_US), wait_convergence).await;
    }
}

/// Injects the `at_ms` entries due at `now` and arms the `point` entries whose `after_ms` has
/// come, in the list's order.
fn fire_timed(world: &World, now: u64) {
    let due: Vec<(ScheduledFault, &'static str)> = {
        let mut entries = world.entries.lock().expect("entries");
        let mut due = Vec::new();
        for e in entries.iter_mut().filter(|e| !e.fired) {
            match e.fault.trigger() {
                Ok(Trigger::At(_)) if e.fault.at_us().is_some_and(|t| t <= now) => {
                    e.fired = true;
                    due.push((e.fault.clone(), e.by));
                }
                Ok(Trigger::Point {
                    after_ms: Some(t), ..
                }) if t.saturating_mul(1000) <= now => {
                    e.armed = true;
                }
                _ => {}
            }
        }
        // Arming makes entries fireable by a worker; counted again under the same lock.
        let fireable = entries.iter().filter(|e| e.fireable()).count();
        world
            .fireable
            .store(fireable, std::sync::atomic::Ordering::Relaxed);
        due
    };
    for (entry, by) in due {
        inject_timed(world, &entry.fault_for(None), entry.lasts_us(), by);
    }
}

/// The next time an entry comes due or is armed, after `now`.
fn next_timed_us(world: &World, now: u64) -> Option<u64> {
    let entries = world.entries.lock().expect("entries");
    entries
        .iter()
        .filter(|e| !e.fired)
        .filter_map(|e| match e.fault.at_us() {
            Some(t) => Some(t),
            None if !e.armed => e.fault.after_ms.map(|t| t.saturating_mul(1000)),
            None => None,
        })
        .filter(|t| *t > now)
        .min()
}

/// Sleeps until `until_us` (virtual time), or until a heal is scheduled meanwhile
/// ([`super::faults::FaultState::planned`] marks what the sleeper already knows), or,
/// with `convergence`, until the run converges.
async fn nap(world: &World, until_us: u64, convergence: bool) {
    use std::future::Future;
    let mut sleep = std::pin::pin!(madsim::time::sleep(Duration::from_micros(
        until_us.saturating_sub(now_us())
    )));
    std::future::poll_fn(|cx| {
        if sleep.as_mut().poll(cx).is_ready() {
            return std::task::Poll::Ready(());
        }
        if world
            .faults
            .lock()
            .expect("fault state")
            .changed_or_wait(cx.waker())
        {
            return std::task::Poll::Ready(());
        }
        if convergence && world.converged_or_wait(cx.waker()) {
            return std::task::Poll::Ready(());
        }
        std::task::Poll::Pending
    })
    .await
}
