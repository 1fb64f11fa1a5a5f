//! Faults and schedules: the named scenarios (fixed timings, a seed for the random choices),
//! the short CI schedule (all of them), and a random long schedule from a printed seed.

use serde::{Deserialize, Serialize};

/// One kind of fault. Each is healed at the end of its step (a killed node restarts, a paused
/// one continues, a partition is lifted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Fault {
    /// kill -9 the leader of partition 0.
    KillLeader,
    /// kill -9 a follower of partition 0.
    KillFollower,
    /// kill -9 any node.
    KillRandom,
    /// SIGSTOP the leader of partition 0.
    PauseLeader,
    /// SIGSTOP any node.
    PauseRandom,
    /// Cut the leader of partition 0 off from every other node (clients still reach it).
    IsolateLeader,
    /// Cut a random minority off from the majority.
    SplitMinority,
    /// Two halves that cannot talk to each other, both talking to one bridge node.
    Bridge,
    /// SIGTERM and restart every node in turn, each back and ready before the next.
    RollingRestart,
    /// Fill the data dir (a small tmpfs) of the leader of partition 0 to the last byte.
    DiskFull,
    /// Make every fsync of the leader of partition 0 fail (a debug broker's test switch); the
    /// node is restarted at the heal if it stopped.
    FsyncFail,
    /// Make every fsync of the leader of partition 0 block until the heal (a debug broker's
    /// test switch): a disk that stops answering.
    FsyncHang,
}

impl Fault {
    /// Every fault.
    pub const ALL: [Fault; 12] = [
        Fault::KillLeader,
        Fault::KillFollower,
        Fault::KillRandom,
        Fault::PauseLeader,
        Fault::PauseRandom,
        Fault::IsolateLeader,
        Fault::SplitMinority,
        Fault::Bridge,
        Fault::RollingRestart,
        Fault::DiskFull,
        Fault::FsyncFail,
        Fault::FsyncHang,
    ];

    /// Name used in the history and the picture.
    pub fn name(self) -> &'static str {
        match self {
            Fault::KillLeader => "kill leader",
            Fault::KillFollower => "kill follower",
            Fault::KillRandom => "kill node",
            Fault::PauseLeader => "pause leader",
            Fault::PauseRandom => "pause node",
            Fault::IsolateLeader => "isolate leader",
            Fault::SplitMinority => "split minority",
            Fault::Bridge => "bridge",
            Fault::RollingRestart => "rolling restart",
            Fault::DiskFull => "disk full",
            Fault::FsyncFail => "fsync fails",
            Fault::FsyncHang => "fsync hangs",
        }
    }
}

/// Faults started together at `at_ms` (run time) and healed `hold_ms` later.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    pub at_ms: u64,
    pub hold_ms: u64,
    pub faults: Vec<Fault>,
}

impl Scenario {
    /// Whether some step fills a disk (the nodes then run on small tmpfs data dirs).
    pub fn fills_disks(&self) -> bool {
        self.steps.iter().any(|s| s.faults.contains(&Fault::DiskFull))
    }
}

/// A named schedule.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scenario {
    pub name: String,
    pub seed: u64,
    pub steps: Vec<Step>,
    /// How long the workload runs after the last heal (recovery) before it stops.
    pub tail_ms: u64,
}

fn step(at_ms: u64, hold_ms: u64, faults: &[Fault]) -> Step {
    Step {
        at_ms,
        hold_ms,
        faults: faults.to_vec(),
    }
}

/// The named scenarios, in the order the short schedule runs them.
pub const NAMES: [&str; 7] = [
    "leader-crash",
    "follower-crash",
    "partition",
    "pause",
    "rolling-restart",
    "disk-full",
    "fsync-failure",
];

/// The scenario called `name`.
pub fn named(name: &str, seed: u64) -> Option<Scenario> {
    use Fault::*;
    let steps = match name {
        "leader-crash" => vec![step(3_000, 4_000, &[KillLeader]), step(11_000, 3_000, &[KillLeader])],
        "follower-crash" => vec![step(3_000, 4_000, &[KillFollower]), step(11_000, 3_000, &[KillRandom])],
        "partition" => vec![
            step(3_000, 5_000, &[IsolateLeader]),
            step(11_000, 4_000, &[SplitMinority]),
            step(18_000, 4_000, &[Bridge]),
        ],
        "pause" => vec![step(3_000, 4_000, &[PauseLeader]), step(10_000, 3_000, &[PauseRandom])],
        "rolling-restart" => vec![step(3_000, 0, &[RollingRestart])],
        "disk-full" => vec![step(3_000, 6_000, &[DiskFull]), step(13_000, 4_000, &[DiskFull])],
        "fsync-failure" => vec![step(3_000, 5_000, &[FsyncFail]), step(12_000, 5_000, &[FsyncHang])],
        _ => return None,
    };
    Some(Scenario {
        name: name.to_string(),
        seed,
        steps,
        tail_ms: 4_000,
    })
}

/// A deterministic generator (splitmix64): the same seed gives the same schedule and choices.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo).max(1)
    }
}

/// A random schedule of `duration_ms`: one or two faults at a time (a crash or pause combined
/// with a partition now and then), held 2-8 s, 2-6 s apart.
pub fn long(duration_ms: u64, seed: u64) -> Scenario {
    use Fault::*;
    // Not the fsync faults: their switches exist in debug brokers only, and long runs use
    // release ones.
    let single: Vec<Fault> = Fault::ALL
        .into_iter()
        .filter(|f| !matches!(f, FsyncFail | FsyncHang))
        .collect();
    let mut rng = Rng::new(seed);
    let mut steps = Vec::new();
    let mut at = 3_000;
    while at < duration_ms {
        let mut faults = vec![single[rng.range(0, single.len() as u64) as usize]];
        if rng.range(0, 4) == 0 && faults[0] != RollingRestart {
            let second = [KillRandom, PauseRandom, SplitMinority][rng.range(0, 3) as usize];
            if !faults.contains(&second) {
                faults.push(second);
            }
        }
        let hold = if faults == [RollingRestart] {
            0
        } else {
            rng.range(2_000, 8_000)
        };
        steps.push(Step {
            at_ms: at,
            hold_ms: hold,
            faults,
        });
        at += hold + rng.range(2_000, 6_000);
    }
    Scenario {
        name: format!("long-{seed}"),
        seed,
        steps,
        tail_ms: 5_000,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_short_schedule_injects_every_fault() {
        let used: std::collections::HashSet<Fault> = NAMES
            .iter()
            .flat_map(|n| named(n, 1).expect("named scenario").steps)
            .flat_map(|s| s.faults)
            .collect();
        assert_eq!(used.len(), Fault::ALL.len(), "{used:?}");
    }

    #[test]
    fn a_long_schedule_uses_every_fault_but_the_fsync_ones_and_replays_from_its_seed() {
        let a = long(1_200_000, 42);
        let used: std::collections::HashSet<Fault> = a.steps.iter().flat_map(|s| s.faults.clone()).collect();
        assert_eq!(used.len(), Fault::ALL.len() - 2, "{used:?}");
        assert!(!used.contains(&Fault::FsyncFail) && !used.contains(&Fault::FsyncHang));
        assert_eq!(
            serde_json::to_string(&long(1_200_000, 42)).unwrap(),
            serde_json::to_string(&a).unwrap()
        );
    }
}
