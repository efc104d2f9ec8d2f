//! A pure, deterministic model of one Redis 7.0 server, for the simulator's Redis node.
//!
//! [`RedisModel`] runs the [`Command`]s the protocols speak, including the `fenced` Lua scripts
//! (reimplemented natively from [`ACQUIRE_LUA`], [`RENEW_LUA`], [`CONFIRM_LUA`] and
//! [`RELEASE_LUA`](idempotency::fenced::RELEASE_LUA), with the `cjson.decode` the acquire
//! script relies on), at a wall clock the caller passes in (the simulated node's own clock,
//! which may jump). It does no I/O, draws no randomness and keeps its keys in a `BTreeMap`, so
//! the same commands at the same clock readings always give the same replies and the same
//! state.
//!
//! Real Redis 7.0 is the reference; `sim/tests/redis_model_differential.rs` runs random command
//! sequences against both. What the model reproduces (from Redis's source, checked against
//! `redis-server` 7.0.15):
//!
//! - **Time.** Redis keeps expiry as absolute unix milliseconds. The model's "now" in
//!   milliseconds is `floor(now_us / 1000)` (Redis: `mstime() = ustime() / 1000`). A key is
//!   expired when `now_ms > expire_at_ms` (`keyIsExpired`: `now > when`), so at exactly
//!   `expire_at_ms` it still exists (and `PTTL` says 0). A clock that jumps forward expires keys
//!   early; one that jumps back makes them live longer, as in Redis.
//! - **Expiry is active.** Every [`RedisModel::exec`] first removes every key that is expired
//!   at its clock (as if Redis's active expiry had caught all of them), so a key seen expired
//!   once never comes back when the clock later jumps back. Redis may still resurrect a key it
//!   had not reclaimed yet after a backward jump; the model takes the deterministic choice.
//!   Replies are otherwise the same under lazy or active expiry.
//! - **Commands.** `SET` (`NX`/`XX`, `EX`/`PX`; a non-positive expiry, `EX` above
//!   `i64::MAX / 1000`, or an absolute expiry that overflows gives
//!   `ERR invalid expire time in 'set' command`, checked before `NX`/`XX`; an argument above
//!   `i64::MAX` gives `ERR value is not an integer or out of range`; `SET` without expiry drops
//!   the old one), `SETEX` (same checks, `'setex'`), `DEL` (live keys removed; no keys is an
//!   arity error), `PEXPIRE` (overflow is an error even for a missing key; a TTL of 0 deletes
//!   the key and returns 1), `PTTL` (`expire_at_ms - now_ms`), `INCR` (Redis's `string2ll`:
//!   no spaces, `+`, leading zeros or `-0`, at most 20 bytes; `i64::MAX` gives
//!   `ERR increment or decrement would overflow`; the TTL is kept).
//! - **Scripts.** Each runs atomically at one clock reading; `TIME` is that reading. Like
//!   Redis, a script that fails half way keeps the writes it did before the failing call (an
//!   acquire whose record `SET` fails has still raised the fence counter), and the error reply
//!   is Redis's: `<error> script: <sha1 of the script>, on @user_script:<line>.`. The acquire's
//!   fence is a Lua number (an `f64`): the `INCR` result is rounded to `f64`, compared with the
//!   `TIME` floor, printed with `string.format('%d')` (C's `(long)` conversion) and returned as
//!   an integer reply (C's `(long long)` conversion); above 2^53 the record and the reply carry
//!   the rounded value, and a counter that rounds to 2^63 gives `i64::MIN` (x86-64's
//!   conversion of an out-of-range double; the model mirrors x86-64).
//! - **`cjson.decode`.** The acquire script reads the record's status with Redis's bundled
//!   lua-cjson 2.1 (default settings), not Python's `json`: numbers go through C's `strtod`, so
//!   `NaN`, `Infinity`, `-inf`, `nan(...)`, hex (`0x10`, `0x1p3`), leading zeros, a leading `+`
//!   and `1.`/`-.5` are accepted; raw control characters and invalid UTF-8 inside strings are
//!   accepted; `\u` escapes must form valid UTF-16 (lone surrogates are errors); nesting is
//!   limited to 1000 containers; a NUL byte ends the input (so anything after a NUL that ends
//!   a complete value is ignored, and a NUL inside a string is an error); a UTF-8 BOM is an
//!   error. The script says duplicate when the value does not decode, decodes to something
//!   other than an object or array, has no `status`, or its `status` is the string
//!   `completed` (the last duplicate key wins); any other status (another string, a number,
//!   `null`, a boolean, an object, an array) is busy.
//!
//! Divergences that cannot be avoided: the model cannot know the real server's clock, so the
//! differential test compares `PTTL`s and fencing tokens drawn from `TIME` within a tolerance;
//! and Redis's nondeterministic active expiry under backward clock jumps is replaced by the
//! deterministic choice above.

use idempotency::fenced::{ACQUIRE_LUA, CONFIRM_LUA, RENEW_LUA};
use idempotency::record;
use idempotency::store::{Command, Expiry, Reply, Script, SetCondition, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// `ERR value is not an integer or out of range`.
const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";
/// `INCR` on `i64::MAX`.
const INCR_OVERFLOW: &str = "ERR increment or decrement would overflow";
/// lua-cjson's default `decode_max_depth`.
const CJSON_MAX_DEPTH: usize = 1000;

/// One stored string and its absolute expiry.
#[derive(Clone, PartialEq, Eq)]
struct Entry {
    value: Vec<u8>,
    expire_at_ms: Option<i64>,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.value))?;
        match self.expire_at_ms {
            Some(at) => write!(f, " (expires at {at} ms)"),
            None => f.write_str(" (no expiry)"),
        }
    }
}

/// A model of one Redis server holding string keys (see the module documentation).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RedisModel {
    entries: BTreeMap<String, Entry>,
    /// `(expire_at_ms, key)` for every entry with an expiry, to expire keys in order.
    expiries: BTreeSet<(i64, String)>,
}

impl fmt::Debug for RedisModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisModel")
            .field("entries", &self.entries)
            .finish()
    }
}

/// Redis's millisecond clock for a microsecond reading.
/// What survives a Redis crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Persistence {
    /// Nothing: restart empty.
    None,
    /// The state as of the last whole-second fsync: the last second's writes are lost.
    Everysec,
    /// Everything.
    Always,
}

impl Persistence {
    /// The setting's name as written in configuration.
    pub fn name(self) -> &'static str {
        match self {
            Persistence::None => "none",
            Persistence::Everysec => "everysec",
            Persistence::Always => "always",
        }
    }
}

fn ms(now_us: i64) -> i64 {
    now_us.div_euclid(1000)
}

fn live(entry: &Entry, now_ms: i64) -> bool {
    match entry.expire_at_ms {
        None => true,
        Some(at) => now_ms <= at,
    }
}

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
    /// An empty server.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs one command at the server's wall clock `now_us` (microseconds since the Unix epoch,
    /// the node's own clock, which may jump).
    pub fn exec(&mut self, cmd: &Command, now_us: i64) -> Result<Reply, StoreError> {
        let now = ms(now_us);
        self.expire_until(now);
        let r = match cmd {
            Command::Get { key } => Ok(self.get(key, now).map_or(Reply::Nil, |v| Reply::Bulk(v.to_vec()))),
            Command::Set {
                key,
                value,
                condition,
                expiry,
            } => self
                .set(key, value.clone(), *condition, *expiry, "set", now)
                .map(|done| if done { Reply::Ok } else { Reply::Nil }),
            Command::SetEx { key, ttl_s, value } => self
                .set(
                    key,
                    value.clone(),
                    SetCondition::Always,
                    Some(Expiry::Ex(*ttl_s)),
                    "setex",
                    now,
                )
                .map(|_| Reply::Ok),
            Command::Del { keys } => {
                if keys.is_empty() {
                    Err("ERR wrong number of arguments for 'del' command".to_owned())
                } else {
                    Ok(Reply::Int(keys.iter().filter(|k| self.del(k, now)).count() as i64))
                }
            }
            Command::PExpire { key, ttl_ms } => self.pexpire(key, *ttl_ms, now).map(Reply::Int),
            Command::PTtl { key } => Ok(Reply::Int(self.pttl(key, now))),
            Command::Incr { key } => self.incr(key, now).map(Reply::Int),
            Command::Script(script) => return self.script(script, now_us),
        };
        r.map_err(StoreError::Reply)
    }

    /// The live value of `key` at `now_us` (expired keys are absent).
    pub fn get_raw(&self, key: &str, now_us: i64) -> Option<&[u8]> {
        self.get(key, ms(now_us))
    }

    /// `PTTL key` at `now_us`: -2 when the key does not exist, -1 without expiry, else the
    /// milliseconds left (`expire_at_ms - floor(now_us / 1000)`, 0 in the key's last ms).
    pub fn pttl_ms(&self, key: &str, now_us: i64) -> i64 {
        self.pttl(key, ms(now_us))
    }

    /// Every key live at `now_us`, sorted: key, value, absolute expiry in unix milliseconds.
    pub fn live_keys(&self, now_us: i64) -> Vec<(String, Vec<u8>, Option<i64>)> {
        let now = ms(now_us);
        self.entries
            .iter()
            .filter(|(_, e)| live(e, now))
            .map(|(k, e)| (k.clone(), e.value.clone(), e.expire_at_ms))
            .collect()
    }

    /// The number of stored keys: the keys live at the last [`RedisModel::exec`]'s clock that
    /// no later call removed (keys that expired since then still count until the next `exec`).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is stored (see [`RedisModel::len`]).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    // ---- storage -------------------------------------------------------------------------

    fn expire_until(&mut self, now_ms: i64) {
        while let Some((at, _)) = self.expiries.first() {
            if *at >= now_ms {
                break;
            }
            if let Some((_, key)) = self.expiries.pop_first() {
                self.entries.remove(&key);
            }
        }
    }

    fn put(&mut self, key: &str, value: Vec<u8>, expire_at_ms: Option<i64>) {
        self.remove(key);
        if let Some(at) = expire_at_ms {
            self.expiries.insert((at, key.to_owned()));
        }
        self.entries.insert(key.to_owned(), Entry { value, expire_at_ms });
    }

    fn remove(&mut self, key: &str) -> Option<Entry> {
        let old = self.entries.remove(key)?;
        if let Some(at) = old.expire_at_ms {
            self.expiries.remove(&(at, key.to_owned()));
        }
        Some(old)
    }

    fn lookup(&self, key: &str, now_ms: i64) -> Option<&Entry> {
        self.entries.get(key).filter(|e| live(e, now_ms))
    }

    // ---- commands (errors as the server's error text) -------------------------------------

    fn get(&self, key: &str, now_ms: i64) -> Option<&[u8]> {
        self.lookup(key, now_ms).map(|e| e.value.as_slice())
    }

    /// `SET` (and `SETEX`, `name` being the command for the error text): true when written.
    fn set(
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

    fn del(&mut self, key: &str, now_ms: i64) -> bool {
        self.lookup(key, now_ms).is_some() && self.remove(key).is_some()
    }

    fn pexpire(&mut self, key: &str, ttl_ms: u64, now_ms: i64) -> Result<i64, String> {
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

    fn pttl(&self, key: &str, now_ms: i64) -> i64 {
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

    fn incr(&mut self, key: &str, now_ms: i64) -> Result<i64, String> {
        let (old, expire_at) = match self.lookup(key, now_ms) {
            None => (0, None),
            Some(e) => (string2ll(&e.value).ok_or(NOT_AN_INTEGER)?, e.expire_at_ms),
        };
        let new = old.checked_add(1).ok_or(INCR_OVERFLOW)?;
        self.put(key, new.to_string().into_bytes(), expire_at);
        Ok(new)
    }

    // ---- scripts --------------------------------------------------------------------------

    fn script(&mut self, script: &Script, now_us: i64) -> Result<Reply, StoreError> {
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
                if let Some(v) = self.get(key, now) {
                    if lua_status(v) == LuaStatus::Duplicate {
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

/// The SHA-1 of `data` in lowercase hex, as Redis names scripts.
pub fn sha1_hex(data: &[u8]) -> String {
    let mut h: [u32; 5] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64).wrapping_mul(8)).to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

// ---- cjson.decode, as far as the acquire script looks -------------------------------------

/// What the acquire script makes of a stored value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LuaStatus {
    /// Not decodable, not a table, no `status`, or `status == 'completed'`.
    Duplicate,
    /// Any other `status` (including JSON `null`, which is `cjson.null`, not `nil`).
    Busy,
}

/// How the acquire script's `cjson.decode` + `rec['status']` classifies `value` (see the module
/// documentation for lua-cjson's dialect).
pub fn lua_status(value: &[u8]) -> LuaStatus {
    match cjson_status(value) {
        Some(Some(StatusValue::Str(s))) if s != b"completed" => LuaStatus::Busy,
        Some(Some(StatusValue::Other)) => LuaStatus::Busy,
        _ => LuaStatus::Duplicate,
    }
}

/// A `status` field's decoded value.
#[derive(Debug, PartialEq)]
enum StatusValue {
    Str(Vec<u8>),
    /// A number, boolean, `null`, object or array.
    Other,
}

#[derive(Debug, PartialEq)]
enum Token {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Comma,
    Colon,
    End,
    Str(Vec<u8>),
    /// A number, boolean or `null`.
    Scalar,
    Error,
}

/// The input as lua-cjson sees it: NUL-terminated.
struct Lexer<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Lexer<'_> {
    fn at(&self, i: usize) -> u8 {
        self.data.get(i).copied().unwrap_or(0)
    }

    fn starts_with_ci(&self, i: usize, word: &[u8]) -> bool {
        word.iter()
            .enumerate()
            .all(|(j, w)| self.at(i + j).to_ascii_lowercase() == *w)
    }

    fn next(&mut self) -> Token {
        while matches!(self.at(self.pos), b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
        let p = self.pos;
        let single = match self.at(p) {
            0 => return Token::End,
            b'{' => Token::ObjBegin,
            b'}' => Token::ObjEnd,
            b'[' => Token::ArrBegin,
            b']' => Token::ArrEnd,
            b',' => Token::Comma,
            b':' => Token::Colon,
            b'"' => return self.string(),
            b'-' | b'0'..=b'9' => return self.number(),
            b'f' | b'i' | b'I' | b'n' | b'N' | b't' | b'+' => {
                let rest = &self.data[p..];
                for word in [&b"true"[..], b"false", b"null"] {
                    if rest.starts_with(word) {
                        self.pos += word.len();
                        return Token::Scalar;
                    }
                }
                // decode_invalid_numbers (on by default): `+...`, `inf...`, `nan...` go to strtod.
                let c = self.at(p);
                if c == b'+' || self.starts_with_ci(p, b"inf") || self.starts_with_ci(p, b"nan") {
                    return self.number();
                }
                return Token::Error;
            }
            _ => return Token::Error,
        };
        self.pos += 1;
        single
    }

    fn hex4(&self, i: usize) -> Option<u32> {
        (0..4).try_fold(0u32, |acc, j| {
            Some(acc * 16 + char::from(self.at(i + j)).to_digit(16)?)
        })
    }

    fn string(&mut self) -> Token {
        let mut p = self.pos + 1;
        let mut out = Vec::new();
        loop {
            match self.at(p) {
                0 => return Token::Error,
                b'"' => break,
                b'\\' => {
                    let mapped = match self.at(p + 1) {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 0x08,
                        b'f' => 0x0c,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'u' => {
                            let Some(mut cp) = self.hex4(p + 2) else {
                                return Token::Error;
                            };
                            let mut len = 6;
                            if cp & 0xF800 == 0xD800 {
                                if cp & 0x400 != 0 || self.at(p + 6) != b'\\' || self.at(p + 7) != b'u' {
                                    return Token::Error;
                                }
                                let Some(low) = self.hex4(p + 8) else {
                                    return Token::Error;
                                };
                                if low & 0xFC00 != 0xDC00 {
                                    return Token::Error;
                                }
                                cp = (((cp & 0x3FF) << 10) | (low & 0x3FF)) + 0x10000;
                                len = 12;
                            }
                            let Some(ch) = char::from_u32(cp) else {
                                return Token::Error;
                            };
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                            p += len;
                            continue;
                        }
                        _ => return Token::Error,
                    };
                    out.push(mapped);
                    p += 2;
                }
                c => {
                    out.push(c);
                    p += 1;
                }
            }
        }
        self.pos = p + 1;
        Token::Str(out)
    }

    fn digits(&self, mut i: usize, hex: bool) -> usize {
        while if hex {
            self.at(i).is_ascii_hexdigit()
        } else {
            self.at(i).is_ascii_digit()
        } {
            i += 1;
        }
        i
    }

    /// glibc `strtod` in the C locale: how far it reads a number at `pos` (none: an error).
    fn number(&mut self) -> Token {
        let mut p = self.pos;
        if matches!(self.at(p), b'+' | b'-') {
            p += 1;
        }
        let end = if self.starts_with_ci(p, b"inf") {
            Some(if self.starts_with_ci(p + 3, b"inity") {
                p + 8
            } else {
                p + 3
            })
        } else if self.starts_with_ci(p, b"nan") {
            let mut q = p + 3;
            if self.at(q) == b'(' {
                let mut r = q + 1;
                while self.at(r).is_ascii_alphanumeric() || self.at(r) == b'_' {
                    r += 1;
                }
                if self.at(r) == b')' {
                    q = r + 1;
                }
            }
            Some(q)
        } else {
            let hex = if self.at(p) == b'0' && self.at(p + 1) | 0x20 == b'x' {
                self.mantissa(p + 2, true).map(|q| self.exponent(q, b'p'))
            } else {
                None
            };
            hex.or_else(|| self.mantissa(p, false).map(|q| self.exponent(q, b'e')))
        };
        match end {
            Some(e) => {
                self.pos = e;
                Token::Scalar
            }
            None => Token::Error,
        }
    }

    /// Digits, optionally a point and more digits, at least one digit in all.
    fn mantissa(&self, p: usize, hex: bool) -> Option<usize> {
        let int_end = self.digits(p, hex);
        let mut end = int_end;
        let mut frac = 0;
        if self.at(int_end) == b'.' {
            end = self.digits(int_end + 1, hex);
            frac = end - int_end - 1;
        }
        (int_end > p || frac > 0).then_some(end)
    }

    /// An optional exponent (`e`/`p`, a sign, decimal digits) after a mantissa ending at `q`.
    fn exponent(&self, q: usize, marker: u8) -> usize {
        if self.at(q) | 0x20 != marker {
            return q;
        }
        let mut r = q + 1;
        if matches!(self.at(r), b'+' | b'-') {
            r += 1;
        }
        let end = self.digits(r, false);
        if end > r {
            end
        } else {
            q
        }
    }
}

/// `cjson.decode(value)` then `rec['status']`: `None` when decoding fails or gives a non-table,
/// `Some(None)` for a table without `status`, else the status.
fn cjson_status(data: &[u8]) -> Option<Option<StatusValue>> {
    if data.len() >= 2 && (data[0] == 0 || data[1] == 0) {
        return None; // "JSON parser does not support UTF-16 or UTF-32"
    }
    #[derive(PartialEq)]
    enum Ctx {
        Obj,
        Arr,
    }
    let mut lx = Lexer { data, pos: 0 };
    let mut stack: Vec<Ctx> = Vec::new();
    let mut top_is_table = false;
    let mut key_is_status = false; // the current key of the top-level object
    let mut status: Option<StatusValue> = None;
    let mut tok = lx.next();
    loop {
        // A value starts at `tok`.
        let value = match tok {
            Token::ObjBegin | Token::ArrBegin => {
                if stack.len() + 1 > CJSON_MAX_DEPTH {
                    return None;
                }
                let is_obj = tok == Token::ObjBegin;
                tok = lx.next();
                if tok == if is_obj { Token::ObjEnd } else { Token::ArrEnd } {
                    if stack.is_empty() {
                        top_is_table = true;
                    }
                    StatusValue::Other // an empty table
                } else if is_obj {
                    stack.push(Ctx::Obj);
                    let Token::Str(k) = tok else { return None };
                    if stack.len() == 1 {
                        key_is_status = k == b"status";
                    }
                    if lx.next() != Token::Colon {
                        return None;
                    }
                    tok = lx.next();
                    continue;
                } else {
                    stack.push(Ctx::Arr);
                    continue;
                }
            }
            Token::Str(s) => StatusValue::Str(s),
            Token::Scalar => StatusValue::Other,
            _ => return None,
        };
        // The value is complete: store it, then close every container that ends here.
        let mut value = Some(value);
        loop {
            if let Some(v) = value.take() {
                match stack.len() {
                    0 => {
                        // The whole input's value: `Other` here is a table only if it was one.
                        if lx.next() != Token::End {
                            return None;
                        }
                        return top_is_table.then_some(status);
                    }
                    1 if stack[0] == Ctx::Obj && key_is_status => status = Some(v),
                    _ => {}
                }
            }
            let next = lx.next();
            match (stack.last(), next) {
                (Some(Ctx::Obj), Token::ObjEnd) | (Some(Ctx::Arr), Token::ArrEnd) => {
                    stack.pop();
                    if stack.is_empty() {
                        top_is_table = true;
                    }
                    value = Some(StatusValue::Other);
                }
                (Some(Ctx::Obj), Token::Comma) => {
                    let Token::Str(k) = lx.next() else { return None };
                    if stack.len() == 1 {
                        key_is_status = k == b"status";
                    }
                    if lx.next() != Token::Colon {
                        return None;
                    }
                    tok = lx.next();
                    break;
                }
                (Some(Ctx::Arr), Token::Comma) => {
                    tok = lx.next();
                    break;
                }
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use idempotency::key::{EventKey, KeyPath};
    use idempotency::pyjson::PyValue;
    use idempotency::record::Owner;

    /// 2023-11-14T22:13:20.123456Z.
    const T0: i64 = 1_700_000_000_123_456;
    const T0_MS: i64 = 1_700_000_000_123;
    const S: i64 = 1_000_000;

    fn get(k: &str) -> Command {
        Command::Get { key: k.into() }
    }
    fn set(k: &str, v: &[u8], condition: SetCondition, expiry: Option<Expiry>) -> Command {
        Command::Set {
            key: k.into(),
            value: v.to_vec(),
            condition,
            expiry,
        }
    }
    fn put(k: &str, v: &[u8]) -> Command {
        set(k, v, SetCondition::Always, None)
    }
    fn put_px(k: &str, v: &[u8], ms: u64) -> Command {
        set(k, v, SetCondition::Always, Some(Expiry::Px(ms)))
    }
    fn setex(k: &str, ttl_s: u64, v: &[u8]) -> Command {
        Command::SetEx {
            key: k.into(),
            ttl_s,
            value: v.to_vec(),
        }
    }
    fn del(keys: &[&str]) -> Command {
        Command::Del {
            keys: keys.iter().map(|k| k.to_string()).collect(),
        }
    }
    fn pexpire(k: &str, ttl_ms: u64) -> Command {
        Command::PExpire {
            key: k.into(),
            ttl_ms,
        }
    }
    fn pttl(k: &str) -> Command {
        Command::PTtl { key: k.into() }
    }
    fn incr(k: &str) -> Command {
        Command::Incr { key: k.into() }
    }
    fn acquire(k: &str, fence_key: &str, ttl_ms: u64, head: &[u8], tail: &[u8]) -> Command {
        Command::Script(Script::Acquire {
            key: k.into(),
            fence_key: fence_key.into(),
            ttl_ms,
            head: head.to_vec(),
            tail: tail.to_vec(),
            floor: 0,
        })
    }
    fn renew(k: &str, lease: &[u8], value: &[u8], ttl_ms: u64) -> Command {
        Command::Script(Script::Renew {
            key: k.into(),
            lease: lease.to_vec(),
            value: value.to_vec(),
            ttl_ms,
        })
    }
    fn confirm(k: &str, lease: &[u8], value: &[u8], ttl_s: u64) -> Command {
        Command::Script(Script::Confirm {
            key: k.into(),
            lease: lease.to_vec(),
            value: value.to_vec(),
            ttl_s,
        })
    }
    fn release(k: &str, lease: &[u8]) -> Command {
        Command::Script(Script::Release {
            key: k.into(),
            lease: lease.to_vec(),
        })
    }

    fn ok(m: &mut RedisModel, cmd: Command, now: i64) -> Reply {
        m.exec(&cmd, now)
            .unwrap_or_else(|e| panic!("{cmd:?} failed: {e}"))
    }
    fn err(m: &mut RedisModel, cmd: Command, now: i64) -> String {
        match m.exec(&cmd, now) {
            Err(StoreError::Reply(text)) => text,
            other => panic!("{cmd:?}: expected an error reply, got {other:?}"),
        }
    }
    fn bulk(v: &[u8]) -> Reply {
        Reply::Bulk(v.to_vec())
    }
    fn arr(tag: &str, n: Option<i64>) -> Reply {
        let mut items = vec![bulk(tag.as_bytes())];
        items.extend(n.map(Reply::Int));
        Reply::Array(items)
    }
    fn invalid(cmd: &str) -> String {
        format!("ERR invalid expire time in '{cmd}' command")
    }
    /// The error a failing `redis.call` gives: the line is the `nth` line holding `call`.
    fn script_err(lua: &str, call: &str, nth: usize, err: &str) -> String {
        let line = lua
            .lines()
            .enumerate()
            .filter(|(_, l)| l.contains(call))
            .nth(nth - 1)
            .unwrap()
            .0
            + 1;
        format!(
            "{err} script: {}, on @user_script:{line}.",
            redis::Script::new(lua).get_hash()
        )
    }

    fn event() -> EventKey {
        EventKey {
            key: "idem:svc:t_v1:abc".into(),
            path: KeyPath::Header,
            event_type: "t.v1".into(),
            event_id: PyValue::str("e-1"),
            correlation_id: PyValue::Null,
            source_service: PyValue::str("src"),
        }
    }

    #[test]
    fn get_set_del() {
        let mut m = RedisModel::new();
        assert!(m.is_empty());
        assert_eq!(ok(&mut m, get("a"), T0), Reply::Nil);
        assert_eq!(ok(&mut m, put("a", b"1"), T0), Reply::Ok);
        assert_eq!(ok(&mut m, get("a"), T0), bulk(b"1"));
        assert_eq!(ok(&mut m, put("a", b"\x00\xff"), T0), Reply::Ok);
        assert_eq!(ok(&mut m, get("a"), T0), bulk(b"\x00\xff"));
        assert_eq!(ok(&mut m, put("b", b""), T0), Reply::Ok);
        assert_eq!(ok(&mut m, get("b"), T0), bulk(b""));
        assert_eq!(m.len(), 2);
        // DEL counts each live key once.
        assert_eq!(ok(&mut m, del(&["a", "a", "b", "c"]), T0), Reply::Int(2));
        assert_eq!(ok(&mut m, del(&["a"]), T0), Reply::Int(0));
        assert!(m.is_empty());
        assert_eq!(
            err(&mut m, del(&[]), T0),
            "ERR wrong number of arguments for 'del' command"
        );
    }

    #[test]
    fn set_nx_xx() {
        let mut m = RedisModel::new();
        assert_eq!(ok(&mut m, set("a", b"1", SetCondition::Xx, None), T0), Reply::Nil);
        assert_eq!(ok(&mut m, get("a"), T0), Reply::Nil);
        assert_eq!(ok(&mut m, set("a", b"1", SetCondition::Nx, None), T0), Reply::Ok);
        assert_eq!(ok(&mut m, set("a", b"2", SetCondition::Nx, None), T0), Reply::Nil);
        assert_eq!(ok(&mut m, get("a"), T0), bulk(b"1"));
        let px = Some(Expiry::Px(5000));
        assert_eq!(ok(&mut m, set("a", b"3", SetCondition::Xx, px), T0), Reply::Ok);
        assert_eq!(ok(&mut m, get("a"), T0), bulk(b"3"));
        assert_eq!(ok(&mut m, pttl("a"), T0), Reply::Int(5000));
        // An expired key is missing for NX and XX.
        let later = T0 + 6 * S;
        assert_eq!(
            ok(&mut m, set("a", b"4", SetCondition::Xx, None), later),
            Reply::Nil
        );
        assert_eq!(
            ok(&mut m, set("a", b"5", SetCondition::Nx, None), later),
            Reply::Ok
        );
        assert_eq!(ok(&mut m, pttl("a"), later), Reply::Int(-1));
    }

    #[test]
    fn set_expiry_and_its_errors() {
        let mut m = RedisModel::new();
        assert_eq!(
            ok(
                &mut m,
                set("a", b"v", SetCondition::Always, Some(Expiry::Ex(3))),
                T0
            ),
            Reply::Ok
        );
        assert_eq!(ok(&mut m, pttl("a"), T0), Reply::Int(3000));
        // SET without expiry drops the old one; so does SET XX.
        assert_eq!(ok(&mut m, put("a", b"w"), T0), Reply::Ok);
        assert_eq!(ok(&mut m, pttl("a"), T0), Reply::Int(-1));
        assert_eq!(ok(&mut m, put_px("a", b"w", 700), T0), Reply::Ok);
        assert_eq!(ok(&mut m, set("a", b"x", SetCondition::Xx, None), T0), Reply::Ok);
        assert_eq!(ok(&mut m, pttl("a"), T0), Reply::Int(-1));

        let before = m.clone();
        for (e, text) in [
            (Expiry::Ex(0), invalid("set")),
            (Expiry::Px(0), invalid("set")),
            (Expiry::Ex(u64::MAX), NOT_AN_INTEGER.to_owned()),
            (Expiry::Px(i64::MAX as u64 + 1), NOT_AN_INTEGER.to_owned()),
            (Expiry::Ex(i64::MAX as u64 / 1000 + 1), invalid("set")),
            // Overflows once the clock is added.
            (Expiry::Ex(i64::MAX as u64 / 1000), invalid("set")),
            (Expiry::Px(i64::MAX as u64), invalid("set")),
            (Expiry::Px((i64::MAX - T0_MS + 1) as u64), invalid("set")),
        ] {
            for cond in [SetCondition::Always, SetCondition::Nx, SetCondition::Xx] {
                // The expiry is checked before NX/XX: an error even where NX would say nil.
                assert_eq!(
                    err(&mut m, set("a", b"y", cond, Some(e)), T0),
                    text,
                    "{e:?} {cond:?}"
                );
                assert_eq!(
                    err(&mut m, set("zz", b"y", cond, Some(e)), T0),
                    text,
                    "{e:?} {cond:?}"
                );
            }
        }
        assert_eq!(m, before);
        // The largest expiry that does not overflow.
        let px = Some(Expiry::Px((i64::MAX - T0_MS) as u64));
        assert_eq!(
            ok(&mut m, set("a", b"y", SetCondition::Always, px), T0),
            Reply::Ok
        );
        assert_eq!(m.live_keys(T0), vec![("a".into(), b"y".to_vec(), Some(i64::MAX))]);
        assert_eq!(ok(&mut m, pttl("a"), T0), Reply::Int(i64::MAX - T0_MS));
    }

    #[test]
    fn setex_command() {
        let mut m = RedisModel::new();
        assert_eq!(ok(&mut m, put("a", b"old"), T0), Reply::Ok);
        assert_eq!(err(&mut m, setex("a", 0, b"v"), T0), invalid("setex"));
        assert_eq!(
            err(&mut m, setex("a", i64::MAX as u64 / 1000 + 1, b"v"), T0),
            invalid("setex")
        );
        assert_eq!(err(&mut m, setex("a", u64::MAX, b"v"), T0), NOT_AN_INTEGER);
        assert_eq!(ok(&mut m, get("a"), T0), bulk(b"old"));
        assert_eq!(ok(&mut m, setex("a", 10, b"v"), T0), Reply::Ok);
        assert_eq!(ok(&mut m, get("a"), T0), bulk(b"v"));
        assert_eq!(ok(&mut m, pttl("a"), T0 + 1500), Reply::Int(9999));
    }

    #[test]
    fn pexpire_command() {
        let mut m = RedisModel::new();
        assert_eq!(ok(&mut m, pexpire("a", 1000), T0), Reply::Int(0));
        assert_eq!(ok(&mut m, put("a", b"v"), T0), Reply::Ok);
        assert_eq!(ok(&mut m, pexpire("a", 1000), T0), Reply::Int(1));
        assert_eq!(ok(&mut m, pttl("a"), T0), Reply::Int(1000));
        assert_eq!(ok(&mut m, pexpire("a", 1), T0), Reply::Int(1));
        assert_eq!(ok(&mut m, pttl("a"), T0), Reply::Int(1));
        // Overflow is an error, even for a missing key; above i64::MAX is not an integer.
        for k in ["a", "missing"] {
            assert_eq!(err(&mut m, pexpire(k, i64::MAX as u64), T0), invalid("pexpire"));
            assert_eq!(
                err(&mut m, pexpire(k, (i64::MAX - T0_MS + 1) as u64), T0),
                invalid("pexpire")
            );
            assert_eq!(err(&mut m, pexpire(k, u64::MAX), T0), NOT_AN_INTEGER);
        }
        assert_eq!(
            ok(&mut m, pexpire("a", (i64::MAX - T0_MS) as u64), T0),
            Reply::Int(1)
        );
        assert_eq!(ok(&mut m, pttl("a"), T0), Reply::Int(i64::MAX - T0_MS));
        // A TTL of 0 deletes the key (and says 1); a missing key says 0.
        assert_eq!(ok(&mut m, pexpire("a", 0), T0), Reply::Int(1));
        assert_eq!(ok(&mut m, get("a"), T0), Reply::Nil);
        assert!(m.is_empty());
        assert_eq!(ok(&mut m, pexpire("a", 0), T0), Reply::Int(0));
    }

    #[test]
    fn expiry_boundary_in_microseconds() {
        let mut m = RedisModel::new();
        // Set at T0 (…123.456 ms): Redis's clock says …123 ms, so the key expires at …1123 ms.
        assert_eq!(ok(&mut m, put_px("a", b"v", 1000), T0), Reply::Ok);
        let at = T0_MS + 1000;
        assert_eq!(m.live_keys(T0), vec![("a".into(), b"v".to_vec(), Some(at))]);
        assert_eq!(m.pttl_ms("a", T0), 1000);
        assert_eq!(m.pttl_ms("a", T0 + 876), 999);
        // In its last millisecond (now_ms == expire_at_ms) the key still exists, with PTTL 0.
        for now in [at * 1000, at * 1000 + 999] {
            assert_eq!(m.get_raw("a", now), Some(&b"v"[..]));
            assert_eq!(ok(&mut m, pttl("a"), now), Reply::Int(0));
            assert_eq!(ok(&mut m, get("a"), now), bulk(b"v"));
        }
        let gone = (at + 1) * 1000;
        assert_eq!(m.get_raw("a", gone), None);
        assert_eq!(m.pttl_ms("a", gone), -2);
        assert!(m.live_keys(gone).is_empty());
        assert_eq!(m.len(), 1, "not removed until the next exec");
        assert_eq!(ok(&mut m, pttl("a"), gone), Reply::Int(-2));
        assert_eq!(m.len(), 0);
        assert_eq!(ok(&mut m, get("a"), gone), Reply::Nil);
    }

    #[test]
    fn clock_jumps() {
        let mut m = RedisModel::new();
        assert_eq!(ok(&mut m, put_px("a", b"v", 10_000), T0), Reply::Ok);
        assert_eq!(ok(&mut m, put_px("b", b"v", 10_000), T0), Reply::Ok);
        // Back by a minute: expiry is absolute, so the key lives a minute longer.
        let back = T0 - 60 * S;
        assert_eq!(ok(&mut m, pttl("a"), back), Reply::Int(70_000));
        assert_eq!(ok(&mut m, get("a"), back + 65 * S), bulk(b"v"));
        // Forward past the expiry: gone early.
        let fwd = T0 + 11 * S;
        assert_eq!(ok(&mut m, get("b"), fwd), Reply::Nil);
        assert_eq!(ok(&mut m, pttl("a"), fwd), Reply::Int(-2));
        assert_eq!(ok(&mut m, del(&["a", "b"]), fwd), Reply::Int(0));
        // Once expired under some clock reading, a key does not come back when the clock returns.
        assert_eq!(ok(&mut m, get("a"), T0), Reply::Nil);
        assert!(m.is_empty());
        // Acquire's fence floor follows the clock, backwards too; the counter keeps it monotonic.
        let (head, tail) = (b"h".to_vec(), b"t".to_vec());
        assert_eq!(
            ok(&mut m, acquire("k1", "f", 5000, &head, &tail), T0),
            arr("acquired", Some(T0))
        );
        assert_eq!(
            ok(&mut m, acquire("k2", "f", 5000, &head, &tail), back),
            arr("acquired", Some(T0 + 1))
        );
    }

    #[test]
    fn acquire_floor_keeps_tokens_above_a_known_one_when_the_counter_is_lost() {
        let (head, tail) = (b"h".to_vec(), b"t".to_vec());
        let mut m = RedisModel::new();
        assert_eq!(
            ok(&mut m, acquire("k1", "f", 5000, &head, &tail), T0),
            arr("acquired", Some(T0))
        );
        // A crash loses the counter and the clock is a minute behind: without a floor the
        // token goes back below T0 ...
        let mut m = RedisModel::new();
        let back = T0 - 60 * S;
        assert_eq!(
            ok(&mut m, acquire("k2", "f", 5000, &head, &tail), back),
            arr("acquired", Some(back))
        );
        // ... with the effect store's highest token as the floor it does not, and the counter
        // is raised with it.
        let with_floor = |floor| {
            Command::Script(Script::Acquire {
                key: "k3".into(),
                fence_key: "f".into(),
                ttl_ms: 5000,
                head: head.clone(),
                tail: tail.clone(),
                floor,
            })
        };
        assert_eq!(
            ok(&mut m, with_floor(T0 as u64), back),
            arr("acquired", Some(T0 + 1))
        );
        assert_eq!(
            ok(&mut m, acquire("k4", "f", 5000, &head, &tail), back),
            arr("acquired", Some(T0 + 2))
        );
        assert_eq!(m.get_raw("k3", back), Some(format!("h{}t", T0 + 1).as_bytes()));
    }

    #[test]
    fn incr_command() {
        let mut m = RedisModel::new();
        assert_eq!(ok(&mut m, incr("n"), T0), Reply::Int(1));
        assert_eq!(ok(&mut m, pttl("n"), T0), Reply::Int(-1));
        assert_eq!(ok(&mut m, incr("n"), T0), Reply::Int(2));
        assert_eq!(ok(&mut m, get("n"), T0), bulk(b"2"));
        // INCR keeps the TTL.
        assert_eq!(ok(&mut m, pexpire("n", 4000), T0), Reply::Int(1));
        assert_eq!(ok(&mut m, incr("n"), T0 + 1000), Reply::Int(3));
        assert_eq!(ok(&mut m, pttl("n"), T0 + 1000), Reply::Int(3999));
        for (v, next) in [
            (&b"-1"[..], 0),
            (b"0", 1),
            (b"-9223372036854775808", -9223372036854775807),
            (b"9223372036854775806", i64::MAX),
            (b"12345678901234567890"[..19].as_ref(), 1234567890123456790),
        ] {
            assert_eq!(ok(&mut m, put("n", v), T0), Reply::Ok);
            assert_eq!(ok(&mut m, incr("n"), T0), Reply::Int(next));
            assert_eq!(ok(&mut m, get("n"), T0), bulk(next.to_string().as_bytes()));
        }
        assert_eq!(ok(&mut m, put("n", b"9223372036854775807"), T0), Reply::Ok);
        assert_eq!(err(&mut m, incr("n"), T0), INCR_OVERFLOW);
        for v in [
            &b""[..],
            b"abc",
            b"007",
            b"-0",
            b"+5",
            b" 5",
            b"5 ",
            b"1.0",
            b"-",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"00000000000000000001",
            b"{\"status\": \"processing\"}",
        ] {
            assert_eq!(ok(&mut m, put("n", v), T0), Reply::Ok);
            assert_eq!(
                err(&mut m, incr("n"), T0),
                NOT_AN_INTEGER,
                "{:?}",
                String::from_utf8_lossy(v)
            );
            assert_eq!(ok(&mut m, get("n"), T0), bulk(v));
        }
    }

    #[test]
    fn acquire_fences() {
        let mut m = RedisModel::new();
        let id = event();
        let (head, tail) = record::processing_fenced_parts("svc", &id, T0, "owner-1");
        // A fresh counter: the fence is TIME in µs, and the counter is raised to it.
        assert_eq!(
            ok(&mut m, acquire("a", "f", 30_000, &head, &tail), T0),
            arr("acquired", Some(T0))
        );
        assert_eq!(
            m.get_raw("a", T0),
            Some(record::join_fenced(&head, T0 as u64, &tail).as_slice())
        );
        assert_eq!(m.pttl_ms("a", T0), 30_000);
        assert_eq!(m.get_raw("f", T0), Some(T0.to_string().as_bytes()));
        // Later: TIME again beats the counter.
        let t1 = T0 + 5;
        assert_eq!(
            ok(&mut m, acquire("b", "f", 30_000, &head, &tail), t1),
            arr("acquired", Some(t1))
        );
        // Same µs: the counter (t1 + 1) beats TIME.
        assert_eq!(
            ok(&mut m, acquire("c", "f", 30_000, &head, &tail), t1),
            arr("acquired", Some(t1 + 1))
        );
        assert_eq!(m.get_raw("f", t1), Some((t1 + 1).to_string().as_bytes()));
        // A counter above TIME: INCR wins and keeps the counter's TTL.
        assert_eq!(
            ok(&mut m, put_px("f", b"5000000000000000", 60_000), T0),
            Reply::Ok
        );
        assert_eq!(
            ok(&mut m, acquire("d", "f", 30_000, &head, &tail), T0),
            arr("acquired", Some(5_000_000_000_000_001))
        );
        assert_eq!(m.pttl_ms("f", T0), 60_000);
        // A counter below TIME with a TTL: the floor SET drops the TTL.
        assert_eq!(ok(&mut m, put_px("f", b"7", 60_000), T0), Reply::Ok);
        assert_eq!(
            ok(&mut m, acquire("e", "f", 30_000, &head, &tail), T0),
            arr("acquired", Some(T0))
        );
        assert_eq!(m.pttl_ms("f", T0), -1);
        // The fence is a Lua number: above 2^53 it is rounded (ties to even) in the record and
        // the reply, while the counter holds INCR's exact result.
        assert_eq!(ok(&mut m, put("f", b"9007199254740994"), T0), Reply::Ok);
        let r = ok(&mut m, acquire("g", "f", 30_000, b"<", b">"), T0);
        assert_eq!(r, arr("acquired", Some(9_007_199_254_740_996)));
        assert_eq!(m.get_raw("g", T0), Some(&b"<9007199254740996>"[..]));
        assert_eq!(m.get_raw("f", T0), Some(&b"9007199254740995"[..]));
        // A counter that rounds to 2^63 comes out as i64::MIN (x86-64's double → long).
        assert_eq!(ok(&mut m, put("f", b"9223372036854775500"), T0), Reply::Ok);
        let r = ok(&mut m, acquire("h", "f", 30_000, b"<", b">"), T0);
        assert_eq!(r, arr("acquired", Some(i64::MIN)));
        assert_eq!(m.get_raw("h", T0), Some(&b"<-9223372036854775808>"[..]));
        assert_eq!(m.get_raw("f", T0), Some(&b"9223372036854775501"[..]));
    }

    #[test]
    fn acquire_errors_keep_earlier_writes() {
        let mut m = RedisModel::new();
        // INCR fails: nothing is written.
        assert_eq!(ok(&mut m, put("f", b"abc"), T0), Reply::Ok);
        let before = m.clone();
        assert_eq!(
            err(&mut m, acquire("a", "f", 30_000, b"h", b"t"), T0),
            script_err(ACQUIRE_LUA, "redis.call('INCR'", 1, NOT_AN_INTEGER)
        );
        assert_eq!(m, before);
        assert_eq!(
            ok(&mut m, put("f", i64::MAX.to_string().as_bytes()), T0),
            Reply::Ok
        );
        assert_eq!(
            err(&mut m, acquire("a", "f", 30_000, b"h", b"t"), T0),
            script_err(ACQUIRE_LUA, "redis.call('INCR'", 1, INCR_OVERFLOW)
        );
        // The record's SET fails after the counter was raised: the counter stays raised.
        assert_eq!(ok(&mut m, del(&["f"]), T0), Reply::Int(1));
        for (ttl, text) in [
            (0, invalid("set")),
            (i64::MAX as u64, invalid("set")),
            (u64::MAX, NOT_AN_INTEGER.to_owned()),
        ] {
            assert_eq!(
                err(&mut m, acquire("a", "f", ttl, b"h", b"t"), T0),
                script_err(ACQUIRE_LUA, "redis.call('SET', KEYS[1]", 1, &text)
            );
            assert_eq!(m.get_raw("a", T0), None);
        }
        assert_eq!(m.get_raw("f", T0), Some((T0 + 2).to_string().as_bytes()));
    }

    #[test]
    fn acquire_duplicate_and_busy() {
        let mut m = RedisModel::new();
        let id = event();
        let owner = Owner {
            token: "o".into(),
            fence: 7,
        };
        let dup = arr("duplicate", None);
        for v in [
            record::completed("svc", &id, T0),
            record::completed_fenced("svc", &id, T0, &owner),
            b"legacy-value".to_vec(),
            b"".to_vec(),
            b"[1, 2]".to_vec(),
            b"{}".to_vec(),
            b"42".to_vec(),
            b"\"processing\"".to_vec(),
            b"null".to_vec(),
            br#"{"status": "processing",}"#.to_vec(),
        ] {
            assert_eq!(ok(&mut m, put("a", &v), T0), Reply::Ok);
            assert_eq!(ok(&mut m, acquire("a", "f", 30_000, b"h", b"t"), T0), dup);
            assert_eq!(ok(&mut m, get("a"), T0), bulk(&v));
            assert_eq!(ok(&mut m, pttl("a"), T0), Reply::Int(-1));
        }
        assert_eq!(m.get_raw("f", T0), None, "no fence drawn");
        // Busy, with the record's TTL left.
        let processing = record::processing("svc", &id, T0);
        assert_eq!(ok(&mut m, put_px("a", &processing, 20_000), T0), Reply::Ok);
        assert_eq!(
            ok(&mut m, acquire("a", "f", 30_000, b"h", b"t"), T0 + 1_500_000),
            arr("busy", Some(18_500))
        );
        assert_eq!(ok(&mut m, pttl("a"), T0 + 1_500_000), Reply::Int(18_500));
        // Busy without TTL (v2 can leave that): it gets the lease TTL.
        for v in [
            processing.clone(),
            br#"{"status": null}"#.to_vec(),
            br#"{"status": 0}"#.to_vec(),
            br#"{"status": "other"}"#.to_vec(),
            br#"{"status": NaN}"#.to_vec(),
        ] {
            assert_eq!(ok(&mut m, put("a", &v), T0), Reply::Ok);
            assert_eq!(
                ok(&mut m, acquire("a", "f", 30_000, b"h", b"t"), T0),
                arr("busy", Some(30_000))
            );
            assert_eq!(ok(&mut m, pttl("a"), T0), Reply::Int(30_000));
            assert_eq!(ok(&mut m, get("a"), T0), bulk(&v));
        }
        // …and a lease TTL of 0 deletes it (PEXPIRE 0).
        assert_eq!(ok(&mut m, put("a", &processing), T0), Reply::Ok);
        assert_eq!(
            ok(&mut m, acquire("a", "f", 0, b"h", b"t"), T0),
            arr("busy", Some(0))
        );
        assert_eq!(ok(&mut m, get("a"), T0), Reply::Nil);
        assert_eq!(ok(&mut m, put("a", &processing), T0), Reply::Ok);
        assert_eq!(
            err(&mut m, acquire("a", "f", i64::MAX as u64, b"h", b"t"), T0),
            script_err(ACQUIRE_LUA, "redis.call('PEXPIRE'", 1, &invalid("pexpire"))
        );
        assert_eq!(m.get_raw("f", T0), None, "no fence drawn");
    }

    #[test]
    fn acquire_on_its_own_fence_key() {
        let mut m = RedisModel::new();
        assert_eq!(
            ok(
                &mut m,
                acquire(
                    "f",
                    "f",
                    30_000,
                    b"{\"status\": \"processing\", \"fence\": ",
                    b"}"
                ),
                T0
            ),
            arr("acquired", Some(T0))
        );
        let rec = format!("{{\"status\": \"processing\", \"fence\": {T0}}}");
        assert_eq!(m.get_raw("f", T0), Some(rec.as_bytes()));
        assert_eq!(
            ok(&mut m, acquire("f", "f", 30_000, b"", b""), T0 + 1000),
            arr("busy", Some(29_999))
        );
        // A counter under the event key reads as a number: duplicate.
        assert_eq!(ok(&mut m, put("f", b"12"), T0), Reply::Ok);
        assert_eq!(
            ok(&mut m, acquire("f", "f", 30_000, b"", b""), T0),
            arr("duplicate", None)
        );
    }

    #[test]
    fn renew_confirm_release() {
        let mut m = RedisModel::new();
        let id = event();
        let (head, tail) = record::processing_fenced_parts("svc", &id, T0, "owner-1");
        assert_eq!(
            ok(&mut m, acquire("a", "f", 30_000, &head, &tail), T0),
            arr("acquired", Some(T0))
        );
        let owner = Owner {
            token: "owner-1".into(),
            fence: T0 as u64,
        };
        let other = Owner {
            token: "owner-1".into(),
            fence: T0 as u64 + 1,
        };
        let mine = record::join_fenced(&head, owner.fence, &tail);
        assert_eq!(mine, record::processing_fenced("svc", &id, T0, &owner));
        let (lease, theirs) = (record::lease_tail(&owner), record::lease_tail(&other));
        // Renew: only this lease's record, rewritten with the renewal's record and TTL.
        let renewed = record::processing_fenced("svc", &id, T0 + S, &owner);
        assert_eq!(
            ok(&mut m, renew("a", &theirs, &renewed, 60_000), T0),
            Reply::Int(0)
        );
        assert_eq!(
            ok(&mut m, renew("b", &lease, &renewed, 60_000), T0),
            Reply::Int(0)
        );
        assert_eq!(m.pttl_ms("a", T0), 30_000);
        assert_eq!(
            ok(&mut m, renew("a", &lease, &renewed, 60_000), T0 + S),
            Reply::Int(1)
        );
        assert_eq!(m.pttl_ms("a", T0 + S), 60_000);
        assert_eq!(m.get_raw("a", T0 + S), Some(renewed.as_slice()));
        // A second renewal still holds: the check is the tail, not the bytes first written.
        assert_eq!(
            ok(&mut m, renew("a", &lease, &mine, 60_000), T0 + S),
            Reply::Int(1)
        );
        assert_eq!(
            err(&mut m, renew("a", &lease, &mine, i64::MAX as u64), T0),
            script_err(RENEW_LUA, "redis.call('SET'", 1, &invalid("set"))
        );
        assert_eq!(
            err(&mut m, renew("a", &lease, &mine, u64::MAX), T0),
            script_err(RENEW_LUA, "redis.call('SET'", 1, NOT_AN_INTEGER)
        );
        // Confirm: a lost lease (another lease's record) is left alone.
        let done = record::completed_fenced("svc", &id, T0, &owner);
        assert_eq!(ok(&mut m, confirm("a", &theirs, &done, 3600), T0), Reply::Int(0));
        assert_eq!(m.get_raw("a", T0), Some(mine.as_slice()));
        // Errors name the SET of the branch taken.
        assert_eq!(
            err(&mut m, confirm("a", &lease, &done, 0), T0),
            script_err(CONFIRM_LUA, "redis.call('SET'", 1, &invalid("set"))
        );
        assert_eq!(
            err(&mut m, confirm("zz", &lease, &done, 0), T0),
            script_err(CONFIRM_LUA, "redis.call('SET'", 2, &invalid("set"))
        );
        assert_eq!(
            err(&mut m, confirm("zz", &lease, &done, u64::MAX), T0),
            script_err(CONFIRM_LUA, "redis.call('SET'", 2, NOT_AN_INTEGER)
        );
        assert_eq!(
            err(&mut m, confirm("zz", &lease, &done, i64::MAX as u64 / 1000), T0),
            script_err(CONFIRM_LUA, "redis.call('SET'", 2, &invalid("set"))
        );
        assert_eq!(m.get_raw("zz", T0), None);
        assert_eq!(ok(&mut m, confirm("a", &lease, &done, 3600), T0), Reply::Int(1));
        assert_eq!(m.get_raw("a", T0), Some(done.as_slice()));
        assert_eq!(m.pttl_ms("a", T0), 3_600_000);
        // The completed record ends with the same tail but is not a lease any more.
        assert_eq!(ok(&mut m, renew("a", &lease, &mine, 1000), T0), Reply::Int(0));
        assert_eq!(ok(&mut m, release("a", &lease), T0), Reply::Int(0));
        assert_eq!(ok(&mut m, confirm("a", &lease, &done, 10), T0), Reply::Int(0));
        // After expiry with nobody holding the key: still written, reply 2.
        let late = T0 + 2 * S;
        assert_eq!(ok(&mut m, put_px("b", &mine, 1000), T0), Reply::Ok);
        assert_eq!(ok(&mut m, confirm("b", &lease, &done, 10), late), Reply::Int(2));
        assert_eq!(m.pttl_ms("b", late), 10_000);
        // Renew and release only touch this lease's record.
        assert_eq!(ok(&mut m, renew("b", &lease, &mine, 1000), late), Reply::Int(0));
        assert_eq!(ok(&mut m, put_px("c", &mine, 30_000), T0), Reply::Ok);
        assert_eq!(ok(&mut m, release("c", &theirs), T0), Reply::Int(0));
        assert_eq!(ok(&mut m, release("nope", &lease), T0), Reply::Int(0));
        assert_eq!(ok(&mut m, release("c", &lease), T0), Reply::Int(1));
        assert_eq!(m.get_raw("c", T0), None);
        assert_eq!(ok(&mut m, release("c", &lease), T0), Reply::Int(0));
        // A v2 processing record (no owner) is nobody's lease.
        let v2 = record::processing("svc", &id, T0);
        assert_eq!(ok(&mut m, put("c", &v2), T0), Reply::Ok);
        assert_eq!(ok(&mut m, release("c", &lease), T0), Reply::Int(0));
        assert_eq!(ok(&mut m, renew("c", &lease, &mine, 1000), T0), Reply::Int(0));
        // An empty lease tail matches nothing (Lua's string.sub(v, -0) is the whole value).
        assert_eq!(ok(&mut m, release("c", b""), T0), Reply::Int(0));
    }

    /// Each case was run through the acquire script's decode on redis-server 7.0.15.
    #[test]
    fn cjson_status_like_redis() {
        use LuaStatus::{Busy, Duplicate};
        let cases: &[(&[u8], LuaStatus)] = &[
            (br#"{"status": "completed"}"#, Duplicate),
            (br#"{"status": "processing"}"#, Busy),
            (br#"{"status": null}"#, Busy),
            (br#"{"status": 5}"#, Busy),
            (br#"{"status": false}"#, Busy),
            (br#"{"status": true}"#, Busy),
            (br#"{"status": [1]}"#, Busy),
            (br#"{"status": {}}"#, Busy),
            (b"[1,2]", Duplicate),
            (b"[]", Duplicate),
            (b"5", Duplicate),
            (br#""status""#, Duplicate),
            (b"null", Duplicate),
            (b"{}", Duplicate),
            (b"", Duplicate),
            (br#"{"status":"x",}"#, Duplicate),
            (br#"{"status": NaN}"#, Busy),
            (br#"{"status": NAN}"#, Busy),
            (br#"{"status": -nan}"#, Busy),
            (br#"{"status": nan(a_1)}"#, Busy),
            (br#"{"status": nan()}"#, Busy),
            (br#"{"status": nan(}"#, Duplicate),
            (br#"{"status": -Infinity}"#, Busy),
            (br#"{"status": Infinity}"#, Busy),
            (br#"{"status": infinity}"#, Busy),
            (br#"{"status": inf}"#, Busy),
            (br#"{"status": INF}"#, Busy),
            (br#"{"status": +inf}"#, Busy),
            (br#"{"status": infinit}"#, Duplicate),
            (br#"{"status": infinityy}"#, Duplicate),
            (br#"{"status": 0x10}"#, Busy),
            (br#"{"status": 0x.8p1}"#, Busy),
            (br#"{"status": 0X1P+3}"#, Busy),
            (br#"{"status": 0x1.}"#, Busy),
            (br#"{"status": 0x1p}"#, Duplicate),
            (br#"{"status": 0x}"#, Duplicate),
            (br#"{"status": 007}"#, Busy),
            (br#"{"status": 00}"#, Busy),
            (br#"{"status": -0}"#, Busy),
            (br#"{"status": +5}"#, Busy),
            (br#"{"status": -.5}"#, Busy),
            (br#"{"status": .5}"#, Duplicate),
            (br#"{"status": 1e999}"#, Busy),
            (br#"{"status": 1.}"#, Busy),
            (br#"{"status": 1e}"#, Duplicate),
            (br#"{"status": 1e+}"#, Duplicate),
            (br#"{"status": 1E+5}"#, Busy),
            (br#"{"status": 1e5.5}"#, Duplicate),
            (br#"{"status": 1.5.5}"#, Duplicate),
            (br#"{"status": --1}"#, Duplicate),
            (br#"{"status": -+1}"#, Duplicate),
            (br#"{"status": -}"#, Duplicate),
            (br#"{"status": +}"#, Duplicate),
            (br#"{"status": Null}"#, Duplicate),
            (br#"{"status": nil}"#, Duplicate),
            (br#"{"status": 123456789012345678901234567890}"#, Busy),
            (br#"{"status": "completed", "status": "processing"}"#, Busy),
            (br#"{"status": "processing", "status": "completed"}"#, Duplicate),
            (br#"{"st\u0061tus": "compl\u0065ted"}"#, Duplicate),
            (br#"{"status": "\ud800"}"#, Duplicate),
            (br#"{"status": "\udc00"}"#, Duplicate),
            (br#"{"status": "\ud800\u0041"}"#, Duplicate),
            (br#"{"status": "\ud83d\ude00"}"#, Busy),
            (br#"{"status": "\uD83D\uDE00"}"#, Busy),
            (br#"{"status": "\u12"}"#, Duplicate),
            (br#"{"status": "\u00e9"}"#, Busy),
            (br#"{"status": "\u0000"}"#, Busy),
            (br#"{"status": "completed\u0000"}"#, Busy),
            (br#"{"status": "a\qb"}"#, Duplicate),
            (br#"{"status": "\/"}"#, Busy),
            (b"{\"status\": \"\xff\"}", Busy),
            (b"{\"status\": \"a\x01\"}", Busy),
            (b"{\"status\": \"a\x00b\"}", Duplicate),
            (br#"{"status": 1}x"#, Duplicate),
            (br#"{"status": "processing"} 5"#, Duplicate),
            (b"  {\"status\": 1}  ", Busy),
            (b"{\"status\": \"x\"}\r\n\t ", Busy),
            (b"{\"status\":\x0c1}", Duplicate),
            (b"{\"status\":\x0b1}", Duplicate),
            (b"{\"status\": 1}\x00xx", Busy),
            (b"{\"status\": 1}\x00", Busy),
            (b"{\"status\": 1} \x00", Busy),
            (b"{\"status\": 1}\x00\x00", Busy),
            (b"{\x00", Duplicate),
            (b"5\x00", Duplicate),
            (b" \x00{\"status\": 1}", Duplicate),
            (b"\x00", Duplicate),
            (b"\xef\xbb\xbf{\"status\": 1}", Duplicate),
            (br#"{"status": 1,"a":}"#, Duplicate),
            (br#"{"status": 1,"a":2"#, Duplicate),
            (br#"{"status": 1 "a":2}"#, Duplicate),
            (br#"{1: 2}"#, Duplicate),
            (br#"{"status" 1}"#, Duplicate),
            (br#"{"a": {"status": "processing"}}"#, Duplicate),
            (br#"{"a": {"status": "completed"}, "status": "x"}"#, Busy),
            (br#"[{"status": "processing"}]"#, Duplicate),
        ];
        for (v, want) in cases {
            assert_eq!(lua_status(v), *want, "{:?}", String::from_utf8_lossy(v));
        }
        // lua-cjson nests at most 1000 containers.
        let nested = |n: usize| format!("{{\"status\": {}{}}}", "[".repeat(n), "]".repeat(n));
        assert_eq!(lua_status(nested(999).as_bytes()), Busy);
        assert_eq!(lua_status(nested(1000).as_bytes()), Duplicate);
        let arrays = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert_eq!(cjson_status(arrays(1000).as_bytes()), Some(None));
        assert_eq!(cjson_status(arrays(1001).as_bytes()), None);
        // Deep input does not recurse.
        assert_eq!(lua_status("[".repeat(1_000_000).as_bytes()), Duplicate);
    }

    #[test]
    fn fenced_records_read_as_the_protocol_expects() {
        let id = event();
        let (head, tail) = record::processing_fenced_parts("svc", &id, T0, "owner-1");
        assert_eq!(
            lua_status(&record::join_fenced(&head, 12, &tail)),
            LuaStatus::Busy
        );
        assert_eq!(lua_status(&record::processing("svc", &id, T0)), LuaStatus::Busy);
        assert_eq!(
            lua_status(&record::completed("svc", &id, T0)),
            LuaStatus::Duplicate
        );
        let owner = Owner {
            token: "o".into(),
            fence: u64::MAX,
        };
        assert_eq!(
            lua_status(&record::completed_fenced("svc", &id, T0, &owner)),
            LuaStatus::Duplicate
        );
    }

    #[test]
    fn sha1_matches_redis() {
        assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            sha1_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        assert_eq!(
            sha1_hex(&[b'a'; 1_000_000]),
            "34aa973cd4c4daa4f61eeb2bdbad27316534016f"
        );
        for lua in [
            ACQUIRE_LUA,
            RENEW_LUA,
            CONFIRM_LUA,
            idempotency::fenced::RELEASE_LUA,
        ] {
            assert_eq!(sha1_hex(lua.as_bytes()), redis::Script::new(lua).get_hash());
        }
    }

    #[test]
    fn deterministic_and_comparable() {
        let run = || {
            let mut m = RedisModel::new();
            let mut replies = Vec::new();
            for (i, now) in [T0, T0 + 10, T0 + 3 * S, T0 - S, T0 + 40 * S]
                .into_iter()
                .enumerate()
            {
                let k = format!("k{}", i % 2);
                replies.push(m.exec(&acquire(&k, "f", 2000, b"{\"status\": \"processing\"", b"}"), now));
                replies.push(m.exec(&incr("f"), now));
                replies.push(m.exec(&pttl(&k), now));
            }
            (m, replies)
        };
        let (a, ra) = run();
        let (b, rb) = run();
        assert_eq!(ra, rb);
        assert_eq!(a, b);
        assert_eq!(a.clone(), a);
        assert_ne!(a, RedisModel::default());
        assert!(format!("{a:?}").contains("RedisModel"));
    }
}
