//! The plain commands (`GET`, `SET`, `SETEX`, `DEL`, `PEXPIRE`, `PTTL`, `INCR`) as Redis 7.0
//! runs them at one millisecond clock reading, errors as the server's error text (the module
//! documentation's "Commands"). The scripts in `scripts.rs` call them as `redis.call` would.

use super::{Entry, RedisModel};
use idempotency::store::{Expiry, SetCondition};

/// `ERR value is not an integer or out of range`.
pub(super) const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";
/// `INCR` on `i64::MAX`.
pub(super) const INCR_OVERFLOW: &str = "ERR increment or decrement would overflow";

/// A command's numeric argument as Redis parses it (`getLongLongFromObject`).
fn arg_i64(n: u64) -> Result<i64, String> {
    i64::try_from(n).map_err(|_| NOT_AN_INTEGER.to_owned())
}

/// `string2ll`: the strict decimal integers Redis accepts for `INCR`.
fn string2ll(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() >= 21 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if negative {
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

impl RedisModel {
    // ---- commands (errors as the server's error text) -------------------------------------

    pub(super) fn get(&self, key: &str, now_ms: i64) -> Option<&[u8]> {
        self.lookup(key, now_ms).map(|e| e.value.as_slice())
    }

    /// `SET` (and `SETEX`, `name` being the command for the error text): true when written.
    pub(super) fn set(
        &mut self,
        key: &str,
        value: Vec<u8>,
        condition: SetCondition,
        expiry: Option<Expiry>,
        name: &str,
        now_ms: i64,
    ) -> Result<bool, String> {
        // getExpireMillisecondsOrReply, before the NX/XX check.
        let invalid = || format!("ERR invalid expire time in '{name}' command");
        let expire_at = match expiry {
            None => None,
            Some(e) => {
                let (n, seconds) = match e {
                    Expiry::Ex(s) => (arg_i64(s)?, true),
                    Expiry::Px(ms) => (arg_i64(ms)?, false),
                };
                if n <= 0 || (seconds && n > i64::MAX / 1000) {
                    return Err(invalid());
                }
                let at = if seconds { n * 1000 } else { n }.wrapping_add(now_ms);
                if at <= 0 {
                    return Err(invalid());
                }
                Some(at)
            }
        };
        let found = self.lookup(key, now_ms).is_some();
        match condition {
            SetCondition::Nx if found => return Ok(false),
            SetCondition::Xx if !found => return Ok(false),
            _ => {}
        }
        self.put(key, value, expire_at);
        Ok(true)
    }

    pub(super) fn del(&mut self, key: &str, now_ms: i64) -> bool {
        self.lookup(key, now_ms).is_some() && self.remove(key).is_some()
    }

    pub(super) fn pexpire(&mut self, key: &str, ttl_ms: u64, now_ms: i64) -> Result<i64, String> {
        let ttl = arg_i64(ttl_ms)?;
        if ttl > i64::MAX.saturating_sub(now_ms) {
            return Err("ERR invalid expire time in 'pexpire' command".to_owned());
        }
        let when = ttl + now_ms;
        let Some(entry) = self.lookup(key, now_ms) else {
            return Ok(0);
        };
        if when <= now_ms {
            self.remove(key);
        } else {
            let value = entry.value.clone();
            self.put(key, value, Some(when));
        }
        Ok(1)
    }

    pub(super) fn pttl(&self, key: &str, now_ms: i64) -> i64 {
        match self.lookup(key, now_ms) {
            None => -2,
            Some(Entry {
                expire_at_ms: None, ..
            }) => -1,
            Some(Entry {
                expire_at_ms: Some(at),
                ..
            }) => (at - now_ms).max(0),
        }
    }

    pub(super) fn incr(&mut self, key: &str, now_ms: i64) -> Result<i64, String> {
        let (old, expire_at) = match self.lookup(key, now_ms) {
            None => (0, None),
            Some(e) => (string2ll(&e.value).ok_or(NOT_AN_INTEGER)?, e.expire_at_ms),
        };
        let new = old.checked_add(1).ok_or(INCR_OVERFLOW)?;
        self.put(key, new.to_string().into_bytes(), expire_at);
        Ok(new)
    }
}
