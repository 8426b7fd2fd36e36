"""Helpers for the tiered storage tests: a moto S3 server on a free loopback port, a TCP proxy
in front of it whose outages the tests control, the broker's tier counters, and a raw Fetch."""

import json
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

from kafka_wire import API_FETCH, RawConn, fetch_v4_body

NONE = 0
CORRUPT_MESSAGE = 2
KAFKA_STORAGE_ERROR = 56
BUCKET = "sluice-tier"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Moto:
    """`python3 -m moto.server` on a free port, with one bucket."""

    def __init__(self, log_path: Path):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise AssertionError(f"moto server did not start (see {log_path})")
                time.sleep(0.1)
        self.client().create_bucket(Bucket=BUCKET)

    def client(self):
        import boto3
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test")

    def get_json(self, key):
        return json.loads(self.client().get_object(Bucket=BUCKET, Key=key)["Body"].read())

    def keys(self, prefix=""):
        out = []
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            out += [o["Key"] for o in page.get("Contents", [])]
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
        self.log.close()


class Proxy:
    """A TCP forwarder on a fixed free port. `down()` closes the listener and every connection
    (the store is unreachable: connection refused); `up()` listens again on the same port. Used
    instead of restarting moto, whose objects live only in its memory."""

    def __init__(self, target_port):
        self.target = ("127.0.0.1", target_port)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.lock = threading.Lock()
        self.conns = []
        self.listener = None
        self.up()

    def up(self):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(64)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def down(self):
        self.listener.close()
        with self.lock:
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self.conns.clear()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def s3_env(endpoint):
    return {"AWS_ENDPOINT": endpoint, "AWS_ALLOW_HTTP": "true", "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"}


def tier_stats(broker):
    status, body = broker.http_get("/v1/tier")
    assert status == 200, (status, body)
    return json.loads(body)


def local_bases(partition_dir: Path):
    """Base offsets of the local segment files, ascending."""
    return sorted(int(p.name.split(".")[0]) for p in Path(partition_dir).glob("*.log"))


def fetch_v4(bootstrap, topic, partition, offset, max_bytes=1 << 20):
    """One Fetch v4 for one partition: (error_code, high_watermark, records bytes)."""
    with RawConn(bootstrap) as conn:
        corr = conn.send_request(API_FETCH, 4, fetch_v4_body(topic, partition, offset, max_bytes=max_bytes), flexible=False)
        resp = conn.recv_response(corr)
    pos = 4 + 4  # throttle, topics count
    (name_len,) = struct.unpack_from(">h", resp, pos)
    pos += 2 + name_len + 4  # name, partitions count
    _p, error, hwm, _lso = struct.unpack_from(">ihqq", resp, pos)
    pos += 4 + 2 + 8 + 8
    (aborted,) = struct.unpack_from(">i", resp, pos)
    pos += 4 + max(aborted, 0) * 16
    (size,) = struct.unpack_from(">i", resp, pos)
    pos += 4
    records = resp[pos:pos + max(size, 0)]
    return error, hwm, records
