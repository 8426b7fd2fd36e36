//! Where objects live in the store. Keys depend only on the node id, the topic (name and id) and
//! the partition, so a broker restarted on an empty disk with the same store and node id finds
//! its history again.
//!
//! ```text
//! <prefix>/node-<node id>/topics/<topic>-<topic id>/topic.json         topic descriptor (restore)
//! <prefix>/node-<node id>/topics/<topic>-<topic id>/<partition>/manifest.json
//! <prefix>/node-<node id>/topics/<topic>-<topic id>/<partition>/<base offset, 20 digits>-<upload id>.log
//!                                                                ... .index, .timeindex
//! ```
//! The upload id (a UUID per upload attempt) keeps a retried upload from overwriting an object a
//! published manifest may already point to; objects no manifest names are garbage, never read.

use object_store::path::Path;
use uuid::Uuid;

/// File name of a partition's remote manifest.
pub const MANIFEST_FILE: &str = "manifest.json";
/// File name of a topic's descriptor.
pub const TOPIC_FILE: &str = "topic.json";

/// `<prefix>/node-<id>/topics`: every topic of this node.
pub fn topics_root(prefix: &Path, node_id: i32) -> Path {
    prefix.clone().join(format!("node-{node_id}")).join("topics")
}

/// The folder of one topic incarnation.
pub fn topic_dir(prefix: &Path, node_id: i32, topic: &str, topic_id: Uuid) -> Path {
    topics_root(prefix, node_id).clone().join(format!("{topic}-{}", topic_id.simple()))
}

/// The folder of one partition.
pub fn partition_dir(topic_dir: &Path, partition: i32) -> Path {
    topic_dir.clone().join(partition.to_string())
}

/// The three objects of one uploaded segment, relative to its partition folder.
pub fn segment_object_name(base_offset: i64, upload_id: Uuid, suffix: &str) -> String {
    format!("{base_offset:020}-{}.{suffix}", upload_id.simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_readable() {
        let id = Uuid::from_u128(0xabc);
        let t = topic_dir(&Path::from("bucket/prefix"), 3, "orders", id);
        assert_eq!(t.as_ref(), "bucket/prefix/node-3/topics/orders-00000000000000000000000000000abc");
        assert_eq!(partition_dir(&t, 7).clone().join(MANIFEST_FILE).as_ref(), format!("{}/7/manifest.json", t.as_ref()));
        assert_eq!(segment_object_name(42, id, "log"), "00000000000000000042-00000000000000000000000000000abc.log");
    }
}
