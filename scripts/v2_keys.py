#!/usr/bin/env python3
"""Our own model of the Python v2 services' idempotency key derivation (standard library only).

Used by idempotency/tests/v2_keys_differential.rs to check that the Rust crate derives exactly the
keys v2 derives. It follows docs/v2-protocol.md ("Key", "Where event_id / event_type come from").

Input (stdin): one JSON object per line,
    {"prefix": str, "service": str, "headers": [[name, base64_value], ...], "value_b64": str}
Output (stdout, bytes): one line per case, in order:
    OK <key>      the key, UTF-8; a backslash, CR or LF in it is written as \\\\, \\r, \\n so that
                  every case stays on one line (only hostile event types contain those)
    ERR <kind>    header_not_utf8 | body_not_utf8 | body_not_json | int_too_long | too_deep |
                  body_not_object | data_missing | event_type_not_string

Rules:
- Headers: only event_id, event_type, trace_id and source_service are read; for a repeated name the
  last occurrence wins; a read header whose value is not UTF-8 is an error; an empty value counts
  as absent.
- Header path (event_id and event_type headers both present): the body is not parsed;
  hash = sha256_hex(json.dumps({"event_id": event_id}, sort_keys=True, separators=(",", ":"))).
- Body path: body = json.loads(value_bytes) (bytes, as v2 passes them); it must be a dict with a
  `data` that is present and not None. event_id = the header if present, else body.get("event_id");
  x = {"data": data, "event_id": event_id} if event_id is truthy else data;
  hash = sha256_hex(json.dumps(x, sort_keys=True)).
- event_type = the header if present, else the body's event_type if present, not None and not "",
  else "unknown"; a body event_type that is not a str is an error.
- key = f"{prefix}:{service}:{event_type.replace('.', '_')}:{hash}"; a key that cannot be encoded
  as UTF-8 (lone surrogate in the event type) is an event_type_not_string error.
Hostile event types are not rejected here: v2 accepts them.
"""

import base64
import hashlib
import json
import sys

USED_HEADERS = ("event_id", "event_type", "trace_id", "source_service")


class NoKey(Exception):
    """A message for which v2 derives no key; args[0] is the error kind."""


def sha256_hex(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_headers(headers):
    last = {}
    for name, value in headers:
        last[name] = value
    out = {}
    for name in USED_HEADERS:
        raw = last.get(name)
        if raw is None:
            continue
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise NoKey("header_not_utf8")
        if value != "":
            out[name] = value
    return out


def derive_key(prefix, service, headers, value):
    h = read_headers(headers)
    if "event_id" in h and "event_type" in h:
        event_type = h["event_type"]
        digest = sha256_hex(
            json.dumps({"event_id": h["event_id"]}, sort_keys=True, separators=(",", ":"))
        )
    else:
        try:
            body = json.loads(value)
        except UnicodeDecodeError:
            raise NoKey("body_not_utf8")
        except json.JSONDecodeError:
            raise NoKey("body_not_json")
        except RecursionError:
            raise NoKey("too_deep")
        except ValueError:
            # The int max str digits limit ("Exceeds the limit (4300 digits) ...").
            raise NoKey("int_too_long")
        if not isinstance(body, dict):
            raise NoKey("body_not_object")
        data = body.get("data")
        if data is None:
            raise NoKey("data_missing")
        event_id = h["event_id"] if "event_id" in h else body.get("event_id")
        x = {"data": data, "event_id": event_id} if event_id else data
        digest = sha256_hex(json.dumps(x, sort_keys=True))
        if "event_type" in h:
            event_type = h["event_type"]
        else:
            event_type = body.get("event_type")
            if event_type is None or event_type == "":
                event_type = "unknown"
            elif not isinstance(event_type, str):
                raise NoKey("event_type_not_string")
    key = f"{prefix}:{service}:{event_type.replace('.', '_')}:{digest}"
    try:
        return key.encode("utf-8")
    except UnicodeEncodeError:
        raise NoKey("event_type_not_string")


def main():
    # Pin CPython 3.11's default so that PYTHONINTMAXSTRDIGITS or -X cannot change the model.
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(4300)
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        case = json.loads(line)
        headers = [(name, base64.b64decode(v)) for name, v in case["headers"]]
        value = base64.b64decode(case["value_b64"])
        try:
            key = derive_key(case["prefix"], case["service"], headers, value)
            key = key.replace(b"\\", b"\\\\").replace(b"\n", b"\\n").replace(b"\r", b"\\r")
            out.write(b"OK " + key + b"\n")
        except NoKey as e:
            out.write(b"ERR " + e.args[0].encode("ascii") + b"\n")
        except RecursionError:
            # json.dumps of a body just under json.loads's depth limit.
            out.write(b"ERR too_deep\n")
    out.flush()


if __name__ == "__main__":
    main()
