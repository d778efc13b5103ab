//! slack-gateway: the only door from Slack into flamethread.
//!
//! Slack events (Socket Mode by default, signed HTTP requests as the alternative), slash commands,
//! button clicks and shared files come in; each is published to JetStream **before** Slack is
//! acknowledged, and nothing JetStream did not store is acknowledged (Slack then delivers it
//! again, and the event id as `Nats-Msg-Id` stores it once).
//!
//! - [`accept`]: what is kept (alerts from other bots, people's messages, commands, clicks, file
//!   shares) and what is not (this app's own messages, channels off the allow-list, housekeeping),
//!   as pure functions over Slack's JSON.
//! - `intake`: the one path from a payload to JetStream, shared by both transports.
//! - `socket_mode` / `http_events`: the two transports.
//! - `files`: the gateway's consumer that downloads shared files into the object store, so no
//!   other service needs the Slack token.

pub mod accept;
pub mod config;
mod files;
mod http_events;
mod intake;
mod socket_mode;

use std::{collections::BTreeSet, time::Duration};

use bus::ConsumerOptions;
use runtime::ServiceName;
use tokio_util::sync::CancellationToken;

pub use config::{FilesConfig, HttpConfig, Mode, SlackConfig};

pub const SERVICE: ServiceName = ServiceName {
    name: "slack-gateway",
    env_prefix: "SLACK_GATEWAY_",
    about: "The only door from Slack into flamethread: events, commands, clicks and shared files, each published to NATS before Slack is acknowledged.",
};

runtime::service_config! {
    /// The configuration (see `deploy/config/slack-gateway.example.toml` for every key and its default).
    pub struct Config, admin port 9101 {
        /// How Slack reaches the gateway, and the secrets (`[slack]`).
        pub slack: SlackConfig,
        /// Shared files (`[files]`).
        pub files: FilesConfig,
    }
}

/// Runs the service until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), runtime::Error> {
    let service_config = config.clone();
    runtime::serve(SERVICE, &service_config, shutdown, |context| async move {
        let slack_config = &config.slack;
        let client = slack::web_client(&slack_config.api_url)?;
        let Some((identity, status)) = slack::Identity::at_start(
            &client,
            &slack_config.bot_token,
            &context.readiness,
            &context.shutdown,
        )
        .await
        else {
            return Ok(());
        };
        tracing::info!(user = %identity.user_id, bot = ?identity.bot_id, team = %identity.team_id, "this app in Slack");
        let intake = intake::Intake {
            bus: context.bus.clone(),
            filter: accept::Filter {
                identity,
                channels: slack_config.channels.iter().cloned().collect::<BTreeSet<_>>(),
            },
            publish_deadline: slack_config.publish_deadline,
            rescue: intake::Rescue::default(),
            slack: slack::RawApi::new(
                slack::http_client(Duration::from_secs(5))?,
                &slack_config.api_url,
                slack_config.bot_token.clone(),
            ),
        };

        // One client (one connection pool) for `files.info` and the download.
        let files_http = slack::http_client(config.files.download_timeout)?;
        let fetcher = files::FileFetcher {
            bus: context.bus.clone(),
            slack: slack::RawApi::new(
                files_http.clone(),
                &slack_config.api_url,
                slack_config.bot_token.clone(),
            ),
            http: files_http,
            bot_token: slack_config.bot_token.clone(),
            config: config.files.clone(),
        };
        let mut tasks = runtime::Tasks::new(&context);
        tasks.consume(
            &proto::subjects::SLACK_GATEWAY_FILES,
            ConsumerOptions {
                concurrency: 4,
                handler_timeout: config.files.download_timeout * 3,
                ..ConsumerOptions::default()
            },
            fetcher,
            |fetcher, delivery| async move { fetcher.handle(delivery).await },
        );
        match slack_config.mode {
            Mode::SocketMode => {
                status.waiting("connecting to Slack in Socket Mode");
                let socket = socket_mode::SocketMode {
                    client,
                    app_token: slack_config.app_token.clone(),
                    intake,
                    status,
                };
                let shutdown = context.shutdown.clone();
                tasks.spawn("Socket Mode", async move {
                    socket.run(shutdown).await;
                    Ok(())
                });
            }
            Mode::Http => {
                let listen = slack_config.http.listen;
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .map_err(|err| anyhow::anyhow!("cannot listen on {listen} for Slack: {err}"))?;
                tracing::info!(addr = %listener.local_addr().unwrap_or(listen), "listening for Slack's requests");
                status.ready();
                let router = http_events::router(
                    intake,
                    &slack_config.signing_secret,
                    slack_config.http.max_body_bytes,
                );
                tasks.serve("the Slack listener", listener, router);
            }
        }
        tasks.run().await
    })
    .await
}
