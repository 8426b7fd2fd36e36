// KafkaJS round trip against a real broker: create a topic, produce keyed records with headers
// (uncompressed and gzip), consume them in a consumer group, commit, and print a JSON summary on
// stdout for tests/test_kafkajs.py to check. Usage: node roundtrip.js BOOTSTRAP TOPIC GROUP COUNT
const { Kafka, CompressionTypes, logLevel } = require('kafkajs');

async function main() {
  const [bootstrap, topic, group, countArg] = process.argv.slice(2);
  const count = Number(countArg);
  const kafka = new Kafka({ clientId: 'sluice-kafkajs-test', brokers: [bootstrap], logLevel: logLevel.WARN });

  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
  await admin.disconnect();

  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const half = Math.floor(count / 2);
  const batch = (from, to) => Array.from({ length: to - from }, (_, j) => {
    const i = from + j;
    return { key: `k${i % 17}`, value: `value-${i}`, headers: { seq: `${i}` } };
  });
  await producer.send({ topic, messages: batch(0, half), acks: -1 });
  await producer.send({ topic, messages: batch(half, count), acks: -1, compression: CompressionTypes.GZIP });
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId: group, sessionTimeout: 10000, heartbeatInterval: 1000 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen = [];
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out with ${seen.length}/${count} records`)), 60000);
    consumer.run({
      eachMessage: async ({ partition, message }) => {
        seen.push({ partition, offset: message.offset, key: message.key.toString(),
                    value: message.value.toString(), seq: message.headers.seq.toString() });
        if (seen.length === count) { clearTimeout(timer); resolve(); }
      },
    }).catch(reject);
  });
  await consumer.commitOffsets([]).catch(() => {}); // autoCommit already committed; flush if pending
  await consumer.disconnect();

  const admin2 = kafka.admin();
  await admin2.connect();
  const committed = await admin2.fetchOffsets({ groupId: group, topics: [topic] });
  await admin2.disconnect();
  process.stdout.write(JSON.stringify({ seen, committed }) + '\n');
}

main().catch((e) => { process.stderr.write(`kafkajs roundtrip failed: ${e.stack || e}\n`); process.exit(1); });
