"""Helpers for the transform tests: building the plugins, the admin API's transform routes, and
Kafka's murmur2 partitioner (to check key-hash output partitioning independently)."""

import json
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_built = {}


def plugin(name):
    """Bytes of plugins/<name> built for wasm32-wasip1 (plugins/build runs once per session)."""
    if "dir" not in _built:
        out = subprocess.run([str(REPO / "plugins" / "build")], check=True, capture_output=True, text=True, timeout=1800)
        _built["dir"] = Path(out.stdout.strip().splitlines()[-1])
    return (_built["dir"] / f"{name.replace('-', '_')}.wasm").read_bytes()


def request(broker, method, path, body=None, content_type="application/json", timeout=60):
    """(status, parsed JSON or None) of an admin API call."""
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    req = urllib.request.Request(f"http://{broker.admin}{path}", data=data, method=method,
                                 headers={"Content-Type": content_type} if data is not None else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, (json.loads(raw) if raw else None)


def multipart(spec, wasm):
    """(body, content type) of a deploy request: the spec JSON and the module bytes."""
    boundary = uuid.uuid4().hex
    body = b""
    for name, content, ctype in (("spec", json.dumps(spec).encode(), "application/json"), ("wasm", wasm, "application/wasm")):
        body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\n"
                 f"Content-Type: {ctype}\r\n\r\n").encode() + content + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def deploy(broker, spec, wasm):
    """POST /v1/transforms as multipart (spec JSON + module bytes)."""
    body, content_type = multipart(spec, wasm)
    return request(broker, "POST", "/v1/transforms", body, content_type)


def deploy_ok(broker, spec, wasm):
    status, body = deploy(broker, spec, wasm)
    assert status == 200, (status, body)
    return body


def describe(broker, name):
    status, body = request(broker, "GET", f"/v1/transforms/{name}")
    assert status == 200, (status, body)
    return body


def wait_caught_up(broker, name, records_in, timeout=120):
    """Waits until the transform has no lag and has consumed at least `records_in` records."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = describe(broker, name)
        if last["lag"] == 0 and sum(p["next_offset"] - 0 for p in last["partitions"]) >= records_in:
            return last
        time.sleep(0.1)
    raise AssertionError(f"transform {name} not caught up within {timeout}s: {last}")


def murmur2(data: bytes) -> int:
    """Kafka's Utils.murmur2 (signed 32-bit result)."""
    m, r = 0x5BD1E995, 24
    h = (0x9747B28C ^ len(data)) & 0xFFFFFFFF
    n4 = len(data) // 4
    for i in range(n4):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    tail = data[4 * n4:]
    if len(tail) == 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if len(tail) >= 1:
        h ^= tail[0]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def key_partition(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions
