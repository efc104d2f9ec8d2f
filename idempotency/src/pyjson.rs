//! CPython's `json` module, byte for byte, for the v2 key hash.
//!
//! The Python v2 services hash the event body as `json.dumps(x, sort_keys=True)` of whatever
//! `json.loads(value_bytes)` returned (v2 protocol description, section "Key"). To derive the
//! same Redis key in Rust we need exactly CPython 3.11's notion of the parsed value (Python `str`
//! with lone surrogates, arbitrary-size `int`, `float`, insertion-ordered `dict` where a duplicate
//! key keeps its first position and its last value) and exactly its serialization (ensure_ascii
//! escaping, `repr(float)`, code point key order). This module provides that, with std and `ryu` (the shortest float digits).
//!
//! What is matched (verified against CPython 3.11.7):
//! - [`loads`] accepts and rejects the same inputs as `json.loads(bytes)` with the C scanner:
//!   optional UTF-8 BOM, UTF-8 decoded with `surrogatepass` (encoded surrogates `ED A0 80` become
//!   lone surrogates), strict strings (raw control characters are errors), `\uXXXX` escapes with
//!   surrogate-pair joining, `NaN`/`Infinity`/`-Infinity`, ints limited to 4300 digits (sign not
//!   counted), correctly rounded floats (overflow gives ±inf), "Extra data" after the value.
//!   Syntax error messages and positions (in code points of the decoded text, after the BOM)
//!   follow CPython's `JSONDecodeError.msg` / `.pos`.
//! - [`dumps`] / [`dumps_compact`] produce the same text as `json.dumps(v, sort_keys=...)` with
//!   the default (`", "`, `": "`) or compact (`","`, `":"`) separators and `ensure_ascii=True`.
//!   Floats use [`float_repr`], which reproduces `repr(float)` including its tie-break: when two
//!   shortest digit strings are equally close (722027621152215.25), CPython takes the even last
//!   digit (`722027621152215.2`), as Ryū does (Rust's `{:e}` rounds up: `...215.3`).
//!
//! `idempotency/tests/v2_keys_differential.rs` checks all of this against the machine's
//! `python3` on thousands of generated inputs.
//!
//! Deliberate divergences from CPython:
//! - Nesting depth is capped at [`MAX_DEPTH`] (512) containers; deeper input gives
//!   [`JsonError::TooDeep`]. CPython's limit is the interpreter recursion limit (about 996 levels
//!   under the default limit of 1000, depending on the caller's stack), raising `RecursionError`.
//!   Input nested between 513 and ~995 levels is therefore accepted by Python and rejected here.
//! - `json.loads(bytes)` guesses UTF-16/UTF-32 (`json.detect_encoding`) from a UTF-16/32 BOM
//!   (`FF FE`, `FE FF`, `00 00 FE FF`) or from a NUL in the first or second byte (inputs of 2 or
//!   at least 4 bytes). That is not supported: such input is decoded as UTF-8 and gives an error
//!   here ([`JsonError::NotUtf8`] or [`JsonError::Syntax`]), while Python may decode it
//!   successfully. Valid UTF-8 JSON never starts that way, so this only matters for hostile input.
//! - [`dumps`] never fails: an [`PyValue::Int`] built by hand with more than 4300 digits is
//!   written out (Python's `str(int)` would raise), and non-finite floats are always written as
//!   `NaN`/`Infinity`/`-Infinity` (Python's default `allow_nan=True`).
//!
//! [`loads`] never panics on any input, and both [`loads`] and [`dumps`] are iterative (explicit
//! stacks), so neither can overflow the stack. Values built by hand far deeper than
//! [`MAX_DEPTH`] may still overflow the stack when dropped or compared, like any recursive Rust
//! data structure.

use std::collections::HashMap;
use std::fmt;

/// Maximum container nesting depth accepted by [`loads`] (CPython's is the recursion limit).
pub const MAX_DEPTH: usize = 512;

/// Python's default `sys.int_max_str_digits` (3.11): longest int literal `int(str)` accepts.
pub const INT_MAX_STR_DIGITS: usize = 4300;

/// A Python `str`: a sequence of Unicode code points, lone surrogates allowed.
///
/// Held as the code points' UTF-8 encodings, a surrogate encoded like any other code point
/// (`U+D800` is `ED A0 80`, as Python's `surrogatepass` writes it; a pair of lone surrogates stays
/// two code points of three bytes each, never joined). Text without surrogates is therefore its
/// own UTF-8, so reading a body is a copy of its bytes and writing a plain string a copy back,
/// where a `Vec<u32>` of code points cost a conversion each way and four bytes a character.
/// The encoding is one-to-one and keeps the order of code points, so the derived `Eq`, `Hash` and
/// `Ord` (byte-wise) are Python's `str` equality and ordering (lexicographic by code point),
/// which is what `json.dumps(..., sort_keys=True)` sorts by.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PyStr(Vec<u8>);

impl PyStr {
    /// The Python `str` with the characters of `s`.
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(s: &str) -> Self {
        PyStr(s.as_bytes().to_vec())
    }

    /// The Python `str` with these code points (surrogates allowed; values past U+10FFFF are
    /// taken as U+10FFFF, which no parsed string holds).
    pub fn from_code_points(cps: &[u32]) -> Self {
        let mut out = Vec::with_capacity(cps.len());
        for &c in cps {
            push_code_point(&mut out, c);
        }
        PyStr(out)
    }

    /// The code points, in order.
    pub fn code_points(&self) -> impl Iterator<Item = u32> + '_ {
        let mut i = 0;
        std::iter::from_fn(move || {
            let (c, n) = code_point_at(&self.0, i)?;
            i += n;
            Some(c)
        })
    }

    /// The text as a Rust `&str`, or `None` if it holds a lone surrogate (which is not UTF-8).
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// The same text as a Rust `String`, or `None` if it holds a lone surrogate (which cannot
    /// be encoded as UTF-8; Python's `str.encode("utf-8")` raises for it too).
    pub fn to_string_lossless(&self) -> Option<String> {
        self.as_str().map(str::to_owned)
    }

    /// The text with every lone surrogate replaced by U+FFFD (for messages and logs).
    pub fn to_string_lossy(&self) -> String {
        self.code_points()
            .map(|c| char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect()
    }

    /// Whether this string holds exactly the characters of `s`.
    pub fn eq_str(&self, s: &str) -> bool {
        // A surrogate's encoding never occurs in a `&str`, so equal bytes are equal code points.
        self.0 == s.as_bytes()
    }

    /// Whether any code point is a surrogate (U+D800..=U+DFFF).
    pub fn has_surrogate(&self) -> bool {
        self.code_points().any(|c| (0xD800..=0xDFFF).contains(&c))
    }

    /// Number of code points (Python's `len(s)`).
    pub fn len(&self) -> usize {
        code_point_count(&self.0)
    }

    /// Whether the string is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Whether `b` continues a multi-byte encoding (`10xxxxxx`) rather than starting a code point.
fn is_continuation(b: u8) -> bool {
    b & 0xC0 == 0x80
}

/// How many code points the encoded text `b` holds: the bytes that start one.
fn code_point_count(b: &[u8]) -> usize {
    b.iter().filter(|&&b| !is_continuation(b)).count()
}

/// Appends the UTF-8 encoding of the code point `c`, surrogates encoded like any other.
fn push_code_point(out: &mut Vec<u8>, c: u32) {
    let c = c.min(0x10_FFFF);
    match c {
        0..=0x7F => out.push(c as u8),
        0x80..=0x7FF => out.extend_from_slice(&[0xC0 | (c >> 6) as u8, 0x80 | (c & 0x3F) as u8]),
        0x800..=0xFFFF => out.extend_from_slice(&[
            0xE0 | (c >> 12) as u8,
            0x80 | ((c >> 6) & 0x3F) as u8,
            0x80 | (c & 0x3F) as u8,
        ]),
        _ => out.extend_from_slice(&[
            0xF0 | (c >> 18) as u8,
            0x80 | ((c >> 12) & 0x3F) as u8,
            0x80 | ((c >> 6) & 0x3F) as u8,
            0x80 | (c & 0x3F) as u8,
        ]),
    }
}

/// The code point whose encoding starts at `b[i]` and the encoding's length, for text that
/// [`valid_surrogatepass`] accepted (or built by [`push_code_point`]).
fn code_point_at(b: &[u8], i: usize) -> Option<(u32, usize)> {
    let lead = *b.get(i)?;
    let (n, init) = match lead {
        0..=0x7F => return Some((u32::from(lead), 1)),
        0xC0..=0xDF => (2, lead & 0x1F),
        0xE0..=0xEF => (3, lead & 0x0F),
        _ => (4, lead & 0x07),
    };
    let mut c = u32::from(init);
    for k in 1..n {
        c = (c << 6) | u32::from(b.get(i + k)? & 0x3F);
    }
    Some((c, n))
}

impl From<&str> for PyStr {
    fn from(s: &str) -> Self {
        PyStr::from_str(s)
    }
}

/// A Python `dict` with `str` keys, in insertion order.
///
/// Inserting a key that is already present keeps the key at its first position and replaces the
/// value, like Python's `d[k] = v`; so `loads` of an object with duplicate keys keeps the last
/// value at the position of the first occurrence. Equality (`==`) is structural: the same entries
/// in the same order (Python's `dict ==` ignores order).
#[derive(Clone, Default)]
pub struct PyDict {
    entries: Vec<(PyStr, PyValue)>,
    /// Position of each key, kept only once the dict is large: the records and envelopes this
    /// crate reads have about ten keys, where a scan is cheaper than hashing, while a hostile
    /// object with many thousands of keys must not make parsing quadratic.
    index: Option<HashMap<PyStr, usize>>,
}

/// Entries at which a dict starts keeping an index of its keys.
const INDEX_FROM: usize = 16;

impl PyDict {
    /// An empty dict.
    pub fn new() -> Self {
        PyDict::default()
    }

    fn position(&self, k: &PyStr) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(k).copied(),
            None => self.entries.iter().position(|(key, _)| key == k),
        }
    }

    /// `d[k] = v`: a new key goes last; an existing key keeps its position and takes `v`.
    pub fn insert(&mut self, k: PyStr, v: PyValue) {
        if let Some(i) = self.position(&k) {
            self.entries[i].1 = v;
            return;
        }
        if let Some(index) = &mut self.index {
            index.insert(k.clone(), self.entries.len());
        }
        self.entries.push((k, v));
        if self.index.is_none() && self.entries.len() >= INDEX_FROM {
            let index = self
                .entries
                .iter()
                .enumerate()
                .map(|(i, (key, _))| (key.clone(), i))
                .collect();
            self.index = Some(index);
        }
        assert!(
            self.index.as_ref().is_none_or(|i| i.len() == self.entries.len()),
            "the index holds every key"
        );
    }

    /// `d.get(k)` for a key given as Rust text.
    pub fn get(&self, k: &str) -> Option<&PyValue> {
        match &self.index {
            Some(_) => self.get_key(&PyStr::from_str(k)),
            None => self.entries.iter().find(|(key, _)| key.eq_str(k)).map(|(_, v)| v),
        }
    }

    /// `d.get(k)` for a key given as a Python `str` (which may hold lone surrogates).
    pub fn get_key(&self, k: &PyStr) -> Option<&PyValue> {
        self.position(k).map(|i| &self.entries[i].1)
    }

    /// The entries in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = &(PyStr, PyValue)> {
        self.entries.iter()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the dict is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl fmt::Debug for PyDict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(k, v)| (k, v)))
            .finish()
    }
}

impl PartialEq for PyDict {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl FromIterator<(PyStr, PyValue)> for PyDict {
    fn from_iter<I: IntoIterator<Item = (PyStr, PyValue)>>(iter: I) -> Self {
        let mut d = PyDict::new();
        for (k, v) in iter {
            d.insert(k, v);
        }
        d
    }
}

/// A value as `json.loads` returns it.
#[derive(Clone, Debug, PartialEq)]
pub enum PyValue {
    /// `None` (JSON `null`).
    Null,
    /// `True` / `False`.
    Bool(bool),
    /// An `int`, as the decimal text `str(int)` prints (`-0` is `0`, no leading zeros).
    Int(String),
    /// A `float` (JSON numbers with a fraction or exponent, and `NaN`/`Infinity`/`-Infinity`).
    Float(f64),
    /// A `str`.
    Str(PyStr),
    /// A `list`.
    List(Vec<PyValue>),
    /// A `dict`.
    Dict(PyDict),
}

impl PyValue {
    /// Python truthiness (`bool(v)`): `None`, `False`, `0`, `0.0`, `-0.0`, `""`, `[]` and `{}`
    /// are falsy, everything else (including `NaN`) is truthy.
    pub fn is_truthy(&self) -> bool {
        match self {
            PyValue::Null => false,
            PyValue::Bool(b) => *b,
            PyValue::Int(s) => s != "0",
            PyValue::Float(f) => *f != 0.0,
            PyValue::Str(s) => !s.is_empty(),
            PyValue::List(l) => !l.is_empty(),
            PyValue::Dict(d) => !d.is_empty(),
        }
    }

    /// A `str` value with the characters of `s`.
    pub fn str(s: &str) -> Self {
        PyValue::Str(PyStr::from_str(s))
    }

    /// The dict, if this is one.
    pub fn as_dict(&self) -> Option<&PyDict> {
        match self {
            PyValue::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&PyStr> {
        match self {
            PyValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Whether this is `None`.
    pub fn is_null(&self) -> bool {
        matches!(self, PyValue::Null)
    }

    /// Python's type name (`NoneType`, `bool`, `int`, `float`, `str`, `list`, `dict`).
    pub fn type_name(&self) -> &'static str {
        match self {
            PyValue::Null => "NoneType",
            PyValue::Bool(_) => "bool",
            PyValue::Int(_) => "int",
            PyValue::Float(_) => "float",
            PyValue::Str(_) => "str",
            PyValue::List(_) => "list",
            PyValue::Dict(_) => "dict",
        }
    }
}

/// Why [`loads`] rejected its input; each variant corresponds to a Python exception.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JsonError {
    /// The bytes are not UTF-8 (with encoded surrogates allowed): Python's `UnicodeDecodeError`.
    NotUtf8,
    /// Python's `json.JSONDecodeError`: its `msg`, and its `pos` in code points of the decoded
    /// text (a leading BOM not counted).
    Syntax {
        /// Code point index where Python reports the error.
        pos: usize,
        /// Python's message, e.g. `Expecting value`.
        msg: String,
    },
    /// An int literal with more than 4300 digits: Python's `ValueError` from the int max str
    /// digits limit.
    IntTooLong,
    /// Nesting deeper than [`MAX_DEPTH`]: stands for Python's `RecursionError`.
    TooDeep,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonError::NotUtf8 => f.write_str("body is not valid UTF-8"),
            JsonError::Syntax { pos, msg } => write!(f, "{msg} (char {pos})"),
            JsonError::IntTooLong => write!(
                f,
                "integer literal exceeds the limit of {INT_MAX_STR_DIGITS} digits"
            ),
            JsonError::TooDeep => write!(f, "JSON nested deeper than {MAX_DEPTH} levels"),
        }
    }
}

impl std::error::Error for JsonError {}

/// `json.loads(bytes)`: parse JSON the way CPython 3.11 does (see the module doc).
pub fn loads(bytes: &[u8]) -> Result<PyValue, JsonError> {
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if !valid_surrogatepass(text) {
        return Err(JsonError::NotUtf8);
    }
    let p = Parser { s: text };
    let parsed = p.scan_once(p.skip_ws(0)).and_then(|(value, end)| {
        let end = p.skip_ws(end);
        if end == text.len() {
            Ok(value)
        } else {
            Err(syntax("Extra data", end))
        }
    });
    // The parser counts in bytes; Python reports positions in code points of the decoded text.
    parsed.map_err(|e| match e {
        JsonError::Syntax { pos, msg } => JsonError::Syntax {
            pos: code_point_count(&text[..pos]),
            msg,
        },
        other => other,
    })
}

/// `json.dumps(v, sort_keys=sort_keys)`: separators `", "` and `": "`, `ensure_ascii=True`.
pub fn dumps(v: &PyValue, sort_keys: bool) -> String {
    let mut out = String::new();
    dump_with(&mut out, v, sort_keys, ", ", ": ");
    out
}

/// [`dumps`] written onto the end of `out` (for callers that build a larger text around it).
pub fn dumps_into(out: &mut String, v: &PyValue, sort_keys: bool) {
    dump_with(out, v, sort_keys, ", ", ": ");
}

/// `json.dumps(s)` for a Python `str` with the characters of `s`, written onto the end of `out`.
pub fn dumps_str_into(out: &mut String, s: &str) {
    out.push('"');
    let mut rest = s;
    while !rest.is_empty() {
        // The run of characters written as they are, copied at once (most strings are one).
        let run = plain_prefix(rest.as_bytes(), Stop::Escaped);
        out.push_str(&rest[..run]);
        rest = &rest[run..];
        if let Some(c) = rest.chars().next() {
            write_escaped(out, u32::from(c));
            rest = &rest[c.len_utf8()..];
        }
    }
    out.push('"');
}

/// `json.dumps(v, sort_keys=sort_keys, separators=(",", ":"))`, `ensure_ascii=True`.
pub fn dumps_compact(v: &PyValue, sort_keys: bool) -> String {
    let mut out = String::new();
    dump_with(&mut out, v, sort_keys, ",", ":");
    out
}

/// Python's `repr(float)` as `json.dumps` writes it: shortest round-trip digits, exponent form
/// (`1e-05`, `1.5e+16`) when the decimal exponent is below -4 or at least 16, otherwise positional
/// with at least one fractional digit (`1.0`, `0.0001`); `NaN`, `Infinity`, `-Infinity`.
pub fn float_repr(f: f64) -> String {
    let mut out = String::with_capacity(24);
    float_repr_into(&mut out, f);
    out
}

/// [`float_repr`] written onto the end of `out`.
pub fn float_repr_into(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str("NaN");
        return;
    }
    if f.is_infinite() {
        out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" });
        return;
    }
    let mut buf = [0u8; 24];
    let (n, exp) = shortest_digits(f.abs(), &mut buf);
    // ASCII digits only: `shortest_digits` writes nothing else.
    let digits = std::str::from_utf8(&buf[..n]).unwrap_or("0");
    if f.is_sign_negative() {
        out.push('-');
    }
    if !(-4..16).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let a = exp.unsigned_abs();
        if a < 10 {
            out.push('0');
        }
        let mut itoa = [0u8; 3];
        let mut k = itoa.len();
        let mut rest = a;
        loop {
            k -= 1;
            itoa[k] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        out.push_str(std::str::from_utf8(&itoa[k..]).unwrap_or("0"));
    } else if exp >= 0 {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
            out.push_str(".0");
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    } else {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(digits);
    }
}

/// The shortest digits that round-trip to `a` (finite, non-negative), written to the start of
/// `buf` (their count is returned), and the decimal exponent of the first digit, chosen as
/// CPython's `repr` (David Gay's dtoa, mode 0) chooses them: the shortest digits that round-trip,
/// the closest to the exact value among those, and on an exact tie between two of them
/// (722027621152215.25 = `722027621152215.2` or `.3`) the even last digit.
///
/// Ryū (the `ryu` crate) makes exactly that choice, ties to even included, at a fraction of the
/// cost of Rust's `{:e}` (which rounds such ties up and so needed an exact check on every odd last
/// digit); its text (`1.2345e-7`, `123.45`, `1e16`) is read back into digits and exponent here.
/// The former `{:e}`-based digits are kept in the tests as the reference this is held to.
fn shortest_digits(a: f64, buf: &mut [u8; 24]) -> (usize, i32) {
    let mut ryu = ryu::Buffer::new();
    let text = ryu.format_finite(a).as_bytes();
    let (mantissa, exp) = match text.iter().position(|&b| b == b'e') {
        Some(i) => (&text[..i], parse_exp(&text[i + 1..])),
        None => (text, 0),
    };
    // The mantissa's digits with the point dropped (`point`: how many came before it), leading
    // and trailing zeros left out; the first kept digit's place gives the exponent.
    let point = mantissa.iter().position(|&b| b == b'.').unwrap_or(mantissa.len());
    let mut n = 0;
    let mut first_at = None;
    let mut seen = 0usize;
    for &b in mantissa {
        if b == b'.' {
            continue;
        }
        if first_at.is_none() && b == b'0' {
            seen += 1;
            continue;
        }
        first_at.get_or_insert(seen);
        buf[n] = b;
        n += 1;
        seen += 1;
    }
    let Some(first_at) = first_at else {
        buf[0] = b'0';
        return (1, 0);
    };
    while n > 1 && buf[n - 1] == b'0' {
        n -= 1;
    }
    (n, point as i32 - 1 - first_at as i32 + exp)
}

/// A decimal exponent as Ryū writes it (`16`, `-7`).
fn parse_exp(text: &[u8]) -> i32 {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let magnitude = digits.iter().fold(0i32, |acc, &d| acc * 10 + i32::from(d - b'0'));
    if negative {
        -magnitude
    } else {
        magnitude
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// Whether `bytes.decode("utf-8", "surrogatepass")` accepts `b`: strict UTF-8, except that the
/// three-byte encodings of surrogates (`ED A0 80`..=`ED BF BF`) are lone surrogate code points.
/// The text is then parsed as it is: [`PyStr`] holds code points in that same encoding.
fn valid_surrogatepass(b: &[u8]) -> bool {
    // Almost every body is plain UTF-8, which the standard library checks fastest.
    if std::str::from_utf8(b).is_ok() {
        return true;
    }
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c < 0x80 {
            i += 1;
            continue;
        }
        let (extra, min, init) = match c {
            0xC2..=0xDF => (1, 0x80, c & 0x1F),
            0xE0..=0xEF => (2, 0x800, c & 0x0F),
            0xF0..=0xF4 => (3, 0x1_0000, c & 0x07),
            _ => return false,
        };
        let mut cp = u32::from(init);
        for k in 1..=extra {
            match b.get(i + k) {
                Some(&cc) if is_continuation(cc) => cp = (cp << 6) | u32::from(cc & 0x3F),
                _ => return false,
            }
        }
        if cp < min || cp > 0x10_FFFF {
            return false;
        }
        i += extra + 1;
    }
    true
}

// ---------------------------------------------------------------------------------------------
// Parsing (a transcription of CPython 3.11 Modules/_json.c, scan_once_unicode and friends)

fn syntax(msg: &str, pos: usize) -> JsonError {
    JsonError::Syntax {
        pos,
        msg: msg.to_string(),
    }
}

fn is_ws(c: u8) -> bool {
    matches!(c, 0x20 | 0x09 | 0x0A | 0x0D)
}

fn hex_val(c: u8) -> Option<u32> {
    char::from(c).to_digit(16).filter(|_| c.is_ascii())
}

/// The parser walks the text's bytes: every character it branches on is ASCII, and a multi-byte
/// character only ever sits inside a string, copied as it is. Error positions are byte indices
/// here, turned into code point indices by [`loads`].
struct Parser<'a> {
    s: &'a [u8],
}

/// A container whose closing bracket has not been seen yet.
enum Open {
    List(Vec<PyValue>),
    /// The dict so far and the key whose value is being parsed.
    Dict(PyDict, PyStr),
}

impl Parser<'_> {
    fn at(&self, i: usize) -> Option<u8> {
        self.s.get(i).copied()
    }

    fn skip_ws(&self, mut i: usize) -> usize {
        while self.at(i).is_some_and(is_ws) {
            i += 1;
        }
        i
    }

    fn has_literal(&self, i: usize, lit: &str) -> bool {
        lit.bytes().enumerate().all(|(k, b)| self.at(i + k) == Some(b))
    }

    /// One JSON value starting exactly at `idx`; returns it and the index just after it.
    ///
    /// Iterative (an explicit stack of open containers) so that neither a deep input nor a small
    /// thread stack in a debug build can overflow the stack. Error positions and the order in
    /// which errors are found follow CPython's recursive scanner.
    fn scan_once(&self, mut idx: usize) -> Result<(PyValue, usize), JsonError> {
        let mut stack: Vec<Open> = Vec::new();
        loop {
            // Parse the value starting at `idx`: a scalar, an empty container, or the opening of
            // a non-empty one (then go on with its first element).
            let Some(c) = self.at(idx) else {
                return Err(syntax("Expecting value", idx));
            };
            let mut value = match c {
                0x22 => {
                    let (s, end) = self.scan_string(idx + 1)?;
                    idx = end;
                    PyValue::Str(s)
                }
                0x7B | 0x5B => {
                    if stack.len() >= MAX_DEPTH {
                        return Err(JsonError::TooDeep);
                    }
                    let inner = self.skip_ws(idx + 1);
                    if c == 0x7B {
                        if self.at(inner) == Some(0x7D) {
                            idx = inner + 1;
                            PyValue::Dict(PyDict::new())
                        } else {
                            let (key, after) = self.object_key(inner)?;
                            stack.push(Open::Dict(PyDict::new(), key));
                            idx = after;
                            continue;
                        }
                    } else if self.at(inner) == Some(0x5D) {
                        idx = inner + 1;
                        PyValue::List(Vec::new())
                    } else {
                        stack.push(Open::List(Vec::new()));
                        idx = inner;
                        continue;
                    }
                }
                _ => {
                    let (v, end) = self.scalar(idx)?;
                    idx = end;
                    v
                }
            };
            // Hand the finished value to the innermost open container; close containers as
            // long as their closing bracket follows.
            loop {
                let Some(top) = stack.last_mut() else {
                    return Ok((value, idx));
                };
                idx = self.skip_ws(idx);
                let (closer, is_dict) = match top {
                    Open::List(items) => {
                        items.push(value);
                        (0x5D, false)
                    }
                    Open::Dict(d, key) => {
                        d.insert(std::mem::take(key), value);
                        (0x7D, true)
                    }
                };
                match self.at(idx) {
                    Some(x) if x == closer => {
                        idx += 1;
                        value = match stack.pop() {
                            Some(Open::List(items)) => PyValue::List(items),
                            Some(Open::Dict(d, _)) => PyValue::Dict(d),
                            None => PyValue::Null, // unreachable: `top` was on the stack
                        };
                    }
                    Some(0x2C) => {
                        idx = self.skip_ws(idx + 1);
                        if is_dict {
                            let (key, after) = self.object_key(idx)?;
                            if let Some(Open::Dict(_, k)) = stack.last_mut() {
                                *k = key;
                            }
                            idx = after;
                        }
                        break;
                    }
                    _ => return Err(syntax("Expecting ',' delimiter", idx)),
                }
            }
        }
    }

    /// `"key" :` starting at `idx` (whitespace before it already skipped); returns the key and
    /// the index of the value (whitespace after the colon skipped).
    fn object_key(&self, idx: usize) -> Result<(PyStr, usize), JsonError> {
        if self.at(idx) != Some(0x22) {
            return Err(syntax("Expecting property name enclosed in double quotes", idx));
        }
        let (key, after_key) = self.scan_string(idx + 1)?;
        let idx = self.skip_ws(after_key);
        if self.at(idx) != Some(0x3A) {
            return Err(syntax("Expecting ':' delimiter", idx));
        }
        Ok((key, self.skip_ws(idx + 1)))
    }

    /// A literal (`null`, `true`, `false`, `NaN`, `Infinity`, `-Infinity`) or a number.
    fn scalar(&self, idx: usize) -> Result<(PyValue, usize), JsonError> {
        for (lit, v) in [
            ("null", PyValue::Null),
            ("true", PyValue::Bool(true)),
            ("false", PyValue::Bool(false)),
            ("NaN", PyValue::Float(f64::NAN)),
            ("Infinity", PyValue::Float(f64::INFINITY)),
            ("-Infinity", PyValue::Float(f64::NEG_INFINITY)),
        ] {
            if self.has_literal(idx, lit) {
                return Ok((v, idx + lit.len()));
            }
        }
        self.match_number(idx)
    }

    fn is_digit(&self, i: usize) -> bool {
        self.at(i).is_some_and(|c| (0x30..=0x39).contains(&c))
    }

    fn match_number(&self, start: usize) -> Result<(PyValue, usize), JsonError> {
        let mut idx = start;
        if self.at(idx) == Some(0x2D) {
            idx += 1;
        }
        match self.at(idx) {
            Some(0x31..=0x39) => {
                idx += 1;
                while self.is_digit(idx) {
                    idx += 1;
                }
            }
            Some(0x30) => idx += 1,
            _ => return Err(syntax("Expecting value", start)),
        }
        let int_end = idx;
        let mut is_float = false;
        if self.at(idx) == Some(0x2E) && self.is_digit(idx + 1) {
            is_float = true;
            idx += 2;
            while self.is_digit(idx) {
                idx += 1;
            }
        }
        if matches!(self.at(idx), Some(0x65 | 0x45)) {
            let mut e = idx + 1;
            if matches!(self.at(e), Some(0x2B | 0x2D)) {
                e += 1;
            }
            if self.is_digit(e) {
                while self.is_digit(e) {
                    e += 1;
                }
                is_float = true;
                idx = e;
            }
        }
        // Everything in start..idx is ASCII (digits, sign, point, exponent).
        let mut text = String::with_capacity(idx - start);
        text.extend(self.s[start..idx].iter().map(|&c| char::from(c)));
        if is_float {
            // Rust's parse is correctly rounded and gives ±inf on overflow, like float(str).
            let f = text
                .parse::<f64>()
                .map_err(|_| syntax("Expecting value", start))?;
            return Ok((PyValue::Float(f), idx));
        }
        let digits = int_end - start - usize::from(text.starts_with('-'));
        if digits > INT_MAX_STR_DIGITS {
            return Err(JsonError::IntTooLong);
        }
        let text = if text == "-0" { "0".to_string() } else { text };
        Ok((PyValue::Int(text), idx))
    }

    /// A string whose opening quote is at `begin - 1`; returns it and the index after the
    /// closing quote.
    fn scan_string(&self, begin: usize) -> Result<(PyStr, usize), JsonError> {
        let quote = begin - 1;
        let len = self.s.len();
        let mut out = Vec::new();
        let mut next = begin;
        // The first run sized exactly up front (the whole string, most often): a first
        // `extend_from_slice` on an empty vector takes the slow path that grows it.
        let first = begin.min(len) + plain_prefix(&self.s[begin.min(len)..], Stop::Special);
        if self.at(first) == Some(b'"') {
            let text = self.s[begin.min(len)..first].to_vec();
            return Ok((PyStr(text), first + 1));
        }
        loop {
            // The run of plain characters up to the next quote, backslash or control character,
            // copied at once (most strings are one such run: one allocation of the right size).
            let run = next.min(len) + plain_prefix(&self.s[next.min(len)..], Stop::Special);
            out.extend_from_slice(&self.s[next.min(len)..run]);
            next = run;
            let Some(c) = self.at(next) else {
                return Err(syntax("Unterminated string starting at", quote));
            };
            if c <= 0x1F {
                return Err(syntax("Invalid control character at", next));
            }
            next += 1;
            if c == 0x22 {
                return Ok((PyStr(out), next));
            }
            // A backslash at next - 1.
            let Some(e) = self.at(next) else {
                return Err(syntax("Unterminated string starting at", quote));
            };
            if e != 0x75 {
                let ch = match e {
                    0x22 | 0x5C | 0x2F => e,
                    0x62 => 0x08,
                    0x66 => 0x0C,
                    0x6E => 0x0A,
                    0x72 => 0x0D,
                    0x74 => 0x09,
                    _ => return Err(syntax("Invalid \\escape", next - 1)),
                };
                out.push(ch);
                next += 1;
                continue;
            }
            // \uXXXX: the 'u' is at `next`; CPython wants at least one more character after
            // the four hex digits (the string must still be closed).
            let u = next;
            if u + 5 >= len {
                return Err(syntax("Invalid \\uXXXX escape", u));
            }
            let c1 = self
                .hex4(u + 1)
                .ok_or_else(|| syntax("Invalid \\uXXXX escape", u))?;
            next = u + 5;
            let mut ch = c1;
            if (0xD800..=0xDBFF).contains(&c1)
                && next + 6 < len
                && self.at(next) == Some(0x5C)
                && self.at(next + 1) == Some(0x75)
            {
                let u2 = next + 1;
                let c2 = self
                    .hex4(u2 + 1)
                    .ok_or_else(|| syntax("Invalid \\uXXXX escape", u2))?;
                if (0xDC00..=0xDFFF).contains(&c2) {
                    ch = 0x1_0000 + ((c1 - 0xD800) << 10) + (c2 - 0xDC00);
                    next += 6;
                }
            }
            push_code_point(&mut out, ch);
        }
    }

    fn hex4(&self, i: usize) -> Option<u32> {
        let mut v = 0;
        for k in 0..4 {
            v = (v << 4) | hex_val(self.at(i + k)?)?;
        }
        Some(v)
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding (CPython 3.11 Modules/_json.c, encoder_listencode_obj with ensure_ascii=True)

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_u_escape(out: &mut String, c: u32) {
    out.push_str("\\u");
    for shift in [12, 8, 4, 0] {
        out.push(char::from(HEX[((c >> shift) & 0xF) as usize]));
    }
}

fn write_str(out: &mut String, s: &PyStr) {
    out.push('"');
    let b = &s.0;
    let mut i = 0;
    while i < b.len() {
        // The run of characters written as they are, copied at once (most strings are one).
        let run = i + plain_prefix(&b[i..], Stop::Escaped);
        // Printable ASCII only, so always UTF-8.
        out.push_str(std::str::from_utf8(&b[i..run]).unwrap_or_default());
        i = run;
        if let Some((c, n)) = code_point_at(b, i) {
            write_escaped(out, c);
            i += n;
        }
    }
    out.push('"');
}

/// Which bytes end a run of text that is copied as it is ([`plain_prefix`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// What `json.dumps` escapes: all but printable ASCII other than `"` and `\` ([`is_plain`]).
    Escaped,
    /// What a JSON string's scanner must look at: `"`, `\` and control characters (below
    /// U+0020); every other byte, those of multi-byte characters too, is copied as it is.
    Special,
    /// What a C scanner of NUL-terminated JSON (lua-cjson's) stops at in a string: `"`, `\`
    /// and NUL; raw control characters are copied.
    QuoteBackslashNul,
}

/// Whether the byte `c` ends a run under `stop`.
fn stops(c: u8, stop: Stop) -> bool {
    match stop {
        Stop::Escaped => !is_plain(u32::from(c)),
        Stop::Special => c == b'"' || c == b'\\' || c < 0x20,
        Stop::QuoteBackslashNul => c == b'"' || c == b'\\' || c == 0,
    }
}

/// How many bytes at the start of `b` do not end a run under `stop`.
///
/// Eight bytes at a time: strings are mostly long runs (ids, timestamps), and this scan is most
/// of what reading and writing them costs. Each test below is exact as to whether *some* byte of
/// the word matches (borrows only spill above a byte that truly matches), so a word that passes
/// holds none, and a word that fails is searched byte by byte.
pub fn plain_prefix(b: &[u8], stop: Stop) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    // Some byte of `x` is zero.
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH != 0;
    // Some byte of `x` is below `n` (n <= 0x80).
    let has_below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH != 0;
    let below = if stop == Stop::QuoteBackslashNul { 1 } else { 0x20 };
    let mut i = 0;
    while let Some(word) = b.get(i..i + 8) {
        let x = u64::from_ne_bytes(word.try_into().unwrap_or([0; 8]));
        let special = has_below(x, below)
            || has_zero(x ^ (ONES * u64::from(b'"')))
            || has_zero(x ^ (ONES * u64::from(b'\\')));
        // 0x7F and every byte from 0x80 up: adding one sets (or keeps) the high bit.
        let beyond_ascii = stop == Stop::Escaped && (x.wrapping_add(ONES) | x) & HIGH != 0;
        if special || beyond_ascii {
            break;
        }
        i += 8;
    }
    i + b[i..].iter().position(|&c| stops(c, stop)).unwrap_or(b.len() - i)
}

/// Whether `json.dumps` (`ensure_ascii=True`) writes the code point `c` as it is: printable
/// ASCII other than the quote and the backslash.
fn is_plain(c: u32) -> bool {
    (0x20..=0x7E).contains(&c) && c != 0x22 && c != 0x5C
}

/// The escape `json.dumps` writes for a code point that is not plain.
fn write_escaped(out: &mut String, c: u32) {
    debug_assert!(!is_plain(c));
    match c {
        0x22 => out.push_str("\\\""),
        0x5C => out.push_str("\\\\"),
        0x0A => out.push_str("\\n"),
        0x0D => out.push_str("\\r"),
        0x09 => out.push_str("\\t"),
        0x08 => out.push_str("\\b"),
        0x0C => out.push_str("\\f"),
        0x1_0000.. => {
            let v = c.min(0x10_FFFF) - 0x1_0000;
            push_u_escape(out, 0xD800 | (v >> 10));
            push_u_escape(out, 0xDC00 | (v & 0x3FF));
        }
        _ => push_u_escape(out, c),
    }
}

enum Frame<'a> {
    List(std::slice::Iter<'a, PyValue>),
    Dict(std::vec::IntoIter<&'a (PyStr, PyValue)>),
}

fn dump_with(out: &mut String, v: &PyValue, sort_keys: bool, item_sep: &str, key_sep: &str) {
    let mut stack: Vec<(Frame<'_>, bool)> = Vec::new();
    let mut pending = Some(v);
    loop {
        if let Some(v) = pending.take() {
            match v {
                PyValue::Null => out.push_str("null"),
                PyValue::Bool(true) => out.push_str("true"),
                PyValue::Bool(false) => out.push_str("false"),
                PyValue::Int(s) => out.push_str(s),
                PyValue::Float(f) => float_repr_into(out, *f),
                PyValue::Str(s) => write_str(out, s),
                PyValue::List(l) if l.is_empty() => out.push_str("[]"),
                PyValue::Dict(d) if d.is_empty() => out.push_str("{}"),
                PyValue::List(l) => {
                    out.push('[');
                    stack.push((Frame::List(l.iter()), true));
                }
                PyValue::Dict(d) => {
                    out.push('{');
                    let mut items: Vec<&(PyStr, PyValue)> = d.iter().collect();
                    if sort_keys {
                        items.sort_by(|a, b| a.0.cmp(&b.0));
                    }
                    stack.push((Frame::Dict(items.into_iter()), true));
                }
            }
        }
        let Some((frame, first)) = stack.last_mut() else {
            return;
        };
        let sep = if *first { "" } else { item_sep };
        match frame {
            Frame::List(it) => match it.next() {
                Some(child) => {
                    out.push_str(sep);
                    pending = Some(child);
                }
                None => {
                    out.push(']');
                    stack.pop();
                    continue;
                }
            },
            Frame::Dict(it) => match it.next() {
                Some((k, child)) => {
                    out.push_str(sep);
                    write_str(out, k);
                    out.push_str(key_sep);
                    pending = Some(child);
                }
                None => {
                    out.push('}');
                    stack.pop();
                    continue;
                }
            },
        }
        *first = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The former digits, from Rust's `{:e}` with CPython's tie-break applied by hand (checked
    // against CPython by the differential tests while it was in use): the reference the Ryū
    // digits are held to.
    /// Splits Rust's `{:e}` text (`"1.2345e-5"`) into its digits (`"12345"`) and exponent (`-5`).
    fn split_sci(sci: &str) -> (String, i32) {
        let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
        let digits = mantissa.chars().filter(char::is_ascii_digit).collect();
        (digits, exp.parse().unwrap_or(0))
    }

    /// The shortest digits that round-trip to `a` (finite, non-negative) and the decimal exponent of
    /// the first digit, chosen as CPython's `repr` (David Gay's dtoa, mode 0) chooses them.
    ///
    /// Rust's `{:e}` already gives the shortest round-trip digits closest to the exact value; the one
    /// difference is an exact tie between two shortest candidates (the exact value ends in a 5 just
    /// past the last digit, e.g. 722027621152215.25 = `722027621152215.2` or `.3`): dtoa takes the
    /// even last digit, Rust rounds the tie up. Such ties are detected exactly and flipped.
    fn reference_shortest_digits(a: f64) -> (String, i32) {
        let (digits, exp) = split_sci(&format!("{a:e}"));
        let last_odd = digits.bytes().last().is_some_and(|d| (d - b'0') & 1 == 1);
        if !last_odd {
            return (digits, exp);
        }
        let n = digits.len();
        // Cheap filter: a tie needs digit n+1 of the exact value to be a 5.
        let (rounded, _) = split_sci(&format!("{a:.n$e}"));
        if rounded.bytes().last() != Some(b'5') {
            return (digits, exp);
        }
        // The exact decimal value (a double has at most 767 significant digits).
        let (exact, exact_exp) = split_sci(&format!("{a:.780e}"));
        let exact = exact.trim_end_matches('0');
        if exact_exp != exp || exact.len() != n + 1 || !exact.ends_with('5') {
            return (digits, exp);
        }
        let lo = &exact[..n];
        let (alt, alt_exp) = if digits == lo {
            increment_digits(lo, exp)
        } else {
            (lo.to_string(), exp)
        };
        let alt_even = alt.bytes().last().is_some_and(|d| (d - b'0') & 1 == 0);
        let round_trips = format!("{alt}e{}", alt_exp - (alt.len() as i32 - 1)).parse::<f64>() == Ok(a);
        if alt_even && round_trips {
            (alt, alt_exp)
        } else {
            (digits, exp)
        }
    }

    /// `digits` (scientific, exponent `exp`) plus one unit in the last place, trailing zeros removed.
    fn increment_digits(digits: &str, exp: i32) -> (String, i32) {
        let mut d: Vec<u8> = digits.bytes().collect();
        let mut i = d.len();
        loop {
            if i == 0 {
                d.insert(0, b'1');
                return finish_digits(d, exp + 1);
            }
            i -= 1;
            if d[i] == b'9' {
                d[i] = b'0';
            } else {
                d[i] += 1;
                return finish_digits(d, exp);
            }
        }
    }

    fn finish_digits(mut d: Vec<u8>, exp: i32) -> (String, i32) {
        while d.len() > 1 && d.last() == Some(&b'0') {
            d.pop();
        }
        (String::from_utf8(d).unwrap_or_default(), exp)
    }

    /// Ryū's digits and exponent equal the former `{:e}`-based ones (themselves checked against
    /// CPython) on random bit patterns, on random decimals of every magnitude and on values with
    /// few fractional bits at the magnitudes where exact ties between two shortest candidates
    /// happen (`722027621152215.25`).
    #[test]
    fn ryu_digits_equal_the_reference_digits() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5EED);
        let mut values: Vec<f64> = vec![0.0, -0.0, 5e-324, f64::MAX, f64::MIN_POSITIVE, 1.0, 0.1];
        for _ in 0..200_000 {
            values.push(f64::from_bits(rng.gen()));
            values.push(rng.gen_range(0.0..1.0) * 10f64.powi(rng.gen_range(-30..30)));
            let whole: u64 = rng.gen_range(1..(1u64 << 53));
            let quarters = [0.125, 0.25, 0.5, 0.75, 0.875][rng.gen_range(0..5)];
            values.push((whole >> rng.gen_range(0..12)) as f64 + quarters);
            values.push(((whole as f64) * 2f64.powi(rng.gen_range(1..12))).trunc());
        }
        let mut ties = 0;
        for &f in &values {
            if !f.is_finite() {
                continue;
            }
            let (want, want_exp) = reference_shortest_digits(f.abs());
            let mut buf = [0u8; 24];
            let (n, exp) = shortest_digits(f.abs(), &mut buf);
            let got = std::str::from_utf8(&buf[..n]).expect("ascii digits");
            assert_eq!(
                (got, exp),
                (want.as_str(), want_exp),
                "{f:e} ({:#x})",
                f.to_bits()
            );
            if split_sci(&format!("{:e}", f.abs())) != (want, want_exp) {
                ties += 1;
            }
        }
        assert!(ties > 0, "some exact ties were tried");
    }

    /// The index invariant (one position per entry, once indexed) is checked in every build:
    /// an index that lost its entries is caught at the next insert.
    #[test]
    #[should_panic(expected = "the index holds every key")]
    fn an_index_out_of_step_with_the_entries_is_caught() {
        let mut d = PyDict::new();
        for i in 0..INDEX_FROM {
            d.insert(PyStr::from_str(&format!("k{i}")), PyValue::Null);
        }
        d.index = Some(HashMap::new());
        d.insert(PyStr::from_str("new"), PyValue::Null);
    }

    fn rt(input: &[u8]) -> String {
        dumps(&loads(input).unwrap(), true)
    }

    fn err(input: &[u8]) -> JsonError {
        loads(input).unwrap_err()
    }

    fn syn(msg: &str, pos: usize) -> JsonError {
        syntax(msg, pos)
    }

    #[test]
    // The tie literals below are exact binary values, written with all their digits on purpose.
    #[allow(clippy::excessive_precision)]
    fn float_repr_matches_python() {
        // Expected values printed by CPython 3.11.7 `json.dumps(f)`.
        let cases: &[(f64, &str)] = &[
            (1e-05, "1e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1234567890123456.0, "1234567890123456.0"),
            (9999999999999998.0, "9999999999999998.0"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (1.0, "1.0"),
            (100.0, "100.0"),
            (0.5, "0.5"),
            (0.1, "0.1"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (1e22, "1e+22"),
            (1e100, "1e+100"),
            (2.5e-5, "2.5e-05"),
            (0.00012345, "0.00012345"),
            (1.2345e-300, "1.2345e-300"),
            (1e23, "1e+23"),
            (9.223372036854776e18, "9.223372036854776e+18"),
            (0.30000000000000004, "0.30000000000000004"),
            (1.5e-323, "1.5e-323"),
            // Exact ties between two shortest candidates: CPython takes the even digit.
            (722027621152215.25, "722027621152215.2"),
            (87027443220024.125, "87027443220024.12"),
            (-9755197707097.3125, "-9755197707097.312"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for &(f, want) in cases {
            assert_eq!(float_repr(f), want, "{f:e}");
        }
    }

    #[test]
    fn float_parsing() {
        assert_eq!(rt(b"1e400"), "Infinity");
        assert_eq!(rt(b"-1e400"), "-Infinity");
        assert_eq!(rt(b"1e-400"), "0.0");
        assert_eq!(rt(b"-0.0"), "-0.0");
        assert_eq!(rt(b"-0e5"), "-0.0");
        assert_eq!(rt(b"1E+05"), "100000.0");
        assert_eq!(rt(b"1e99999999999999999999999"), "Infinity");
        assert_eq!(rt(b"123.456e300"), "1.23456e+302");
        assert_eq!(rt(b"[NaN, Infinity, -Infinity]"), "[NaN, Infinity, -Infinity]");
        assert_eq!(rt(b"4.9406564584124654e-324"), "5e-324");
    }

    #[test]
    fn ints() {
        assert_eq!(loads(b"-0").unwrap(), PyValue::Int("0".into()));
        assert_eq!(rt(b"-0"), "0");
        let big = "-123456789012345678901234567890123456789012345678901234567890";
        assert_eq!(rt(big.as_bytes()), big);
        // 4300 digits are accepted (the sign does not count), 4301 are not.
        let ok = "1".repeat(4300);
        assert_eq!(rt(ok.as_bytes()), ok);
        let neg = format!("-{ok}");
        assert_eq!(rt(neg.as_bytes()), neg);
        assert_eq!(err(format!("{ok}1").as_bytes()), JsonError::IntTooLong);
        assert_eq!(err(format!("-{ok}1").as_bytes()), JsonError::IntTooLong);
        // A float with many digits has no limit.
        let f = format!("{ok}.0");
        assert_eq!(rt(f.as_bytes()), "Infinity");
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(
            rt(b"\"\\u0000\\u001f\x7f\\u0080\xc3\xa9\\u2028\\uffff\xf0\x9f\x98\x80\\ud800\\udfff\\/\\\\\\\"\\b\\f\\n\\r\\t ~\""),
            r#""\u0000\u001f\u007f\u0080\u00e9\u2028\uffff\ud83d\ude00\ud800\udfff/\\\"\b\f\n\r\t ~""#
        );
        // Escaped surrogate pairs join; lone or reversed surrogates stay as they are.
        assert_eq!(
            loads(b"\"\\ud800\\udc00\"").unwrap(),
            PyValue::Str(PyStr::from_code_points(&[0x10000]))
        );
        assert_eq!(
            loads(b"\"\\ud800\\u0041\"").unwrap(),
            PyValue::Str(PyStr::from_code_points(&[0xD800, 0x41]))
        );
        assert_eq!(
            loads(b"\"\\ud800\\n\"").unwrap(),
            PyValue::Str(PyStr::from_code_points(&[0xD800, 0x0A]))
        );
        assert_eq!(
            loads(b"\"\\uDC00\\uD800\"").unwrap(),
            PyValue::Str(PyStr::from_code_points(&[0xDC00, 0xD800]))
        );
        // UTF-8 encoded surrogates decode (surrogatepass) and are never joined.
        assert_eq!(
            loads(b"\"\xed\xa0\x80\xed\xb0\x80\"").unwrap(),
            PyValue::Str(PyStr::from_code_points(&[0xD800, 0xDC00]))
        );
        assert_eq!(rt(b"\"\xed\xa0\x80\xed\xb0\x80\""), r#""\ud800\udc00""#);
        assert_eq!(PyStr::from_code_points(&[0xD800]).to_string_lossless(), None);
        assert_eq!(PyStr::from_str("é").to_string_lossless().as_deref(), Some("é"));
    }

    /// The byte-wise order of [`PyStr`] is code point order, surrogates included: a lone
    /// surrogate sorts after U+D7FF and before U+E000 and every astral character, as in Python.
    /// Error positions count code points, not bytes.
    #[test]
    fn keys_sort_by_code_point_and_errors_count_code_points() {
        let body =
            b"{\"\xf0\x9f\x98\x80\": 1, \"\xee\x80\x80\": 2, \"\\ud800\": 3, \"\xed\x9f\xbf\": 4, \"z\": 5}";
        assert_eq!(
            dumps(&loads(body).unwrap(), true),
            r#"{"z": 5, "\ud7ff": 4, "\ud800": 3, "\ue000": 2, "\ud83d\ude00": 1}"#
        );
        let cps = [0x7A, 0xD7FF, 0xD800, 0xE000, 0x1F600];
        for w in cps.windows(2) {
            assert!(PyStr::from_code_points(&w[..1]) < PyStr::from_code_points(&w[1..]));
        }
        let s = PyStr::from_code_points(&cps);
        assert_eq!(s.code_points().collect::<Vec<_>>(), cps);
        assert_eq!((s.len(), s.has_surrogate()), (5, true));
        // `"é😀" x`: the `x` is code point 5 and byte 8 (Python says 5).
        assert_eq!(err("\"é😀\" x".as_bytes()), syn("Extra data", 5));
        assert_eq!(
            err("[\"\u{e9}\", \"\\q\"]".as_bytes()),
            syn("Invalid \\escape", 7)
        );
    }

    /// The word-at-a-time scan stops exactly where a byte-by-byte one does, for every byte
    /// value at every position of words around it.
    #[test]
    fn the_word_scan_stops_where_the_byte_scan_stops() {
        for stop in [Stop::Escaped, Stop::Special, Stop::QuoteBackslashNul] {
            for c in 0..=255u8 {
                for len in 0..20 {
                    for at in 0..=len {
                        let mut b = vec![b'a'; len];
                        if at < len {
                            b[at] = c;
                        }
                        let want = b.iter().position(|&x| stops(x, stop)).unwrap_or(len);
                        assert_eq!(plain_prefix(&b, stop), want, "byte {c:#x} at {at} of {len}");
                    }
                }
            }
            // Mixtures of the bytes at the edges of each test, where borrows and carries cross.
            use rand::{Rng, SeedableRng};
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
            let edges = [
                0x00, 0x01, 0x1F, 0x20, 0x21, 0x22, 0x23, 0x5B, 0x5C, 0x5D, 0x7E, 0x7F, 0x80, 0xA0, 0xFF,
            ];
            for _ in 0..200_000 {
                let len = rng.gen_range(0..40);
                let b: Vec<u8> = (0..len)
                    .map(|_| match rng.gen_range(0..20) {
                        0..=13 => rng.gen_range(b'#'..b'['),
                        14..=17 => edges[rng.gen_range(0..edges.len())],
                        _ => rng.gen(),
                    })
                    .collect();
                let want = b.iter().position(|&x| stops(x, stop)).unwrap_or(len);
                assert_eq!(plain_prefix(&b, stop), want, "{b:x?}");
            }
        }
    }

    #[test]
    fn string_errors() {
        assert_eq!(err(b"\"\x1f\""), syn("Invalid control character at", 1));
        assert_eq!(err(b"\"a\nb\""), syn("Invalid control character at", 2));
        assert_eq!(err(b"\"\\u12\""), syn("Invalid \\uXXXX escape", 2));
        assert_eq!(err(b"\"\\ud800\\udc00"), syn("Invalid \\uXXXX escape", 8));
        assert_eq!(err(b"\"\\x\""), syn("Invalid \\escape", 1));
        assert_eq!(err(b"[\"abc"), syn("Unterminated string starting at", 1));
    }

    #[test]
    fn utf8_bom_and_encoding() {
        assert_eq!(rt(b"\xef\xbb\xbf[1]"), "[1]");
        assert_eq!(err(b"\xef\xbb\xbf\xef\xbb\xbf[1]"), syn("Expecting value", 0));
        assert_eq!(err(b"\"\xff\""), JsonError::NotUtf8);
        assert_eq!(err(b"\"\xc0\x80\""), JsonError::NotUtf8);
        assert_eq!(err(b"\"\xed\xa0\""), JsonError::NotUtf8);
        assert_eq!(err(b"\"\xf4\x90\x80\x80\""), JsonError::NotUtf8);
        // UTF-16 detection is not supported (Python would return []).
        assert!(loads(b"\x00[\x00]").is_err());
    }

    #[test]
    fn structure_errors_and_whitespace() {
        assert_eq!(rt(b" \t\n\r1 \r\n"), "1");
        assert_eq!(err(b"\x0c1"), syn("Expecting value", 0));
        assert_eq!(err(b"[1] x"), syn("Extra data", 4));
        assert_eq!(err(b"[1,]"), syn("Expecting value", 3));
        assert_eq!(err(b"[nul]"), syn("Expecting value", 1));
        assert_eq!(err(b"1."), syn("Extra data", 1));
        assert_eq!(err(b"01"), syn("Extra data", 1));
        assert_eq!(err(b""), syn("Expecting value", 0));
        assert_eq!(err(b"{\"a\" 1}"), syn("Expecting ':' delimiter", 5));
        assert_eq!(
            err(b"{\"a\":1,}"),
            syn("Expecting property name enclosed in double quotes", 7)
        );
        assert_eq!(err(b"[1 2]"), syn("Expecting ',' delimiter", 3));
    }

    #[test]
    fn duplicate_keys_and_order() {
        let v = loads(br#"{"b": 1, "a": 2, "b": 3, "c": {}, "a": []}"#).unwrap();
        assert_eq!(dumps(&v, false), r#"{"b": 3, "a": [], "c": {}}"#);
        assert_eq!(dumps(&v, true), r#"{"a": [], "b": 3, "c": {}}"#);
        assert_eq!(dumps_compact(&v, false), r#"{"b":3,"a":[],"c":{}}"#);
        let d = v.as_dict().unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(d.get("b"), Some(&PyValue::Int("3".into())));
        let keys: Vec<String> = d.iter().map(|(k, _)| k.to_string_lossy()).collect();
        assert_eq!(keys, ["b", "a", "c"]);
    }

    #[test]
    fn duplicate_keys_in_a_dict_large_enough_to_be_indexed() {
        // Keys k0..k39, then every third key again: the dict switches from scanning to its
        // index partway through, and both must give Python's answer (first position, last value).
        let mut text = String::from("{");
        for i in 0..40 {
            text.push_str(&format!("\"k{i}\": {i}, "));
        }
        for i in (0..40).step_by(3) {
            text.push_str(&format!("\"k{i}\": \"again{i}\", "));
        }
        text.push_str("\"last\": null}");
        let v = loads(text.as_bytes()).unwrap();
        let d = v.as_dict().unwrap();
        assert_eq!(d.len(), 41);
        let keys: Vec<String> = d.iter().map(|(k, _)| k.to_string_lossy()).collect();
        let mut want: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
        want.push("last".into());
        assert_eq!(keys, want);
        for i in 0..40 {
            let expected = if i % 3 == 0 {
                PyValue::str(&format!("again{i}"))
            } else {
                PyValue::Int(i.to_string())
            };
            assert_eq!(d.get(&format!("k{i}")), Some(&expected), "k{i}");
            assert_eq!(d.get_key(&PyStr::from_str(&format!("k{i}"))), Some(&expected));
        }
        assert_eq!(d.get("k40"), None);
    }

    #[test]
    fn sort_by_code_point() {
        let v = loads(
            "{\"b\":[],\"a\":{}, \"\\u00e9\":1, \"Z\":2, \"\u{1F600}\":3, \"\\uffff\":4, \"\\ud800\":5}"
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(
            dumps(&v, true),
            r#"{"Z": 2, "a": {}, "b": [], "\u00e9": 1, "\ud800": 5, "\uffff": 4, "\ud83d\ude00": 3}"#
        );
    }

    #[test]
    fn depth_cap() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(loads(ok.as_bytes()).is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(err(deep.as_bytes()), JsonError::TooDeep);
        let unclosed = "{\"a\":".repeat(100_000);
        assert_eq!(err(unclosed.as_bytes()), JsonError::TooDeep);
        // dumps is iterative: a hand-built value far deeper than the cap is fine.
        let mut v = PyValue::List(vec![]);
        for _ in 0..5000 {
            v = PyValue::List(vec![v]);
        }
        let s = dumps(&v, true);
        assert_eq!(s.len(), 2 * 5001);
        // Drop it iteratively so the test itself does not rely on a deep stack.
        while let PyValue::List(mut l) = v {
            match l.pop() {
                Some(inner) => v = inner,
                None => break,
            }
        }
    }

    #[test]
    fn max_depth_parses_and_drops_on_a_small_stack() {
        let mut text = String::new();
        for i in 0..MAX_DEPTH {
            text.push_str(if i % 2 == 0 { "[" } else { "{\"k\":" });
        }
        text.push('0');
        for i in (0..MAX_DEPTH).rev() {
            text.push(if i % 2 == 0 { ']' } else { '}' });
        }
        let handle = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                let v = loads(text.as_bytes()).unwrap();
                dumps(&v, true) == text.replace(':', ": ")
            })
            .unwrap();
        assert!(handle.join().unwrap());
    }

    #[test]
    fn truthiness() {
        for falsy in ["null", "false", "0", "-0", "0.0", "-0.0", "\"\"", "[]", "{}"] {
            assert!(!loads(falsy.as_bytes()).unwrap().is_truthy(), "{falsy}");
        }
        for truthy in ["true", "1", "-1", "1e-300", "NaN", "\"0\"", "[0]", "{\"a\":null}"] {
            assert!(loads(truthy.as_bytes()).unwrap().is_truthy(), "{truthy}");
        }
    }
}
