//! Topic configs raftstream honours, their validation, and their effective values (a topic
//! override, else the broker default). Keys outside this table are refused with INVALID_CONFIG
//! rather than stored and ignored.

use crate::config::Config;
use crate::storage::meta_sm::TopicMeta;
use std::collections::BTreeMap;

/// One honoured topic config.
pub struct TopicConfigSpec {
    pub name: &'static str,
    /// Kafka's broker config that sets this for every topic (DescribeConfigs synonyms).
    pub broker_name: &'static str,
    /// The broker-wide default, as a string.
    pub default: fn(&Config) -> String,
    /// Checks a value; returns it normalised.
    pub validate: fn(&str) -> Result<String, String>,
    /// Kafka's config type code for DescribeConfigs v3+ (3 = INT, 5 = LONG, 2 = STRING).
    pub config_type: i8,
}

fn long_at_least(min: i64) -> impl Fn(&str) -> Result<String, String> {
    move |v: &str| match v.trim().parse::<i64>() {
        Ok(n) if n >= min => Ok(n.to_string()),
        Ok(n) => Err(format!("{n} is below the minimum {min}")),
        Err(_) => Err(format!("{v:?} is not a whole number")),
    }
}

fn segment_bytes(v: &str) -> Result<String, String> {
    long_at_least(1024)(v)
}
fn max_message_bytes(v: &str) -> Result<String, String> {
    long_at_least(128)(v).and_then(|s| {
        if s.parse::<i64>().unwrap_or(0) > i32::MAX as i64 {
            Err("too large".into())
        } else {
            Ok(s)
        }
    })
}
fn min_insync_replicas(v: &str) -> Result<String, String> {
    long_at_least(1)(v)
}
fn retention(v: &str) -> Result<String, String> {
    long_at_least(-1)(v)
}
fn int_at_least(min: i64) -> impl Fn(&str) -> Result<String, String> {
    move |v: &str| {
        long_at_least(min)(v).and_then(|s| match s.parse::<i64>().unwrap_or(0) > i32::MAX as i64 {
            true => Err(format!("{s} is more than {}", i32::MAX)),
            false => Ok(s),
        })
    }
}
fn compression_type(v: &str) -> Result<String, String> {
    let v = v.trim().to_ascii_lowercase();
    match crate::protocol::compression::Codec::from_config(&v) {
        Some(_) => Ok(v),
        None => Err(format!(
            "{v:?} is not one of uncompressed, zstd, lz4, snappy, gzip, producer"
        )),
    }
}
fn segment_ms(v: &str) -> Result<String, String> {
    long_at_least(1)(v)
}
fn segment_index_bytes(v: &str) -> Result<String, String> {
    int_at_least(4)(v)
}
fn flush_messages(v: &str) -> Result<String, String> {
    long_at_least(1)(v)
}
fn non_negative(v: &str) -> Result<String, String> {
    long_at_least(0)(v)
}
fn timestamp_type(v: &str) -> Result<String, String> {
    match v.trim() {
        t @ ("CreateTime" | "LogAppendTime") => Ok(t.into()),
        other => Err(format!("{other:?} is not one of CreateTime, LogAppendTime")),
    }
}
fn unclean_leader_election(v: &str) -> Result<String, String> {
    match v.trim() {
        "false" => Ok("false".into()),
        "true" => Err(
            "unclean leader election is not possible here: a partition's leader is elected by a \
             majority of its replicas (Raft), which always hold every acknowledged write"
                .into(),
        ),
        other => Err(format!("{other:?} is not true or false")),
    }
}
fn cleanup_policy(v: &str) -> Result<String, String> {
    match v.trim() {
        "delete" => Ok("delete".into()),
        other => Err(format!("cleanup.policy {other:?} is not supported (only \"delete\")")),
    }
}

/// Every topic config honoured.
pub const TOPIC_CONFIGS: &[TopicConfigSpec] = &[
    TopicConfigSpec {
        name: "cleanup.policy",
        broker_name: "log.cleanup.policy",
        default: |_| "delete".into(),
        validate: cleanup_policy,
        config_type: 7,
    },
    TopicConfigSpec {
        name: "max.message.bytes",
        broker_name: "message.max.bytes",
        default: |c| c.message_max_bytes.to_string(),
        validate: max_message_bytes,
        config_type: 3,
    },
    TopicConfigSpec {
        name: "retention.bytes",
        broker_name: "log.retention.bytes",
        default: |c| c.log_retention_bytes.to_string(),
        validate: retention,
        config_type: 5,
    },
    TopicConfigSpec {
        name: "retention.ms",
        broker_name: "log.retention.ms",
        default: |c| c.log_retention_ms.to_string(),
        validate: retention,
        config_type: 5,
    },
    TopicConfigSpec {
        name: "min.insync.replicas",
        broker_name: "min.insync.replicas",
        default: |_| "1".into(),
        validate: min_insync_replicas,
        config_type: 3,
    },
    TopicConfigSpec {
        name: "segment.bytes",
        broker_name: "log.segment.bytes",
        default: |c| c.log_segment_bytes.to_string(),
        validate: segment_bytes,
        config_type: 3,
    },
    TopicConfigSpec {
        name: "compression.type",
        broker_name: "compression.type",
        default: |_| "producer".into(),
        validate: compression_type,
        config_type: 2,
    },
    TopicConfigSpec {
        name: "segment.ms",
        broker_name: "log.roll.ms",
        default: |c| c.log_roll_ms.to_string(),
        validate: segment_ms,
        config_type: 5,
    },
    // Accepted for Kafka tools; no effect: the offset and time indexes are kept in memory
    // (and in each closed segment's seal), not in preallocated files of this size.
    TopicConfigSpec {
        name: "segment.index.bytes",
        broker_name: "log.index.size.max.bytes",
        default: |_| "10485760".into(),
        validate: segment_index_bytes,
        config_type: 3,
    },
    // Accepted for Kafka tools; no effect: with durability = fsync every acknowledged batch is
    // already fsynced (by a majority), with relaxed log.flush.interval.ms bounds what is unsynced.
    TopicConfigSpec {
        name: "flush.messages",
        broker_name: "log.flush.interval.messages",
        default: |_| i64::MAX.to_string(),
        validate: flush_messages,
        config_type: 5,
    },
    TopicConfigSpec {
        name: "flush.ms",
        broker_name: "log.flush.interval.ms",
        default: |_| i64::MAX.to_string(),
        validate: non_negative,
        config_type: 5,
    },
    TopicConfigSpec {
        name: "unclean.leader.election.enable",
        broker_name: "unclean.leader.election.enable",
        default: |_| "false".into(),
        validate: unclean_leader_election,
        config_type: 1,
    },
    TopicConfigSpec {
        name: "message.timestamp.type",
        broker_name: "log.message.timestamp.type",
        default: |_| "CreateTime".into(),
        validate: timestamp_type,
        config_type: 2,
    },
    // KIP-937 bounds (CreateTime): how far a record's timestamp may be before / after the
    // broker's clock; the older message.timestamp.difference.max.ms bounds both when the new
    // ones are not set. Kafka 3.x defaults: no bound.
    TopicConfigSpec {
        name: "message.timestamp.before.max.ms",
        broker_name: "log.message.timestamp.before.max.ms",
        default: |_| i64::MAX.to_string(),
        validate: non_negative,
        config_type: 5,
    },
    TopicConfigSpec {
        name: "message.timestamp.after.max.ms",
        broker_name: "log.message.timestamp.after.max.ms",
        default: |_| i64::MAX.to_string(),
        validate: non_negative,
        config_type: 5,
    },
    TopicConfigSpec {
        name: "message.timestamp.difference.max.ms",
        broker_name: "log.message.timestamp.difference.max.ms",
        default: |_| i64::MAX.to_string(),
        validate: non_negative,
        config_type: 5,
    },
];

/// The spec of `name`, if honoured.
pub fn spec(name: &str) -> Option<&'static TopicConfigSpec> {
    TOPIC_CONFIGS.iter().find(|s| s.name == name)
}

/// Validates a set of configs; `Err` names the first bad one.
pub fn validate_all(configs: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, String> {
    configs
        .iter()
        .map(|(k, v)| {
            let spec = spec(k).ok_or_else(|| format!("topic config {k:?} is not supported"))?;
            (spec.validate)(v)
                .map(|v| (k.clone(), v))
                .map_err(|e| format!("{k}: {e}"))
        })
        .collect()
}

/// The effective value of `name` for `topic`, and whether it is the broker default.
pub fn effective(cfg: &Config, topic: &TopicMeta, spec: &TopicConfigSpec) -> (String, bool) {
    match topic.configs.get(spec.name) {
        Some(v) => (v.clone(), false),
        None => ((spec.default)(cfg), true),
    }
}

/// How `topic` treats record timestamps: LogAppendTime, or CreateTime within the KIP-937
/// bounds (each falling back to message.timestamp.difference.max.ms when not set).
pub fn timestamp_rules(cfg: &Config, topic: &TopicMeta) -> crate::protocol::batch_rules::TimestampRules {
    let difference = effective_i64(cfg, topic, "message.timestamp.difference.max.ms");
    let bound = |name: &str| match topic.configs.contains_key(name) {
        true => effective_i64(cfg, topic, name),
        false => difference,
    };
    crate::protocol::batch_rules::TimestampRules {
        log_append_time: topic
            .configs
            .get("message.timestamp.type")
            .is_some_and(|t| t == "LogAppendTime"),
        before_max_ms: bound("message.timestamp.before.max.ms"),
        after_max_ms: bound("message.timestamp.after.max.ms"),
    }
}

/// An effective numeric config of a topic.
/// The codec `topic` stores its batches in (`compression.type`); `None`: as the producer sent
/// them.
pub fn compression_target(cfg: &Config, topic: &TopicMeta) -> Option<crate::protocol::compression::Codec> {
    let value = spec("compression.type").map(|s| effective(cfg, topic, s).0)?;
    crate::protocol::compression::Codec::from_config(&value).flatten()
}

pub fn effective_i64(cfg: &Config, topic: &TopicMeta, name: &str) -> i64 {
    spec(name)
        .map(|s| effective(cfg, topic, s).0.parse().unwrap_or(0))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        let ok = BTreeMap::from([("max.message.bytes".to_string(), " 2000".to_string())]);
        assert_eq!(validate_all(&ok).unwrap()["max.message.bytes"], "2000");
        for (k, v) in [
            ("retention.ms", "-2"),
            ("segment.bytes", "10"),
            ("max.message.bytes", "x"),
            ("cleanup.policy", "compact"),
            ("unclean.leader.election.enable", "true"),
            ("message.timestamp.type", "logappendtime"),
            ("segment.index.bytes", "3"),
            ("segment.ms", "0"),
            ("compression.type", "brotli"),
            ("flush.messages", "0"),
        ] {
            let bad = BTreeMap::from([(k.to_string(), v.to_string())]);
            assert!(validate_all(&bad).is_err(), "{k}={v}");
        }
    }
}
