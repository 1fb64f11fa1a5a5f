//! The checker: the history (what clients were told and saw) against the final reads (every
//! partition read through Kafka, and every replica's log read from disk).
//!
//! - lost: an acknowledged value missing from the final read;
//! - phantom: a value read anywhere that no producer ever sent;
//! - divergent: one offset holding two values (across reads during the run, the final read,
//!   every replica, and the offset an acknowledgement named);
//! - duplicated: one value at two offsets (idempotence broken);
//! - reordered: a producer's values out of order within a partition;
//! - group skipped: a consumer group committed past an offset none of its members read;
//! - group re-read: a member read an offset below what the group had committed (accepted)
//!   before the member was given the partition: beyond the re-reads at-least-once allows
//!   (those start at the last accepted commit); the count of all re-reads is reported too;
//! - replica short: a replica missing records the final read has;
//! - unavailable: windows in which a partition acknowledged nothing for over a second while
//!   values for it were outstanding.

use super::history::Event;
use super::replicas::Writer;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Records per partition, in offset order: (offset, value).
pub type Records = Vec<(i64, String)>;

/// How many examples each finding keeps.
const EXAMPLES: usize = 20;
/// A partition with nothing acknowledged for longer than this (with values outstanding) counts
/// as unavailable.
const UNAVAILABLE_AFTER_MS: u64 = 1000;

/// A kind of anomaly: how many, and the first few.
#[derive(Debug, Default, Serialize)]
pub struct Finding {
    pub count: usize,
    pub examples: Vec<String>,
}

impl Finding {
    pub(super) fn add(&mut self, what: String) {
        self.count += 1;
        if self.examples.len() < EXAMPLES {
            self.examples.push(what);
        }
    }
}

/// A stretch of time in which a partition acknowledged nothing.
#[derive(Debug, Serialize, Clone)]
pub struct Window {
    pub partition: i32,
    pub from_ms: u64,
    pub to_ms: u64,
}

/// The verdict.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub invoked: usize,
    pub acked: usize,
    /// Produce errors: indeterminate (the value may or may not be in the log).
    pub failed: usize,
    pub reads: usize,
    pub commits: usize,
    /// Records in the final read of every partition.
    pub records_checked: usize,
    pub replicas_checked: usize,
    pub lost: Finding,
    pub phantom: Finding,
    pub divergent: Finding,
    pub duplicated: Finding,
    pub reordered: Finding,
    pub group_skipped: Finding,
    pub group_reread: Finding,
    /// Group reads of an offset a member had read before (at-least-once re-reads included).
    pub group_rereads: usize,
    pub replica_short: Finding,
    pub unavailable: Vec<Window>,
    /// The windows by fault kind, and those over their fault's bound (`availability.rs`).
    pub availability: super::availability::Availability,
}

impl Summary {
    /// No lost, phantom, divergent, duplicated or reordered value, no skipped or re-read group
    /// range, every replica complete, no partition unavailable for longer than its fault allows.
    pub fn passed(&self) -> bool {
        [
            &self.lost,
            &self.phantom,
            &self.divergent,
            &self.duplicated,
            &self.reordered,
            &self.group_skipped,
            &self.group_reread,
            &self.replica_short,
            &self.availability.over_bound,
        ]
        .iter()
        .all(|f| f.count == 0)
    }

    /// Longest unavailable window, ms.
    pub fn longest_unavailable_ms(&self) -> u64 {
        self.unavailable.iter().map(|w| w.to_ms - w.from_ms).max().unwrap_or(0)
    }
}

/// `p<producer>.<instance>-<seq>` → (producer instance, seq).
fn parse_value(v: &str) -> Option<(&str, u64)> {
    let (producer, seq) = v.rsplit_once('-')?;
    Some((producer, seq.parse().ok()?))
}

/// Checks `events` against the final Kafka read (`final_reads`, per partition) and the replica
/// logs (`replicas`, per (node, partition)).
pub fn check(
    events: &[Event],
    final_reads: &BTreeMap<i32, Records>,
    replicas: &BTreeMap<(i32, i32), Records>,
    writer_of: &HashMap<(i32, i64), Writer>,
) -> Summary {
    let mut c = Checker {
        invoked: events
            .iter()
            .filter_map(|e| match e {
                Event::Invoke { value, .. } => Some(value.clone()),
                _ => None,
            })
            .collect(),
        ..Default::default()
    };
    c.replay(events);
    c.check_final_reads(final_reads, writer_of);
    c.check_replicas(final_reads, replicas);
    c.check_acked(final_reads);
    c.check_commits(final_reads);
    c.s.unavailable = unavailable_windows(&c.outstanding);
    c.s.availability = super::availability::assess(events, &c.s.unavailable);
    c.s
}

/// The checker's state while it goes through the history and the reads.
#[derive(Default)]
struct Checker<'a> {
    s: Summary,
    invoked: HashSet<String>,
    /// (partition, offset) -> (value, where it was seen first).
    at: HashMap<(i32, i64), (String, String)>,
    acked: Vec<(i32, i64, &'a str)>,
    /// Per partition: (invoked at, acknowledged at) of every acknowledged record.
    outstanding: BTreeMap<i32, Vec<(u64, u64)>>,
    invoke_time: HashMap<&'a str, u64>,
    group_read: HashMap<i32, HashSet<i64>>,
    group: GroupTrack,
    commits: Vec<(i32, i64)>,
}

impl<'a> Checker<'a> {
    /// Records that `value` was seen at (`partition`, `offset`) by `source`; a different value
    /// seen there before is a divergence.
    fn see(&mut self, partition: i32, offset: i64, value: &str, source: String) {
        match self.at.get(&(partition, offset)) {
            Some((v, first)) if v != value => self.s.divergent.add(format!(
                "partition {partition} offset {offset}: {v:?} ({first}) vs {value:?} ({source})"
            )),
            Some(_) => {}
            None => {
                self.at.insert((partition, offset), (value.to_string(), source));
            }
        }
    }

    /// Goes through the history in order.
    fn replay(&mut self, events: &'a [Event]) {
        for e in events {
            match e {
                Event::Invoke { value, t_ms, .. } => {
                    self.s.invoked += 1;
                    self.invoke_time.insert(value, *t_ms);
                }
                Event::Ack {
                    partition,
                    value,
                    offset,
                    t_ms,
                    ..
                } => {
                    self.s.acked += 1;
                    self.acked.push((*partition, *offset, value));
                    let from = self.invoke_time.get(value.as_str()).copied().unwrap_or(*t_ms);
                    self.outstanding.entry(*partition).or_default().push((from, *t_ms));
                }
                Event::Fail { .. } => self.s.failed += 1,
                Event::Read {
                    reader,
                    partition,
                    offset,
                    value,
                    t_ms,
                } => self.read(reader, *partition, *offset, value, *t_ms),
                Event::Commit { partition, offset, .. } => {
                    self.s.commits += 1;
                    self.commits.push((*partition, *offset));
                    self.group.committed(*partition, *offset);
                }
                Event::Assigned { reader, partitions, .. } => self.group.assigned(reader, partitions),
                Event::Fault { .. } | Event::Heal { .. } => {}
            }
        }
    }

    /// A read during the run: never a value nobody wrote; a group's reads are tracked.
    fn read(&mut self, reader: &str, partition: i32, offset: i64, value: &str, t_ms: u64) {
        self.s.reads += 1;
        if !self.invoked.contains(value) {
            self.s.phantom.add(format!(
                "{value:?} read by {reader} at partition {partition} offset {offset}"
            ));
        }
        self.see(partition, offset, value, format!("{reader} at {t_ms} ms"));
        if reader.starts_with("group") {
            if !self.group_read.entry(partition).or_default().insert(offset) {
                self.s.group_rereads += 1;
            }
            self.group.read(&mut self.s, reader, partition, offset, t_ms);
        }
    }

    /// The final read: no phantom, duplicated or reordered value.
    fn check_final_reads(&mut self, final_reads: &BTreeMap<i32, Records>, writer_of: &HashMap<(i32, i64), Writer>) {
        let writer = |p: i32, offset: i64| match writer_of.get(&(p, offset)) {
            Some((_, pid, epoch, seq, leader_epoch)) => {
                format!(" [offset {offset}: producer {pid} epoch {epoch} seq {seq}, leader epoch {leader_epoch}]")
            }
            None => String::new(),
        };
        for (p, records) in final_reads {
            self.s.records_checked += records.len();
            let mut offsets_of: HashMap<&str, i64> = HashMap::new();
            let mut last_seq: HashMap<&str, (u64, i64)> = HashMap::new();
            for (offset, value) in records {
                if !self.invoked.contains(value) {
                    self.s
                        .phantom
                        .add(format!("{value:?} in the final read at partition {p} offset {offset}"));
                }
                self.see(*p, *offset, value, "final read".into());
                if let Some(first) = offsets_of.insert(value, *offset) {
                    self.s.duplicated.add(format!(
                        "{value:?} at partition {p} offsets {first} and {offset}{}{}",
                        writer(*p, first),
                        writer(*p, *offset)
                    ));
                }
                let Some((producer, seq)) = parse_value(value) else {
                    continue;
                };
                if let Some((prev, prev_offset)) = last_seq.insert(producer, (seq, *offset)) {
                    if seq <= prev {
                        self.s.reordered.add(format!(
                            "partition {p}: {producer} seq {seq} at offset {offset} after seq {prev} at {prev_offset}"
                        ));
                    }
                }
            }
        }
    }

    /// Every replica's log agrees with the final read and holds all of it.
    fn check_replicas(&mut self, final_reads: &BTreeMap<i32, Records>, replicas: &BTreeMap<(i32, i32), Records>) {
        for ((node, p), records) in replicas {
            self.s.replicas_checked += 1;
            for (offset, value) in records {
                self.see(*p, *offset, value, format!("replica on node {node}"));
            }
            let have: HashSet<i64> = records.iter().map(|(o, _)| *o).collect();
            let missing = final_reads
                .get(p)
                .map_or(0, |f| f.iter().filter(|(o, _)| !have.contains(o)).count());
            if missing > 0 {
                self.s
                    .replica_short
                    .add(format!("node {node} partition {p}: {missing} records missing"));
            }
        }
    }

    /// Every acknowledged record is in the final read, where its acknowledgement said.
    fn check_acked(&mut self, final_reads: &BTreeMap<i32, Records>) {
        let final_values: HashSet<(i32, &str)> = final_reads
            .iter()
            .flat_map(|(p, r)| r.iter().map(move |(_, v)| (*p, v.as_str())))
            .collect();
        for (p, offset, value) in std::mem::take(&mut self.acked) {
            // librdkafka reports some deliveries as successful without an offset (-1001: a
            // retried idempotent batch it learned was persisted from the broker's sequence
            // answer): such a value must be in the partition, at whatever offset.
            let present = if offset < 0 {
                final_values.contains(&(p, value))
            } else {
                final_reads.get(&p).is_some_and(|r| {
                    r.binary_search_by_key(&offset, |(o, _)| *o)
                        .is_ok_and(|i| r[i].1 == value)
                })
            };
            if !present {
                self.s
                    .lost
                    .add(format!("{value:?} acknowledged at partition {p} offset {offset}"));
            }
            if offset >= 0 {
                self.see(p, offset, value, "its acknowledgement".into());
            }
        }
    }

    /// A committed group offset never skips a record the group did not read.
    fn check_commits(&mut self, final_reads: &BTreeMap<i32, Records>) {
        for (p, committed) in std::mem::take(&mut self.commits) {
            let read = self.group_read.get(&p);
            let data: Vec<i64> = final_reads.get(&p).map_or(Vec::new(), |r| {
                r.iter().map(|(o, _)| *o).take_while(|o| *o < committed).collect()
            });
            if let Some(o) = data.iter().find(|o| !read.is_some_and(|r| r.contains(o))) {
                self.s.group_skipped.add(format!(
                    "partition {p}: committed {committed} but never read offset {o}"
                ));
            }
        }
    }
}

/// What the group had committed, and where each member's assignment had to start.
#[derive(Default)]
struct GroupTrack {
    /// Highest accepted commit per partition so far.
    committed: HashMap<i32, i64>,
    /// (member, partition) → the group's commit when the member was given the partition.
    floor: HashMap<(String, i32), i64>,
}

impl GroupTrack {
    fn committed(&mut self, partition: i32, offset: i64) {
        let c = self.committed.entry(partition).or_insert(offset);
        *c = (*c).max(offset);
    }

    fn assigned(&mut self, reader: &str, partitions: &[i32]) {
        for p in partitions {
            let floor = self.committed.get(p).copied().unwrap_or(0);
            self.floor.insert((reader.to_string(), *p), floor);
        }
    }

    /// A member reading below the commit it was assigned over started from an older offset
    /// than the group had stored.
    fn read(&self, s: &mut Summary, reader: &str, partition: i32, offset: i64, t_ms: u64) {
        let floor = self.floor.get(&(reader.to_string(), partition)).copied().unwrap_or(0);
        if offset < floor {
            s.group_reread.add(format!(
                "{reader} read partition {partition} offset {offset} at {t_ms} ms, below {floor} \
                 committed before it was given the partition"
            ));
        }
    }
}

/// Windows longer than `UNAVAILABLE_AFTER_MS` in which a partition had a value outstanding
/// (invoked, not yet acknowledged) and acknowledged nothing.
fn unavailable_windows(outstanding: &BTreeMap<i32, Vec<(u64, u64)>>) -> Vec<Window> {
    let mut out = Vec::new();
    for (p, spans) in outstanding {
        let mut acks: Vec<u64> = spans.iter().map(|(_, ack)| *ack).collect();
        acks.sort_unstable();
        let first_invoke = spans.iter().map(|(from, _)| *from).min().unwrap_or(0);
        let mut prev = first_invoke;
        for ack in acks {
            // Some value was outstanding from `prev` (the last ack) until this ack.
            if ack.saturating_sub(prev) > UNAVAILABLE_AFTER_MS {
                out.push(Window {
                    partition: *p,
                    from_ms: prev,
                    to_ms: ack,
                });
            }
            prev = ack;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(t_ms: u64, reader: &str, offset: i64) -> Event {
        Event::Read {
            t_ms,
            reader: reader.into(),
            partition: 0,
            offset,
            value: format!("p0.0-{offset}"),
        }
    }

    fn events(churn_starts_at: i64) -> Vec<Event> {
        let mut events: Vec<Event> = (0..4)
            .map(|i| Event::Invoke {
                t_ms: 0,
                producer: "p0.0".into(),
                partition: 0,
                value: format!("p0.0-{i}"),
            })
            .collect();
        events.push(read(1, "group", 0));
        events.push(read(2, "group", 1));
        events.push(Event::Commit {
            t_ms: 3,
            reader: "group".into(),
            partition: 0,
            offset: 2,
        });
        // Not committed: re-reading offset 2 after a rebalance is at-least-once.
        events.push(read(4, "group", 2));
        events.push(Event::Assigned {
            t_ms: 5,
            reader: "group-churn".into(),
            partitions: vec![0],
        });
        for o in churn_starts_at..4 {
            events.push(read(6, "group-churn", o));
        }
        events
    }

    fn finals() -> BTreeMap<i32, Records> {
        BTreeMap::from([(0, (0..4).map(|o| (o, format!("p0.0-{o}"))).collect())])
    }

    #[test]
    fn a_member_starting_below_the_groups_commit_is_a_finding_and_at_least_once_is_not() {
        let ok = check(&events(2), &finals(), &BTreeMap::new(), &HashMap::new());
        assert_eq!(
            (ok.group_reread.count, ok.group_rereads),
            (0, 1),
            "{:?}",
            ok.group_reread
        );
        assert!(ok.passed());
        let bad = check(&events(1), &finals(), &BTreeMap::new(), &HashMap::new());
        assert_eq!(
            bad.group_reread.count, 1,
            "offset 1 was committed before the assignment"
        );
        assert!(!bad.passed());
    }
}
