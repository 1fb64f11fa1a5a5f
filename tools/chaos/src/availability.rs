//! How long partitions went without acknowledgements, by the fault they happened under, and
//! the bounds a run must keep while one node at a time is at fault: a partition whose leader was
//! killed, cut off, bridged, or lost its disk may go without acknowledgements for at
//! most an election plus one client retry; a paused leader adds the client's request timeout
//! (its requests to the paused node hang, as with any broker); a follower fault must not stop a
//! partition whose leader and another replica are fine. Faults on two or more nodes at once (a
//! restarted node counts until `SETTLE_MS` after its restart: it is catching up) may take the
//! majority away: their windows are reported only.

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
    const PAUSED_MS: u64 = super::workload::REQUEST_TIMEOUT_MS + LEADER_LOST_MS;
    match fault {
        // The leader and one more replica are a majority: nothing should stop.
        "kill follower" if partition == 0 && !healed => Some(1_000),
        // A rolling restart's node hands its leaderships over before it stops (controlled
        // shutdown); before that, its drain held them for seconds (finding 11).
        "kill leader" | "kill follower" | "kill node" | "isolate leader" | "split minority" | "bridge"
        | "disk full" | "fsync fails" | "fsync hangs" | "rolling restart" => Some(LEADER_LOST_MS),
        "pause leader" | "pause node" => Some(PAUSED_MS),
        _ => None,
    }
}

/// Whether a fault restarts a node or its groups (a full disk or failing fsyncs stop them; they
/// restart at the heal): healed, the node still replays and catches up for a while, and until
/// it has, it cannot make a majority with another.
fn restarts(what: &str) -> bool {
    matches!(
        what,
        "kill leader" | "kill follower" | "kill node" | "rolling restart" | "disk full" | "fsync fails"
    )
}

/// Whether the faults at work during a window hit one node at most: one fault (each keeps a
/// majority: a rolling restart restarts one node at a time), or several on the same node. A
/// bridge with another fault does not count: it cuts the links between the other nodes, which
/// then reach each other only through the bridge node (killed or paused as well, no majority
/// is left: a long run's 4.8 s window under "bridge + kill node" on one node, 2026-12-07).
fn one_node_at_fault(at_work: &[&Span]) -> bool {
    match at_work {
        [] | [_] => true,
        many => {
            let mut nodes: Vec<i32> = many.iter().flat_map(|s| s.nodes.iter().copied()).collect();
            nodes.sort_unstable();
            nodes.dedup();
            nodes.len() <= 1 && !many.iter().any(|s| s.what == "rolling restart" || s.what == "bridge")
        }
    }
}

/// One fault of the run, from its start to its heal.
struct Span {
    what: String,
    nodes: Vec<i32>,
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
/// its heal); a window over the bound fails the run when every such fault has a bound and the
/// faults in force during it hit one node at most.
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
        // In force, or healed but with its node restarted and still catching up.
        let at_work: Vec<&Span> = under
            .iter()
            .copied()
            .filter(|s| w.from_ms <= s.healed_ms || restarts(&s.what))
            .collect();
        let bounds: Option<Vec<u64>> = under
            .iter()
            .map(|s| bound_ms(&s.what, w.partition, w.from_ms >= s.healed_ms))
            .collect();
        let bound = bounds
            .filter(|b| !b.is_empty() && one_node_at_fault(&at_work))
            .and_then(|b| b.into_iter().max());
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
            Event::Fault { t_ms, what, nodes } => spans.push(Span {
                what: what.clone(),
                nodes: nodes.clone(),
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
        fault_on(t_ms, what, 1)
    }

    fn fault_on(t_ms: u64, what: &str, node: i32) -> Event {
        Event::Fault {
            t_ms,
            what: what.into(),
            nodes: vec![node],
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
            window(21_000, 26_000), // 5 s under a pause: within the request timeout + 3 s
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

    #[test]
    fn a_pause_is_bounded_by_the_request_timeout_and_an_election() {
        let events = vec![fault(1_000, "pause leader"), heal(11_000, "pause leader")];
        let a = assess(
            &events,
            &[
                window(900, 8_500),
                Window {
                    partition: 1,
                    ..window(900, 10_000)
                },
            ],
        );
        assert_eq!(a.over_bound.count, 1, "{:?}", a.over_bound);
        assert!(
            a.over_bound.examples[0].starts_with("partition 1 "),
            "{:?}",
            a.over_bound
        );
    }

    #[test]
    fn faults_on_two_nodes_at_once_are_reported_not_bounded() {
        let events = vec![
            fault_on(1_000, "kill node", 1),
            fault_on(1_000, "pause leader", 2),
            heal(20_000, "kill node"),
            heal(20_000, "pause leader"),
            fault_on(30_000, "kill leader", 3),
            fault_on(30_000, "isolate leader", 3),
            heal(40_000, "kill leader"),
            heal(40_000, "isolate leader"),
        ];
        // No majority for 17 s: reported; two faults on node 3 alone: bounded (4 s is over).
        let a = assess(&events, &[window(900, 18_000), window(29_900, 33_900)]);
        assert_eq!(a.over_bound.count, 1, "{:?}", a.over_bound);
        assert!(a.over_bound.examples[0].contains("from 29900 ms"), "{:?}", a.over_bound);
        assert_eq!(a.by_fault["kill node + pause leader"], vec![17_100]);
    }

    #[test]
    fn a_bridge_node_also_killed_leaves_no_majority() {
        // The bridge cuts nodes 1 and 3 apart; killing the bridge node 2 leaves them no path.
        let events = vec![
            fault_on(1_000, "bridge", 2),
            fault_on(1_000, "kill node", 2),
            heal(5_500, "bridge"),
            heal(5_500, "kill node"),
        ];
        let a = assess(&events, &[window(900, 5_700)]);
        assert_eq!(a.over_bound.count, 0, "{:?}", a.over_bound);
        assert_eq!(a.by_fault["bridge + kill node"], vec![4_800]);
    }

    #[test]
    fn a_restarted_node_catching_up_counts_as_at_fault() {
        // Node 1 killed and restarted, then node 2 isolated while node 1 catches up: two nodes
        // are at fault, reported only. Node 1 cut off and healed instead: it is current at
        // once, so the isolation of node 2 is bounded.
        let restarted = vec![
            fault_on(1_000, "kill node", 1),
            heal(5_000, "kill node"),
            fault_on(7_000, "isolate leader", 2),
            heal(12_000, "isolate leader"),
        ];
        assert_eq!(assess(&restarted, &[window(6_900, 11_000)]).over_bound.count, 0);
        let healed = vec![
            fault_on(1_000, "split minority", 1),
            heal(5_000, "split minority"),
            fault_on(7_000, "isolate leader", 2),
            heal(12_000, "isolate leader"),
        ];
        assert_eq!(assess(&healed, &[window(6_900, 11_000)]).over_bound.count, 1);
    }
}
