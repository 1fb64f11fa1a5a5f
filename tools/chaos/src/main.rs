//! `raftstream-chaos`: runs raftstream clusters under faults and checks that no acknowledged
//! write is lost (docs/reliability.md). Needs root (network namespaces, nftables).
//!
//!   raftstream-chaos short                 every named scenario once, fixed seeds (CI)
//!   raftstream-chaos scenario partition    one named scenario
//!   raftstream-chaos long --duration-s 600 random faults; the seed is printed for replay
//!   raftstream-chaos replay chaos-out/long-7/scenario.json   the exact schedule of an earlier run

use clap::{Args, Parser, Subcommand};
use raftstream_chaos::network::NetworkMode;
use raftstream_chaos::run::{run, RunOptions};
use raftstream_chaos::scenarios::{self, Scenario};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "raftstream-chaos", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
    #[command(flatten)]
    opts: Opts,
}

#[derive(Subcommand)]
enum Cmd {
    /// Every named scenario once with fixed seeds (the CI schedule).
    Short,
    /// One named scenario: leader-crash, follower-crash, partition, pause, rolling-restart.
    Scenario {
        name: String,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Runs the schedule a run wrote (`<out>/<scenario>/scenario.json`) again.
    Replay { file: PathBuf },
    /// Checks a finished run's directory again (history, final reads, replica reads).
    Check { dir: PathBuf },
    /// Random faults for a while; without --seed a random seed (printed).
    Long {
        #[arg(long, default_value_t = 600)]
        duration_s: u64,
        #[arg(long)]
        seed: Option<u64>,
    },
}

#[derive(Args)]
struct Opts {
    /// The raftstream binary (default: next to this one).
    #[arg(long, global = true)]
    bin: Option<PathBuf>,
    /// Directory for histories, summaries and pictures.
    #[arg(long, global = true, default_value = "chaos-out")]
    out: PathBuf,
    #[arg(long, global = true, default_value_t = 3)]
    nodes: i32,
    #[arg(long, global = true, default_value_t = 3)]
    partitions: i32,
    #[arg(long, global = true, default_value_t = 3)]
    producers: u32,
    /// Records per second per producer.
    #[arg(long, global = true, default_value_t = 100)]
    rate: u32,
    /// Run the deliberately broken broker (debug builds only): acks=all answered as soon as
    /// the leader's Raft core takes the batch, before any fsync or majority commit. The run
    /// then succeeds only if the checker finds the damage.
    #[arg(long, global = true)]
    broken_ack_before_commit: bool,
    /// The nodes' log filter (RUST_LOG) instead of the default, to look into a finding, e.g.
    /// `info,openraft=warn,raftstream=debug`; each node's log is nodeN.log in the run dir.
    #[arg(long, global = true)]
    node_log: Option<String>,
    /// Node network: namespaces (real faults; needs root), the fault-injecting proxy on
    /// loopback, or auto (namespaces where they can be made).
    #[arg(long, global = true, value_enum, default_value = "auto")]
    network: NetworkMode,
}

fn main() -> anyhow::Result<()> {
    // librdkafka's own complaints during faults (refused connections, timeouts) are expected;
    // the history has what matters.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,librdkafka=off,rdkafka=off"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .init();
    let cli = Cli::parse();
    let broken = cli.opts.broken_ack_before_commit;
    let opts = run_options(cli.opts)?;
    let list: Vec<Scenario> = match cli.command {
        Cmd::Check { dir } => {
            let summary = raftstream_chaos::run::check_dir(&dir)?;
            println!("== {}", dir.display());
            report(&summary);
            anyhow::ensure!(summary.passed(), "checker failed");
            return Ok(());
        }
        command => scenarios_of(command)?,
    };
    let mut failed = Vec::new();
    for scenario in &list {
        println!(
            "== {} (seed {}): {} steps",
            scenario.name,
            scenario.seed,
            scenario.steps.len()
        );
        let summary = run(&opts, scenario)?;
        report(&summary);
        if !summary.passed() {
            failed.push(scenario.name.clone());
        }
    }
    if !broken {
        anyhow::ensure!(failed.is_empty(), "checker failed for {failed:?}");
        println!("all {} scenario(s) passed", list.len());
    } else {
        anyhow::ensure!(
            failed.len() == list.len(),
            "the broken build passed the checker in {} scenario(s)",
            list.len() - failed.len()
        );
        println!("the checker caught the broken build in every scenario");
    }
    Ok(())
}

/// How each run starts its nodes, from the command line.
fn run_options(o: Opts) -> anyhow::Result<RunOptions> {
    let bin = match o.bin {
        Some(b) => b,
        None => std::env::current_exe()?.with_file_name("raftstream"),
    };
    let mut node_env = Vec::new();
    if o.broken_ack_before_commit {
        node_env.push(("RS_TEST_BROKEN_ACK_BEFORE_COMMIT".to_string(), "1".to_string()));
    }
    if let Some(filter) = &o.node_log {
        node_env.push(("RUST_LOG".to_string(), filter.clone()));
    }
    Ok(RunOptions {
        bin,
        out: o.out,
        nodes: o.nodes,
        partitions: o.partitions,
        producers: o.producers,
        rate_per_producer: o.rate,
        node_env,
        network: o.network,
    })
}

/// The scenarios a command runs.
fn scenarios_of(command: Cmd) -> anyhow::Result<Vec<Scenario>> {
    Ok(match command {
        Cmd::Short => scenarios::NAMES
            .iter()
            .enumerate()
            .map(|(i, n)| scenarios::named(n, i as u64 + 1).expect("named scenario"))
            .collect(),
        Cmd::Scenario { name, seed } => vec![scenarios::named(&name, seed)
            .ok_or_else(|| anyhow::anyhow!("no scenario {name:?}; known: {:?}", scenarios::NAMES))?],
        Cmd::Replay { file } => vec![serde_json::from_slice(&std::fs::read(&file)?)?],
        Cmd::Long { duration_s, seed } => {
            let seed = seed.unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
            println!("long run, seed {seed} (replay: raftstream-chaos long --duration-s {duration_s} --seed {seed})");
            vec![scenarios::long(duration_s * 1000, seed)]
        }
        Cmd::Check { .. } => Vec::new(),
    })
}

/// Prints a run's summary (and the first examples of what failed).
fn report(summary: &raftstream_chaos::checker::Summary) {
    println!(
        "   acked {} of {} invoked ({} indeterminate), {} records and {} replicas checked, {} reads, {} commits",
        summary.acked,
        summary.invoked,
        summary.failed,
        summary.records_checked,
        summary.replicas_checked,
        summary.reads,
        summary.commits
    );
    println!(
        "   lost {} phantom {} divergent {} duplicated {} reordered {} group-skipped {} group-reread {} \
         ({} re-reads in all) replica-short {}; longest unavailable {} ms ({} windows)",
        summary.lost.count,
        summary.phantom.count,
        summary.divergent.count,
        summary.duplicated.count,
        summary.reordered.count,
        summary.group_skipped.count,
        summary.group_reread.count,
        summary.group_rereads,
        summary.replica_short.count,
        summary.longest_unavailable_ms(),
        summary.unavailable.len()
    );
    for (fault, lengths) in &summary.availability.by_fault {
        let mut sorted = lengths.clone();
        sorted.sort_unstable();
        let at = |q: usize| {
            sorted
                .get((sorted.len().saturating_sub(1) * q) / 100)
                .copied()
                .unwrap_or(0)
        };
        println!(
            "   unavailable under {fault}: {} windows, median {} ms, p90 {} ms, longest {} ms",
            sorted.len(),
            at(50),
            at(90),
            at(100)
        );
    }
    if !summary.passed() {
        for f in [
            &summary.lost,
            &summary.divergent,
            &summary.duplicated,
            &summary.reordered,
            &summary.group_skipped,
            &summary.group_reread,
            &summary.availability.over_bound,
        ] {
            for e in f.examples.iter().take(5) {
                println!("   ! {e}");
            }
        }
    }
}
