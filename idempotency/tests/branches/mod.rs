//! Shared by the v2 differential tests (and, by path, `sim/tests/cli/`): messages that walk
//! every branch of v2's identification rules, shared by the key and record
//! differential tests: each combination of the four read headers (absent, empty, or set; the
//! header id equal to the body's or not) with each shape of body (ids equal to, different from,
//! missing against the header id; present, empty and null fields; bodies that are not objects).

#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Stdio};

/// One message: its headers in wire order and its value.
pub type Headers = Vec<(String, Vec<u8>)>;

/// The header id that a body may share (the "same id on both paths" case).
pub const SHARED_ID: &str = "3f0c6f9e-shared";

fn header_sets() -> Vec<Headers> {
    let mut sets = Vec::new();
    for id in [None, Some(""), Some("h-id"), Some(SHARED_ID)] {
        for et in [None, Some(""), Some("header.type.v1")] {
            for trace in [None, Some(""), Some("h-trace")] {
                for source in [None, Some(""), Some("h-source")] {
                    let mut h: Headers = Vec::new();
                    for (name, v) in [
                        ("event_id", id),
                        ("event_type", et),
                        ("trace_id", trace),
                        ("source_service", source),
                    ] {
                        if let Some(v) = v {
                            h.push((name.to_owned(), v.as_bytes().to_vec()));
                        }
                    }
                    sets.push(h);
                }
            }
        }
    }
    sets
}

fn bodies() -> Vec<Vec<u8>> {
    let shared = format!("\"{SHARED_ID}\"");
    let ids = [
        None,
        Some("null"),
        Some("\"\""),
        Some("\"b-id\""),
        Some("7"),
        Some("0"),
        Some(shared.as_str()),
    ];
    let types = [
        None,
        Some("null"),
        Some("\"\""),
        Some("\"body.type.v1\""),
        Some("5"),
    ];
    let datas = [
        None,
        Some("null"),
        Some("{\"x\": 1, \"a\": [1.0, \"é\"]}"),
        Some("0"),
    ];
    let others = [None, Some("null"), Some("\"b-other\"")];
    let mut out = Vec::new();
    let mut n = 0usize;
    for id in ids {
        for et in types {
            for data in datas {
                // Rotate correlation_id and source_service through their shapes.
                let corr = others[n % 3];
                let source = others[(n / 3) % 3];
                n += 1;
                let mut fields = Vec::new();
                for (name, v) in [
                    ("event_id", id),
                    ("event_type", et),
                    ("correlation_id", corr),
                    ("source_service", source),
                    ("data", data),
                ] {
                    if let Some(v) = v {
                        fields.push(format!("\"{name}\": {v}"));
                    }
                }
                out.push(format!("{{{}}}", fields.join(", ")).into_bytes());
            }
        }
    }
    for other in ["[1, 2]", "\"text\"", "null", "1.5", "not json", "{\"data\": 1"] {
        out.push(other.as_bytes().to_vec());
    }
    out
}

/// Every header set with every body.
pub fn branch_cases() -> Vec<(Headers, Vec<u8>)> {
    let bodies = bodies();
    let mut out = Vec::new();
    for h in header_sets() {
        for b in &bodies {
            out.push((h.clone(), b.clone()));
        }
    }
    out
}

/// Standard base64 (the Python scripts take message bytes this way).
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Runs `python3 args...` with `input` on stdin and returns its stdout, or `None` (after
/// printing the SKIPPED line) when python3 cannot be started and `CI` is not `true`.
pub fn run_python(args: &[&str], input: Vec<u8>, what: &str) -> Option<Vec<u8>> {
    let spawned = Command::new("python3")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("python3 cannot be run ({e}) and CI=true: the {what} test must run in CI");
            }
            println!("SKIPPED: python3 not found; the {what} test did not run");
            return None;
        }
    };
    let mut stdin = child.stdin.take().expect("piped stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("wait for python3");
    writer
        .join()
        .expect("stdin writer thread")
        .expect("write cases to python3");
    assert!(
        out.status.success(),
        "python3 failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Some(out.stdout)
}
