//! The served Kafka APIs: one line each. From this table come ApiVersions' ranges (`APIS`),
//! the request bodies (`Body`), their decoding, the API names used as metric labels, and the
//! dispatch to the handler. Adding an API is one line here plus its handler file.

use super::context::Broker;
use super::{
    alter_configs, alter_partition_reassignments, alter_user_scram_credentials, api_versions, create_partitions,
    create_topics, delete_groups, delete_records, delete_topics, describe_cluster, describe_configs, describe_groups,
    describe_log_dirs, describe_user_scram_credentials, elect_leaders, fetch, find_coordinator, heartbeat,
    incremental_alter_configs, init_producer_id, join_group, leave_group, list_groups, list_offsets,
    list_partition_reassignments, metadata, offset_commit, offset_delete, offset_fetch, offset_for_leader_epoch,
    produce, sasl_authenticate, sasl_handshake, sync_group,
};
use super::{list_offsets_v0, Reply, RequestCx};
use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::Decodable;

/// One served API and its version range.
#[derive(Debug, Clone, Copy)]
pub struct ApiSpec {
    pub key: ApiKey,
    pub min: i16,
    pub max: i16,
}

/// Generates everything the table below describes. Each line: the API (its `ApiKey` variant),
/// its request type in `kafka_protocol::messages`, the served versions, and how to answer it
/// (`b`: the broker, `r`: the decoded request, `cx`: version, correlation id, client id...).
macro_rules! served_apis {
    ($( $name:ident ($req:ident) $min:literal ..= $max:literal => |$b:ident, $r:ident, $cx:ident| $serve:expr; )*) => {
        /// Every API this broker serves. Nothing outside it is advertised or accepted.
        pub const APIS: &[ApiSpec] = &[ $( ApiSpec { key: ApiKey::$name, min: $min, max: $max }, )* ];

        /// The bodies of served requests.
        pub enum Body {
            $( $name(kafka_protocol::messages::$req), )*
            /// ListOffsets v0, which kafka-protocol no longer carries.
            ListOffsetsV0(list_offsets_v0::ListOffsetsV0),
        }

        /// Decodes the body of a served request.
        pub(super) fn decode_body(key: ApiKey, buf: &mut Bytes, v: i16) -> anyhow::Result<Body> {
            if key == ApiKey::ListOffsets && v == 0 {
                return Ok(Body::ListOffsetsV0(list_offsets_v0::decode(buf)?));
            }
            Ok(match key {
                $( ApiKey::$name => Body::$name(kafka_protocol::messages::$req::decode(buf, v)?), )*
                other => anyhow::bail!("{other:?} has no handler"),
            })
        }

        /// A static name for a served API (metric labels).
        pub fn api_name(key: ApiKey) -> &'static str {
            match key {
                $( ApiKey::$name => stringify!($name), )*
                _ => "Other",
            }
        }

        /// Runs the handler of `body`.
        pub(super) async fn serve(broker: &dyn Broker, body: Body, cx: &mut RequestCx) -> anyhow::Result<Reply> {
            match body {
                $( Body::$name($r) => {
                    let ($b, $cx) = (broker, cx);
                    $serve
                } )*
                Body::ListOffsetsV0(r) => Ok(cx.reply(list_offsets_v0::encode(cx.correlation_id, &list_offsets_v0::handle(broker, &r)))),
            }
        }
    };
}

#[rustfmt::skip]
served_apis! {
    Produce(ProduceRequest) 3..=12 => |b, r, cx| produce::reply(b, r, cx).await;
    Fetch(FetchRequest) 4..=16 => |b, r, cx| cx.answer(&fetch::handle(b, r, cx.version).await);
    ListOffsets(ListOffsetsRequest) 0..=8 => |b, r, cx| cx.answer(&list_offsets::handle(b, r, cx.version).await);
    OffsetForLeaderEpoch(OffsetForLeaderEpochRequest) 2..=4 => |b, r, cx| cx.answer(&offset_for_leader_epoch::handle(b, r).await);
    Metadata(MetadataRequest) 0..=12 => |b, r, cx| metadata::reply(b, r, cx).await;
    ApiVersions(ApiVersionsRequest) 0..=4 => |_b, _r, cx| cx.answer(&api_versions::response(0));
    CreateTopics(CreateTopicsRequest) 2..=7 => |b, r, cx| cx.answer(&create_topics::handle(b, r, cx.version).await);
    DeleteTopics(DeleteTopicsRequest) 1..=6 => |b, r, cx| cx.answer(&delete_topics::handle(b, r, cx.version).await);
    InitProducerId(InitProducerIdRequest) 0..=5 => |b, r, cx| cx.answer(&init_producer_id::handle(b, r).await);
    DescribeConfigs(DescribeConfigsRequest) 1..=4 => |b, r, cx| cx.answer(&describe_configs::handle(b, r, cx.version).await);
    AlterConfigs(AlterConfigsRequest) 0..=2 => |b, r, cx| cx.answer(&alter_configs::handle(b, r).await);
    IncrementalAlterConfigs(IncrementalAlterConfigsRequest) 0..=1 => |b, r, cx| cx.answer(&incremental_alter_configs::handle(b, r).await);
    CreatePartitions(CreatePartitionsRequest) 0..=3 => |b, r, cx| cx.answer(&create_partitions::handle(b, r).await);
    DescribeCluster(DescribeClusterRequest) 0..=1 => |b, r, cx| cx.answer(&describe_cluster::handle(b, r, cx.session.listener).await);
    DeleteRecords(DeleteRecordsRequest) 0..=2 => |b, r, cx| cx.answer(&delete_records::handle(b, r).await);
    FindCoordinator(FindCoordinatorRequest) 0..=4 => |b, r, cx| cx.answer(&find_coordinator::handle(b, r, cx.version, cx.session.listener).await);
    OffsetCommit(OffsetCommitRequest) 2..=8 => |b, r, cx| cx.answer(&offset_commit::handle(b, r).await);
    OffsetFetch(OffsetFetchRequest) 1..=8 => |b, r, cx| cx.answer(&offset_fetch::handle(b, r, cx.version).await);
    JoinGroup(JoinGroupRequest) 0..=7 => |b, r, cx| cx.answer(&join_group::handle(b, r, cx.version, cx.client_id.clone()).await);
    SyncGroup(SyncGroupRequest) 0..=5 => |b, r, cx| cx.answer(&sync_group::handle(b, r, cx.version).await);
    Heartbeat(HeartbeatRequest) 0..=4 => |b, r, cx| cx.answer(&heartbeat::handle(b, r).await);
    LeaveGroup(LeaveGroupRequest) 0..=4 => |b, r, cx| cx.answer(&leave_group::handle(b, r, cx.version).await);
    DescribeGroups(DescribeGroupsRequest) 0..=5 => |b, r, cx| cx.answer(&describe_groups::handle(b, r).await);
    ListGroups(ListGroupsRequest) 0..=4 => |b, r, cx| cx.answer(&list_groups::handle(b, r, cx.version).await);
    DeleteGroups(DeleteGroupsRequest) 0..=2 => |b, r, cx| cx.answer(&delete_groups::handle(b, r).await);
    OffsetDelete(OffsetDeleteRequest) 0..=0 => |b, r, cx| cx.answer(&offset_delete::handle(b, r).await);
    AlterPartitionReassignments(AlterPartitionReassignmentsRequest) 0..=1 => |b, r, cx| cx.answer(&alter_partition_reassignments::handle(b, r, cx.version).await);
    ListPartitionReassignments(ListPartitionReassignmentsRequest) 0..=0 => |b, r, cx| cx.answer(&list_partition_reassignments::handle(b, r).await);
    DescribeLogDirs(DescribeLogDirsRequest) 1..=4 => |b, r, cx| cx.answer(&describe_log_dirs::handle(b, r, cx.version).await);
    ElectLeaders(ElectLeadersRequest) 0..=2 => |b, r, cx| cx.answer(&elect_leaders::handle(b, r, cx.version).await);
    SaslHandshake(SaslHandshakeRequest) 0..=1 => |_b, r, cx| cx.answer(&sasl_handshake::handle(r));
    SaslAuthenticate(SaslAuthenticateRequest) 0..=2 => |_b, r, cx| cx.answer(&sasl_authenticate::handle(r));
    DescribeUserScramCredentials(DescribeUserScramCredentialsRequest) 0..=0 => |b, r, cx| cx.answer(&describe_user_scram_credentials::handle(b, r, &cx.session));
    AlterUserScramCredentials(AlterUserScramCredentialsRequest) 0..=0 => |b, r, cx| cx.answer(&alter_user_scram_credentials::handle(b, r, &cx.session).await);
}

/// The served range of `key`, if served.
pub fn spec(key: ApiKey) -> Option<ApiSpec> {
    APIS.iter().copied().find(|s| s.key == key)
}
