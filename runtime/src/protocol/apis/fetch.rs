//! Fetch: reads committed batches (below the high watermark) with long-polling until `min_bytes`
//! are available or `max_wait_ms` passes. Sessionless: we always answer session id 0, which
//! tells clients to keep sending full fetch requests (KIP-227 allows a broker to do so).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use kafka_protocol::ResponseError;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::broker::partition::{blocking, LEADER_EPOCH};
use crate::broker::{Broker, Partition};
use crate::protocol::authorize::{allowed, Operation, Resource};
use crate::protocol::error_code;
use crate::protocol::RequestContext;

/// Longest long-poll we honour, whatever the client asks: bounds how long shutdown waits for a
/// parked fetch.
pub const FETCH_WAIT_MS_MAX: u64 = 30_000;

/// One requested partition, resolved.
struct Wanted {
    topic_slot: usize,
    partition: i32,
    target: Result<Arc<Partition>, ResponseError>,
    fetch_offset: i64,
    partition_max_bytes: usize,
}

/// Handles one Fetch request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: FetchRequest) -> FetchResponse {
    let version = ctx.api_version;
    if request.session_id != 0 {
        // We never hand out a session id, so an incremental fetch cannot be ours.
        return FetchResponse::default().with_error_code(ResponseError::FetchSessionIdNotFound.code());
    }
    let mut topics_out: Vec<FetchableTopicResponse> = Vec::with_capacity(request.topics.len());
    let mut wanted = Vec::new();
    for topic in &request.topics {
        // READ on the topic. By name the check comes first (an unauthorized client learns nothing
        // of which topics exist); by id an unknown id is all a client can learn.
        let readable = |name: &str| allowed(broker, ctx, Operation::Read, Resource::Topic(name));
        let resolved = if version >= 13 {
            broker.topic_by_id(topic.topic_id).ok_or(ResponseError::UnknownTopicId).and_then(|t| {
                if readable(&t.name) {
                    Ok(t)
                } else {
                    Err(ResponseError::TopicAuthorizationFailed)
                }
            })
        } else if !readable(topic.topic.0.as_str()) {
            Err(ResponseError::TopicAuthorizationFailed)
        } else {
            broker.topic(topic.topic.0.as_str()).ok_or(ResponseError::UnknownTopicOrPartition)
        };
        let slot = topics_out.len();
        let mut out = FetchableTopicResponse::default();
        if version >= 13 {
            out.topic_id = topic.topic_id;
        } else {
            out.topic = topic.topic.clone();
        }
        topics_out.push(out);
        for p in &topic.partitions {
            let target = match &resolved {
                Err(code) => Err(*code),
                Ok(t) => match usize::try_from(p.partition).ok().and_then(|i| t.partitions.get(i)) {
                    None => Err(ResponseError::UnknownTopicOrPartition),
                    // The epoch never changes on a single node, so an older one (fenced) cannot
                    // happen; a newer one means the client saw metadata from another cluster.
                    Some(_) if p.current_leader_epoch > LEADER_EPOCH => Err(ResponseError::UnknownLeaderEpoch),
                    Some(partition) => Ok(Arc::clone(partition)),
                },
            };
            wanted.push(Wanted {
                topic_slot: slot,
                partition: p.partition,
                target,
                fetch_offset: p.fetch_offset,
                partition_max_bytes: usize::try_from(p.partition_max_bytes).unwrap_or(0),
            });
        }
    }

    let wait_ms = u64::try_from(request.max_wait_ms).unwrap_or(0).min(FETCH_WAIT_MS_MAX);
    let deadline = Instant::now() + Duration::from_millis(wait_ms);
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    let max_bytes = usize::try_from(request.max_bytes).unwrap_or(0);
    let mut watchers: Vec<watch::Receiver<i64>> = wanted.iter().filter_map(|w| w.target.as_ref().ok()).map(|p| p.subscribe()).collect();
    let wanted = Arc::new(wanted);

    let results = loop {
        for w in &mut watchers {
            w.borrow_and_update();
        }
        // A consumer that is caught up parks here first: a read on a blocking thread would only
        // find nothing (at 8 partitions of small produces that was a thread hop per response).
        if caught_up(&wanted) && Instant::now() < deadline && wait_for_data(&mut watchers, deadline, broker.stopping()).await {
            continue;
        }
        let reading = Arc::clone(&wanted);
        let results = match blocking("fetch", move || read_all(&reading, max_bytes)).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(peer = %ctx.peer, "{e}");
                let code = error_code::code(&e);
                wanted.iter().map(|_| error_partition(code)).collect()
            }
        };
        let bytes: usize = results.iter().map(|r| r.records.as_ref().map_or(0, Bytes::len)).sum();
        let any_error = results.iter().any(|r| r.error_code != 0);
        if bytes >= min_bytes.max(1) || any_error || Instant::now() >= deadline {
            break results;
        }
        if !wait_for_data(&mut watchers, deadline, broker.stopping()).await {
            break results;
        }
    };

    for (w, mut data) in wanted.iter().zip(results) {
        data.partition_index = w.partition;
        if let (Ok(p), Some(records)) = (&w.target, &data.records) {
            p.traffic.fetched(records.len() as u64);
        }
        if let Some(t) = topics_out.get_mut(w.topic_slot) {
            t.partitions.push(data);
        }
    }
    FetchResponse::default().with_responses(topics_out)
}

/// Every partition exists and its fetch offset is at its high watermark, inside the local log: a
/// read would return no records and no error.
fn caught_up(wanted: &[Wanted]) -> bool {
    wanted.iter().all(|w| match &w.target {
        Ok(p) => w.fetch_offset == p.high_watermark() && w.fetch_offset >= p.local_log_start_offset(),
        Err(_) => false,
    })
}

/// Waits until some partition's high watermark advances, the deadline passes or the broker
/// begins to stop. Returns false at the deadline or the stop.
async fn wait_for_data(watchers: &mut [watch::Receiver<i64>], deadline: Instant, mut stopping: watch::Receiver<bool>) -> bool {
    let stop = async move {
        // An error means the broker is gone, which is a stop too.
        let _ = stopping.wait_for(|s| *s).await;
    };
    if watchers.is_empty() {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {}
            _ = stop => {}
        }
        return false;
    }
    let any_change = futures::future::select_all(watchers.iter_mut().map(|w| Box::pin(w.changed())));
    tokio::select! {
        (changed, _, _) = any_change => changed.is_ok(),
        _ = tokio::time::sleep_until(deadline) => false,
        _ = stop => false,
    }
}

/// Reads every partition, applying KIP-74: the first batch of the first non-empty partition is
/// returned even if larger than the limits; after that, partitions get what still fits in
/// `max_bytes` (and their own `partition_max_bytes`) or nothing. Blocking.
fn read_all(wanted: &[Wanted], max_bytes: usize) -> Vec<PartitionData> {
    let mut remaining = max_bytes;
    let mut have_data = false;
    wanted
        .iter()
        .map(|w| {
            let partition = match &w.target {
                Ok(p) => p,
                Err(code) => return error_partition(code.code()),
            };
            let limit = w.partition_max_bytes.min(remaining);
            if have_data && limit == 0 {
                // Nothing more fits: report offsets only (a read would still return a batch).
                let hwm = partition.high_watermark();
                return PartitionData::default()
                    .with_high_watermark(hwm)
                    .with_last_stable_offset(hwm)
                    .with_log_start_offset(partition.log_start_offset())
                    .with_aborted_transactions(None)
                    .with_records(Some(Bytes::new()));
            }
            match partition.read(w.fetch_offset, limit) {
                Ok(mut r) => {
                    if have_data && r.records.len() > limit {
                        r.records = Bytes::new();
                    }
                    if !r.records.is_empty() {
                        have_data = true;
                        remaining = remaining.saturating_sub(r.records.len());
                    }
                    PartitionData::default()
                        .with_high_watermark(r.high_watermark)
                        .with_last_stable_offset(r.high_watermark)
                        .with_log_start_offset(r.log_start_offset)
                        .with_aborted_transactions(None)
                        .with_records(Some(r.records))
                }
                Err(e) => {
                    let code = error_code::response_error(&e);
                    if code == ResponseError::KafkaStorageError {
                        tracing::warn!(topic = %partition.topic, partition = partition.index, "fetch failed: {e}");
                    }
                    let mut data = error_partition(code.code());
                    data.high_watermark = partition.high_watermark();
                    data.log_start_offset = partition.log_start_offset();
                    data
                }
            }
        })
        .collect()
}

fn error_partition(code: i16) -> PartitionData {
    PartitionData::default().with_error_code(code).with_high_watermark(-1).with_aborted_transactions(None).with_records(Some(Bytes::new()))
}
