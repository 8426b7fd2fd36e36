"""Goal: the seed article's kafka-python producer and consumer work unchanged; method: run them as written against a fresh broker."""

import json

from kafka import KafkaConsumer, KafkaProducer


def test_seed_producer_and_consumer(broker):
    bootstrap = broker.bootstrap

    producer = KafkaProducer(bootstrap_servers=bootstrap, value_serializer=lambda v: json.dumps(v).encode())
    future = producer.send('test_topic', {'key': 'value'})
    metadata = future.get(timeout=30)
    assert metadata.topic == 'test_topic'
    assert metadata.offset == 0, "first record of a new topic gets offset 0"
    producer.close()

    consumer = KafkaConsumer('test_topic', group_id='test_group', bootstrap_servers=bootstrap,
                             auto_offset_reset='earliest', consumer_timeout_ms=30000)
    received = []
    for message in consumer:
        received.append(json.loads(message.value))
        break
    consumer.close()
    assert received == [{'key': 'value'}]
