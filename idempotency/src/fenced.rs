//! The safe protocol ("fenced", the default): one atomic acquire, fencing tokens, a renewed
//! lease, and owner-checked confirm and release.
//!
//! - **Acquire** is one Lua script (see [`ACQUIRE_LUA`]): a completed record (or anything v2
//!   reads as completed) → duplicate; a processing record → busy (and a processing record
//!   without expiry, which v2 can leave behind, gets the lease TTL so it cannot block forever);
//!   no record → write the processing record with the lease TTL (`PX`) and hand out a fencing
//!   token. Staleness is Redis's own expiry: no worker clock is compared with another's.
//! - **Fencing tokens** come from one counter per service (`{prefix}:{service}:__fence__`),
//!   raised to at least Redis's `TIME` in microseconds and to one above the caller's *floor*
//!   (`ARGV[4]`). The effect store rejects a commit whose token is lower than one it has seen
//!   for the event: a worker that lost its lease cannot overwrite newer work. Tokens are
//!   monotonic for a key exactly when one of these holds:
//!   - Redis never loses the counter (`appendfsync always`, no failover to a lagging replica);
//!   - or Redis's clock, after it lost the counter, is ahead of the clock that issued every
//!     lost token (the `TIME` floor; a clock that was ahead or that steps back breaks it);
//!   - or the consumer has a [`FenceFloor`] ([`Consumer::with_fence_floor`]): the effect
//!     store's highest accepted token for the event, read before each acquire (keyed by the
//!     same identifier the handler's commit writes; see [`FenceFloor`]). Then every token
//!     is above every token the store had accepted for the key when the acquire began,
//!     whatever Redis lost and wherever its clock is. (A commit that lands while the acquire
//!     is in flight cannot bound it; the store then rejects the newcomer, which is fencing
//!     doing its job.) The consumer then *claims* the new token in the store
//!     ([`FenceFloor::claim`]) before the handler runs, so a zombie's later commit is rejected
//!     even before the new holder commits anything.
//!
//!   [`Consumer::with_fence_floor`]: crate::Consumer::with_fence_floor
//! - **The lease is renewed** every third of its TTL, and at least every 100 s
//!   ([`MAX_RENEW_INTERVAL`]), while the handler runs, only if the key still holds this
//!   owner's record ([`RENEW_LUA`]). Renewal rewrites the record with the renewal time as
//!   `started_at` (same owner, same fence): a v2 worker judges staleness by
//!   `now - started_at > 300` alone ([`crate::v2::STALE_AFTER_S`]), never by the key's TTL
//!   (its weakness C), and would take over a long-running lease whose record still showed the
//!   acquire time, or a renewal older than 300 s (a third of a TTL of 900 s or more).
//!
//!   [`MAX_RENEW_INTERVAL`]: crate::consumer::MAX_RENEW_INTERVAL
//! - **Ownership** is the record's tail, `, "owner": "<token>", "fence": N}`
//!   ([`record::lease_tail`]): the scripts renew, confirm or release a key only while it holds
//!   a processing record ending with this lease's tail. Comparing the tail rather than the whole
//!   record keeps the check true across renewals whose reply was lost.
//! - **Confirm** replaces this owner's record by the completed one ([`CONFIRM_LUA`]); if the
//!   lease expired and nobody took the key, it still writes it (the effect did commit); if
//!   another worker holds the key, it leaves it alone and reports the lease lost.
//! - **Release** on a handler error deletes the key only if it still holds this owner's record
//!   ([`RELEASE_LUA`]).
//!
//! Records keep v2's fields and order (then `owner` and `fence`), so v2 readers interpret them
//! the same way. Both keys of the acquire script must live on one Redis node (no cluster slots).

use crate::config::Config;
use crate::key::EventKey;
use crate::record::{self, Owner};
use crate::store::{BoxFuture, Command, Reply, Script, Store, StoreError};
use crate::v2::{unexpected, Acquired};

/// `KEYS[1]` event key, `KEYS[2]` fence counter; `ARGV[1]` lease TTL ms, `ARGV[2]` record head,
/// `ARGV[3]` record tail, `ARGV[4]` floor (the token is above it; 0 for none). Returns `{"acquired", fence}`, `{"duplicate"}` or `{"busy", pttl}`.
///
/// A key that holds this very call's lease (the head names its owner token, unique per call)
/// answers `acquired` with that lease's token: the same acquire sent again after its reply was
/// lost must not find itself busy.
pub const ACQUIRE_LUA: &str = r#"
local v = redis.call('GET', KEYS[1])
if v then
  if #v > #ARGV[2] + #ARGV[3] and string.sub(v, 1, #ARGV[2]) == ARGV[2] and string.sub(v, -#ARGV[3]) == ARGV[3] then
    local own = string.sub(v, #ARGV[2] + 1, #v - #ARGV[3])
    if string.match(own, '^%d+$') then return {'acquired', tonumber(own)} end
  end
  local ok, rec = pcall(cjson.decode, v)
  local status = nil
  if ok and type(rec) == 'table' then status = rec['status'] end
  if status == nil or status == 'completed' then return {'duplicate'} end
  local pttl = redis.call('PTTL', KEYS[1])
  if pttl == -1 then
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
    pttl = tonumber(ARGV[1])
  end
  return {'busy', pttl}
end
local fence = redis.call('INCR', KEYS[2])
local t = redis.call('TIME')
local floor = tonumber(t[1]) * 1000000 + tonumber(t[2])
local known = tonumber(ARGV[4]) + 1
if floor < known then floor = known end
if fence < floor then
  fence = floor
  redis.call('SET', KEYS[2], string.format('%d', fence))
end
redis.call('SET', KEYS[1], ARGV[2] .. string.format('%d', fence) .. ARGV[3], 'PX', ARGV[1])
return {'acquired', fence}
"#;

/// `KEYS[1]` event key; `ARGV[1]` lease tail, `ARGV[2]` renewed record, `ARGV[3]` TTL ms.
/// Returns 1 (renewed) or 0 (the key no longer holds this lease).
pub const RENEW_LUA: &str = r#"
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, 25) == '{"status": "processing", ' and string.sub(v, -#ARGV[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"#;

/// `KEYS[1]` event key; `ARGV[1]` lease tail, `ARGV[2]` completed record, `ARGV[3]` TTL s.
/// Returns 1 (confirmed), 2 (the lease was gone and nobody held the key: confirmed) or 0.
/// A key that already holds this lease's completed record answers 1 and is left as it is:
/// the same confirm sent again after its reply was lost.
pub const CONFIRM_LUA: &str = r#"
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, 25) == '{"status": "processing", ' and string.sub(v, -#ARGV[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
if v and string.sub(v, 1, 24) == '{"status": "completed", ' and string.sub(v, -#ARGV[1]) == ARGV[1] then
  return 1
end
if not v then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 2
end
return 0
"#;

/// `KEYS[1]` event key; `ARGV[1]` lease tail. Returns 1 (deleted) or 0.
pub const RELEASE_LUA: &str = r#"
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, 25) == '{"status": "processing", ' and string.sub(v, -#ARGV[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// The key of a service's fencing-token counter.
pub fn fence_key(config: &Config) -> String {
    // Joined by hand: the formatter cost more than the rest of building an acquire.
    let (prefix, service) = (&config.key_prefix, &config.service_name);
    let mut key = String::with_capacity(prefix.len() + service.len() + 11);
    for part in [prefix.as_str(), ":", service.as_str(), ":__fence__"] {
        key.push_str(part);
    }
    key
}

/// Where an acquire takes its floor from: the highest fencing token the durable effect store
/// has accepted for this event (0 when none). Redis's counter can lose its last writes in a
/// crash and its clock can be behind; the store that checks the tokens cannot, so with a floor
/// every new token is above every one it has accepted. A floor that cannot be read counts as a
/// store failure (the failure policy decides).
///
/// **The floor must read the same identifier the handler's commit writes.** It receives the
/// event's whole identity, [`EventKey`], and the handler sees the same identity through its
/// [`Context`](crate::Context); which field the effect store keys its tokens by is the
/// implementer's choice, and both sides must make the same one:
///
/// - the Redis key, `event.key` here and [`Context::key`](crate::Context::key) in the
///   handler: what the tokens are issued for, present for every protected event (the safe
///   default), e.g. `SELECT max(fence) FROM effects WHERE event_key = $1`;
/// - or the event id, `event.event_id_text()` here and
///   [`Context::event_id`](crate::Context::event_id) in the handler, when every event has one.
///
/// A floor that reads one while the commit writes the other answers 0 for every event: the
/// floor is silently off and nothing fails until Redis loses its counter.
pub trait FenceFloor: Send + Sync {
    /// The highest token the effect store has accepted for `event` (0 when none).
    fn highest<'a>(&'a self, event: &'a EventKey) -> BoxFuture<'a, Result<u64, StoreError>>;

    /// Raises the store's highest token for `event` to `fence` (never lowers it), right after
    /// the acquire that issued `fence` and before the handler runs, e.g.
    /// `INSERT INTO fences (event_key, fence) VALUES ($1, $2) ON CONFLICT (event_key) DO UPDATE
    /// SET fence = greatest(fences.fence, $2)`.
    ///
    /// Why: a store that only learns a token from a commit accepts a zombie's commit (a worker
    /// whose lease expired, still running) that lands after the takeover but before the new
    /// holder's first commit, and then the new holder's commit too: two effects. Claimed, the
    /// new token turns every later commit of an earlier lease into a rejected one. What is left
    /// is a zombie commit landing inside the claim's own round trip.
    fn claim<'a>(&'a self, event: &'a EventKey, fence: u64) -> BoxFuture<'a, Result<(), StoreError>>;
}

/// The fenced protocol (see the module documentation).
#[derive(Clone, Copy, Debug, Default)]
pub struct Fenced;

/// How a confirm went, as far as Redis says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConfirmReply {
    Confirmed,
    ConfirmedAfterExpiry,
    LeaseLost,
}

fn int(reply: Reply, what: &str) -> Result<i64, StoreError> {
    match reply {
        Reply::Int(n) => Ok(n),
        other => Err(unexpected(what, &other)),
    }
}

impl Fenced {
    pub(crate) async fn acquire(
        store: &dyn Store,
        config: &Config,
        id: &EventKey,
        now_us: i64,
        owner_token: &str,
        floor: u64,
    ) -> Result<Acquired, StoreError> {
        let (head, tail) = record::processing_fenced_parts(&config.service_name, id, now_us, owner_token);
        let script = Script::Acquire {
            key: id.key.clone(),
            fence_key: fence_key(config),
            ttl_ms: config.processing_ttl_s * 1000,
            head,
            tail,
            floor,
        };
        let reply = store.exec(Command::Script(script)).await?;
        match &reply {
            Reply::Array(items) => match items.as_slice() {
                [Reply::Bulk(s), Reply::Int(fence)] if s == b"acquired" && *fence > 0 => {
                    let owner = Owner {
                        token: owner_token.to_owned(),
                        fence: *fence as u64,
                    };
                    Ok(Acquired::Lease {
                        owner: Some(owner),
                        took_over_stale: false,
                    })
                }
                [Reply::Bulk(s)] if s == b"duplicate" => Ok(Acquired::Duplicate),
                [Reply::Bulk(s), Reply::Int(_)] if s == b"busy" => Ok(Acquired::Busy),
                _ => Err(unexpected("acquire", &reply)),
            },
            _ => Err(unexpected("acquire", &reply)),
        }
    }

    /// Extends the lease and rewrites its record with `started_at` = `now_us`; false when
    /// this owner no longer holds the key.
    pub(crate) async fn renew(
        store: &dyn Store,
        config: &Config,
        id: &EventKey,
        owner: &Owner,
        now_us: i64,
    ) -> Result<bool, StoreError> {
        let script = Script::Renew {
            key: id.key.clone(),
            lease: record::lease_tail(owner),
            value: record::processing_fenced(&config.service_name, id, now_us, owner),
            ttl_ms: config.processing_ttl_s * 1000,
        };
        Ok(int(store.exec(Command::Script(script)).await?, "renew")? == 1)
    }

    pub(crate) async fn confirm(
        store: &dyn Store,
        config: &Config,
        id: &EventKey,
        owner: &Owner,
        now_us: i64,
    ) -> Result<ConfirmReply, StoreError> {
        let script = Script::Confirm {
            key: id.key.clone(),
            lease: record::lease_tail(owner),
            value: record::completed_fenced(&config.service_name, id, now_us, owner),
            ttl_s: config.ttl_for(&id.event_type),
        };
        match int(store.exec(Command::Script(script)).await?, "confirm")? {
            1 => Ok(ConfirmReply::Confirmed),
            2 => Ok(ConfirmReply::ConfirmedAfterExpiry),
            0 => Ok(ConfirmReply::LeaseLost),
            n => Err(StoreError::Protocol(format!("confirm: {n}"))),
        }
    }

    /// Deletes the key if this owner still holds it; true when it did.
    pub(crate) async fn release(store: &dyn Store, key: &str, owner: &Owner) -> Result<bool, StoreError> {
        let script = Script::Release {
            key: key.to_owned(),
            lease: record::lease_tail(owner),
        };
        Ok(int(store.exec(Command::Script(script)).await?, "release")? == 1)
    }
}
