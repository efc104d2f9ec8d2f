//! The consumer loop's I/O: join and sync the group, heartbeat it, fetch the assigned
//! partitions, deliver each record, and commit offsets when [`SessionState`] says so.
//!
//! Every decision about positions and commits is the state machine's; this file only makes
//! the calls, in an order the byte-compared traces pin: do not reorder a fetch, a commit, a
//! sleep or a trace event here without expecting every snapshot to change.

use super::session::{Commit, CommitPolicy, SessionState};
use super::{Worker, WorkerConfig, BACKOFF};
use crate::fault::FaultPoint;
use crate::model::kafka::{GroupError, KafkaReply, KafkaRequest};
use crate::net::rpc::Client;
use crate::net::topology::NodeName;
use crate::trace::Typed;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

/// Records per fetch.
const FETCH_MAX: usize = 10;

/// Whether one group session still holds, shared between the consumer loop and its heartbeat.
#[derive(Default)]
struct Liveness {
    /// Set by the heartbeat when the coordinator ends the session, with its reason.
    lost: Mutex<Option<GroupError>>,
    /// The consumer loop, while it sleeps.
    sleeper: Mutex<Option<Waker>>,
}

impl Liveness {
    /// Why the session ended, if it did.
    fn ended(&self) -> Option<GroupError> {
        *self.lost.lock().expect("session")
    }

    /// Ends the session and wakes the consumer loop.
    fn end(&self, why: GroupError) {
        *self.lost.lock().expect("session") = Some(why);
        if let Some(w) = self.sleeper.lock().expect("session").take() {
            w.wake();
        }
    }

    /// Sleeps for `d`, or until the session ends.
    async fn sleep(&self, d: Duration) {
        self.or_ended(crate::net::timer::sleep(d)).await;
    }

    /// Waits for `work`, or until the session ends (then `None`: `work` is dropped, as a
    /// consumer leaves a fetch unread to rejoin).
    async fn or_ended<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        let mut work = std::pin::pin!(work);
        std::future::poll_fn(|cx| {
            if self.ended().is_some() {
                return Poll::Ready(None);
            }
            *self.sleeper.lock().expect("session") = Some(cx.waker().clone());
            work.as_mut().poll(cx).map(Some)
        })
        .await
    }
}

/// Heartbeats every `heartbeat_interval_ms` until the coordinator ends the session. A call
/// that fails (lost, timed out) is not an answer: only the coordinator's error ends it.
async fn heartbeat(
    config: WorkerConfig,
    client: Arc<Client>,
    member: String,
    generation: u64,
    session: Arc<Liveness>,
) {
    let every = Duration::from_millis(config.heartbeat_interval_ms);
    let timeout = Duration::from_millis(config.call_timeout_ms);
    loop {
        crate::net::timer::sleep(every).await;
        let req = KafkaRequest::Heartbeat {
            member_id: member.clone(),
            generation,
        };
        if let Ok(KafkaReply::Error(e)) = client
            .call::<KafkaRequest, KafkaReply>(NodeName::Kafka.addr(), req, timeout)
            .await
        {
            session.end(e);
            return;
        }
    }
}

impl Worker {
    /// The consumer loop: join the group, consume the assigned partitions until the session
    /// ends (a rebalance, removal, or a rejected commit), then join again. Runs until the node
    /// is killed.
    pub(super) async fn consume(&self) {
        // A new incarnation is a new member; a rebalance keeps the member id.
        let mut member_id: Option<String> = None;
        loop {
            let (member, generation) = self.join(&mut member_id).await;
            let Some(partitions) = self.sync(&member, generation).await else {
                continue;
            };
            let session = Arc::new(Liveness::default());
            self.ctx.emit(Typed::Assigned {
                member: member.clone(),
                generation,
                partitions: partitions.clone(),
            });
            let heartbeat = madsim::task::spawn(heartbeat(
                self.node.config.clone(),
                self.heartbeat_client.clone(),
                member.clone(),
                generation,
                session.clone(),
            ));
            let ended = self
                .consume_session(&member, generation, &partitions, &session)
                .await;
            heartbeat.abort();
            self.ctx.emit(Typed::Revoked {
                member: member.clone(),
                generation,
                partitions,
                why: ended.name().to_owned(),
            });
            if ended == GroupError::UnknownMemberId {
                member_id = None;
            }
        }
    }

    /// Joins (or rejoins) the group; returns the member id and generation. The broker holds
    /// a join until its round closes, so the call may wait the rebalance timeout on top of the
    /// usual one (as Kafka's consumer does). A lost or refused join is sent again after
    /// [`BACKOFF`], for as long as it takes: a worker outside the group has nothing else to do.
    async fn join(&self, member_id: &mut Option<String>) -> (String, u64) {
        let config = &self.node.config;
        let timeout = Duration::from_millis(config.call_timeout_ms + config.rebalance_timeout_ms);
        loop {
            let req = KafkaRequest::JoinGroup {
                member_id: member_id.clone(),
                client: self.name.to_string(),
            };
            match self.kafka_within(req, timeout).await {
                Some(KafkaReply::Joined {
                    member_id: id,
                    generation,
                }) => {
                    *member_id = Some(id.clone());
                    return (id, generation);
                }
                Some(KafkaReply::JoinPending { member_id: id, .. }) => *member_id = Some(id),
                Some(KafkaReply::Error(GroupError::UnknownMemberId)) => *member_id = None,
                _ => {}
            }
            crate::net::timer::sleep(BACKOFF).await;
        }
    }

    /// This member's partitions in `generation`, or `None` if a new rebalance began. A lost
    /// call is retried every [`BACKOFF`], for as long as it takes.
    async fn sync(&self, member: &str, generation: u64) -> Option<Vec<u32>> {
        loop {
            let req = KafkaRequest::SyncGroup {
                member_id: member.to_owned(),
                generation,
            };
            match self.kafka(req).await {
                Some(KafkaReply::Assignment { partitions, .. }) => return Some(partitions),
                Some(KafkaReply::Error(_)) => return None,
                _ => crate::net::timer::sleep(BACKOFF).await,
            }
        }
    }

    /// The group's committed offsets, asked every [`BACKOFF`] until the broker answers.
    async fn committed_offsets(&self) -> Vec<Option<u64>> {
        loop {
            match self.kafka(KafkaRequest::CommittedGroup).await {
                Some(KafkaReply::GroupOffsets(o)) => return o,
                _ => crate::net::timer::sleep(BACKOFF).await,
            }
        }
    }

    /// Consumes `partitions` from their committed offsets until the session ends; returns why.
    async fn consume_session(
        &self,
        member: &str,
        generation: u64,
        partitions: &[u32],
        session: &Liveness,
    ) -> GroupError {
        let committed = self.committed_offsets().await;
        let config = &self.node.config;
        let policy = CommitPolicy::new(config.offset_commit, config.offset_commit_every);
        let mut state = SessionState::new(partitions, &committed, policy);
        for (partition, offset) in state.positions() {
            self.ctx.emit(Typed::Seek {
                member: member.to_owned(),
                partition,
                offset,
            });
        }
        // A fetch may wait at the broker up to `fetch_max_wait_ms` on top of the usual timeout.
        let fetch_timeout = Duration::from_millis(config.call_timeout_ms + config.fetch_max_wait_ms);
        let poll_idle = Duration::from_millis(config.poll_idle_ms);
        loop {
            // Ended while polling or idle: nothing was done since the last check, so nothing
            // is flushed here (what a record left uncommitted waits for the next owner).
            if let Some(why) = session.ended() {
                return why;
            }
            // One fetch for every assigned partition (a member without partitions still polls,
            // with none, or it is removed as stuck). The broker holds it until a record lands
            // on one of them or its wait runs out; a rebalance heard meanwhile (the heartbeat
            // ends the session) leaves it unread.
            let began_us = self.ctx.trace.now_us();
            let req = KafkaRequest::FetchGroup {
                member_id: member.to_owned(),
                generation,
                partitions: state.positions().collect(),
                max: FETCH_MAX,
                max_wait_ms: config.fetch_max_wait_ms,
            };
            let Some(reply) = session.or_ended(self.kafka_within(req, fetch_timeout)).await else {
                continue;
            };
            let mut idle = true;
            let fetched = match reply {
                Some(KafkaReply::Records(fetched)) => fetched,
                _ => Vec::new(),
            };
            for (partition, records) in fetched {
                for (offset, record) in records {
                    idle = false;
                    if let Some(first) = state.commit_before(partition, offset) {
                        if let Err(why) = self.commit(member, generation, first).await {
                            return why;
                        }
                    }
                    let event_id = self
                        .deliver_until_done((partition, offset, member, generation), &record)
                        .await;
                    let due = state.done(partition, offset);
                    if !due.is_empty() {
                        self.fault_point(FaultPoint::BeforeOffsetCommit, &event_id).await;
                        for commit in due {
                            if let Err(why) = self.commit(member, generation, commit).await {
                                return why;
                            }
                        }
                    }
                    if let Some(why) = session.ended() {
                        // Revoked: stop, and commit what is done while still a member. A
                        // refusal here changes nothing (the session is over), so all are tried.
                        for commit in state.revoke() {
                            let _ = self.commit(member, generation, commit).await;
                        }
                        return why;
                    }
                }
            }
            if idle {
                // Nothing came: poll again no sooner than `poll_idle_ms` after this poll began
                // (a fetch that waited at the broker that long polls again at once), but hear
                // a rebalance at once (the heartbeat wakes us).
                let waited = Duration::from_micros(self.ctx.trace.now_us().saturating_sub(began_us));
                if waited < poll_idle {
                    session.sleep(poll_idle - waited).await;
                }
            }
        }
    }

    /// Commits `commit.next` as the next offset to read; a refusal ends the session. A lost
    /// call is only recorded: the next commit covers it, and a rebalance re-reads at worst.
    async fn commit(&self, member: &str, generation: u64, commit: Commit) -> Result<(), GroupError> {
        let Commit { partition, next } = commit;
        let req = KafkaRequest::CommitGroup {
            member_id: member.to_owned(),
            generation,
            partition,
            offset: next,
        };
        match self.kafka(req).await {
            Some(KafkaReply::Error(e)) => Err(e),
            Some(_) => Ok(()),
            None => {
                self.ctx.emit(Typed::OffsetCommitFailed {
                    partition,
                    offset: next,
                });
                Ok(())
            }
        }
    }
}
