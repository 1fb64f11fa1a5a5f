//! How long partitions went without acknowledgements, by the fault they happened under, and
//! the bounds a run must keep: a partition whose leader was killed or cut off may go without
//! acknowledgements for at most an election plus one client retry; a follower fault must not
//! stop a partition whose leader and another replica are fine. Other faults (pauses, which
//! clients only notice when their request times out; splits; full disks) are reported only.

use super::checker::{Finding, Window};
use super::history::Event;
use serde::Serialize;
use std::collections::BTreeMap;

/// A window starting this long after a fault was healed still belongs to it (a restarted
/// node rejoining, leadership moving back to it).
const SETTLE_MS: u64 = 5_000;

/// The longest `partition` may acknowledge nothing under a fault of this kind (its history
/// name), ms; `None`: reported, not bounded. The "leader" and "follower" faults pick their node
/// by its role in partition 0; to the other partitions that node may be leader or follower.
/// After the heal (`healed`), a restarted follower may take its preferred leadership back: a
/// leader change like the others.
pub fn bound_ms(fault: &str, partition: i32, healed: bool) -> Option<u64> {
    // The lease and an election (about 1 s) plus a client retry with the suite's settings.
    const LEADER_LOST_MS: u64 = 3_000;
    match fault {
        "kill leader" | "isolate leader" | "kill node" => Some(LEADER_LOST_MS),
        // The leader and one more replica are a majority: nothing should stop.
        "kill follower" if partition == 0 && !healed => Some(1_000),
        "kill follower" => Some(LEADER_LOST_MS),
        _ => None,
    }
}

/// One fault of the run, from its start to its heal.
struct Span {
    what: String,
    from_ms: u64,
    healed_ms: u64,
}

/// The unavailable windows, by fault kind, and the windows longer than their bound.
#[derive(Debug, Default, Serialize)]
pub struct Availability {
    /// Window lengths (ms) by the kinds of fault they started under ("none" outside faults).
    pub by_fault: BTreeMap<String, Vec<u64>>,
    /// Windows longer than every bounded fault they started under allows.
    pub over_bound: Finding,
}

/// Attributes every window to the faults it overlaps (a fault lasting until `SETTLE_MS` after
/// its heal); a window over the bound fails the run when every such fault has a bound.
pub fn assess(events: &[Event], windows: &[Window]) -> Availability {
    let spans = spans(events);
    let mut out = Availability::default();
    for w in windows {
        let length = w.to_ms - w.from_ms;
        // A window starts at the last acknowledgement before it, so it overlaps its fault
        // rather than starting inside it.
        let under: Vec<&Span> = spans
            .iter()
            .filter(|s| s.from_ms < w.to_ms && w.from_ms <= s.healed_ms + SETTLE_MS)
            .collect();
        let mut kinds: Vec<&str> = under.iter().map(|s| s.what.as_str()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let key = if kinds.is_empty() {
            "none".to_string()
        } else {
            kinds.join(" + ")
        };
        out.by_fault.entry(key.clone()).or_default().push(length);
        let bounds: Option<Vec<u64>> = under
            .iter()
            .map(|s| bound_ms(&s.what, w.partition, w.from_ms >= s.healed_ms))
            .collect();
        let bound = bounds.filter(|b| !b.is_empty()).and_then(|b| b.into_iter().max());
        if let Some(bound) = bound.filter(|b| length > *b) {
            out.over_bound.add(format!(
                "partition {} acknowledged nothing for {length} ms from {} ms under {key} (bound {bound} ms)",
                w.partition, w.from_ms
            ));
        }
    }
    out
}

/// Each fault with the time it was healed (the end of the run if never).
fn spans(events: &[Event]) -> Vec<Span> {
    let end_ms = events.iter().map(Event::t_ms).max().unwrap_or(0);
    let mut spans: Vec<Span> = Vec::new();
    for e in events {
        match e {
            Event::Fault { t_ms, what, .. } => spans.push(Span {
                what: what.clone(),
                from_ms: *t_ms,
                healed_ms: end_ms,
            }),
            Event::Heal { t_ms, what } => {
                if let Some(s) = spans
                    .iter_mut()
                    .rev()
                    .find(|s| s.what == *what && s.healed_ms == end_ms)
                {
                    s.healed_ms = *t_ms;
                }
            }
            _ => {}
        }
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(t_ms: u64, what: &str) -> Event {
        Event::Fault {
            t_ms,
            what: what.into(),
            nodes: vec![1],
        }
    }

    fn heal(t_ms: u64, what: &str) -> Event {
        Event::Heal {
            t_ms,
            what: what.into(),
        }
    }

    fn window(from_ms: u64, to_ms: u64) -> Window {
        Window {
            partition: 0,
            from_ms,
            to_ms,
        }
    }

    #[test]
    fn windows_are_judged_by_the_fault_they_started_under() {
        let events = vec![
            fault(1_000, "isolate leader"),
            heal(6_000, "isolate leader"),
            fault(20_000, "pause leader"),
            heal(24_000, "pause leader"),
            heal(40_000, "none"),
        ];
        let windows = [
            window(900, 3_300),     // 2.4 s from the last ack before the isolation: within 3 s
            window(10_000, 14_000), // 4 s right after the heal: over
            window(21_000, 26_000), // 5 s under a pause: reported only
            window(35_000, 36_500), // outside any fault: reported only
        ];
        let a = assess(&events, &windows);
        assert_eq!(a.over_bound.count, 1, "{:?}", a.over_bound);
        assert!(a.over_bound.examples[0].contains("4000 ms"), "{:?}", a.over_bound);
        assert_eq!(a.by_fault["isolate leader"], vec![2_400, 4_000]);
        assert_eq!(a.by_fault["pause leader"], vec![5_000]);
        assert_eq!(a.by_fault["none"], vec![1_500]);
    }

    #[test]
    fn a_killed_follower_of_partition_0_may_lead_the_others() {
        let events = vec![fault(1_000, "kill follower"), heal(5_000, "kill follower")];
        let windows = [
            window(900, 3_000),
            Window {
                partition: 1,
                ..window(900, 3_000)
            },
        ];
        let a = assess(&events, &windows);
        assert_eq!(a.over_bound.count, 1, "{:?}", a.over_bound);
        assert!(
            a.over_bound.examples[0].starts_with("partition 0 "),
            "{:?}",
            a.over_bound
        );
    }
}
