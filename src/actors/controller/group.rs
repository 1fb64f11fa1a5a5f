//! The controller's Raft group: opened at start, and opened again when it stopped on a failed
//! write (a full disk, a failed fsync) once the data dir has room, carrying on from what its
//! state machine had applied. The broker keeps serving meanwhile; metadata changes are refused
//! with a retriable error until the group is back.

use crate::actors::controller::actor::ControllerMsg;
use crate::actors::controller::routes::ClusterRoutes;
use crate::cluster::handover::hand_leadership;
use crate::cluster::network::{Network, Peers};
use crate::cluster::wire::GroupId;
use crate::storage::disk_guard::{DiskGuard, CHECK_INTERVAL};
use crate::storage::log::{LogConfig, PartitionLog};
use crate::storage::meta_sm::{Applied, ClusterMeta, MetaSm};
use crate::storage::raft_log::LogStore;
use crate::storage::FlushSink;
use crate::types::{NodeId, Raft};
use parking_lot::RwLock;
use ractor::{ActorProcessingErr, ActorRef};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Reopens in a row (without a calm minute between) before the controller gives up and the
/// broker stops: a disk that fails every write is not waited out forever.
const MAX_REOPENS: u32 = 10;
/// A group that ran this long without stopping is healthy again: the reopen count restarts.
const CALM_AFTER: Duration = Duration::from_secs(60);
/// Longest pause between reopen attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// What opening the controller's group needs (kept for reopening it).
pub struct GroupParts {
    /// The metadata log's directory (`<data_dir>/meta`).
    pub dir: PathBuf,
    pub node_id: NodeId,
    pub raft_config: Arc<openraft::Config>,
    pub sink: Arc<dyn FlushSink>,
    /// What handlers read, kept by the state machine.
    pub view: Arc<RwLock<Arc<ClusterMeta>>>,
    /// Ticks on every metadata change.
    pub version: watch::Sender<u64>,
    /// The other nodes (none for a single node); every node of `peers` is a voter.
    pub peers: Option<Arc<Peers>>,
    /// Where peers reach the controller group.
    pub routes: Option<Arc<ClusterRoutes>>,
    /// Kept equal to the group's leader (-1 while unknown).
    pub leader: Arc<std::sync::atomic::AtomicI32>,
    /// Free space of the data dir: metadata changes are refused while it is low, and a group
    /// stopped by a failed write is reopened once it is not.
    pub disk: Arc<DiskGuard>,
}

impl GroupParts {
    /// Opens the metadata log and starts the group on it, its state machine carrying on from
    /// `resume` (or replaying the log). Returns the group, the log's last index and the state
    /// machine's progress. A watcher keeps `leader` current and tells `me` when the group stops
    /// on an error.
    pub(super) async fn open(
        &self,
        me: &ActorRef<ControllerMsg>,
        resume: Option<Applied>,
    ) -> Result<Opened, ActorProcessingErr> {
        // The metadata log never rolls (it holds no Kafka batches), so one segment suffices.
        let cfg = LogConfig {
            segment_bytes: u64::MAX,
            segment_ms: i64::MAX,
            index_interval_bytes: 4096,
            tail_cache_bytes: 256 << 10,
            max_append_bytes: u64::MAX,
        };
        let (log, report) = PartitionLog::open(&self.dir, cfg)?;
        if let Some((bytes, why)) = &report.truncated {
            tracing::warn!(bytes, reason = %why, "cut a torn tail of the metadata log");
        }
        let last_index = log.last_log_id().map(|l| l.index);
        let log = Arc::new(log);
        let store = LogStore::new(log.clone(), self.sink.clone());
        let sm = match resume {
            Some(applied) => MetaSm::resume(self.view.clone(), self.version.clone(), applied),
            None => MetaSm::new(self.view.clone(), self.version.clone()),
        };
        let progress = sm.progress();
        let network = Network::new(GroupId::Controller, self.peers.clone());
        let raft = Raft::new(self.node_id, self.raft_config.clone(), network, store, sm).await?;
        if let Some(routes) = &self.routes {
            routes.set_controller_raft(raft.clone());
        }
        watch_group(raft.clone(), self.leader.clone(), me.clone());
        let stalls = self.peers.as_ref().map(|p| p.liveness.stalls()).unwrap_or(0);
        let stall_confirmed = Arc::new(std::sync::atomic::AtomicU64::new(stalls));
        if let Some(peers) = &self.peers {
            let every = Duration::from_millis(self.raft_config.heartbeat_interval.max(1));
            let watched = Watched {
                raft: raft.clone(),
                peers: peers.clone(),
                stall_confirmed: stall_confirmed.clone(),
                disk: self.disk.clone(),
            };
            spawn_pre_vote(watched, self.node_id, every);
        }
        Ok(Opened {
            raft,
            last_index,
            progress,
            log,
            stall_confirmed,
        })
    }
}

/// A group just opened.
pub(super) struct Opened {
    pub raft: Raft,
    /// The metadata log's last index when it was opened.
    pub last_index: Option<u64>,
    /// How far its state machine got (what a reopen carries on from).
    pub progress: Arc<parking_lot::Mutex<Applied>>,
    /// The metadata log (its unsynced tail is cut after a failed fsync, before a reopen).
    pub log: Arc<PartitionLog>,
    /// The node's stall count when a quorum last confirmed this node's leadership.
    pub stall_confirmed: Arc<std::sync::atomic::AtomicU64>,
}

/// What the pre-vote task looks after.
struct Watched {
    raft: Raft,
    peers: Arc<Peers>,
    stall_confirmed: Arc<std::sync::atomic::AtomicU64>,
    disk: Arc<DiskGuard>,
}

/// Keeps `leader_out` equal to the group's leader; reports a stop on an error to `me`.
fn watch_group(raft: Raft, leader_out: Arc<std::sync::atomic::AtomicI32>, me: ActorRef<ControllerMsg>) {
    let mut metrics = raft.metrics();
    crate::tasks::spawn_essential("controller-watch", async move {
        loop {
            let (leader, stopped) = {
                let m = metrics.borrow_and_update();
                let stopped = match &m.running_state {
                    Err(openraft::error::Fatal::Stopped) | Ok(()) => None,
                    Err(fatal) => Some(fatal.to_string()),
                };
                // A changed term is a controller election: the cluster benchmark checks none
                // happened under load.
                metrics::gauge!(crate::observability::CONTROLLER_TERM).set(m.current_term as f64);
                (m.current_leader.map(|l| l as i32).unwrap_or(-1), stopped)
            };
            leader_out.store(leader, std::sync::atomic::Ordering::Relaxed);
            if let Some(why) = stopped {
                leader_out.store(-1, std::sync::atomic::Ordering::Relaxed);
                let _ = me.send_message(ControllerMsg::GroupStopped(why));
                return;
            }
            if metrics.changed().await.is_err() {
                return;
            }
        }
    });
}

/// A pre-vote on node liveness for the controller group (whose elections are openraft's own
/// timers): its election timer runs only while this node hears a majority of the voters. Cut
/// off, it would campaign over and over, and come back with a term that deposes the others'
/// controller (openraft 0.9 has no pre-vote). After a stall of this node, a leadership here
/// counts again once a quorum confirmed it. A node whose data dir is full does not campaign
/// (it could write no metadata), and hands the leadership over if it has it. Ends when the
/// group stops.
fn spawn_pre_vote(w: Watched, me: NodeId, every: Duration) {
    let Watched {
        raft,
        peers,
        stall_confirmed,
        disk,
    } = w;
    let liveness = peers.liveness.clone();
    crate::tasks::spawn_essential("controller-pre-vote", async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut electing = true;
        loop {
            ticker.tick().await;
            let leading = raft.metrics().borrow().state == openraft::ServerState::Leader;
            if leading {
                crate::cluster::confirm_after_stall(&raft, &liveness, &stall_confirmed, liveness.lease()).await;
                if disk.is_low() {
                    hand_over(&raft, &peers, me).await;
                }
            }
            let reachable = {
                let m = raft.metrics();
                let m = m.borrow();
                if m.running_state.is_err() {
                    return;
                }
                liveness.holds_quorum(me, m.membership_config.membership().get_joint_config()) && !disk.is_low()
            };
            if reachable != electing {
                electing = reachable;
                raft.runtime_config().elect(reachable);
                tracing::debug!(reachable, "controller election timer switched");
            }
        }
    });
}

/// A controller leader whose data dir is full refuses every change (and a node starting then
/// could not register): it stops heartbeating, so its followers' vote lease runs out, asks a
/// voter it hears from to campaign, and waits (bounded) for another node to lead. Its own
/// heartbeats resume either way (a failed handover is tried again on the next tick).
async fn hand_over(raft: &Raft, peers: &Peers, me: NodeId) {
    let lease = Duration::from_millis(raft.config().election_timeout_max);
    let heard = peers.liveness.lease();
    let voters: Vec<NodeId> = {
        let m = raft.metrics();
        let m = m.borrow();
        let voters = m.membership_config.membership().voter_ids();
        voters.filter(|v| *v != me && peers.heard_within(*v, heard)).collect()
    };
    if voters.is_empty() {
        return;
    }
    raft.runtime_config().heartbeat(false);
    let moved_away = |_: NodeId| async move {
        let moved = raft.wait(Some(2 * lease));
        let moved = moved.metrics(move |m| m.current_leader.is_some_and(|l| l != me), "controller moved");
        moved.await.is_ok()
    };
    if let Some(to) = hand_leadership(peers, &GroupId::Controller, &voters, lease, moved_away).await {
        tracing::warn!(to, "data dir full: controller leadership handed over");
    }
    raft.runtime_config().heartbeat(true);
}

/// Reopen bookkeeping: how many in a row, and since when the current group runs.
pub(super) struct Reopens {
    in_a_row: u32,
    running_since: Instant,
    /// Set while the group is stopped and waiting to be reopened.
    pub pending: bool,
}

impl Default for Reopens {
    fn default() -> Self {
        Reopens {
            in_a_row: 0,
            running_since: Instant::now(),
            pending: false,
        }
    }
}

impl Reopens {
    /// Plans a reopen after a stop: `None` when too many came in a row (give up), else the
    /// pause before the attempt (doubling from the disk check interval).
    pub fn next_pause(&mut self) -> Option<Duration> {
        if self.running_since.elapsed() >= CALM_AFTER {
            self.in_a_row = 0;
        }
        if self.in_a_row >= MAX_REOPENS {
            return None;
        }
        self.in_a_row += 1;
        self.pending = true;
        Some((CHECK_INTERVAL * 2u32.saturating_pow(self.in_a_row - 1)).min(MAX_BACKOFF))
    }

    /// The group was opened again.
    pub fn reopened(&mut self) {
        self.pending = false;
        self.running_since = Instant::now();
    }
}

/// Asks `me` to reopen the group after `pause`, once the data dir has room.
pub(super) fn schedule_reopen(me: ActorRef<ControllerMsg>, disk: Arc<DiskGuard>, pause: Duration) {
    tokio::spawn(async move {
        tokio::time::sleep(pause).await;
        disk.wait_not_low(CHECK_INTERVAL).await;
        let _ = me.send_message(ControllerMsg::Reopen);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopens_back_off_and_give_up() {
        let mut r = Reopens::default();
        let pauses: Vec<Duration> = std::iter::from_fn(|| r.next_pause()).collect();
        assert_eq!(pauses.len(), MAX_REOPENS as usize);
        assert_eq!(pauses[0], CHECK_INTERVAL);
        assert_eq!(pauses[1], CHECK_INTERVAL * 2);
        assert_eq!(*pauses.last().unwrap(), MAX_BACKOFF);
        r.running_since = Instant::now() - CALM_AFTER;
        assert_eq!(r.next_pause(), Some(CHECK_INTERVAL), "a calm minute starts over");
    }
}
