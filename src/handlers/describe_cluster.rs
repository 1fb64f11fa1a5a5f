//! DescribeCluster: cluster id, controller and brokers (the AdminClient's describe_cluster).

use super::context::Broker;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

/// Handles a DescribeCluster request.
pub async fn handle(broker: &dyn Broker, _req: DescribeClusterRequest) -> DescribeClusterResponse {
    let node = broker.node();
    DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(node.cluster_id.clone()))
        .with_controller_id(BrokerId(node.node_id))
        .with_brokers(vec![DescribeClusterBroker::default()
            .with_broker_id(BrokerId(node.node_id))
            .with_host(StrBytes::from_string(node.advertised_host.clone()))
            .with_port(node.advertised_port)])
}
