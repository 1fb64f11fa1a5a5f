//! DescribeCluster: cluster id, controller and brokers (the AdminClient's describe_cluster).

use super::context::Broker;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

/// Handles a DescribeCluster request.
pub async fn handle(
    broker: &dyn Broker,
    _req: DescribeClusterRequest,
    listener: crate::security::SecurityProtocol,
) -> DescribeClusterResponse {
    let node = broker.node();
    let meta = broker.metadata();
    let brokers = super::endpoints::brokers_on(&meta, node, listener)
        .into_iter()
        .map(|(id, host, port)| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(id))
                .with_host(StrBytes::from_string(host))
                .with_port(port)
        })
        .collect();
    DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(node.cluster_id.clone()))
        .with_controller_id(BrokerId(broker.controller_id()))
        .with_brokers(brokers)
}
