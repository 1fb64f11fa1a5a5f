//! Unit tests of the controller state machine's commands.
use super::commands::place;
use super::*;
use crate::types::meta_error::MetaError;
use kafka_protocol::error::ResponseError;

fn cluster_with_topic() -> ClusterMeta {
    let mut meta = ClusterMeta::default();
    apply_command(
        &mut meta,
        MetaCommand::InitCluster {
            cluster_id: "c".into(),
            voters: vec![1, 2, 3, 4],
        },
    )
    .unwrap();
    apply_command(
        &mut meta,
        MetaCommand::CreateTopic {
            name: "t".into(),
            topic_id: uuid::Uuid::new_v4(),
            partitions: 2,
            replication_factor: 2,
            configs: BTreeMap::new(),
            assignment: None,
        },
    )
    .unwrap();
    meta
}

fn reassign(meta: &mut ClusterMeta, partition: i32, target: Option<Vec<i32>>) -> Result<i64, MetaError> {
    apply_command(
        meta,
        MetaCommand::ReassignPartition {
            topic: "t".into(),
            partition,
            target,
        },
    )
}

#[test]
fn a_reassignment_shows_every_host_until_done() {
    let mut meta = cluster_with_topic();
    let before = meta.topics["t"].replicas_of(0, 0);
    let spare: Vec<i32> = (1..=4).filter(|n| !before.contains(n)).collect();
    let target = vec![spare[0], before[1]];
    reassign(&mut meta, 0, Some(target.clone())).unwrap();
    let t = &meta.topics["t"];
    assert_eq!(t.replicas_of(0, 0), before, "the voters change only when the group did");
    assert_eq!(t.hosts_of(0, 0), vec![spare[0], before[1], before[0]]);
    apply_command(
        &mut meta,
        MetaCommand::ReassignmentsDone {
            done: vec![("t".into(), 0, target.clone())],
        },
    )
    .unwrap();
    let t = &meta.topics["t"];
    assert_eq!(t.replicas_of(0, 0), target);
    assert!(t.reassigning.is_empty());
    assert_eq!(t.hosts_of(0, 0), target);
}

#[test]
fn a_done_report_for_an_older_target_keeps_the_newer_one_pending() {
    let mut meta = cluster_with_topic();
    reassign(&mut meta, 1, Some(vec![1, 2])).unwrap();
    reassign(&mut meta, 1, Some(vec![3, 4])).unwrap();
    apply_command(
        &mut meta,
        MetaCommand::ReassignmentsDone {
            done: vec![("t".into(), 1, vec![1, 2])],
        },
    )
    .unwrap();
    let t = &meta.topics["t"];
    assert_eq!(t.replicas_of(1, 0), vec![1, 2]);
    assert_eq!(t.reassigning.get(&1), Some(&vec![3, 4]));
}

#[test]
fn cancelling_goes_back_to_the_current_replicas() {
    let mut meta = cluster_with_topic();
    let before = meta.topics["t"].replicas_of(0, 0);
    assert!(matches!(
        reassign(&mut meta, 0, None),
        Err(MetaError::NoReassignmentInProgress { .. })
    ));
    reassign(&mut meta, 0, Some(vec![4])).unwrap();
    reassign(&mut meta, 0, None).unwrap();
    assert_eq!(meta.topics["t"].reassigning.get(&0), Some(&before));
}

#[test]
fn an_added_node_takes_replicas_of_new_topics() {
    let mut meta = cluster_with_topic();
    for _ in 0..2 {
        apply_command(&mut meta, MetaCommand::AddNode { node_id: 5 }).unwrap();
    }
    assert_eq!(meta.voters, vec![1, 2, 3, 4, 5]);
    reassign(&mut meta, 0, Some(vec![5, 1])).unwrap();
    let replicas = place(&mut meta, 0, 5, 1).unwrap();
    assert_eq!(replicas.concat().iter().filter(|id| **id == 5).count(), 1);
}

#[test]
fn recorded_isr_and_fencing_follow_the_newest_reports() {
    let mut meta = cluster_with_topic();
    let isr = |epoch, ids: Vec<i32>| MetaCommand::PartitionIsr {
        isr: vec![("t".into(), 0, epoch, ids)],
    };
    apply_command(&mut meta, isr(3, vec![1, 2])).unwrap();
    apply_command(&mut meta, isr(2, vec![1])).unwrap();
    assert_eq!(
        meta.isr_in("t", 0, 3),
        Some(vec![1, 2]),
        "an older epoch never overwrites"
    );
    assert_eq!(
        meta.isr_in("t", 0, 4),
        None,
        "a new leader's epoch has none recorded yet"
    );
    let fence = |changes| MetaCommand::FenceBrokers { changes };
    apply_command(&mut meta, fence(vec![(2, true), (3, true)])).unwrap();
    apply_command(&mut meta, fence(vec![(2, false)])).unwrap();
    assert_eq!(meta.fenced.iter().copied().collect::<Vec<_>>(), vec![3]);
}

#[test]
fn bad_targets_are_refused() {
    let mut meta = cluster_with_topic();
    for target in [vec![], vec![1, 1], vec![1, 9]] {
        let err = reassign(&mut meta, 0, Some(target.clone())).unwrap_err();
        assert!(
            matches!(err, MetaError::InvalidReplicaAssignment(_)),
            "{target:?}: {err}"
        );
    }
    assert_eq!(
        reassign(&mut meta, 5, Some(vec![1])).unwrap_err().code(),
        ResponseError::UnknownTopicOrPartition
    );
    assert!(meta.topics["t"].reassigning.is_empty());
}
