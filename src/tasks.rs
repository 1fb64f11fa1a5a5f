//! Long-lived tasks with an owner. A task spawned here that panics is a supervision event: it
//! is logged, counted (`raftstream_task_exits_total{task, how}`), and handed to its owner —
//! the node itself for node-wide tasks (`spawn_essential`: the broker stops, exit 1, as when
//! one of its child actors fails), or a callback (a partition's tasks fail their partition,
//! which its supervisor restarts). A task that returns is counted as an exit and logged at
//! debug: node-wide tasks end when the node stops.

use futures::FutureExt;
use std::future::Future;
use std::sync::OnceLock;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The latest node-wide task failure of this process: its number (counting from 1) and why;
/// `None` until one happens.
type Failure = Option<(u64, String)>;

fn node_failures() -> &'static watch::Sender<Failure> {
    static FAILURES: OnceLock<watch::Sender<Failure>> = OnceLock::new();
    FAILURES.get_or_init(|| watch::channel(None).0)
}

/// Node-wide task failures; the broker waits for one newer than any at its start. Process-wide:
/// with several brokers in one process (in-process tests) a failure stops all that run.
pub fn failures() -> watch::Receiver<Failure> {
    node_failures().subscribe()
}

/// Spawns `task`, named `name`; if it panics, `on_panic` gets why.
pub fn spawn_watched<F, P>(name: &'static str, task: F, on_panic: P) -> JoinHandle<()>
where
    F: Future<Output = ()> + Send + 'static,
    P: FnOnce(String) + Send + 'static,
{
    tokio::spawn(async move {
        match std::panic::AssertUnwindSafe(task).catch_unwind().await {
            Ok(()) => {
                metrics::counter!(crate::observability::TASK_EXITS, "task" => name, "how" => "exit").increment(1);
                tracing::debug!(task = name, "task ended");
            }
            Err(panic) => {
                metrics::counter!(crate::observability::TASK_EXITS, "task" => name, "how" => "panic").increment(1);
                let why = format!("task {name} panicked: {}", panic_text(&*panic));
                tracing::error!("{why}");
                on_panic(why);
            }
        }
    })
}

/// Spawns a node-wide task: its panic stops the node (see `failures`).
pub fn spawn_essential<F>(name: &'static str, task: F) -> JoinHandle<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    spawn_watched(name, task, |why| {
        node_failures().send_modify(|latest| {
            let n = latest.as_ref().map_or(1, |(n, _)| n + 1);
            *latest = Some((n, why));
        });
    })
}

/// A panic payload as text (panics carry a `&str` or a `String`).
fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_reaches_its_owner_and_an_exit_does_not() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        spawn_watched("test-panics", async { panic!("boom") }, move |why| {
            let _ = tx.send(why);
        })
        .await
        .expect("the watcher itself does not panic");
        assert_eq!(rx.await.expect("owner told"), "task test-panics panicked: boom");

        let (tx, rx) = tokio::sync::oneshot::channel::<String>();
        spawn_watched("test-exits", async {}, move |why| {
            let _ = tx.send(why);
        })
        .await
        .expect("the watcher itself does not panic");
        assert!(rx.await.is_err(), "an exit is not a failure");
    }

    #[tokio::test]
    async fn a_node_wide_panic_is_a_node_failure() {
        let mut failures = failures();
        let before = failures.borrow().as_ref().map(|(n, _)| *n);
        spawn_essential("test-essential", async { panic!("lost") })
            .await
            .expect("watched");
        let after = failures
            .wait_for(|f| f.as_ref().map(|(n, _)| *n) != before)
            .await
            .expect("sender lives in a static")
            .clone();
        assert!(after.is_some_and(|(_, why)| why.contains("test-essential")));
    }
}
