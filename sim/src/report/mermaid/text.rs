//! Text for the diagram: ids and keys shortened like the human trace, values made compact,
//! and what Mermaid cannot take (its syntax characters, control characters, overlong text)
//! escaped or cut. Shared by the steps, the focus note and the lines.

use serde_json::Value;

/// The longest message or note text, in characters before escaping.
const TEXT_CHARS_MAX: usize = 160;

/// A value as short text: strings bare, arrays `[a, b]`, objects `{k=v, ...}`.
pub(super) fn compact(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => format!("[{}]", items.iter().map(compact).collect::<Vec<_>>().join(", ")),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{k}={}", compact(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

/// Virtual time in seconds, to the millisecond.
pub(super) fn time(t_us: u64) -> String {
    format!("{}.{:03}s", t_us / 1_000_000, t_us / 1000 % 1000)
}

/// Whether `text` starts with a UUID (`8-4-4-4-12` hex digits).
fn starts_with_uuid(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() >= 36
        && b[..36].iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// An event id to its first 8 characters (a suffix after the UUID, like a record key's
/// `/copy/salt`, stays).
pub(super) fn short_id(id: &str) -> String {
    if starts_with_uuid(id) {
        format!("{}{}", &id[..8], &id[36..])
    } else {
        id.to_owned()
    }
}

/// Every UUID in `text` to its first 8 characters.
pub(super) fn shorten_ids(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if starts_with_uuid(rest) {
            out.push_str(&rest[..8]);
            rest = &rest[36..];
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// A key `prefix:service:event_type:hash` to `event_type:hash8`, like the human trace.
pub(super) fn short_key(key: &str) -> String {
    let parts: Vec<&str> = key.rsplitn(3, ':').collect();
    match parts.as_slice() {
        [hash, event_type, _] => format!("{event_type}:{}", hash.chars().take(8).collect::<String>()),
        _ => key.to_owned(),
    }
}

/// Every number standing alone in `text` as `N` (for comparing repeats).
pub(super) fn mask_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let alone = chars[i].is_ascii_digit() && (i == 0 || !chars[i - 1].is_alphanumeric());
        if alone {
            let end = (i..chars.len())
                .find(|&j| !chars[j].is_ascii_digit())
                .unwrap_or(chars.len());
            if end == chars.len() || !chars[end].is_alphanumeric() {
                out.push('N');
                i = end;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// `text` cut to `max` characters (the last one `…`).
pub(super) fn cut(text: &str, max: usize) -> String {
    if text.chars().count() > max {
        text.chars().take(max - 1).collect::<String>() + "…"
    } else {
        text.to_owned()
    }
}

/// Message or note text, safe for Mermaid: cut, then its troublesome characters as entity
/// codes and control characters as spaces.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in cut(text, TEXT_CHARS_MAX).chars() {
        match c {
            ';' => out.push_str("#59;"),
            '#' => out.push_str("#35;"),
            '"' => out.push_str("#34;"),
            '<' => out.push_str("#60;"),
            '>' => out.push_str("#62;"),
            '%' => out.push_str("#37;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    if out.trim().is_empty() {
        out = "?".into();
    }
    out
}
