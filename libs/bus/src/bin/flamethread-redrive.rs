//! `flamethread-redrive`: replays dead letters after their cause is fixed (see `bus::redrive`).
//!
//! ```sh
//! flamethread-redrive --url nats://127.0.0.1:4222 --subject ft.incident --dry-run
//! ```

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool prints its answer"
)]

use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "Replay flamethread's dead letters on their original subjects")]
struct Args {
    /// NATS server URL(s).
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    url: String,
    /// flamethread's subject prefix.
    #[arg(long, default_value = proto::subjects::DEFAULT_PREFIX)]
    prefix: String,
    /// A token, if the server wants one.
    #[arg(long, env = "NATS_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A `.creds` file, if the server wants one.
    #[arg(long, env = "NATS_CREDS")]
    creds: Option<std::path::PathBuf>,
    /// Only dead letters whose original subject starts with this (e.g. `ft.incident`).
    #[arg(long, default_value = "")]
    subject: String,
    /// Say what would be replayed, change nothing.
    #[arg(long)]
    dry_run: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let config = bus::NatsConfig {
        url: args.url,
        prefix: args.prefix,
        token: args.token.map(bus::config::Secret::from),
        credentials_file: args.creds,
        ..bus::NatsConfig::default()
    };
    if let Err(err) = config.validate() {
        eprintln!("{err}");
        return std::process::ExitCode::from(64);
    }
    let result = async {
        let bus = bus::Bus::connect(&config, "flamethread-redrive").await?;
        bus::redrive::redrive(&bus, &args.subject, args.dry_run).await
    }
    .await;
    match result {
        Ok(done) => {
            let verb = if args.dry_run {
                "would replay"
            } else {
                "replayed"
            };
            for (sequence, subject) in &done.replayed {
                println!("{verb} dead letter {sequence} on {subject}");
            }
            for (sequence, why) in &done.left {
                println!("left dead letter {sequence}: {why}");
            }
            println!("{verb} {}, left {}", done.replayed.len(), done.left.len());
            std::process::ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{err}");
            std::process::ExitCode::from(1)
        }
    }
}
