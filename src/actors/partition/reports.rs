//! What this node's partitions report to the controller (leaderships won, in-sync replicas,
//! finished reassignments), collected here and recorded by the controller's reporter task
//! (`controller::boot::spawn_leader_reporter`), so partitions never call the controller.

use crate::storage::meta_sm::MetaCommand;
use std::collections::HashMap;

/// (topic, partition).
type PartitionKey = (String, i32);

/// What this node's partitions tell the controller and it does not know yet: leaderships won
/// (the latest per partition) and finished reassignments. Bounded by the partitions this node
/// holds.
#[derive(Default)]
pub struct LeaderReports {
    pending: parking_lot::Mutex<HashMap<(String, i32), (i32, i32)>>,
    reassigned: parking_lot::Mutex<HashMap<(String, i32), Vec<i32>>>,
    isr: parking_lot::Mutex<HashMap<PartitionKey, (i32, Vec<i32>)>>,
    /// Woken on every new report.
    pub notify: tokio::sync::Notify,
}

impl LeaderReports {
    /// This node leads `topic`/`partition` in `epoch`.
    pub fn report(&self, topic: &str, partition: i32, leader: i32, epoch: i32) {
        self.pending
            .lock()
            .insert((topic.to_string(), partition), (leader, epoch));
        self.notify.notify_one();
    }

    /// The Raft group of `topic`/`partition` now has exactly `replicas` as voters.
    pub fn reassigned(&self, topic: &str, partition: i32, replicas: Vec<i32>) {
        self.reassigned.lock().insert((topic.to_string(), partition), replicas);
        self.notify.notify_one();
    }

    /// The in-sync replicas of `topic`/`partition`, led here in `epoch`, changed.
    pub fn isr(&self, topic: &str, partition: i32, epoch: i32, isr: Vec<i32>) {
        self.isr.lock().insert((topic.to_string(), partition), (epoch, isr));
        self.notify.notify_one();
    }

    /// Everything pending, as controller commands.
    pub fn take(&self) -> Vec<MetaCommand> {
        let leaders: Vec<(String, i32, i32, i32)> = std::mem::take(&mut *self.pending.lock())
            .into_iter()
            .map(|((t, p), (leader, epoch))| (t, p, leader, epoch))
            .collect();
        let done: Vec<(String, i32, Vec<i32>)> = std::mem::take(&mut *self.reassigned.lock())
            .into_iter()
            .map(|((t, p), replicas)| (t, p, replicas))
            .collect();
        let isr: Vec<(String, i32, i32, Vec<i32>)> = std::mem::take(&mut *self.isr.lock())
            .into_iter()
            .map(|((t, p), (epoch, isr))| (t, p, epoch, isr))
            .collect();
        let mut cmds = Vec::new();
        if !isr.is_empty() {
            cmds.push(MetaCommand::PartitionIsr { isr });
        }
        if !leaders.is_empty() {
            cmds.push(MetaCommand::PartitionLeaders { leaders });
        }
        if !done.is_empty() {
            cmds.push(MetaCommand::ReassignmentsDone { done });
        }
        cmds
    }

    /// Puts back what could not be recorded (newer reports win).
    pub fn restore(&self, cmd: MetaCommand) {
        match cmd {
            MetaCommand::PartitionLeaders { leaders } => {
                let mut pending = self.pending.lock();
                for (t, p, leader, epoch) in leaders {
                    pending.entry((t, p)).or_insert((leader, epoch));
                }
            }
            MetaCommand::PartitionIsr { isr } => {
                let mut pending = self.isr.lock();
                for (t, p, epoch, replicas) in isr {
                    pending.entry((t, p)).or_insert((epoch, replicas));
                }
            }
            MetaCommand::ReassignmentsDone { done } => {
                let mut pending = self.reassigned.lock();
                for (t, p, replicas) in done {
                    pending.entry((t, p)).or_insert(replicas);
                }
            }
            _ => {}
        }
        self.notify.notify_one();
    }
}
