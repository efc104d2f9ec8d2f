//! `sim key`: the Redis key the idempotency library derives for one Kafka message value (from a
//! file or standard input, with its headers), and what v2 writes into the records, so a key
//! seen in Redis or a trace can be traced back to its message without running anything.

use super::EXIT_USAGE;
use std::io::{Read, Write};

pub(super) fn key(service: &str, prefix: &str, headers: &[String], file: &str, out: &mut dyn Write) -> i32 {
    let mut config = idempotency::Config::new(service);
    config.key_prefix = prefix.to_owned();
    if let Err(e) = config.validate() {
        eprintln!("error: {e}");
        return EXIT_USAGE;
    }
    let mut msg = idempotency::Message::new("cli", Vec::new());
    for h in headers {
        let Some((name, value)) = h.split_once('=') else {
            eprintln!("error: --header {h:?}: expected NAME=VALUE");
            return EXIT_USAGE;
        };
        msg = msg.with_header(name, value);
    }
    let read = if file == "-" {
        std::io::stdin().read_to_end(&mut msg.value).map(|_| ())
    } else {
        std::fs::read(file).map(|v| msg.value = v)
    };
    if let Err(e) = read {
        eprintln!("error: cannot read {file}: {e}");
        return EXIT_USAGE;
    }
    match idempotency::key::derive_key(prefix, service, &msg) {
        Ok(k) => {
            // The key alone first (for scripts), then what v2 writes into the records, as JSON.
            let json = |v: &idempotency::pyjson::PyValue| idempotency::pyjson::dumps(v, false);
            let _ = writeln!(out, "{}", k.key);
            let _ = writeln!(
                out,
                "path={} event_type={} event_id={} correlation_id={} source_service={}",
                k.path,
                k.event_type,
                json(k.event_id()),
                json(k.correlation_id()),
                json(k.source_service())
            );
            0
        }
        Err(e) => {
            eprintln!(
                "error: {file}: no key ({}): {e}; v2 would run the handler without idempotency",
                e.kind()
            );
            EXIT_USAGE
        }
    }
}
