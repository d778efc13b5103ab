//! `flamethread-load`: drives the whole pipeline through the Slack emulator and prints the
//! figures (see the library's docs, and tests/load/run.sh for the runs in BENCHMARKS.md).

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a load harness reports on the terminal"
)]

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::Parser;
use load::{
    Options,
    faults::{Fault, Target},
    plan::Shape,
    stack::{Paths, Topology},
};

/// Alert storms through the Slack emulator into the five services: latency from alert posted to
/// reply posted, and each service's memory.
#[derive(Debug, Parser)]
#[command(name = "flamethread-load")]
struct Args {
    /// Distinct alerts (each its own service, incident and reply).
    #[arg(long, default_value_t = 30)]
    alerts: usize,
    /// Notifications posted in all (the rest of them repeat alerts already firing).
    #[arg(long, default_value_t = 3000)]
    messages: usize,
    /// Over how many seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// The distinct alerts first fire within this many seconds of the start (default: the whole
    /// run, a steady trickle of new alerts; a few seconds make a burst).
    #[arg(long)]
    introduce_within: Option<u64>,
    /// Alerts go round-robin to this many channels.
    #[arg(long, default_value_t = 1)]
    channels: usize,
    /// Run NATS as a 3-node JetStream cluster on loopback, every stream, bucket and the object
    /// store at 3 replicas.
    #[arg(long)]
    cluster: bool,
    /// Processes of each service.
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// Kill the cluster's meta leader this many seconds into the storm (needs --cluster).
    #[arg(long)]
    kill_meta_leader_at: Option<u64>,
    /// Kill the leader of the stream Slack's messages enter this many seconds into the storm
    /// (needs --cluster).
    #[arg(long)]
    kill_stream_leader_at: Option<u64>,
    /// How long a killed node stays down before it is restarted.
    #[arg(long, default_value = "6s", value_parser = humantime::parse_duration)]
    down_for: Duration,
    /// Where the release binaries of the five services are.
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// Where the services' logs go.
    #[arg(long, default_value = "target/load")]
    logs: PathBuf,
    /// How long after the last post the replies may take.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    reply_timeout: Duration,
    /// How often threads are read for the profile in the reply.
    #[arg(long, default_value = "250ms", value_parser = humantime::parse_duration)]
    poll: Duration,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let mut faults: Vec<Fault> = [
        (args.kill_meta_leader_at, Target::MetaLeader),
        (args.kill_stream_leader_at, Target::SlackStreamLeader),
    ]
    .into_iter()
    .filter_map(|(at, target)| {
        Some(Fault {
            target,
            at: Duration::from_secs(at?),
            down_for: args.down_for,
        })
    })
    .collect();
    faults.sort_by_key(|fault| fault.at);
    let options = Options {
        shape: Shape {
            alerts: args.alerts,
            messages: args.messages,
            over: Duration::from_secs(args.seconds),
            introduce_within: Duration::from_secs(args.introduce_within.unwrap_or(args.seconds)),
            channels: args.channels,
        },
        topology: Topology {
            cluster: args.cluster,
            replicas: args.replicas,
        },
        faults,
        paths: Paths {
            bin_dir: args.bin_dir,
            logs: args.logs,
        },
        reply_timeout: args.reply_timeout,
        poll: args.poll,
    };
    match load::run(options).await {
        Ok(report) => {
            println!("{report}");
            if report.is_clean() {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "flamethread-load: not every alert got exactly one reply with its profile, \
                     or something was dead-lettered"
                );
                ExitCode::FAILURE
            }
        }
        Err(err) => {
            eprintln!("flamethread-load: {err:#}");
            ExitCode::from(2)
        }
    }
}
