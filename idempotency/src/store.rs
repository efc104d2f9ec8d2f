//! The one interface between the protocols and Redis: commands in, replies out.
//!
//! Both protocols speak [`Command`]s through a [`Store`]. The real backend
//! ([`crate::redis_store`]) sends them to a Redis server (the [`Script`]s as Lua); the simulator
//! sends them over its simulated network to a model of Redis that runs the same commands and
//! the same scripts natively. Keeping the vocabulary small and explicit is what lets the
//! simulator's model be checked against real Redis command by command.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// A boxed, sendable future, so the traits here stay object-safe and runtime-agnostic.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An expiry given with `SET`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// `EX seconds`.
    Ex(u64),
    /// `PX milliseconds`.
    Px(u64),
}

/// Which keys `SET` may touch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetCondition {
    /// Always.
    Always,
    /// `NX`: only when the key does not exist.
    Nx,
    /// `XX`: only when the key exists.
    Xx,
}

/// A Redis command the protocols (and the simulator's tests) use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `GET key`: bulk or nil.
    Get {
        /// The key.
        key: String,
    },
    /// `SET key value [NX|XX] [EX s|PX ms]`: `OK`, or nil when the condition fails.
    Set {
        /// The key.
        key: String,
        /// The value.
        value: Vec<u8>,
        /// `NX`, `XX` or neither.
        condition: SetCondition,
        /// `EX`/`PX`, or none (no expiry; the key's old expiry is dropped).
        expiry: Option<Expiry>,
    },
    /// `SETEX key seconds value`: `OK`.
    SetEx {
        /// The key.
        key: String,
        /// Time to live in seconds (must be > 0).
        ttl_s: u64,
        /// The value.
        value: Vec<u8>,
    },
    /// `DEL key...`: the number of keys removed.
    Del {
        /// The keys.
        keys: Vec<String>,
    },
    /// `PEXPIRE key ms`: 1 when the key exists, else 0.
    PExpire {
        /// The key.
        key: String,
        /// Time to live in milliseconds.
        ttl_ms: u64,
    },
    /// `PTTL key`: milliseconds left, -1 without expiry, -2 when the key does not exist.
    PTtl {
        /// The key.
        key: String,
    },
    /// `INCR key`: the new value; an error when the value is not an integer.
    Incr {
        /// The key.
        key: String,
    },
    /// One of the `fenced` protocol's scripts, run atomically.
    Script(Script),
}

/// The `fenced` protocol's Lua scripts. Each runs atomically in Redis (and in the model).
/// The Lua text is in [`crate::fenced`]; its semantics are documented there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Script {
    /// Acquire the processing lease or report why not:
    /// `["acquired", fence]`, `["duplicate"]` or `["busy", pttl_ms]`.
    Acquire {
        /// The event's key.
        key: String,
        /// The counter that fencing tokens are drawn from.
        fence_key: String,
        /// The lease's time to live in milliseconds.
        ttl_ms: u64,
        /// The processing record up to the fencing token.
        head: Vec<u8>,
        /// The processing record after the fencing token.
        tail: Vec<u8>,
        /// The token handed out is above this one (0: no floor; see
        /// [`crate::fenced::FenceFloor`]).
        floor: u64,
    },
    /// Renew the lease if the key holds a processing record of it (see
    /// [`crate::record::holds_lease`]): write `value` (the processing record with a fresh
    /// `started_at`) with the new TTL and answer 1; else 0.
    Renew {
        /// The event's key.
        key: String,
        /// The lease's tail (`, "owner": ..., "fence": N}`, [`crate::record::lease_tail`]).
        lease: Vec<u8>,
        /// The renewed processing record.
        value: Vec<u8>,
        /// The new time to live in milliseconds.
        ttl_ms: u64,
    },
    /// Replace the lease by the completed record if the key holds a processing record of it
    /// (1) or has expired with nobody else holding it (2); else leave it alone (0).
    Confirm {
        /// The event's key.
        key: String,
        /// The lease's tail.
        lease: Vec<u8>,
        /// The completed record.
        value: Vec<u8>,
        /// The completed record's time to live in seconds.
        ttl_s: u64,
    },
    /// Delete the key if it holds a processing record of the lease: 1, else 0.
    Release {
        /// The event's key.
        key: String,
        /// The lease's tail.
        lease: Vec<u8>,
    },
}

impl Command {
    /// The command's name as Redis spells it (scripts as `EVALSHA:<name>`).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Get { .. } => "GET",
            Command::Set { .. } => "SET",
            Command::SetEx { .. } => "SETEX",
            Command::Del { .. } => "DEL",
            Command::PExpire { .. } => "PEXPIRE",
            Command::PTtl { .. } => "PTTL",
            Command::Incr { .. } => "INCR",
            Command::Script(Script::Acquire { .. }) => "EVALSHA:acquire",
            Command::Script(Script::Renew { .. }) => "EVALSHA:renew",
            Command::Script(Script::Confirm { .. }) => "EVALSHA:confirm",
            Command::Script(Script::Release { .. }) => "EVALSHA:release",
        }
    }

    /// Whether the command is sent again after a lost reply, though the first copy may have
    /// run: the `fenced` scripts, which check the owner (renew, confirm, release) or recognise
    /// the caller's own lease (acquire), so a second run answers what the first would have.
    /// v2's plain commands are not, as the Python client does not resend after a timeout (and
    /// a `SET NX` sent again would find the caller's own key and report the race lost): they
    /// are sent again only when they never reached the server (see [`crate::retry`]).
    pub fn safe_to_resend(&self) -> bool {
        matches!(self, Command::Script(_))
    }

    /// The first key the command touches.
    pub fn key(&self) -> &str {
        match self {
            Command::Get { key }
            | Command::Set { key, .. }
            | Command::SetEx { key, .. }
            | Command::PExpire { key, .. }
            | Command::PTtl { key }
            | Command::Incr { key }
            | Command::Script(Script::Acquire { key, .. })
            | Command::Script(Script::Renew { key, .. })
            | Command::Script(Script::Confirm { key, .. })
            | Command::Script(Script::Release { key, .. }) => key,
            Command::Del { keys } => keys.first().map(String::as_str).unwrap_or(""),
        }
    }
}

/// A Redis reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The nil bulk string (or nil array).
    Nil,
    /// The simple string `OK`.
    Ok,
    /// An integer.
    Int(i64),
    /// A bulk string.
    Bulk(Vec<u8>),
    /// An array.
    Array(Vec<Reply>),
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Nil => f.write_str("nil"),
            Reply::Ok => f.write_str("OK"),
            Reply::Int(i) => write!(f, "{i}"),
            Reply::Bulk(b) => write!(f, "{:?}", String::from_utf8_lossy(b)),
            Reply::Array(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
        }
    }
}

/// Why a command has no reply.
///
/// The transport errors say whether the command may have run, which decides whether sending it
/// again is safe ([`crate::retry`]): [`StoreError::Unavailable`] never reached the server;
/// [`StoreError::Timeout`] and [`StoreError::ConnectionLost`] were sent and got no reply, so the
/// server may have run them (a reply lost on its way back, a server that crashed after the
/// command).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// The command never reached the server: the connection was refused, or was already broken
    /// when the command was written. Nothing ran.
    Unavailable(String),
    /// No reply within the store's timeout: the command may have run.
    Timeout,
    /// The connection broke after the command was sent and before its reply (reset by the
    /// server's crash or restart): the command may have run.
    ConnectionLost(String),
    /// The server answered with an error reply (`ERR ...`, `WRONGTYPE ...`).
    Reply(String),
    /// The server answered something the protocol did not expect.
    Protocol(String),
}

impl StoreError {
    /// Whether the server may have run the command: it was sent and its reply never came.
    pub fn may_have_run(&self) -> bool {
        matches!(self, StoreError::Timeout | StoreError::ConnectionLost(_))
    }

    /// Whether the failure is the connection's, not the server's answer: sending the command
    /// again may succeed.
    pub fn is_transport(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_) | StoreError::Timeout | StoreError::ConnectionLost(_)
        )
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Unavailable(why) => write!(f, "redis unavailable: {why}"),
            StoreError::Timeout => f.write_str("redis timed out"),
            StoreError::ConnectionLost(why) => write!(f, "redis connection lost after sending: {why}"),
            StoreError::Reply(msg) => write!(f, "redis error reply: {msg}"),
            StoreError::Protocol(msg) => write!(f, "unexpected redis reply: {msg}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// Where the protocols keep their records: a Redis server, or the simulator's model of one.
pub trait Store: Send + Sync {
    /// Runs one command and returns its reply.
    fn exec(&self, command: Command) -> BoxFuture<'_, Result<Reply, StoreError>>;
}

impl<S: Store + ?Sized> Store for std::sync::Arc<S> {
    fn exec(&self, command: Command) -> BoxFuture<'_, Result<Reply, StoreError>> {
        (**self).exec(command)
    }
}
