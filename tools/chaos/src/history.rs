//! The history of a chaos run: every produce invoke, acknowledgement and error, every read,
//! every group commit and assignment, and every fault, with milliseconds since the run started, one JSON object
//! per line. The checker works from this file alone (plus the final reads), so a failed run can
//! be re-checked and examined later.

use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::io::{BufRead, BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

/// One thing that happened.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A producer handed a value to librdkafka.
    Invoke {
        t_ms: u64,
        producer: String,
        partition: i32,
        value: String,
    },
    /// The broker acknowledged the value at `offset` (acks=all).
    Ack {
        t_ms: u64,
        producer: String,
        partition: i32,
        value: String,
        offset: i64,
    },
    /// The value's produce failed; it may or may not have been written.
    Fail {
        t_ms: u64,
        producer: String,
        partition: i32,
        value: String,
        error: String,
    },
    /// A reader saw `value` at `offset`.
    Read {
        t_ms: u64,
        reader: String,
        partition: i32,
        offset: i64,
        value: String,
    },
    /// A consumer group committed `offset` (the next offset to read) for `partition`.
    Commit {
        t_ms: u64,
        reader: String,
        partition: i32,
        offset: i64,
    },
    /// A group member was given `partitions` (the rebalance callback ran; the committed
    /// offsets it starts from are fetched after this).
    Assigned {
        t_ms: u64,
        reader: String,
        partitions: Vec<i32>,
    },
    /// A fault started (`what` names it, `nodes` are the nodes it hit).
    Fault { t_ms: u64, what: String, nodes: Vec<i32> },
    /// The fault named `what` was healed.
    Heal { t_ms: u64, what: String },
}

impl Event {
    /// Milliseconds since the run started.
    pub fn t_ms(&self) -> u64 {
        match self {
            Event::Invoke { t_ms, .. }
            | Event::Ack { t_ms, .. }
            | Event::Fail { t_ms, .. }
            | Event::Read { t_ms, .. }
            | Event::Commit { t_ms, .. }
            | Event::Assigned { t_ms, .. }
            | Event::Fault { t_ms, .. }
            | Event::Heal { t_ms, .. } => *t_ms,
        }
    }
}

/// The history file being written, shared by every workload thread and the nemesis.
pub struct History {
    start: Instant,
    out: Mutex<BufWriter<std::fs::File>>,
    /// Partitions with at least one accepted group commit (the run waits for all of them
    /// before its first fault).
    committed: Mutex<HashSet<i32>>,
}

impl History {
    /// Creates (truncates) `path`; times count from now.
    pub fn create(path: &Path) -> anyhow::Result<History> {
        Ok(History {
            start: Instant::now(),
            out: Mutex::new(BufWriter::new(std::fs::File::create(path)?)),
            committed: Mutex::new(HashSet::new()),
        })
    }

    /// Milliseconds since the run started.
    pub fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Appends one event (built with the current time).
    pub fn record(&self, event: impl FnOnce(u64) -> Event) {
        let e = event(self.now_ms());
        if let Event::Commit { partition, .. } = &e {
            self.committed.lock().expect("history lock").insert(*partition);
        }
        let mut out = self.out.lock().expect("history lock");
        // A history that cannot be written makes the run worthless: fail loudly.
        serde_json::to_writer(&mut *out, &e).expect("history write");
        out.write_all(b"\n").expect("history write");
    }

    /// How many partitions the group has committed an offset for.
    pub fn committed_partitions(&self) -> usize {
        self.committed.lock().expect("history lock").len()
    }

    /// Flushes the file.
    pub fn flush(&self) -> std::io::Result<()> {
        self.out.lock().expect("history lock").flush()
    }
}

/// Reads a history file back.
pub fn read(path: &Path) -> anyhow::Result<Vec<Event>> {
    let f = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut events = Vec::new();
    for (n, line) in f.lines().enumerate() {
        let line = line?;
        if line.is_empty() {
            continue;
        }
        events.push(serde_json::from_str(&line).map_err(|e| anyhow::anyhow!("history line {}: {e}", n + 1))?);
    }
    Ok(events)
}
