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
//! [`ACQUIRE_LUA`]: idempotency::fenced::ACQUIRE_LUA
//! [`RENEW_LUA`]: idempotency::fenced::RENEW_LUA
//! [`CONFIRM_LUA`]: idempotency::fenced::CONFIRM_LUA
//!
//! Real Redis 7.0 is the reference; `sim/tests/models/redis_differential.rs` runs random command
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

mod cjson;
mod commands;
mod persistence;
mod scripts;
mod sha1;

pub(crate) use cjson::{lua_status, LuaStatus};
pub use persistence::Persistence;
pub(crate) use sha1::sha1_hex;

use idempotency::store::{Command, Expiry, Reply, SetCondition, StoreError};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

/// One stored string and its absolute expiry.
#[derive(Clone)]
struct Entry {
    value: Vec<u8>,
    expire_at_ms: Option<i64>,
    /// What the acquire script's `cjson.decode` makes of `value`, kept once asked: a lock left
    /// behind by a crashed worker is read by every busy retry until it expires, and decoding
    /// its record again each time was most of what the script cost. Not data: equality ignores
    /// it, a copy of the entry (the journal's) keeps it with its value, and a new value starts
    /// without it.
    lua: std::cell::OnceCell<LuaStatus>,
    /// Its key is in the model's `changed` (it changed since the last sync): a write to it
    /// then lists nothing, without looking the key up in `changed`. Bookkeeping, not data:
    /// equality ignores it.
    listed: bool,
}

impl Entry {
    fn new(value: Vec<u8>, expire_at_ms: Option<i64>) -> Self {
        Entry {
            value,
            expire_at_ms,
            lua: std::cell::OnceCell::new(),
            listed: false,
        }
    }

    /// [`lua_status`] of the value, decoded at most once.
    fn lua_status(&self) -> LuaStatus {
        *self.lua.get_or_init(|| lua_status(&self.value))
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value && self.expire_at_ms == other.expire_at_ms
    }
}

impl Eq for Entry {}

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
#[derive(Clone, Default)]
pub struct RedisModel {
    entries: BTreeMap<String, Entry>,
    /// `(expire_at_ms, key)` for every entry with an expiry, to expire keys in order.
    expiries: BTreeSet<(i64, String)>,
    /// Keys written, deleted or expired since the last [`RedisModel::sync_to`]: what an
    /// `everysec` fsync has to write (bookkeeping only, not part of the data set).
    changed: BTreeSet<String>,
    /// The recent writes, kept for a failover to a lagging replica (off unless
    /// [`RedisModel::keep_writes_for`] turned it on; not part of the data set).
    journal: Option<Box<Journal>>,
}

/// The write stream of the last `window_us`, as undo records: what a replica that lags by up to
/// that much has not applied yet. Each record is a key's entry before one change (a write, a
/// delete or an expiry), stamped with the virtual time of the change.
#[derive(Clone, Default)]
struct Journal {
    window_us: u64,
    /// The virtual time of the changes being made now ([`RedisModel::at`]).
    stamp_us: u64,
    undo: VecDeque<(u64, String, Option<Entry>)>,
}

impl PartialEq for RedisModel {
    /// The same data set (what changed since a sync is not data).
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries && self.expiries == other.expiries
    }
}

impl Eq for RedisModel {}

impl fmt::Debug for RedisModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisModel")
            .field("entries", &self.entries)
            .finish()
    }
}

/// Redis's millisecond clock for a microsecond reading.
fn ms(now_us: i64) -> i64 {
    now_us.div_euclid(1000)
}

fn live(entry: &Entry, now_ms: i64) -> bool {
    match entry.expire_at_ms {
        None => true,
        Some(at) => now_ms <= at,
    }
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
        self.live_entries(now_us)
            .map(|(k, v, at)| (k.to_owned(), v.to_vec(), at))
            .collect()
    }

    /// [`RedisModel::live_keys`] borrowed, in key order: each live key, its value and its expiry.
    pub fn live_entries(&self, now_us: i64) -> impl Iterator<Item = (&str, &[u8], Option<i64>)> {
        let now = ms(now_us);
        self.entries
            .iter()
            .filter(move |(_, e)| live(e, now))
            .map(|(k, e)| (k.as_str(), e.value.as_slice(), e.expire_at_ms))
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

    /// Writes what changed since the last sync into `disk`, which held the data set as of
    /// then, so that it equals this one: an `everysec` fsync that costs what changed, not the
    /// whole data set.
    pub fn sync_to(&mut self, disk: &mut RedisModel) {
        debug_assert!(disk.journal.is_none(), "a disk keeps no journal");
        debug_assert!(
            self.entries
                .iter()
                .all(|(k, e)| e.listed == self.changed.contains(k)),
            "an entry is listed exactly when its key is in `changed`"
        );
        for key in std::mem::take(&mut self.changed) {
            // The disk keeps no journal and tracks no changes of its own: the entry is stored
            // as it is (what `put` and `unlink` do besides costs a key copy and a tree walk).
            match self.entries.get_mut(&key) {
                Some(e) => {
                    e.listed = false;
                    disk.store(&key, e.value.clone(), e.expire_at_ms, false);
                }
                None => {
                    disk.drop_key(&key);
                }
            }
        }
        disk.changed.clear();
        assert!(
            disk.entries.len() == self.entries.len(),
            "the disk holds the same keys"
        );
    }

    /// Compares `n` keys of this data set, from the first after `after` (from the start when
    /// `None`), with `other`'s, key for key and entry for entry: whether they agree, and where
    /// the next comparison starts (`None` once a stretch came up short: the round is over). With equal key
    /// counts (which [`RedisModel::sync_to`] asserts), `n` keys walked in step on both sides
    /// cover every difference in that stretch, for the cost of `n` keys however many are held.
    pub fn agrees_from(&self, other: &RedisModel, after: Option<&str>, n: usize) -> (bool, Option<String>) {
        use std::ops::Bound::{Excluded, Unbounded};
        let from = after.map_or(Unbounded, Excluded);
        let mine = self.entries.range::<str, _>((from, Unbounded));
        let theirs = other.entries.range::<str, _>((from, Unbounded));
        let (mut last, mut compared) = (None, 0);
        for ((k, e), (k2, e2)) in mine.zip(theirs).take(n) {
            if k != k2 || e != e2 {
                return (false, None);
            }
            (last, compared) = (Some(k), compared + 1);
        }
        // A short stretch was the last; a full one may be too (the next then compares none).
        (true, last.filter(|_| compared == n).cloned())
    }

    /// A copy of the data set alone (no journal): what a disk or a snapshot keeps.
    pub fn data(&self) -> RedisModel {
        RedisModel {
            entries: self.entries.clone(),
            expiries: self.expiries.clone(),
            changed: self.changed.clone(),
            journal: None,
        }
    }

    /// Whether something changed since the last sync (an fsync now would write it).
    pub fn has_unsynced(&self) -> bool {
        !self.changed.is_empty()
    }

    /// Forgets what changed (the disk was just made equal to this data set).
    pub fn mark_synced(&mut self) {
        self.changed.clear();
        // Rare (a restart or a failover): every entry is walked once.
        for e in self.entries.values_mut() {
            e.listed = false;
        }
    }

    // ---- failover ------------------------------------------------------------------------

    /// Keeps the writes of the last `window_us` of virtual time, so that
    /// [`RedisModel::roll_back_to`] can give the data set a replica lagging by up to that much
    /// holds. Off by default: a run without failovers keeps nothing.
    pub fn keep_writes_for(&mut self, window_us: u64) {
        self.journal = Some(Box::new(Journal {
            window_us,
            ..Journal::default()
        }));
    }

    /// The changes from now on happen at virtual time `stamp_us` (never before the last one):
    /// the journal's clock, which is true time, not the node's wall clock (replication lag is
    /// measured in true time). Writes older than the window are forgotten.
    pub fn at(&mut self, stamp_us: u64) {
        if let Some(j) = &mut self.journal {
            j.stamp_us = j.stamp_us.max(stamp_us);
            let oldest = j.stamp_us.saturating_sub(j.window_us);
            while j.undo.front().is_some_and(|(t, _, _)| *t < oldest) {
                j.undo.pop_front();
            }
        }
    }

    /// The data set as a replica holds it that has applied the primary's write stream up to
    /// virtual time `stamp_us` (a prefix of it: every change stamped later is undone, expiries
    /// included, since a replica only deletes an expired key when the primary's `DEL` reaches
    /// it; keys past their expiry then expire by the promoted node's clock at its next
    /// command). Returns whether the journal reached back that far (changes older than its
    /// window are kept as they are).
    pub fn roll_back_to(&mut self, stamp_us: u64) -> bool {
        let Some(mut j) = self.journal.take() else {
            return false;
        };
        let covered = j.stamp_us.saturating_sub(j.window_us) <= stamp_us;
        while j.undo.back().is_some_and(|(t, _, _)| *t > stamp_us) {
            let (_, key, old) = j.undo.pop_back().expect("checked");
            self.remove(&key);
            if let Some(e) = old {
                self.put(&key, e.value, e.expire_at_ms);
            }
        }
        self.journal = Some(j);
        covered
    }

    // ---- storage -------------------------------------------------------------------------

    /// Journals `key`'s entry before a change (with the journal on).
    fn note(&mut self, key: &str) {
        if let Some(j) = &mut self.journal {
            j.undo
                .push_back((j.stamp_us, key.to_owned(), self.entries.get(key).cloned()));
        }
    }

    fn expire_until(&mut self, now_ms: i64) {
        while let Some((at, _)) = self.expiries.first() {
            if *at >= now_ms {
                break;
            }
            if let Some((_, key)) = self.expiries.pop_first() {
                self.note(&key);
                self.entries.remove(&key);
                self.changed.insert(key);
            }
        }
    }

    fn put(&mut self, key: &str, value: Vec<u8>, expire_at_ms: Option<i64>) {
        self.note(key);
        self.store(key, value, expire_at_ms, true);
    }

    /// Sets `key`'s entry and its place in the expiry index, and with `track` lists the key
    /// as changed since the last sync (no journal).
    fn store(&mut self, key: &str, value: Vec<u8>, expire_at_ms: Option<i64>, track: bool) {
        // Overwriting a key (a lock confirmed, a lease renewed) is most writes: the entry is
        // changed in place, and its expiry moved only if it moved, rather than the key being
        // removed and inserted again (each a walk of two trees and a copy of the key).
        if let Some(entry) = self.entries.get_mut(key) {
            if track && !entry.listed {
                entry.listed = true;
                self.changed.insert(key.to_owned());
            }
            let old_expiry = std::mem::replace(&mut entry.expire_at_ms, expire_at_ms);
            entry.value = value;
            entry.lua = std::cell::OnceCell::new();
            if old_expiry != expire_at_ms {
                if let Some(at) = old_expiry {
                    let removed = self.expiries.remove(&(at, key.to_owned()));
                    debug_assert!(removed, "every expiring entry is in the expiry index");
                }
                if let Some(at) = expire_at_ms {
                    self.expiries.insert((at, key.to_owned()));
                }
            }
            return;
        }
        if let Some(at) = expire_at_ms {
            self.expiries.insert((at, key.to_owned()));
        }
        let mut entry = Entry::new(value, expire_at_ms);
        if track {
            // A key deleted since the last sync is listed already: inserting it again changes
            // nothing.
            entry.listed = true;
            self.changed.insert(key.to_owned());
        }
        self.entries.insert(key.to_owned(), entry);
    }

    fn remove(&mut self, key: &str) -> Option<Entry> {
        // Only a journal needs to know, before the removal, whether the key was there.
        if self.journal.is_some() && self.entries.contains_key(key) {
            self.note(key);
        }
        self.unlink(key)
    }

    /// Removes `key` without journaling it, listing it as changed since the last sync.
    fn unlink(&mut self, key: &str) -> Option<Entry> {
        let old = self.drop_key(key)?;
        if !old.listed {
            self.changed.insert(key.to_owned());
        }
        Some(old)
    }

    /// Removes `key`'s entry and its place in the expiry index (no journal, no change tracking).
    fn drop_key(&mut self, key: &str) -> Option<Entry> {
        let old = self.entries.remove(key)?;
        if let Some(at) = old.expire_at_ms {
            self.expiries.remove(&(at, key.to_owned()));
        }
        Some(old)
    }

    fn lookup(&self, key: &str, now_ms: i64) -> Option<&Entry> {
        self.entries.get(key).filter(|e| live(e, now_ms))
    }
}

#[cfg(test)]
mod tests;
