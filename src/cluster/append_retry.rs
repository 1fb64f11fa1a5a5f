//! AppendEntries retries that send only what the follower may not hold yet.
//!
//! openraft gives an AppendEntries a deadline, and when it passes it sends the same range again
//! from the last matching entry. Under load the first request was usually on its way or being
//! written on the follower, so the retry repeated a megabyte the follower already had, on the
//! connection that was too slow for the first one. Instead, a request whose deadline passed is
//! kept (`Unanswered`), and a retry that asks for the same entries or more waits for its answer;
//! only the entries after it, or a newer commit index, go out again.

use super::network::{CallError, Peers, Sent};
use super::wire::{GroupId, Request, Response};
use crate::types::{LogId, NodeId, TypeConfig};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse};
use openraft::Vote;
use tokio::time::Instant;

/// What identifies an AppendEntries with records, for recognising its retry.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    vote: Vote<NodeId>,
    prev: Option<LogId>,
    /// Its last entry (it had at least one).
    last: LogId,
    leader_commit: Option<LogId>,
}

impl Key {
    /// The key of `rpc`; `None` for a request without entries (nothing worth keeping).
    pub fn of(rpc: &AppendEntriesRequest<TypeConfig>) -> Option<Key> {
        Some(Key {
            vote: rpc.vote,
            prev: rpc.prev_log_id,
            last: rpc.entries.last()?.log_id,
            leader_commit: rpc.leader_commit,
        })
    }

    /// Whether `rpc` asks for everything this request asked for (the same leader, the same
    /// starting point, this request's entries a prefix of its own): its answer then answers
    /// that part of `rpc`.
    pub fn covered_by(&self, rpc: &AppendEntriesRequest<TypeConfig>) -> bool {
        self.vote == rpc.vote && self.prev == rpc.prev_log_id && rpc.entries.iter().any(|e| e.log_id == self.last)
    }

    /// What of `rpc` is left to send once the follower accepted this request: the entries after
    /// this request's last, and the commit index if it moved. `None` when nothing is left.
    pub fn rest_of(&self, rpc: &AppendEntriesRequest<TypeConfig>) -> Option<AppendEntriesRequest<TypeConfig>> {
        debug_assert!(self.covered_by(rpc), "the rest of a request this one does not cover");
        let after = rpc.entries.iter().position(|e| e.log_id == self.last)? + 1;
        if after == rpc.entries.len() && rpc.leader_commit <= self.leader_commit {
            return None;
        }
        Some(AppendEntriesRequest {
            vote: rpc.vote,
            prev_log_id: Some(self.last),
            entries: rpc.entries[after..].to_vec(),
            leader_commit: rpc.leader_commit,
        })
    }
}

/// An AppendEntries with records whose answer had not come when its deadline passed.
pub struct Unanswered {
    key: Key,
    sent: Sent,
}

/// Where an AppendEntries goes: a peer, over this node's connections, for one group.
#[derive(Clone, Copy)]
pub struct Link<'a> {
    /// This node's connections.
    pub peers: &'a Peers,
    /// The follower.
    pub target: NodeId,
    /// The group the entries belong to.
    pub group: &'a GroupId,
}

/// Sends `rpc` over `link`, waiting until `deadline`. A retry of a request still
/// unanswered in `kept` waits for that answer and sends only the rest; a request with records
/// whose deadline passes is kept for the next retry.
pub async fn send_append(
    link: Link<'_>,
    kept: &mut Option<Unanswered>,
    rpc: AppendEntriesRequest<TypeConfig>,
    deadline: Instant,
) -> Result<Response, CallError> {
    let Some(earlier) = kept.as_ref().map(|k| k.key).filter(|k| k.covered_by(&rpc)) else {
        *kept = None;
        return send_keeping(link, kept, rpc, deadline).await;
    };
    let answer = answer_kept(link, kept, deadline).await?;
    metrics::counter!(crate::observability::APPEND_RESENDS_AVOIDED).increment(1);
    let rest = match earlier.rest_of(&rpc) {
        Some(rest) if accepted_all(&answer) => rest,
        _ => return Ok(answer),
    };
    let has_entries = !rest.entries.is_empty();
    match send_keeping(link, kept, rest, deadline).await {
        // The follower holds the earlier part: say so, and the next retry starts after it. (A
        // commit index alone is not reported as sent: openraft would not send it again.)
        Err(CallError::Timeout(_)) if has_entries => Ok(Response::AppendEntries(Ok(
            AppendEntriesResponse::PartialSuccess(Some(earlier.last)),
        ))),
        // openraft would take a conflict as one at the retry's start, which the follower
        // accepted: let it retry from there instead.
        Ok(Response::AppendEntries(Ok(AppendEntriesResponse::Conflict))) => Err(CallError::Failed(format!(
            "node {} no longer holds the entries it accepted",
            link.target
        ))),
        other => other,
    }
}

/// Sends `rpc` and waits for its answer; a request with records is kept in `kept` meanwhile, so
/// a deadline that passes (or openraft dropping this wait) leaves it there for the retry.
async fn send_keeping(
    link: Link<'_>,
    kept: &mut Option<Unanswered>,
    rpc: AppendEntriesRequest<TypeConfig>,
    deadline: Instant,
) -> Result<Response, CallError> {
    let key = Key::of(&rpc);
    let mut sent = link
        .peers
        .send(link.target, Request::AppendEntries(link.group.clone(), rpc))?;
    match key {
        Some(key) => {
            *kept = Some(Unanswered { key, sent });
            answer_kept(link, kept, deadline).await
        }
        None => link.peers.answer(link.target, &mut sent, deadline).await,
    }
}

/// Waits until `deadline` for the answer of the request in `kept`, which stays there unless an
/// answer (or a failure) came.
async fn answer_kept(link: Link<'_>, kept: &mut Option<Unanswered>, deadline: Instant) -> Result<Response, CallError> {
    let unanswered = kept.as_mut().expect("a kept request");
    let outcome = link.peers.answer(link.target, &mut unanswered.sent, deadline).await;
    if !matches!(outcome, Err(CallError::Timeout(_))) {
        *kept = None;
    }
    outcome
}

/// Whether `resp` says the follower accepted every entry it was sent.
pub fn accepted_all(resp: &Response) -> bool {
    matches!(resp, Response::AppendEntries(Ok(AppendEntriesResponse::Success)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Command, Entry};
    use bytes::Bytes;
    use openraft::CommittedLeaderId;
    use std::sync::Arc;

    fn id(term: u64, index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    fn append(prev: u64, last: u64, commit: u64) -> AppendEntriesRequest<TypeConfig> {
        let entries = (prev + 1..=last)
            .map(|i| Entry {
                log_id: id(2, i),
                payload: openraft::EntryPayload::Normal(Command::Batch(Bytes::from_static(b"b"))),
            })
            .collect();
        AppendEntriesRequest {
            vote: Vote::new_committed(2, 1),
            prev_log_id: Some(id(2, prev)),
            entries,
            leader_commit: Some(id(2, commit)),
        }
    }

    fn key(rpc: &AppendEntriesRequest<TypeConfig>) -> Key {
        Key::of(rpc).expect("has entries")
    }

    #[test]
    fn a_retry_of_the_same_range_or_a_longer_one_is_covered() {
        let first = key(&append(10, 12, 9));
        assert!(first.covered_by(&append(10, 12, 9)));
        assert!(first.covered_by(&append(10, 15, 9)));
        assert!(!first.covered_by(&append(10, 11, 9)), "a shorter retry is not");
        assert!(!first.covered_by(&append(9, 12, 9)), "another starting point is not");
        let mut other_leader = append(10, 12, 9);
        other_leader.vote = Vote::new_committed(3, 2);
        assert!(!first.covered_by(&other_leader));
    }

    #[test]
    fn only_the_entries_after_the_kept_request_and_a_newer_commit_are_sent_again() {
        let first = key(&append(10, 12, 9));
        assert!(first.rest_of(&append(10, 12, 9)).is_none(), "nothing new");
        let commit_only = first.rest_of(&append(10, 12, 11)).expect("the commit moved");
        assert!(commit_only.entries.is_empty());
        assert_eq!(
            (commit_only.prev_log_id, commit_only.leader_commit),
            (Some(id(2, 12)), Some(id(2, 11)))
        );
        let rest = first.rest_of(&append(10, 15, 9)).expect("three more entries");
        let indexes: Vec<u64> = rest.entries.iter().map(|e| e.log_id.index).collect();
        assert_eq!((rest.prev_log_id, indexes), (Some(id(2, 12)), vec![13, 14, 15]));
    }

    /// A peer that answers Hello at once and each AppendEntries when the test says so; it
    /// reports every AppendEntries it received.
    async fn slow_peer() -> (
        String,
        tokio::sync::mpsc::UnboundedReceiver<AppendEntriesRequest<TypeConfig>>,
        tokio::sync::mpsc::UnboundedSender<()>,
    ) {
        use crate::cluster::wire;
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (seen_tx, seen) = tokio::sync::mpsc::unbounded_channel();
        let (release, released) = tokio::sync::mpsc::unbounded_channel::<()>();
        let released = Arc::new(tokio::sync::Mutex::new(released));
        // One connection per lane: requests with records on one, the rest on the other.
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (seen_tx, released) = (seen_tx.clone(), released.clone());
                tokio::spawn(async move {
                    let (mut read, mut write) = stream.into_split();
                    while let Ok(Some((id, req))) = wire::read_frame::<_, Request>(&mut read, 1 << 20).await {
                        let resp = match req {
                            Request::Hello { .. } => Response::Hello,
                            Request::AppendEntries(_, rpc) => {
                                seen_tx.send(rpc).unwrap();
                                released.lock().await.recv().await.unwrap();
                                Response::AppendEntries(Ok(AppendEntriesResponse::Success))
                            }
                            other => panic!("unexpected {other:?}"),
                        };
                        write.write_all(&wire::encode(id, &resp).unwrap()).await.unwrap();
                    }
                });
            }
        });
        (addr, seen, release)
    }

    fn link<'a>(peers: &'a Peers, group: &'a GroupId) -> Link<'a> {
        Link {
            peers,
            target: 2,
            group,
        }
    }

    /// Peers of node 1 whose node 2 is a `slow_peer`, and the group the tests replicate.
    async fn slow_client() -> (
        Arc<Peers>,
        GroupId,
        tokio::sync::mpsc::UnboundedReceiver<AppendEntriesRequest<TypeConfig>>,
        tokio::sync::mpsc::UnboundedSender<()>,
    ) {
        let (addr, seen, release) = slow_peer().await;
        let peers = Peers::new(1, [(2, addr)].into(), 1 << 20, std::time::Duration::from_secs(1));
        let group = GroupId::Partition {
            topic: "t".into(),
            partition: 0,
        };
        (peers, group, seen, release)
    }

    #[tokio::test]
    async fn a_retry_after_a_deadline_waits_for_the_first_answer_and_sends_only_the_new_entries() {
        let (peers, group, mut seen, release) = slow_client().await;
        let mut kept = None;
        let soon = || Instant::now() + std::time::Duration::from_millis(100);
        let first = send_append(link(&peers, &group), &mut kept, append(10, 12, 9), soon()).await;
        assert!(matches!(first, Err(CallError::Timeout(_))), "{first:?}");
        assert_eq!(
            seen.recv().await.unwrap().entries.len(),
            2,
            "entries 11-12 went out once"
        );

        release.send(()).unwrap(); // the follower answers the first request late
        release.send(()).unwrap(); // and the rest at once
        let later = Instant::now() + std::time::Duration::from_secs(10);
        let retry = send_append(link(&peers, &group), &mut kept, append(10, 15, 9), later).await;
        assert!(accepted_all(&retry.unwrap()), "all of 11-15 accepted");
        let rest = seen.recv().await.unwrap();
        let indexes: Vec<u64> = rest.entries.iter().map(|e| e.log_id.index).collect();
        assert_eq!((rest.prev_log_id, indexes), (Some(id(2, 12)), vec![13, 14, 15]));
        assert!(kept.is_none() && seen.try_recv().is_err(), "11-12 were not sent again");
    }

    #[tokio::test]
    async fn a_newer_commit_index_that_got_no_answer_is_not_reported_as_sent() {
        let (peers, group, mut seen, release) = slow_client().await;
        let mut kept = None;
        let soon = || Instant::now() + std::time::Duration::from_millis(100);
        let first = send_append(link(&peers, &group), &mut kept, append(10, 12, 9), soon()).await;
        assert!(matches!(first, Err(CallError::Timeout(_))), "{first:?}");
        seen.recv().await.unwrap();
        release.send(()).unwrap(); // only the first request is answered
        let retry = send_append(link(&peers, &group), &mut kept, append(10, 12, 12), soon()).await;
        assert!(
            matches!(retry, Err(CallError::Timeout(_))),
            "the commit index did not arrive: openraft must send it again ({retry:?})"
        );
        assert!(
            seen.recv().await.unwrap().entries.is_empty(),
            "only the commit index went out"
        );
    }

    #[test]
    fn a_request_without_entries_is_not_kept() {
        assert!(Key::of(&append(10, 10, 9)).is_none());
    }
}
