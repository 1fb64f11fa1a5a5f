//! `raftstream`: serve Kafka with defaults, or with a config file, env vars and flags.

use clap::{CommandFactory, FromArgMatches, Parser};
use raftstream::actors::broker::BrokerMsg;
use raftstream::config::{Config, Overrides};
use raftstream::server::Server;
use std::path::PathBuf;

/// A Kafka-compatible streaming broker; every partition is replicated by its own Raft group.
#[derive(Parser, Debug)]
#[command(name = "raftstream", version)]
struct Cli {
    /// TOML config file (keys as listed below).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory [default: ./data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Kafka listener [default: 0.0.0.0:9092].
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// Address given to clients [default: derived from --listen].
    #[arg(long, value_name = "HOST:PORT")]
    advertise: Option<String>,
    /// Metrics and health HTTP listener [default: 0.0.0.0:9644].
    #[arg(long, value_name = "HOST:PORT")]
    http_listen: Option<String>,
    /// This node's id [default: 1].
    #[arg(long, value_name = "N")]
    node_id: Option<i32>,
    /// Listener for other nodes' Raft traffic [default: none, a single node].
    #[arg(long, value_name = "HOST:PORT")]
    cluster_listen: Option<String>,
    /// Every node of the cluster with its cluster address, this one included.
    #[arg(long, value_name = "ID@HOST:PORT,...")]
    peers: Option<String>,
}

fn main() -> std::process::ExitCode {
    let matches = Cli::command().after_help(Config::describe_defaults()).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let overrides = Overrides {
        data_dir: cli.data_dir,
        listen: cli.listen,
        advertise: cli.advertise,
        http_listen: cli.http_listen,
        node_id: cli.node_id,
        cluster_listen: cli.cluster_listen,
        peers: cli.peers,
    };
    let config = match Config::load(cli.config.as_deref(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("invalid configuration: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    // The shutdown bounds each of its steps by this; four times it bounds the whole.
    let shutdown_bound = 4 * std::time::Duration::from_millis(config.shutdown_timeout_ms);
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    // A cluster node may wait long for its peers while starting: a stop request then just ends
    // the process (nothing was served yet; what is on disk was fsynced).
    let server = tokio::select! {
        started = Server::start(config) => started?,
        _ = sigterm.recv() => {
            tracing::info!("stopped while starting");
            return Ok(());
        }
    };
    #[cfg(debug_assertions)]
    let mut sigusr1 = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())?;
    let broker = server.broker().clone();
    let stopped = server.stopped();
    tokio::pin!(stopped);
    loop {
        #[cfg(debug_assertions)]
        let crash = sigusr1.recv();
        #[cfg(not(debug_assertions))]
        let crash = std::future::pending::<Option<()>>();
        tokio::select! {
            result = &mut stopped => return result,
            _ = sigterm.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = crash => {
                #[cfg(debug_assertions)]
                let _ = broker.send_message(BrokerMsg::CrashPartitions);
            }
        }
    }
    tracing::info!("shutting down");
    let (reply, _) = tokio::sync::oneshot::channel();
    let _ = broker.send_message(BrokerMsg::Shutdown(reply.into()));
    tokio::time::timeout(shutdown_bound, stopped).await.unwrap_or(Ok(()))
}
