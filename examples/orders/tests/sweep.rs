//! The same sweep for both handlers: the buggy one fails, the harness shrinks the failure and
//! says why; the fixed one passes every seed.

use orders::{OneEmailPerOrder, SendsAfterCommit, SendsFirst};
use sim::{Budget, Sim};
use std::time::Duration;

fn orders() -> Sim {
    Sim::new("default")
        .expect("a built-in scenario")
        .checker(OneEmailPerOrder)
        .shrink_budget(Budget {
            max_runs: 300,
            max_time: Duration::from_secs(120),
        })
}

#[test]
fn sending_the_email_before_the_commit_sends_it_twice() {
    let sim = orders().handler(SendsFirst);
    let sweep = sim.sweep(0..10);
    let failure = sweep
        .failures
        .iter()
        .find(|f| f.shows("duplicate_email"))
        .unwrap_or_else(|| panic!("the sweep finds the bug:\n{sweep}"));
    let shrunk = sim.shrink(failure.seed).expect("it shrinks");
    let smallest = sim.explain(&shrunk);
    println!("{smallest}");
    // One order, one worker and one fault are enough: the database stalls, the commit times
    // out after the email went, and the retry sends it again.
    assert!(smallest.shows("duplicate_email"), "{smallest}");
    assert_eq!(
        (smallest.size.events, smallest.size.workers),
        (1, 1),
        "{smallest}"
    );
    assert_eq!(smallest.faults.len(), 1, "{smallest}");
    assert!(smallest.why[0].contains("email_sent"), "{smallest}");
}

#[test]
fn sending_it_after_the_commit_passes_the_same_sweep() {
    let sweep = orders().handler(SendsAfterCommit).sweep(0..10);
    assert!(sweep.passed(), "{sweep}");
}

/// Inside a `#[madsim::test]` a seed runs on the test's own runtime, whose seed comes from
/// `MADSIM_TEST_SEED` (the run is deterministic for the pair): the fixed handler passes
/// whatever it is.
#[madsim::test]
async fn the_fixed_handler_passes_on_the_tests_own_runtime() {
    let result = orders().handler(SendsAfterCommit).run_on_current(7).await;
    assert!(result.verdict.is_pass(), "{:?}", result.verdict);
}
