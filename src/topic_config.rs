//! Topic configs raftstream honours: one table with each key's validation (CreateTopics,
//! AlterConfigs, IncrementalAlterConfigs), its broker default and its type, and one parser
//! (`TopicOverrides::parse`) that turns a topic's stored configs into typed values once, when
//! metadata changes. Keys outside the table are refused with INVALID_CONFIG rather than
//! stored and ignored. Imports nothing of the broker but its config and the codec names.

use crate::config::Config;
use crate::protocol::compression::Codec;
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

/// The effective value of `spec` given a topic's stored `configs`, and whether it is the
/// broker default (DescribeConfigs).
pub fn effective(cfg: &Config, configs: &BTreeMap<String, String>, spec: &TopicConfigSpec) -> (String, bool) {
    match configs.get(spec.name) {
        Some(v) => (v.clone(), false),
        None => ((spec.default)(cfg), true),
    }
}

/// A topic's overrides, typed: `None` where the broker default applies. Built by `parse` from
/// the stored configs when metadata changes; consumers never parse strings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TopicOverrides {
    pub max_message_bytes: Option<i32>,
    pub retention_ms: Option<i64>,
    pub retention_bytes: Option<i64>,
    pub min_insync_replicas: Option<i32>,
    pub segment_bytes: Option<u64>,
    pub segment_ms: Option<i64>,
    /// `compression.type`: `Some(None)` is "producer" (batches kept as sent).
    pub compression: Option<Option<Codec>>,
    pub log_append_time: bool,
    pub timestamp_before_max_ms: Option<i64>,
    pub timestamp_after_max_ms: Option<i64>,
    pub timestamp_difference_max_ms: Option<i64>,
}

/// A stored config the parser refused (only possible for entries written before a key's
/// validation existed: every new value is validated before it is stored).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("topic config {key}={value:?}: {why}")]
pub struct ConfigError {
    pub key: String,
    pub value: String,
    pub why: String,
}

impl TopicOverrides {
    /// Parses a topic's stored configs, every value through its key's validator.
    pub fn parse(configs: &BTreeMap<String, String>) -> Result<TopicOverrides, ConfigError> {
        let mut o = TopicOverrides::default();
        for (key, value) in configs {
            let refuse = |why: String| ConfigError {
                key: key.clone(),
                value: value.clone(),
                why,
            };
            let spec = spec(key).ok_or_else(|| refuse("not a topic config raftstream honours".into()))?;
            let v = (spec.validate)(value).map_err(refuse)?;
            let number = || v.parse::<i64>().expect("validated as a whole number");
            match spec.name {
                "max.message.bytes" => o.max_message_bytes = Some(number() as i32),
                "retention.ms" => o.retention_ms = Some(number()),
                "retention.bytes" => o.retention_bytes = Some(number()),
                "min.insync.replicas" => o.min_insync_replicas = Some(number().min(i32::MAX as i64) as i32),
                "segment.bytes" => o.segment_bytes = Some(number() as u64),
                "segment.ms" => o.segment_ms = Some(number()),
                "compression.type" => o.compression = Codec::from_config(&v),
                "message.timestamp.type" => o.log_append_time = v == "LogAppendTime",
                "message.timestamp.before.max.ms" => o.timestamp_before_max_ms = Some(number()),
                "message.timestamp.after.max.ms" => o.timestamp_after_max_ms = Some(number()),
                "message.timestamp.difference.max.ms" => o.timestamp_difference_max_ms = Some(number()),
                // Validated, and honoured by being what they are (see the table).
                _ => {}
            }
        }
        Ok(o)
    }

    /// The largest record batch the topic takes.
    pub fn max_message_bytes(&self, cfg: &Config) -> i32 {
        self.max_message_bytes.unwrap_or(cfg.message_max_bytes)
    }

    /// In-sync replicas an acks=all produce needs.
    pub fn min_insync_replicas(&self) -> i32 {
        self.min_insync_replicas.unwrap_or(1)
    }

    /// The codec the topic stores its batches in; `None`: as the producer sent them.
    pub fn compression(&self) -> Option<Codec> {
        self.compression.flatten()
    }

    /// How the topic treats record timestamps: LogAppendTime, or CreateTime within the KIP-937
    /// bounds (each falling back to message.timestamp.difference.max.ms when not set).
    pub fn timestamp_rules(&self) -> crate::protocol::batch_rules::TimestampRules {
        let difference = self.timestamp_difference_max_ms.unwrap_or(i64::MAX);
        crate::protocol::batch_rules::TimestampRules {
            log_append_time: self.log_append_time,
            before_max_ms: self.timestamp_before_max_ms.unwrap_or(difference),
            after_max_ms: self.timestamp_after_max_ms.unwrap_or(difference),
        }
    }
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
            assert!(TopicOverrides::parse(&bad).is_err(), "{k}={v}");
        }
    }

    #[test]
    fn overrides_are_typed_once_and_defaults_apply_where_absent() {
        let cfg = Config::default();
        let stored = BTreeMap::from([
            ("max.message.bytes".to_string(), "2000".to_string()),
            ("compression.type".to_string(), "zstd".to_string()),
            ("message.timestamp.difference.max.ms".to_string(), "60000".to_string()),
            ("message.timestamp.after.max.ms".to_string(), "1000".to_string()),
            ("segment.ms".to_string(), "5000".to_string()),
        ]);
        let o = TopicOverrides::parse(&stored).unwrap();
        assert_eq!(o.max_message_bytes(&cfg), 2000);
        assert_eq!(o.compression(), Some(Codec::Zstd));
        assert_eq!(o.segment_ms, Some(5000));
        assert_eq!(o.segment_bytes, None);
        let rules = o.timestamp_rules();
        assert_eq!(
            (rules.before_max_ms, rules.after_max_ms, rules.log_append_time),
            (60000, 1000, false)
        );
        let none = TopicOverrides::parse(&BTreeMap::new()).unwrap();
        assert_eq!(none.max_message_bytes(&cfg), cfg.message_max_bytes);
        assert_eq!(none.min_insync_replicas(), 1);
        assert_eq!(none.compression(), None);
        let producer = BTreeMap::from([("compression.type".to_string(), "producer".to_string())]);
        assert_eq!(TopicOverrides::parse(&producer).unwrap().compression(), None);
        let unknown = BTreeMap::from([("retention.mss".to_string(), "1".to_string())]);
        assert!(
            TopicOverrides::parse(&unknown).is_err(),
            "a misspelled key is refused, not a default"
        );
    }
}
