//! The `fenced` Lua scripts (acquire, renew, confirm, release) reimplemented natively: each
//! runs atomically at one clock reading, keeps the writes done before a failing call, and fails
//! with Redis's error text naming the script's SHA-1 and line (the module documentation's
//! "Scripts"). The acquire's fence is a Lua number, converted as C and x86-64 do.

use super::{ms, sha1_hex, LuaStatus, RedisModel};
use idempotency::fenced::{ACQUIRE_LUA, CONFIRM_LUA, RENEW_LUA};
use idempotency::record;
use idempotency::store::{Expiry, Reply, Script, SetCondition, StoreError};

/// C's conversion of a double to a 64-bit integer as x86-64 does it: truncation, and
/// `i64::MIN` for NaN and anything out of range.
fn c_double_to_i64(f: f64) -> i64 {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    if !(-LIMIT..LIMIT).contains(&f) {
        i64::MIN
    } else {
        f as i64
    }
}

/// Lua 5.1's `string.format('%d', n)`.
fn lua_format_d(n: f64) -> String {
    c_double_to_i64(n).to_string()
}

impl RedisModel {
    // ---- scripts --------------------------------------------------------------------------

    pub(super) fn script(&mut self, script: &Script, now_us: i64) -> Result<Reply, StoreError> {
        let now = ms(now_us);
        match script {
            Script::Acquire {
                key,
                fence_key,
                ttl_ms,
                head,
                tail,
                floor: known,
            } => {
                let fail = |call: &str, err: String| script_error(ACQUIRE_LUA, call, 1, err);
                if let Some(entry) = self.lookup(key, now) {
                    if let Some(fence) = own_lease(&entry.value, head, tail) {
                        return Ok(Reply::Array(vec![
                            Reply::Bulk(b"acquired".to_vec()),
                            Reply::Int(fence),
                        ]));
                    }
                    if entry.lua_status() == LuaStatus::Duplicate {
                        return Ok(Reply::Array(vec![Reply::Bulk(b"duplicate".to_vec())]));
                    }
                    let mut pttl = self.pttl(key, now) as f64;
                    if pttl == -1.0 {
                        self.pexpire(key, *ttl_ms, now)
                            .map_err(|e| fail("redis.call('PEXPIRE'", e))?;
                        pttl = *ttl_ms as f64; // tonumber(ARGV[1])
                    }
                    return Ok(Reply::Array(vec![
                        Reply::Bulk(b"busy".to_vec()),
                        Reply::Int(c_double_to_i64(pttl)),
                    ]));
                }
                let counter = self
                    .incr(fence_key, now)
                    .map_err(|e| fail("redis.call('INCR'", e))?;
                let mut fence = counter as f64;
                let (secs, usecs) = (now_us.div_euclid(1_000_000), now_us.rem_euclid(1_000_000));
                let mut floor = secs as f64 * 1_000_000.0 + usecs as f64;
                // tonumber(ARGV[4]) + 1: the decimal text read as a double, then one added.
                let known = *known as f64 + 1.0;
                if floor < known {
                    floor = known;
                }
                if fence < floor {
                    fence = floor;
                    let text = lua_format_d(fence).into_bytes();
                    self.set(fence_key, text, SetCondition::Always, None, "set", now)
                        .map_err(|e| fail("redis.call('SET', KEYS[2]", e))?;
                }
                let mut record = head.clone();
                record.extend_from_slice(lua_format_d(fence).as_bytes());
                record.extend_from_slice(tail);
                self.set(
                    key,
                    record,
                    SetCondition::Always,
                    Some(Expiry::Px(*ttl_ms)),
                    "set",
                    now,
                )
                .map_err(|e| fail("redis.call('SET', KEYS[1]", e))?;
                Ok(Reply::Array(vec![
                    Reply::Bulk(b"acquired".to_vec()),
                    Reply::Int(c_double_to_i64(fence)),
                ]))
            }
            Script::Renew {
                key,
                lease,
                value,
                ttl_ms,
            } => {
                if !self.get(key, now).is_some_and(|v| record::holds_lease(v, lease)) {
                    return Ok(Reply::Int(0));
                }
                self.set(
                    key,
                    value.clone(),
                    SetCondition::Always,
                    Some(Expiry::Px(*ttl_ms)),
                    "set",
                    now,
                )
                .map_err(|e| script_error(RENEW_LUA, "redis.call('SET'", 1, e))?;
                Ok(Reply::Int(1))
            }
            Script::Confirm {
                key,
                lease,
                value,
                ttl_s,
            } => {
                let (nth, reply) = match self.get(key, now) {
                    Some(v) if record::holds_lease(v, lease) => (1, 1),
                    Some(v) if confirmed_by(v, lease) => return Ok(Reply::Int(1)),
                    None => (2, 2),
                    Some(_) => return Ok(Reply::Int(0)),
                };
                self.set(
                    key,
                    value.clone(),
                    SetCondition::Always,
                    Some(Expiry::Ex(*ttl_s)),
                    "set",
                    now,
                )
                .map_err(|e| script_error(CONFIRM_LUA, "redis.call('SET'", nth, e))?;
                Ok(Reply::Int(reply))
            }
            Script::Release { key, lease } => {
                if !self.get(key, now).is_some_and(|v| record::holds_lease(v, lease)) {
                    return Ok(Reply::Int(0));
                }
                Ok(Reply::Int(i64::from(self.del(key, now))))
            }
        }
    }
}

/// The acquire script's own-lease check: `v` is `head`, a run of digits, `tail` (the lease this
/// very acquire wrote, its reply lost), and the digits as Lua's `tonumber` reads them. Lua's
/// `string.sub(v, -#tail)` of an empty tail is all of `v`, hence the empty tail's miss.
fn own_lease(v: &[u8], head: &[u8], tail: &[u8]) -> Option<i64> {
    if tail.is_empty() || v.len() <= head.len() + tail.len() || !v.starts_with(head) || !v.ends_with(tail) {
        return None;
    }
    let digits = &v[head.len()..v.len() - tail.len()];
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: f64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(c_double_to_i64(n))
}

/// The confirm script's second check: `v` is a completed record ending with the lease's tail
/// (this lease's confirm already ran).
fn confirmed_by(v: &[u8], lease: &[u8]) -> bool {
    !lease.is_empty() && v.starts_with(b"{\"status\": \"completed\", ") && v.ends_with(lease)
}

/// The error reply of a `redis.call` that failed inside a script: Redis 7.0 appends the
/// script's SHA-1 and the line of the call (the `nth` line of `lua` containing `call`).
fn script_error(lua: &str, call: &str, nth: usize, err: String) -> StoreError {
    let line = lua
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(call))
        .nth(nth - 1)
        .map_or(0, |(i, _)| i + 1);
    StoreError::Reply(format!(
        "{err} script: {}, on @user_script:{line}.",
        sha1_hex(lua.as_bytes())
    ))
}
