//! The raftstream processes of a chaos run, each started in its node's network namespace (or,
//! in the proxy fallback, on loopback ports of its own). Each node logs to `<dir>/node<i>.log`,
//! appended across restarts.

use rustix::process::{kill_process, Pid, Signal};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where a node listens, what it tells others, and where it runs.
#[derive(Clone, Debug)]
pub struct NodeAddrs {
    pub kafka: SocketAddr,
    pub http: SocketAddr,
    pub cluster_listen: SocketAddr,
    /// The cluster address the other nodes use (its proxy in the fallback).
    pub cluster_advertise: SocketAddr,
    /// The network namespace it runs in, if any.
    pub netns: Option<String>,
}

/// The nodes of one run.
pub struct Nodes {
    bin: PathBuf,
    dir: PathBuf,
    addrs: Vec<NodeAddrs>,
    ids: Vec<i32>,
    env: Vec<(String, String)>,
    children: Vec<Option<Child>>,
}

impl Nodes {
    /// Nodes `ids` at `addrs` (same order), not started; data and logs under `dir`; `env` added
    /// to every process.
    pub fn new(bin: PathBuf, dir: PathBuf, ids: Vec<i32>, addrs: Vec<NodeAddrs>, env: Vec<(String, String)>) -> Nodes {
        let children = ids.iter().map(|_| None).collect();
        Nodes {
            bin,
            dir,
            addrs,
            ids,
            env,
            children,
        }
    }

    /// Node `id`'s addresses.
    pub fn addrs(&self, id: i32) -> &NodeAddrs {
        &self.addrs[self.slot(id)]
    }

    /// Every node's id.
    pub fn ids(&self) -> &[i32] {
        &self.ids
    }

    /// Node `id`'s Kafka address.
    pub fn kafka_addr(&self, id: i32) -> String {
        self.addrs(id).kafka.to_string()
    }

    /// Every node's Kafka address, comma-separated.
    pub fn bootstrap(&self) -> String {
        self.ids
            .iter()
            .map(|id| self.kafka_addr(*id))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Node `id`'s data directory.
    pub fn data_dir(&self, id: i32) -> PathBuf {
        self.dir.join(format!("node{id}"))
    }

    /// The file whose existence makes node `id`'s fsyncs fail (debug brokers only).
    pub fn fsync_trigger(&self, id: i32) -> PathBuf {
        self.dir.join(format!("node{id}-fsync-fail"))
    }

    /// The file whose existence makes node `id`'s fsyncs block (debug brokers only).
    pub fn fsync_hang_trigger(&self, id: i32) -> PathBuf {
        self.dir.join(format!("node{id}-fsync-hang"))
    }

    fn slot(&self, id: i32) -> usize {
        self.ids.iter().position(|i| *i == id).expect("known node id")
    }

    /// Starts node `id` (again) on its data dir.
    pub fn start(&mut self, id: i32) -> anyhow::Result<()> {
        let a = self.addrs(id).clone();
        let peers = self
            .ids
            .iter()
            .map(|i| format!("{i}@{}", self.addrs(*i).cluster_advertise))
            .collect::<Vec<_>>()
            .join(",");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("node{id}.log")))?;
        let mut cmd = match &a.netns {
            // `ip netns exec` execs the broker in place: the child's pid is the broker's.
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&self.bin);
                c
            }
            None => Command::new(&self.bin),
        };
        cmd.arg("--data-dir")
            .arg(self.data_dir(id))
            .args(["--node-id", &id.to_string()])
            .args(["--listen", &a.kafka.to_string()])
            .args(["--advertise", &a.kafka.to_string()])
            .args(["--http-listen", &a.http.to_string()])
            .args(["--cluster-listen", &a.cluster_listen.to_string()])
            .args(["--peers", &peers])
            // Idempotence decisions (sequence refusals, epoch bumps) at debug: they explain
            // a duplicate or a gap the checker finds.
            .env("RUST_LOG", "info,openraft=warn,raftstream::idempotence=debug")
            .env("RAFTSTREAM_OFFSETS_TOPIC_NUM_PARTITIONS", "3")
            // A debug broker fails every fsync while this file exists (the fsync-failure fault).
            .env("RS_TEST_FSYNC_FAIL_TRIGGER", self.fsync_trigger(id))
            // ... and blocks every fsync while this one exists (the hung-disk fault).
            .env("RS_TEST_FSYNC_HANG_TRIGGER", self.fsync_hang_trigger(id))
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let slot = self.slot(id);
        self.children[slot] = Some(cmd.spawn()?);
        Ok(())
    }

    /// Whether node `id`'s process runs (a paused one does).
    pub fn running(&mut self, id: i32) -> bool {
        let slot = self.slot(id);
        match &mut self.children[slot] {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Sends `signal` to node `id`.
    pub fn signal(&mut self, id: i32, signal: Signal) -> anyhow::Result<()> {
        let slot = self.slot(id);
        let Some(child) = &self.children[slot] else {
            anyhow::bail!("node {id} is not running")
        };
        let pid = Pid::from_raw(child.id() as i32).ok_or_else(|| anyhow::anyhow!("node {id} has no pid"))?;
        kill_process(pid, signal).map_err(|e| anyhow::anyhow!("signal {signal:?} to node {id}: {e}"))
    }

    /// Kills node `id` with SIGKILL and reaps it.
    pub fn kill(&mut self, id: i32) -> anyhow::Result<()> {
        self.stop_with(id, Signal::KILL, Duration::from_secs(10))
    }

    /// Stops node `id` gracefully (SIGTERM), SIGKILL after `grace`.
    pub fn stop(&mut self, id: i32, grace: Duration) -> anyhow::Result<()> {
        self.stop_with(id, Signal::TERM, grace)
    }

    fn stop_with(&mut self, id: i32, signal: Signal, grace: Duration) -> anyhow::Result<()> {
        if !self.running(id) {
            return Ok(());
        }
        // A paused process would not act on TERM.
        let _ = self.signal(id, Signal::CONT);
        self.signal(id, signal)?;
        let slot = self.slot(id);
        let child = self.children[slot].as_mut().expect("running child");
        let deadline = Instant::now() + grace;
        while child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                child.kill()?;
                child.wait()?;
                anyhow::bail!("node {id} did not stop within {grace:?} of {signal:?}; killed");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.children[slot] = None;
        Ok(())
    }

    /// `GET /health/ready` on node `id`: true on 200.
    pub fn ready(&self, id: i32) -> bool {
        http_status(self.addrs(id).http, "/health/ready") == Some(200)
    }

    /// Waits until every node is running and ready.
    pub fn wait_all_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        for id in self.ids.clone() {
            anyhow::ensure!(self.running(id), "node {id} is not running");
            while !self.ready(id) {
                anyhow::ensure!(self.running(id), "node {id} exited; see node{id}.log");
                anyhow::ensure!(Instant::now() < deadline, "node {id} not ready within {timeout:?}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    /// The cluster id node `id`'s data dir belongs to.
    pub fn cluster_id(&self, id: i32) -> anyhow::Result<String> {
        let text = std::fs::read_to_string(self.data_dir(id).join("node.json"))?;
        let v: serde_json::Value = serde_json::from_str(&text)?;
        anyhow::ensure!(v["node_id"] == id, "node {id}'s data dir says node {}", v["node_id"]);
        Ok(v["cluster_id"].as_str().unwrap_or_default().to_string())
    }

    /// Stops every node (gracefully, then by force).
    pub fn stop_all(&mut self) -> anyhow::Result<()> {
        let mut first_error = None;
        for id in self.ids.clone() {
            if let Err(e) = self.stop(id, Duration::from_secs(30)) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}
