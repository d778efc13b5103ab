//! The `flamethread-demo` binary; everything it does is in the library.

use std::net::SocketAddr;

use clap::Parser;
use tokio_util::sync::CancellationToken;

/// A checkout service with a CPU hot spot, for flamethread to alert on and profile.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Where to serve /metrics, /debug/pprof/profile, /checkout and /campaign/{start,stop}.
    #[arg(long, default_value = "127.0.0.1:6060")]
    listen: SocketAddr,
    /// Checkout worker threads; during a campaign each can fill a core.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Start with the campaign (the hot spot) running.
    #[arg(long)]
    campaign: bool,
    /// Length of a campaign's coupon codes (each extra character doubles the work).
    #[arg(long, default_value_t = 22)]
    coupon_length: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _telemetry = telemetry::TelemetryBuilder::new("checkout")
        .otlp_from_env()?
        .init()?;
    let config = demo_app::Config {
        listen: args.listen,
        workers: args.workers,
        campaign: args.campaign,
        coupon_length: args.coupon_length,
    };
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    tracing::info!(listen = %config.listen, "flamethread-demo serving");
    let demo = demo_app::Demo::start(&config);
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        on_signal.cancel();
    });
    demo_app::serve(listener, demo, shutdown).await?;
    Ok(())
}
