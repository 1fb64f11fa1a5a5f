//! The nemesis: applies a step's faults to the running cluster, records them in the history,
//! and heals them (restart, continue, lift the partition).

use super::history::{Event, History};
use super::net;
use super::network::Network;
use super::nodes::Nodes;
use super::scenarios::{Fault, Rng, Step};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rustix::process::Signal;
use std::time::Duration;

/// What a step did, to be undone at its heal.
#[derive(Default)]
pub struct Applied {
    ballast: Vec<(i32, std::path::PathBuf)>,
    fsync_failing: Vec<i32>,
    fsync_hanging: Vec<i32>,
    killed: Vec<i32>,
    paused: Vec<i32>,
    partitioned: bool,
    names: Vec<String>,
}

/// Leader and replicas of `topic` partition 0 as the cluster reports them (leader -1: none).
pub fn partition0(client: &BaseConsumer, topic: &str) -> (i32, Vec<i32>) {
    let Ok(md) = client.fetch_metadata(Some(topic), Duration::from_secs(5)) else {
        return (-1, Vec::new());
    };
    md.topics()
        .iter()
        .find(|t| t.name() == topic)
        .and_then(|t| t.partitions().iter().find(|p| p.id() == 0))
        .map(|p| (p.leader(), p.replicas().to_vec()))
        .unwrap_or((-1, Vec::new()))
}

fn pick(rng: &mut Rng, from: &[i32]) -> i32 {
    from[rng.range(0, from.len() as u64) as usize]
}

/// Applies `step`'s faults.
pub fn apply(
    step: &Step,
    nodes: &mut Nodes,
    network: &Network,
    client: &BaseConsumer,
    topic: &str,
    rng: &mut Rng,
    history: &History,
) -> anyhow::Result<Applied> {
    let ids = nodes.ids().to_vec();
    let mut done = Applied::default();
    let mut blocked = Vec::new();
    for fault in &step.faults {
        let hit = targets(fault, &ids, &done, client, topic, rng);
        history.record(|t_ms| Event::Fault {
            t_ms,
            what: fault.name().into(),
            nodes: hit.clone(),
        });
        blocked.extend(inflict(fault, &hit, &ids, nodes, &mut done)?);
        done.names.push(fault.name().into());
    }
    if !blocked.is_empty() {
        network.partition(&blocked)?;
        done.partitioned = true;
    }
    Ok(done)
}

/// The nodes `fault` hits: partition 0's leader (or a follower) as the cluster reports it now,
/// a node still up, a minority, or every node.
fn targets(fault: &Fault, ids: &[i32], done: &Applied, client: &BaseConsumer, topic: &str, rng: &mut Rng) -> Vec<i32> {
    let (leader, replicas) = partition0(client, topic);
    let leader = if ids.contains(&leader) { leader } else { pick(rng, ids) };
    let followers: Vec<i32> = replicas
        .iter()
        .copied()
        .filter(|r| *r != leader && ids.contains(r))
        .collect();
    let up: Vec<i32> = ids
        .iter()
        .copied()
        .filter(|i| !done.killed.contains(i) && !done.paused.contains(i))
        .collect();
    match fault {
        Fault::KillLeader
        | Fault::PauseLeader
        | Fault::IsolateLeader
        | Fault::DiskFull
        | Fault::FsyncFail
        | Fault::FsyncHang => {
            vec![leader]
        }
        Fault::KillFollower if followers.is_empty() => vec![pick(rng, &up)],
        Fault::KillFollower => vec![pick(rng, &followers)],
        Fault::KillRandom | Fault::PauseRandom => vec![pick(rng, &up)],
        Fault::SplitMinority => {
            let mut minority = Vec::new();
            while minority.len() < (ids.len() - 1) / 2 {
                let n = pick(rng, ids);
                if !minority.contains(&n) {
                    minority.push(n);
                }
            }
            minority
        }
        Fault::Bridge => vec![pick(rng, ids)],
        Fault::RollingRestart => ids.to_vec(),
    }
}

/// Inflicts `fault` on `hit`, noting in `done` what its heal must undo; returns the network
/// links to cut (cut together once every fault of the step is applied).
fn inflict(
    fault: &Fault,
    hit: &[i32],
    ids: &[i32],
    nodes: &mut Nodes,
    done: &mut Applied,
) -> anyhow::Result<Vec<(i32, i32)>> {
    match fault {
        Fault::KillLeader | Fault::KillFollower | Fault::KillRandom => {
            if !done.killed.contains(&hit[0]) {
                nodes.kill(hit[0])?;
                done.killed.push(hit[0]);
            }
        }
        Fault::PauseLeader | Fault::PauseRandom => {
            if nodes.running(hit[0]) && !done.paused.contains(&hit[0]) {
                nodes.signal(hit[0], Signal::STOP)?;
                done.paused.push(hit[0]);
            }
        }
        Fault::IsolateLeader | Fault::SplitMinority => return Ok(net::cut_off(hit, ids)),
        Fault::Bridge => {
            let others: Vec<i32> = ids.iter().copied().filter(|i| *i != hit[0]).collect();
            let (left, right) = others.split_at(others.len() / 2);
            return Ok(net::bridge(left, right));
        }
        Fault::DiskFull => {
            let ballast = nodes.data_dir(hit[0]).join("chaos-ballast");
            fill(&ballast)?;
            done.ballast.push((hit[0], ballast));
        }
        Fault::FsyncFail => {
            std::fs::write(nodes.fsync_trigger(hit[0]), b"")?;
            done.fsync_failing.push(hit[0]);
        }
        Fault::FsyncHang => {
            std::fs::write(nodes.fsync_hang_trigger(hit[0]), b"")?;
            done.fsync_hanging.push(hit[0]);
        }
        Fault::RollingRestart => {
            for id in ids {
                nodes.stop(*id, Duration::from_secs(30))?;
                nodes.start(*id)?;
                wait_ready(nodes, *id, Duration::from_secs(90))?;
            }
        }
    }
    Ok(Vec::new())
}

fn wait_ready(nodes: &mut Nodes, id: i32, timeout: Duration) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + timeout;
    while !nodes.ready(id) {
        anyhow::ensure!(nodes.running(id), "node {id} exited after a restart; see node{id}.log");
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "node {id} not ready within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Undoes what `apply` did.
pub fn heal(done: Applied, nodes: &mut Nodes, network: &Network, history: &History) -> anyhow::Result<()> {
    if done.partitioned {
        network.heal()?;
    }
    for (id, ballast) in &done.ballast {
        std::fs::remove_file(ballast)?;
        // A full disk refuses writes; it must not stop the broker (its partition groups and its
        // controller group wait for room).
        anyhow::ensure!(nodes.running(*id), "node {id} stopped on a full disk; see node{id}.log");
    }
    for id in &done.fsync_failing {
        std::fs::remove_file(nodes.fsync_trigger(*id))?;
        // A node whose fsyncs keep failing stops (its partitions exhaust their restarts).
        if !nodes.running(*id) {
            nodes.start(*id)?;
        }
    }
    for id in &done.fsync_hanging {
        std::fs::remove_file(nodes.fsync_hang_trigger(*id))?;
        anyhow::ensure!(
            nodes.running(*id),
            "node {id} stopped while its fsyncs hung; see node{id}.log"
        );
    }
    for id in &done.paused {
        nodes.signal(*id, Signal::CONT)?;
    }
    for id in &done.killed {
        nodes.start(*id)?;
    }
    for what in done.names {
        history.record(|t_ms| Event::Heal { t_ms, what });
    }
    Ok(())
}

/// Writes `path` until the filesystem is full.
fn fill(path: &std::path::Path) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path)?;
    let chunk = vec![0u8; 1 << 20];
    loop {
        match f.write(&chunk) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(28) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}
