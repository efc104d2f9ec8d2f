//! The requests the broker holds (Kafka's "purgatory"): a `JoinGroup` until its round of joins
//! closes, a `FetchGroup` until a record lands on one of its partitions, its wait runs out, or
//! the group moves on without its member. Pure bookkeeping: [`Park`] knows what each held
//! request waits for and, given what the broker looks like now ([`Broker`]), which of them are
//! due; [`KafkaModel`](super::KafkaModel) turns a due one into its reply, and the node adapter
//! sends it through the responder it kept under the same [`Ticket`].
//!
//! Held requests are the broker's connections, not its disk: a broker (re)start drops them
//! ([`Park::clear`]), and the clients' calls time out and are sent again.

use std::collections::BTreeMap;

/// Names one held request; the node adapter hands them out, increasing.
pub type Ticket = u64;

/// Most requests held at once. A client has one call in flight per connection and the run has
/// at most a few hundred nodes, so more means a ticket is never answered: a bug.
pub const MAX_HELD: usize = 10_000;

/// What the broker looks like to the held requests.
pub(super) trait Broker {
    /// Whether `member` is a member of the group now.
    fn is_member(&self, member: &str) -> bool;
    /// Whether a round of joins is open.
    fn round_open(&self) -> bool;
    /// The group's generation.
    fn generation(&self) -> u64;
    /// The number of records in `partition` (0 for one that does not exist).
    fn log_len(&self, partition: u32) -> u64;
}

/// One held request and what it waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Held {
    /// A member's join of the round of `generation`: due once that round has closed (the
    /// group is out of it, or in a later one), or when the member is no longer in the group.
    Join {
        /// The member.
        member: String,
        /// The round it joined.
        generation: u64,
    },
    /// A poll of `partitions` from their offsets: due once one of them has a record at or past
    /// its offset, at `deadline_ms`, or (for a fetch by a member of the group) when the member
    /// leaves the group or the group's generation moves past `generation`.
    Fetch {
        /// Who asks.
        member: String,
        /// The group's generation when it came, if `member` was a member then.
        generation: Option<u64>,
        /// Each partition with the first offset wanted, in the request's order.
        partitions: Vec<(u32, u64)>,
        /// At most this many records per partition.
        max: usize,
        /// When its wait runs out.
        deadline_ms: u64,
    },
}

impl Held {
    /// Whether the request is due at `now_ms` on `broker`.
    fn due(&self, broker: &impl Broker, now_ms: u64) -> bool {
        match self {
            Held::Join { member, generation } => {
                !broker.is_member(member) || !broker.round_open() || broker.generation() != *generation
            }
            Held::Fetch {
                member,
                generation,
                partitions,
                deadline_ms,
                ..
            } => {
                now_ms >= *deadline_ms
                    || partitions.iter().any(|&(p, from)| broker.log_len(p) > from)
                    || generation.is_some_and(|g| !broker.is_member(member) || broker.generation() != g)
            }
        }
    }
}

/// The held requests, by ticket.
#[derive(Clone, Debug, Default)]
pub(super) struct Park {
    held: BTreeMap<Ticket, Held>,
    /// How many of them are joins: none outside a rebalance, when [`Park::awaiting_join`],
    /// asked for every member at every request, answers without a scan.
    joins: usize,
}

impl Park {
    /// Holds `request` under `ticket`. Panics on a ticket already held, or past [`MAX_HELD`].
    pub(super) fn hold(&mut self, ticket: Ticket, request: Held) {
        assert!(
            self.held.len() < MAX_HELD,
            "more than {MAX_HELD} requests held: some held request is never answered"
        );
        self.joins += usize::from(matches!(request, Held::Join { .. }));
        let old = self.held.insert(ticket, request);
        assert!(old.is_none(), "ticket {ticket} is held twice");
    }

    /// Takes `ticket` out, keeping the count of joins.
    fn take(&mut self, ticket: Ticket) -> Option<Held> {
        let held = self.held.remove(&ticket)?;
        self.joins -= usize::from(matches!(held, Held::Join { .. }));
        Some(held)
    }

    /// Lets go of `ticket` unanswered (its caller gave up); false if it was not held.
    pub(super) fn cancel(&mut self, ticket: Ticket) -> bool {
        self.take(ticket).is_some()
    }

    /// Lets go of everything (the broker restarted: its connections are gone).
    pub(super) fn clear(&mut self) {
        self.held.clear();
        self.joins = 0;
    }

    /// How many requests are held.
    pub(super) fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether `member` waits in a held join (Kafka keeps such a member alive: it is inside
    /// its `JoinGroup` call and cannot heartbeat).
    pub(super) fn awaiting_join(&self, member: &str) -> bool {
        debug_assert_eq!(
            self.joins,
            self.held
                .values()
                .filter(|h| matches!(h, Held::Join { .. }))
                .count(),
            "the joins are counted"
        );
        self.joins > 0
            && self
                .held
                .values()
                .any(|h| matches!(h, Held::Join { member: m, .. } if m == member))
    }

    /// The earliest time a held request falls due by the clock alone (a fetch's wait running
    /// out), if any is held.
    pub(super) fn next_deadline(&self) -> Option<u64> {
        self.held
            .values()
            .filter_map(|h| match h {
                Held::Fetch { deadline_ms, .. } => Some(*deadline_ms),
                Held::Join { .. } => None,
            })
            .min()
    }

    /// Takes the requests due at `now_ms` on `broker`, in ticket order (the order they came).
    pub(super) fn take_due(&mut self, broker: &impl Broker, now_ms: u64) -> Vec<(Ticket, Held)> {
        let due: Vec<Ticket> = self
            .held
            .iter()
            .filter(|(_, h)| h.due(broker, now_ms))
            .map(|(t, _)| *t)
            .collect();
        due.into_iter()
            .map(|t| (t, self.take(t).expect("held")))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A broker as the test sets it.
    #[derive(Default)]
    struct Fake {
        members: Vec<&'static str>,
        open: bool,
        generation: u64,
        logs: Vec<u64>,
    }

    impl Broker for Fake {
        fn is_member(&self, member: &str) -> bool {
            self.members.contains(&member)
        }
        fn round_open(&self) -> bool {
            self.open
        }
        fn generation(&self) -> u64 {
            self.generation
        }
        fn log_len(&self, partition: u32) -> u64 {
            self.logs.get(partition as usize).copied().unwrap_or(0)
        }
    }

    fn join(member: &str, generation: u64) -> Held {
        Held::Join {
            member: member.into(),
            generation,
        }
    }

    fn fetch(member: &str, generation: Option<u64>, partitions: &[(u32, u64)], deadline_ms: u64) -> Held {
        Held::Fetch {
            member: member.into(),
            generation,
            partitions: partitions.to_vec(),
            max: 10,
            deadline_ms,
        }
    }

    fn tickets(due: &[(Ticket, Held)]) -> Vec<Ticket> {
        due.iter().map(|(t, _)| *t).collect()
    }

    #[test]
    fn a_join_waits_for_its_round_to_close() {
        let mut b = Fake {
            members: vec!["a", "b"],
            open: true,
            generation: 2,
            ..Fake::default()
        };
        let mut park = Park::default();
        park.hold(1, join("a", 2));
        assert!(park.awaiting_join("a"));
        assert!(!park.awaiting_join("b"));
        assert!(park.take_due(&b, 100).is_empty(), "the round is open");
        assert_eq!(park.next_deadline(), None, "a join has no deadline of its own");
        b.open = false;
        assert_eq!(park.take_due(&b, 100), vec![(1, join("a", 2))]);
        assert_eq!(park.len(), 0);
        assert!(!park.awaiting_join("a"));
    }

    #[test]
    fn a_join_is_due_when_a_later_round_opened_or_its_member_is_gone() {
        let mut b = Fake {
            members: vec!["a", "b"],
            open: true,
            generation: 3,
            ..Fake::default()
        };
        let mut park = Park::default();
        // The round of 2 closed and the round of 3 opened in one step: the join of 2 is due.
        park.hold(1, join("a", 2));
        park.hold(2, join("b", 3));
        assert_eq!(tickets(&park.take_due(&b, 0)), vec![1]);
        b.members = vec!["a"];
        assert_eq!(tickets(&park.take_due(&b, 0)), vec![2], "b was removed");
    }

    #[test]
    fn a_fetch_is_due_when_a_record_lands_on_one_of_its_partitions() {
        let mut b = Fake {
            members: vec!["a"],
            generation: 1,
            logs: vec![4, 2, 0],
            ..Fake::default()
        };
        let mut park = Park::default();
        park.hold(7, fetch("a", Some(1), &[(0, 4), (2, 0)], 500));
        park.hold(8, fetch("a", Some(1), &[(1, 2)], 600));
        assert!(park.take_due(&b, 100).is_empty());
        assert_eq!(park.next_deadline(), Some(500));
        b.logs[1] = 3; // partition 1, not one of ticket 7's
        assert_eq!(tickets(&park.take_due(&b, 100)), vec![8]);
        b.logs[2] = 1;
        assert_eq!(tickets(&park.take_due(&b, 100)), vec![7]);
        assert_eq!(park.next_deadline(), None);
    }

    #[test]
    fn a_fetch_is_due_when_its_wait_runs_out() {
        let b = Fake {
            logs: vec![0],
            ..Fake::default()
        };
        let mut park = Park::default();
        park.hold(1, fetch("zombie", None, &[(0, 0)], 500));
        park.hold(2, fetch("nobody", None, &[], 400));
        assert!(park.take_due(&b, 399).is_empty());
        assert_eq!(tickets(&park.take_due(&b, 400)), vec![2]);
        assert_eq!(tickets(&park.take_due(&b, 10_000)), vec![1]);
    }

    #[test]
    fn a_members_fetch_is_due_when_the_group_moves_on_and_a_strangers_is_not() {
        let mut b = Fake {
            members: vec!["a", "b"],
            generation: 4,
            logs: vec![0],
            ..Fake::default()
        };
        let mut park = Park::default();
        park.hold(1, fetch("a", Some(4), &[(0, 0)], 500));
        park.hold(2, fetch("b", Some(4), &[], 500));
        park.hold(3, fetch("zombie", None, &[(0, 0)], 500));
        b.members = vec!["b"];
        assert_eq!(tickets(&park.take_due(&b, 0)), vec![1], "a was removed");
        b.generation = 5;
        b.open = true;
        assert_eq!(tickets(&park.take_due(&b, 0)), vec![2], "a round opened");
        assert!(park.take_due(&b, 0).is_empty(), "the zombie's fetch waits on");
    }

    #[test]
    fn a_cancelled_or_cleared_request_is_never_due() {
        let b = Fake::default();
        let mut park = Park::default();
        park.hold(1, fetch("a", None, &[], 10));
        park.hold(2, join("b", 1));
        assert!(park.cancel(1));
        assert!(!park.cancel(1));
        assert_eq!(tickets(&park.take_due(&b, 100)), vec![2]);
        park.hold(3, fetch("a", None, &[], 10));
        park.clear();
        assert!(park.take_due(&b, 100).is_empty());
    }

    #[test]
    #[should_panic(expected = "held twice")]
    fn a_ticket_is_held_once() {
        let mut park = Park::default();
        park.hold(1, join("a", 1));
        park.hold(1, join("b", 1));
    }
}
