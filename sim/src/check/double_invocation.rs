//! `double_invocation`: one `process()` call (a worker's `call` number within one incarnation)
//! that started the handler more than once. The Python original does this on an exception;
//! the library must never.

use super::{Input, Severity, Violation};
use crate::trace::Typed;
use std::collections::BTreeMap;

/// The violations in `input`.
pub fn check(input: &Input<'_>) -> Vec<Violation> {
    let mut incarnation: BTreeMap<&str, u64> = BTreeMap::new();
    let mut starts: BTreeMap<(&str, u64, u64), u32> = BTreeMap::new();
    let mut out = Vec::new();
    let typed = crate::trace::typed(input.trace);
    for (i, (e, t)) in input.trace.iter().zip(&typed).enumerate() {
        match t {
            Typed::Start { incarnation: n } => {
                incarnation.insert(e.node.as_str(), *n);
            }
            Typed::HandlerStart { event_id, call, .. } => {
                let inc = incarnation.get(e.node.as_str()).copied().unwrap_or(0);
                let n = starts.entry((e.node.as_str(), inc, *call)).or_default();
                *n += 1;
                if *n == 2 {
                    out.push(Violation {
                        kind: "double_invocation",
                        severity: Severity::Correctness,
                        event_id: event_id.clone(),
                        detail: format!("{} call {call} started the handler twice", e.node),
                        first_event: Some(i),
                    });
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::history::handler_start;
    use crate::check::Params;
    use crate::trace::Event;

    /// A worker's `start` (incarnation `n`) or `handler_start` (call `n`).
    fn ev(t_ms: u64, node: &str, kind: &'static str, n: u64) -> Event {
        let t = if kind == "start" {
            Typed::Start { incarnation: n }
        } else {
            handler_start("e-1", n)
        };
        crate::check::test_event(t_ms, node, t)
    }
    #[test]
    fn one_call_starting_the_handler_twice_fires_and_a_restart_does_not() {
        let twice = [
            ev(0, "worker-1", "start", 1),
            ev(1, "worker-1", "handler_start", 7),
            ev(2, "worker-1", "handler_start", 7),
        ];
        let v = crate::check::judge_history(&twice, &Params::default(), check);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!((v[0].kind, v[0].first_event), ("double_invocation", Some(2)));
        assert_eq!(v[0].event_id, "e-1");
        // The same call number in a new incarnation is another call; another worker's too.
        let fine = [
            ev(0, "worker-1", "start", 1),
            ev(1, "worker-1", "handler_start", 7),
            ev(2, "worker-2", "handler_start", 7),
            ev(3, "worker-1", "start", 2),
            ev(4, "worker-1", "handler_start", 7),
        ];
        assert!(crate::check::judge_history(&fine, &Params::default(), check).is_empty());
    }
}
