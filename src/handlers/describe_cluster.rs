//! DescribeCluster: cluster id, controller and brokers (the AdminClient's describe_cluster).

use super::context::Broker;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

/// Handles a DescribeCluster request.
pub async fn handle(broker: &dyn Broker, _req: DescribeClusterRequest) -> DescribeClusterResponse {
    let node = broker.node();
    let meta = broker.metadata();
    let one = |id: i32, host: &str, port: i32| {
        DescribeClusterBroker::default()
            .with_broker_id(BrokerId(id))
            .with_host(StrBytes::from_string(host.to_string()))
            .with_port(port)
    };
    let brokers = if meta.brokers.is_empty() {
        vec![one(node.node_id, &node.advertised_host, node.advertised_port)]
    } else {
        meta.brokers.iter().map(|(id, b)| one(*id, &b.host, b.port)).collect()
    };
    DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(node.cluster_id.clone()))
        .with_controller_id(BrokerId(broker.controller_id()))
        .with_brokers(brokers)
}
