//! The Slack emulator as a program: `slack-emulator [ADDR]` (default `127.0.0.1:3001`).

use std::net::SocketAddr;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .as_deref()
        .unwrap_or("127.0.0.1:3001")
        .parse()?;
    let running = slack_emulator::start(slack_emulator::EmulatorConfig::default(), addr).await?;
    eprintln!(
        "slack emulator: Web API at {}, control API at {}",
        running.api_base(),
        running.control_base()
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
