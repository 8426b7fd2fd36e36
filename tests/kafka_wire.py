"""Hand-built Kafka frames for tests that must send what no well-behaved client would.

Only what the tests need: framing, request headers v1/v2, ApiVersions, InitProducerId, Produce
(both the classic and the flexible encodings, chosen from the broker's advertised versions),
OffsetForLeaderEpoch v3 and RecordBatch v2 with a pure-Python CRC-32C. Kept independent of any client library's internals so
the bytes on the wire are exactly the ones written here.
"""

import socket
import struct
import time

API_PRODUCE = 0
API_FETCH = 1
API_API_VERSIONS = 18
API_INIT_PRODUCER_ID = 22
API_OFFSET_FOR_LEADER_EPOCH = 23

# Kafka error codes the tests assert on.
NONE = 0
CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
TOPIC_AUTHORIZATION_FAILED = 29
UNSUPPORTED_VERSION = 35
INVALID_CONFIG = 40
INVALID_REQUEST = 42
OUT_OF_ORDER_SEQUENCE_NUMBER = 45
DUPLICATE_SEQUENCE_NUMBER = 46
FENCED_LEADER_EPOCH = 74
UNKNOWN_LEADER_EPOCH = 75

# First flexible (compact encodings + tagged fields) version of each API we encode.
FIRST_FLEXIBLE = {API_PRODUCE: 9, API_INIT_PRODUCER_ID: 2, API_API_VERSIONS: 3, API_OFFSET_FOR_LEADER_EPOCH: 4}


# ---------------------------------------------------------------- CRC-32C (Castagnoli) and varints

def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283, "CRC-32C check value"


def uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def varint(n: int) -> bytes:
    """Zig-zag signed varint (records use these for lengths and deltas)."""
    return uvarint((n << 1) ^ (n >> 63))


def read_uvarint(buf: bytes, pos: int):
    shift = 0
    value = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


# ---------------------------------------------------------------- primitive encoders

def string(s):
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def compact_string(s):
    if s is None:
        return uvarint(0)
    b = s.encode()
    return uvarint(len(b) + 1) + b


def nbytes(b, flexible):
    if flexible:
        return uvarint(0) if b is None else uvarint(len(b) + 1) + b
    return struct.pack(">i", -1) if b is None else struct.pack(">i", len(b)) + b


def array_len(n, flexible):
    return uvarint(n + 1) if flexible else struct.pack(">i", n)


TAGS_NONE = b"\x00"


# ---------------------------------------------------------------- RecordBatch v2

def record_batch(records, producer_id=-1, producer_epoch=-1, base_sequence=-1,
                 base_timestamp=None, attributes=0):
    """One uncompressed RecordBatch v2. `records` is a list of (key, value, headers) where headers
    is a list of (str, bytes|None)."""
    if base_timestamp is None:
        base_timestamp = int(time.time() * 1000)
    body = bytearray()
    for delta, (key, value, headers) in enumerate(records):
        rec = bytearray(b"\x00")  # record attributes
        rec += varint(0)  # timestamp delta
        rec += varint(delta)  # offset delta
        rec += varint(-1) if key is None else varint(len(key)) + key
        rec += varint(-1) if value is None else varint(len(value)) + value
        rec += varint(len(headers))
        for hk, hv in headers:
            hkb = hk.encode()
            rec += varint(len(hkb)) + hkb
            rec += varint(-1) if hv is None else varint(len(hv)) + hv
        body += varint(len(rec)) + rec
    # attributes .. end: the part the CRC covers.
    covered = struct.pack(
        ">hiqqqhii", attributes, len(records) - 1, base_timestamp, base_timestamp,
        producer_id, producer_epoch, base_sequence, len(records)) + bytes(body)
    crc = crc32c(covered)
    after_length = struct.pack(">ibI", 0, 2, crc) + covered  # partitionLeaderEpoch, magic, crc
    return struct.pack(">qi", 0, len(after_length)) + after_length


BATCH_CRC_OFFSET = 8 + 4 + 4 + 1  # baseOffset, batchLength, partitionLeaderEpoch, magic


def iter_batches(data: bytes):
    """(position, base_offset, total_length, records_count) of each whole batch in a segment file's
    bytes; stops at the first incomplete one."""
    pos = 0
    while pos + 12 <= len(data):
        base_offset, length = struct.unpack_from(">qi", data, pos)
        end = pos + 12 + length
        if length <= 0 or end > len(data):
            return
        records_count = struct.unpack_from(">i", data, pos + 57)[0]
        yield pos, base_offset, 12 + length, records_count
        pos = end


def batch_attributes(data: bytes, pos: int) -> int:
    return struct.unpack_from(">h", data, pos + 21)[0]


# ---------------------------------------------------------------- a raw connection

class ConnectionClosed(Exception):
    pass


class RawConn:
    """One TCP connection speaking hand-built Kafka frames."""

    def __init__(self, bootstrap: str, timeout: float = 15.0, sock=None):
        """`sock`: an already connected socket (e.g. TLS-wrapped) instead of a new one."""
        host, port = bootstrap.rsplit(":", 1)
        self.sock = sock or socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.settimeout(timeout)
        self.correlation_id = 0
        self.versions = None

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_raw(self, data: bytes):
        self.sock.sendall(data)

    def header(self, api_key, api_version, flexible, client_id="sluice-tests"):
        self.correlation_id += 1
        h = struct.pack(">hhi", api_key, api_version, self.correlation_id) + string(client_id)
        if flexible:
            h += TAGS_NONE
        return h

    def send_request(self, api_key, api_version, body: bytes, flexible=None):
        if flexible is None:
            flexible = api_version >= FIRST_FLEXIBLE.get(api_key, 1 << 15)
        frame = self.header(api_key, api_version, flexible) + body
        self.sock.sendall(struct.pack(">i", len(frame)) + frame)
        return self.correlation_id

    def _recv_exact(self, n):
        out = bytearray()
        while len(out) < n:
            try:
                chunk = self.sock.recv(n - len(out))
            except ConnectionResetError as e:
                raise ConnectionClosed(str(e)) from e
            if not chunk:
                raise ConnectionClosed(f"closed after {len(out)} of {n} bytes")
            out += chunk
        return bytes(out)

    def recv_frame(self) -> bytes:
        (size,) = struct.unpack(">i", self._recv_exact(4))
        return self._recv_exact(size)

    def recv_response(self, expect_correlation_id, flexible_header=False) -> bytes:
        """The response body (after the response header)."""
        frame = self.recv_frame()
        (corr,) = struct.unpack_from(">i", frame, 0)
        assert corr == expect_correlation_id, f"correlation id {corr}, expected {expect_correlation_id}"
        pos = 4
        if flexible_header:
            n_tags, pos = read_uvarint(frame, pos)
            assert n_tags == 0, "response header tagged fields not expected"
        return frame[pos:]

    def wait_closed(self, timeout=15.0) -> bool:
        """True if the peer closes the connection (or resets it) within `timeout`, skipping any
        responses it sends first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not chunk:
                return True
        return False

    # ------------------------------------------------------------ APIs

    def api_versions(self, version=0):
        """{api_key: (min, max)} from ApiVersions v0 (error must be NONE)."""
        corr = self.send_request(API_API_VERSIONS, version, b"")
        body = self.recv_response(corr)
        error, n = struct.unpack_from(">hi", body, 0)
        assert error == NONE, f"ApiVersions v{version} error {error}"
        out = {}
        for i in range(n):
            k, lo, hi = struct.unpack_from(">hhh", body, 6 + 6 * i)
            out[k] = (lo, hi)
        self.versions = out
        return out

    def pick_version(self, api_key, preferred):
        """The first of `preferred` the broker advertises, else the highest it supports that we
        encode (every version below our flexible cut-off and the flexible ones listed)."""
        if self.versions is None:
            self.api_versions()
        lo, hi = self.versions[api_key]
        for v in preferred:
            if lo <= v <= hi:
                return v
        raise AssertionError(f"api {api_key}: broker supports v{lo}..v{hi}, tests encode {preferred}")

    def init_producer_id(self):
        """(producer_id, producer_epoch) for a new idempotent producer."""
        v = self.pick_version(API_INIT_PRODUCER_ID, [1, 0, 2, 3, 4, 5])
        flexible = v >= FIRST_FLEXIBLE[API_INIT_PRODUCER_ID]
        if flexible:
            body = compact_string(None) + struct.pack(">i", 60000)
            if v >= 3:
                body += struct.pack(">qh", -1, -1)
            body += TAGS_NONE
        else:
            body = string(None) + struct.pack(">i", 60000)
        corr = self.send_request(API_INIT_PRODUCER_ID, v, body)
        resp = self.recv_response(corr, flexible_header=flexible)
        _throttle, error, pid, epoch = struct.unpack_from(">ihqh", resp, 0)
        assert error == NONE, f"InitProducerId v{v} error {error}"
        return pid, epoch

    def produce(self, topic, partition, records: bytes, acks=-1, timeout_ms=30000):
        """Sends one Produce request for one partition; returns (error_code, base_offset)."""
        corr, flexible = self.send_produce(topic, partition, records, acks, timeout_ms)
        resp = self.recv_response(corr, flexible_header=flexible)
        return parse_produce_first_partition(resp, flexible)

    def send_produce(self, topic, partition, records: bytes, acks=-1, timeout_ms=30000):
        """Sends one Produce request for one partition without waiting for its response (call
        `api_versions` before pipelining); returns (correlation id, flexible header)."""
        v = self.pick_version(API_PRODUCE, [7, 8, 6, 5, 4, 3, 9, 10, 11, 12])
        flexible = v >= FIRST_FLEXIBLE[API_PRODUCE]
        s = compact_string if flexible else string
        tags = TAGS_NONE if flexible else b""
        body = (s(None) + struct.pack(">hi", acks, timeout_ms)
                + array_len(1, flexible) + s(topic)
                + array_len(1, flexible) + struct.pack(">i", partition) + nbytes(records, flexible) + tags
                + tags + tags)
        return self.send_request(API_PRODUCE, v, body), flexible

    def offset_for_leader_epoch(self, topic, partitions):
        """OffsetForLeaderEpoch v3 as a consumer (replica -1) for one topic. `partitions` is a list
        of (partition, current_leader_epoch, leader_epoch); returns a list of
        (error_code, partition, leader_epoch, end_offset) in response order."""
        body = struct.pack(">i", -1) + struct.pack(">i", 1) + string(topic) + struct.pack(">i", len(partitions))
        for partition, current_epoch, epoch in partitions:
            body += struct.pack(">iii", partition, current_epoch, epoch)
        corr = self.send_request(API_OFFSET_FOR_LEADER_EPOCH, 3, body)
        resp = self.recv_response(corr)
        _throttle, n_topics = struct.unpack_from(">ii", resp, 0)
        assert n_topics == 1, n_topics
        (name_len,) = struct.unpack_from(">h", resp, 8)
        pos = 10 + name_len
        (n_parts,) = struct.unpack_from(">i", resp, pos)
        pos += 4
        out = []
        for _ in range(n_parts):
            out.append(struct.unpack_from(">hiiq", resp, pos))
            pos += 18
        return out


def fetch_v4_body(topic, partition, offset, max_wait_ms=500, max_bytes=1 << 20):
    """A Fetch v4 request body for one partition: consumer (replica -1), min_bytes 1,
    read_uncommitted. Send it with `send_request(API_FETCH, 4, body, flexible=False)`."""
    return (struct.pack(">iiiib", -1, max_wait_ms, 1, max_bytes, 0) + struct.pack(">i", 1) + string(topic)
            + struct.pack(">i", 1) + struct.pack(">iqi", partition, offset, max_bytes))


def parse_produce_first_partition(resp: bytes, flexible: bool):
    """(error_code, base_offset) of the first partition in a Produce response."""
    pos = 0
    if flexible:
        n_topics, pos = read_uvarint(resp, pos)
        n_topics -= 1
        name_len, pos = read_uvarint(resp, pos)
        pos += name_len - 1
        n_parts, pos = read_uvarint(resp, pos)
        n_parts -= 1
    else:
        (n_topics,) = struct.unpack_from(">i", resp, pos)
        pos += 4
        (name_len,) = struct.unpack_from(">h", resp, pos)
        pos += 2 + name_len
        (n_parts,) = struct.unpack_from(">i", resp, pos)
        pos += 4
    assert n_topics == 1 and n_parts == 1, (n_topics, n_parts)
    _index, error, base_offset = struct.unpack_from(">ihq", resp, pos)
    return error, base_offset
