//! Our records against `scripts/v2_records.py`, a model of v2's Python writer and reader built on
//! the standard library's `json`: the bytes we write are the bytes v2 writes for the same message
//! (every branch of where `event_id`, `correlation_id` and `source_service` come from) and for the
//! same fields, and every value (ours, v2's, legacy, odd) is interpreted the same way by both
//! readers.

mod branches;

use branches::{base64, run_python};
use idempotency::key::{derive_key, EventKey, KeyPath};
use idempotency::message::Message;
use idempotency::pyjson::{self, PyValue};
use idempotency::record::{self, parse_record, Owner, RecordState};
use rand::{Rng, SeedableRng};

/// Runs `scripts/v2_records.py` on `cases` (one JSON line each): its output lines.
fn python(cases: &[String]) -> Option<Vec<String>> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/v2_records.py");
    let input = cases.join("\n") + "\n";
    let out = run_python(&[script], input.into_bytes(), "v2 record differential")?;
    Some(
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect(),
    )
}

fn unb64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let mut out = Vec::new();
    for chunk in s.as_bytes().chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &c)| {
            if c == b'=' {
                n
            } else {
                n | (val(c) as u32) << (18 - 6 * i)
            }
        });
        let len = chunk.iter().filter(|&&c| c != b'=').count() - 1;
        for i in 0..len {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

fn event(rng: &mut impl Rng) -> EventKey {
    let texts = [
        "e-1",
        "ünïcödé",
        "emoji 😀",
        "quote\"back\\slash",
        "ctl\n\t\u{7f}",
        "",
        "3f2b-…",
    ];
    let pick = |rng: &mut dyn rand::RngCore| -> PyValue {
        match rng.gen_range(0..6) {
            0 => PyValue::Null,
            1 => PyValue::Int(rng.gen_range(-1000i64..100000).to_string()),
            _ => PyValue::str(texts[rng.gen_range(0..texts.len())]),
        }
    };
    EventKey::new(
        "k".into(),
        KeyPath::Body,
        "t".into(),
        pick(rng),
        pick(rng),
        pick(rng),
    )
}

fn json_of(v: &PyValue) -> String {
    pyjson::dumps(v, false)
}

#[test]
fn records_are_byte_identical_to_v2s_and_read_the_same_way() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut cases = Vec::new();
    let mut ours = Vec::new();
    for i in 0..500 {
        let id = event(&mut rng);
        // Times across the range a worker clock can show: the epoch, whole seconds, micros.
        let time_us: i64 = match i % 4 {
            0 => rng.gen_range(1_600_000_000_000_000..1_900_000_000_000_000),
            1 => rng.gen_range(1_600_000_000..1_900_000_000) * 1_000_000,
            2 => rng.gen_range(0..10_000_000),
            _ => 1_764_315_206_000_001,
        };
        let service = ["essay_lifecycle_service", "svc-ü"][i % 2];
        for (kind, value) in [
            ("processing", record::processing(service, &id, time_us)),
            ("completed", record::completed(service, &id, time_us)),
        ] {
            cases.push(format!(
                r#"{{"write": "{kind}", "time_us": {time_us}, "service": {}, "event_id": {}, "correlation_id": {}, "source_service": {}}}"#,
                json_of(&PyValue::str(service)),
                json_of(id.event_id()),
                json_of(id.correlation_id()),
                json_of(id.source_service())
            ));
            ours.push(value);
        }
    }
    let Some(theirs) = python(&cases) else { return };
    assert_eq!(theirs.len(), ours.len());
    for (i, (ours, theirs)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(
            String::from_utf8_lossy(ours),
            String::from_utf8_lossy(&unb64(theirs.strip_prefix("OK ").expect("a record"))),
            "case {i}: {}",
            cases[i]
        );
    }

    // Reading: our records (both protocols), v2's, legacy and odd values, each at a "now" that
    // makes a processing record fresh or stale.
    let id = event(&mut rng);
    let owner = Owner {
        token: "w-1/7".into(),
        fence: 1_764_315_206_123_456,
    };
    let (head, tail) = record::processing_fenced_parts("svc", &id, 1_000_000_000_000_000, "w-1/7");
    let values: Vec<Vec<u8>> = vec![
        record::processing("svc", &id, 1_000_000_000_000_000),
        record::completed("svc", &id, 1_000_000_000_000_000),
        record::join_fenced(&head, owner.fence, &tail),
        record::completed_fenced("svc", &id, 1_000_000_000_000_000, &owner),
        b"1".to_vec(),
        b"legacy-value".to_vec(),
        b"\xff\xfe".to_vec(),
        b"[1, 2]".to_vec(),
        b"{}".to_vec(),
        br#"{"processed_at": 1640995200}"#.to_vec(),
        br#"{"status": "processing"}"#.to_vec(),
        br#"{"status": "processing", "started_at": null}"#.to_vec(),
        br#"{"status": "processing", "started_at": 999999999}"#.to_vec(),
        br#"{"status": "processing", "started_at": "soon"}"#.to_vec(),
        br#"{"status": "failed"}"#.to_vec(),
        br#"{"status": null}"#.to_vec(),
        br#"{"status": "completed", "status": "processing", "started_at": 1e9}"#.to_vec(),
    ];
    let nows = [1_000_000_100_000_000i64, 1_000_000_400_000_000];
    let mut read_cases = Vec::new();
    let mut expected = Vec::new();
    for v in &values {
        for now_us in nows {
            read_cases.push(format!(r#"{{"read_b64": "{}", "now_us": {now_us}}}"#, base64(v)));
            expected.push(match parse_record(v) {
                RecordState::Completed => "completed".to_owned(),
                RecordState::Other(_) => "other".to_owned(),
                RecordState::Processing { started_at, .. } => {
                    let age = now_us as f64 / 1e6 - started_at.unwrap_or(0.0);
                    format!("processing {}", age > 300.0)
                }
            });
        }
    }
    let Some(theirs) = python(&read_cases) else { return };
    for ((case, ours), theirs) in read_cases.iter().zip(&expected).zip(&theirs) {
        assert_eq!(ours, theirs, "{case}");
    }
}

/// A message's records: for every combination of headers and body in `branches`, the processing
/// and completed records v2 writes (or that it writes none), byte for byte.
#[test]
fn records_of_every_header_and_body_branch_match_v2s() {
    const PREFIX: &str = "huleedu:idempotency:v2";
    const SERVICE: &str = "essay_lifecycle_service";
    let time_us = 1_764_315_206_123_456i64;
    let mut cases = Vec::new();
    let mut ours = Vec::new();
    let mut null_sources = 0usize;
    for (headers, value) in branches::branch_cases() {
        let msg = Message {
            headers: headers.clone(),
            ..Message::new("events", value.clone())
        };
        let derived = derive_key(PREFIX, SERVICE, &msg);
        if let Ok(k) = &derived {
            null_sources += usize::from(k.source_service().is_null());
        }
        let headers_json: Vec<String> = headers
            .iter()
            .map(|(n, v)| format!("[{}, \"{}\"]", json_of(&PyValue::str(n)), base64(v)))
            .collect();
        for kind in ["processing", "completed"] {
            cases.push(format!(
                r#"{{"write": "{kind}", "time_us": {time_us}, "service": "{SERVICE}", "prefix": "{PREFIX}", "headers": [{}], "value_b64": "{}"}}"#,
                headers_json.join(", "),
                base64(&value)
            ));
            ours.push(match &derived {
                Ok(k) if kind == "processing" => {
                    format!("OK {}", base64(&record::processing(SERVICE, k, time_us)))
                }
                Ok(k) => format!("OK {}", base64(&record::completed(SERVICE, k, time_us))),
                Err(e) => format!("ERR {}", e.kind()),
            });
        }
    }
    let Some(theirs) = python(&cases) else { return };
    assert_eq!(theirs.len(), ours.len());
    let mut mismatches = 0;
    for (i, (ours, theirs)) in ours.iter().zip(&theirs).enumerate() {
        if ours != theirs {
            mismatches += 1;
            if mismatches <= 5 {
                let show = |l: &str| match l.strip_prefix("OK ") {
                    Some(b) => String::from_utf8_lossy(&unb64(b)).into_owned(),
                    None => l.to_owned(),
                };
                println!(
                    "MISMATCH {}\n  python: {}\n  rust:   {}",
                    cases[i],
                    show(theirs),
                    show(ours)
                );
            }
        }
    }
    let written = ours.iter().filter(|l| l.starts_with("OK ")).count();
    println!(
        "v2 record differential: {} cases, {written} records written, {null_sources} identities with a null source_service",
        ours.len()
    );
    assert_eq!(
        mismatches, 0,
        "{mismatches} records differ from scripts/v2_records.py"
    );
    assert!(written > 1000 && null_sources > 100, "the branches were reached");
}
