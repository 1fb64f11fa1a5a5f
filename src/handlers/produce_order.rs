//! The order in which one connection's Produce requests reach their partitions.
//!
//! A connection handles several requests at once, but Kafka handles one request per connection
//! at a time, and a producer without idempotence relies on that: its pipelined batches for a
//! partition must be appended in the order it sent them. Each Produce request takes a turn when
//! it is decoded, waits for the previous request's turn to end before handing its batches to
//! their partitions (whose mailboxes keep that order), and ends its own turn as soon as they are
//! handed over, not when they commit, so pipelining still overlaps the commits.

use tokio::sync::oneshot;

/// Hands out turns in the order requests were decoded (one per connection).
#[derive(Default)]
pub struct ProduceOrder {
    last: Option<oneshot::Receiver<()>>,
}

impl ProduceOrder {
    /// The next request's turn: it begins when the previous one's ends.
    pub fn next_turn(&mut self) -> ProduceTurn {
        let (done, next) = oneshot::channel();
        ProduceTurn {
            after: self.last.replace(next),
            _done: done,
        }
    }
}

/// One Produce request's place in its connection's order. Dropping it ends the turn.
pub struct ProduceTurn {
    after: Option<oneshot::Receiver<()>>,
    /// Dropped when this turn ends, which wakes the next one.
    _done: oneshot::Sender<()>,
}

impl ProduceTurn {
    /// Waits until every earlier request of the connection has handed over its batches (or
    /// given up).
    pub async fn begin(&mut self) {
        if let Some(previous) = self.after.as_mut() {
            // An error only means the previous turn ended: its sender was dropped. The
            // receiver is kept until then, so a cancelled wait is waited again.
            let _ = previous.await;
            self.after = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[tokio::test]
    async fn a_turn_begins_only_when_the_previous_one_ends() {
        let mut order = ProduceOrder::default();
        let mut first = order.next_turn();
        let mut second = order.next_turn();
        first.begin().await;
        assert!(
            second.begin().now_or_never().is_none(),
            "the second turn began while the first was held"
        );
        drop(first);
        assert!(second.begin().now_or_never().is_some());
    }

    #[tokio::test]
    async fn the_first_turn_begins_at_once() {
        let mut order = ProduceOrder::default();
        assert!(order.next_turn().begin().now_or_never().is_some());
    }
}
