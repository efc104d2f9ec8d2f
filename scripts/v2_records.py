#!/usr/bin/env python3
"""Our model of the records the Python v2 decorator writes, and of how its readers see a value.

Written from shared/docs/v2-protocol.md ("Values stored", "Control flow of one delivery"), on top
of scripts/v2_keys.py's `identify` (where event_id, correlation_id and source_service come from).
Standard library only. idempotency/tests/v2_records.rs checks the Rust crate against it.

Reads JSON lines on stdin, one case each, and writes one line per case:
- {"write": "processing"|"completed", "time_us": int, "service": str, "prefix": str,
   "headers": [[name, base64_value], ...], "value_b64": str}
  -> "OK <base64 of the record>" as v2 writes it for that message at that time, or
     "ERR <kind>" when v2 cannot key the message (it then writes nothing and runs the handler
     without idempotency).
- {"write": ..., "time_us": ..., "service": ..., "event_id": any, "correlation_id": any,
   "source_service": any}
  -> the same, from the three fields given directly.
- {"read_b64": str, "now_us": int}
  -> how v2's reader sees the value: "completed", "other", or "processing <stale>" where
     <stale> is true when now - started_at > 300 (a missing started_at counts as 0).

Records are json.dumps of a dict in v2's field order with the default separators; the times are
float seconds since the epoch. The completed record's started_at is the confirm time.
"""
import base64
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import v2_keys  # noqa: E402  (our key model, beside this file)


def record(kind, time_us, service, event_id, correlation_id, source_service):
    t = time_us / 1e6
    if kind == "processing":
        rec = {"status": "processing", "started_at": t}
    else:
        rec = {"status": "completed", "started_at": t, "completed_at": t}
    rec["processed_by"] = service
    rec["event_id"] = event_id
    rec["correlation_id"] = correlation_id
    rec["source_service"] = source_service
    return json.dumps(rec)


def write(case):
    if "value_b64" in case:
        headers, value = v2_keys.case_message(case)
        try:
            _, _, event_id, correlation_id, source_service = v2_keys.identify(
                case["prefix"], case["service"], headers, value
            )
        except v2_keys.NoKey as e:
            return "ERR " + e.args[0]
    else:
        event_id = case["event_id"]
        correlation_id = case["correlation_id"]
        source_service = case["source_service"]
    text = record(case["write"], case["time_us"], case["service"], event_id, correlation_id,
                  source_service)
    return "OK " + base64.b64encode(text.encode("utf-8")).decode()


def read(case):
    raw = base64.b64decode(case["read_b64"])
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return "completed"  # legacy non-JSON value
    if not isinstance(data, dict):
        return "completed"
    if "status" not in data:
        return "completed"
    status = data["status"]
    if status == "completed":
        return "completed"
    if status == "processing":
        started = data.get("started_at") or 0
        if not isinstance(started, (int, float)) or isinstance(started, bool):
            started = 0
        now = case["now_us"] / 1e6
        return "processing %s" % ("true" if now - started > 300 else "false")
    return "other"


def main():
    v2_keys.pin_int_digits()
    for line in sys.stdin:
        if not line.strip():
            continue
        case = json.loads(line)
        print(write(case) if "write" in case else read(case))


if __name__ == "__main__":
    main()
