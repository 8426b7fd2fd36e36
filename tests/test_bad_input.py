"""Goal: malformed or hostile requests cost at most their own connection and get Kafka's error codes; method: hand-built frames over raw sockets, each followed by a check that a real client still works."""

import struct
import time

import pytest

from helpers import create_topic, produce_all, producer, read_all, unique, wait_until, watermarks
from kafka_wire import (API_API_VERSIONS, API_FETCH, BATCH_CRC_OFFSET, CORRUPT_MESSAGE, NONE, UNKNOWN_TOPIC_OR_PARTITION,
                        UNSUPPORTED_VERSION, ConnectionClosed, RawConn, compact_string, fetch_v4_body,
                        parse_produce_first_partition, record_batch)

MAX_FRAME = 64 * 1024


@pytest.fixture
def b(broker_factory):
    return broker_factory(["--max-frame-bytes", str(MAX_FRAME)])


def still_serving(broker):
    """A fresh raw connection gets ApiVersions answered and a real client round-trips a record."""
    with RawConn(broker.bootstrap) as c:
        versions = c.api_versions()
        assert API_API_VERSIONS in versions
    topic = unique("alive")
    produce_all(producer(broker.bootstrap), topic, [(b"k", b"still serving")])
    assert [m.value() for m in read_all(broker.bootstrap, topic)] == [b"still serving"]


def test_frame_over_max_frame_bytes_closes_only_that_connection(b):
    with RawConn(b.bootstrap) as bystander:
        with RawConn(b.bootstrap) as c:
            c.send_raw(struct.pack(">i", MAX_FRAME + 1) + b"\x00" * 1024)
            assert c.wait_closed(), "an oversized frame did not close its connection"
        # The other connection is unaffected.
        assert API_API_VERSIONS in bystander.api_versions()
    still_serving(b)


def test_negative_frame_size_closes_connection(b):
    with RawConn(b.bootstrap) as c:
        c.send_raw(struct.pack(">i", -5) + b"junk")
        assert c.wait_closed(), "a negative frame size did not close the connection"
    still_serving(b)


def test_truncated_frame_then_close(b):
    with RawConn(b.bootstrap) as c:
        frame = c.header(API_API_VERSIONS, 0, flexible=False)
        c.send_raw(struct.pack(">i", 100) + frame[:8])
    still_serving(b)


def closed_or_answered(c, timeout=15):
    """'closed' or the response frame; silence (a hung connection) fails the test."""
    c.sock.settimeout(timeout)
    try:
        return c.recv_frame()
    except ConnectionClosed:
        return "closed"
    except TimeoutError:
        raise AssertionError(f"neither an answer nor a close within {timeout}s")


def test_garbage_frame_body(b):
    with RawConn(b.bootstrap) as c:
        c.send_raw(struct.pack(">i", 9) + b"\xff" * 9)
        closed_or_answered(c)
    still_serving(b)


def test_unknown_api_key(b):
    with RawConn(b.bootstrap) as c:
        c.send_request(9999, 0, b"", flexible=False)
        frame = closed_or_answered(c)  # Kafka closes the connection
        if frame != "closed":
            corr, = struct.unpack_from(">i", frame, 0)
            assert corr == c.correlation_id, "a response to an unknown API must echo its correlation id"
    still_serving(b)


def test_unsupported_api_versions_version_gets_error_35(b):
    with RawConn(b.bootstrap) as c:
        # Clients send ApiVersions v3+ with a flexible header; a v99 request looks like that too.
        body = compact_string("sluice-tests") + compact_string("1.0") + b"\x00"
        corr = c.send_request(API_API_VERSIONS, 99, body, flexible=True)
        resp = c.recv_response(corr)  # ApiVersions answers always use response header v0
        error, = struct.unpack_from(">h", resp, 0)
        assert error == UNSUPPORTED_VERSION
        # Kafka's error answer still lists ApiVersions so the client can retry with a version it has.
        n, = struct.unpack_from(">i", resp, 2)
        keys = {struct.unpack_from(">hhh", resp, 6 + 6 * i)[0]: struct.unpack_from(">hhh", resp, 6 + 6 * i)[1:]
                for i in range(n)}
        assert API_API_VERSIONS in keys, keys
        # The connection stays usable with a supported version.
        assert API_API_VERSIONS in c.api_versions()
    still_serving(b)


def test_produce_with_wrong_crc_is_corrupt_message(b):
    topic = create_topic(b.bootstrap, unique("crc"), partitions=1)
    batch = bytearray(record_batch([(b"k", b"v", [])]))
    batch[BATCH_CRC_OFFSET] ^= 0xFF
    with RawConn(b.bootstrap) as c:
        error, _ = c.produce(topic, 0, bytes(batch))
        assert error == CORRUPT_MESSAGE
        # Nothing was appended; a good batch on the same connection lands at offset 0.
        assert c.produce(topic, 0, record_batch([(b"k", b"good", [])])) == (NONE, 0)
    assert [m.value() for m in read_all(b.bootstrap, topic)] == [b"good"]
    still_serving(b)


def test_produce_to_missing_partition_is_unknown_topic_or_partition(b):
    topic = create_topic(b.bootstrap, unique("nopart"), partitions=1)
    with RawConn(b.bootstrap) as c:
        error, _ = c.produce(topic, 7, record_batch([(b"k", b"v", [])]))
        assert error == UNKNOWN_TOPIC_OR_PARTITION
    still_serving(b)


def test_produce_batch_claiming_more_bytes_than_sent(b):
    topic = create_topic(b.bootstrap, unique("short"), partitions=1)
    batch = bytearray(record_batch([(b"k", b"v" * 50, [])]))
    struct.pack_into(">i", batch, 8, len(batch) + 100)  # batchLength past the end of the records field
    with RawConn(b.bootstrap) as c:
        try:
            error, _ = c.produce(topic, 0, bytes(batch))
            assert error != NONE, "a batch longer than its records field was accepted"
        except ConnectionClosed:
            pass  # also acceptable: the request is malformed
    assert read_all(b.bootstrap, topic) == []
    still_serving(b)


def test_idle_connections_are_closed_but_a_waiting_fetch_is_not_idleness(broker_factory):
    """connection_idle_timeout_ms closes a connection that sends nothing more; one whose long-poll
    fetch is parked longer than that is answered first, and only then closed."""
    b = broker_factory(["--connection-idle-timeout-ms", "300"])
    topic = create_topic(b.bootstrap, unique("idle"))
    with RawConn(b.bootstrap) as idle:
        idle.api_versions()
        assert idle.wait_closed(timeout=30), "a connection idle past the timeout stayed open"
    with RawConn(b.bootstrap) as waiting:
        corr = waiting.send_request(API_FETCH, 4, fetch_v4_body(topic, 0, 0, max_wait_ms=1500), flexible=False)
        waiting.recv_response(corr)  # ConnectionClosed here would mean the wait counted as idle
        assert waiting.wait_closed(timeout=30), "idle after its fetch, the connection stayed open"
    still_serving(b)


@pytest.mark.parametrize("limit", [1, None])
def test_max_in_flight_per_connection_stops_reading_the_connection(broker_factory, limit):
    """Behind a long-poll fetch parked for 4 s, a pipelined produce runs at once with the default
    limit (32), but with max_in_flight_per_connection=1 it is not even read until the fetch is
    answered: a client cannot make the broker hold more of its requests than the limit."""
    b = broker_factory(["--max-in-flight-per-connection", str(limit)] if limit else [])
    parked, target = create_topic(b.bootstrap, unique("parked")), create_topic(b.bootstrap, unique("target"))
    with RawConn(b.bootstrap) as conn:
        conn.api_versions()
        fetch = conn.send_request(API_FETCH, 4, fetch_v4_body(parked, 0, 0, max_wait_ms=4000), flexible=False)
        produce, flexible = conn.send_produce(target, 0, record_batch([(b"k", b"behind the fetch", [])]), acks=1)
        if limit is None:
            wait_until(lambda: watermarks(b.bootstrap, target)[1] == 1, 3.5, message="the pipelined produce ran")
        else:
            time.sleep(1.5)
            assert watermarks(b.bootstrap, target)[1] == 0, "the produce ran while the fetch held the only slot"
        conn.recv_response(fetch)
        assert parse_produce_first_partition(conn.recv_response(produce, flexible_header=flexible), flexible)[0] == NONE
    assert watermarks(b.bootstrap, target)[1] == 1
