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

/// A file to write atomically and durably (a closed segment's seal), in a round.
pub struct WriteRequest {
    pub path: std::path::PathBuf,
    pub data: Vec<u8>,
    pub done: FlushDone,
}

/// Messages the committer takes.
pub enum CommitterMsg {
    /// Make these writes durable, then call back.
    Flush(FlushRequest),
    /// Write a file durably (on the blocking pool, beside the rounds), then call back.
    Write(WriteRequest),
    /// Relaxed mode: these files have unsynced writes; sync them on the next tick.
    MarkDirty(Vec<Arc<File>>),
    /// Relaxed mode timer.
    Tick,
    /// A round's fsyncs finished.
    RoundDone {
        done: Vec<FlushDone>,
        /// Arrival number of the round's first request (its requests are consecutive).
        first_seq: u64,
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
    /// Flush requests received so far (numbers them in arrival order).
    received_seq: u64,
    /// Flush requests whose callbacks have run (always a prefix of the received ones).
    completed_seq: u64,
}

/// What one fsync round does: sync `files`, then run `done` in order.
struct Round {
    files: Vec<Arc<File>>,
    done: Vec<FlushDone>,
    bytes: u64,
    /// Arrival number of the first request in `done`.
    first_seq: u64,
}

impl CommitterState {
    /// Takes the next round off the queue: requests in arrival order up to `max_round_bytes`
    /// (the first always, whatever its size), each file once; the dirty files of relaxed mode
    /// join a round with no requests or one a shutdown waits for.
    fn take_round(&mut self) -> Round {
        let first_seq = self.completed_seq + 1;
        let mut round = Round {
            files: Vec::new(),
            done: Vec::new(),
            bytes: 0,
            first_seq,
        };
        while let Some(req) = self.pending.front() {
            if !round.done.is_empty() && round.bytes + req.bytes > self.max_round_bytes {
                break;
            }
            let req = self.pending.pop_front().expect("front exists");
            round.bytes += req.bytes;
            for f in &req.files {
                add_unique(&mut round.files, f);
            }
            round.done.push(req.done);
        }
        if !self.waiting_sync_all.is_empty() || round.done.is_empty() {
            for f in self.dirty.drain(..) {
                add_unique(&mut round.files, &f);
            }
        }
        debug_assert!(
            round.bytes <= self.max_round_bytes || round.done.len() == 1,
            "round over its bound"
        );
        round
    }
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
        let Round {
            files,
            done,
            bytes,
            first_seq,
        } = st.take_round();
        debug_assert_eq!(
            first_seq,
            st.completed_seq + 1,
            "rounds complete requests in arrival order"
        );
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
            let _ = me.send_message(CommitterMsg::RoundDone {
                done,
                first_seq,
                result,
            });
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
            received_seq: 0,
            completed_seq: 0,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<CommitterMsg>,
        msg: CommitterMsg,
        st: &mut CommitterState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            CommitterMsg::Flush(req) => {
                st.received_seq += 1;
                st.pending.push_back(req);
            }
            // What a write describes (a closed segment) was made durable by an earlier round:
            // it need not hold up the acknowledgements of the next one.
            CommitterMsg::Write(req) => {
                tokio::task::spawn_blocking(move || {
                    (req.done)(crate::storage::write_file_durably(&req.path, &req.data))
                });
            }
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
            CommitterMsg::RoundDone {
                done,
                first_seq,
                result,
            } => {
                debug_assert_eq!(
                    first_seq,
                    st.completed_seq + 1,
                    "a round completes after the one before"
                );
                st.completed_seq += done.len() as u64;
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
        self.sync(files, bytes, done);
    }

    fn sync(&self, files: Vec<Arc<File>>, bytes: u64, done: FlushDone) {
        // If the committer is gone, the write is not durable and must not be acknowledged.
        if let Err(ractor::MessagingErr::SendErr(CommitterMsg::Flush(req))) = self
            .actor
            .send_message(CommitterMsg::Flush(FlushRequest { files, bytes, done }))
        {
            (req.done)(Err(std::io::Error::other("committer stopped")));
        }
    }

    fn write_durably(&self, path: std::path::PathBuf, data: Vec<u8>, done: FlushDone) {
        if let Err(ractor::MessagingErr::SendErr(CommitterMsg::Write(req))) = self
            .actor
            .send_message(CommitterMsg::Write(WriteRequest { path, data, done }))
        {
            (req.done)(Err(std::io::Error::other("committer stopped")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    fn state(max_round_bytes: u64) -> CommitterState {
        CommitterState {
            max_round_bytes,
            pending: Default::default(),
            round_running: false,
            rounds_started: 0,
            stall: None,
            progress_ms: Arc::new(AtomicU64::new(0)),
            epoch: Instant::now(),
            disk: DiskGuard::new(std::env::temp_dir(), 0),
            dirty: Vec::new(),
            waiting_sync_all: Vec::new(),
            received_seq: 0,
            completed_seq: 0,
        }
    }

    fn request(files: &[&Arc<File>], bytes: u64, log: &Arc<Mutex<Vec<u64>>>, id: u64) -> FlushRequest {
        let log = log.clone();
        FlushRequest {
            files: files.iter().map(|f| (*f).clone()).collect(),
            bytes,
            done: Box::new(move |r| {
                assert!(r.is_ok());
                log.lock().push(id);
            }),
        }
    }

    #[test]
    fn a_round_takes_requests_in_order_up_to_its_bytes_and_syncs_each_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = Arc::new(File::create(dir.path().join("a")).unwrap());
        let b = Arc::new(File::create(dir.path().join("b")).unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut st = state(100);
        for (id, (files, bytes)) in [(vec![&a], 40), (vec![&a, &b], 40), (vec![&b], 40), (vec![&a], 500)]
            .into_iter()
            .enumerate()
        {
            st.pending.push_back(request(&files, bytes, &log, id as u64));
        }
        // 40 + 40 fit in 100; the third would not: it opens the next round.
        let first = st.take_round();
        assert_eq!(
            (first.done.len(), first.bytes, first.files.len(), first.first_seq),
            (2, 80, 2, 1)
        );
        for d in first.done {
            d(Ok(()));
        }
        st.completed_seq += 2;
        // A round takes its first request whatever its size, and nothing after an oversized one.
        let second = st.take_round();
        assert_eq!((second.done.len(), second.bytes, second.first_seq), (1, 40, 3));
        for d in second.done {
            d(Ok(()));
        }
        st.completed_seq += 1;
        let third = st.take_round();
        assert_eq!((third.done.len(), third.bytes, third.first_seq), (1, 500, 4));
        for d in third.done {
            d(Ok(()));
        }
        assert_eq!(*log.lock(), vec![0, 1, 2, 3]);
    }

    #[test]
    fn dirty_files_join_only_a_round_without_requests() {
        let dir = tempfile::tempdir().unwrap();
        let a = Arc::new(File::create(dir.path().join("a")).unwrap());
        let dirty = Arc::new(File::create(dir.path().join("dirty")).unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut st = state(100);
        st.dirty.push(dirty.clone());
        st.pending.push_back(request(&[&a], 10, &log, 0));
        assert_eq!(st.take_round().files.len(), 1, "a request round leaves the dirty files");
        let tick = st.take_round();
        assert!(tick.done.is_empty());
        assert!(Arc::ptr_eq(&tick.files[0], &dirty));
    }

    #[tokio::test]
    async fn the_actor_answers_every_flush_in_request_order() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<Arc<File>> = (0..4)
            .map(|i| Arc::new(File::create(dir.path().join(format!("f{i}"))).unwrap()))
            .collect();
        let args = CommitterArgs {
            max_round_bytes: 1 << 20,
            flush_interval_ms: 1000,
            relaxed: false,
            stall_ms: None,
            disk: DiskGuard::new(dir.path().to_path_buf(), 0),
        };
        let (actor, handle) = Actor::spawn(None, Committer, args).await.unwrap();
        let sink = CommitterHandle {
            actor: actor.clone(),
            relaxed: false,
        };
        let log = Arc::new(Mutex::new(Vec::new()));
        let (all_done, done_rx) = tokio::sync::oneshot::channel();
        let all_done = Arc::new(Mutex::new(Some(all_done)));
        for id in 0..200u64 {
            let (log, all_done) = (log.clone(), all_done.clone());
            let file = files[id as usize % files.len()].clone();
            sink.flush(
                vec![file],
                100,
                Box::new(move |r| {
                    assert!(r.is_ok(), "{r:?}");
                    let mut log = log.lock();
                    log.push(id);
                    if log.len() == 200 {
                        let _ = all_done.lock().take().expect("once").send(());
                    }
                }),
            );
        }
        tokio::time::timeout(Duration::from_secs(30), done_rx)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(*log.lock(), (0..200).collect::<Vec<_>>());
        actor.stop(None);
        handle.await.unwrap();
    }
}
