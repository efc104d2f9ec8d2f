//! The Redis node: the [`RedisModel`] state machine served on the simulated network, its
//! persistence on crash, injected command failures, and the client the workers' `idempotency`
//! consumers use as their [`Store`].

use super::NodeCtx;
use crate::fault::{Fault, NodeFaults};
use crate::model::redis::Persistence;
use crate::model::redis::RedisModel;
use crate::net::rpc::{self, Client, RpcError};
use crate::net::topology::NodeName;
use crate::trace::Typed;
use idempotency::clock::Clock;
use idempotency::store::{BoxFuture, Command, Expiry, Reply, Script, SetCondition, Store, StoreError};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

impl rpc::Message for Command {
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
    /// Draws which commands fail.
    pub rng: ChaCha8Rng,
}

impl RedisState {
    /// A fresh, empty server.
    pub fn new(rng: ChaCha8Rng) -> Self {
        RedisState {
            model: RedisModel::new(),
            disk: RedisModel::new(),
            error_share: 0.0,
            rng,
        }
    }

    /// What the data set becomes when the server crashes at the Redis clock `now_us`.
    /// Returns the keys it loses, sorted: those live at the crash whose value the restart does
    /// not bring back (gone, or an older value from the last fsync).
    pub fn crash(&mut self, persistence: Persistence, now_us: i64) -> Vec<String> {
        let before = self.model.live_keys(now_us);
        match persistence {
            Persistence::None => self.model = RedisModel::new(),
            Persistence::Everysec => self.model = self.disk.clone(),
            Persistence::Always => {}
        }
        self.disk = self.model.clone();
        self.model.mark_synced();
        before
            .into_iter()
            .filter(|(k, v, _)| self.model.get_raw(k, now_us) != Some(v.as_slice()))
            .map(|(k, _, _)| k)
            .collect()
    }
}

fn text(bytes: &[u8]) -> Value {
    Value::from(String::from_utf8_lossy(bytes).into_owned())
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
            let mut record = head.clone();
            record.extend_from_slice(b"<fence>");
            record.extend_from_slice(tail);
            let mut a = vec![
                Value::from(fence_key.as_str()),
                Value::from(*ttl_ms),
                text(&record),
            ];
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
        Ok(r) => r.to_string(),
        Err(e) => format!("error: {e}"),
    }
}

/// How often `everysec` persistence writes the data set to disk.
const FSYNC_EVERY: Duration = Duration::from_secs(1);

/// Every this many fsyncs, the node checks that the disk equals the data set, whole. Each fsync
/// checks the key counts ([`crate::model::redis::RedisModel::sync_to`]); the whole comparison
/// every time cost 13 % of a release sweep's instructions, every 16th costs under 1 %, and a
/// change the bookkeeping missed stays on the disk until the key changes again, so it is still
/// seen in sweeps.
const FULL_CHECK_EVERY: u64 = 16;

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

impl RedisNode {
    /// The data set now, at the node's clock.
    pub fn snapshot(&self) -> RedisModel {
        self.state.lock().expect("redis state").model.clone()
    }
}

impl NodeFaults for RedisNode {
    fn inject(&self, fault: &Fault) -> bool {
        let Fault::RedisErrors { share } = fault else {
            return false;
        };
        self.state.lock().expect("redis state").error_share = *share;
        true
    }
    fn heal(&self, _: &Fault) {
        self.heal_all();
    }
    fn heal_all(&self) {
        self.state.lock().expect("redis state").error_share = 0.0;
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

/// The node's main task: fsync (for `everysec`) and serve commands until killed.
pub async fn run(ctx: NodeCtx, node: Arc<RedisNode>) {
    if node.config.persistence == Persistence::Everysec {
        let node = node.clone();
        madsim::task::spawn(async move {
            for fsync in 1u64.. {
                madsim::time::sleep(FSYNC_EVERY).await;
                let mut guard = node.state.lock().expect("redis state");
                let st = &mut *guard;
                st.model.sync_to(&mut st.disk);
                if fsync % FULL_CHECK_EVERY == 0 {
                    assert!(st.disk == st.model, "the fsync wrote what changed");
                }
            }
        });
    }
    if node.config.ttl_probe_ms > 0 {
        let (node, ctx) = (node.clone(), ctx.clone());
        madsim::task::spawn(async move {
            loop {
                madsim::time::sleep(Duration::from_millis(node.config.ttl_probe_ms)).await;
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
    let (net, me) = (ctx.net.clone(), ctx.name);
    rpc::serve(&net, me, move |cmd: Command, from: NodeName| {
        let now_us = node.clock.now_unix_us();
        let reply = {
            let mut st = node.state.lock().expect("redis state");
            let share = st.error_share;
            if share > 0.0 && st.rng.gen_bool(share) {
                Err(StoreError::Reply("ERR injected fault".into()))
            } else {
                st.model.exec(&cmd, now_us)
            }
        };
        let from = from.to_string();
        ctx.emit(Typed::Redis {
            from,
            cmd: cmd.name().into(),
            key: cmd.key().into(),
            args: args(&cmd),
            reply: reply_text(&reply),
            clock_us: now_us,
        });
        Some(reply)
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
    async fn attempt(&self, command: Command, budget: Duration) -> Result<Reply, StoreError> {
        match self
            .client
            .call::<Command, Result<Reply, StoreError>>(self.addr, command, budget)
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
            let start = madsim::time::Instant::now();
            idempotency::retry::exec(
                command,
                self.timeout,
                |command, budget| self.attempt(command, budget),
                || start.elapsed(),
                madsim::time::sleep,
            )
            .await
        })
    }
}
