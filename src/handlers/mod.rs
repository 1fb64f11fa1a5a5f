//! One file per Kafka API. `APIS` is the table of what is served; ApiVersions is built from it,
//! and `decode` refuses anything outside it.

pub mod alter_configs;
pub mod alter_partition_reassignments;
pub mod api_versions;
pub mod context;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod elect_leaders;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leader_view;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_offsets_v0;
pub mod list_partition_reassignments;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod produce_batch;
pub mod produce_order;
pub mod sync_group;
pub mod topic_config;
pub mod topic_validation;

use bytes::{BufMut, Bytes, BytesMut};
use context::Broker;
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};
use std::sync::Arc;

/// One served API and its version range.
#[derive(Debug, Clone, Copy)]
pub struct ApiSpec {
    pub key: ApiKey,
    pub min: i16,
    pub max: i16,
}

/// Every API this broker serves. Nothing outside it is advertised or accepted.
#[rustfmt::skip]
pub const APIS: &[ApiSpec] = &[
    ApiSpec { key: ApiKey::Produce, min: 3, max: 12 },
    ApiSpec { key: ApiKey::Fetch, min: 4, max: 16 },
    ApiSpec { key: ApiKey::ListOffsets, min: 0, max: 8 },
    ApiSpec { key: ApiKey::OffsetForLeaderEpoch, min: 2, max: 4 },
    ApiSpec { key: ApiKey::Metadata, min: 0, max: 12 },
    ApiSpec { key: ApiKey::ApiVersions, min: 0, max: 4 },
    ApiSpec { key: ApiKey::CreateTopics, min: 2, max: 7 },
    ApiSpec { key: ApiKey::DeleteTopics, min: 1, max: 6 },
    ApiSpec { key: ApiKey::InitProducerId, min: 0, max: 5 },
    ApiSpec { key: ApiKey::DescribeConfigs, min: 1, max: 4 },
    ApiSpec { key: ApiKey::AlterConfigs, min: 0, max: 2 },
    ApiSpec { key: ApiKey::IncrementalAlterConfigs, min: 0, max: 1 },
    ApiSpec { key: ApiKey::CreatePartitions, min: 0, max: 3 },
    ApiSpec { key: ApiKey::DescribeCluster, min: 0, max: 1 },
    ApiSpec { key: ApiKey::DeleteRecords, min: 0, max: 2 },
    ApiSpec { key: ApiKey::FindCoordinator, min: 0, max: 4 },
    ApiSpec { key: ApiKey::OffsetCommit, min: 2, max: 8 },
    ApiSpec { key: ApiKey::OffsetFetch, min: 1, max: 8 },
    ApiSpec { key: ApiKey::JoinGroup, min: 0, max: 7 },
    ApiSpec { key: ApiKey::SyncGroup, min: 0, max: 5 },
    ApiSpec { key: ApiKey::Heartbeat, min: 0, max: 4 },
    ApiSpec { key: ApiKey::LeaveGroup, min: 0, max: 4 },
    ApiSpec { key: ApiKey::DescribeGroups, min: 0, max: 5 },
    ApiSpec { key: ApiKey::ListGroups, min: 0, max: 4 },
    ApiSpec { key: ApiKey::DeleteGroups, min: 0, max: 2 },
    ApiSpec { key: ApiKey::OffsetDelete, min: 0, max: 0 },
    ApiSpec { key: ApiKey::AlterPartitionReassignments, min: 0, max: 1 },
    ApiSpec { key: ApiKey::ListPartitionReassignments, min: 0, max: 0 },
    ApiSpec { key: ApiKey::DescribeLogDirs, min: 1, max: 4 },
    ApiSpec { key: ApiKey::ElectLeaders, min: 0, max: 2 },
];

/// The served range of `key`, if served.
pub fn spec(key: ApiKey) -> Option<ApiSpec> {
    APIS.iter().copied().find(|s| s.key == key)
}

/// A decoded request.
pub struct Request {
    pub header: RequestHeader,
    pub api_key: ApiKey,
    pub version: i16,
    pub body: Body,
    /// A Produce request's place in its connection's order (set by the connection).
    pub produce_turn: Option<produce_order::ProduceTurn>,
}

/// The bodies of served requests.
pub enum Body {
    Produce(kafka_protocol::messages::ProduceRequest),
    Fetch(kafka_protocol::messages::FetchRequest),
    ListOffsets(kafka_protocol::messages::ListOffsetsRequest),
    /// v0, which kafka-protocol no longer carries.
    ListOffsetsV0(list_offsets_v0::ListOffsetsV0),
    OffsetForLeaderEpoch(kafka_protocol::messages::OffsetForLeaderEpochRequest),
    Metadata(kafka_protocol::messages::MetadataRequest),
    ApiVersions(kafka_protocol::messages::ApiVersionsRequest),
    CreateTopics(kafka_protocol::messages::CreateTopicsRequest),
    DeleteTopics(kafka_protocol::messages::DeleteTopicsRequest),
    InitProducerId(kafka_protocol::messages::InitProducerIdRequest),
    DescribeConfigs(kafka_protocol::messages::DescribeConfigsRequest),
    AlterConfigs(kafka_protocol::messages::AlterConfigsRequest),
    IncrementalAlterConfigs(kafka_protocol::messages::IncrementalAlterConfigsRequest),
    CreatePartitions(kafka_protocol::messages::CreatePartitionsRequest),
    DescribeCluster(kafka_protocol::messages::DescribeClusterRequest),
    DeleteRecords(kafka_protocol::messages::DeleteRecordsRequest),
    FindCoordinator(kafka_protocol::messages::FindCoordinatorRequest),
    OffsetCommit(kafka_protocol::messages::OffsetCommitRequest),
    OffsetFetch(kafka_protocol::messages::OffsetFetchRequest),
    JoinGroup(kafka_protocol::messages::JoinGroupRequest),
    SyncGroup(kafka_protocol::messages::SyncGroupRequest),
    Heartbeat(kafka_protocol::messages::HeartbeatRequest),
    LeaveGroup(kafka_protocol::messages::LeaveGroupRequest),
    DescribeGroups(kafka_protocol::messages::DescribeGroupsRequest),
    ListGroups(kafka_protocol::messages::ListGroupsRequest),
    DeleteGroups(kafka_protocol::messages::DeleteGroupsRequest),
    OffsetDelete(kafka_protocol::messages::OffsetDeleteRequest),
    AlterPartitionReassignments(kafka_protocol::messages::AlterPartitionReassignmentsRequest),
    ListPartitionReassignments(kafka_protocol::messages::ListPartitionReassignmentsRequest),
    DescribeLogDirs(kafka_protocol::messages::DescribeLogDirsRequest),
    ElectLeaders(kafka_protocol::messages::ElectLeadersRequest),
}

/// What to do with a frame.
pub enum Decoded {
    /// A request to handle.
    Request(Box<Request>),
    /// Answer at once with this response frame (ApiVersions version fallback).
    Respond(Bytes),
    /// Close the connection: the frame is not a request we can answer.
    Close(String),
}

/// Decodes one frame body (the bytes after the length prefix; at least 8 long).
pub fn decode(frame: Bytes) -> Decoded {
    if frame.len() < 8 {
        return Decoded::Close("frame shorter than a request header".into());
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let Ok(api_key) = ApiKey::try_from(key) else {
        return Decoded::Close(format!("unknown api key {key}"));
    };
    let Some(spec) = spec(api_key) else {
        return Decoded::Close(format!("api {api_key:?} is not served"));
    };
    if version < spec.min || version > spec.max {
        if api_key == ApiKey::ApiVersions {
            // KIP-511: answer in v0 with our ranges so the client can pick a version.
            return Decoded::Respond(api_versions::unsupported_version_response(correlation_id));
        }
        return Decoded::Close(format!("{api_key:?} v{version} is not served"));
    }
    let mut buf = frame;
    let header = match RequestHeader::decode(&mut buf, api_key.request_header_version(version)) {
        Ok(h) => h,
        Err(e) => return Decoded::Close(format!("bad request header: {e}")),
    };
    let body = match decode_body(api_key, &mut buf, version) {
        Ok(b) => b,
        Err(e) => return Decoded::Close(format!("bad {api_key:?} v{version} body: {e}")),
    };
    Decoded::Request(Box::new(Request {
        header,
        api_key,
        version,
        body,
        produce_turn: None,
    }))
}

fn decode_body(key: ApiKey, buf: &mut Bytes, v: i16) -> anyhow::Result<Body> {
    use kafka_protocol::messages as m;
    Ok(match key {
        ApiKey::Produce => Body::Produce(m::ProduceRequest::decode(buf, v)?),
        ApiKey::Fetch => Body::Fetch(m::FetchRequest::decode(buf, v)?),
        ApiKey::ListOffsets if v == 0 => Body::ListOffsetsV0(list_offsets_v0::decode(buf)?),
        ApiKey::ListOffsets => Body::ListOffsets(m::ListOffsetsRequest::decode(buf, v)?),
        ApiKey::OffsetForLeaderEpoch => Body::OffsetForLeaderEpoch(m::OffsetForLeaderEpochRequest::decode(buf, v)?),
        ApiKey::Metadata => Body::Metadata(m::MetadataRequest::decode(buf, v)?),
        ApiKey::ApiVersions => Body::ApiVersions(m::ApiVersionsRequest::decode(buf, v)?),
        ApiKey::CreateTopics => Body::CreateTopics(m::CreateTopicsRequest::decode(buf, v)?),
        ApiKey::DeleteTopics => Body::DeleteTopics(m::DeleteTopicsRequest::decode(buf, v)?),
        ApiKey::InitProducerId => Body::InitProducerId(m::InitProducerIdRequest::decode(buf, v)?),
        ApiKey::DescribeConfigs => Body::DescribeConfigs(m::DescribeConfigsRequest::decode(buf, v)?),
        ApiKey::AlterConfigs => Body::AlterConfigs(m::AlterConfigsRequest::decode(buf, v)?),
        ApiKey::IncrementalAlterConfigs => {
            Body::IncrementalAlterConfigs(m::IncrementalAlterConfigsRequest::decode(buf, v)?)
        }
        ApiKey::CreatePartitions => Body::CreatePartitions(m::CreatePartitionsRequest::decode(buf, v)?),
        ApiKey::DescribeCluster => Body::DescribeCluster(m::DescribeClusterRequest::decode(buf, v)?),
        ApiKey::DeleteRecords => Body::DeleteRecords(m::DeleteRecordsRequest::decode(buf, v)?),
        ApiKey::FindCoordinator => Body::FindCoordinator(m::FindCoordinatorRequest::decode(buf, v)?),
        ApiKey::OffsetCommit => Body::OffsetCommit(m::OffsetCommitRequest::decode(buf, v)?),
        ApiKey::OffsetFetch => Body::OffsetFetch(m::OffsetFetchRequest::decode(buf, v)?),
        ApiKey::JoinGroup => Body::JoinGroup(m::JoinGroupRequest::decode(buf, v)?),
        ApiKey::SyncGroup => Body::SyncGroup(m::SyncGroupRequest::decode(buf, v)?),
        ApiKey::Heartbeat => Body::Heartbeat(m::HeartbeatRequest::decode(buf, v)?),
        ApiKey::LeaveGroup => Body::LeaveGroup(m::LeaveGroupRequest::decode(buf, v)?),
        ApiKey::DescribeGroups => Body::DescribeGroups(m::DescribeGroupsRequest::decode(buf, v)?),
        ApiKey::ListGroups => Body::ListGroups(m::ListGroupsRequest::decode(buf, v)?),
        ApiKey::DeleteGroups => Body::DeleteGroups(m::DeleteGroupsRequest::decode(buf, v)?),
        ApiKey::OffsetDelete => Body::OffsetDelete(m::OffsetDeleteRequest::decode(buf, v)?),
        ApiKey::AlterPartitionReassignments => {
            Body::AlterPartitionReassignments(m::AlterPartitionReassignmentsRequest::decode(buf, v)?)
        }
        ApiKey::ListPartitionReassignments => {
            Body::ListPartitionReassignments(m::ListPartitionReassignmentsRequest::decode(buf, v)?)
        }
        ApiKey::DescribeLogDirs => Body::DescribeLogDirs(m::DescribeLogDirsRequest::decode(buf, v)?),
        ApiKey::ElectLeaders => Body::ElectLeaders(m::ElectLeadersRequest::decode(buf, v)?),
        other => anyhow::bail!("{other:?} has no handler"),
    })
}

/// Handles a request; `Ok(None)` means no response is sent (produce with acks=0). `Err` means
/// the response could not be encoded: the connection must close rather than leave the client
/// waiting for an answer that never comes.
/// A request's answer: the response frame (none for acks=0 Produce), and whether the
/// connection closes once it is written.
pub struct Reply {
    pub bytes: Option<Bytes>,
    /// Set after a Metadata answer that named no leader for some partition, from a node that
    /// knows it cannot: the client asks another node next (`metadata::send_elsewhere`).
    pub then_close: bool,
}

pub async fn handle(broker: Arc<dyn Broker>, req: Request) -> Result<Reply, String> {
    let started = std::time::Instant::now();
    let api = api_name(req.api_key);
    let result = dispatch(broker, req).await;
    metrics::counter!(crate::observability::REQUESTS, "api" => api).increment(1);
    metrics::histogram!(crate::observability::REQUEST_SECONDS, "api" => api).record(started.elapsed().as_secs_f64());
    result
}

/// A static name for a served API (metric labels).
pub fn api_name(key: ApiKey) -> &'static str {
    match key {
        ApiKey::Produce => "Produce",
        ApiKey::Fetch => "Fetch",
        ApiKey::ListOffsets => "ListOffsets",
        ApiKey::OffsetForLeaderEpoch => "OffsetForLeaderEpoch",
        ApiKey::Metadata => "Metadata",
        ApiKey::ApiVersions => "ApiVersions",
        ApiKey::CreateTopics => "CreateTopics",
        ApiKey::DeleteTopics => "DeleteTopics",
        ApiKey::InitProducerId => "InitProducerId",
        ApiKey::DescribeConfigs => "DescribeConfigs",
        ApiKey::AlterConfigs => "AlterConfigs",
        ApiKey::IncrementalAlterConfigs => "IncrementalAlterConfigs",
        ApiKey::CreatePartitions => "CreatePartitions",
        ApiKey::DescribeCluster => "DescribeCluster",
        ApiKey::DeleteRecords => "DeleteRecords",
        ApiKey::FindCoordinator => "FindCoordinator",
        ApiKey::OffsetCommit => "OffsetCommit",
        ApiKey::OffsetFetch => "OffsetFetch",
        ApiKey::JoinGroup => "JoinGroup",
        ApiKey::SyncGroup => "SyncGroup",
        ApiKey::Heartbeat => "Heartbeat",
        ApiKey::LeaveGroup => "LeaveGroup",
        ApiKey::DescribeGroups => "DescribeGroups",
        ApiKey::ListGroups => "ListGroups",
        ApiKey::DeleteGroups => "DeleteGroups",
        ApiKey::OffsetDelete => "OffsetDelete",
        ApiKey::AlterPartitionReassignments => "AlterPartitionReassignments",
        ApiKey::ListPartitionReassignments => "ListPartitionReassignments",
        ApiKey::DescribeLogDirs => "DescribeLogDirs",
        ApiKey::ElectLeaders => "ElectLeaders",
        _ => "Other",
    }
}

async fn dispatch(broker: Arc<dyn Broker>, req: Request) -> Result<Reply, String> {
    let mut then_close = false;
    let v = req.version;
    let key = req.api_key;
    let cid = req.header.correlation_id;
    let client_id = req.header.client_id.as_ref().map(|c| c.to_string()).unwrap_or_default();
    let encoded = match req.body {
        Body::Produce(r) => {
            let acks = r.acks;
            let resp = produce::handle(broker.as_ref(), r, v, req.produce_turn).await;
            if acks == 0 {
                return Ok(Reply {
                    bytes: None,
                    then_close,
                });
            }
            encode_response(key, cid, v, &resp)
        }
        Body::Fetch(r) => encode_response(key, cid, v, &fetch::handle(broker.as_ref(), r, v).await),
        Body::ListOffsets(r) => encode_response(key, cid, v, &list_offsets::handle(broker.as_ref(), r, v).await),
        Body::ListOffsetsV0(r) => Ok(list_offsets_v0::encode(
            cid,
            &list_offsets_v0::handle(broker.as_ref(), &r),
        )),
        Body::OffsetForLeaderEpoch(r) => {
            encode_response(key, cid, v, &offset_for_leader_epoch::handle(broker.as_ref(), r).await)
        }
        Body::Metadata(r) => {
            let resp = metadata::handle(broker.as_ref(), r, v).await;
            then_close = metadata::send_elsewhere(broker.as_ref(), &resp);
            encode_response(key, cid, v, &resp)
        }
        Body::ApiVersions(_) => encode_response(key, cid, v, &api_versions::response(0)),
        Body::CreateTopics(r) => encode_response(key, cid, v, &create_topics::handle(broker.as_ref(), r, v).await),
        Body::DeleteTopics(r) => encode_response(key, cid, v, &delete_topics::handle(broker.as_ref(), r, v).await),
        Body::InitProducerId(r) => encode_response(key, cid, v, &init_producer_id::handle(broker.as_ref(), r).await),
        Body::DescribeConfigs(r) => {
            encode_response(key, cid, v, &describe_configs::handle(broker.as_ref(), r, v).await)
        }
        Body::AlterConfigs(r) => encode_response(key, cid, v, &alter_configs::handle(broker.as_ref(), r).await),
        Body::IncrementalAlterConfigs(r) => encode_response(
            key,
            cid,
            v,
            &incremental_alter_configs::handle(broker.as_ref(), r).await,
        ),
        Body::CreatePartitions(r) => encode_response(key, cid, v, &create_partitions::handle(broker.as_ref(), r).await),
        Body::DescribeCluster(r) => encode_response(key, cid, v, &describe_cluster::handle(broker.as_ref(), r).await),
        Body::DeleteRecords(r) => encode_response(key, cid, v, &delete_records::handle(broker.as_ref(), r).await),
        Body::FindCoordinator(r) => {
            encode_response(key, cid, v, &find_coordinator::handle(broker.as_ref(), r, v).await)
        }
        Body::OffsetCommit(r) => encode_response(key, cid, v, &offset_commit::handle(broker.as_ref(), r).await),
        Body::OffsetFetch(r) => encode_response(key, cid, v, &offset_fetch::handle(broker.as_ref(), r, v).await),
        Body::JoinGroup(r) => encode_response(key, cid, v, &join_group::handle(broker.as_ref(), r, v, client_id).await),
        Body::SyncGroup(r) => encode_response(key, cid, v, &sync_group::handle(broker.as_ref(), r, v).await),
        Body::Heartbeat(r) => encode_response(key, cid, v, &heartbeat::handle(broker.as_ref(), r).await),
        Body::LeaveGroup(r) => encode_response(key, cid, v, &leave_group::handle(broker.as_ref(), r, v).await),
        Body::DescribeGroups(r) => encode_response(key, cid, v, &describe_groups::handle(broker.as_ref(), r).await),
        Body::ListGroups(r) => encode_response(key, cid, v, &list_groups::handle(broker.as_ref(), r, v).await),
        Body::DeleteGroups(r) => encode_response(key, cid, v, &delete_groups::handle(broker.as_ref(), r).await),
        Body::OffsetDelete(r) => encode_response(key, cid, v, &offset_delete::handle(broker.as_ref(), r).await),
        Body::AlterPartitionReassignments(r) => encode_response(
            key,
            cid,
            v,
            &alter_partition_reassignments::handle(broker.as_ref(), r, v).await,
        ),
        Body::ListPartitionReassignments(r) => encode_response(
            key,
            cid,
            v,
            &list_partition_reassignments::handle(broker.as_ref(), r).await,
        ),
        Body::DescribeLogDirs(r) => {
            encode_response(key, cid, v, &describe_log_dirs::handle(broker.as_ref(), r, v).await)
        }
        Body::ElectLeaders(r) => encode_response(key, cid, v, &elect_leaders::handle(broker.as_ref(), r, v).await),
    };
    match encoded {
        Ok(b) => Ok(Reply {
            bytes: Some(b),
            then_close,
        }),
        Err(e) => {
            tracing::error!(api = ?key, version = v, error = %e, "could not encode a response; closing the connection");
            Err(format!("could not encode {key:?} v{v} response: {e}"))
        }
    }
}

/// Encodes a response frame: length, header (v0 for ApiVersions), body.
pub fn encode_response<T: Encodable>(
    key: ApiKey,
    correlation_id: i32,
    version: i16,
    body: &T,
) -> anyhow::Result<Bytes> {
    let header_version = if key == ApiKey::ApiVersions {
        0
    } else {
        key.response_header_version(version)
    };
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let size = header.compute_size(header_version)? + body.compute_size(version)?;
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.put_i32(size as i32);
    header.encode(&mut buf, header_version)?;
    body.encode(&mut buf, version)?;
    Ok(buf.freeze())
}
