//! The handler for incident events: a newly opened incident gets its evidence gathered and
//! published. Updates (repeat notifications, storm members joining) gather nothing, so a storm of
//! notifications is one round of lookups per incident.

use bus::{Bus, HandlerError};
use proto::{IncidentChange, IncidentEvent};

use crate::{
    config::{MetricQuery, PrometheusConfig},
    metrics::{self, prometheus::Prometheus},
};

#[derive(Debug)]
pub(crate) struct Fetcher {
    pub(crate) bus: Bus,
    pub(crate) prometheus: Option<Prometheus>,
    pub(crate) prometheus_config: PrometheusConfig,
    pub(crate) queries: Vec<MetricQuery>,
}

impl Fetcher {
    pub(crate) async fn on_incident(&self, event: IncidentEvent) -> Result<(), HandlerError> {
        if event.change != IncidentChange::Opened {
            metrics_counter("skipped_update");
            return Ok(());
        }
        let incident = &event.incident;
        // The same opening redelivered gathers again but publishes under the same id, which
        // JetStream stores once.
        let evidence_id = format!("metrics-{}-r{}", incident.id, incident.revision);
        let evidence = metrics::gather(
            self.prometheus.as_ref(),
            &self.prometheus_config,
            &self.queries,
            incident,
            evidence_id,
        )
        .await;
        tracing::info!(incident = %incident.id, status = ?evidence.status, series = evidence.series.len(), "metrics gathered");
        metrics_counter(match evidence.status {
            proto::evidence::EvidenceStatus::Ok => "ok",
            proto::evidence::EvidenceStatus::NoData { .. } => "no_data",
            proto::evidence::EvidenceStatus::Failed { .. } => "failed",
            proto::evidence::EvidenceStatus::TimedOut { .. } => "timed_out",
        });
        self.bus
            .publish(&evidence)
            .await
            .map_err(HandlerError::retry)?;
        Ok(())
    }
}

fn metrics_counter(outcome: &'static str) {
    ::metrics::counter!("ft_fetcher_metrics_total", "outcome" => outcome).increment(1);
}
