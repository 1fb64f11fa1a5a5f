//! The committer: one actor that makes every log's writes durable. Flush requests from all
//! partition logs queue here; a round fsyncs every file named by the queued requests and then
//! completes their callbacks. The next round starts as soon as the previous one ends and work
//! is waiting (natural group commit: no linger at low load, big rounds at high load), bounded by
//! `committer.max.round.bytes`.
//!
//! In `relaxed` durability, logs acknowledge after the write and only register their files
//! here; a tick every `log.flush.interval.ms` fsyncs them.

use crate::storage::disk_guard::DiskGuard;
use crate::storage::{FlushDone, FlushSink};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One log's request to make its writes durable.
pub struct FlushRequest {
    pub files: Vec<Arc<File>>,
    pub bytes: u64,
    pub done: FlushDone,
}

/// Messages the committer takes.
pub enum CommitterMsg {
    /// Make these writes durable, then call back.
    Flush(FlushRequest),
    /// Relaxed mode: these files have unsynced writes; sync them on the next tick.
    MarkDirty(Vec<Arc<File>>),
    /// Relaxed mode timer.
    Tick,
    /// A round's fsyncs finished.
    RoundDone {
        done: Vec<FlushDone>,
        result: Result<(), (std::io::ErrorKind, String)>,
    },
    /// Sync everything now and answer (shutdown).
    SyncAll(ractor::RpcReplyPort<()>),
    /// Round `n` may have stalled: if it still runs and finished no fsync for
    /// `log.flush.stall.ms`, the disk is stalled.
    StallCheck(u64),
}

/// The committer actor.
pub struct Committer;

/// Committer settings.
pub struct CommitterArgs {
    pub max_round_bytes: u64,
    pub flush_interval_ms: u64,
    pub relaxed: bool,
    /// An fsync round that has not finished a file for this long marks `disk` stalled until
    /// it ends (`None`: never, as on a single node or with relaxed durability, where no
    /// leadership can move or nothing waits for the fsync).
    pub stall_ms: Option<u64>,
    /// The data dir's guard, told of stalls.
    pub disk: Arc<DiskGuard>,
}

/// Committer state.
pub struct CommitterState {
    max_round_bytes: u64,
    pending: std::collections::VecDeque<FlushRequest>,
    round_running: bool,
    /// Rounds started so far (names the round a stall check is about).
    rounds_started: u64,
    stall: Option<Duration>,
    /// When the running round last made progress (started, or finished a file's fsync), in ms
    /// since `epoch`.
    progress_ms: Arc<AtomicU64>,
    epoch: Instant,
    disk: Arc<DiskGuard>,
    dirty: Vec<Arc<File>>,
    waiting_sync_all: Vec<ractor::RpcReplyPort<()>>,
}

fn add_unique(files: &mut Vec<Arc<File>>, f: &Arc<File>) {
    if !files.iter().any(|x| Arc::ptr_eq(x, f)) {
        files.push(f.clone());
    }
}

impl Committer {
    /// Round `round` was due to have made progress by now: if it still runs and has not finished
    /// a file's fsync for `stall`, the disk is stalled; if it progressed, look again `stall`
    /// after that progress. A round with many files is slow, not stalled, while files finish.
    fn check_stall(myself: &ActorRef<CommitterMsg>, st: &CommitterState, round: u64) {
        let Some(stall) = st.stall else { return };
        if !st.round_running || round != st.rounds_started {
            return;
        }
        let idle_ms = (st.epoch.elapsed().as_millis() as u64).saturating_sub(st.progress_ms.load(Ordering::Acquire));
        let stall_ms = stall.as_millis() as u64;
        if idle_ms >= stall_ms {
            st.disk.set_stalled(true);
        } else {
            myself.send_after(Duration::from_millis(stall_ms - idle_ms), move || {
                CommitterMsg::StallCheck(round)
            });
        }
    }

    fn start_round(myself: &ActorRef<CommitterMsg>, st: &mut CommitterState) {
        if st.round_running || (st.pending.is_empty() && st.waiting_sync_all.is_empty()) {
            return;
        }
        let mut files: Vec<Arc<File>> = Vec::new();
        let mut done = Vec::new();
        let mut bytes = 0u64;
        while let Some(req) = st.pending.front() {
            if !done.is_empty() && bytes + req.bytes > st.max_round_bytes {
                break;
            }
            let req = st.pending.pop_front().expect("front exists");
            bytes += req.bytes;
            for f in &req.files {
                add_unique(&mut files, f);
            }
            done.push(req.done);
        }
        if !st.waiting_sync_all.is_empty() || done.is_empty() {
            for f in st.dirty.drain(..) {
                add_unique(&mut files, &f);
            }
        }
        st.round_running = true;
        st.rounds_started += 1;
        let round = st.rounds_started;
        let (progress, epoch) = (st.progress_ms.clone(), st.epoch);
        progress.store(epoch.elapsed().as_millis() as u64, Ordering::Release);
        if let Some(stall) = st.stall {
            myself.send_after(stall, move || CommitterMsg::StallCheck(round));
        }
        let me = myself.clone();
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let mut result = Ok(());
            for f in &files {
                crate::actors::broken_build::injected_fsync_hang();
                let synced = crate::actors::broken_build::injected_fsync_error().map_or_else(|| f.sync_data(), Err);
                progress.store(epoch.elapsed().as_millis() as u64, Ordering::Release);
                if let Err(e) = synced {
                    result = Err((e.kind(), e.to_string()));
                    break;
                }
            }
            metrics::counter!(crate::observability::FSYNC_ROUNDS).increment(1);
            metrics::histogram!(crate::observability::FSYNC_SECONDS).record(started.elapsed().as_secs_f64());
            metrics::histogram!(crate::observability::FSYNC_ROUND_BYTES).record(bytes as f64);
            let _ = me.send_message(CommitterMsg::RoundDone { done, result });
        });
    }
}

impl Actor for Committer {
    type Msg = CommitterMsg;
    type State = CommitterState;
    type Arguments = CommitterArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<CommitterMsg>,
        args: CommitterArgs,
    ) -> Result<CommitterState, ActorProcessingErr> {
        if args.relaxed {
            myself.send_interval(Duration::from_millis(args.flush_interval_ms.max(1)), || {
                CommitterMsg::Tick
            });
        }
        Ok(CommitterState {
            max_round_bytes: args.max_round_bytes.max(1),
            pending: Default::default(),
            round_running: false,
            rounds_started: 0,
            stall: args.stall_ms.map(|ms| Duration::from_millis(ms.max(1))),
            progress_ms: Arc::new(AtomicU64::new(0)),
            epoch: Instant::now(),
            disk: args.disk,
            dirty: Vec::new(),
            waiting_sync_all: Vec::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<CommitterMsg>,
        msg: CommitterMsg,
        st: &mut CommitterState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            CommitterMsg::Flush(req) => st.pending.push_back(req),
            CommitterMsg::MarkDirty(files) => {
                for f in &files {
                    add_unique(&mut st.dirty, f);
                }
            }
            CommitterMsg::Tick => {
                if !st.dirty.is_empty() && !st.round_running {
                    // A round with no requests syncs the dirty files.
                    let files: Vec<Arc<File>> = st.dirty.drain(..).collect();
                    st.pending.push_back(FlushRequest {
                        files,
                        bytes: 0,
                        done: Box::new(|_| {}),
                    });
                }
            }
            CommitterMsg::RoundDone { done, result } => {
                st.round_running = false;
                st.disk.set_stalled(false);
                if let Err((kind, text)) = &result {
                    tracing::error!(error = %text, "fsync failed; the affected logs stop acknowledging");
                    let _ = kind;
                }
                for d in done {
                    d(result.clone().map_err(|(kind, text)| std::io::Error::new(kind, text)));
                }
                if st.pending.is_empty() {
                    for port in st.waiting_sync_all.drain(..) {
                        let _ = port.send(());
                    }
                }
            }
            CommitterMsg::SyncAll(port) => st.waiting_sync_all.push(port),
            CommitterMsg::StallCheck(round) => Committer::check_stall(&myself, st, round),
        }
        Committer::start_round(&myself, st);
        Ok(())
    }
}

/// The `FlushSink` logs use: forwards to the committer actor.
pub struct CommitterHandle {
    pub actor: ActorRef<CommitterMsg>,
    pub relaxed: bool,
}

impl FlushSink for CommitterHandle {
    fn flush(&self, files: Vec<Arc<File>>, bytes: u64, done: FlushDone) {
        if self.relaxed {
            let _ = self.actor.send_message(CommitterMsg::MarkDirty(files));
            done(Ok(()));
            return;
        }
        // If the committer is gone, the write is not durable and must not be acknowledged.
        if let Err(ractor::MessagingErr::SendErr(CommitterMsg::Flush(req))) = self
            .actor
            .send_message(CommitterMsg::Flush(FlushRequest { files, bytes, done }))
        {
            (req.done)(Err(std::io::Error::other("committer stopped")));
        }
    }
}
