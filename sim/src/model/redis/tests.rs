//! The model through [`RedisModel::exec`], command by command and script by script, against
//! replies taken from redis-server 7.0.15. (The cjson decoder's own cases are in `cjson.rs`,
//! SHA-1's in `sha1.rs`.)

use super::commands::{INCR_OVERFLOW, NOT_AN_INTEGER};
use super::*;
use idempotency::fenced::{ACQUIRE_LUA, CONFIRM_LUA, RENEW_LUA};
use idempotency::key::{EventKey, KeyPath};
use idempotency::pyjson::PyValue;
use idempotency::record;
use idempotency::record::Owner;
use idempotency::store::Script;

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
    EventKey::new(
        "idem:svc:t_v1:abc".into(),
        KeyPath::Header,
        "t.v1".into(),
        PyValue::str("e-1"),
        PyValue::Null,
        PyValue::str("src"),
    )
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
    // The same confirm sent again (its reply lost) finds its own completed record: confirmed,
    // and the record and its TTL are left as they are.
    assert_eq!(ok(&mut m, confirm("a", &lease, &done, 10), T0), Reply::Int(1));
    assert_eq!(m.get_raw("a", T0), Some(done.as_slice()));
    assert_eq!(m.pttl_ms("a", T0), 3_600_000);
    // Another lease's confirm finds a completed record that is not its own: lost.
    assert_eq!(ok(&mut m, confirm("a", &theirs, &done, 10), T0), Reply::Int(0));
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

/// An `everysec` fsync writes only what changed, and the disk it keeps equals a copy of the
/// whole data set taken at the same moment, over writes, deletes, expiries and counters.
#[test]
fn a_sync_of_what_changed_leaves_the_disk_equal_to_the_data_set() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let mut live = RedisModel::new();
    let mut disk = RedisModel::new();
    let keys = ["a", "b", "c", "d", "e"];
    let mut now = T0;
    for step in 0..2_000 {
        let k = keys[rng.gen_range(0..keys.len())];
        let cmd = match rng.gen_range(0..6) {
            0 => put(k, b"v"),
            1 => put_px(k, b"w", rng.gen_range(1..3_000)),
            2 => del(&[k]),
            3 => pexpire(k, rng.gen_range(1..3_000)),
            4 => incr("n"),
            _ => get(k),
        };
        let _ = live.exec(&cmd, now);
        now += rng.gen_range(0..200_000);
        if step % 7 == 0 {
            live.sync_to(&mut disk);
            assert_eq!(disk, live, "step {step}");
            assert!(live.changed.is_empty());
        }
    }
}

/// An fsync that leaves the disk with other keys than the data set (a change the bookkeeping
/// missed) is caught in every build, not only in debug ones.
#[test]
#[should_panic(expected = "the disk holds the same keys")]
fn a_sync_that_misses_a_change_is_caught() {
    let (mut model, mut disk) = (RedisModel::default(), RedisModel::default());
    disk.put("stale", b"v".to_vec(), None);
    model.sync_to(&mut disk);
}

/// The fsync's check goes round the key space a stretch at a time: the stretches cover every
/// key once per round, and a stretch holding a key whose entry differs on the disk disagrees.
#[test]
fn agreeing_stretches_cover_every_key_and_a_differing_entry_is_found() {
    let (mut model, mut disk) = (RedisModel::default(), RedisModel::default());
    for i in 0..10 {
        model.put(&format!("k{i}"), b"v".to_vec(), Some(1_000 + i));
    }
    model.sync_to(&mut disk);
    let (mut after, mut rounds) = (None::<String>, 0);
    loop {
        let (agrees, next) = model.agrees_from(&disk, after.as_deref(), 4);
        assert!(agrees, "after {after:?}");
        rounds += 1;
        match next {
            Some(k) => after = Some(k),
            None => break,
        }
    }
    assert_eq!(rounds, 3, "10 keys in stretches of 4");
    assert_eq!(model.agrees_from(&disk, Some("k7"), 2), (true, Some("k9".into())));
    assert_eq!(
        model.agrees_from(&disk, Some("k9"), 2),
        (true, None),
        "nothing after the last key"
    );
    // The bookkeeping misses a change: the disk keeps the old entry of k7.
    model.entries.get_mut("k7").unwrap().value = b"new".to_vec();
    assert_eq!(model.agrees_from(&disk, None, 4), (true, Some("k3".into())));
    assert!(!model.agrees_from(&disk, Some("k3"), 4).0, "k4..k7 holds k7");
    assert_eq!(
        model.agrees_from(&disk, Some("k7"), 4),
        (true, None),
        "k8, k9: the round ends"
    );
}

/// A failover to a replica lagging by `lag` gives the primary's data set as of `lag` ago: every
/// change stamped later (writes, deletes, expiries, the fence counter) is undone, and a key
/// restored past its expiry expires at the promoted node's next command, by its clock.
#[test]
fn a_failover_rolls_back_to_a_prefix_of_the_write_stream() {
    let mut m = RedisModel::new();
    m.keep_writes_for(10 * S as u64);
    // Virtual time 0: a, b (expiring 1 s later by the node's clock) and the counter.
    m.at(0);
    ok(&mut m, put("a", b"1"), T0);
    ok(&mut m, put_px("b", b"2", 1000), T0);
    ok(&mut m, incr("f"), T0);
    // 2 s later: a rewritten, c written, the counter raised, b expired on the primary.
    m.at(2 * S as u64);
    ok(&mut m, put("a", b"new"), T0 + 2 * S);
    ok(&mut m, put("c", b"3"), T0 + 2 * S);
    ok(&mut m, incr("f"), T0 + 2 * S);
    // 3 s: a deleted.
    m.at(3 * S as u64);
    assert_eq!(ok(&mut m, del(&["a"]), T0 + 3 * S), Reply::Int(1));
    let mut replica = m.clone();
    // A replica 1.5 s behind has everything up to 1.5 s: none of the later changes.
    assert!(replica.roll_back_to(3 * S as u64 - 1_500_000));
    let now = T0 + 3 * S;
    assert_eq!(replica.get_raw("a", now), Some(&b"1"[..]));
    assert_eq!(replica.get_raw("c", now), None);
    assert_eq!(ok(&mut replica, get("f"), now), bulk(b"1"));
    // b's expiry had not reached it; b is past its expiry, so the promoted node expires it.
    assert_eq!(ok(&mut replica, get("b"), now), Reply::Nil);
    // A replica 0.5 s behind has the changes of 2 s, not the delete of 3 s.
    let mut near = m.clone();
    assert!(near.roll_back_to(3 * S as u64 - 500_000));
    assert_eq!(near.get_raw("a", now), Some(&b"new"[..]));
    assert_eq!(near.get_raw("c", now), Some(&b"3"[..]));
    assert_eq!(ok(&mut near, get("f"), now), bulk(b"2"));
    // No lag: nothing is lost.
    let mut same = m.clone();
    assert!(same.roll_back_to(3 * S as u64));
    assert_eq!(same, m);
}

#[test]
fn a_failover_journal_keeps_its_window_and_is_off_unless_asked() {
    // Off: nothing is kept, a rollback changes nothing and says so.
    let mut off = RedisModel::new();
    off.at(0);
    ok(&mut off, put("a", b"1"), T0);
    let before = off.clone();
    assert!(!off.roll_back_to(0));
    assert_eq!(off, before);
    // A 1 s window: the write of 0 is forgotten by 5 s, so rolling back to before it cannot
    // undo it (and says the journal did not reach back that far).
    let mut m = RedisModel::new();
    m.keep_writes_for(S as u64);
    m.at(0);
    ok(&mut m, put("a", b"1"), T0);
    m.at(5 * S as u64);
    ok(&mut m, put("b", b"2"), T0 + 5 * S);
    assert!(!m.roll_back_to(0));
    assert_eq!(m.get_raw("a", T0 + 5 * S), Some(&b"1"[..]));
    assert_eq!(m.get_raw("b", T0 + 5 * S), None);
    // The data copy has no journal: a disk never grows one.
    let mut disk = m.data();
    assert!(!disk.roll_back_to(0));
}
