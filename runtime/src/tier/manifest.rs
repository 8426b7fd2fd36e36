//! The remote manifest of one partition: which segments are in the store, and the partition's
//! log start offset there. It is the only source of truth for remote data: a segment exists
//! remotely once a manifest naming it is published, and not before.
//!
//! # Format (`manifest.json`, version 1)
//! ```json
//! { "version": 1, "topic": "orders", "topic_id": "…", "partition": 0,
//!   "log_start_offset": 0,
//!   "segments": [ { "base_offset": 0, "next_offset": 120, "size_bytes": 1048000,
//!                   "max_timestamp": 1700000000000, "offset_of_max_timestamp": 99,
//!                   "first_leader_epoch": 0,
//!                   "last_leader_epoch": 0, "log_key": "…/00000000000000000000-<id>.log",
//!                   "index_key": "….index", "time_index_key": "….timeindex" } ] }
//! ```
//! Published with a single PUT of the whole document (atomic in every store: readers see the old
//! or the new manifest, never a mix). Segments are sorted by base offset, contiguous, and never
//! overlap; [`Manifest::decode`] checks this, so a damaged manifest is an error, not wrong reads.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The manifest format version this broker writes and reads.
pub const MANIFEST_VERSION: u32 = 1;

/// One uploaded segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteSegment {
    /// Offset of the segment's first batch (its name in the local log).
    pub base_offset: i64,
    /// Offset after its last batch.
    pub next_offset: i64,
    /// Bytes of the `.log` object.
    pub size_bytes: u64,
    /// Largest batch max timestamp (-1 if none), for time retention and ListOffsets.
    pub max_timestamp: i64,
    /// Last offset of the batch holding `max_timestamp` (-1 if none), for ListOffsets -3.
    pub offset_of_max_timestamp: i64,
    /// Smallest and largest partition leader epoch of its batches (replication will need them to
    /// reconcile divergent histories).
    pub first_leader_epoch: i32,
    #[allow(missing_docs)]
    pub last_leader_epoch: i32,
    /// Object keys of the segment and its two indexes.
    pub log_key: String,
    #[allow(missing_docs)]
    pub index_key: String,
    #[allow(missing_docs)]
    pub time_index_key: String,
}

/// A partition's remote manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_VERSION`].
    pub version: u32,
    #[allow(missing_docs)]
    pub topic: String,
    #[allow(missing_docs)]
    pub topic_id: Uuid,
    #[allow(missing_docs)]
    pub partition: i32,
    /// The earliest offset that exists remotely (DeleteRecords may put it inside a segment).
    pub log_start_offset: i64,
    /// Ascending, contiguous.
    pub segments: Vec<RemoteSegment>,
}

impl Manifest {
    /// An empty manifest for a partition.
    pub fn empty(topic: &str, topic_id: Uuid, partition: i32) -> Self {
        Manifest { version: MANIFEST_VERSION, topic: topic.to_string(), topic_id, partition, log_start_offset: 0, segments: Vec::new() }
    }

    /// Offset after the last remote segment (where the next upload must start), if any.
    pub fn end_offset(&self) -> Option<i64> {
        self.segments.last().map(|s| s.next_offset)
    }

    /// The first offset served remotely, if any segment is there.
    pub fn start_offset(&self) -> Option<i64> {
        self.segments.first().map(|s| s.base_offset.max(self.log_start_offset))
    }

    /// Total bytes of remote segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size_bytes).sum()
    }

    /// The segment holding `offset`, if it is remote.
    pub fn segment_for(&self, offset: i64) -> Option<&RemoteSegment> {
        let i = self.segments.partition_point(|s| s.next_offset <= offset);
        self.segments.get(i).filter(|s| s.base_offset <= offset)
    }

    /// Serialises to JSON.
    pub fn encode(&self) -> Vec<u8> {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// Parses and checks a manifest; an error says what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let m: Manifest = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if m.version != MANIFEST_VERSION {
            return Err(format!("version {} is not {MANIFEST_VERSION}", m.version));
        }
        for s in &m.segments {
            if s.next_offset <= s.base_offset {
                return Err(format!("segment {} ends at {}", s.base_offset, s.next_offset));
            }
        }
        for w in m.segments.windows(2) {
            if w[0].next_offset != w[1].base_offset {
                return Err(format!(
                    "segment {} ends at {} but the next starts at {}",
                    w[0].base_offset, w[0].next_offset, w[1].base_offset
                ));
            }
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(base: i64, next: i64) -> RemoteSegment {
        RemoteSegment {
            base_offset: base,
            next_offset: next,
            size_bytes: 100,
            max_timestamp: base,
            offset_of_max_timestamp: base,
            first_leader_epoch: 0,
            last_leader_epoch: 0,
            log_key: format!("{base}.log"),
            index_key: format!("{base}.index"),
            time_index_key: format!("{base}.timeindex"),
        }
    }

    #[test]
    fn round_trips_and_finds_segments() {
        let mut m = Manifest::empty("t", Uuid::from_u128(1), 0);
        assert_eq!(m.end_offset(), None);
        m.segments = vec![seg(0, 10), seg(10, 25)];
        let back = Manifest::decode(&m.encode()).expect("decodes");
        assert_eq!(back, m);
        assert_eq!(back.segment_for(0).map(|s| s.base_offset), Some(0));
        assert_eq!(back.segment_for(9).map(|s| s.base_offset), Some(0));
        assert_eq!(back.segment_for(10).map(|s| s.base_offset), Some(10));
        assert_eq!(back.segment_for(25), None);
        assert_eq!(back.end_offset(), Some(25));
        assert_eq!(back.size_bytes(), 200);
    }

    #[test]
    fn gaps_overlaps_versions_and_garbage_are_rejected() {
        let mut m = Manifest::empty("t", Uuid::from_u128(1), 0);
        m.segments = vec![seg(0, 10), seg(11, 20)];
        assert!(Manifest::decode(&m.encode()).expect_err("gap").contains("next starts at 11"));
        m.segments = vec![seg(0, 10), seg(5, 20)];
        assert!(Manifest::decode(&m.encode()).is_err());
        m.segments = vec![seg(3, 3)];
        assert!(Manifest::decode(&m.encode()).is_err());
        m.segments = vec![];
        m.version = 9;
        assert!(Manifest::decode(&m.encode()).expect_err("version").contains("version 9"));
        assert!(Manifest::decode(b"{not json").is_err());
    }
}
