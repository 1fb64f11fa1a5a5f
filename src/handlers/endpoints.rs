//! Each node's address as a client on a given listener is told it (Metadata, DescribeCluster,
//! FindCoordinator): a client on the SSL listener gets every node's SSL address. Nodes without
//! that listener are left out, as Kafka does.

use crate::security::SecurityProtocol;
use crate::storage::meta_sm::{BrokerAddr, ClusterMeta};
use crate::types::NodeInfo;
use std::collections::BTreeMap;

/// (node id, host, port) of every node on `listener` (a single node: itself).
pub fn brokers_on(meta: &ClusterMeta, node: &NodeInfo, listener: SecurityProtocol) -> Vec<(i32, String, i32)> {
    if meta.brokers.is_empty() {
        return own_on(node, listener)
            .map(|(host, port)| (node.node_id, host, port))
            .into_iter()
            .collect();
    }
    meta.brokers
        .iter()
        .filter_map(|(id, b)| addr_on(b, listener).map(|(host, port)| (*id, host, port)))
        .collect()
}

/// Node `id`'s address on `listener`, if it has that listener.
pub fn broker_on(meta: &ClusterMeta, node: &NodeInfo, id: i32, listener: SecurityProtocol) -> Option<(String, i32)> {
    if id == node.node_id {
        return own_on(node, listener);
    }
    meta.brokers.get(&id).and_then(|b| addr_on(b, listener))
}

/// A registered node's address on `listener`; a record from before listeners has only its
/// PLAINTEXT one.
fn addr_on(b: &BrokerAddr, listener: SecurityProtocol) -> Option<(String, i32)> {
    on(&b.listeners, (&b.host, b.port), listener)
}

/// This node's address on `listener`.
fn own_on(node: &NodeInfo, listener: SecurityProtocol) -> Option<(String, i32)> {
    on(&node.listeners, (&node.advertised_host, node.advertised_port), listener)
}

fn on(
    listeners: &BTreeMap<String, (String, i32)>,
    (host, port): (&String, i32),
    listener: SecurityProtocol,
) -> Option<(String, i32)> {
    if listeners.is_empty() {
        return (listener == SecurityProtocol::Plaintext).then(|| (host.clone(), port));
    }
    listeners.get(listener.name()).cloned()
}
