//! `double_invocation`: one `process()` call (a worker's `call` number within one incarnation)
//! that started the handler more than once. The Python original does this on an exception;
//! the library must never.

use super::{Input, Severity, Violation};
use std::collections::BTreeMap;

/// The violations in `input`.
pub fn check(input: &Input<'_>) -> Vec<Violation> {
    let mut incarnation: BTreeMap<&str, u64> = BTreeMap::new();
    let mut starts: BTreeMap<(&str, u64, u64), u32> = BTreeMap::new();
    let mut out = Vec::new();
    for (i, e) in input.trace.iter().enumerate() {
        match e.kind {
            "start" => {
                incarnation.insert(e.node.as_str(), e.u64("incarnation").unwrap_or(0));
            }
            "handler_start" => {
                let inc = incarnation.get(e.node.as_str()).copied().unwrap_or(0);
                let n = starts
                    .entry((e.node.as_str(), inc, e.u64("call").unwrap_or(0)))
                    .or_default();
                *n += 1;
                if *n == 2 {
                    out.push(Violation {
                        kind: "double_invocation",
                        severity: Severity::Correctness,
                        event_id: e.str("event_id").unwrap_or("").to_owned(),
                        detail: format!(
                            "{} call {} started the handler twice",
                            e.node,
                            e.u64("call").unwrap_or(0)
                        ),
                        first_event: Some(i),
                    });
                }
            }
            _ => {}
        }
    }
    out
}
