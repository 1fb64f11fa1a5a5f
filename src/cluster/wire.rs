//! The node-to-node wire format: frames of `[u32 length][u64 request id][MessagePack body]`.
//! One connection per node pair carries the Raft RPCs of every group, each request naming its
//! group; responses carry the id of their request and may arrive in any order.

use crate::types::{NodeId, TypeConfig};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Which Raft group a request is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GroupId {
    /// The cluster-metadata group.
    Controller,
    /// A partition's group.
    Partition { topic: String, partition: i32 },
}

impl GroupId {
    /// The kind of group, as a metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            GroupId::Controller => "controller",
            GroupId::Partition { .. } => "partition",
        }
    }

    /// The group of partition `tp`.
    pub fn of(tp: &crate::types::TopicPartition) -> GroupId {
        GroupId::Partition {
            topic: tp.topic.clone(),
            partition: tp.partition,
        }
    }
}

/// What one node asks another.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// First frame on a connection: who is calling, and from which cluster (empty: not known
    /// yet).
    Hello {
        node_id: NodeId,
        cluster_id: String,
        /// With `cluster.secret`: HMAC of the accepting node's challenge (`cluster::auth`).
        #[serde(default)]
        proof: Vec<u8>,
    },
    AppendEntries(GroupId, AppendEntriesRequest<TypeConfig>),
    Vote(GroupId, VoteRequest<NodeId>),
    InstallSnapshot(GroupId, InstallSnapshotRequest<TypeConfig>),
    /// A cluster-metadata change (JSON `MetaCommand`) for the controller leader.
    Propose(Bytes),
    /// Whether this node belongs to a formed cluster, and the controller's voters.
    ClusterInfo,
    /// The group's leader asks this replica to campaign (it is handing leadership over).
    Campaign(GroupId),
    /// ElectLeaders (preferred), sent to the partition's leader: hand leadership to the
    /// preferred replica and answer once it moved (`Proposed(Ok(0))`) or why not.
    ElectPreferred(GroupId),
    /// A node added to a running cluster asks to follow the controller group (as a learner);
    /// a follower forwards it to the leader once.
    JoinController {
        node_id: NodeId,
        addr: String,
        forwarded: bool,
    },
    /// Node-level failure detection: the caller is alive, in this incarnation.
    Ping {
        incarnation: u64,
    },
}

/// The answer to a `Request`.
#[derive(Debug, Serialize, Deserialize)]
pub enum Response {
    /// The caller is welcome.
    Hello,
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
    /// Outcome of a proposal (or a join): the applied value, or (Kafka error code, message).
    Proposed(Result<i64, (i16, String)>),
    /// The cluster id (empty: none formed yet) and the controller group's voters.
    ClusterInfo {
        cluster_id: String,
        controller_voters: Vec<NodeId>,
    },
    /// The answer to a ping: this node's incarnation, and the peers it heard from within the
    /// lease (the elector's pre-vote: a replica campaigns only when a majority no longer hears
    /// the leader). Absent from older nodes' pongs.
    Pong {
        incarnation: u64,
        #[serde(default)]
        hears: Vec<NodeId>,
    },
    /// The request cannot be served here (group not running, wrong cluster, ...).
    Unavailable(String),
}

/// Bytes of a frame header: length (u32) and request id (u64).
const HEADER_BYTES: usize = 12;

/// Encodes one frame.
pub fn encode<T: Serialize>(id: u64, body: &T) -> anyhow::Result<Bytes> {
    let payload = rmp_serde::to_vec_named(body)?;
    let mut buf = BytesMut::with_capacity(HEADER_BYTES + payload.len());
    buf.put_u32((payload.len() + 8) as u32);
    buf.put_u64(id);
    buf.put_slice(&payload);
    Ok(buf.freeze())
}

/// Reads one frame; `Ok(None)` at a clean end of stream. A frame longer than
/// `max_frame_bytes` is an error (the connection is then closed).
pub async fn read_frame<R: AsyncRead + Unpin, T: for<'de> Deserialize<'de>>(
    r: &mut R,
    max_frame_bytes: usize,
) -> anyhow::Result<Option<(u64, T)>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    anyhow::ensure!(
        (8..=max_frame_bytes).contains(&len),
        "frame of {len} bytes (limit {max_frame_bytes})"
    );
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).await?;
    let mut body = &buf[..];
    let id = body.get_u64();
    Ok(Some((id, rmp_serde::from_slice(body)?)))
}

/// Writes one encoded frame.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, frame: &[u8]) -> std::io::Result<()> {
    w.write_all(frame).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Command;
    use openraft::{Entry, EntryPayload, LogId, Vote};

    #[tokio::test]
    async fn frames_round_trip_and_are_bounded() {
        let entry = Entry::<TypeConfig> {
            log_id: LogId::new(openraft::CommittedLeaderId::new(3, 1), 7),
            payload: EntryPayload::Normal(Command::Batch(Bytes::from_static(b"\x00\x01batch"))),
        };
        let req = Request::AppendEntries(
            GroupId::Partition {
                topic: "t".into(),
                partition: 2,
            },
            AppendEntriesRequest {
                vote: Vote::new_committed(3, 1),
                prev_log_id: None,
                entries: vec![entry.clone()],
                leader_commit: None,
            },
        );
        let frame = encode(42, &req).unwrap();
        let (id, back): (u64, Request) = read_frame(&mut &frame[..], 1 << 20).await.unwrap().unwrap();
        assert_eq!(id, 42);
        match back {
            Request::AppendEntries(GroupId::Partition { topic, partition }, r) => {
                assert_eq!((topic.as_str(), partition), ("t", 2));
                assert_eq!(r.entries, vec![entry]);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            read_frame::<_, Request>(&mut &frame[..], 16).await.is_err(),
            "over the limit"
        );
        let empty: &[u8] = &[];
        assert!(read_frame::<_, Request>(&mut &empty[..], 16).await.unwrap().is_none());
    }
}
