//! `sim merge REPORTS... [--report F] [--junit F]`: the shard reports of one sweep made into
//! the report of the whole sweep (see [`crate::report::sweep::merge`]), with the same summary
//! and exit code the unsharded sweep would give. Reports that are not shards of one sweep, or a
//! missing shard, are an error (exit 2) that names the report; so is a shard that was killed
//! before it finished (its findings are still merged and written).

use super::EXIT_USAGE;
use crate::report::sweep::{self, Status, SweepReport};
use std::io::Write;
use std::path::{Path, PathBuf};

pub(super) fn merge(
    paths: &[PathBuf],
    report: Option<&Path>,
    junit: Option<&Path>,
    out: &mut dyn Write,
) -> i32 {
    let mut reports = Vec::with_capacity(paths.len());
    for p in paths {
        match SweepReport::read(p) {
            Ok(r) => reports.push((p.display().to_string(), r)),
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_USAGE;
            }
        }
    }
    let merged = match sweep::merge(&reports) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let mut code = merged.exit_code();
    if let Some(path) = report {
        if let Err(e) = merged.write_atomic(path) {
            eprintln!("error: cannot write the report {}: {e}", path.display());
            code = code.max(EXIT_USAGE);
        }
    }
    if let Some(path) = junit {
        if let Err(e) = sweep::write_atomic(path, merged.junit().as_bytes()) {
            eprintln!("error: cannot write the JUnit report {}: {e}", path.display());
            code = code.max(EXIT_USAGE);
        }
    }
    let c = &merged.counts;
    let verdicts: Vec<String> = c.verdicts.iter().map(|(k, n)| format!("{k}:{n}")).collect();
    let _ = writeln!(
        out,
        "MERGE scenario={} build={} seeds={}..{} shards={} status={:?}",
        merged.scenario,
        merged.build,
        merged.start,
        merged.end,
        reports.len(),
        merged.status
    );
    let _ = writeln!(out, "merge: seeds={} verdicts={}", c.seeds, verdicts.join(","));
    super::sweep::print_findings(&merged, out);
    let _ = writeln!(out, "merge: {} passed, {} failed", c.as_expected, c.failed);
    for (name, r) in &reports {
        if r.status == Status::Running {
            eprintln!(
                "error: {name} is from a sweep that did not finish (status running): its shard's seeds after {} were not run",
                r.counts.seeds
            );
            code = code.max(EXIT_USAGE);
        }
    }
    code
}
