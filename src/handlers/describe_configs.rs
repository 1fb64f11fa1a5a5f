//! DescribeConfigs: topic configs (every honoured key with its effective value, its source, and
//! from v1 on request its synonyms: the topic's override, then Kafka's broker config for it),
//! and broker configs (every key of the running configuration under its own name, plus the
//! Kafka names tools look for: broker.id, node.id, listeners, advertised.listeners, log.dirs;
//! read-only, with their sources).

use super::context::Broker;
use crate::topic_config::{effective, TOPIC_CONFIGS};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

/// Resource type codes.
pub const TOPIC: i8 = 2;
pub const BROKER: i8 = 4;
/// Config types (DescribeConfigs v3+).
const BOOLEAN: i8 = 1;
const STRING: i8 = 2;
const INT: i8 = 3;
const LONG: i8 = 5;
/// Config source codes.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const STATIC_BROKER_CONFIG: i8 = 4;
const DEFAULT_CONFIG: i8 = 5;

/// Broker configs whose values are secrets: described as sensitive, with no value.
const SENSITIVE: &[&str] = &["cluster.secret", "sasl.bootstrap.users"];

fn entry(
    name: &str,
    value: String,
    read_only: bool,
    source: i8,
    config_type: i8,
    version: i16,
) -> DescribeConfigsResourceResult {
    let r = DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_string(name.to_string()))
        .with_value(Some(StrBytes::from_string(value)))
        .with_documentation(None)
        .with_read_only(read_only)
        .with_config_source(source);
    // config_type exists from v3.
    if version >= 3 {
        r.with_config_type(config_type)
    } else {
        r
    }
}

fn synonym(name: &str, value: String, source: i8) -> DescribeConfigsSynonym {
    DescribeConfigsSynonym::default()
        .with_name(StrBytes::from_string(name.to_string()))
        .with_value(Some(StrBytes::from_string(value)))
        .with_source(source)
}

/// Kafka's config type code of a JSON value.
fn config_type_of(v: &serde_json::Value) -> i8 {
    match v {
        serde_json::Value::Bool(_) => BOOLEAN,
        serde_json::Value::Number(_) => LONG,
        _ => STRING,
    }
}

/// The running configuration and the defaults as JSON objects (keys with underscores), made
/// once per request: sources are found by comparing the two.
struct ConfigJson {
    current: serde_json::Value,
    defaults: serde_json::Value,
}

impl ConfigJson {
    fn of(cfg: &crate::config::Config) -> ConfigJson {
        ConfigJson {
            current: serde_json::to_value(cfg).unwrap_or_default(),
            defaults: serde_json::to_value(crate::config::Config::default()).unwrap_or_default(),
        }
    }

    /// DEFAULT_CONFIG when `key` has its default value, else STATIC_BROKER_CONFIG.
    fn source(&self, key: &str) -> i8 {
        match self.defaults.get(key) == self.current.get(key) {
            true => DEFAULT_CONFIG,
            false => STATIC_BROKER_CONFIG,
        }
    }

    /// STATIC_BROKER_CONFIG when broker config `kafka_name` exists here, was set, and is what
    /// gives topics `topic_default`; otherwise DEFAULT_CONFIG (a key of the same name that means
    /// something else here, such as log.flush.interval.ms, does not count).
    fn broker_key_source(&self, kafka_name: &str, topic_default: &str) -> i8 {
        let key = kafka_name.replace('.', "_");
        match self.current.get(&key) {
            Some(v) if self.defaults.get(&key) != Some(v) && as_text(v) == topic_default => STATIC_BROKER_CONFIG,
            _ => DEFAULT_CONFIG,
        }
    }
}

fn as_text(v: &serde_json::Value) -> String {
    v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())
}

/// (name, value, source, type) of every broker config: the running configuration's keys, and
/// the Kafka names tools read for this node's identity, addresses and data dir.
fn broker_entries(broker: &dyn Broker, json: &ConfigJson) -> Vec<(String, String, i8, i8)> {
    let cfg = broker.config();
    let node = broker.node();
    let mut out = Vec::new();
    if let serde_json::Value::Object(map) = &json.current {
        for (k, v) in map
            .iter()
            .filter(|(k, _)| !["listeners", "advertised_listeners"].contains(&k.as_str()))
        {
            out.push((k.replace('_', "."), as_text(v), json.source(k), config_type_of(v)));
        }
    }
    let listeners = match cfg.listeners.as_str() {
        "" => format!("PLAINTEXT://{}", cfg.listen),
        given => given.to_string(),
    };
    let advertised: Vec<String> = match node.listeners.is_empty() {
        true => vec![format!("PLAINTEXT://{}:{}", node.advertised_host, node.advertised_port)],
        false => node
            .listeners
            .iter()
            .map(|(name, (h, p))| format!("{name}://{h}:{p}"))
            .collect(),
    };
    let dir = std::path::absolute(&cfg.data_dir).unwrap_or_else(|_| cfg.data_dir.clone());
    out.extend([
        (
            "broker.id".to_string(),
            node.node_id.to_string(),
            json.source("node_id"),
            INT,
        ),
        ("listeners".to_string(), listeners, json.source("listeners"), STRING),
        (
            "advertised.listeners".to_string(),
            advertised.join(","),
            json.source("advertised_listeners"),
            STRING,
        ),
        (
            "log.dirs".to_string(),
            dir.display().to_string(),
            json.source("data_dir"),
            STRING,
        ),
    ]);
    out.sort();
    out
}

/// A topic's honoured configs that `wanted` names, with sources (and synonyms when asked).
fn topic_entries(
    cfg: &crate::config::Config,
    json: &ConfigJson,
    topic: &crate::storage::meta_sm::TopicMeta,
    wanted: &dyn Fn(&str) -> bool,
    synonyms_too: bool,
    version: i16,
) -> Vec<DescribeConfigsResourceResult> {
    TOPIC_CONFIGS
        .iter()
        .filter(|s| wanted(s.name))
        .map(|s| {
            let (value, is_default) = effective(cfg, &topic.configs, s);
            let broker_source = json.broker_key_source(s.broker_name, &(s.default)(cfg));
            let source = if is_default {
                broker_source
            } else {
                DYNAMIC_TOPIC_CONFIG
            };
            let e = entry(s.name, value.clone(), false, source, s.config_type, version);
            if !synonyms_too {
                return e;
            }
            let mut synonyms = Vec::new();
            if !is_default {
                synonyms.push(synonym(s.name, value, DYNAMIC_TOPIC_CONFIG));
            }
            synonyms.push(synonym(s.broker_name, (s.default)(cfg), broker_source));
            e.with_synonyms(synonyms)
        })
        .collect()
}

/// Handles a DescribeConfigs request.
pub async fn handle(broker: &dyn Broker, req: DescribeConfigsRequest, version: i16) -> DescribeConfigsResponse {
    let cfg = broker.config();
    let meta = broker.metadata();
    let json = ConfigJson::of(cfg);
    let synonyms_too = req.include_synonyms && version >= 1;
    let mut results = Vec::new();
    for res in req.resources {
        let name = res.resource_name.to_string();
        let wanted = |key: &str| {
            res.configuration_keys
                .as_ref()
                .is_none_or(|keys| keys.iter().any(|k| k.as_str() == key))
        };
        let mut out = DescribeConfigsResult::default()
            .with_error_message(None)
            .with_resource_type(res.resource_type)
            .with_resource_name(res.resource_name.clone());
        match res.resource_type {
            TOPIC => match meta.topics.get(&name) {
                Some(topic) => out.configs = topic_entries(cfg, &json, topic, &wanted, synonyms_too, version),
                None => out = out.with_error_code(ResponseError::UnknownTopicOrPartition.code()),
            },
            BROKER if name.is_empty() || name == broker.node().node_id.to_string() => {
                out.configs = broker_entries(broker, &json)
                    .into_iter()
                    .filter(|(name, ..)| wanted(name))
                    .map(|(name, value, source, config_type)| {
                        let e = entry(&name, value, true, source, config_type, version);
                        // Secrets are never shown, as Kafka does for passwords.
                        match SENSITIVE.contains(&name.as_str()) {
                            true => e.with_value(None).with_is_sensitive(true),
                            false => e,
                        }
                    })
                    .collect();
            }
            _ => out = out.with_error_code(ResponseError::InvalidRequest.code()),
        }
        results.push(out);
    }
    DescribeConfigsResponse::default().with_results(results)
}
