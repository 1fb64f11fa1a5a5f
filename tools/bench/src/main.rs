//! `raftstream-bench`: drives a Kafka-compatible broker with librdkafka and reports verified
//! throughput and latency. `run` for one workload, `scenarios` for the OpenMessaging-style set.

use clap::{Parser, Subcommand};
use raftstream_bench::{idle, report, runner, scenarios, Workload};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "raftstream-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one workload.
    Run {
        #[command(flatten)]
        workload: Workload,
        /// Name of the run (file names in --out).
        #[arg(long, default_value = "run")]
        name: String,
        /// Directory for the JSON and SVG.
        #[arg(long, default_value = "bench-out")]
        out: PathBuf,
    },
    /// Run the scenario set (each --runs times) and write medians to --out/summary.md.
    Scenarios {
        #[command(flatten)]
        workload: Workload,
        #[arg(long, default_value_t = 3)]
        runs: usize,
        #[arg(long, default_value = "bench-out")]
        out: PathBuf,
    },
    /// Measure the CPU cost of many idle partitions on running broker processes.
    Idle {
        #[command(flatten)]
        workload: idle::IdleWorkload,
        /// Where the JSON result goes.
        #[arg(long, default_value = "bench-out/idle.json")]
        out: PathBuf,
    },
    /// Rebuild summary.md/summary.json from the run JSON files in --out.
    Summarize {
        #[arg(long, default_value = "bench-out")]
        out: PathBuf,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Run { workload, name, out } => runner::run(&name, &workload).and_then(|r| {
            print!("{}", report::summary(&r));
            report::write(&out, &r)?;
            Ok(r.verification.passed())
        }),
        Cmd::Idle { workload, out } => idle::run(&workload).and_then(|r| {
            print!("{}", r.summary());
            if let Some(dir) = out.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&out, serde_json::to_vec_pretty(&r)?)?;
            Ok(true)
        }),
        Cmd::Summarize { out } => scenarios::summarize(&out).map(|rows| {
            print!("{}", scenarios::table(&rows));
            rows.iter().all(|r| r.all_verified)
        }),
        Cmd::Scenarios { workload, runs, out } => scenarios::run_all(&workload, runs, &out).map(|rows| {
            print!("{}", scenarios::table(&rows));
            rows.iter().all(|r| r.all_verified)
        }),
    };
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("FAILED: records were lost, duplicated, corrupted or invented");
            std::process::ExitCode::from(3)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
