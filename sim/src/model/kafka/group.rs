//! The group coordinator for `workers`: members, generations, rounds of joins, their timeouts
//! and the commits it accepts or refuses (the module documentation's "The consumer group" and
//! "Timeouts"). It is part of [`KafkaModel`]'s state; the requests reach it through
//! [`KafkaModel::handle`].

use super::{assign, Fetched, GroupError, GroupEvent, KafkaModel, KafkaReply};
use std::collections::BTreeMap;

/// Where the group is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupState {
    /// No members.
    Empty,
    /// A round of joins is open.
    PreparingRebalance,
    /// Every member has its assignment for the current generation.
    Stable,
}

/// A member as the coordinator sees it.
#[derive(Clone, Debug)]
struct Member {
    /// The last generation it joined.
    joined_generation: u64,
    /// Its last heartbeat (or join, sync, accepted commit).
    heartbeat_ms: u64,
    /// Its last poll (fetch, join or sync).
    poll_ms: u64,
}

/// The group coordinator's state for `workers`.
#[derive(Clone, Debug)]
pub(super) struct Group {
    state: GroupState,
    generation: u64,
    /// When the open round times out.
    round_deadline_ms: u64,
    members: BTreeMap<String, Member>,
    /// The current generation's assignment (empty unless stable).
    assignment: BTreeMap<String, Vec<u32>>,
    /// Member ids handed out so far.
    members_created: u64,
}

impl Group {
    /// A group that never had a member.
    pub(super) fn new() -> Self {
        Group {
            state: GroupState::Empty,
            generation: 0,
            round_deadline_ms: 0,
            members: BTreeMap::new(),
            assignment: BTreeMap::new(),
            members_created: 0,
        }
    }

    /// Whether `member_id` is a member now.
    pub(super) fn is_member(&self, member_id: &str) -> bool {
        self.members.contains_key(member_id)
    }

    /// Whether a round of joins is open.
    pub(super) fn round_open(&self) -> bool {
        self.state == GroupState::PreparingRebalance
    }

    /// The generation (0 before the first round).
    pub(super) fn generation(&self) -> u64 {
        self.generation
    }
}

impl KafkaModel {
    /// Expires members and rounds that are due at `now_ms` (time never goes back: an earlier
    /// `now_ms` counts as the latest seen), then answers the held requests that fell due.
    pub fn tick(&mut self, now_ms: u64) {
        // Every held request was not due at the last settle, and only this expiry has changed
        // the group since: unless it did, only a held fetch's wait running out can make one
        // due now (a settle with nothing due changes nothing, at a scan of every held request).
        let changed = self.expire(now_ms);
        if changed || self.park.next_deadline().is_some_and(|d| d <= self.now_ms) {
            self.settle();
        }
    }

    /// Expires members and rounds that are due at `now_ms`; whether any was.
    fn expire(&mut self, now_ms: u64) -> bool {
        self.now_ms = self.now_ms.max(now_ms);
        let now = self.now_ms;
        let (session_ms, poll_ms) = (self.config.session_timeout_ms, self.config.max_poll_interval_ms);
        let expired: Vec<(String, &'static str)> = self
            .group
            .members
            .iter()
            .filter_map(|(id, m)| {
                if self.park.awaiting_join(id) {
                    // Inside its JoinGroup call: kept alive until the round closes (Kafka's
                    // `shouldKeepAlive`); the rebalance timeout bounds the wait.
                    None
                } else if now.saturating_sub(m.heartbeat_ms) > session_ms {
                    Some((id.clone(), "session_timeout"))
                } else if now.saturating_sub(m.poll_ms) > poll_ms {
                    Some((id.clone(), "max_poll_interval"))
                } else {
                    None
                }
            })
            .collect();
        let changed = !expired.is_empty();
        if let Some(&(_, first_reason)) = expired.first() {
            for (id, reason) in expired {
                self.group.members.remove(&id);
                self.events.push(GroupEvent::MemberRemoved { member: id, reason });
            }
            self.membership_changed(first_reason, now);
        }
        if self.group.state == GroupState::PreparingRebalance && now > self.group.round_deadline_ms {
            let generation = self.group.generation;
            let laggards: Vec<String> = self
                .group
                .members
                .iter()
                .filter(|(_, m)| m.joined_generation != generation)
                .map(|(id, _)| id.clone())
                .collect();
            for id in laggards {
                self.group.members.remove(&id);
                self.events.push(GroupEvent::MemberRemoved {
                    member: id,
                    reason: "rebalance_timeout",
                });
            }
            self.close_round_if_complete();
            assert_ne!(
                self.group.state,
                GroupState::PreparingRebalance,
                "a timed-out round closes"
            );
            return true;
        }
        changed
    }

    /// The broker (re)started at `now_ms`: every member's session and poll timers and an open
    /// round's deadline start again from now (see the module doc), and no request is held.
    pub fn restarted(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        let now = self.now_ms;
        // The held requests were on the old incarnation's connections.
        self.park.clear();
        self.answers.clear();
        for m in self.group.members.values_mut() {
            m.heartbeat_ms = now;
            m.poll_ms = now;
        }
        if self.group.state == GroupState::PreparingRebalance {
            self.group.round_deadline_ms = now + self.config.session_timeout_ms;
        }
    }

    /// When the open round times out, if one is open: it closes at the first tick past it.
    pub fn round_deadline(&self) -> Option<u64> {
        (self.group.state == GroupState::PreparingRebalance).then_some(self.group.round_deadline_ms)
    }

    /// The first ms at which a member expires if nothing is heard from it meanwhile (its session
    /// or its poll interval running out), over the members not inside a JoinGroup call.
    pub fn member_deadline(&self) -> Option<u64> {
        let (session_ms, poll_ms) = (self.config.session_timeout_ms, self.config.max_poll_interval_ms);
        self.group
            .members
            .iter()
            .filter(|(id, _)| !self.park.awaiting_join(id))
            .map(|(_, m)| {
                let session = m.heartbeat_ms.saturating_add(session_ms);
                let poll = m.poll_ms.saturating_add(poll_ms);
                session.min(poll).saturating_add(1)
            })
            .min()
    }

    /// The group's state.
    pub fn group_state(&self) -> GroupState {
        self.group.state
    }

    /// The group's generation (0 before the first round).
    pub fn generation(&self) -> u64 {
        self.group.generation
    }

    /// The group's members, sorted.
    pub fn members(&self) -> Vec<String> {
        self.group.members.keys().cloned().collect()
    }

    /// `SyncGroup`: the member's assignment for `generation`, once the round is closed.
    pub(super) fn sync(&mut self, member_id: &str, generation: u64, now: u64) -> KafkaReply {
        match self.check_member(member_id, generation) {
            Err(e) => KafkaReply::Error(e),
            Ok(()) => {
                let m = self.group.members.get_mut(member_id).expect("checked");
                m.heartbeat_ms = now;
                m.poll_ms = now;
                if self.group.state == GroupState::PreparingRebalance {
                    return KafkaReply::Error(GroupError::RebalanceInProgress);
                }
                KafkaReply::Assignment {
                    generation,
                    partitions: self.group.assignment.get(member_id).cloned().unwrap_or_default(),
                }
            }
        }
    }

    /// `Heartbeat`: the member is alive; told of an open round.
    pub(super) fn heartbeat(&mut self, member_id: &str, generation: u64, now: u64) -> KafkaReply {
        match self.check_member(member_id, generation) {
            Err(e) => KafkaReply::Error(e),
            Ok(()) => {
                self.group
                    .members
                    .get_mut(member_id)
                    .expect("checked")
                    .heartbeat_ms = now;
                if self.group.state == GroupState::PreparingRebalance {
                    KafkaReply::Error(GroupError::RebalanceInProgress)
                } else {
                    KafkaReply::HeartbeatOk
                }
            }
        }
    }

    /// `LeaveGroup`: the member is removed (reason `leave`).
    pub(super) fn leave(&mut self, member_id: String, now: u64) -> KafkaReply {
        if self.group.members.remove(&member_id).is_none() {
            return KafkaReply::Error(GroupError::UnknownMemberId);
        }
        self.events.push(GroupEvent::MemberRemoved {
            member: member_id,
            reason: "leave",
        });
        self.membership_changed("leave", now);
        KafkaReply::Left
    }

    /// `FetchGroup`: a poll by a current member (whoever asks gets the records): per partition
    /// of `partitions`, in their order, up to `max` records from its offset.
    pub(super) fn fetch(
        &mut self,
        member_id: &str,
        partitions: &[(u32, u64)],
        max: usize,
        now: u64,
    ) -> KafkaReply {
        if let Some(m) = self.group.members.get_mut(member_id) {
            m.poll_ms = now;
        }
        match self.read_all(partitions, max) {
            Some(records) => KafkaReply::Records(records),
            None => KafkaReply::Error(GroupError::UnknownTopicOrPartition),
        }
    }

    /// Up to `max` records of each partition from its offset; `None` if one does not exist.
    pub(super) fn read_all(&self, partitions: &[(u32, u64)], max: usize) -> Option<Fetched> {
        partitions
            .iter()
            .map(|&(p, from)| Some((p, self.read(p, from, max)?)))
            .collect()
    }

    /// A held join of the round of `generation` is answered: `Joined` (the member's session
    /// and poll timers start again, as Kafka's do when it completes a join), or
    /// `UnknownMemberId` for a member removed meanwhile.
    pub(super) fn join_answered(&mut self, member_id: String, generation: u64, now: u64) -> KafkaReply {
        let Some(m) = self.group.members.get_mut(&member_id) else {
            return KafkaReply::Error(GroupError::UnknownMemberId);
        };
        m.heartbeat_ms = now;
        m.poll_ms = now;
        KafkaReply::Joined {
            member_id,
            generation,
        }
    }

    /// `Ok` if `member_id` is a member and, outside an open round, of `generation`.
    fn check_member(&self, member_id: &str, generation: u64) -> Result<(), GroupError> {
        if !self.group.members.contains_key(member_id) {
            return Err(GroupError::UnknownMemberId);
        }
        if self.group.state != GroupState::PreparingRebalance && generation != self.group.generation {
            return Err(GroupError::IllegalGeneration);
        }
        Ok(())
    }

    pub(super) fn join(&mut self, member_id: Option<String>, client: &str, now: u64) -> KafkaReply {
        let id = match member_id {
            Some(id) => {
                let Some(m) = self.group.members.get_mut(&id) else {
                    return KafkaReply::Error(GroupError::UnknownMemberId);
                };
                m.heartbeat_ms = now;
                m.poll_ms = now;
                id
            }
            None => {
                self.group.members_created += 1;
                let id = format!("{client}-{}", self.group.members_created);
                let fresh = Member {
                    joined_generation: 0,
                    heartbeat_ms: now,
                    poll_ms: now,
                };
                assert!(
                    self.group.members.insert(id.clone(), fresh).is_none(),
                    "member ids are fresh"
                );
                self.membership_changed("join", now);
                id
            }
        };
        let generation = self.group.generation;
        let m = self.group.members.get_mut(&id).expect("a member");
        if self.group.state == GroupState::PreparingRebalance && m.joined_generation != generation {
            m.joined_generation = generation;
            self.events.push(GroupEvent::Join {
                member: id.clone(),
                generation,
            });
            self.close_round_if_complete();
        }
        if self.group.state == GroupState::Stable {
            KafkaReply::Joined {
                member_id: id,
                generation,
            }
        } else {
            KafkaReply::JoinPending {
                member_id: id,
                generation,
            }
        }
    }

    pub(super) fn commit(
        &mut self,
        member: String,
        generation: u64,
        partition: u32,
        offset: u64,
        now: u64,
    ) -> KafkaReply {
        let verdict = self.check_member(&member, generation).and_then(|()| {
            if self.group.state == GroupState::PreparingRebalance {
                Err(GroupError::RebalanceInProgress)
            } else if (partition as usize) >= self.committed.len() {
                Err(GroupError::UnknownTopicOrPartition)
            } else {
                Ok(())
            }
        });
        match verdict {
            Ok(()) => {
                self.committed[partition as usize] = Some(offset);
                self.group.members.get_mut(&member).expect("checked").heartbeat_ms = now;
                self.events.push(GroupEvent::CommitAccepted {
                    member,
                    generation,
                    partition,
                    offset,
                });
                KafkaReply::Committed
            }
            Err(error) => {
                self.events.push(GroupEvent::CommitRejected {
                    member,
                    generation,
                    partition,
                    offset,
                    error,
                });
                KafkaReply::Error(error)
            }
        }
    }

    /// Opens a round (unless one is open), then closes it if it is complete.
    fn membership_changed(&mut self, reason: &'static str, now: u64) {
        if self.group.state != GroupState::PreparingRebalance {
            self.group.generation += 1;
            self.group.state = GroupState::PreparingRebalance;
            self.group.round_deadline_ms = now + self.config.session_timeout_ms;
            self.group.assignment.clear();
            self.events.push(GroupEvent::Rebalance {
                generation: self.group.generation,
                reason,
                members: self.members(),
            });
        }
        self.close_round_if_complete();
    }

    /// Closes the open round if every member has joined it.
    fn close_round_if_complete(&mut self) {
        let generation = self.group.generation;
        if self.group.state != GroupState::PreparingRebalance
            || self
                .group
                .members
                .values()
                .any(|m| m.joined_generation != generation)
        {
            return;
        }
        let members = self.members();
        self.group.assignment = assign(self.config.assignor, &members, self.partitions.len() as u32);
        self.group.state = if members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
        self.events.push(GroupEvent::Assignment {
            generation,
            assignment: self.group.assignment.clone(),
        });
    }
}
