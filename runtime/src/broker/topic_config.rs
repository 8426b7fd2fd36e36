//! Topic configs under Kafka's names, validated and converted to [`LogConfig`] here, at the edge.
//! Inside the broker a topic's configs are only its overrides (`BTreeMap<name, value>`); the
//! defaults live in [`KNOWN`].

use std::collections::BTreeMap;

use super::BrokerError;
use crate::config::defaults;
use crate::log::{CleanupPolicy, FlushPolicy, LogConfig};
use crate::tier::TierSettings;

/// Topic config overrides by Kafka name.
pub type TopicConfigs = BTreeMap<String, String>;

/// Kafka's DescribeConfigs `ConfigType` codes for the kinds we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum ConfigKind {
    Boolean = 1,
    String = 2,
    Int = 3,
    Long = 5,
    List = 7,
}

/// A topic config we understand: name, default value (as Kafka prints it), kind, meaning.
#[allow(missing_docs)]
pub struct Known {
    pub name: &'static str,
    pub default: &'static str,
    pub kind: ConfigKind,
    pub doc: &'static str,
}

const fn known(name: &'static str, default: &'static str, kind: ConfigKind, doc: &'static str) -> Known {
    Known { name, default, kind, doc }
}

/// Every topic config we accept, sorted by name. `flush.policy` is Sluice's own (`batch`,
/// `interval` or `os`); the rest are Kafka's with Kafka's defaults, except `flush.ms` whose
/// default only matters under `flush.policy=interval`.
pub const KNOWN: &[Known] = &[
    known("cleanup.policy", "delete", ConfigKind::List, "delete, compact, or both"),
    known(
        "compression.type",
        "producer",
        ConfigKind::String,
        "producer: batches stored as sent; a codec: batches recompressed to it on produce",
    ),
    known("delete.retention.ms", "86400000", ConfigKind::Long, "how long compaction keeps tombstones"),
    known("flush.ms", "1000", ConfigKind::Long, "fsync interval under flush.policy=interval"),
    known("flush.policy", "batch", ConfigKind::String, "batch (fsync before acks=all), interval, or os"),
    known("index.interval.bytes", "4096", ConfigKind::Int, "bytes between sparse index entries"),
    known("local.retention.bytes", "-2", ConfigKind::Long, "bytes kept on local disk once uploaded; -2: as retention.bytes"),
    known("local.retention.ms", "-2", ConfigKind::Long, "how long uploaded segments stay on local disk; -2: as retention.ms"),
    known("max.message.bytes", "1048588", ConfigKind::Int, "largest record batch accepted"),
    known("message.timestamp.type", "CreateTime", ConfigKind::String, "only CreateTime is supported"),
    known("min.insync.replicas", "1", ConfigKind::Int, "single replica: must be 1"),
    known("remote.storage.enable", "true", ConfigKind::Boolean, "offload closed segments to the object store"),
    known("retention.bytes", "-1", ConfigKind::Long, "-1: no size limit"),
    known("retention.ms", "604800000", ConfigKind::Long, "-1: keep forever"),
    known("segment.bytes", "1073741824", ConfigKind::Int, "roll a segment at this size"),
    known("segment.ms", "604800000", ConfigKind::Long, "roll a segment at this age"),
];

const _: () = assert!(defaults::RETENTION_MS == 604_800_000 && defaults::SEGMENT_MS == 604_800_000);
const _: () = assert!(defaults::SEGMENT_BYTES == 1_073_741_824);

/// Kafka's smallest `segment.bytes` (a v0 record's overhead).
const SEGMENT_BYTES_MIN: i64 = 14;

/// The definition of `name`, if we know it.
pub fn lookup(name: &str) -> Option<&'static Known> {
    KNOWN.iter().find(|k| k.name == name)
}

/// The effective value of `name`: the override or the default.
pub fn effective<'a>(overrides: &'a TopicConfigs, known: &'a Known) -> &'a str {
    overrides.get(known.name).map(String::as_str).unwrap_or(known.default)
}

/// Checks one `name=value` pair, with a message fit for the client.
pub fn validate(name: &str, value: &str) -> Result<(), BrokerError> {
    let invalid = |reason: &str| BrokerError::InvalidConfig { name: name.into(), value: value.into(), reason: reason.into() };
    let Some(known) = lookup(name) else {
        return Err(invalid("unknown topic config"));
    };
    let int = |min: i64, max: i64| -> Result<(), BrokerError> {
        let n: i64 = value.trim().parse().map_err(|_| invalid("not an integer"))?;
        if n < min || n > max {
            return Err(invalid(&format!("must be between {min} and {max}")));
        }
        Ok(())
    };
    match known.name {
        "cleanup.policy" => {
            let ok = value.split(',').map(str::trim).all(|p| p == "delete" || p == "compact") && !value.trim().is_empty();
            if !ok {
                return Err(invalid("must be delete, compact, or delete,compact"));
            }
            Ok(())
        }
        "compression.type" => match value {
            "producer" | "uncompressed" | "none" | "gzip" | "snappy" | "lz4" | "zstd" => Ok(()),
            _ => Err(invalid("must be producer, uncompressed, gzip, snappy, lz4 or zstd")),
        },
        "flush.policy" => match value {
            "batch" | "interval" | "os" => Ok(()),
            _ => Err(invalid("must be batch, interval or os")),
        },
        "message.timestamp.type" => match value {
            "CreateTime" => Ok(()),
            "LogAppendTime" => Err(invalid("LogAppendTime is not supported; batches are stored as received")),
            _ => Err(invalid("must be CreateTime")),
        },
        "min.insync.replicas" => int(1, 1),
        "remote.storage.enable" => match value {
            "true" | "false" => Ok(()),
            _ => Err(invalid("must be true or false")),
        },
        "local.retention.ms" | "local.retention.bytes" => int(-2, i64::MAX),
        "retention.ms" | "retention.bytes" => int(-1, i64::MAX),
        "segment.bytes" => int(SEGMENT_BYTES_MIN, i64::from(i32::MAX)),
        "max.message.bytes" => int(0, i64::from(i32::MAX)),
        "index.interval.bytes" => int(0, i64::from(i32::MAX)),
        "segment.ms" | "flush.ms" => int(1, i64::MAX),
        "delete.retention.ms" => int(0, i64::MAX),
        _ => Ok(()),
    }
}

/// One override changed, as IncrementalAlterConfigs' SET (`Some`) and DELETE (`None`) do it: a
/// value is validated before it is kept; a reset to the default needs a known key.
pub fn set_or_reset(configs: &mut TopicConfigs, key: String, value: Option<String>) -> Result<(), BrokerError> {
    match value {
        Some(value) => {
            validate(&key, &value)?;
            configs.insert(key, value);
        }
        None => {
            if lookup(&key).is_none() {
                return Err(BrokerError::InvalidConfig { name: key, value: String::new(), reason: "unknown topic config".into() });
            }
            configs.remove(&key);
        }
    }
    Ok(())
}

/// Validates every override.
pub fn validate_all(configs: &TopicConfigs) -> Result<(), BrokerError> {
    configs.iter().try_for_each(|(n, v)| validate(n, v))
}

/// Converts validated overrides (plus defaults) to the log's settings.
pub fn to_log_config(overrides: &TopicConfigs) -> Result<LogConfig, BrokerError> {
    validate_all(overrides)?;
    let get = |name: &str| lookup(name).map(|k| effective(overrides, k)).unwrap_or_default();
    let num = |name: &str| -> Result<i64, BrokerError> {
        let value = get(name);
        value.trim().parse::<i64>().map_err(|_| BrokerError::InvalidConfig {
            name: name.into(),
            value: value.into(),
            reason: "not an integer".into(),
        })
    };
    let non_negative = |n: i64| if n < 0 { None } else { Some(n as u64) };
    let policy = get("cleanup.policy");
    let flush_policy = match get("flush.policy") {
        "interval" => FlushPolicy::IntervalMs(num("flush.ms")?.max(1) as u64),
        "os" => FlushPolicy::Os,
        _ => FlushPolicy::EveryBatch,
    };
    Ok(LogConfig {
        segment_bytes: num("segment.bytes")?.max(SEGMENT_BYTES_MIN) as u64,
        segment_ms: num("segment.ms")?.max(1) as u64,
        retention_ms: non_negative(num("retention.ms")?),
        retention_bytes: non_negative(num("retention.bytes")?),
        cleanup_policy: CleanupPolicy { delete: policy.contains("delete"), compact: policy.contains("compact") },
        delete_retention_ms: num("delete.retention.ms")?.max(0) as u64,
        flush_policy,
        index_interval_bytes: u32::try_from(num("index.interval.bytes")?).unwrap_or(u32::MAX),
        max_batch_bytes: u32::try_from(num("max.message.bytes")?).unwrap_or(u32::MAX),
        compression: match get("compression.type") {
            "uncompressed" | "none" => Some(0),
            "gzip" => Some(1),
            "snappy" => Some(2),
            "lz4" => Some(3),
            "zstd" => Some(4),
            _ => None,
        },
    })
}

/// Converts validated overrides (plus defaults) to the tiering settings. Compacted topics are not
/// tiered (compaction rewrites closed segments, which uploads treat as immutable), as in Kafka.
pub fn to_tier_settings(overrides: &TopicConfigs) -> Result<TierSettings, BrokerError> {
    validate_all(overrides)?;
    let get = |name: &str| lookup(name).map(|k| effective(overrides, k)).unwrap_or_default();
    let num = |name: &str| -> i64 { get(name).trim().parse::<i64>().unwrap_or(-1) };
    let limit = |n: i64| if n < 0 { None } else { Some(n as u64) };
    let (retention_ms, retention_bytes) = (num("retention.ms"), num("retention.bytes"));
    // Kafka's -2: "the same as the total retention"; a local limit above the total is the total.
    let local = |n: i64, total: i64| {
        if n == -2 {
            limit(total)
        } else {
            match (limit(n), limit(total)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        }
    };
    Ok(TierSettings {
        enabled: get("remote.storage.enable") == "true" && !get("cleanup.policy").contains("compact"),
        local_retention_ms: local(num("local.retention.ms"), retention_ms),
        local_retention_bytes: local(num("local.retention.bytes"), retention_bytes),
        retention_ms: limit(retention_ms),
        retention_bytes: limit(retention_bytes),
    })
}

/// The settings of the internal metadata log: compaction off, retention off, fsync per batch.
pub fn metadata_log_config() -> LogConfig {
    LogConfig {
        segment_bytes: 64 * 1024 * 1024,
        segment_ms: u64::MAX / 2,
        retention_ms: None,
        retention_bytes: None,
        cleanup_policy: CleanupPolicy { delete: false, compact: false },
        delete_retention_ms: 0,
        flush_policy: FlushPolicy::EveryBatch,
        index_interval_bytes: 4096,
        max_batch_bytes: 8 * 1024 * 1024,
        compression: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_convert_and_bad_values_are_named() {
        let config = to_log_config(&TopicConfigs::new()).expect("defaults are valid");
        assert_eq!(config.flush_policy, FlushPolicy::EveryBatch);
        assert_eq!(config.retention_ms, Some(604_800_000));
        assert!(config.cleanup_policy.delete && !config.cleanup_policy.compact);
        let err = validate("retention.ms", "soon").expect_err("not a number");
        assert!(err.to_string().contains("retention.ms"), "{err}");
        assert!(validate("no.such.config", "1").is_err());
        assert!(validate("cleanup.policy", "compact,delete").is_ok());
        let mut o = TopicConfigs::new();
        o.insert("flush.policy".into(), "interval".into());
        o.insert("flush.ms".into(), "50".into());
        assert_eq!(to_log_config(&o).expect("valid").flush_policy, FlushPolicy::IntervalMs(50));
    }

    #[test]
    fn tier_settings_resolve_kafka_minus_two_and_compaction() {
        let t = to_tier_settings(&TopicConfigs::new()).expect("defaults");
        assert!(t.enabled);
        assert_eq!(t.local_retention_ms, Some(604_800_000), "-2 means as retention.ms");
        assert_eq!(t.local_retention_bytes, None);
        let mut o = TopicConfigs::new();
        o.insert("local.retention.bytes".into(), "1000".into());
        o.insert("retention.bytes".into(), "500".into());
        o.insert("local.retention.ms".into(), "-1".into());
        let t = to_tier_settings(&o).expect("valid");
        assert_eq!(t.local_retention_bytes, Some(500), "never more local than total");
        assert_eq!(t.local_retention_ms, Some(604_800_000));
        o.insert("cleanup.policy".into(), "compact".into());
        assert!(!to_tier_settings(&o).expect("valid").enabled);
        assert!(validate("remote.storage.enable", "yes").is_err());
        assert!(validate("local.retention.ms", "-3").is_err());
    }
}
