"""Goal: recovery cuts a damaged segment tail back to the last valid batch and keeps serving; method: stop the broker, truncate or corrupt the last batch of the .log file, restart, read and produce."""

import pytest

from helpers import create_topic, produce_all, producer, read_all, segment_files, unique, watermarks
from kafka_wire import iter_batches

BATCHES = 40
PER_BATCH = 10


def write_batches(broker, shutdown):
    """BATCHES batches of PER_BATCH records each (one flush per batch), then a graceful stop
    (SIGTERM: the log records a clean shutdown) or a crash (kill -9). Returns the topic and the
    values in offset order."""
    topic = create_topic(broker.bootstrap, unique("torn"), partitions=1)
    p = producer(broker.bootstrap, **{"linger.ms": 50})
    values = []
    for b in range(BATCHES):
        batch = [(b"k%d" % b, b"batch %03d record %d " % (b, i) + b"x" * 100) for i in range(PER_BATCH)]
        produce_all(p, topic, batch, partition=0)
        values += [v for _k, v in batch]
    assert watermarks(broker.bootstrap, topic)[1] == len(values)
    if shutdown == "sigterm":
        broker.stop()
    else:
        broker.kill9()
    return topic, values


def last_batch(broker, topic):
    segs = segment_files(broker.partition_dir(topic))
    assert segs, f"no .log segment in {broker.partition_dir(topic)}"
    seg = segs[-1]
    data = seg.read_bytes()
    batches = list(iter_batches(data))
    assert batches, f"{seg} holds no whole batch"
    end_of_valid = batches[-1][0] + batches[-1][2]
    assert end_of_valid == len(data), f"{seg}: {len(data) - end_of_valid} trailing bytes after the last batch"
    return seg, data, batches


def check_after_recovery(broker, topic, values, kept_records):
    bootstrap = broker.start()
    low, high = watermarks(bootstrap, topic)
    assert high == kept_records, f"log end offset {high} after recovery, want {kept_records}"
    got = read_all(bootstrap, topic)
    assert [m.value() for m in got] == values[:kept_records]
    assert [m.offset() for m in got] == list(range(kept_records))
    # New records go right after the last valid batch and are readable.
    d = produce_all(producer(bootstrap), topic, [(b"new", b"after recovery %d" % i) for i in range(3)], partition=0)
    assert sorted(off for _p, off, _k, _v in d.ok) == [kept_records, kept_records + 1, kept_records + 2]
    got = read_all(bootstrap, topic)
    assert [m.value() for m in got] == values[:kept_records] + [b"after recovery %d" % i for i in range(3)]


@pytest.mark.parametrize("shutdown", ["sigterm", "kill9"])
@pytest.mark.parametrize("cut", ["in_header", "mid_batch", "one_byte_short"])
def test_truncated_last_batch_is_cut_off(broker, cut, shutdown):
    topic, values = write_batches(broker, shutdown)
    seg, data, batches = last_batch(broker, topic)
    pos, base, length, count = batches[-1]
    cut_at = {"in_header": pos + 6, "mid_batch": pos + length // 2, "one_byte_short": pos + length - 1}[cut]
    with open(seg, "r+b") as f:
        f.truncate(cut_at)
    check_after_recovery(broker, topic, values, kept_records=base)


@pytest.mark.parametrize("shutdown", ["sigterm", "kill9"])
@pytest.mark.parametrize("where", ["records", "crc"])
def test_corrupted_last_batch_is_cut_off(broker, where, shutdown):
    topic, values = write_batches(broker, shutdown)
    seg, data, batches = last_batch(broker, topic)
    pos, base, length, count = batches[-1]
    # The CRC covers attributes..end; flipping a payload byte or the stored CRC both break it.
    at = {"records": pos + length - 20, "crc": pos + 17}[where]
    damaged = bytearray(data)
    for i in range(at, at + 4):
        damaged[i] ^= 0xFF
    seg.write_bytes(bytes(damaged))
    check_after_recovery(broker, topic, values, kept_records=base)
