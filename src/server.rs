//! A broker running in this process: what `main` runs, and what in-process tests start (on
//! port 0, with the bound addresses returned by `Server::addrs`, not read from log lines).

use crate::actors::ask::ask;
use crate::actors::broker::{Broker, BrokerArgs, BrokerMsg};
use crate::config::Config;
use parking_lot::Mutex;
use ractor::ActorRef;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::task::JoinHandle;

/// Where a started broker listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundAddrs {
    /// The first Kafka listener's port.
    pub kafka: SocketAddr,
    /// Every Kafka listener's port.
    pub listeners: Vec<(crate::security::SecurityProtocol, SocketAddr)>,
    /// `/health/*` and `/metrics`, unless `http.listen` is empty.
    pub http: Option<SocketAddr>,
}

/// A started broker.
pub struct Server {
    broker: ActorRef<BrokerMsg>,
    handle: JoinHandle<()>,
    addrs: BoundAddrs,
    node_id: i32,
    cluster_id: String,
    failure: Arc<Mutex<Option<String>>>,
    shutdown_timeout: Duration,
}

impl Server {
    /// Starts a broker with `config` (its data dir claimed for its node id) and returns once it
    /// serves Kafka.
    pub async fn start(config: Config) -> anyhow::Result<Server> {
        let identity = crate::storage::node_meta::load_or_create(&config.data_dir, config.node_id)?;
        let failure = Arc::new(Mutex::new(None));
        let bound = Arc::new(OnceLock::new());
        let args = BrokerArgs {
            config: Arc::new(config.clone()),
            identity,
            failure: failure.clone(),
            metrics: crate::observability::install(),
            bound: bound.clone(),
        };
        let (broker, handle) = ractor::Actor::spawn(None, Broker, args)
            .await
            .map_err(|e| anyhow::anyhow!("broker failed to start: {e}"))?;
        let (addrs, cluster_id) = bound
            .get()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("the broker reported no address"))?;
        Ok(Server {
            broker,
            handle,
            addrs,
            node_id: config.node_id,
            cluster_id,
            failure,
            shutdown_timeout: Duration::from_millis(config.shutdown_timeout_ms),
        })
    }

    /// Where it listens.
    pub fn addrs(&self) -> BoundAddrs {
        self.addrs.clone()
    }

    /// Its node id.
    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// The cluster it belongs to.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// The broker actor (debug hooks).
    pub fn broker(&self) -> &ActorRef<BrokerMsg> {
        &self.broker
    }

    /// Shuts down gracefully; `Err` if the broker had stopped on a failure.
    pub async fn stop(self) -> anyhow::Result<()> {
        let timeout = self.shutdown_timeout;
        // Every step inside is bounded by `timeout`; this outer bound covers the sum.
        let shutdown = |r: tokio::sync::oneshot::Sender<()>| BrokerMsg::Shutdown(r.into());
        let _ = ask(&self.broker, shutdown, Some(timeout * 4)).await;
        self.stopped().await
    }

    /// Waits until the broker stops on its own (a failure, or a shutdown asked elsewhere).
    pub async fn stopped(self) -> anyhow::Result<()> {
        let _ = self.handle.await;
        match self.failure.lock().take() {
            Some(r) => Err(anyhow::anyhow!("broker stopped: {r}")),
            None => Ok(()),
        }
    }
}
