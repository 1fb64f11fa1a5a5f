//! Every advertised version of every served API, spoken with kafka-protocol's own encoders:
//! each request gets a decodable response with the expected content (a field set outside its
//! version would make a response unencodable and leave old clients hanging).

mod common;

use common::*;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use raftstream::handlers::APIS;

fn range(key: ApiKey) -> std::ops::RangeInclusive<i16> {
    let s = APIS.iter().find(|s| s.key == key).unwrap();
    s.min..=s.max
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

#[test]
fn every_served_version_answers() {
    let b = TestBroker::start(&[]);
    let mut s = b.connect();

    for v in range(ApiKey::ApiVersions) {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("t"))
            .with_client_software_version(StrBytes::from_static_str("1"));
        let resp: ApiVersionsResponse = call(&mut s, ApiKey::ApiVersions, v, &req);
        assert_eq!(resp.error_code, 0);
        assert_eq!(resp.api_keys.len(), APIS.len());
    }

    for v in range(ApiKey::CreateTopics) {
        let t = format!("ct{v}");
        let req = CreateTopicsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![CreatableTopic::default()
                .with_name(name(&t))
                .with_num_partitions(2)
                .with_replication_factor(1)]);
        let resp: CreateTopicsResponse = call(&mut s, ApiKey::CreateTopics, v, &req);
        assert_eq!(
            resp.topics[0].error_code, 0,
            "CreateTopics v{v}: {:?}",
            resp.topics[0].error_message
        );
    }

    let mut produced = 0i64;
    for v in range(ApiKey::Produce) {
        let req = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(name("ct2"))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch(&[format!("v{v}").as_bytes()])))])]);
        let resp: ProduceResponse = call(&mut s, ApiKey::Produce, v, &req);
        let p = &resp.responses[0].partition_responses[0];
        assert_eq!((p.error_code, p.base_offset), (0, produced), "Produce v{v}");
        produced += 1;
    }

    let mut topic_id = uuid::Uuid::nil();
    for v in range(ApiKey::Metadata) {
        let req = if v == 0 {
            MetadataRequest::default().with_topics(Some(vec![]))
        } else {
            MetadataRequest::default()
                .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(name("ct2")))]))
        };
        let resp: MetadataResponse = call(&mut s, ApiKey::Metadata, v, &req);
        let t = resp
            .topics
            .iter()
            .find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some("ct2"))
            .expect("ct2 listed");
        assert_eq!(t.partitions.len(), 2, "Metadata v{v}");
        assert!(t.partitions.iter().all(|p| p.leader_id.0 == 7), "Metadata v{v}");
        if v >= 2 {
            assert_eq!(
                resp.cluster_id.as_ref().map(|c| c.to_string()),
                Some(b.cluster_id.clone())
            );
        }
        if v >= 10 {
            topic_id = t.topic_id;
        }
    }
    assert!(!topic_id.is_nil());

    for v in range(ApiKey::Fetch) {
        let topic = if v >= 13 {
            FetchTopic::default().with_topic_id(topic_id)
        } else {
            FetchTopic::default().with_topic(name("ct2"))
        };
        let req = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(0)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![topic.with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(1)
                .with_partition_max_bytes(1 << 20)])]);
        let resp: FetchResponse = call(&mut s, ApiKey::Fetch, v, &req);
        let p = &resp.responses[0].partitions[0];
        assert_eq!((p.error_code, p.high_watermark), (0, produced), "Fetch v{v}");
        let header = raftstream::protocol::batch::BatchHeader::parse(p.records.as_ref().unwrap()).unwrap();
        assert_eq!(header.base_offset, 1, "Fetch v{v} starts at the batch holding offset 1");
    }

    let latest_offset_request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(name("ct2"))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(-1)])]);
    for v in range(ApiKey::ListOffsets) {
        if v == 0 {
            // kafka-protocol no longer encodes v0: old-style offset lists, written by hand.
            assert_eq!(
                list_offsets_v0(&mut s, "ct2", -1, 1),
                (0, vec![produced]),
                "ListOffsets v0 latest"
            );
            assert_eq!(
                list_offsets_v0(&mut s, "ct2", -2, 5),
                (0, vec![0]),
                "ListOffsets v0 earliest"
            );
            assert_eq!(
                list_offsets_v0(&mut s, "nope", -1, 1).0,
                3,
                "ListOffsets v0 unknown topic"
            );
            continue;
        }
        let resp: ListOffsetsResponse = call(&mut s, ApiKey::ListOffsets, v, &latest_offset_request);
        let p = &resp.topics[0].partitions[0];
        assert_eq!((p.error_code, p.offset), (0, produced), "ListOffsets v{v}");
    }

    let epoch = {
        let resp: ListOffsetsResponse = call(&mut s, ApiKey::ListOffsets, 4, &latest_offset_request);
        resp.topics[0].partitions[0].leader_epoch
    };
    for v in range(ApiKey::OffsetForLeaderEpoch) {
        use kafka_protocol::messages::offset_for_leader_epoch_request::{
            OffsetForLeaderPartition, OffsetForLeaderTopic,
        };
        let ask = |current: i32, wanted: i32| {
            OffsetForLeaderEpochRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![OffsetForLeaderTopic::default()
                    .with_topic(name("ct2"))
                    .with_partitions(vec![OffsetForLeaderPartition::default()
                        .with_partition(0)
                        .with_current_leader_epoch(current)
                        .with_leader_epoch(wanted)])])
        };
        let resp: OffsetForLeaderEpochResponse = call(&mut s, ApiKey::OffsetForLeaderEpoch, v, &ask(epoch, epoch));
        let p = &resp.topics[0].partitions[0];
        assert_eq!(
            (p.error_code, p.leader_epoch, p.end_offset),
            (0, epoch, produced),
            "OffsetForLeaderEpoch v{v}: the current epoch ends at the log end"
        );
        let resp: OffsetForLeaderEpochResponse = call(&mut s, ApiKey::OffsetForLeaderEpoch, v, &ask(epoch + 1, epoch));
        assert_eq!(
            resp.topics[0].partitions[0].error_code,
            kafka_protocol::error::ResponseError::UnknownLeaderEpoch.code(),
            "OffsetForLeaderEpoch v{v}: a newer current epoch is unknown here"
        );
    }

    for v in range(ApiKey::DescribeConfigs) {
        use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
        let req = DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("ct2"))
            .with_configuration_keys(None)]);
        let resp: DescribeConfigsResponse = call(&mut s, ApiKey::DescribeConfigs, v, &req);
        assert_eq!(resp.results[0].error_code, 0, "DescribeConfigs v{v}");
        assert!(resp.results[0]
            .configs
            .iter()
            .any(|c| c.name.as_str() == "segment.bytes"));
    }

    for v in range(ApiKey::IncrementalAlterConfigs) {
        use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
        let req = IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("ct2"))
            .with_configs(vec![AlterableConfig::default()
                .with_name(StrBytes::from_static_str("segment.bytes"))
                .with_config_operation(0)
                .with_value(Some(StrBytes::from_string(format!("{}", 100_000 + v as i32))))])]);
        let resp: IncrementalAlterConfigsResponse = call(&mut s, ApiKey::IncrementalAlterConfigs, v, &req);
        assert_eq!(resp.responses[0].error_code, 0, "IncrementalAlterConfigs v{v}");
    }

    for v in range(ApiKey::AlterConfigs) {
        use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
        let req = AlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("ct2"))
            .with_configs(vec![AlterableConfig::default()
                .with_name(StrBytes::from_static_str("max.message.bytes"))
                .with_value(Some(StrBytes::from_static_str("2000000")))])]);
        let resp: AlterConfigsResponse = call(&mut s, ApiKey::AlterConfigs, v, &req);
        assert_eq!(resp.responses[0].error_code, 0, "AlterConfigs v{v}");
    }

    for v in range(ApiKey::CreatePartitions) {
        use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
        let req = CreatePartitionsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(name("ct3"))
                .with_count(3 + v as i32)
                .with_assignments(None)]);
        let resp: CreatePartitionsResponse = call(&mut s, ApiKey::CreatePartitions, v, &req);
        assert_eq!(
            resp.results[0].error_code, 0,
            "CreatePartitions v{v}: {:?}",
            resp.results[0].error_message
        );
    }

    for v in range(ApiKey::DescribeCluster) {
        let resp: DescribeClusterResponse =
            call(&mut s, ApiKey::DescribeCluster, v, &DescribeClusterRequest::default());
        assert_eq!(resp.cluster_id.to_string(), b.cluster_id, "DescribeCluster v{v}");
        assert_eq!(resp.brokers[0].broker_id.0, 7);
    }

    for v in range(ApiKey::InitProducerId) {
        let req = InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(1000);
        let resp: InitProducerIdResponse = call(&mut s, ApiKey::InitProducerId, v, &req);
        assert_eq!(resp.error_code, 0, "InitProducerId v{v}");
        assert!(resp.producer_id.0 >= 0);
    }

    for v in range(ApiKey::DeleteRecords) {
        use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
        let req = DeleteRecordsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![DeleteRecordsTopic::default()
                .with_name(name("ct2"))
                .with_partitions(vec![DeleteRecordsPartition::default()
                    .with_partition_index(0)
                    .with_offset(v as i64 + 1)])]);
        let resp: DeleteRecordsResponse = call(&mut s, ApiKey::DeleteRecords, v, &req);
        let p = &resp.topics[0].partitions[0];
        assert_eq!((p.error_code, p.low_watermark), (0, v as i64 + 1), "DeleteRecords v{v}");
    }

    for v in range(ApiKey::DescribeLogDirs) {
        use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
        let req = DescribeLogDirsRequest::default().with_topics(Some(vec![DescribableLogDirTopic::default()
            .with_topic(name("ct2"))
            .with_partitions(vec![0])]));
        let resp: DescribeLogDirsResponse = call(&mut s, ApiKey::DescribeLogDirs, v, &req);
        let dir = &resp.results[0];
        assert_eq!((resp.results.len(), dir.error_code), (1, 0), "DescribeLogDirs v{v}");
        assert_eq!(dir.topics[0].partitions[0].partition_index, 0, "DescribeLogDirs v{v}");
    }

    for v in range(ApiKey::ElectLeaders) {
        use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
        // A single node leads all its partitions and is their preferred replica.
        let req = ElectLeadersRequest::default()
            .with_timeout_ms(5000)
            .with_topic_partitions(Some(vec![TopicPartitions::default()
                .with_topic(name("ct2"))
                .with_partitions(vec![0, 99])]));
        let resp: ElectLeadersResponse = call(&mut s, ApiKey::ElectLeaders, v, &req);
        let codes: Vec<i16> = resp.replica_election_results[0]
            .partition_result
            .iter()
            .map(|p| p.error_code)
            .collect();
        let (not_needed, unknown) = (
            kafka_protocol::error::ResponseError::ElectionNotNeeded.code(),
            kafka_protocol::error::ResponseError::UnknownTopicOrPartition.code(),
        );
        assert_eq!(codes, vec![not_needed, unknown], "ElectLeaders v{v}");
        // Null partitions: every partition, and those that needed no election left out.
        let every: ElectLeadersResponse = call(
            &mut s,
            ApiKey::ElectLeaders,
            v,
            &ElectLeadersRequest::default().with_timeout_ms(5000),
        );
        assert_eq!(
            (every.error_code, every.replica_election_results.len()),
            (0, 0),
            "ElectLeaders v{v}"
        );
    }

    for v in range(ApiKey::FindCoordinator) {
        if v >= 4 {
            let req = FindCoordinatorRequest::default()
                .with_key_type(0)
                .with_coordinator_keys(vec![StrBytes::from_static_str("g"), StrBytes::from_static_str("h")]);
            let resp: FindCoordinatorResponse = call(&mut s, ApiKey::FindCoordinator, v, &req);
            assert_eq!(resp.coordinators.len(), 2, "FindCoordinator v{v}");
            assert!(resp.coordinators.iter().all(|c| c.error_code == 0 && c.node_id.0 == 7));
            continue;
        }
        let req = FindCoordinatorRequest::default()
            .with_key(StrBytes::from_static_str("g"))
            .with_key_type(0);
        let resp: FindCoordinatorResponse = call(&mut s, ApiKey::FindCoordinator, v, &req);
        assert_eq!((resp.error_code, resp.node_id.0), (0, 7), "FindCoordinator v{v}");
    }

    for v in range(ApiKey::OffsetCommit) {
        use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
        let req = OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("g")))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(name("ct2"))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(10 + v as i64)
                    .with_committed_metadata(Some(StrBytes::from_static_str("m")))])]);
        // The first commit may find the offsets partition still loading.
        let mut attempts = 0;
        loop {
            let resp: OffsetCommitResponse = call(&mut s, ApiKey::OffsetCommit, v, &req);
            let code = resp.topics[0].partitions[0].error_code;
            if code == kafka_protocol::error::ResponseError::CoordinatorLoadInProgress.code() && attempts < 100 {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
                continue;
            }
            assert_eq!(code, 0, "OffsetCommit v{v}");
            break;
        }
    }

    for v in range(ApiKey::OffsetFetch) {
        use kafka_protocol::messages::offset_fetch_request::{
            OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
        };
        let last_commit = 10 + *range(ApiKey::OffsetCommit).end() as i64;
        if v >= 8 {
            // Several groups in one request, each answered on its own.
            let group = |g: &'static str| {
                OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(StrBytes::from_static_str(g)))
                    .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                        .with_name(name("ct2"))
                        .with_partition_indexes(vec![0, 1])]))
            };
            let req = OffsetFetchRequest::default().with_groups(vec![group("g"), group("other")]);
            // "other" may live on an offsets partition that is still loading: retry that.
            let loading = kafka_protocol::error::ResponseError::CoordinatorLoadInProgress.code();
            let mut resp: OffsetFetchResponse = call(&mut s, ApiKey::OffsetFetch, v, &req);
            for _ in 0..100 {
                if resp.groups.iter().all(|g| g.error_code != loading) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
                resp = call(&mut s, ApiKey::OffsetFetch, v, &req);
            }
            let found: Vec<(String, i16, Vec<i64>)> = resp
                .groups
                .iter()
                .map(|g| {
                    let offsets = g
                        .topics
                        .iter()
                        .flat_map(|t| t.partitions.iter().map(|p| p.committed_offset));
                    (g.group_id.to_string(), g.error_code, offsets.collect())
                })
                .collect();
            let expected = vec![
                ("g".to_string(), 0, vec![last_commit, -1]),
                ("other".to_string(), 0, vec![-1, -1]),
            ];
            assert_eq!(found, expected, "OffsetFetch v{v}");
            continue;
        }
        let req = OffsetFetchRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("g")))
            .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                .with_name(name("ct2"))
                .with_partition_indexes(vec![0])]));
        let resp: OffsetFetchResponse = call(&mut s, ApiKey::OffsetFetch, v, &req);
        assert_eq!(
            resp.topics[0].partitions[0].committed_offset, last_commit,
            "OffsetFetch v{v}"
        );
    }

    for v in range(ApiKey::OffsetDelete) {
        use kafka_protocol::messages::offset_delete_request::{OffsetDeleteRequestPartition, OffsetDeleteRequestTopic};
        use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
        let req = OffsetDeleteRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("g")))
            .with_topics(vec![OffsetDeleteRequestTopic::default()
                .with_name(name("ct2"))
                .with_partitions(vec![
                    OffsetDeleteRequestPartition::default().with_partition_index(0)
                ])]);
        let resp: OffsetDeleteResponse = call(&mut s, ApiKey::OffsetDelete, v, &req);
        assert_eq!(
            (resp.error_code, resp.topics[0].partitions[0].error_code),
            (0, 0),
            "OffsetDelete v{v}"
        );
        let fetch = OffsetFetchRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("g")))
            .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                .with_name(name("ct2"))
                .with_partition_indexes(vec![0])]));
        let fetched: OffsetFetchResponse = call(&mut s, ApiKey::OffsetFetch, 7, &fetch);
        assert_eq!(
            fetched.topics[0].partitions[0].committed_offset, -1,
            "the offset is gone"
        );
    }

    for v in range(ApiKey::DeleteTopics) {
        let t = format!("ct{}", v + 1);
        let req = if v >= 6 {
            DeleteTopicsRequest::default().with_topics(vec![DeleteTopicState::default().with_name(Some(name(&t)))])
        } else {
            DeleteTopicsRequest::default().with_topic_names(vec![name(&t)])
        }
        .with_timeout_ms(5000);
        let resp: DeleteTopicsResponse = call(&mut s, ApiKey::DeleteTopics, v, &req);
        assert_eq!(resp.responses[0].error_code, 0, "DeleteTopics v{v}");
    }
    assert!(!b.log_text().contains("could not encode"), "{}", b.log_text());
}

/// A ListOffsets v0 request for partition 0 of `topic`: (error code, offsets).
fn list_offsets_v0(s: &mut std::net::TcpStream, topic: &str, timestamp: i64, max: i32) -> (i16, Vec<i64>) {
    use bytes::{Buf, BufMut};
    let mut body = bytes::BytesMut::new();
    body.put_i32(-1);
    body.put_i32(1);
    body.put_i16(topic.len() as i16);
    body.put_slice(topic.as_bytes());
    body.put_i32(1);
    body.put_i32(0);
    body.put_i64(timestamp);
    body.put_i32(max);
    send_raw_request(s, ApiKey::ListOffsets as i16, 0, 77, &body);
    let mut r = read_frame(s).expect("a ListOffsets v0 response");
    assert_eq!(r.get_i32(), 77, "correlation id");
    assert_eq!(r.get_i32(), 1, "one topic");
    let n = r.get_i16() as usize;
    assert_eq!(&r.split_to(n)[..], topic.as_bytes());
    assert_eq!((r.get_i32(), r.get_i32()), (1, 0), "partition 0");
    let code = r.get_i16();
    let offsets = (0..r.get_i32()).map(|_| r.get_i64()).collect();
    assert_eq!(r.remaining(), 0);
    (code, offsets)
}

/// zstd arrived with Produce v7 and Fetch v10 (KIP-110), and Kafka answers older requests
/// UNSUPPORTED_COMPRESSION_TYPE: a zstd batch in Produce v6, a Fetch v9 of a topic whose
/// compression.type is zstd (zstd batches of a `producer` topic are served as they are).
#[test]
fn zstd_needs_produce_v7_and_fetch_v10() {
    use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
    use raftstream::protocol::batch::validate_produced;
    use raftstream::protocol::batch_rules::recompress;
    use raftstream::protocol::compression::Codec;
    let b = TestBroker::start(&[]);
    let mut s = b.connect();
    let plain = validate_produced(&batch(&[b"z1", b"z2"]), 1 << 20).unwrap();
    let zstd = recompress(plain, Codec::Zstd, 1 << 20, 1 << 20).unwrap().bytes;
    let unsupported = kafka_protocol::error::ResponseError::UnsupportedCompressionType.code();
    let produce = |s: &mut std::net::TcpStream, topic: &'static str, v: i16, records: bytes::Bytes| {
        let resp: ProduceResponse = call(s, ApiKey::Produce, v, &produce_request(topic, records));
        resp.responses[0].partition_responses[0].error_code
    };
    let zstd_topic = CreatableTopic::default()
        .with_name(name("zstd-topic"))
        .with_num_partitions(1)
        .with_replication_factor(1)
        .with_configs(vec![CreatableTopicConfig::default()
            .with_name(StrBytes::from_static_str("compression.type"))
            .with_value(Some(StrBytes::from_static_str("zstd")))]);
    let created: CreateTopicsResponse = call(
        &mut s,
        ApiKey::CreateTopics,
        7,
        &CreateTopicsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(vec![zstd_topic]),
    );
    assert_eq!(created.topics[0].error_code, 0);
    assert_eq!(produce(&mut s, "plain-topic", 7, batch(&[b"plain"])), 0);
    assert_eq!(
        produce(&mut s, "plain-topic", 6, zstd.clone()),
        unsupported,
        "Produce v6 with zstd"
    );
    assert_eq!(
        produce(&mut s, "plain-topic", 7, zstd.clone()),
        0,
        "Produce v7 with zstd"
    );
    assert_eq!(produce(&mut s, "zstd-topic", 6, batch(&[b"stored as zstd"])), 0);
    let fetch = |s: &mut std::net::TcpStream, topic: &str, v: i16| {
        let req = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(0)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default().with_topic(name(topic)).with_partitions(
                vec![FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(0)
                    .with_partition_max_bytes(1 << 20)],
            )]);
        let resp: FetchResponse = call(s, ApiKey::Fetch, v, &req);
        let p = resp.responses[0].partitions[0].clone();
        (p.error_code, p.records.map(|r| r.len()).unwrap_or(0))
    };
    assert_eq!(
        fetch(&mut s, "zstd-topic", 9).0,
        unsupported,
        "Fetch v9 of a zstd topic"
    );
    let (code, bytes) = fetch(&mut s, "zstd-topic", 10);
    assert!(code == 0 && bytes > 0, "Fetch v10 reads it: {code} {bytes}");
    let (code, bytes) = fetch(&mut s, "plain-topic", 4);
    assert!(
        code == 0 && bytes > 0,
        "zstd batches of a producer topic are served to v4: {code} {bytes}"
    );
}
