//! `cjson.decode(value)` then `rec['status']`, as far as the acquire script looks: a lexer and a
//! non-recursive decoder for Redis's bundled lua-cjson 2.1 dialect (C's `strtod` numbers, NUL
//! termination, UTF-16 escapes, the nesting limit), classifying a stored value as the script
//! does ([`lua_status`]). The module documentation's "`cjson.decode`" says what is accepted.

use idempotency::pyjson::{plain_prefix, Stop};
use std::borrow::Cow;

/// lua-cjson's default `decode_max_depth`.
const CJSON_MAX_DEPTH: usize = 1000;

/// What the acquire script makes of a stored value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LuaStatus {
    /// Not decodable, not a table, no `status`, or `status == 'completed'`.
    Duplicate,
    /// Any other `status` (including JSON `null`, which is `cjson.null`, not `nil`).
    Busy,
}

/// How the acquire script's `cjson.decode` + `rec['status']` classifies `value` (see the module
/// documentation for lua-cjson's dialect).
pub(crate) fn lua_status(value: &[u8]) -> LuaStatus {
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
enum Token<'a> {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Comma,
    Colon,
    End,
    /// A string's bytes: borrowed from the input unless it has escapes.
    Str(Cow<'a, [u8]>),
    /// A number, boolean or `null`.
    Scalar,
    Error,
}

/// The input as lua-cjson sees it: NUL-terminated.
struct Lexer<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn at(&self, i: usize) -> u8 {
        self.data.get(i).copied().unwrap_or(0)
    }

    fn starts_with_ci(&self, i: usize, word: &[u8]) -> bool {
        word.iter()
            .enumerate()
            .all(|(j, w)| self.at(i + j).to_ascii_lowercase() == *w)
    }

    fn next(&mut self) -> Token<'a> {
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

    fn string(&mut self) -> Token<'a> {
        let data = self.data;
        let start = self.pos + 1;
        let mut p = start;
        // The decoded bytes, once an escape makes them differ from the input's.
        let mut out: Option<Vec<u8>> = None;
        loop {
            // The run of plain bytes up to the next quote, backslash or NUL, taken at once.
            let from = p.min(data.len());
            let run_end = from + plain_prefix(&data[from..], Stop::QuoteBackslashNul);
            if let Some(out) = &mut out {
                out.extend_from_slice(&data[from..run_end]);
            }
            p = run_end;
            match self.at(p) {
                0 => return Token::Error,
                b'"' => break,
                _ => {
                    // A backslash: from here on the string is decoded into `out`.
                    let out = out.get_or_insert_with(|| data[start..p].to_vec());
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
            }
        }
        self.pos = p + 1;
        Token::Str(match out {
            Some(out) => Cow::Owned(out),
            None => Cow::Borrowed(&data[start..p]),
        })
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
    fn number(&mut self) -> Token<'a> {
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
                        key_is_status = *k == b"status"[..];
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
            Token::Str(s) => StatusValue::Str(s.into_owned()),
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
                        key_is_status = *k == b"status"[..];
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
}
