"""Schemathesis hooks: how to put a generated body on the wire where it has no built-in way.

`POST /api/v1/apps/import` takes JSON Lines (one app per line); the schema describes the
lines as an array, so the fuzzer draws a list and sends one JSON document per element.
"""

import json

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def json_lines(ctx, value):
    if isinstance(value, bytes):
        return {"data": value}
    items = value if isinstance(value, list) else [value]
    return {"data": "".join(json.dumps(item) + "\n" for item in items).encode("utf-8")}
