//! Wire-level tests of the Kafka protocol layer: an in-process broker on a free port, driven with
//! raw frames encoded by kafka-protocol's client-side codecs.

mod wire;

use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tokio::io::AsyncWriteExt;
use wire::{batch, values, Client, TestBroker};

/// An idempotent (non-transactional) InitProducerId: the codec's default has an empty
/// transactional id, which is not the same as none.
fn init_request() -> InitProducerIdRequest {
    InitProducerIdRequest::default().with_transactional_id(None)
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn produce_request(topic: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    let data = PartitionProduceData::default().with_index(partition).with_records(Some(records));
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default().with_name(name(topic)).with_partition_data(vec![data])])
}

async fn produce(client: &mut Client, topic: &str, partition: i32, records: Bytes) -> anyhow::Result<(i16, i64)> {
    let response = client.call(&produce_request(topic, partition, records, -1), 9).await?;
    let p = &response.responses[0].partition_responses[0];
    Ok((p.error_code, p.base_offset))
}

fn fetch_request(topic: &str, offset: i64, max_wait_ms: i32) -> FetchRequest {
    let partition = FetchPartition::default().with_partition(0).with_fetch_offset(offset).with_partition_max_bytes(1 << 20);
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default().with_topic(name(topic)).with_partitions(vec![partition])])
}

async fn create_topic(client: &mut Client, topic: &str) -> anyhow::Result<uuid::Uuid> {
    let request = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(name(topic)))]))
        .with_allow_auto_topic_creation(true);
    let response = client.call(&request, 12).await?;
    anyhow::ensure!(response.topics[0].error_code == 0, "metadata error {}", response.topics[0].error_code);
    Ok(response.topics[0].topic_id)
}

/// ApiVersions v3 advertises our table with no error, and never KIP-848 or transactions.
#[tokio::test]
async fn api_versions_advertises_the_table() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let mut client = broker.client().await?;
    let request = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("test"))
        .with_client_software_version(StrBytes::from_static_str("1"));
    let response = client.call(&request, 3).await?;
    assert_eq!(response.error_code, 0);
    let produce = response.api_keys.iter().find(|k| k.api_key == ApiKey::Produce as i16).expect("produce advertised");
    assert_eq!((produce.min_version, produce.max_version), (3, 11));
    for absent in [ApiKey::ConsumerGroupHeartbeat, ApiKey::EndTxn, ApiKey::AddPartitionsToTxn] {
        assert!(response.api_keys.iter().all(|k| k.api_key != absent as i16), "{absent:?} must not be advertised");
    }
    Ok(())
}

/// An ApiVersions version we do not know gets UNSUPPORTED_VERSION at v0 with the table, which is
/// how clients negotiate down.
#[tokio::test]
async fn api_versions_unsupported_version_answers_v0() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let mut client = broker.client().await?;
    let (correlation_id, frame) = client.frame(&ApiVersionsRequest::default(), 3)?;
    let mut frame = BytesMut::from(&frame[..]);
    frame[6..8].copy_from_slice(&77i16.to_be_bytes()); // the version field, after the size prefix
    client.stream.write_all(&frame).await?;
    let response = client.recv::<ApiVersionsRequest>(correlation_id, 0).await?;
    assert_eq!(response.error_code, ResponseError::UnsupportedVersion.code());
    assert!(response.api_keys.iter().any(|k| k.api_key == ApiKey::ApiVersions as i16 && k.max_version == 3));
    Ok(())
}

/// Metadata auto-creates a requested topic, with a topic id, led by this broker.
#[tokio::test]
async fn metadata_auto_creates_topics() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let mut client = broker.client().await?;
    let id = create_topic(&mut client, "auto1").await?;
    assert!(!id.is_nil());
    let response = client.call(&MetadataRequest::default().with_topics(None), 12).await?;
    let topic = response.topics.iter().find(|t| t.name == Some(name("auto1"))).expect("listed");
    assert_eq!(topic.partitions.len(), 1);
    assert_eq!(topic.partitions[0].leader_id, BrokerId(broker.broker.config.node_id));
    assert_eq!(response.brokers[0].port, i32::from(broker.addr.port()));
    let bad = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(name("bad name!")))]))
        .with_allow_auto_topic_creation(true);
    let response = client.call(&bad, 12).await?;
    assert_eq!(response.topics[0].error_code, ResponseError::InvalidTopicException.code());
    Ok(())
}

/// Produced records come back from Fetch, by name (v12) and by topic id (v16).
#[tokio::test]
async fn produce_then_fetch_round_trip() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let mut client = broker.client().await?;
    let id = create_topic(&mut client, "rt").await?;
    assert_eq!(produce(&mut client, "rt", 0, batch(&["a", "b", "c"], None)).await?, (0, 0));
    assert_eq!(produce(&mut client, "rt", 0, batch(&["d"], None)).await?, (0, 3));
    let response = client.call(&fetch_request("rt", 1, 0), 12).await?;
    let p = &response.responses[0].partitions[0];
    assert_eq!((p.error_code, p.high_watermark), (0, 4));
    let got = values(p.records.clone());
    // Whole batches are returned: the first one starts before offset 1.
    assert_eq!(got.iter().map(|(o, v)| format!("{o}{v}")).collect::<Vec<_>>(), ["0a", "1b", "2c", "3d"]);

    let mut by_id = fetch_request("", 3, 0);
    by_id.topics[0].topic_id = id;
    let response = client.call(&by_id, 16).await?;
    assert_eq!(response.responses[0].topic_id, id);
    assert_eq!(values(response.responses[0].partitions[0].records.clone()), [(3, "d".to_string())]);

    let response = client.call(&fetch_request("rt", 99, 0), 12).await?;
    assert_eq!(response.responses[0].partitions[0].error_code, ResponseError::OffsetOutOfRange.code());
    Ok(())
}

/// A fetch at the log end waits until a produce on another connection wakes it, and an idle
/// fetch returns empty after max_wait_ms.
#[tokio::test]
async fn long_poll_fetch_waits_and_wakes() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let mut consumer = broker.client().await?;
    let mut producer = broker.client().await?;
    create_topic(&mut consumer, "lp").await?;

    let started = Instant::now();
    let response = consumer.call(&fetch_request("lp", 0, 300), 12).await?;
    assert!(values(response.responses[0].partitions[0].records.clone()).is_empty());
    assert!(started.elapsed() >= Duration::from_millis(250), "returned after {:?}", started.elapsed());

    let started = Instant::now();
    let correlation_id = consumer.send(&fetch_request("lp", 0, 10_000), 12).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    produce(&mut producer, "lp", 0, batch(&["wake"], None)).await?;
    let response = consumer.recv::<FetchRequest>(correlation_id, 12).await?;
    assert_eq!(values(response.responses[0].partitions[0].records.clone()), [(0, "wake".to_string())]);
    assert!(started.elapsed() < Duration::from_secs(5), "woke after {:?}", started.elapsed());
    Ok(())
}

/// A retried idempotent batch gets its original offset without being appended again; a gap is
/// OUT_OF_ORDER_SEQUENCE_NUMBER; an old epoch is INVALID_PRODUCER_EPOCH.
#[tokio::test]
async fn idempotent_duplicates_and_gaps() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let mut client = broker.client().await?;
    create_topic(&mut client, "idem").await?;
    let init = client
        .call(&init_request().with_transaction_timeout_ms(60_000).with_producer_id(ProducerId(-1)).with_producer_epoch(-1), 4)
        .await?;
    assert_eq!(init.error_code, 0);
    let pid = init.producer_id.0;
    let first = batch(&["1", "2", "3"], Some((pid, 0, 0)));
    assert_eq!(produce(&mut client, "idem", 0, first.clone()).await?, (0, 0));
    assert_eq!(produce(&mut client, "idem", 0, first).await?, (0, 0), "duplicate acknowledged at its offset");
    let (code, _) = produce(&mut client, "idem", 0, batch(&["x"], Some((pid, 0, 7)))).await?;
    assert_eq!(code, ResponseError::OutOfOrderSequenceNumber.code());
    assert_eq!(produce(&mut client, "idem", 0, batch(&["4"], Some((pid, 0, 3)))).await?, (0, 3));
    assert_eq!(produce(&mut client, "idem", 0, batch(&["5"], Some((pid, 1, 0)))).await?, (0, 4), "epoch bump at seq 0");
    let (code, _) = produce(&mut client, "idem", 0, batch(&["6"], Some((pid, 0, 4)))).await?;
    assert_eq!(code, ResponseError::InvalidProducerEpoch.code());
    assert_eq!(broker.broker.partition("idem", 0).expect("exists").log_end_offset(), 5);

    let again = client.call(&init_request().with_producer_id(ProducerId(-1)).with_producer_epoch(-1), 4).await?;
    assert_ne!(again.producer_id.0, pid);
    Ok(())
}

/// Pipelined produce requests are appended and answered in the order sent.
#[tokio::test]
async fn pipelined_produces_keep_order() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let mut client = broker.client().await?;
    create_topic(&mut client, "pipe").await?;
    let init = client.call(&init_request().with_producer_id(ProducerId(-1)).with_producer_epoch(-1), 4).await?;
    let pid = init.producer_id.0;
    let mut frames = BytesMut::new();
    let mut ids = Vec::new();
    for i in 0..20 {
        let (id, frame) = client.frame(&produce_request("pipe", 0, batch(&["v"], Some((pid, 0, i))), -1), 9)?;
        ids.push(id);
        frames.put(frame);
    }
    client.stream.write_all(&frames).await?;
    for (i, id) in ids.into_iter().enumerate() {
        let response = client.recv::<ProduceRequest>(id, 9).await?;
        let p = &response.responses[0].partition_responses[0];
        assert_eq!((p.error_code, p.base_offset), (0, i as i64));
    }
    Ok(())
}

/// Producing to a partition that does not exist is UNKNOWN_TOPIC_OR_PARTITION.
#[tokio::test]
async fn produce_to_missing_partition() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let mut client = broker.client().await?;
    create_topic(&mut client, "one").await?;
    let (code, _) = produce(&mut client, "one", 5, batch(&["x"], None)).await?;
    assert_eq!(code, ResponseError::UnknownTopicOrPartition.code());
    // An unknown topic is auto-created (one partition, auto.create.topics.enable is on by
    // default), so only a partition beyond its count is still unknown.
    let (code, _) = produce(&mut client, "never-created", 5, batch(&["x"], None)).await?;
    assert_eq!(code, ResponseError::UnknownTopicOrPartition.code());
    Ok(())
}

/// A batch whose CRC does not match is CORRUPT_MESSAGE; an old magic is
/// UNSUPPORTED_FOR_MESSAGE_FORMAT; nothing is appended.
#[tokio::test]
async fn corrupt_and_old_format_batches_are_refused() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let mut client = broker.client().await?;
    create_topic(&mut client, "crc").await?;
    let mut bad = BytesMut::from(&batch(&["payload"], None)[..]);
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    let (code, _) = produce(&mut client, "crc", 0, bad.freeze()).await?;
    assert_eq!(code, ResponseError::CorruptMessage.code());
    let mut old = BytesMut::from(&batch(&["payload"], None)[..]);
    old[16] = 1;
    let (code, _) = produce(&mut client, "crc", 0, old.freeze()).await?;
    assert_eq!(code, ResponseError::UnsupportedForMessageFormat.code());
    assert_eq!(broker.broker.partition("crc", 0).expect("exists").log_end_offset(), 0);
    Ok(())
}

/// A frame over max_frame_bytes closes that connection; another connection keeps working.
#[tokio::test]
async fn oversized_frame_closes_only_that_connection() -> anyhow::Result<()> {
    let broker = TestBroker::start_in(tempfile::tempdir()?, |c| c.max_frame_bytes = 64 * 1024).await?;
    let mut bad = broker.client().await?;
    let mut good = broker.client().await?;
    bad.stream.write_all(&(1024 * 1024i32).to_be_bytes()).await?;
    assert!(bad.is_closed().await);
    assert_eq!(good.call(&ApiVersionsRequest::default(), 0).await?.error_code, 0);
    Ok(())
}

/// A frame arriving in pieces is served; one cut short by the client does not disturb others.
#[tokio::test]
async fn partial_and_truncated_frames() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let mut slow = broker.client().await?;
    let (id, frame) = slow.frame(&ApiVersionsRequest::default(), 2)?;
    slow.stream.write_all(&frame[..3]).await?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    slow.stream.write_all(&frame[3..10]).await?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    slow.stream.write_all(&frame[10..]).await?;
    assert_eq!(slow.recv::<ApiVersionsRequest>(id, 2).await?.error_code, 0);

    let mut cut = broker.client().await?;
    cut.stream.write_all(&frame[..frame.len() - 2]).await?;
    cut.stream.shutdown().await?;
    assert!(cut.is_closed().await);
    let mut other = broker.client().await?;
    assert_eq!(other.call(&ApiVersionsRequest::default(), 2).await?.error_code, 0);
    Ok(())
}

/// Large frames (read into pooled buffers of their own) arriving in pieces, back to back in one
/// write, and after a small frame in the same write, are all served, and their records come back
/// byte-identical; buffers recycled from earlier frames must not leak old bytes into new ones.
#[tokio::test]
async fn large_frames_in_pieces_and_back_to_back() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let mut client = broker.client().await?;
    create_topic(&mut client, "big").await?;
    // 300 KB values: well above the 64 KiB pooled-frame threshold; each one distinct.
    let big: Vec<String> = (0..6).map(|i| format!("{i}").repeat(300_000)).collect();
    let frame_of = |client: &mut wire::Client, value: &str| client.frame(&produce_request("big", 0, batch(&[value], None), -1), 9);
    let (id0, f0) = frame_of(&mut client, &big[0])?;
    let (id1, f1) = frame_of(&mut client, &big[1])?;
    let (id2, f2) = frame_of(&mut client, &big[2])?;
    let (id3, f3) = client.frame(&ApiVersionsRequest::default(), 2)?;
    let (id4, f4) = frame_of(&mut client, &big[3])?;
    // Frame 0 in three pieces (the first only part of the size prefix), the end of frame 0 with
    // all of frame 1 and the start of frame 2 in one write, then the rest with a small frame and
    // another large one behind it.
    let mut rest = BytesMut::new();
    rest.extend_from_slice(&f2[1000..]);
    rest.extend_from_slice(&f3);
    rest.extend_from_slice(&f4);
    let mut middle = BytesMut::new();
    middle.extend_from_slice(&f0[70_000..]);
    middle.extend_from_slice(&f1);
    middle.extend_from_slice(&f2[..1000]);
    for piece in [&f0[..2], &f0[2..70_000], &middle[..], &rest[..]] {
        client.stream.write_all(piece).await?;
        client.stream.flush().await?;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    for (i, id) in [id0, id1, id2].into_iter().enumerate() {
        let r = client.recv::<ProduceRequest>(id, 9).await?;
        assert_eq!((r.responses[0].partition_responses[0].error_code, r.responses[0].partition_responses[0].base_offset), (0, i as i64));
    }
    assert_eq!(client.recv::<ApiVersionsRequest>(id3, 2).await?.error_code, 0);
    assert_eq!(client.recv::<ProduceRequest>(id4, 9).await?.responses[0].partition_responses[0].base_offset, 3);
    // Sequential large frames reuse pooled buffers: their contents must be their own.
    for (i, value) in big.iter().enumerate().skip(4) {
        assert_eq!(produce(&mut client, "big", 0, batch(&[value], None)).await?, (0, i as i64));
    }
    let mut got = Vec::new();
    while got.len() < big.len() {
        let response = client.call(&fetch_request("big", got.len() as i64, 0), 12).await?;
        let read = values(response.responses[0].partitions[0].records.clone());
        anyhow::ensure!(!read.is_empty(), "fetch at {} returned nothing", got.len());
        got.extend(read.into_iter().map(|(_, v)| v));
    }
    assert!(got == big, "records differ from what was produced");
    Ok(())
}

/// An unknown API key, an unsupported version of a known API, an undecodable body and an absurd
/// array count each close the connection (as Kafka does); the broker keeps serving.
#[tokio::test]
async fn unknown_key_unsupported_version_and_garbage_close_the_connection() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let frames: [&[u8]; 4] = [
        &[0, 0, 0, 8, 0x03, 0xe7, 0, 0, 0, 0, 0, 1],               // api key 999
        &[0, 0, 0, 10, 0, 3, 0, 99, 0, 0, 0, 1, 0xff, 0xff],       // Metadata v99
        &[0, 0, 0, 12, 0, 3, 0, 12, 0, 0, 0, 1, 0, 5, b'a', b'b'], // Metadata v12, client id overruns
        // Metadata v1 declaring 2^31-1 topics in 14 bytes: upstream kafka-protocol would try to
        // allocate ~150 GB and abort the process (see vendor/kafka-protocol/SLUICE-PATCH.md).
        &[0, 0, 0, 14, 0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff],
    ];
    for frame in frames {
        let mut client = broker.client().await?;
        client.stream.write_all(frame).await?;
        assert!(client.is_closed().await, "{frame:?}");
    }
    let mut client = broker.client().await?;
    assert_eq!(client.call(&ApiVersionsRequest::default(), 3).await?.error_code, 0);
    Ok(())
}

/// Topics, their ids, configs and data survive a restart (the metadata log is replayed), and
/// producer ids are not handed out twice.
#[tokio::test]
async fn metadata_survives_restart() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let mut client = broker.client().await?;
    let id = create_topic(&mut client, "durable").await?;
    produce(&mut client, "durable", 0, batch(&["kept"], None)).await?;
    let pid = client.call(&init_request().with_producer_id(ProducerId(-1)).with_producer_epoch(-1), 4).await?.producer_id.0;
    drop(client);
    let dir = broker.stop().await?;

    let broker = TestBroker::start_in(dir, |_| {}).await?;
    let topic = broker.broker.topic("durable").expect("replayed");
    assert_eq!(topic.id, id);
    let mut client = broker.client().await?;
    let response = client.call(&fetch_request("durable", 0, 0), 12).await?;
    assert_eq!(values(response.responses[0].partitions[0].records.clone()), [(0, "kept".to_string())]);
    let next = client.call(&init_request().with_producer_id(ProducerId(-1)).with_producer_epoch(-1), 4).await?.producer_id.0;
    assert!(next > pid, "{next} must not repeat {pid}");
    Ok(())
}
