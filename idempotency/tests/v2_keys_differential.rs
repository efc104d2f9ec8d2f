//! Differential tests against CPython: the Rust key derivation against `scripts/v2_keys.py` (our
//! model of the v2 services), and `idempotency::pyjson` against CPython's `json` module.
//!
//! Messages are generated from a fixed seed; the JSON bodies are written as text by the generator
//! itself (not through a serializer) so that the parser sees many spellings of the same values.
//! Every case goes to one `python3` process on stdin; each output line (the key and the values v2
//! writes into its records) is compared with what Rust derives. Besides the random messages, every
//! combination of `branches::branch_cases` runs: partial headers, empty and null fields, body ids
//! equal to, different from or missing against the header id, bodies that are not objects. The only accepted difference: Rust rejects hostile event types
//! (`hostile_event_type`) where Python builds a key.
//!
//! If `python3` cannot be started the tests print `SKIPPED: ...` and pass, unless `CI=true`.

mod branches;

use idempotency::key::{derive_key, EventKey, KeyPath};
use idempotency::message::Message;
use idempotency::pyjson::{self, PyDict, PyStr, PyValue};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

const SEED: u64 = 0x76_32_6B_65_79_73; // "v2keys"
const KEY_CASES: usize = 3000;
const PYJSON_CASES: usize = 4000;

/// The seed and case count: fixed by default; `V2_DIFF_SEED` / `V2_DIFF_SCALE` (a multiplier)
/// let a developer fuzz further without editing the test.
fn seed_and_scale() -> (u64, usize) {
    let seed = std::env::var("V2_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEED);
    let scale = std::env::var("V2_DIFF_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1usize)
        .max(1);
    (seed, scale)
}

// ---------------------------------------------------------------------------------------------
// Running python3

fn python_lines(stdout: &[u8]) -> Vec<Vec<u8>> {
    let mut lines: Vec<Vec<u8>> = stdout.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    if lines.last().is_some_and(Vec::is_empty) {
        lines.pop();
    }
    lines
}

use branches::{base64, run_python};

/// Bytes as a Rust string literal (escaped), or as an escaped byte string if not UTF-8.
fn show_bytes(bytes: &[u8]) -> String {
    let shown = match std::str::from_utf8(bytes) {
        Ok(s) => format!("{s:?}"),
        Err(_) => format!("b\"{}\"", bytes.escape_ascii()),
    };
    if shown.len() > 4000 {
        let mut end = 4000;
        while !shown.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}... ({} bytes)", &shown[..end], bytes.len())
    } else {
        shown
    }
}

// ---------------------------------------------------------------------------------------------
// The JSON text generator

struct Gen {
    rng: ChaCha8Rng,
    /// Set when the last envelope nests beyond both parsers' limits. Such a body is never
    /// damaged: cut off at a depth between pyjson's cap (512) and CPython's recursion limit
    /// (~995) it would be `too_deep` for Rust and `body_not_json` for Python, the known
    /// divergence documented in `pyjson`.
    made_too_deep: bool,
}

const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";
const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

const EVENT_TYPES: &[&str] = &[
    "huleedu.essay.spellcheck.requested.v1",
    "huleedu.essay.spellcheck.completed.v1",
    "huleedu.file.essay.content.provisioned.v1",
    "huleedu.file.essay.validation.failed.v1",
    "huleedu.batch.essays.registered.v1",
    "huleedu.els.batch.essays.ready.v1",
    "huleedu.els.batch.phase.outcome.v1",
    "huleedu.cj_assessment.completed.v1",
    "huleedu.batch.cj_assessment.initiate.command.v1",
    "huleedu.result_aggregator.batch.completed.v1",
    "t.v1",
    "noDots",
];

const SERVICES: &[&str] = &[
    "essay_lifecycle_service",
    "spellchecker_service",
    "batch_orchestrator_service",
    "cj_assessment_service",
    "s",
];

const PREFIXES: &[&str] = &[
    "huleedu:idempotency:v2",
    "p",
    "test:ns",
    "huleedu:idempotency:v2:sim",
];

impl Gen {
    fn new(seed: u64) -> Self {
        Gen {
            rng: ChaCha8Rng::seed_from_u64(seed),
            made_too_deep: false,
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.gen_bool(p)
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        *items.choose(&mut self.rng).expect("non-empty choice list")
    }

    /// JSON whitespace: mostly none.
    fn ws(&mut self, out: &mut Vec<u8>) {
        if self.chance(0.8) {
            return;
        }
        for _ in 0..self.rng.gen_range(1..4) {
            out.push(self.pick(b" \t\n\r"));
        }
    }

    fn u_escape(&mut self, out: &mut Vec<u8>, c: u32) {
        let digits = if self.chance(0.3) { HEX_UPPER } else { HEX_LOWER };
        out.extend_from_slice(b"\\u");
        for shift in [12, 8, 4, 0] {
            out.push(digits[((c >> shift) & 0xF) as usize]);
        }
    }

    fn raw_char(out: &mut Vec<u8>, c: char) {
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }

    fn random_bmp(&mut self) -> char {
        loop {
            if let Some(c) = char::from_u32(self.rng.gen_range(0x80..0x1_0000)) {
                return c;
            }
        }
    }

    fn random_astral(&mut self) -> char {
        char::from_u32(self.rng.gen_range(0x1_0000..=0x10_FFFF)).expect("astral scalar")
    }

    /// The inside of a string literal (no quotes): many spellings and kinds of characters.
    fn string_body(&mut self, out: &mut Vec<u8>, max_pieces: usize) {
        for _ in 0..self.rng.gen_range(0..=max_pieces) {
            match self.rng.gen_range(0..22) {
                0..=5 => {
                    for _ in 0..self.rng.gen_range(1..8) {
                        out.push(self.pick(b"abcdefghijklmnopqrstuvwxyzABCXYZ0123456789 _-.:'~{}[],"));
                    }
                }
                6 | 7 => {
                    let esc: &[u8] = self.pick(&[
                        &b"\\\""[..],
                        b"\\\\",
                        b"\\/",
                        b"\\b",
                        b"\\f",
                        b"\\n",
                        b"\\r",
                        b"\\t",
                    ]);
                    out.extend_from_slice(esc);
                }
                8 => {
                    let c = self.random_bmp() as u32;
                    self.u_escape(out, c);
                }
                9 => {
                    let c = if self.chance(0.2) {
                        0x7F
                    } else {
                        self.rng.gen_range(0..0x20)
                    };
                    self.u_escape(out, c);
                }
                10 | 11 => {
                    let c = if self.chance(0.5) {
                        self.pick(&[
                            'é', 'ß', 'ü', '中', '文', '\u{2028}', '\u{FEFF}', '\u{FFFF}', '\u{0085}',
                            '\u{00A0}',
                        ])
                    } else {
                        self.random_bmp()
                    };
                    Self::raw_char(out, c);
                }
                12 => {
                    let c = if self.chance(0.5) {
                        self.pick(&['😀', '𝄞', '\u{10000}', '\u{10FFFF}'])
                    } else {
                        self.random_astral()
                    };
                    Self::raw_char(out, c);
                }
                13 | 14 => {
                    // An astral character as an escaped surrogate pair.
                    let c = self.random_astral() as u32 - 0x1_0000;
                    self.u_escape(out, 0xD800 | (c >> 10));
                    self.u_escape(out, 0xDC00 | (c & 0x3FF));
                }
                15 => {
                    // Lone surrogates: a high one not followed by a low escape, a low one, a
                    // reversed pair, a high one followed by a non-surrogate escape.
                    let hi = self.rng.gen_range(0xD800..0xDC00);
                    let lo = self.rng.gen_range(0xDC00..0xE000);
                    match self.rng.gen_range(0..5) {
                        0 => {
                            self.u_escape(out, hi);
                            out.push(b'x');
                        }
                        1 => self.u_escape(out, lo),
                        2 => {
                            self.u_escape(out, lo);
                            self.u_escape(out, hi);
                            out.push(b'!');
                        }
                        3 => {
                            self.u_escape(out, hi);
                            self.u_escape(out, 0x41);
                        }
                        _ => {
                            self.u_escape(out, hi);
                            out.extend_from_slice(b"\\n");
                        }
                    }
                }
                16 => out.push(0x7F),
                17 => out.extend_from_slice(b"\\/"),
                18 => {
                    // A surrogate encoded directly in UTF-8 (Python decodes with surrogatepass).
                    if self.chance(0.2) {
                        let c = self.rng.gen_range(0xD800u32..0xE000);
                        out.extend_from_slice(&[
                            0xE0 | (c >> 12) as u8,
                            0x80 | ((c >> 6) & 0x3F) as u8,
                            0x80 | (c & 0x3F) as u8,
                        ]);
                    }
                }
                _ => {
                    let c = self.rng.gen_range(0x20..0x7F);
                    self.u_escape(out, c);
                }
            }
        }
    }

    fn string(&mut self, out: &mut Vec<u8>, max_pieces: usize) {
        out.push(b'"');
        self.string_body(out, max_pieces);
        out.push(b'"');
    }

    fn digits(&mut self, out: &mut Vec<u8>, n: usize) {
        for _ in 0..n {
            out.push(b'0' + self.rng.gen_range(0..10));
        }
    }

    /// An int: 0, -0, small, big (up to 60 digits), negative.
    fn int(&mut self, out: &mut Vec<u8>) {
        if self.chance(0.4) {
            out.push(b'-');
        }
        match self.rng.gen_range(0..6) {
            0 => out.push(b'0'),
            1 | 2 => out.extend_from_slice(self.rng.gen_range(1..1000u32).to_string().as_bytes()),
            3 => out.extend_from_slice(self.rng.gen::<u64>().max(1).to_string().as_bytes()),
            _ => {
                out.push(b'1' + self.rng.gen_range(0..9));
                let n = self.rng.gen_range(0..60);
                self.digits(out, n);
            }
        }
    }

    /// A float in one of many spellings (or a literal NaN/Infinity/-Infinity).
    fn float(&mut self, out: &mut Vec<u8>) {
        match self.rng.gen_range(0..12) {
            0 => {
                let s: &str = self.pick(&[
                    "1e5",
                    "1E+05",
                    "-0.0",
                    "0.0",
                    "1.5e-7",
                    "123.456e300",
                    "1e400",
                    "-1e400",
                    "1e-400",
                    "-1e-400",
                    "4.9e-324",
                    "2.4703282292062328e-324",
                    "2.4703282292062327e-324",
                    "2.2250738585072014e-308",
                    "2.2250738585072011e-308",
                    "1.7976931348623157e308",
                    "1.7976931348623158e308",
                    "1.7976931348623159e308",
                    "1e16",
                    "1e15",
                    "0.0001",
                    "0.00001",
                    "1234567890123456.0",
                    "12345678901234567.0",
                    "9007199254740993.0",
                    "0.1e1",
                    "100e-2",
                    "1e0000000000000000000000001",
                    "1e-99999999999999999999",
                    "0e99999999999999999999",
                    "0.30000000000000004",
                    "-0e-0",
                ]);
                out.extend_from_slice(s.as_bytes());
            }
            1 => {
                let s: &str = self.pick(&["NaN", "Infinity", "-Infinity"]);
                out.extend_from_slice(s.as_bytes());
            }
            2..=5 => {
                // Random bit patterns, printed by Rust in several ways.
                let f = f64::from_bits(self.rng.gen());
                if !f.is_finite() {
                    out.extend_from_slice(b"-1.0e-1");
                    return;
                }
                let s = match self.rng.gen_range(0..5) {
                    0 | 1 => format!("{f:e}"),
                    2 => format!("{f:E}"),
                    3 => format!("{f:.*e}", self.rng.gen_range(0..25)),
                    _ => {
                        // Positional: only for moderate magnitudes (it can be 300+ digits).
                        if f.abs() < 1e30 && f.abs() > 1e-30 {
                            format!("{f:.*}", self.rng.gen_range(1..40))
                        } else {
                            format!("{f:e}")
                        }
                    }
                };
                out.extend_from_slice(s.as_bytes());
            }
            6 | 7 => {
                // Human-ish values across exponents.
                let mantissa: f64 = self.rng.gen_range(-1000.0..1000.0);
                let exp = self.rng.gen_range(-30..30);
                let f = mantissa * 10f64.powi(exp);
                out.extend_from_slice(format!("{f:e}").as_bytes());
            }
            8 => {
                // Subnormals.
                let f = f64::from_bits(self.rng.gen_range(1..(1u64 << 52)));
                out.extend_from_slice(format!("{f:e}").as_bytes());
            }
            _ => {
                // Hand-built: int part, optional fraction, optional exponent with sign/zeros.
                if self.chance(0.3) {
                    out.push(b'-');
                }
                if self.chance(0.3) {
                    out.push(b'0');
                } else {
                    out.push(b'1' + self.rng.gen_range(0..9));
                    let n = self.rng.gen_range(0..25);
                    self.digits(out, n);
                }
                let has_frac = self.chance(0.6);
                if has_frac {
                    out.push(b'.');
                    let n = self.rng.gen_range(1..30);
                    self.digits(out, n);
                }
                if !has_frac || self.chance(0.6) {
                    out.push(self.pick(b"eE"));
                    if self.chance(0.6) {
                        out.push(self.pick(b"+-"));
                    }
                    let zeros = self.rng.gen_range(0..3);
                    out.extend_from_slice(&b"00"[..zeros]);
                    let n = self.rng.gen_range(1..4);
                    self.digits(out, n);
                }
            }
        }
    }

    /// An object key; drawn from a small pool (with several spellings of the same key) so that
    /// duplicates happen, or random.
    fn key(&mut self, out: &mut Vec<u8>) {
        if self.chance(0.6) {
            let k: &str = self.pick(&[
                "\"a\"",
                "\"b\"",
                "\"\\u0061\"",
                "\"Z\"",
                "\"id\"",
                "\"data\"",
                "\"event_id\"",
                "\"\"",
                "\"é\"",
                "\"\\u00e9\"",
                "\"\\u00E9\"",
                "\"😀\"",
                "\"\\ud83d\\ude00\"",
                "\"\\ud800\"",
                "\"\\uffff\"",
                "\"a b\"",
                "\"\\/\"",
                "\"/\"",
            ]);
            out.extend_from_slice(k.as_bytes());
        } else {
            self.string(out, 3);
        }
    }

    fn object(&mut self, out: &mut Vec<u8>, depth: usize) {
        out.push(b'{');
        self.ws(out);
        let n = if depth >= 8 { 0 } else { self.rng.gen_range(0..5) };
        for i in 0..n {
            if i > 0 {
                out.push(b',');
                self.ws(out);
            }
            self.key(out);
            self.ws(out);
            out.push(b':');
            self.ws(out);
            self.value(out, depth + 1);
            self.ws(out);
        }
        out.push(b'}');
    }

    fn array(&mut self, out: &mut Vec<u8>, depth: usize) {
        out.push(b'[');
        self.ws(out);
        let n = if depth >= 8 { 0 } else { self.rng.gen_range(0..5) };
        for i in 0..n {
            if i > 0 {
                out.push(b',');
                self.ws(out);
            }
            self.value(out, depth + 1);
            self.ws(out);
        }
        out.push(b']');
    }

    /// Any JSON value; containers nest at most 8 deep.
    fn value(&mut self, out: &mut Vec<u8>, depth: usize) {
        let container_weight = if depth >= 8 {
            0
        } else {
            8usize.saturating_sub(depth)
        };
        let roll = self.rng.gen_range(0..(12 + container_weight));
        match roll {
            0 => out.extend_from_slice(b"null"),
            1 => out.extend_from_slice(b"true"),
            2 => out.extend_from_slice(b"false"),
            3 | 4 => self.int(out),
            5 | 6 => self.float(out),
            7..=11 => self.string(out, 6),
            r if r % 2 == 0 => self.object(out, depth),
            _ => self.array(out, depth),
        }
    }

    fn uuid(&mut self) -> String {
        let b: [u8; 16] = self.rng.gen();
        let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    }

    /// Body `event_id`: `None` means absent, else the JSON text of the value.
    fn body_event_id(&mut self) -> Option<Vec<u8>> {
        let text = match self.rng.gen_range(0..20) {
            0 => return None,
            1 => "null".to_string(),
            2 => "\"\"".to_string(),
            3 => "0".to_string(),
            4 => "false".to_string(),
            5 => "42".to_string(),
            6 => "-0.0".to_string(),
            7 => "{\"a\": 1}".to_string(),
            8 => "[]".to_string(),
            9 => "{}".to_string(),
            10 => "true".to_string(),
            11 => "NaN".to_string(),
            12 => "\"\\ud800-id\"".to_string(),
            13 => "\"é\\u00e9😀\\\"\\\\id\"".to_string(),
            14 => {
                let mut v = Vec::new();
                self.string(&mut v, 4);
                return Some(v);
            }
            _ => format!("\"{}\"", self.uuid()),
        };
        Some(text.into_bytes())
    }

    /// Body `event_type`: `None` means absent, else the JSON text of the value.
    fn body_event_type(&mut self) -> Option<Vec<u8>> {
        let text: String = match self.rng.gen_range(0..40) {
            0 | 1 => return None,
            2 => "null".into(),
            3 => "\"\"".into(),
            4 => (self.pick(&["5", "true", "false", "0", "[]", "{}", "[\"a.b\"]", "1.5", "NaN"])).into(),
            5 | 6 => (self.pick(&[
                "\"huleedu.essä.v1\"",
                "\"事件.created.v1\"",
                "\"\\u00e9v\\u00e8nement.v1\"",
                "\"emoji.\\ud83d\\ude00.v1\"",
                "\"emoji.😀.v1\"",
                "\"a/b.v1\"",
                "\"a\\/b.v1\"",
                "\"back\\\\slash.v1\"",
                "\"q\\\"uote.v1\"",
                "\"percent%.v1\"",
                "\"dash-and_under.v1\"",
                "\"...\"",
            ]))
            .into(),
            7 => {
                // Hostile for Rust, fine for v2.
                let long_ok = format!("\"{}\"", "x".repeat(256));
                let long_bad = format!("\"{}\"", "x".repeat(257));
                let long_utf8 = format!("\"{}\"", "é".repeat(129));
                let fixed = [
                    "\"a:b.v1\"",
                    "\"glob*.v1\"",
                    "\"what?.v1\"",
                    "\"[x].v1\"",
                    "\"sp ace.v1\"",
                    "\"tab\\t.v1\"",
                    "\"nl\\n.v1\"",
                    "\"cr\\r.v1\"",
                    "\"nbsp\\u00a0.v1\"",
                    "\"ls\\u2028.v1\"",
                    "\"ctl\\u0001.v1\"",
                    "\"del\\u007f.v1\"",
                    "\"nel\\u0085.v1\"",
                    "\" \"",
                ];
                match self.rng.gen_range(0..fixed.len() + 3) {
                    i if i < fixed.len() => fixed[i].into(),
                    i if i == fixed.len() => long_ok,
                    i if i == fixed.len() + 1 => long_bad,
                    _ => long_utf8,
                }
            }
            8 => (self.pick(&[
                "\"huleedu.\\ud800.v1\"",
                "\"\\udfff\"",
                "\"a\\ud800:b\"",
                "\"x\\udc00\\ud800.v1\"",
            ]))
            .into(),
            _ => format!("\"{}\"", self.pick(EVENT_TYPES)),
        };
        Some(text.into_bytes())
    }

    /// Envelope `data`: `None` means absent.
    fn data(&mut self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        match self.rng.gen_range(0..30) {
            0 | 1 => return None,
            2 | 3 => out.extend_from_slice(b"null"),
            4 => {
                let s: &str = self.pick(&["0", "\"\"", "[]", "{}", "false", "0.0", "-0"]);
                out.extend_from_slice(s.as_bytes());
            }
            5 => {
                // Deep but within both limits, or far beyond both.
                let d = if self.chance(0.5) {
                    self.rng.gen_range(50..400)
                } else {
                    self.made_too_deep = true;
                    self.rng.gen_range(1100..3000)
                };
                let mut closers = Vec::with_capacity(d);
                for _ in 0..d {
                    if self.chance(0.5) {
                        out.push(b'[');
                        closers.push(b']');
                    } else {
                        out.extend_from_slice(b"{\"k\": ");
                        closers.push(b'}');
                    }
                }
                self.value(&mut out, 8);
                out.extend(closers.iter().rev());
            }
            6 => {
                // Ints at the 4300-digit limit.
                out.extend_from_slice(b"{\"n\": ");
                if self.chance(0.5) {
                    out.push(b'-');
                }
                let n = self.pick(&[4299usize, 4300, 4301, 5000]);
                out.push(b'7');
                self.digits(&mut out, n - 1);
                out.push(b'}');
            }
            7..=10 => self.value(&mut out, 1),
            _ => self.object(&mut out, 1),
        }
        Some(out)
    }

    /// A JSON envelope as text, fields in random order, some duplicated.
    fn envelope(&mut self) -> Vec<u8> {
        let mut fields: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let key = |s: &str| format!("\"{s}\"").into_bytes();
        if let Some(v) = self.body_event_id() {
            fields.push((key("event_id"), v));
        }
        if let Some(v) = self.body_event_type() {
            fields.push((key("event_type"), v));
        }
        if let Some(v) = self.data() {
            fields.push((key("data"), v));
        }
        if self.chance(0.8) {
            let ts = format!(
                "\"2025-0{}-1{}T12:{:02}:00.{:06}+00:00\"",
                self.rng.gen_range(1..10),
                self.rng.gen_range(0..10),
                self.rng.gen_range(0..60),
                self.rng.gen_range(0..1_000_000)
            );
            fields.push((key("event_timestamp"), ts.into_bytes()));
        }
        if self.chance(0.7) {
            let s = format!("\"{}\"", self.pick(SERVICES));
            fields.push((key("source_service"), s.into_bytes()));
        }
        if self.chance(0.7) {
            let v: &str = self.pick(&["1", "2", "1.0", "null"]);
            fields.push((key("schema_version"), v.as_bytes().to_vec()));
        }
        if self.chance(0.7) {
            let v = format!("\"{}\"", self.uuid());
            fields.push((key("correlation_id"), v.into_bytes()));
        }
        if self.chance(0.5) {
            let v = if self.chance(0.5) {
                b"null".to_vec()
            } else {
                b"\"https://schemas.example/huleedu/v1.json\"".to_vec()
            };
            fields.push((key("data_schema_uri"), v));
        }
        if self.chance(0.5) {
            let mut v = Vec::new();
            if self.chance(0.3) {
                v.extend_from_slice(b"null");
            } else {
                self.object(&mut v, 5);
            }
            fields.push((key("metadata"), v));
        }
        fields.shuffle(&mut self.rng);
        // Duplicate keys: the last value wins, the first position is kept.
        if self.chance(0.15) && !fields.is_empty() {
            let i = self.rng.gen_range(0..fields.len());
            let name = fields[i].0.clone();
            let replacement = match self.rng.gen_range(0..4) {
                0 => b"null".to_vec(),
                1 => format!("\"{}\"", self.uuid()).into_bytes(),
                2 => format!("\"{}\"", self.pick(EVENT_TYPES)).into_bytes(),
                _ => {
                    let mut v = Vec::new();
                    self.value(&mut v, 3);
                    v
                }
            };
            let at = self.rng.gen_range(0..=fields.len());
            fields.insert(at, (name, replacement));
        }
        if self.chance(0.05) {
            // The same key spelled with an escape.
            fields.push((b"\"d\\u0061ta\"".to_vec(), b"{\"via\": \"escape\"}".to_vec()));
        }
        let mut out = Vec::new();
        self.ws(&mut out);
        out.push(b'{');
        self.ws(&mut out);
        for (i, (k, v)) in fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
                self.ws(&mut out);
            }
            out.extend_from_slice(k);
            self.ws(&mut out);
            out.push(b':');
            self.ws(&mut out);
            out.extend_from_slice(v);
            self.ws(&mut out);
        }
        out.push(b'}');
        self.ws(&mut out);
        out
    }

    /// Damages a body: never puts a NUL in the first two bytes nor starts it with a UTF-16/32
    /// BOM (Python would guess UTF-16/32 from those; pyjson does not, see its module doc).
    fn damage(&mut self, mut body: Vec<u8>) -> Vec<u8> {
        match self.rng.gen_range(0..10) {
            0 | 1 => {
                // Invalid UTF-8 somewhere after the first two bytes.
                let bad: &[u8] = self.pick(&[
                    &[0xFF][..],
                    &[0xC0, 0x80],
                    &[0x80],
                    &[0xE2, 0x82],
                    &[0xF4, 0x90, 0x80, 0x80],
                    &[0xED, 0xA0],
                    &[0xF8, 0x88, 0x80, 0x80, 0x80],
                ]);
                let at = self.rng.gen_range(2.min(body.len())..=body.len());
                body.splice(at..at, bad.iter().copied());
            }
            2 | 3 => {
                let at = self.rng.gen_range(0..=body.len());
                body.truncate(at);
            }
            4 => body.extend_from_slice(self.pick(&[&b" x"[..], b",", b"{}", b"]", b"\x0c"])),
            5 => {
                // A raw control character (never NUL) somewhere.
                let at = self.rng.gen_range(2.min(body.len())..=body.len());
                body.insert(at, self.rng.gen_range(1..0x20));
            }
            6 => {
                let junk: &[u8] = self.pick(&[
                    &b""[..],
                    b"   ",
                    b"not json",
                    b"{'data': 1}",
                    b"{\"data\": 1,}",
                    b"{\"data\" 1}",
                    b"{\"data\": [1, 2,]}",
                    b"{\"data\": 01}",
                    b"{\"data\": 1.}",
                    b"{\"data\": .5}",
                    b"{\"data\": +1}",
                    b"{\"data\": \"\\x\"}",
                    b"{\"data\": \"\\u12\"}",
                    b"{\"data\": \"\\ud800\\uZZZZ\"}",
                    b"{\"data\": nan}",
                    b"{\"data\": True}",
                    b"{data: 1}",
                    b"\xef\xbb\xbf\xef\xbb\xbf{\"data\": 1}",
                ]);
                body = junk.to_vec();
            }
            7 => {
                // Int too long before or after a syntax error.
                let mut v = b"{\"data\": [".to_vec();
                let big = "9".repeat(4301);
                if self.chance(0.5) {
                    v.extend_from_slice(big.as_bytes());
                    v.extend_from_slice(b" 1]}");
                } else {
                    v.extend_from_slice(b"1 2, ");
                    v.extend_from_slice(big.as_bytes());
                    v.extend_from_slice(b"]}");
                }
                body = v;
            }
            _ => {
                // Not an object at the top level.
                let mut v = Vec::new();
                self.ws(&mut v);
                match self.rng.gen_range(0..3) {
                    0 => self.array(&mut v, 6),
                    1 => self.string(&mut v, 3),
                    _ => self.int(&mut v),
                }
                body = v;
            }
        }
        while body.first() == Some(&0)
            || body.get(1) == Some(&0)
            || body.starts_with(b"\xff\xfe")
            || body.starts_with(b"\xfe\xff")
        {
            body.remove(0);
        }
        body
    }
}

// ---------------------------------------------------------------------------------------------
// Cases for the key derivation

struct Case {
    prefix: &'static str,
    service: &'static str,
    headers: Vec<(String, Vec<u8>)>,
    value: Vec<u8>,
}

impl Case {
    /// Whether v2 takes the header path: the last `event_id` and `event_type` headers are both
    /// present and non-empty (independent of UTF-8 validity, which is an error either way).
    fn header_path(&self) -> bool {
        self.header_shape() == "both"
    }

    /// Which of the two identity headers the message carries (non-empty, last occurrence).
    fn header_shape(&self) -> String {
        let last = |name: &str| {
            self.headers
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .is_some_and(|(_, v)| !v.is_empty())
        };
        match (last("event_id"), last("event_type")) {
            (true, true) => "both",
            (true, false) => "event_id only",
            (false, true) => "event_type only",
            (false, false) => "neither",
        }
        .to_owned()
    }

    fn json_line(&self) -> String {
        let headers = self
            .headers
            .iter()
            .map(|(n, v)| PyValue::List(vec![PyValue::str(n), PyValue::str(&base64(v))]))
            .collect();
        let mut d = PyDict::new();
        d.insert(PyStr::from_str("prefix"), PyValue::str(self.prefix));
        d.insert(PyStr::from_str("service"), PyValue::str(self.service));
        d.insert(PyStr::from_str("headers"), PyValue::List(headers));
        d.insert(PyStr::from_str("value_b64"), PyValue::str(&base64(&self.value)));
        pyjson::dumps_compact(&PyValue::Dict(d), false)
    }

    fn show(&self) -> String {
        let mut s = format!("prefix {:?}, service {:?}\n  headers:", self.prefix, self.service);
        if self.headers.is_empty() {
            s.push_str(" (none)");
        }
        for (n, v) in &self.headers {
            s.push_str(&format!("\n    {n:?} = {}", show_bytes(v)));
        }
        s.push_str(&format!("\n  value: {}", show_bytes(&self.value)));
        s
    }
}

fn header_value(g: &mut Gen, kind: &str) -> Vec<u8> {
    let r = g.rng.gen_range(0..30);
    match (kind, r) {
        (_, 0) => Vec::new(),
        (_, 1) => vec![0xFF, 0xFE, b'x'],
        (_, 2) => b"caf\xc3".to_vec(),
        ("event_type", 3) => {
            let s: &str = g.pick(&[
                "a:b.v1",
                "sp ace",
                "x*",
                "ctl\x01.v1",
                "nbsp\u{a0}",
                "line\nbreak",
                "back\\slash.v1",
            ]);
            s.as_bytes().to_vec()
        }
        ("event_type", 4) => "x".repeat(if g.chance(0.5) { 256 } else { 300 }).into_bytes(),
        ("event_type", 5) => {
            let s: &str = g.pick(&["huleedu.essä.v1", "事件.v1", "emoji.😀.v1", "q\"uote.v1"]);
            s.as_bytes().to_vec()
        }
        ("event_type", _) => g.pick(EVENT_TYPES).as_bytes().to_vec(),
        ("event_id", 3 | 4) => {
            let s: &str = g.pick(&["é😀", "e\"\\x/", "ctl\x01\x7f", "\u{2028}", " "]);
            s.as_bytes().to_vec()
        }
        (_, _) => g.uuid().into_bytes(),
    }
}

fn gen_headers(g: &mut Gen) -> Vec<(String, Vec<u8>)> {
    let mut h: Vec<(String, Vec<u8>)> = Vec::new();
    match g.rng.gen_range(0..10) {
        0..=2 => {}
        3..=5 => {
            h.push(("event_id".into(), header_value(g, "event_id")));
            h.push(("event_type".into(), header_value(g, "event_type")));
        }
        6 => h.push(("event_id".into(), header_value(g, "event_id"))),
        7 => h.push(("event_type".into(), header_value(g, "event_type"))),
        _ => {
            for _ in 0..g.rng.gen_range(1..6) {
                let name: &str = g.pick(&["event_id", "event_type", "trace_id", "source_service"]);
                h.push((name.into(), header_value(g, name)));
            }
        }
    }
    if g.chance(0.3) {
        let name: &str = g.pick(&["trace_id", "source_service"]);
        h.push((name.into(), header_value(g, name)));
    }
    if g.chance(0.3) {
        // Unrelated headers, including look-alike names and non-UTF-8 values.
        let name: &str = g.pick(&["content-type", "Event_ID", "event-type", "eventid", "x-retry", ""]);
        let v = if g.chance(0.5) {
            vec![0xFF, 0x00, 0xC0]
        } else {
            b"application/json".to_vec()
        };
        h.push((name.into(), v));
    }
    h.shuffle(&mut g.rng);
    if g.chance(0.1) && !h.is_empty() {
        // A repeated name: the last occurrence wins.
        let i = g.rng.gen_range(0..h.len());
        let name = h[i].0.clone();
        let v = header_value(g, &name.clone());
        h.push((name, v));
    }
    h
}

fn gen_case(g: &mut Gen) -> Case {
    let prefix = g.pick(PREFIXES);
    let service = g.pick(SERVICES);
    let headers = gen_headers(g);
    g.made_too_deep = false;
    let mut value = g.envelope();
    if g.chance(0.15) && !g.made_too_deep {
        value = g.damage(value);
    } else if g.chance(0.05) {
        let mut v = b"\xef\xbb\xbf".to_vec();
        v.extend_from_slice(&value);
        value = v;
    }
    Case {
        prefix,
        service,
        headers,
        value,
    }
}

/// The key spec's definition of a hostile event type (Rust rejects, v2 accepts). An empty event
/// type is v2's own and accepted.
fn hostile(event_type: &str) -> bool {
    event_type.len() > 256
        || event_type
            .chars()
            .any(|c| matches!(c, ':' | '*' | '?' | '[' | ']') || c.is_whitespace() || c.is_control())
}

/// What the script prints for an identified message: the key, the event type and the three
/// record fields, as `json.dumps` of a list.
fn identity_line(k: &EventKey) -> String {
    let v = PyValue::List(vec![
        PyValue::str(&k.key),
        PyValue::str(&k.event_type),
        k.event_id().clone(),
        k.correlation_id().clone(),
        k.source_service().clone(),
    ]);
    format!("OK {}", pyjson::dumps(&v, false))
}

/// The event type in one of the script's `OK [...]` lines.
fn python_event_type(line: &str) -> Option<String> {
    let json = line.strip_prefix("OK ")?;
    match pyjson::loads(json.as_bytes()).ok()? {
        PyValue::List(items) => items.get(1)?.as_str()?.to_string_lossless(),
        _ => None,
    }
}

#[test]
fn v2_keys_match_python_model() {
    let (seed, scale) = seed_and_scale();
    let mut g = Gen::new(seed);
    let mut cases: Vec<Case> = (0..KEY_CASES * scale).map(|_| gen_case(&mut g)).collect();
    // Every branch of the rules, systematically: partial headers, empty and null fields,
    // body ids equal to, different from or missing against the header id, non-object bodies.
    let random_cases = cases.len();
    for (headers, value) in branches::branch_cases() {
        cases.push(Case {
            prefix: "huleedu:idempotency:v2",
            service: "essay_lifecycle_service",
            headers,
            value,
        });
    }

    let mut input = String::new();
    for c in &cases {
        input.push_str(&c.json_line());
        input.push('\n');
    }
    let script = format!("{}/../scripts/v2_keys.py", env!("CARGO_MANIFEST_DIR"));
    let Some(stdout) = run_python(&[&script], input.into_bytes(), "v2 key differential") else {
        return;
    };
    let lines = python_lines(&stdout);
    assert_eq!(lines.len(), cases.len(), "python3 printed one line per case");

    let mut mismatches = 0usize;
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut shapes: BTreeMap<String, usize> = BTreeMap::new();
    let (mut header_path, mut body_path, mut hostile_count) = (0usize, 0usize, 0usize);
    for (i, (case, line)) in cases.iter().zip(&lines).enumerate() {
        let msg = Message {
            topic: "events".into(),
            partition: 0,
            offset: i as i64,
            headers: case.headers.clone(),
            value: case.value.clone(),
        };
        if case.header_path() {
            header_path += 1;
        } else {
            body_path += 1;
        }
        *shapes.entry(case.header_shape()).or_default() += 1;
        let py_text = String::from_utf8_lossy(line).into_owned();
        let rust = derive_key(case.prefix, case.service, &msg);
        let problem = match &rust {
            Ok(k) => {
                *counts.entry("ok").or_default() += 1;
                let rust_line = identity_line(k);
                let want_path = if case.header_path() {
                    KeyPath::Header
                } else {
                    KeyPath::Body
                };
                if rust_line != py_text {
                    Some(rust_line)
                } else if k.path != want_path {
                    Some(format!("{rust_line} (path {:?}, expected {want_path:?})", k.path))
                } else if hostile(&k.event_type) {
                    Some(format!(
                        "{rust_line} (event type {:?} is hostile but accepted)",
                        k.event_type
                    ))
                } else {
                    None
                }
            }
            Err(e) if e.kind() == "hostile_event_type" => {
                hostile_count += 1;
                *counts.entry("hostile_event_type").or_default() += 1;
                match python_event_type(&py_text) {
                    Some(et) if hostile(&et) => None,
                    Some(_) => Some(format!(
                        "ERR hostile_event_type ({e}) but the event type is not hostile"
                    )),
                    None => Some(format!("ERR hostile_event_type ({e}) where Python gave no key")),
                }
            }
            Err(e) => {
                *counts.entry(e.kind()).or_default() += 1;
                let rust_line = format!("ERR {}", e.kind());
                (rust_line != py_text).then(|| format!("{rust_line} ({e})"))
            }
        };
        if let Some(rust_line) = problem {
            mismatches += 1;
            if mismatches <= 10 {
                println!(
                    "MISMATCH case {i}: {}\n  python: {py_text}\n  rust:   {rust_line}\n",
                    case.show()
                );
            }
        }
    }
    let per_kind: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let per_shape: Vec<String> = shapes.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!(
        "v2 key differential (seed {seed}): {} cases ({random_cases} random, {} branch), header path {header_path}, body path {body_path}, hostile (Rust rejects, Python OK) {hostile_count}; {}; headers: {}",
        cases.len(),
        cases.len() - random_cases,
        per_kind.join(", "),
        per_shape.join(", ")
    );
    assert_eq!(
        mismatches, 0,
        "{mismatches} cases differ between Rust and scripts/v2_keys.py"
    );
    // The generator must reach every outcome, or the comparison proves less than it claims.
    for kind in [
        "ok",
        "header_not_utf8",
        "body_not_utf8",
        "body_not_json",
        "int_too_long",
        "too_deep",
        "body_not_object",
        "data_missing",
        "event_type_null",
        "event_type_not_string",
        "hostile_event_type",
    ] {
        assert!(
            counts.get(kind).copied().unwrap_or(0) > 0,
            "no case produced {kind}"
        );
    }
    for shape in ["both", "event_id only", "event_type only", "neither"] {
        assert!(
            shapes.get(shape).copied().unwrap_or(0) > 100,
            "too few cases with {shape} headers"
        );
    }
    assert!(header_path > 100 && body_path > 1000, "both paths exercised");
}

// ---------------------------------------------------------------------------------------------
// pyjson against CPython's json module directly

const PY_JSON_PROBE: &str = r#"
import base64, json, sys
if hasattr(sys, "set_int_max_str_digits"):
    sys.set_int_max_str_digits(4300)
out = sys.stdout.buffer
out.write(("%d.%d\n" % sys.version_info[:2]).encode())
for line in sys.stdin.buffer:
    b = base64.b64decode(line.strip())
    try:
        v = json.loads(b)
        r = "OK " + json.dumps(v, sort_keys=True) + " " + json.dumps(v, separators=(",", ":"))
    except UnicodeDecodeError:
        r = "ERR utf8"
    except json.JSONDecodeError as e:
        r = "ERR json %d %s" % (e.pos, e.msg)
    except RecursionError:
        r = "ERR deep"
    except ValueError:
        r = "ERR int"
    out.write(r.encode("ascii") + b"\n")
"#;

fn pyjson_line(bytes: &[u8], with_syntax_detail: bool) -> String {
    match pyjson::loads(bytes) {
        Ok(v) => format!(
            "OK {} {}",
            pyjson::dumps(&v, true),
            pyjson::dumps_compact(&v, false)
        ),
        Err(pyjson::JsonError::NotUtf8) => "ERR utf8".into(),
        Err(pyjson::JsonError::Syntax { pos, msg }) if with_syntax_detail => {
            format!("ERR json {pos} {msg}")
        }
        Err(pyjson::JsonError::Syntax { .. }) => "ERR json".into(),
        Err(pyjson::JsonError::TooDeep) => "ERR deep".into(),
        Err(pyjson::JsonError::IntTooLong) => "ERR int".into(),
    }
}

#[test]
fn pyjson_matches_cpython_json() {
    let (seed, scale) = seed_and_scale();
    let mut g = Gen::new(seed ^ 0x6A73_6F6E);
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for _ in 0..PYJSON_CASES * scale {
        let mut v = Vec::new();
        match g.rng.gen_range(0..10) {
            0..=3 => g.value(&mut v, 0),
            4 | 5 => v = g.envelope(),
            6 => {
                // Many floats in one array: exercises float parsing and repr.
                v.push(b'[');
                for i in 0..50 {
                    if i > 0 {
                        v.push(b',');
                    }
                    g.float(&mut v);
                }
                v.push(b']');
            }
            _ => {
                g.value(&mut v, 0);
                v = g.damage(v);
                // Single-byte mutations.
                for _ in 0..g.rng.gen_range(0..3) {
                    if v.len() < 3 {
                        break;
                    }
                    let at = g.rng.gen_range(2..v.len());
                    if g.chance(0.5) {
                        v.remove(at);
                    } else {
                        let b = g.pick(b",:[]{}\"\\u0e-+. \x01\x7f\xc3\xa9\xffNIa");
                        v.insert(at, b);
                    }
                }
                while v.first() == Some(&0) || v.get(1) == Some(&0) {
                    v.remove(0);
                }
            }
        }
        if g.chance(0.03) {
            v.splice(0..0, *b"\xef\xbb\xbf");
        }
        inputs.push(v);
    }
    let mut input = String::new();
    for v in &inputs {
        input.push_str(&base64(v));
        input.push('\n');
    }
    let Some(stdout) = run_python(&["-c", PY_JSON_PROBE], input.into_bytes(), "pyjson differential") else {
        return;
    };
    let mut lines = python_lines(&stdout);
    assert_eq!(
        lines.len(),
        inputs.len() + 1,
        "a version line, then one line per input"
    );
    let version = String::from_utf8_lossy(&lines.remove(0)).into_owned();
    // Error messages and positions are compared on 3.11 only (3.13 reworded trailing commas).
    let detail = version == "3.11";
    let (mut ok, mut errors, mut mismatches) = (0usize, 0usize, 0usize);
    for (i, (v, line)) in inputs.iter().zip(&lines).enumerate() {
        let mut py = String::from_utf8_lossy(line).into_owned();
        if !detail && py.starts_with("ERR json") {
            py = "ERR json".into();
        }
        let rust = pyjson_line(v, detail);
        if rust.starts_with("OK") {
            ok += 1;
        } else {
            errors += 1;
        }
        if rust != py {
            mismatches += 1;
            if mismatches <= 10 {
                println!(
                    "MISMATCH input {i}: {}\n  python: {py}\n  rust:   {rust}\n",
                    show_bytes(v)
                );
            }
        }
    }
    println!(
        "pyjson differential (python {version}, seed {seed}): {} inputs, {ok} parsed, {errors} rejected, {mismatches} mismatches",
        inputs.len()
    );
    assert_eq!(
        mismatches, 0,
        "{mismatches} inputs differ between pyjson and CPython's json"
    );
}
