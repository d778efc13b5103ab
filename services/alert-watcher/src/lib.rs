//! alert-watcher: decides which Slack messages are alerts, what they concern and whether they
//! are new, and turns them into incidents (`incident.opened/updated/resolved`, state in the
//! incident KV bucket). It also turns commands and clicks into requests (`/profile` into
//! `profile.request`), since it holds the Alertmanager credentials a silence needs.
//!
//! - [`recognize`]: which messages are alerts, read into normalized alerts (pure).
//! - [`changes`]: which other messages announce a change (Argo CD, Flux, `[[changes]]` rules),
//!   recorded on `change.recorded` (pure).
//! - [`correlate`]: fingerprints and the open / update / resolve decision (pure).
//! - [`alertmanager_api`]: label recovery for Alertmanager's keyless default template.
//! - `watcher`: the handler, with the incident state in KV under compare-and-set.
//! - [`webhook`]: Alertmanager's webhook receiver, joined to its Slack message by group.
//! - [`commands`]: slash commands and picker choices into requests or answers (pure).
//! - [`actions`]: the reply's buttons: who may press them, silences, profile requests (pure).
//! - `interactions`: the consumer of commands, clicks and shared files.
//! - [`sandbox_offer`]: shared scripts offered a sandbox run that only their uploader accepts
//!   (pure).

pub mod actions;
pub mod alertmanager_api;
pub mod changes;
pub mod commands;
mod config;
pub mod correlate;
mod interactions;
mod live_limits;
pub mod recognize;
pub mod sandbox_offer;
mod watcher;
pub mod webhook;

use bus::{ConsumerOptions, Delivery};
use proto::{SlackMessage, slack::SlackInteraction};
use runtime::ServiceName;
use tokio_util::sync::CancellationToken;

pub use config::{
    ActionsConfig, AlertmanagerConfig, ChangeRules, IncidentsConfig, Rules, SandboxApprovalConfig,
    StormConfig,
};

pub const SERVICE: ServiceName = ServiceName {
    name: "alert-watcher",
    env_prefix: "ALERT_WATCHER_",
    about: "Decides which Slack messages are alerts and turns them into incidents; turns /profile, /flamethread, mentions and clicks into requests, and makes silences in Alertmanager.",
};

runtime::service_config! {
    /// The configuration (see `deploy/config/alert-watcher.example.toml` for every key and its default).
    pub struct Config, admin port 9102 {
        /// Where to recover labels the Slack message leaves out (`[alertmanager]`).
        pub alertmanager: AlertmanagerConfig,
        /// How alerts become incidents (`[incidents]`).
        pub incidents: IncidentsConfig,
        /// How storms of distinct alerts group into few incidents (`[storm]`).
        pub storm: StormConfig,
        /// Operator-defined formats (`[[rules]]`).
        pub rules: Rules,
        /// Operator-defined formats of change messages (`[[changes]]`).
        pub changes: ChangeRules,
        /// Who may accept a sandbox run besides the script's uploader (`[sandbox]`).
        pub sandbox: SandboxApprovalConfig,
        /// Who may press the reply's buttons, and for how long a silence lasts (`[actions]`).
        pub actions: ActionsConfig,
    }
}

/// Runs the service until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), runtime::Error> {
    let service_config = config.clone();
    runtime::serve(SERVICE, &service_config, shutdown, |context| async move {
        let alertmanager = if config.alertmanager.url.is_empty() {
            None
        } else {
            Some(alertmanager_api::AlertmanagerApi::new(
                &config.alertmanager.url,
                config.alertmanager.timeout,
                &config.alertmanager.auth,
            )?)
        };
        let alertmanager_for_actions = alertmanager.clone();
        let alertmanager_for_reconciling = alertmanager.clone();
        let watcher = std::sync::Arc::new(watcher::Watcher {
            bus: context.bus.clone(),
            store: context.bus.incident_store().await?,
            alertmanager,
            windows: correlate::Windows {
                lookback: config.incidents.lookback,
                baseline: config.incidents.baseline,
            },
            service_labels: config.incidents.service_labels.clone(),
            rules: config.rules.compile()?,
            change_rules: config.changes.compile()?,
            storm: config.storm.rules(),
        });
        let mut tasks = runtime::Tasks::new(&context);
        if let Some(listen) = config.alertmanager.webhook_listen {
            let listener = tokio::net::TcpListener::bind(listen).await.map_err(|err| {
                anyhow::anyhow!("cannot listen on {listen} for Alertmanager's webhook: {err}")
            })?;
            tracing::info!(addr = %listen, "receiving Alertmanager's webhook on /alertmanager");
            let auth = config.alertmanager.webhook_auth().ok_or_else(|| {
                anyhow::anyhow!("alertmanager.webhook_listen needs webhook credentials")
            })?;
            tasks.serve(
                "the webhook receiver",
                listener,
                webhook::router(watcher.clone(), auth),
            );
        }
        tasks.consume(
            &proto::subjects::ALERT_WATCHER_MESSAGES,
            ConsumerOptions::default(),
            watcher.clone(),
            |watcher, delivery: Delivery<SlackMessage>| async move {
                watcher.on_message(delivery.message).await
            },
        );
        let interactions = std::sync::Arc::new(interactions::Interactions {
            bus: context.bus.clone(),
            store: context.bus.incident_store().await?,
            alertmanager: alertmanager_for_actions,
            approvers: config.sandbox.approvers.clone(),
            actions: config.actions.clone(),
            live_limits: live_limits::LiveLimits::new(&config.actions),
        });
        tasks.consume(
            &proto::subjects::ALERT_WATCHER_INTERACTIONS,
            ConsumerOptions::default(),
            interactions,
            |interactions, delivery: Delivery<SlackInteraction>| async move {
                interactions.on_interaction(delivery.message).await
            },
        );
        let stale_after = config.incidents.stale_after;
        let every = config.incidents.sweep_every;
        if !every.is_zero() {
            let reconcile = alertmanager_for_reconciling;
            let (watcher, shutdown) = (watcher.clone(), context.shutdown.clone());
            let grace = config.alertmanager.reconcile_grace;
            tasks.spawn("the sweep of open incidents", async move {
                let mut ticks = tokio::time::interval(every);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = ticks.tick() => {}
                        () = shutdown.cancelled() => return Ok(()),
                    }
                    if let Err(err) = watcher.sweep(reconcile.as_ref(), grace, stale_after).await {
                        tracing::warn!(error = %err, "cannot look over the open incidents");
                    }
                }
            });
        }
        tasks.run().await
    })
    .await
}
