//! The Redis node: the [`RedisModel`] state machine served on the simulated network, its
//! persistence on crash, injected command failures, and the client the workers' `idempotency`
//! consumers use as their [`Store`].

use super::NodeCtx;
use crate::fault::{Fault, NodeFaults};
use crate::model::redis::Persistence;
use crate::model::redis::RedisModel;
use crate::net::rpc::{self, Client, RpcError};
use crate::net::topology::NodeName;
use crate::trace::{Label, Typed};
use idempotency::clock::Clock;
use idempotency::store::{BoxFuture, Command, Expiry, Reply, Script, SetCondition, Store, StoreError};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

/// A command travels shared: the client keeps it to send again after a failed attempt.
impl rpc::Message for Arc<Command> {
    fn kind(&self) -> &'static str {
        self.name()
    }
}

/// The Redis node's state, kept by the world across incarnations.
pub struct RedisState {
    /// The live data set.
    pub model: RedisModel,
    /// What the last fsync wrote (for `everysec`).
    pub disk: RedisModel,
    /// Share of commands failed on purpose (the nemesis sets it).
    pub error_share: f64,
    /// Share of replies dropped after their command ran (the nemesis sets it).
    pub lost_reply_share: f64,
    /// Only replies to this command are dropped (`None`: any).
    pub lost_reply_command: Option<String>,
    /// Draws which commands fail and which replies are lost.
    pub rng: ChaCha8Rng,
    /// How much of the write stream the model keeps for a failover (0: none).
    pub journal_us: u64,
    /// The `everysec` fsync task, while it waits for a write with nothing left to sync: the
    /// next command that changes the data set wakes it.
    fsync_waiting: Option<Waker>,
}

impl RedisState {
    /// A fresh, empty server.
    pub fn new(rng: ChaCha8Rng) -> Self {
        RedisState {
            model: RedisModel::new(),
            disk: RedisModel::new(),
            error_share: 0.0,
            lost_reply_share: 0.0,
            lost_reply_command: None,
            rng,
            journal_us: 0,
            fsync_waiting: None,
        }
    }

    /// Keeps `window_us` of the write stream, for failovers to a replica lagging up to that
    /// much (0: none, as before failovers existed).
    pub fn keep_writes_for(&mut self, window_us: u64) {
        self.journal_us = window_us;
        if window_us > 0 {
            self.model.keep_writes_for(window_us);
        }
    }

    /// What the data set becomes when the primary fails over, at virtual time `now_us` (the
    /// Redis clock reading `clock_us`), to a replica lagging `lag_us` behind: the primary's
    /// data set as of `now_us - lag_us`, which the promoted replica also has on its disk.
    /// Returns the keys it loses, sorted, as [`RedisState::crash`] does.
    pub fn fail_over(&mut self, lag_us: u64, now_us: u64, clock_us: i64) -> Vec<String> {
        let before = self.model.live_keys(clock_us);
        self.model.roll_back_to(now_us.saturating_sub(lag_us));
        self.disk = self.model.data();
        self.model.mark_synced();
        before
            .into_iter()
            .filter(|(k, v, _)| self.model.get_raw(k, clock_us) != Some(v.as_slice()))
            .map(|(k, _, _)| k)
            .collect()
    }

    /// What the data set becomes when the server crashes at the Redis clock `now_us`.
    /// Returns the keys it loses, sorted: those live at the crash whose value the restart does
    /// not bring back (gone, or an older value from the last fsync).
    pub fn crash(&mut self, persistence: Persistence, now_us: i64) -> Vec<String> {
        let before = self.model.live_keys(now_us);
        match persistence {
            Persistence::None => self.model = RedisModel::new(),
            Persistence::Everysec => self.model = self.disk.data(),
            Persistence::Always => {}
        }
        self.disk = self.model.data();
        self.model.mark_synced();
        // The replicas resync from the restarted primary: the write stream starts anew.
        self.keep_writes_for(self.journal_us);
        before
            .into_iter()
            .filter(|(k, v, _)| self.model.get_raw(k, now_us) != Some(v.as_slice()))
            .map(|(k, _, _)| k)
            .collect()
    }
}

fn text(bytes: &[u8]) -> Value {
    // UTF-8 checked the fast way first (the records are); the lossy form only for other bytes.
    match std::str::from_utf8(bytes) {
        Ok(s) => Value::from(s),
        Err(_) => Value::from(String::from_utf8_lossy(bytes).into_owned()),
    }
}

/// A command's arguments after the key, for the trace.
pub fn args(cmd: &Command) -> Vec<Value> {
    match cmd {
        Command::Get { .. } | Command::PTtl { .. } | Command::Incr { .. } => vec![],
        Command::Set {
            value,
            condition,
            expiry,
            ..
        } => {
            let mut a = vec![text(value)];
            match condition {
                SetCondition::Always => {}
                SetCondition::Nx => a.push("NX".into()),
                SetCondition::Xx => a.push("XX".into()),
            }
            match expiry {
                None => {}
                Some(Expiry::Ex(s)) => a.extend(["EX".into(), Value::from(*s)]),
                Some(Expiry::Px(ms)) => a.extend(["PX".into(), Value::from(*ms)]),
            }
            a
        }
        Command::SetEx { ttl_s, value, .. } => vec![Value::from(*ttl_s), text(value)],
        Command::Del { keys } => keys.iter().skip(1).map(|k| Value::from(k.as_str())).collect(),
        Command::PExpire { ttl_ms, .. } => vec![Value::from(*ttl_ms)],
        Command::Script(Script::Acquire {
            fence_key,
            ttl_ms,
            head,
            tail,
            floor,
            ..
        }) => {
            let mut record = Vec::with_capacity(head.len() + 7 + tail.len());
            record.extend_from_slice(head);
            record.extend_from_slice(b"<fence>");
            record.extend_from_slice(tail);
            let record = match String::from_utf8(record) {
                Ok(text) => Value::String(text),
                Err(e) => text(e.as_bytes()),
            };
            let mut a = vec![Value::from(fence_key.as_str()), Value::from(*ttl_ms), record];
            // No floor (0) is left out, as before floors existed.
            if *floor > 0 {
                a.push(Value::from(*floor));
            }
            a
        }
        Command::Script(Script::Renew {
            lease, value, ttl_ms, ..
        }) => vec![text(lease), text(value), Value::from(*ttl_ms)],
        Command::Script(Script::Confirm {
            lease, value, ttl_s, ..
        }) => {
            vec![text(lease), text(value), Value::from(*ttl_s)]
        }
        Command::Script(Script::Release { lease, .. }) => vec![text(lease)],
    }
}

/// A reply as trace text.
pub fn reply_text(reply: &Result<Reply, StoreError>) -> String {
    match reply {
        Ok(r) => {
            // Sized for the reply at once (a record's text grew the string three times).
            let mut out = String::with_capacity(reply_len(r));
            push_reply(&mut out, r);
            out
        }
        Err(e) => format!("error: {e}"),
    }
}

/// About how long `reply`'s text is: exact for what [`push_reply`] writes without a formatter.
fn reply_len(reply: &Reply) -> usize {
    match reply {
        Reply::Nil | Reply::Ok => 3,
        Reply::Int(_) => 20,
        Reply::Bulk(b) => b.len() + 2,
        Reply::Array(items) => 2 + items.iter().map(|r| reply_len(r) + 2).sum::<usize>(),
    }
}

/// `reply`'s `Display` text onto the end of `out`, built without a formatter where it can be
/// (every Redis command's trace event carries it): a bulk string of printable ASCII other than
/// `"` and `\\` is its `Debug` text as it is, between quotes.
fn push_reply(out: &mut String, reply: &Reply) {
    match reply {
        Reply::Nil => out.push_str("nil"),
        Reply::Ok => out.push_str("OK"),
        Reply::Int(i) => out.push_str(itoa::Buffer::new().format(*i)),
        Reply::Bulk(b)
            if b.iter()
                .all(|&c| (0x20..=0x7E).contains(&c) && c != b'"' && c != b'\\') =>
        {
            out.push('"');
            out.push_str(std::str::from_utf8(b).expect("printable ASCII"));
            out.push('"');
        }
        Reply::Bulk(_) => {
            use std::fmt::Write;
            let _ = write!(out, "{reply}");
        }
        Reply::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                push_reply(out, item);
            }
            out.push(']');
        }
    }
}

/// How often `everysec` persistence writes the data set to disk.
const FSYNC_EVERY: Duration = Duration::from_secs(1);

/// Each fsync checks that the disk equals the data set: every fsync the key counts
/// ([`crate::model::redis::RedisModel::sync_to`]), and this many keys, entry for entry, going
/// round the key space one stretch per fsync ([`crate::model::redis::RedisModel::agrees_from`]).
/// The whole comparison every fsync cost 13 % of a release sweep's instructions, and every
/// 16th fsync still grew with the square of a run's events (a data set that grows, compared
/// over a run that lasts longer: 3 % of a 10,000-event run); a stretch costs the same however
/// large the data set (16 keys cost 4.6 % of a default seed's instructions, 4 keys about a
/// quarter of that). A change the bookkeeping missed stays on the disk until the key changes
/// again, so the round reaches it (a 100-event run's few hundred keys in about a minute).
/// An fsync with nothing to write is skipped (see [`fsync_everysec`]), and so is its stretch.
const KEYS_CHECKED_PER_FSYNC: usize = 4;

/// The Redis node's own settings.
#[derive(Clone, Debug)]
pub struct RedisConfig {
    /// What survives a crash.
    pub persistence: Persistence,
    /// Every this many ms, record each live key's PTTL (0: never).
    pub ttl_probe_ms: u64,
}

/// The Redis node's lasting state: its data (live and on disk), its injected errors, its
/// clock and settings. One per run, kept across incarnations.
pub struct RedisNode {
    /// The data and the error injection.
    pub state: Mutex<RedisState>,
    /// The host's clock (keys expire by it).
    pub clock: super::clock::NodeClock,
    /// Its settings.
    pub config: RedisConfig,
}

impl NodeFaults for RedisNode {
    fn inject(&self, fault: &Fault) -> bool {
        let mut st = self.state.lock().expect("redis state");
        match fault {
            Fault::RedisErrors { share } => st.error_share = *share,
            Fault::LostReplies { share, command } => {
                st.lost_reply_share = *share;
                st.lost_reply_command = command.clone();
            }
            _ => return false,
        }
        true
    }
    fn heal(&self, fault: &Fault) {
        let mut st = self.state.lock().expect("redis state");
        match fault {
            Fault::RedisErrors { .. } => st.error_share = 0.0,
            Fault::LostReplies { .. } => st.lost_reply_share = 0.0,
            _ => {}
        }
    }
    fn heal_all(&self) {
        let mut st = self.state.lock().expect("redis state");
        st.error_share = 0.0;
        st.lost_reply_share = 0.0;
    }
    fn crashed(&self) -> Option<Vec<String>> {
        let now_us = self.clock.now_unix_us();
        let lost = self
            .state
            .lock()
            .expect("redis state")
            .crash(self.config.persistence, now_us);
        Some(lost)
    }
}

/// `everysec` persistence: every second from the node's start, what changed is written to
/// disk. A second in which nothing changed writes nothing, so the task does not wake for it:
/// with nothing to sync it waits for the next write, then for the next second of its grid (the
/// same instant it would have synced at). A default run is idle for most of its five minutes;
/// a wake-up every second cost about 5 % of its instructions.
async fn fsync_everysec(node: Arc<RedisNode>) {
    let time = madsim::time::TimeHandle::current();
    let start = time.now_instant();
    let mut checked_up_to: Option<String> = None;
    let mut tick: u32 = 0;
    loop {
        std::future::poll_fn(|cx| {
            let mut st = node.state.lock().expect("redis state");
            if st.model.has_unsynced() {
                st.fsync_waiting = None;
                Poll::Ready(())
            } else {
                st.fsync_waiting = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
        // The first second of the grid after now (a write at a grid instant waits a second).
        let elapsed = time.now_instant() - start;
        tick = tick.max((elapsed.as_nanos() / FSYNC_EVERY.as_nanos()) as u32 + 1);
        crate::net::timer::sleep_until(start + FSYNC_EVERY * tick).await;
        let mut guard = node.state.lock().expect("redis state");
        let st = &mut *guard;
        st.model.sync_to(&mut st.disk);
        let (agrees, next) = st
            .model
            .agrees_from(&st.disk, checked_up_to.as_deref(), KEYS_CHECKED_PER_FSYNC);
        assert!(agrees, "the fsync wrote what changed");
        checked_up_to = next;
    }
}

/// The node's main task: fsync (for `everysec`) and serve commands until killed.
pub async fn run(ctx: NodeCtx, node: Arc<RedisNode>) {
    if node.config.persistence == Persistence::Everysec {
        madsim::task::spawn(fsync_everysec(node.clone()));
    }
    if node.config.ttl_probe_ms > 0 {
        let (node, ctx) = (node.clone(), ctx.clone());
        madsim::task::spawn(async move {
            loop {
                crate::net::timer::sleep(Duration::from_millis(node.config.ttl_probe_ms)).await;
                let now_us = node.clock.now_unix_us();
                let keys = {
                    let st = node.state.lock().expect("redis state");
                    st.model
                        .live_keys(now_us)
                        .into_iter()
                        .map(|(k, _, _)| {
                            let pttl = st.model.pttl_ms(&k, now_us);
                            (k, pttl)
                        })
                        .collect()
                };
                ctx.emit(Typed::PttlProbe {
                    clock_us: now_us,
                    keys,
                });
            }
        });
    }
    let (net, me, trace) = (ctx.net.clone(), ctx.name, ctx.trace.clone());
    rpc::serve(&net, me, move |cmd: Arc<Command>, from: NodeName| {
        let now_us = node.clock.now_unix_us();
        let (reply, reply_lost) = {
            let mut st = node.state.lock().expect("redis state");
            let share = st.error_share;
            if share > 0.0 && st.rng.gen_bool(share) {
                (Err(StoreError::Reply("ERR injected fault".into())), false)
            } else {
                st.model.at(trace.now_us());
                let reply = st.model.exec(&cmd, now_us);
                if st.model.has_unsynced() {
                    if let Some(fsync) = st.fsync_waiting.take() {
                        fsync.wake();
                    }
                }
                // The command ran; its answer may still be lost on the way back (drawn only
                // while the fault is on, so runs without it keep their stream).
                let lost = st.lost_reply_share;
                let this = st.lost_reply_command.as_deref().is_none_or(|c| c == cmd.name());
                (reply, lost > 0.0 && this && st.rng.gen_bool(lost))
            }
        };
        ctx.emit(Typed::Redis {
            from: from.label(),
            cmd: Label::fixed(cmd.name()),
            key: cmd.key().into(),
            args: args(&cmd),
            reply: reply_text(&reply),
            clock_us: now_us,
            reply_lost,
        });
        // A reply dropped here is a real loss: the responder goes unanswered and the caller's
        // call times out (see `net::transport`'s `ReplyTo`).
        (!reply_lost).then_some(reply)
    })
    .await
}

/// A worker's connection to the Redis node, as the `idempotency` store.
pub struct SimRedis {
    /// The worker's endpoint.
    pub client: Arc<Client>,
    /// The Redis node.
    pub addr: SocketAddr,
    /// How long a command may take before it fails with [`StoreError::Timeout`].
    pub timeout: Duration,
}

impl SimRedis {
    /// One attempt: the command sent once, waiting `budget` for its reply.
    async fn attempt(&self, command: Arc<Command>, budget: Duration) -> Result<Reply, StoreError> {
        match self
            .client
            .call::<Arc<Command>, Result<Reply, StoreError>>(self.addr, command, budget)
            .await
        {
            Ok(reply) => reply,
            Err(e) => Err(store_error(e)),
        }
    }
}

/// A call's failure as the client library reports it: refused never reached Redis; a reset or
/// a timeout may have run.
pub fn store_error(e: RpcError) -> StoreError {
    match e {
        RpcError::Timeout => StoreError::Timeout,
        RpcError::Refused => StoreError::Unavailable(e.to_string()),
        RpcError::Reset => StoreError::ConnectionLost(e.to_string()),
        RpcError::Io(e) => StoreError::Unavailable(e),
    }
}

impl Store for SimRedis {
    /// Runs the command as the real store does: sent again after a failed connection as
    /// `idempotency::retry` decides, on virtual time.
    fn exec(&self, command: Command) -> BoxFuture<'_, Result<Reply, StoreError>> {
        Box::pin(async move {
            // The runtime's clock through its handle: `Instant::now` would reach it through
            // madsim's `clock_gettime` hook, which looks the runtime up at every reading.
            let time = madsim::time::TimeHandle::current();
            let start = time.now_instant();
            idempotency::retry::exec(
                command,
                self.timeout,
                |command, budget| self.attempt(command, budget),
                || time.now_instant() - start,
                crate::net::timer::sleep,
            )
            .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The trace's reply text is the reply's `Display` text, escapes and all.
    #[test]
    fn a_replys_trace_text_is_its_display_text() {
        let bulk = |s: &[u8]| Reply::Bulk(s.to_vec());
        let replies = [
            Reply::Nil,
            Reply::Ok,
            Reply::Int(-42),
            Reply::Int(i64::MIN),
            bulk(br#"{"status": "processing", "started_at": 1764315200.196655}"#),
            bulk(b"tab\there \"quoted\" back\\slash"),
            bulk("caf\u{e9} \u{301}\u{200b}".as_bytes()),
            bulk(b"\xff\x00\x7f"),
            bulk(b""),
            Reply::Array(vec![
                bulk(b"acquired"),
                Reply::Int(7),
                Reply::Array(vec![Reply::Nil, bulk(b"a\nb")]),
            ]),
        ];
        for r in replies {
            assert_eq!(reply_text(&Ok(r.clone())), r.to_string(), "{r:?}");
        }
        let e = Err(StoreError::Timeout);
        assert_eq!(reply_text(&e), format!("error: {}", StoreError::Timeout));
    }
}
