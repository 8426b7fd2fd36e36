"""Goal: the admin HTTP topic and group routes change and report what Kafka clients see; method:
drive /v1/topics and /v1/groups with urllib against a real broker and check every change with
confluent-kafka's AdminClient, Producer and Consumer (and the reverse: Kafka-side changes show in
the routes)."""

from confluent_kafka import TopicPartition
from confluent_kafka.admin import ConfigResource

from helpers import (admin, close_consumers, consumer, create_topic, produce_all, producer, unique,
                     wait_for_partitions, wait_until)
from transforms import request as call  # (status, parsed JSON) of an admin request


def kafka_configs(bootstrap, topic):
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    a = admin(bootstrap)  # keep the handle alive until the future resolves
    return a.describe_configs([res])[res].result(timeout=30)


def test_create_describe_alter_delete_topic(broker):
    name = unique("http")
    status, body = call(broker, "POST", "/v1/topics",
                        {"name": name, "partitions": 3, "configs": {"retention.ms": "3600000"}})
    assert status == 201, body
    assert [p["partition"] for p in body["partitions"]] == [0, 1, 2]
    assert body["configs"]["retention.ms"] == {"value": "3600000", "source": "topic"}
    assert body["configs"]["segment.bytes"]["source"] == "default"

    # Kafka sees the topic, its partitions and its override.
    wait_for_partitions(broker.bootstrap, name, 3)
    assert kafka_configs(broker.bootstrap, name)["retention.ms"].value == "3600000"

    # Records produced with Kafka show up in the partition offsets.
    produce_all(producer(broker.bootstrap), name, [(b"k", b"v%d" % i) for i in range(5)], partition=1)
    status, body = call(broker, "GET", f"/v1/topics/{name}")
    assert status == 200, body
    assert [p["high_watermark"] for p in body["partitions"]] == [0, 5, 0]
    assert body["partitions"][1]["size_bytes"] > 0 and body["partitions"][1]["segments"] >= 1

    status, listing = call(broker, "GET", "/v1/topics")
    assert status == 200
    mine = [t for t in listing if t["name"] == name]
    assert mine == [{"name": name, "partitions": 3, "configs": {"retention.ms": "3600000"}, "internal": False}]

    # PATCH: grow, set one config, reset another to its default (null).
    status, body = call(broker, "PATCH", f"/v1/topics/{name}",
                        {"partitions": 5, "configs": {"retention.ms": None, "cleanup.policy": "compact"}})
    assert status == 200, body
    assert len(body["partitions"]) == 5
    wait_for_partitions(broker.bootstrap, name, 5)
    configs = kafka_configs(broker.bootstrap, name)
    assert configs["cleanup.policy"].value == "compact"
    assert configs["retention.ms"].value == "604800000" and configs["retention.ms"].is_default

    # Shrinking is refused with the same message as CreatePartitions.
    status, body = call(broker, "PATCH", f"/v1/topics/{name}", {"partitions": 2})
    assert status == 400 and body["error"] == "invalid_partitions", body
    assert "must be larger" in body["message"]

    status, body = call(broker, "DELETE", f"/v1/topics/{name}")
    assert status == 204, body
    md = admin(broker.bootstrap).list_topics(timeout=10)
    assert name not in md.topics
    status, body = call(broker, "DELETE", f"/v1/topics/{name}")
    assert status == 404 and body["error"] == "unknown_topic", body


def test_topic_errors_match_the_kafka_api(broker):
    name = create_topic(broker.bootstrap, unique("exists"))
    status, body = call(broker, "POST", "/v1/topics", {"name": name, "partitions": 1})
    assert status == 409 and body["error"] == "topic_exists", body

    status, body = call(broker, "POST", "/v1/topics", {"name": "bad name"})
    assert status == 400 and body["error"] == "invalid_topic", body

    status, body = call(broker, "POST", "/v1/topics", {"name": unique("cfg"), "configs": {"retention.ms": "soon"}})
    assert status == 400 and body["error"] == "invalid_config", body
    assert "retention.ms" in body["message"] and "not an integer" in body["message"]

    status, body = call(broker, "POST", "/v1/topics", {"name": unique("cfg"), "configs": {"no.such": "1"}})
    assert status == 400 and "unknown topic config" in body["message"], body

    status, body = call(broker, "POST", "/v1/topics", {"name": unique("typo"), "partitons": 3})
    assert status == 400 and body["error"] == "invalid_body" and "partitons" in body["message"], body

    status, body = call(broker, "PATCH", f"/v1/topics/{name}", {"configs": {"segment.ms": "-5"}})
    assert status == 400 and body["error"] == "invalid_config", body

    status, body = call(broker, "GET", "/v1/topics/no-such-topic")
    assert status == 404 and body == {"error": "unknown_topic", "message": "unknown topic no-such-topic"}

    # validate_only changes nothing but shows what would be made.
    dry = unique("dry")
    status, body = call(broker, "POST", "/v1/topics", {"name": dry, "partitions": 4, "validate_only": True})
    assert status == 200 and len(body["partitions"]) == 4, body
    assert dry not in admin(broker.bootstrap).list_topics(timeout=10).topics
    status, _ = call(broker, "GET", f"/v1/topics/{dry}")
    assert status == 404


def test_groups_show_members_assignment_and_lag(broker):
    topic = create_topic(broker.bootstrap, unique("lag"), partitions=2)
    produce_all(producer(broker.bootstrap), topic, [(None, b"a%d" % i) for i in range(10)], partition=0)
    produce_all(producer(broker.bootstrap), topic, [(None, b"b%d" % i) for i in range(4)], partition=1)
    group = unique("g")
    c = consumer(broker.bootstrap, group=group, **{"client.id": "lag-reader"})
    try:
        c.subscribe([topic])
        wait_until(lambda: c.poll(0.2) is None and c.assignment(), 30, message="assignment")
        c.commit(offsets=[TopicPartition(topic, 0, 7), TopicPartition(topic, 1, 4)], asynchronous=False)

        def stable():
            status, body = call(broker, "GET", f"/v1/groups/{group}")
            return body if status == 200 and body["state"] == "Stable" and body["members"] else None
        body = wait_until(stable, 30, message="stable group")
        assert body["protocol_type"] == "consumer"
        [member] = body["members"]
        assert member["client_id"] == "lag-reader"
        assigned = {(a["topic"], p) for a in member["assignment"] for p in a["partitions"]}
        assert assigned == {(topic, 0), (topic, 1)}
        offsets = {(o["topic"], o["partition"]): (o["committed_offset"], o["high_watermark"], o["lag"])
                   for o in body["offsets"]}
        assert offsets == {(topic, 0): (7, 10, 3), (topic, 1): (4, 4, 0)}
        assert body["total_lag"] == 3

        status, groups = call(broker, "GET", "/v1/groups")
        assert status == 200
        assert {"group_id": group, "state": "Stable", "protocol": "consumer", "members": 1} in groups
    finally:
        close_consumers([c])

    # After the member leaves the group is Empty but its offsets (and lag) remain.
    def empty():
        status, body = call(broker, "GET", f"/v1/groups/{group}")
        return body if status == 200 and body["state"] == "Empty" else None
    body = wait_until(empty, 30, message="empty group")
    assert body["members"] == [] and body["total_lag"] == 3

    status, body = call(broker, "GET", "/v1/groups/no-such-group")
    assert status == 404 and body["error"] == "unknown_group", body
