//! The README's "Test your own consumer" shows what the buggy handler's test prints: it is
//! the real output, line for line. (Not part of the example a user copies.)

use orders::{OneEmailPerOrder, SendsFirst};
use sim::{Budget, Sim};
use std::time::Duration;

#[test]
fn the_readme_shows_what_the_shrunk_failure_prints() {
    let sim = Sim::new("default")
        .unwrap()
        .checker(OneEmailPerOrder)
        .shrink_budget(Budget {
            max_runs: 300,
            max_time: Duration::from_secs(120),
        })
        .handler(SendsFirst);
    let printed = sim.explain(&sim.shrink(0).unwrap()).to_string();
    let readme = include_str!("../../../README.md");
    assert!(
        readme.contains(&format!("```text\n{printed}```")),
        "README.md's example output is not what it prints now:\n{printed}"
    );
}
