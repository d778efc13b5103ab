//! remediation-poster: the only service that writes to Slack. It turns incidents, evidence,
//! sandbox results and post requests into one reply per incident (or request), posted under the
//! alert and then updated in place as more arrives, with reactions on the alert (eyes when seen,
//! a check mark when resolved) and ephemeral answers through `response_url`s.
//!
//! - `record`: the reply's state in the reply KV bucket, and how messages merge into it (pure).
//! - [`diagnose`]: declarative rules from evidence to a diagnosis, facts and remediations (pure).
//! - `render`: Block Kit and the text fallback, inside Slack's limits (pure).
//! - `home`: App Home, from profile-fetcher's apps and the reply records, drawn by
//!   `render::home` and shown with `views.publish`.
//! - `poster`: compare-and-set on the record, claims so that two replicas post once, pacing and
//!   `Retry-After`, and re-rendering until Slack shows the latest content.

mod config;
pub mod diagnose;
mod home;
mod poster;
pub mod record;
pub mod render;

use std::{num::NonZeroU32, sync::Arc};

use bus::{ConsumerOptions, Delivery, HandlerError};
use proto::{Evidence, IncidentEvent, PostRequest, SandboxResult};
use runtime::ServiceName;
use tokio_util::sync::CancellationToken;

pub use config::{DiagnosisConfig, PostingConfig, SlackConfig};

use proto::keys::reply;

use crate::poster::Poster;

pub const SERVICE: ServiceName = ServiceName {
    name: "remediation-poster",
    env_prefix: "REMEDIATION_POSTER_",
    about: "The only service that writes to Slack: one reply per incident in the alert's thread, updated as evidence arrives, with a diagnosis and buttons.",
};

runtime::service_config! {
    /// The configuration (see `deploy/config/remediation-poster.example.toml` for every key and its default).
    pub struct Config, admin port 9105 {
        /// Slack's Web API and the bot token (`[slack]`).
        pub slack: SlackConfig,
        /// Pacing and coordination between replicas (`[posting]`).
        pub posting: PostingConfig,
        /// Diagnosis rules and the trace link (`[diagnosis]`).
        pub diagnosis: DiagnosisConfig,
    }
}

/// Runs the service until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), runtime::Error> {
    let service_config = config.clone();
    runtime::serve(SERVICE, &service_config, shutdown, |context| async move {
        let web = slack::web_client(&config.slack.api_url)?;
        let Some((identity, status)) = slack::Identity::at_start(
            &web,
            &config.slack.bot_token,
            &context.readiness,
            &context.shutdown,
        )
        .await
        else {
            return Ok(());
        };
        status.ready();

        let api = slack::RawApi::new(
            slack::http_client(config.slack.request_timeout)?,
            &config.slack.api_url,
            config.slack.bot_token.clone(),
        );
        let posting = &config.posting;
        let pictures = if posting.pictures {
            Some(poster::PictureStore(context.bus.blob_store().await?))
        } else {
            None
        };
        let poster = Arc::new(
            Poster::new(
                context.bus.reply_store().await?,
                api,
                identity,
                NonZeroU32::new(posting.posts_per_second).unwrap_or(NonZeroU32::MIN),
                NonZeroU32::new(posting.burst).unwrap_or(NonZeroU32::MIN),
                posting.claim_timeout,
                render::View {
                    rules: diagnose::RuleSet::new(config.diagnosis.rules.clone())?,
                    trace_url: config.diagnosis.trace_url.clone(),
                    evidence_deadline: config.diagnosis.evidence_deadline,
                    silence_for: config.diagnosis.silence_for,
                    chart_blocks: posting.chart_blocks,
                },
            )
            .with_pictures(pictures),
        );
        let options = ConsumerOptions {
            concurrency: posting.concurrency,
            ..ConsumerOptions::default()
        };
        let mut tasks = runtime::Tasks::new(&context);
        tasks.consume(
            &proto::subjects::REMEDIATION_POSTER_HOME,
            options.clone(),
            poster.clone(),
            |poster, delivery: Delivery<proto::HomeRequest>| async move {
                poster.on_home(delivery.message).await
            },
        );
        tasks.consume(
            &proto::subjects::REMEDIATION_POSTER_INCIDENTS,
            options.clone(),
            poster.clone(),
            |poster, delivery: Delivery<IncidentEvent>| on_incident(poster, delivery.message),
        );
        tasks.consume(
            &proto::subjects::REMEDIATION_POSTER_EVIDENCE,
            options.clone(),
            poster.clone(),
            |poster, delivery: Delivery<Evidence>| async move {
                on_evidence(&poster, delivery.message).await
            },
        );
        tasks.consume(
            &proto::subjects::REMEDIATION_POSTER_SANDBOX,
            options.clone(),
            poster.clone(),
            |poster, delivery: Delivery<SandboxResult>| async move {
                let result = delivery.message;
                poster
                    .apply(
                        &reply::key(reply::Kind::Sandbox, &result.request_id),
                        |record| record.merge_sandbox(&result),
                    )
                    .await
            },
        );
        tasks.consume(
            &proto::subjects::REMEDIATION_POSTER_POSTS,
            options,
            poster,
            |poster, delivery: Delivery<PostRequest>| async move {
                let (post, sequence) = (delivery.message, delivery.stream_sequence);
                // A button's progress goes where its answer will land, to be replaced there in
                // place.
                let key = match (&post.stands_for, &post.incident_id) {
                    (Some(_), Some(incident)) => reply::key(reply::Kind::Incident, &incident.0),
                    (Some(request), None) => reply::key(reply::Kind::ProfileRequest, request),
                    (None, _) => reply::key(
                        reply::Kind::Post,
                        post.reply_key.as_deref().unwrap_or(&post.post_id),
                    ),
                };
                poster
                    .apply(&key, |record| record.merge_post(&post, sequence))
                    .await
            },
        );
        tasks.run().await
    })
    .await
}

async fn on_incident(poster: Arc<Poster>, event: IncidentEvent) -> Result<(), HandlerError> {
    let trace_id = telemetry::propagation::trace_id(&tracing::Span::current());
    let key = reply::key(reply::Kind::Incident, &event.incident.id.0);
    poster
        .apply(&key, |record| {
            record.merge_incident(&event, trace_id.as_deref())
        })
        .await?;
    if event.change == proto::IncidentChange::Opened {
        // Past the deadline, a reply still missing evidence says which (kept in memory: a
        // restart before then only leaves "gathering…" until the evidence comes).
        let deadline = poster.view.evidence_deadline;
        tokio::spawn(async move {
            tokio::time::sleep(deadline).await;
            if let Err(err) = poster.apply(&key, |record| record.mark_overdue()).await {
                tracing::warn!(error = ?err, %key, "cannot mark the evidence overdue");
            }
        });
    }
    Ok(())
}

async fn on_evidence(poster: &Poster, evidence: Evidence) -> Result<(), HandlerError> {
    match evidence {
        Evidence::Metrics(metrics) => {
            poster
                .apply(
                    &reply::key(reply::Kind::Incident, &metrics.incident_id.0),
                    |record| record.merge_metrics(&metrics),
                )
                .await
        }
        Evidence::Changes(changes) => {
            poster
                .apply(
                    &reply::key(reply::Kind::Incident, &changes.incident_id.0),
                    |record| record.merge_changes(&changes),
                )
                .await
        }
        Evidence::Workload(workload) => {
            poster
                .apply(
                    &reply::key(reply::Kind::Incident, &workload.incident_id.0),
                    |record| record.merge_workload(&workload),
                )
                .await
        }
        Evidence::Traces(traces) => {
            poster
                .apply(
                    &reply::key(reply::Kind::Incident, &traces.incident_id.0),
                    |record| record.merge_traces(&traces),
                )
                .await
        }
        Evidence::Profile(profile) => {
            let key = match (&profile.incident_id, &profile.request_id) {
                (Some(incident), _) => reply::key(reply::Kind::Incident, &incident.0),
                (None, Some(request)) => reply::key(reply::Kind::ProfileRequest, request),
                (None, None) => {
                    return Err(HandlerError::reject(
                        "a profile with neither an incident nor a request id has nowhere to go"
                            .to_owned(),
                    ));
                }
            };
            poster
                .apply(&key, |record| record.merge_profile(&profile))
                .await
        }
    }
}
