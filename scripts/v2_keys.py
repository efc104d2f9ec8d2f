#!/usr/bin/env python3
"""Our model of how the Python v2 decorator identifies a Kafka message (standard library only).

Written from shared/docs/v2-protocol.md ("Key", "Where event_id / event_type come from"), not from
the Rust code. idempotency/tests/v2_keys_differential.rs checks the Rust crate against it, and
scripts/v2_records.py builds v2's records on `identify` below.

Input (stdin): one JSON object per line,
    {"prefix": str, "service": str, "headers": [[name, base64_value], ...], "value_b64": str}
Output (stdout, ASCII): one line per case, in order:
    OK <json>     json.dumps([key, event_type, event_id, correlation_id, source_service]):
                  the Redis key and the values v2 writes into its records
    ERR <kind>    v2 runs the handler without idempotency; kind is one of
                  header_not_utf8 | body_not_utf8 | body_not_json | int_too_long | too_deep |
                  body_not_object | data_missing | event_type_null | event_type_not_string

The rules, as the protocol page states them:
- Headers are read first: event_id, event_type, trace_id and source_service; values are UTF-8
  (a value that is not is an error); an empty value counts as absent; a repeated name keeps its
  last value (a dict built from the header list).
- Header path, both event_id and event_type headers: the body is not parsed;
  hash = sha256_hex(json.dumps({"event_id": id}, sort_keys=True, separators=(",", ":")));
  correlation_id = the trace_id header, source_service = the source_service header, each None
  (null) when absent.
- Body path, otherwise: the value is parsed as JSON (bytes, as the consumer hands them over).
  * No event_id header: every header is ignored. event_type = body.get("event_type", "unknown"),
    event_id = body.get("event_id"), correlation_id = body.get("correlation_id"),
    source_service = body.get("source_service", "unknown").
  * An event_id header but no event_type header: event_type = body.get("event_type",
    "unknown"); event_id = the header; correlation_id = the trace_id header, else
    body.get("correlation_id"); source_service = the header, else
    body.get("source_service", "unknown").
  * Either way the hash is of the body alone: x = {"data": data, "event_id": body["event_id"]}
    when the body's event_id is present and truthy, else x = data;
    hash = sha256_hex(json.dumps(x, sort_keys=True)).
  * Errors (no idempotency): not JSON, JSON but not an object, data missing or None,
    event_type None, event_type not a str (its .replace fails).
- key = f"{prefix}:{service}:{event_type.replace('.', '_')}:{hash}"; a key that cannot be sent
  to Redis as UTF-8 (a lone surrogate in the body's event_type) is an event_type_not_string
  error, since the Redis client cannot encode it.
Hostile event types (":", globs, whitespace) are not rejected here: v2 accepts them.
"""

import base64
import hashlib
import json
import sys

READ_HEADERS = ("event_id", "event_type", "trace_id", "source_service")


class NoKey(Exception):
    """A message v2 cannot key; args[0] is the error kind."""


def sha256_hex(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_headers(headers):
    """The read headers as str, empty ones dropped. `headers` is a list of (name, bytes)."""
    last = dict(headers)
    out = {}
    for name in READ_HEADERS:
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


def parse_body(value):
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
    return body


def identify(prefix, service, headers, value):
    """(key, event_type, event_id, correlation_id, source_service), or raises NoKey."""
    h = read_headers(headers)
    if "event_id" in h and "event_type" in h:
        event_type = h["event_type"]
        event_id = h["event_id"]
        correlation_id = h.get("trace_id")
        source_service = h.get("source_service")
        digest = sha256_hex(
            json.dumps({"event_id": event_id}, sort_keys=True, separators=(",", ":"))
        )
    else:
        body = parse_body(value)
        event_type = body.get("event_type", "unknown")
        if "event_id" not in h:
            event_id = body.get("event_id")
            correlation_id = body.get("correlation_id")
            source_service = body.get("source_service", "unknown")
        else:
            event_id = h["event_id"]
            correlation_id = h["trace_id"] if "trace_id" in h else body.get("correlation_id")
            if "source_service" in h:
                source_service = h["source_service"]
            else:
                source_service = body.get("source_service", "unknown")
        data = body.get("data")
        if data is None:
            raise NoKey("data_missing")
        if event_type is None:
            raise NoKey("event_type_null")
        if not isinstance(event_type, str):
            raise NoKey("event_type_not_string")
        body_id = body.get("event_id")
        x = {"data": data, "event_id": body_id} if body_id else data
        digest = sha256_hex(json.dumps(x, sort_keys=True))
    key = f"{prefix}:{service}:{event_type.replace('.', '_')}:{digest}"
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise NoKey("event_type_not_string")
    return key, event_type, event_id, correlation_id, source_service


def pin_int_digits():
    """Pin CPython 3.11's default so that PYTHONINTMAXSTRDIGITS or -X cannot change the model."""
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(4300)


def case_message(case):
    headers = [(name, base64.b64decode(v)) for name, v in case["headers"]]
    return headers, base64.b64decode(case["value_b64"])


def main():
    pin_int_digits()
    out = sys.stdout
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        case = json.loads(line)
        headers, value = case_message(case)
        try:
            ident = identify(case["prefix"], case["service"], headers, value)
            out.write("OK " + json.dumps(list(ident)) + "\n")
        except NoKey as e:
            out.write("ERR " + e.args[0] + "\n")
        except RecursionError:
            # json.dumps of a body just under json.loads's depth limit.
            out.write("ERR too_deep\n")
    out.flush()


if __name__ == "__main__":
    main()
