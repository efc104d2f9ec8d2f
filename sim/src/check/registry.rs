//! The one list of what a run can report: every violation kind, its severity and whether it
//! judges the end state. Scenario `expect` validation, the limit-stopped filter and the docs
//! check derive from it; a test in `check/` holds every checker's emitted kinds to it. It
//! imports nothing and stands below both the config and the checkers, so the config can
//! validate `expect` without importing the checkers (which import the config).

/// One kind of violation (or note) a run can report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind {
    /// Its name, as traces, summaries and `expect` spell it.
    pub name: &'static str,
    /// The checker file (under `check/`), or `run/mod.rs` for the run's own limits.
    pub source: &'static str,
    /// Whether it judges the state at the end of a run (left out when a limit cut it short).
    pub end_state: bool,
    /// Whether a scenario may expect it (not the limits, which are the harness's word, nor
    /// the kinds that are only ever notes).
    pub expectable: bool,
}

const fn kind(name: &'static str, source: &'static str, end_state: bool) -> Kind {
    Kind {
        name,
        source,
        end_state,
        expectable: true,
    }
}

const fn note(name: &'static str, source: &'static str) -> Kind {
    Kind {
        name,
        source,
        end_state: false,
        expectable: false,
    }
}

const fn limit(name: &'static str) -> Kind {
    Kind {
        name,
        source: "run/mod.rs",
        end_state: false,
        expectable: false,
    }
}

/// Every kind, in the order the README's checker table lists them.
pub const KINDS: &[Kind] = &[
    kind("duplicate_effect", "duplicate_effect.rs", false),
    note("fail_open_duplicate", "duplicate_effect.rs"),
    kind("lost_event", "lost_event.rs", true),
    kind("lock_overlap", "lock_overlap.rs", false),
    kind("fence_regression", "fence_monotonic.rs", false),
    kind("ttl_lifecycle", "ttl_lifecycle.rs", false),
    kind("stuck_lock", "stuck_lock.rs", true),
    kind("double_invocation", "double_invocation.rs", false),
    kind("confirm_without_effect", "confirm_effect.rs", false),
    kind("effect_without_confirm", "confirm_effect.rs", true),
    kind("lost", "kafka.rs", true),
    kind("nonmonotonic_commit", "kafka.rs", false),
    kind("stale_commit_accepted", "kafka.rs", false),
    kind("poll_skip", "kafka.rs", false),
    limit("step_limit"),
    limit("time_limit"),
    limit("watchdog"),
];

/// The kind called `name`, if there is one.
pub fn find(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == name)
}

/// The names a scenario's `expect` may use: `pass` and every expectable kind.
pub fn expectable() -> Vec<&'static str> {
    std::iter::once("pass")
        .chain(KINDS.iter().filter(|k| k.expectable).map(|k| k.name))
        .collect()
}
