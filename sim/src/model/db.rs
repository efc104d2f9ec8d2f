//! The database where business effects land, and the ground truth of what happened.
//!
//! A transaction applies one event's effect. Modes:
//! - `plain`: every commit applies;
//! - `unique`: the event id is a unique key in the same transaction, so a second commit for an
//!   event is rejected (the transactional-dedup remedy);
//! - `fenced`: a commit whose fencing token is lower than the highest seen for the event's
//!   Redis key is rejected (a commit without a token, from v2 or fail-open, is not checked).
//!   The highest token rises with each accepted commit and with each *claim*, which a fenced
//!   worker sends right after its acquire so that a zombie's commit is rejected from then on.
//!
//! Every attempt and every applied effect is recorded with the virtual time; checkers read this
//! record, never the workers' beliefs. Commits are durable: a crash loses nothing committed.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How the database guards against duplicate effects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DbMode {
    /// Every commit applies.
    Plain,
    /// One effect per event id.
    Unique,
    /// Commits with a token below the highest seen for the key are rejected.
    Fenced,
}

impl DbMode {
    /// The mode's name as written in configuration.
    pub fn name(self) -> &'static str {
        match self {
            DbMode::Plain => "plain",
            DbMode::Unique => "unique",
            DbMode::Fenced => "fenced",
        }
    }
}

/// One transaction: apply `event_id`'s effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Apply {
    /// The event's id (the producer's).
    pub event_id: String,
    /// The event's Redis key, what fencing tokens are issued for (empty when it has none).
    pub key: String,
    /// The lease's fencing token, when the protocol has one.
    pub fence: Option<u64>,
    /// Who commits.
    pub worker: String,
    /// The worker's incarnation (from 1) and its `process()` call in it that commits (the
    /// trace's `incarnation` and `call`): a late commit and its retry's are told apart by them.
    pub incarnation: u64,
    /// See `incarnation`.
    pub call: u64,
}

/// A request to the database node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DbRequest {
    /// Run one transaction.
    Apply(Apply),
    /// Read the highest fencing token accepted for a Redis key (0 when none): the floor a
    /// fenced acquire takes ([`idempotency::fenced::FenceFloor`]).
    HighestFence {
        /// The event's Redis key.
        key: String,
        /// Who asks.
        worker: String,
    },
    /// Raise the highest token for a Redis key to `fence` (never lower it): a fenced acquire's
    /// claim ([`idempotency::fenced::FenceFloor::claim`]).
    ClaimFence {
        /// The event's Redis key.
        key: String,
        /// The token the acquire was given.
        fence: u64,
        /// Who claims.
        worker: String,
    },
}

/// The database node's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DbReply {
    /// What the transaction did.
    Applied(ApplyResult),
    /// The highest token accepted for the key.
    HighestFence(u64),
    /// The claim is in; the highest token for the key before it.
    Claimed(u64),
}

/// What a transaction did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplyResult {
    /// The effect was applied.
    Applied,
    /// `unique`: the event's effect is already there.
    Duplicate,
    /// `fenced`: a higher token has committed for this key.
    StaleFence {
        /// The highest token seen.
        highest: u64,
    },
}

impl ApplyResult {
    /// A short stable name for traces.
    pub fn name(&self) -> &'static str {
        match self {
            ApplyResult::Applied => "applied",
            ApplyResult::Duplicate => "duplicate",
            ApplyResult::StaleFence { .. } => "stale_fence",
        }
    }
}

/// An applied effect.
///
/// ```
/// // A GC pause outlives v2's lock: the database records the event's effect twice, and by whom.
/// let sim = sim::Sim::new("gc-pause-v2").unwrap();
/// let r = sim.run(sim.config().seed);
/// let effects: &Vec<sim::Effect> = r.effects.values().next().unwrap();
/// let who: Vec<&str> = effects.iter().map(|e| e.worker.as_str()).collect();
/// // worker-2 took the expired lock; worker-1 committed when its 400 s pause ended, still in
/// // its first incarnation's first call.
/// assert_eq!(who, ["worker-2", "worker-1"]);
/// assert!(effects[1].t_us > 400_000_000);
/// assert_eq!((effects[1].incarnation, effects[1].call), (1, 1));
/// assert!(effects.iter().all(|e| e.fence.is_none())); // v2 hands out no fencing tokens
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effect {
    /// Virtual time of the commit.
    pub t_us: u64,
    /// Who committed it.
    pub worker: String,
    /// The worker's incarnation that committed it.
    pub incarnation: u64,
    /// Its `process()` call in that incarnation.
    pub call: u64,
    /// The token it carried.
    pub fence: Option<u64>,
}

/// The database's state: a pure state machine.
#[derive(Clone, Debug)]
pub struct DbModel {
    mode: DbMode,
    attempts: u64,
    effects: BTreeMap<String, Vec<Effect>>,
    highest_fence: BTreeMap<String, u64>,
}

impl DbModel {
    /// An empty database in `mode`.
    pub fn new(mode: DbMode) -> Self {
        DbModel {
            mode,
            attempts: 0,
            effects: BTreeMap::new(),
            highest_fence: BTreeMap::new(),
        }
    }

    /// Runs one transaction at virtual time `t_us`.
    pub fn apply(&mut self, req: &Apply, t_us: u64) -> ApplyResult {
        self.attempts += 1;
        match self.mode {
            DbMode::Plain => {}
            DbMode::Unique => {
                if self.effects.contains_key(&req.event_id) {
                    return ApplyResult::Duplicate;
                }
            }
            DbMode::Fenced => {
                if let Some(fence) = req.fence {
                    let highest = self.highest_fence.entry(req.key.clone()).or_insert(0);
                    if fence < *highest {
                        return ApplyResult::StaleFence { highest: *highest };
                    }
                    *highest = fence;
                }
            }
        }
        let effects = self.effects.entry(req.event_id.clone()).or_default();
        effects.push(Effect {
            t_us,
            worker: req.worker.clone(),
            incarnation: req.incarnation,
            call: req.call,
            fence: req.fence,
        });
        assert!(
            self.mode != DbMode::Unique || effects.len() == 1,
            "unique mode applied twice"
        );
        ApplyResult::Applied
    }

    /// Raises the highest token for `key` to `fence` and returns the one before (a fenced
    /// worker's claim right after its acquire: from now on every commit with a lower token is
    /// rejected). Outside `fenced` mode nothing checks tokens, and nothing is recorded.
    pub fn claim(&mut self, key: &str, fence: u64) -> u64 {
        if self.mode != DbMode::Fenced {
            return 0;
        }
        let highest = self.highest_fence.entry(key.to_owned()).or_insert(0);
        let before = *highest;
        *highest = before.max(fence);
        before
    }

    /// The highest fencing token accepted for `key` (0 when none, and always 0 outside
    /// `fenced` mode, which is the only one that checks tokens).
    pub fn highest_fence(&self, key: &str) -> u64 {
        self.highest_fence.get(key).copied().unwrap_or(0)
    }

    /// Every applied effect, by event id.
    pub fn effects(&self) -> &BTreeMap<String, Vec<Effect>> {
        &self.effects
    }

    /// Takes every effect out, leaving none: for a run that is over, whose judged result
    /// carries them (moved, not copied).
    pub fn take_effects(&mut self) -> BTreeMap<String, Vec<Effect>> {
        std::mem::take(&mut self.effects)
    }

    /// How many effects `event_id` has.
    pub fn applied_count(&self, event_id: &str) -> usize {
        self.effects.get(event_id).map_or(0, Vec::len)
    }

    /// How many transactions were attempted.
    pub fn attempts(&self) -> u64 {
        self.attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(event_id: &str, fence: Option<u64>) -> Apply {
        Apply {
            event_id: event_id.into(),
            key: format!("k:{event_id}"),
            fence,
            worker: "w".into(),
            incarnation: 1,
            call: 1,
        }
    }

    #[test]
    fn plain_applies_every_commit() {
        let mut db = DbModel::new(DbMode::Plain);
        assert_eq!(db.apply(&req("e", None), 1), ApplyResult::Applied);
        assert_eq!(db.apply(&req("e", None), 2), ApplyResult::Applied);
        assert_eq!(db.applied_count("e"), 2);
    }

    #[test]
    fn unique_rejects_a_second_commit_for_an_event() {
        let mut db = DbModel::new(DbMode::Unique);
        assert_eq!(db.apply(&req("e", Some(1)), 1), ApplyResult::Applied);
        assert_eq!(db.apply(&req("e", Some(2)), 2), ApplyResult::Duplicate);
        assert_eq!(db.apply(&req("f", None), 3), ApplyResult::Applied);
        assert_eq!((db.applied_count("e"), db.attempts()), (1, 3));
    }

    #[test]
    fn fenced_rejects_a_lower_token_for_the_key_and_accepts_equal_or_higher() {
        let mut db = DbModel::new(DbMode::Fenced);
        assert_eq!(db.apply(&req("e", Some(5)), 1), ApplyResult::Applied);
        assert_eq!(
            db.apply(&req("e", Some(4)), 2),
            ApplyResult::StaleFence { highest: 5 }
        );
        assert_eq!(db.apply(&req("e", Some(5)), 3), ApplyResult::Applied);
        assert_eq!(
            db.apply(&req("e", None), 4),
            ApplyResult::Applied,
            "no token, no check"
        );
        assert_eq!(db.applied_count("e"), 3);
    }

    #[test]
    fn a_claim_rejects_every_earlier_lease_before_the_claimer_commits() {
        let mut db = DbModel::new(DbMode::Fenced);
        assert_eq!(db.claim("k:e", 5), 0);
        assert_eq!(
            db.apply(&req("e", Some(4)), 1),
            ApplyResult::StaleFence { highest: 5 },
            "the zombie's commit after the takeover"
        );
        assert_eq!(db.apply(&req("e", Some(5)), 2), ApplyResult::Applied);
        assert_eq!(db.claim("k:e", 3), 5, "a claim never lowers the token");
        assert_eq!(db.highest_fence("k:e"), 5);
        let mut plain = DbModel::new(DbMode::Plain);
        assert_eq!((plain.claim("k:e", 5), plain.highest_fence("k:e")), (0, 0));
    }
}
