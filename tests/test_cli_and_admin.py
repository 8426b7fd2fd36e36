"""Goal: the CLI, the admin HTTP API, graceful shutdown and config precedence behave as documented; method: run the binary with flags, env and a config file and read /healthz and /v1/cluster."""

import signal
import subprocess

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from conftest import broker_env, sluice_binary
from helpers import create_topic, produce_all, producer, read_all, unique


def test_serve_help():
    r = subprocess.run([str(sluice_binary()), "serve", "--help"], capture_output=True, timeout=30,
                       env=broker_env())
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    for flag in ["--kafka-addr", "--admin-addr", "--data-dir", "--config", "--max-frame-bytes",
                 "--log-maintenance-interval-ms", "--group-initial-rebalance-delay-ms"]:
        assert flag in out, f"{flag} missing from `sluice serve --help`"


def test_bad_config_file_is_a_clear_error(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("kafka_adr: 127.0.0.1:1\n")
    r = subprocess.run([str(sluice_binary()), "serve", "--config", str(cfg), "--data-dir", str(tmp_path / "d")],
                       capture_output=True, timeout=30, env=broker_env())
    assert r.returncode != 0
    err = r.stderr.decode()
    assert "bad.yaml" in err and "kafka_adr" in err, err
    assert "panicked" not in err, err


def test_healthz_and_cluster_info(broker):
    status, body = broker.http_get("/healthz")
    assert status == 200, body
    info = broker.cluster_info()
    assert info["kafka_addr"] == broker.kafka
    assert info["admin_addr"] == broker.admin
    assert info["advertised_addr"] == broker.advertised == broker.kafka
    assert info["node_id"] == 0
    assert info["data_dir"] == str(broker.data_dir)
    assert info["cluster_id"], info
    assert info["object_store"].startswith("file://"), info
    status, _ = broker.http_get("/no-such-page")
    assert status == 404


def test_sigterm_exits_zero_and_restart_keeps_data(broker):
    topic = create_topic(broker.bootstrap, unique("restart"), partitions=2)
    produce_all(producer(broker.bootstrap), topic, [(b"k%d" % i, b"v%d" % i) for i in range(100)])
    cluster_id = broker.cluster_info()["cluster_id"]
    broker.stop()  # asserts exit code 0
    bootstrap = broker.start()
    assert broker.cluster_info()["cluster_id"] == cluster_id, "cluster id changed across a restart"
    got = read_all(bootstrap, topic)
    assert sorted(m.value() for m in got) == sorted(b"v%d" % i for i in range(100))
    broker.stop()


def test_precedence_flag_over_env_over_file(broker_factory, tmp_path):
    cfg = tmp_path / "sluice.yaml"
    cfg.write_text("node_id: 1\nnum_partitions: 3\n")
    file_only = broker_factory(["--config", str(cfg)])
    assert file_only.cluster_info()["node_id"] == 1
    file_only.stop()

    env_over_file = broker_factory(["--config", str(cfg)], env={"SLUICE_NODE_ID": "2"})
    assert env_over_file.cluster_info()["node_id"] == 2
    env_over_file.stop()

    flag_over_env = broker_factory(["--config", str(cfg), "--node-id", "3"], env={"SLUICE_NODE_ID": "2"})
    assert flag_over_env.cluster_info()["node_id"] == 3
    # A file setting that nothing overrides still applies (auto-created topics get 3 partitions).
    topic = unique("auto")
    produce_all(producer(flag_over_env.bootstrap), topic, [(b"k", b"v")])
    md = AdminClient({"bootstrap.servers": flag_over_env.bootstrap}).list_topics(topic, timeout=10)
    assert len(md.topics[topic].partitions) == 3
    flag_over_env.stop()


def test_config_file_via_env(broker_factory, tmp_path):
    cfg = tmp_path / "via-env.yaml"
    cfg.write_text("node_id: 5\n")
    b = broker_factory(env={"SLUICE_CONFIG": str(cfg)})
    assert b.cluster_info()["node_id"] == 5
    b.stop()


def test_sigterm_answers_parked_long_poll_fetches(broker):
    """A consumer parked in a long-poll fetch (fetch.wait.max.ms=30000 on an empty partition) must
    not hold a graceful stop for its max wait: the stop answers it at once. The bound below is
    a liveness bound far above the expected milliseconds, not a performance figure."""
    topic = create_topic(broker.bootstrap, unique("parked"), partitions=1)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique("g"), "fetch.wait.max.ms": 30000,
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    for _ in range(6):  # a few polls: the consumer is now parked in a fetch
        c.poll(0.5)
    broker.proc.send_signal(signal.SIGTERM)
    try:
        code = broker.proc.wait(timeout=15)
    finally:
        c.close()
    assert code == 0, broker.stderr_tail()
