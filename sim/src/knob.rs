//! A numeric knob's range: the one type scenario validation, the nemesis's knobs and the docs
//! share, and the longest virtual time a knob may say. It imports nothing of the simulator, so
//! every layer may use it.

/// The longest virtual time any knob in ms may say: three days (the `ttl-lifecycle` scenario
/// needs more than one). Every µs computed from a knob stays far inside `u64` and `i64`.
pub const MAX_VIRTUAL_MS: u64 = 3 * 86_400_000;
/// [`MAX_VIRTUAL_MS`] in seconds, for the knobs in seconds.
pub const MAX_VIRTUAL_S: u64 = MAX_VIRTUAL_MS / 1000;
/// The values a numeric knob may take.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Range {
    /// An integer within `min..=max`.
    Int(i64, i64),
    /// A real number within `min..=max` (not NaN).
    Real(f64, f64),
    /// `0` (off), or an integer within `min..=max`.
    ZeroOr(i64, i64),
    /// Any `u64`.
    AnyU64,
}

impl Range {
    /// Whether the JSON value (a knob as `SimConfig::knobs` sees it) is inside the range.
    pub fn contains(&self, value: &serde_json::Value) -> bool {
        let int = value
            .as_i64()
            .map(i128::from)
            .or_else(|| value.as_u64().map(i128::from));
        match (self, int) {
            (Range::Int(lo, hi), Some(v)) => (i128::from(*lo)..=i128::from(*hi)).contains(&v),
            (Range::Real(lo, hi), _) => value.as_f64().is_some_and(|v| (*lo..=*hi).contains(&v)),
            (Range::ZeroOr(lo, hi), Some(v)) => v == 0 || (i128::from(*lo)..=i128::from(*hi)).contains(&v),
            (Range::AnyU64, _) => value.is_u64(),
            (Range::Int(..) | Range::ZeroOr(..), None) => false,
        }
    }
}

/// `1_000` style: what a scenario file may write too.
fn grouped(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let head = match digits.len() % 3 {
        0 => 3,
        n => n,
    };
    let mut groups = vec![&digits[..head]];
    groups.extend(
        digits.as_bytes()[head..]
            .chunks(3)
            .map(|g| std::str::from_utf8(g).expect("digits")),
    );
    let sign = if v < 0 { "-" } else { "" };
    format!("{sign}{}", groups.join("_"))
}

impl std::fmt::Display for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Range::Int(lo, hi) => write!(f, "{}..={}", grouped(*lo), grouped(*hi)),
            Range::Real(lo, hi) => write!(f, "{lo:?}..={hi:?}"),
            Range::ZeroOr(lo, hi) => write!(f, "0 or {}..={}", grouped(*lo), grouped(*hi)),
            Range::AnyU64 => write!(f, "any u64"),
        }
    }
}
