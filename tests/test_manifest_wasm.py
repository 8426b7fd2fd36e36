"""Goal: a Transform's `wasm:` may be an http(s) URL pinned by `wasmSha256` (fetched at
apply/diff time; a 404, an unreachable host or a wrong pin is a located problem reported with the
others, before anything changes), and `parallelism: N` is stored, shown and enforced; method: the
real `sluice` binary against a real broker, a loopback http.server serving modules built from
plugins/, results checked with confluent-kafka and the admin API."""

import hashlib
import http.server
import json
import socket
import threading
from functools import partial

import pytest

from helpers import produce_all, producer
from test_manifests import built_plugins, sluice, topics, wait_records
from transforms import describe, wait_caught_up


@pytest.fixture
def wasm_server():
    """A loopback HTTP server over the built plugins directory; yields its base URL."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass
    handler = partial(Quiet, directory=str(built_plugins()))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def closed_port():
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def transform_doc(name, wasm, input_, output, extra=""):
    return f"""apiVersion: sluice/v1
kind: Transform
metadata:
  name: {name}
spec:
  wasm: {wasm}
{extra}  input: {input_}
  outputs: [{output}]
"""


TOPICS = """apiVersion: sluice/v1
kind: Topic
metadata:
  name: url-in
spec:
  partitions: 1
---
apiVersion: sluice/v1
kind: Topic
metadata:
  name: url-out
spec: {}
---
"""


def test_wasm_url_is_fetched_pinned_and_every_failure_is_located(broker, tmp_path, wasm_server):
    sha = hashlib.sha256((built_plugins() / "uppercase.wasm").read_bytes()).hexdigest()
    wrong = "0" * 64
    m = tmp_path / "bad.yaml"
    # Lines: each Transform document is 8 lines (9 with a pin); `wasm:` is its 6th line.
    m.write_text(TOPICS + "---\n".join([
        transform_doc("u-404", f"{wasm_server}/missing.wasm", "url-in", "url-out", f"  wasmSha256: {sha}\n"),
        transform_doc("u-pin", f"{wasm_server}/uppercase.wasm", "url-in", "url-out", f"  wasmSha256: {wrong}\n"),
        transform_doc("u-down", f"http://127.0.0.1:{closed_port()}/uppercase.wasm", "url-in", "url-out", f"  wasmSha256: {sha}\n"),
        transform_doc("u-nopin", f"{wasm_server}/uppercase.wasm", "url-in", "url-out"),
        transform_doc("u-typo", f"{wasm_server}/uppercase.wasm", "url-in", "url-out", f"  wasmSha256: {sha}\n  parallelism: 0\n"),
    ]))
    before = topics(broker)
    out, err = sluice(broker, "apply", "-f", m, expect=1)
    assert out == []
    lines = err.splitlines()
    # TOPICS is 13 lines; each pinned Transform document 9 (`wasm:` its 6th) and a separator.
    assert lines[0] == f"{m}:19:9: spec.wasm: cannot fetch {wasm_server}/missing.wasm: HTTP 404 Not Found", lines
    assert lines[1] == f"{m}:29:9: spec.wasm: the module's SHA-256 is {sha}, but wasmSha256 pins {wrong}", lines
    assert lines[2].startswith(f"{m}:39:9: spec.wasm: cannot fetch http://127.0.0.1:"), lines
    # A missing field is located at its mapping's key (`spec:`), as every missing field is.
    assert lines[3] == (f"{m}:48:1: spec.wasmSha256: missing field: a wasm URL needs the module's hex SHA-256, "
                        "so the manifest always deploys the same bytes (`sha256sum module.wasm`)"), lines
    assert lines[4] == f"{m}:60:16: spec.parallelism: 0 is not in 1..=4294967295", lines
    assert lines[5] == "sluice apply: 5 problem(s); nothing was changed", lines
    assert len(lines) == 6, lines
    assert topics(broker) == before, "nothing was created"
    # diff fetches too, and fails the same way.
    _, err = sluice(broker, "diff", "-f", m, expect=1)
    assert err.splitlines()[1] == lines[1]

    # Pinned and reachable: applied, and it runs.
    good = tmp_path / "good.yaml"
    good.write_text(TOPICS + transform_doc("u-up", f"{wasm_server}/uppercase.wasm", "url-in", "url-out", f"  wasmSha256: {sha.upper()}\n"))
    out, _ = sluice(broker, "apply", "-f", good)
    assert out == ["topic/url-in created", "topic/url-out created", "transform/u-up created"]
    assert describe(broker, "u-up")["module_sha256"] == sha
    produce_all(producer(broker.bootstrap), "url-in", [(None, b"fetched")])
    assert [r.value() for r in wait_records(broker, "url-out", 1)] == [b"FETCHED"]
    out, _ = sluice(broker, "apply", "-f", good)
    assert out[-1] == "transform/u-up unchanged"


def test_parallelism_round_trips_and_bounds_concurrent_batches(broker, tmp_path):
    wasm = built_plugins() / "uppercase.wasm"
    m = tmp_path / "par.yaml"
    # Two transforms over the same 4-partition input, in small batches: one bounded to 1 batch at
    # a time, the other unbounded (the control: its peak shows batches do overlap here).
    m.write_text("""apiVersion: sluice/v1
kind: Topic
metadata:
  name: par-in
spec:
  partitions: 4
---
apiVersion: sluice/v1
kind: Topic
metadata:
  name: par-out
spec:
  partitions: 4
---
""" + transform_doc("par-one", wasm, "par-in", "par-out", "  parallelism: 1\n  limits: {batchRecordsMax: 5}\n")
      + "---\n" + transform_doc("par-all", wasm, "par-in", "par-out", "  limits: {batchRecordsMax: 5}\n"))
    sluice(broker, "apply", "-f", m, "--admin", f"http://{broker.admin}")
    # Produced after deploy to every partition at once, so all runners have work together.
    sluice(broker, "transform", "pause", "par-one")
    sluice(broker, "transform", "pause", "par-all")
    p = producer(broker.bootstrap)
    produce_all(p, "par-in", [(b"k%d" % i, b"v%d" % i) for i in range(4000)])
    sluice(broker, "transform", "resume", "par-one")
    sluice(broker, "transform", "resume", "par-all")
    one = wait_caught_up(broker, "par-one", 4000, timeout=300)
    every = wait_caught_up(broker, "par-all", 4000, timeout=300)
    assert one["spec"]["parallelism"] == 1
    assert "parallelism" not in every["spec"]
    assert one["batches_concurrent_peak"] == 1, one
    assert every["batches_concurrent_peak"] >= 2, every
    out, _ = sluice(broker, "describe", "transform", "par-one")
    assert "Parallelism: 1 (peak 1 batches at once)" in out, out
    out, _ = sluice(broker, "get", "transforms", "-o", "json")
    got = {t["name"]: t for t in json.loads("\n".join(out))}
    assert got["par-one"]["spec"]["parallelism"] == 1, got["par-one"]
    # A change of parallelism is one update, a redeploy that keeps the bound.
    m.write_text(m.read_text().replace("parallelism: 1", "parallelism: 2"))
    out, _ = sluice(broker, "apply", "-f", m)
    assert out[2] == "transform/par-one updated (parallelism changed)", out
    assert describe(broker, "par-one")["spec"]["parallelism"] == 2
