#!/usr/bin/env python3
"""Our model of the records v2's Python code writes and how its readers interpret a value.

Reads JSON lines on stdin, one case each, and writes one line per case:
- {"write": "processing"|"completed", "time_us": int, "service": str, "event_id": any,
   "correlation_id": any, "source_service": any}
  -> the record as v2 writes it (json.dumps of the dict in v2's field order), base64 encoded.
- {"read_b64": str, "now_us": int}
  -> how v2's reader sees the value: "completed", "other", or "processing <stale>" where
     <stale> is true when now - started_at > 300 (a missing started_at counts as 0).
Standard library only.
"""
import base64
import json
import sys


def write(case):
    t = case["time_us"] / 1e6
    if case["write"] == "processing":
        record = {"status": "processing", "started_at": t}
    else:
        record = {"status": "completed", "started_at": t, "completed_at": t}
    record["processed_by"] = case["service"]
    record["event_id"] = case["event_id"]
    record["correlation_id"] = case["correlation_id"]
    record["source_service"] = case["source_service"]
    return base64.b64encode(json.dumps(record).encode()).decode()


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


for line in sys.stdin:
    case = json.loads(line)
    print(write(case) if "write" in case else read(case))
