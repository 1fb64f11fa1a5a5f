//! Topic configs raftstream honours, their validation, and their effective values (a topic
//! override, else the broker default). Keys outside this table are refused with INVALID_CONFIG
//! rather than stored and ignored.

use crate::config::Config;
use crate::storage::meta_sm::TopicMeta;
use std::collections::BTreeMap;

/// One honoured topic config.
pub struct TopicConfigSpec {
    pub name: &'static str,
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
        default: |_| "delete".into(),
        validate: cleanup_policy,
        config_type: 7,
    },
    TopicConfigSpec {
        name: "max.message.bytes",
        default: |c| c.message_max_bytes.to_string(),
        validate: max_message_bytes,
        config_type: 3,
    },
    TopicConfigSpec {
        name: "retention.bytes",
        default: |c| c.log_retention_bytes.to_string(),
        validate: retention,
        config_type: 5,
    },
    TopicConfigSpec {
        name: "retention.ms",
        default: |c| c.log_retention_ms.to_string(),
        validate: retention,
        config_type: 5,
    },
    TopicConfigSpec {
        name: "min.insync.replicas",
        default: |_| "1".into(),
        validate: min_insync_replicas,
        config_type: 3,
    },
    TopicConfigSpec {
        name: "segment.bytes",
        default: |c| c.log_segment_bytes.to_string(),
        validate: segment_bytes,
        config_type: 3,
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

/// An effective numeric config of a topic.
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
        ] {
            let bad = BTreeMap::from([(k.to_string(), v.to_string())]);
            assert!(validate_all(&bad).is_err(), "{k}={v}");
        }
    }
}
