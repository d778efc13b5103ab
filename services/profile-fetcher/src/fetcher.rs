//! The handler for incident events: a newly opened incident gets its evidence gathered and
//! published. Updates (repeat notifications, storm members joining) gather nothing, so a storm of
//! notifications is one round of lookups per incident.

use bus::{Bus, HandlerError};
use proto::{IncidentChange, IncidentEvent};

use crate::{
    config::{MetricQuery, PrometheusConfig, PyroscopeConfig},
    metrics::{self, prometheus::Prometheus},
    profile, profiling,
    pyroscope::Pyroscope,
};

#[derive(Debug)]
pub(crate) struct Fetcher {
    pub(crate) bus: Bus,
    pub(crate) prometheus: Option<Prometheus>,
    pub(crate) prometheus_config: PrometheusConfig,
    pub(crate) queries: Vec<MetricQuery>,
    pub(crate) pyroscope: Option<Pyroscope>,
    pub(crate) pyroscope_config: PyroscopeConfig,
}

impl Fetcher {
    pub(crate) async fn on_incident(&self, event: IncidentEvent) -> Result<(), HandlerError> {
        if event.change != IncidentChange::Opened {
            ::metrics::counter!("ft_fetcher_updates_skipped_total").increment(1);
            return Ok(());
        }
        let incident = &event.incident;
        // The same opening redelivered gathers again but publishes under the same ids, which
        // JetStream stores once.
        let suffix = format!("{}-r{}", incident.id, incident.revision);
        let (metrics, (mut profile, folded)) = tokio::join!(
            metrics::gather(
                self.prometheus.as_ref(),
                &self.prometheus_config,
                &self.queries,
                incident,
                format!("metrics-{suffix}"),
            ),
            profiling::gather(
                self.pyroscope.as_ref(),
                &self.pyroscope_config,
                incident,
                format!("profile-{suffix}"),
            ),
        );
        tracing::info!(incident = %incident.id, metrics = ?metrics.status, profile = ?profile.status, "evidence gathered");
        count("metrics", &metrics.status);
        count("profile", &profile.status);
        if let Some(folded) = folded {
            profile.folded = Some(self.store_folded(&profile.evidence_id, &folded).await?);
        }
        self.bus
            .publish(&metrics)
            .await
            .map_err(HandlerError::retry)?;
        self.bus
            .publish(&profile)
            .await
            .map_err(HandlerError::retry)?;
        Ok(())
    }

    /// Keeps the folded stacks in the object store, for download and for the flamegraph.
    async fn store_folded(
        &self,
        evidence_id: &str,
        folded: &profile::Folded,
    ) -> Result<proto::ObjectRef, HandlerError> {
        let text = profile::to_text(folded);
        let key = format!("profiles/{evidence_id}.folded");
        let store = self.bus.blob_store().await.map_err(HandlerError::retry)?;
        store
            .put(key.as_str(), &mut text.as_bytes())
            .await
            .map_err(|err| HandlerError::retry(format!("object store: {err}")))?;
        Ok(proto::ObjectRef {
            bucket: self.bus.subjects().blob_bucket(),
            key,
            size: text.len() as u64,
            content_type: "text/plain; charset=utf-8".to_owned(),
        })
    }
}

fn count(what: &'static str, status: &proto::evidence::EvidenceStatus) {
    let outcome = match status {
        proto::evidence::EvidenceStatus::Ok => "ok",
        proto::evidence::EvidenceStatus::NoData { .. } => "no_data",
        proto::evidence::EvidenceStatus::Failed { .. } => "failed",
        proto::evidence::EvidenceStatus::TimedOut { .. } => "timed_out",
    };
    ::metrics::counter!("ft_fetcher_evidence_total", "kind" => what, "outcome" => outcome)
        .increment(1);
}
