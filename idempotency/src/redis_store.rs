//! The real backend: [`Store`] on a Redis server through the `redis` crate (feature `redis`).
//!
//! Commands map one to one; the `fenced` scripts run with `EVALSHA` (falling back to `EVAL`
//! after a `NOSCRIPT`, e.g. when the server restarted). A lazily connecting
//! `ConnectionManager` reconnects after the server comes back (the `redis` crate's own
//! reconnect and connection retries), and a command whose connection failed is sent again as
//! [`crate::retry`] decides (the crate does not resend commands). Every command is bounded by
//! the store's timeout (once more for a resend-safe command whose reply was lost), so an outage
//! reaches the protocol as a [`StoreError`] (and so the failure policy), never as a hang.

use crate::fenced::{ACQUIRE_LUA, CONFIRM_LUA, RELEASE_LUA, RENEW_LUA};
use crate::store::{BoxFuture, Command, Expiry, Reply, Script, SetCondition, Store, StoreError};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError, Value};
use std::time::Duration;

/// A [`Store`] backed by a Redis server.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    timeout: Duration,
    acquire: redis::Script,
    renew: redis::Script,
    confirm: redis::Script,
    release: redis::Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("timeout", &self.timeout)
            .finish()
    }
}

fn store_error(e: RedisError) -> StoreError {
    use std::io::ErrorKind as Io;
    match e.kind() {
        ErrorKind::Server(_) | ErrorKind::Extension => {
            let code = e.code().unwrap_or("ERR");
            StoreError::Reply(match e.detail() {
                Some(detail) => format!("{code} {detail}"),
                None => code.to_owned(),
            })
        }
        _ if e.is_timeout() => StoreError::Timeout,
        // Refused, or no connection to write on: the command never left.
        _ if e.is_connection_refusal() => StoreError::Unavailable(e.to_string()),
        _ if io_kind(&e) == Some(Io::NotConnected) => StoreError::Unavailable(e.to_string()),
        // The crate reports a broken pipe both for a command written on a connection already
        // closed and for one in flight when the server closed it: it may have run.
        _ if e.is_io_error() || e.is_connection_dropped() => StoreError::ConnectionLost(e.to_string()),
        _ => StoreError::Protocol(e.to_string()),
    }
}

/// The kind of the I/O error behind `e`, if one is.
fn io_kind(e: &RedisError) -> Option<std::io::ErrorKind> {
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .map(std::io::Error::kind)
}

fn reply(v: Value) -> Result<Reply, StoreError> {
    Ok(match v {
        Value::Nil => Reply::Nil,
        Value::Okay => Reply::Ok,
        Value::SimpleString(s) if s == "OK" => Reply::Ok,
        Value::SimpleString(s) => Reply::Bulk(s.into_bytes()),
        Value::Int(i) => Reply::Int(i),
        Value::BulkString(b) => Reply::Bulk(b),
        Value::Array(items) => Reply::Array(items.into_iter().map(reply).collect::<Result<_, _>>()?),
        Value::ServerError(e) => return Err(store_error(e.into())),
        other => return Err(StoreError::Protocol(format!("{other:?}"))),
    })
}

impl RedisStore {
    /// Connects to `url` (e.g. `redis://127.0.0.1:6379/`). Each command (and each connection
    /// attempt) fails with [`StoreError::Timeout`] after `timeout`.
    pub async fn connect(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(store_error)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(timeout))
            .set_connection_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(timeout);
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(store_error)?;
        Ok(RedisStore {
            conn,
            timeout,
            acquire: redis::Script::new(ACQUIRE_LUA),
            renew: redis::Script::new(RENEW_LUA),
            confirm: redis::Script::new(CONFIRM_LUA),
            release: redis::Script::new(RELEASE_LUA),
        })
    }

    async fn run(&self, command: &Command) -> Result<Value, RedisError> {
        let mut con = self.conn.clone();
        let cmd = match command {
            Command::Get { key } => redis::cmd("GET").arg(key).clone(),
            Command::Set {
                key,
                value,
                condition,
                expiry,
            } => {
                let mut c = redis::cmd("SET");
                c.arg(key).arg(value);
                match condition {
                    SetCondition::Always => {}
                    SetCondition::Nx => {
                        c.arg("NX");
                    }
                    SetCondition::Xx => {
                        c.arg("XX");
                    }
                }
                match expiry {
                    None => {}
                    Some(Expiry::Ex(s)) => {
                        c.arg("EX").arg(s);
                    }
                    Some(Expiry::Px(ms)) => {
                        c.arg("PX").arg(ms);
                    }
                }
                c
            }
            Command::SetEx { key, ttl_s, value } => {
                redis::cmd("SETEX").arg(key).arg(ttl_s).arg(value).clone()
            }
            Command::Del { keys } => redis::cmd("DEL").arg(keys).clone(),
            Command::PExpire { key, ttl_ms } => redis::cmd("PEXPIRE").arg(key).arg(ttl_ms).clone(),
            Command::PTtl { key } => redis::cmd("PTTL").arg(key).clone(),
            Command::Incr { key } => redis::cmd("INCR").arg(key).clone(),
            Command::Script(script) => {
                return match script {
                    Script::Acquire {
                        key,
                        fence_key,
                        ttl_ms,
                        head,
                        tail,
                        floor,
                    } => {
                        self.acquire
                            .key(key)
                            .key(fence_key)
                            .arg(ttl_ms)
                            .arg(head)
                            .arg(tail)
                            .arg(floor)
                            .invoke_async(&mut con)
                            .await
                    }
                    Script::Renew {
                        key,
                        lease,
                        value,
                        ttl_ms,
                    } => {
                        self.renew
                            .key(key)
                            .arg(lease)
                            .arg(value)
                            .arg(ttl_ms)
                            .invoke_async(&mut con)
                            .await
                    }
                    Script::Confirm {
                        key,
                        lease,
                        value,
                        ttl_s,
                    } => {
                        self.confirm
                            .key(key)
                            .arg(lease)
                            .arg(value)
                            .arg(ttl_s)
                            .invoke_async(&mut con)
                            .await
                    }
                    Script::Release { key, lease } => {
                        self.release.key(key).arg(lease).invoke_async(&mut con).await
                    }
                };
            }
        };
        cmd.query_async(&mut con).await
    }
}

impl Store for RedisStore {
    /// Runs the command, sending it again after a failed connection as [`crate::retry`]
    /// decides: within the store's timeout after a command that never reached the server, and
    /// once more after a lost reply for a command that is safe to resend. The connection
    /// manager reconnects meanwhile.
    fn exec(&self, command: Command) -> BoxFuture<'_, Result<Reply, StoreError>> {
        Box::pin(async move {
            let start = tokio::time::Instant::now();
            crate::retry::exec(
                command,
                self.timeout,
                |command, budget| async move {
                    match tokio::time::timeout(budget, self.run(&command)).await {
                        Err(_) => Err(StoreError::Timeout),
                        Ok(Err(e)) => Err(store_error(e)),
                        Ok(Ok(v)) => reply(v),
                    }
                },
                || start.elapsed(),
                tokio::time::sleep,
            )
            .await
        })
    }
}
