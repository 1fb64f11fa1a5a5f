//! The HTTP endpoint: `/metrics` (Prometheus text), `/health/live` (the process runs) and
//! `/health/ready` (the node serves Kafka, and every partition it hosts has recovered and has
//! a leader), on
//! `http.listen`, apart from the Kafka port.

use crate::actors::partition::registry::Registry;
use crate::storage::meta_sm::ClusterMeta;
use crate::types::TopicPartition;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use parking_lot::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;

/// What readiness is judged from.
#[derive(Clone)]
pub struct HttpState {
    /// This node (readiness counts the partitions it hosts).
    pub node_id: i32,
    pub registry: Arc<Registry>,
    pub meta: Arc<RwLock<Arc<ClusterMeta>>>,
    /// The process's metrics recorder, if this process installed one.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Set once the broker serves Kafka (a cluster node may wait long for its peers first).
    pub started: Arc<AtomicBool>,
}

/// Serves `/health/*` and `/metrics` on `listener` until the task is aborted (shutdown). A
/// node-wide task: a panic in it stops the node (`crate::tasks`).
pub fn spawn_http(listener: TcpListener, state: HttpState) -> tokio::task::JoinHandle<()> {
    let app = Router::new()
        .route("/health/live", get(|| async { "live\n" }))
        .route("/health/ready", get(ready))
        .route("/metrics", get(render_metrics))
        .with_state(state);
    crate::tasks::spawn_essential("http-server", async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "http server stopped");
        }
    })
}

/// Partitions hosted here that are not yet serving (recovering, or without a leader).
pub fn not_ready(state: &HttpState) -> Vec<TopicPartition> {
    let meta = state.meta.read();
    let me = state.node_id;
    meta.topics
        .values()
        .flat_map(|t| {
            (0..t.partitions)
                .filter(move |p| t.hosts_of(*p, me).contains(&me))
                .map(move |p| TopicPartition {
                    topic: t.name.clone(),
                    partition: p,
                })
        })
        .filter(|tp| state.registry.get(tp).is_none_or(|h| h.leadership().0.is_none()))
        .collect()
}

async fn render_metrics(State(state): State<HttpState>) -> (StatusCode, String) {
    let Some(handle) = &state.metrics else {
        return (
            StatusCode::NOT_FOUND,
            "metrics are not recorded in this process\n".into(),
        );
    };
    // Gauges that are cheaper to compute at scrape time than to keep current.
    let all = state.registry.all();
    let leaders = all.iter().filter(|(_, h)| h.leadership().0 == Some(h.node_id)).count();
    metrics::gauge!(crate::observability::PARTITIONS).set(all.len() as f64);
    metrics::gauge!(crate::observability::LEADERS).set(leaders as f64);
    handle.run_upkeep();
    (StatusCode::OK, handle.render())
}

async fn ready(State(state): State<HttpState>) -> (StatusCode, String) {
    if !state.started.load(Ordering::Acquire) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "starting: waiting for the cluster's nodes\n".into(),
        );
    }
    let waiting = not_ready(&state);
    if waiting.is_empty() {
        (StatusCode::OK, "ready\n".into())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{} partition(s) recovering\n", waiting.len()),
        )
    }
}
