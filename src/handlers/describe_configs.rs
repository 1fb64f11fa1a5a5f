//! DescribeConfigs: topic configs (every honoured key with its effective value and source) and
//! broker configs (every key of the running configuration, read-only).

use super::context::Broker;
use super::topic_config::{effective, TOPIC_CONFIGS};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

/// Resource type codes.
pub const TOPIC: i8 = 2;
pub const BROKER: i8 = 4;
/// Config source codes.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const STATIC_BROKER_CONFIG: i8 = 4;
const DEFAULT_CONFIG: i8 = 5;

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

/// Handles a DescribeConfigs request.
pub async fn handle(broker: &dyn Broker, req: DescribeConfigsRequest, version: i16) -> DescribeConfigsResponse {
    let cfg = broker.config();
    let meta = broker.metadata();
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
                Some(topic) => {
                    out.configs = TOPIC_CONFIGS
                        .iter()
                        .filter(|s| wanted(s.name))
                        .map(|s| {
                            let (value, is_default) = effective(cfg, topic, s);
                            let source = if is_default {
                                DEFAULT_CONFIG
                            } else {
                                DYNAMIC_TOPIC_CONFIG
                            };
                            entry(s.name, value, false, source, s.config_type, version)
                        })
                        .collect();
                }
                None => out = out.with_error_code(ResponseError::UnknownTopicOrPartition.code()),
            },
            BROKER if name.is_empty() || name == broker.node().node_id.to_string() => {
                let defaults = serde_json::to_value(crate::config::Config::default()).unwrap_or_default();
                let current = serde_json::to_value(cfg).unwrap_or_default();
                if let serde_json::Value::Object(map) = current {
                    out.configs = map
                        .iter()
                        .map(|(k, v)| (k.replace('_', "."), k, v))
                        .filter(|(dotted, _, _)| wanted(dotted))
                        .map(|(dotted, k, v)| {
                            let value = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
                            let source = if defaults.get(k) == Some(v) {
                                DEFAULT_CONFIG
                            } else {
                                STATIC_BROKER_CONFIG
                            };
                            entry(&dotted, value, true, source, 2, version)
                        })
                        .collect();
                }
            }
            BROKER => out = out.with_error_code(ResponseError::InvalidRequest.code()),
            _ => out = out.with_error_code(ResponseError::InvalidRequest.code()),
        }
        results.push(out);
    }
    DescribeConfigsResponse::default().with_results(results)
}
