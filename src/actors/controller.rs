//! The controller: owns the cluster-metadata Raft group (topics, ids, partition counts,
//! configs). On one node it is a group of one with its own log under `<data_dir>/meta`,
//! replayed at start before the broker serves.

use crate::cluster::network::Network;
use crate::cluster::{Command, NodeId, Raft};
use crate::storage::log::{LogConfig, PartitionLog};
use crate::storage::meta_sm::{ClusterMeta, MetaCommand, MetaSm};
use crate::storage::raft_log::LogStore;
use crate::storage::FlushSink;
use kafka_protocol::error::ResponseError;
use openraft::error::ClientWriteError;
use openraft::BasicNode;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// Reply to a proposal: applied, or refused with a Kafka error and a message.
pub type ProposeReply = oneshot::Sender<Result<i64, (ResponseError, String)>>;

/// Messages the controller takes.
pub enum ControllerMsg {
    /// Propose a metadata change and answer once it is applied.
    Propose { cmd: MetaCommand, reply: ProposeReply },
}

/// What the controller needs.
pub struct ControllerArgs {
    pub dir: PathBuf,
    pub node_id: NodeId,
    pub raft_config: Arc<openraft::Config>,
    pub sink: Arc<dyn FlushSink>,
    pub view: Arc<RwLock<Arc<ClusterMeta>>>,
    pub version: watch::Sender<u64>,
    /// How long start-up may wait for the group to elect a leader and replay its log.
    pub ready_timeout: Duration,
}

/// Controller state.
pub struct ControllerState {
    raft: Raft,
    node_id: NodeId,
}

/// The controller actor.
pub struct Controller;

impl Actor for Controller {
    type Msg = ControllerMsg;
    type State = ControllerState;
    type Arguments = ControllerArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<ControllerMsg>,
        args: ControllerArgs,
    ) -> Result<ControllerState, ActorProcessingErr> {
        // The metadata log never rolls (it holds no Kafka batches), so one segment suffices.
        let cfg = LogConfig {
            segment_bytes: u64::MAX,
            index_interval_bytes: 4096,
            tail_cache_bytes: 256 << 10,
        };
        let (log, report) = PartitionLog::open(&args.dir, cfg)?;
        if let Some((bytes, why)) = &report.truncated {
            tracing::warn!(bytes, reason = %why, "cut a torn tail of the metadata log");
        }
        let last_index = log.last_log_id().map(|l| l.index);
        let store = LogStore::new(Arc::new(log), args.sink.clone());
        let sm = MetaSm::new(args.view.clone(), args.version.clone());
        let raft = Raft::new(args.node_id, args.raft_config.clone(), Network, store, sm).await?;
        if !raft.is_initialized().await? {
            raft.initialize(BTreeMap::from([(args.node_id, BasicNode::default())]))
                .await?;
        }
        let node_id = args.node_id;
        raft.wait(Some(args.ready_timeout))
            .metrics(
                move |m| m.current_leader == Some(node_id) && m.last_applied.map(|l| l.index) >= last_index,
                "controller elected and metadata replayed",
            )
            .await
            .map_err(|e| format!("controller not ready: {e}"))?;
        Ok(ControllerState {
            raft,
            node_id: args.node_id,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<ControllerMsg>,
        msg: ControllerMsg,
        st: &mut ControllerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ControllerMsg::Propose { cmd, reply } => {
                if st.raft.metrics().borrow().current_leader != Some(st.node_id) {
                    let _ = reply.send(Err((
                        ResponseError::NotController,
                        "this node is not the controller".into(),
                    )));
                    return Ok(());
                }
                let bytes = serde_json::to_vec(&cmd)?;
                let rx = st.raft.client_write_ff(Command::Meta(bytes.into())).await?;
                tokio::spawn(async move {
                    let result = match rx.await {
                        Ok(Ok(resp)) => match resp.data.error {
                            None => Ok(resp.data.value),
                            Some(why) if why.contains("already exists") => {
                                Err((ResponseError::TopicAlreadyExists, why))
                            }
                            Some(why) if why.contains("does not exist") => {
                                Err((ResponseError::UnknownTopicOrPartition, why))
                            }
                            Some(why) if why.starts_with("invalid partitions") => {
                                Err((ResponseError::InvalidPartitions, why))
                            }
                            Some(why) => Err((ResponseError::InvalidRequest, why)),
                        },
                        Ok(Err(ClientWriteError::ForwardToLeader(_))) => {
                            Err((ResponseError::NotController, "controller leadership moved".into()))
                        }
                        Ok(Err(e)) => Err((ResponseError::UnknownServerError, e.to_string())),
                        Err(_) => Err((ResponseError::NotController, "controller stopped".into())),
                    };
                    let _ = reply.send(result);
                });
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<ControllerMsg>,
        st: &mut ControllerState,
    ) -> Result<(), ActorProcessingErr> {
        let _ = tokio::time::timeout(Duration::from_secs(5), st.raft.shutdown()).await;
        Ok(())
    }
}
