//! One group session's consuming, as a pure state machine: which partitions the worker was
//! assigned, where it reads each next, what it has done but not yet committed, and when the
//! offset-commit policy says to commit.
//!
//! No I/O, no time, no trace: the adapter (`group`) fetches, delivers, commits and
//! sleeps, and asks this machine what to do next. Keeping the decisions here lets them be
//! tested record by record, and keeps the adapter's order of calls (which the byte-compared
//! traces pin) in one visible place.
//!
//! Invariants, asserted after every transition: a partition's position only moves forward, a
//! commit asked for never goes below an earlier one, and an uncommitted offset never passes the
//! position.

use super::OffsetCommit;

/// When a session commits, from the worker's [`OffsetCommit`] and `offset_commit_every`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitPolicy {
    /// After each record is done.
    AfterEach,
    /// After every `n` records done (across the session's partitions). `n` is validated to be
    /// at least 1; 0 would behave as 1, as the count reaches it at once.
    EveryN(u32),
    /// Before each record is delivered; nothing is due when it is done.
    BeforeProcessing,
}

impl CommitPolicy {
    /// The policy a worker's settings describe (`every` counts only for `every_n`).
    pub fn new(commit: OffsetCommit, every: u32) -> Self {
        match commit {
            OffsetCommit::AfterEach => CommitPolicy::AfterEach,
            OffsetCommit::EveryN => CommitPolicy::EveryN(every),
            OffsetCommit::BeforeProcessing => CommitPolicy::BeforeProcessing,
        }
    }
}

/// A commit to make: `next` is the offset the group reads next on `partition` (Kafka's
/// convention: one past the last record done).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Commit {
    /// The partition.
    pub partition: u32,
    /// The next offset to read.
    pub next: u64,
}

/// One assigned partition.
#[derive(Clone, Debug)]
struct Slot {
    partition: u32,
    /// The next offset to fetch.
    position: u64,
    /// The next offset after the last record done, until a commit takes it.
    uncommitted: Option<u64>,
    /// The highest offset handed out to commit (or the committed offset the session started
    /// from): a commit below it would rewind the group.
    committed: u64,
}

/// One group session's consuming state.
#[derive(Clone, Debug)]
pub struct SessionState {
    /// In assignment order: commits and seeks come out in this order.
    slots: Vec<Slot>,
    /// Records done since the last commit (what `every_n` counts).
    since_commit: u32,
    policy: CommitPolicy,
}

impl SessionState {
    /// A session over `partitions` (in assignment order, distinct), each starting at its
    /// committed offset in `committed` (indexed by partition; `None`, never committed, starts
    /// at the earliest offset, 0).
    ///
    /// Panics if a partition is missing from `committed`: the broker reports every partition.
    pub fn new(partitions: &[u32], committed: &[Option<u64>], policy: CommitPolicy) -> Self {
        let slots: Vec<Slot> = partitions
            .iter()
            .map(|&partition| {
                let start = committed[partition as usize].unwrap_or(0);
                Slot {
                    partition,
                    position: start,
                    uncommitted: None,
                    committed: start,
                }
            })
            .collect();
        for (i, a) in slots.iter().enumerate() {
            assert!(
                slots[..i].iter().all(|b| b.partition != a.partition),
                "partition {} assigned twice",
                a.partition
            );
        }
        SessionState {
            slots,
            since_commit: 0,
            policy,
        }
    }

    /// The assigned partitions with their positions, in assignment order.
    pub fn positions(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.slots.iter().map(|s| (s.partition, s.position))
    }

    /// The next offset to fetch from `partition`.
    pub fn position(&self, partition: u32) -> u64 {
        self.slots[self.slot(partition)].position
    }

    /// What is done but not committed, in assignment order (what a revocation would flush).
    pub fn uncommitted(&self) -> Vec<Commit> {
        self.slots
            .iter()
            .filter_map(|s| {
                s.uncommitted.map(|next| Commit {
                    partition: s.partition,
                    next,
                })
            })
            .collect()
    }

    /// The commit to make before delivering the record at (`partition`, `offset`): one under
    /// `before_processing` (at-most-once: a crash in the handler loses the record), else none.
    pub fn commit_before(&mut self, partition: u32, offset: u64) -> Option<Commit> {
        if self.policy != CommitPolicy::BeforeProcessing {
            return None;
        }
        let i = self.slot(partition);
        assert!(
            offset >= self.slots[i].position,
            "partition {partition}: record {offset} is behind the position {}",
            self.slots[i].position
        );
        let commit = self.hand_out(i, offset + 1);
        self.check();
        Some(commit)
    }

    /// The record at (`partition`, `offset`) is done (processed, a duplicate, or given up):
    /// the position moves past it, and it waits to be committed. Returns the commits now due,
    /// in assignment order, every partition's uncommitted offset at once; empty if none is due.
    /// Under `before_processing` none is ever due here (its commit came first), but the offset
    /// still waits as uncommitted, and a revocation sends it again (see [`Self::revoke`]).
    pub fn done(&mut self, partition: u32, offset: u64) -> Vec<Commit> {
        let i = self.slot(partition);
        let slot = &mut self.slots[i];
        assert!(
            offset >= slot.position,
            "partition {partition}: record {offset} is behind the position {}",
            slot.position
        );
        slot.position = offset + 1;
        slot.uncommitted = Some(offset + 1);
        self.since_commit = self.since_commit.saturating_add(1);
        let due = match self.policy {
            CommitPolicy::AfterEach => true,
            CommitPolicy::EveryN(n) => self.since_commit >= n,
            CommitPolicy::BeforeProcessing => false,
        };
        let commits = if due { self.take_uncommitted() } else { Vec::new() };
        self.check();
        commits
    }

    /// The session was revoked: the commits to flush while still a member, exactly what is
    /// uncommitted, in assignment order. Under `before_processing` these repeat the commits made
    /// before processing (same offsets, so harmless); the adapter sends them all the same.
    pub fn revoke(&mut self) -> Vec<Commit> {
        let commits = self.take_uncommitted();
        self.check();
        commits
    }

    /// Takes every partition's uncommitted offset as a commit, and restarts the count.
    fn take_uncommitted(&mut self) -> Vec<Commit> {
        let mut commits = Vec::new();
        for i in 0..self.slots.len() {
            if let Some(next) = self.slots[i].uncommitted.take() {
                commits.push(self.hand_out(i, next));
            }
        }
        self.since_commit = 0;
        commits
    }

    /// Records that slot `i` commits `next`; a commit never goes backwards.
    fn hand_out(&mut self, i: usize, next: u64) -> Commit {
        let slot = &mut self.slots[i];
        assert!(
            next >= slot.committed,
            "partition {}: commit {next} is behind an earlier one, {}",
            slot.partition,
            slot.committed
        );
        slot.committed = next;
        Commit {
            partition: slot.partition,
            next,
        }
    }

    /// The slot of an assigned partition. Panics for one not assigned: the adapter only asks
    /// about partitions it fetched from.
    fn slot(&self, partition: u32) -> usize {
        self.slots
            .iter()
            .position(|s| s.partition == partition)
            .unwrap_or_else(|| panic!("partition {partition} is not assigned to this session"))
    }

    /// The invariants that hold between transitions.
    fn check(&self) {
        for s in &self.slots {
            if let Some(next) = s.uncommitted {
                assert!(
                    next <= s.position,
                    "partition {}: uncommitted {next} is past the position {}",
                    s.partition,
                    s.position
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(partition: u32, next: u64) -> Commit {
        Commit { partition, next }
    }

    fn session(partitions: &[u32], committed: &[Option<u64>], policy: CommitPolicy) -> SessionState {
        SessionState::new(partitions, committed, policy)
    }

    #[test]
    fn positions_start_at_the_committed_offsets_and_none_starts_at_zero() {
        let s = session(&[2, 0], &[Some(7), Some(1), None], CommitPolicy::AfterEach);
        assert_eq!(s.positions().collect::<Vec<_>>(), vec![(2, 0), (0, 7)]);
        assert_eq!(s.position(0), 7);
        assert_eq!(s.position(2), 0);
        assert!(s.uncommitted().is_empty());
    }

    #[test]
    fn a_session_without_partitions_has_no_positions_and_nothing_to_flush() {
        let mut s = session(&[], &[Some(3)], CommitPolicy::EveryN(2));
        assert_eq!(s.positions().count(), 0);
        assert!(s.revoke().is_empty());
    }

    #[test]
    fn after_each_commits_every_record() {
        let mut s = session(&[0, 1], &[None, Some(4)], CommitPolicy::AfterEach);
        assert_eq!(s.commit_before(0, 0), None);
        assert_eq!(s.done(0, 0), vec![c(0, 1)]);
        assert_eq!(s.done(0, 1), vec![c(0, 2)]);
        assert_eq!(s.done(1, 4), vec![c(1, 5)]);
        assert_eq!(s.positions().collect::<Vec<_>>(), vec![(0, 2), (1, 5)]);
        assert!(s.uncommitted().is_empty());
        assert!(s.revoke().is_empty());
    }

    #[test]
    fn every_n_commits_after_n_records_across_partitions() {
        let mut s = session(&[0, 1], &[None, None], CommitPolicy::EveryN(3));
        assert!(s.done(0, 0).is_empty());
        assert!(s.done(1, 0).is_empty());
        // The third record makes it due: every partition's uncommitted offset goes at once.
        assert_eq!(s.done(0, 1), vec![c(0, 2), c(1, 1)]);
        assert!(s.uncommitted().is_empty());
        // The count starts again.
        assert!(s.done(1, 1).is_empty());
        assert!(s.done(1, 2).is_empty());
        assert_eq!(s.done(1, 3), vec![c(1, 4)]);
    }

    #[test]
    fn every_n_flushes_on_revocation_what_has_not_reached_n() {
        let mut s = session(&[0, 1], &[Some(10), None], CommitPolicy::EveryN(5));
        assert!(s.done(0, 10).is_empty());
        assert!(s.done(0, 11).is_empty());
        assert!(s.done(1, 0).is_empty());
        assert_eq!(s.revoke(), vec![c(0, 12), c(1, 1)]);
        assert!(s.revoke().is_empty(), "a flush takes what it commits");
    }

    #[test]
    fn a_revocation_restarts_the_every_n_count() {
        let mut s = session(&[0], &[None], CommitPolicy::EveryN(2));
        assert!(s.done(0, 0).is_empty());
        assert_eq!(s.revoke(), vec![c(0, 1)]);
        assert!(
            s.done(0, 1).is_empty(),
            "one record since the flush is not yet two"
        );
        assert_eq!(s.done(0, 2), vec![c(0, 3)]);
    }

    #[test]
    fn every_one_commits_like_after_each() {
        let mut s = session(&[0], &[None], CommitPolicy::EveryN(1));
        assert_eq!(s.done(0, 0), vec![c(0, 1)]);
        assert_eq!(s.done(0, 1), vec![c(0, 2)]);
    }

    #[test]
    fn before_processing_commits_before_the_record_is_delivered() {
        let mut s = session(&[3], &[None, None, None, Some(2)], CommitPolicy::BeforeProcessing);
        assert_eq!(s.commit_before(3, 2), Some(c(3, 3)));
        // The commit does not move the position: the record is not done yet.
        assert_eq!(s.position(3), 2);
        assert!(s.done(3, 2).is_empty(), "its commit came first");
        assert_eq!(s.position(3), 3);
        assert_eq!(s.commit_before(3, 3), Some(c(3, 4)));
    }

    #[test]
    fn before_processing_sends_the_done_offsets_again_on_revocation() {
        // What the worker has always done: the flush repeats the offsets committed before
        // processing. It must stay, as every commit call is part of the compared traces.
        let mut s = session(&[0, 1], &[None, None], CommitPolicy::BeforeProcessing);
        assert_eq!(s.commit_before(0, 0), Some(c(0, 1)));
        assert!(s.done(0, 0).is_empty());
        assert_eq!(s.commit_before(1, 0), Some(c(1, 1)));
        assert!(s.done(1, 0).is_empty());
        assert_eq!(s.uncommitted(), vec![c(0, 1), c(1, 1)]);
        assert_eq!(s.revoke(), vec![c(0, 1), c(1, 1)]);
    }

    #[test]
    fn a_revoked_session_flushes_exactly_what_is_uncommitted() {
        let mut s = session(&[0, 1, 2], &[None, Some(5), None], CommitPolicy::EveryN(10));
        assert!(s.done(0, 0).is_empty());
        assert!(s.done(2, 0).is_empty());
        assert!(s.done(2, 1).is_empty());
        let pending = s.uncommitted();
        assert_eq!(pending, vec![c(0, 1), c(2, 2)]);
        assert_eq!(
            s.revoke(),
            pending,
            "partition 1 did nothing, so nothing of it is flushed"
        );
        assert!(s.uncommitted().is_empty());
    }

    #[test]
    fn a_record_done_moves_the_position_past_it_even_after_a_gap() {
        let mut s = session(&[0], &[Some(2)], CommitPolicy::EveryN(100));
        assert!(s.done(0, 5).is_empty());
        assert_eq!(s.position(0), 6);
        assert_eq!(s.uncommitted(), vec![c(0, 6)]);
    }

    #[test]
    fn commit_policy_follows_the_worker_settings() {
        assert_eq!(
            CommitPolicy::new(OffsetCommit::AfterEach, 5),
            CommitPolicy::AfterEach
        );
        assert_eq!(
            CommitPolicy::new(OffsetCommit::EveryN, 5),
            CommitPolicy::EveryN(5)
        );
        assert_eq!(
            CommitPolicy::new(OffsetCommit::BeforeProcessing, 5),
            CommitPolicy::BeforeProcessing
        );
    }

    #[test]
    #[should_panic(expected = "behind the position")]
    fn a_position_never_moves_backwards() {
        let mut s = session(&[0], &[Some(4)], CommitPolicy::AfterEach);
        s.done(0, 3);
    }

    #[test]
    #[should_panic(expected = "behind the position")]
    fn a_record_done_twice_is_refused() {
        let mut s = session(&[0], &[None], CommitPolicy::EveryN(3));
        s.done(0, 0);
        s.done(0, 0);
    }

    #[test]
    #[should_panic(expected = "behind the position")]
    fn a_commit_before_processing_never_goes_backwards() {
        let mut s = session(&[0], &[Some(4)], CommitPolicy::BeforeProcessing);
        s.commit_before(0, 1);
    }

    #[test]
    #[should_panic(expected = "behind an earlier one")]
    fn a_commit_never_goes_backwards() {
        let mut s = session(&[0], &[None], CommitPolicy::BeforeProcessing);
        assert_eq!(s.commit_before(0, 5), Some(c(0, 6)));
        // A record below the one committed before processing: its flush would rewind the group.
        s.done(0, 3);
        s.revoke();
    }

    /// The consuming logic as `consume_session` held it inline before this machine: the
    /// reference the machine must match call for call.
    struct Inline {
        partitions: Vec<u32>,
        positions: Vec<u64>,
        uncommitted: Vec<Option<u64>>,
        since_commit: u32,
        commit: OffsetCommit,
        every: u32,
    }

    impl Inline {
        fn before(&self, i: usize, offset: u64) -> Option<Commit> {
            (self.commit == OffsetCommit::BeforeProcessing).then(|| c(self.partitions[i], offset + 1))
        }
        fn done(&mut self, i: usize, offset: u64) -> Vec<Commit> {
            let before = self.commit == OffsetCommit::BeforeProcessing;
            self.positions[i] = offset + 1;
            self.uncommitted[i] = Some(offset + 1);
            self.since_commit += 1;
            let due = self.commit == OffsetCommit::AfterEach || self.since_commit >= self.every;
            let mut out = Vec::new();
            if !before && due {
                for (j, pending) in self.uncommitted.iter_mut().enumerate() {
                    if let Some(next) = pending.take() {
                        out.push(c(self.partitions[j], next));
                    }
                }
                self.since_commit = 0;
            }
            out
        }
        fn revoke(&mut self) -> Vec<Commit> {
            let mut out = Vec::new();
            for (j, pending) in self.uncommitted.iter_mut().enumerate() {
                if let Some(next) = pending.take() {
                    out.push(c(self.partitions[j], next));
                }
            }
            out
        }
    }

    #[test]
    fn the_machine_matches_the_old_inline_logic_on_random_sessions() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(20);
        let kinds = [
            OffsetCommit::AfterEach,
            OffsetCommit::EveryN,
            OffsetCommit::BeforeProcessing,
        ];
        for _ in 0..500 {
            let commit = kinds[rng.gen_range(0..kinds.len())];
            let every = rng.gen_range(1..=4);
            let count = rng.gen_range(1..=5u32);
            let committed: Vec<Option<u64>> = (0..count)
                .map(|_| rng.gen_bool(0.5).then(|| rng.gen_range(0..20)))
                .collect();
            let partitions: Vec<u32> = (0..count).filter(|_| rng.gen_bool(0.6)).collect();
            let mut machine = SessionState::new(&partitions, &committed, CommitPolicy::new(commit, every));
            let mut inline = Inline {
                positions: partitions
                    .iter()
                    .map(|&p| committed[p as usize].unwrap_or(0))
                    .collect(),
                uncommitted: vec![None; partitions.len()],
                partitions: partitions.clone(),
                since_commit: 0,
                commit,
                every,
            };
            'session: for _ in 0..rng.gen_range(0..8) {
                for (i, &p) in partitions.iter().enumerate() {
                    assert_eq!(machine.position(p), inline.positions[i]);
                    let from = inline.positions[i];
                    for offset in from..from + rng.gen_range(0..4) {
                        assert_eq!(machine.commit_before(p, offset), inline.before(i, offset));
                        assert_eq!(machine.done(p, offset), inline.done(i, offset));
                        if rng.gen_bool(0.05) {
                            assert_eq!(machine.revoke(), inline.revoke());
                            break 'session;
                        }
                    }
                }
            }
            assert_eq!(
                machine.positions().map(|(_, o)| o).collect::<Vec<_>>(),
                inline.positions
            );
        }
    }

    #[test]
    #[should_panic(expected = "not assigned")]
    fn a_partition_not_assigned_is_refused() {
        let s = session(&[0], &[None, None], CommitPolicy::AfterEach);
        s.position(1);
    }

    #[test]
    #[should_panic(expected = "assigned twice")]
    fn a_partition_assigned_twice_is_refused() {
        session(&[1, 1], &[None, None], CommitPolicy::AfterEach);
    }
}
