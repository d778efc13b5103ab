//! The handler for incident events: a newly opened incident gets its evidence gathered and
//! published (its profile from Pyroscope, or live from its pprof endpoint where no continuous
//! profiler is configured). Updates (repeat notifications, storm members joining) gather nothing, so a storm of
//! notifications is one round of lookups per incident.

use bus::{Bus, HandlerError};
use proto::{IncidentChange, IncidentEvent};

use crate::{
    changes,
    config::{ChangesConfig, KubernetesConfig, MetricQuery, PrometheusConfig, PyroscopeConfig},
    continuous::Gathered,
    flamegraph,
    kubernetes::{self, api::KubeApi},
    live::LiveProfiler,
    metrics::{self, prometheus::Prometheus},
    profile,
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
    pub(crate) live: LiveProfiler,
    /// The pages' public base URL, when pages are served.
    pub(crate) pages_url: Option<String>,
    pub(crate) changes: ChangesConfig,
    pub(crate) kubernetes: KubernetesConfig,
    pub(crate) kube: Option<KubeApi>,
    /// The span store's queries, when `[traces]` is on and this build has the store.
    pub(crate) spans: Option<crate::traces::Queries>,
    /// Whether spans are taken in (`traces.listen`): if they cannot be queried here, an
    /// incident's evidence says why it has no requests.
    pub(crate) span_intake: bool,
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
        // Changes first: the chart marks them, and the profile compares before and after the
        // last one.
        let changes = changes::gather(
            &self.bus,
            self.prometheus.as_ref(),
            &self.changes,
            &self.kubernetes,
            incident,
            format!("changes-{suffix}"),
        )
        .await;
        let (metrics, gathered, workload, traces) = tokio::join!(
            metrics::gather_charted(
                self.prometheus.as_ref(),
                &self.prometheus_config,
                &self.queries,
                incident,
                format!("metrics-{suffix}"),
            ),
            self.incident_profile(incident, &changes.changes, format!("profile-{suffix}")),
            kubernetes::gather(
                self.prometheus.as_ref(),
                self.kube.as_ref(),
                &self.kubernetes,
                incident,
                format!("workload-{suffix}"),
            ),
            async {
                match &self.spans {
                    Some(queries) => {
                        crate::traces::evidence::gather(
                            queries,
                            incident,
                            format!("traces-{suffix}"),
                            self.pages_url.as_deref(),
                        )
                        .await
                    }
                    None if self.span_intake => {
                        crate::traces::evidence::unqueryable(incident, format!("traces-{suffix}"))
                    }
                    None => None,
                }
            },
        );
        let mut traces = traces;
        if let Some(traces) = &mut traces
            && let Some(slow) = &mut traces.slowest
        {
            self.span_profile(slow, incident, &suffix).await?;
        }
        let (mut metrics, panels) = metrics;
        if !panels.is_empty() {
            let markers = markers(&changes.changes);
            self.chart(&mut metrics, panels, markers, incident).await?;
        }
        tracing::info!(incident = %incident.id, changes = changes.changes.len(), metrics = ?metrics.status, profile = ?gathered.evidence.status, workload = ?workload.status, "evidence gathered");
        count("changes", &changes.status);
        count("workload", &workload.status);
        count("metrics", &metrics.status);
        count("profile", &gathered.evidence.status);
        for published in [
            self.bus.publish(&changes).await,
            self.bus.publish(&workload).await,
            self.bus.publish(&metrics).await,
        ] {
            published.map_err(HandlerError::retry)?;
        }
        if let Some(traces) = &traces {
            count("traces", &traces.status);
            self.bus
                .publish(traces)
                .await
                .map_err(HandlerError::retry)?;
        }
        self.publish_profile(gathered).await
    }

    /// Draws the metrics chart (SVG for the pages, PNG for Slack), stores both and links them
    /// from the evidence. A chart that cannot be drawn is logged and left out; the evidence
    /// still goes.
    async fn chart(
        &self,
        evidence: &mut proto::MetricsEvidence,
        panels: Vec<pictures::chart::Panel>,
        markers: Vec<pictures::chart::Marker>,
        incident: &proto::Incident,
    ) -> Result<(), HandlerError> {
        let chart = pictures::chart::Chart {
            caption: format!(
                "{} · {} · {} – {} UTC",
                incident.alert.name,
                incident.alert.service.as_deref().unwrap_or("?"),
                incident.window.from.format("%Y-%m-%d %H:%M"),
                incident.window.to.format("%H:%M"),
            ),
            window: (
                incident.window.from.timestamp(),
                incident.window.to.timestamp(),
            ),
            alert_at: incident.alert.starts_at.map(|at| at.timestamp()),
            panels,
            markers,
        };
        let drawn = tokio::task::spawn_blocking(move || (chart.svg(), chart.png()))
            .await
            .map_err(|err| HandlerError::retry(format!("drawing panicked: {err}")))?;
        let page = profiling::page_id(&evidence.evidence_id);
        match drawn {
            (Ok(svg), Ok(png)) => {
                evidence.chart = Some(
                    self.store(
                        proto::keys::object::chart(&page),
                        svg.as_bytes(),
                        "image/svg+xml",
                    )
                    .await?,
                );
                evidence.chart_png = Some(
                    self.store(proto::keys::object::chart_png(&page), &png, "image/png")
                        .await?,
                );
                evidence.chart_url = self
                    .pages_url
                    .as_ref()
                    .map(|base| proto::pages::chart(base, &page));
            }
            (Err(err), _) | (_, Err(err)) => tracing::warn!(error = %err, "no metrics chart"),
        }
        Ok(())
    }

    /// Puts `bytes` in the object store under `key` and says where they are.
    async fn store(
        &self,
        key: String,
        bytes: &[u8],
        content_type: &str,
    ) -> Result<proto::ObjectRef, HandlerError> {
        self.put(&key, bytes).await?;
        Ok(proto::ObjectRef {
            bucket: self.bus.subjects().blob_bucket(),
            key,
            size: bytes.len() as u64,
            content_type: content_type.to_owned(),
        })
    }

    /// The incident's profile: from Pyroscope, or, where none is configured and the service has
    /// a live target, a live CPU profile taken now (the alert is firing now, so now is the
    /// window that matters). When a change came before the alert, Pyroscope's profile after it
    /// is compared with the one before it, so the diff shows what the change did. An incident a
    /// person asked for (`asked_by`) gets no live profile: anyone may ask, and a live profile
    /// loads the service, so it takes "Profile now" (allow-listed and rate-limited).
    async fn incident_profile(
        &self,
        incident: &proto::Incident,
        changes: &[proto::Change],
        evidence_id: String,
    ) -> Gathered {
        if self.pyroscope.is_none()
            && incident.asked_by.is_none()
            && let Some(app) = incident.alert.service.as_deref()
            && let Ok(mut gathered) = self.live_profile(app, 0, evidence_id.clone()).await
        {
            gathered.evidence.incident_id = Some(incident.id.clone());
            return gathered;
        }
        let app = incident.alert.service.clone().unwrap_or_default();
        if let Some(change) = changes::last_before_alert(changes, incident)
            && let Some((after, before)) = changes::around(change.at, incident)
        {
            let lookup = crate::continuous::Lookup {
                app: &app,
                profile_type: &self.pyroscope_config.profile_type,
                window: after,
                baseline: Some(before),
            };
            let mut gathered = crate::continuous::look_up(
                self.pyroscope.as_ref(),
                &self.pyroscope_config,
                lookup,
                evidence_id,
            )
            .await;
            gathered.evidence.incident_id = Some(incident.id.clone());
            gathered.evidence.baseline_label =
                Some(format!("before {} {}", change.kind.noun(), change.title()));
            return gathered;
        }
        crate::continuous::gather(
            self.pyroscope.as_ref(),
            &self.pyroscope_config,
            incident,
            evidence_id,
        )
        .await
    }

    /// The CPU samples taken inside the incident's slowest span, drawn and linked from it, or a
    /// sentence saying why there are none. Only with Pyroscope: a live pprof profile has no spans.
    async fn span_profile(
        &self,
        slow: &mut proto::evidence::SlowSpan,
        incident: &proto::Incident,
        suffix: &str,
    ) -> Result<(), HandlerError> {
        let (Some(pyroscope), Some(app)) = (&self.pyroscope, incident.alert.service.as_deref())
        else {
            return Ok(());
        };
        let profile_type = &self.pyroscope_config.profile_type;
        let folded = match pyroscope
            .span_profile(
                app,
                profile_type,
                incident.window,
                std::slice::from_ref(&slow.span_id),
            )
            .await
        {
            Ok(folded) if folded.is_empty() => {
                slow.span_profile_note = Some(
                    "Pyroscope holds no samples taken inside it (the app's profiler must label samples with span_id; spans under ~20 ms rarely get one)".to_owned(),
                );
                return Ok(());
            }
            Ok(folded) => folded,
            Err(err) => {
                slow.span_profile_note = Some(err.to_string());
                return Ok(());
            }
        };
        let id = profiling::page_id(&format!("span-profile-{suffix}"));
        let Some(base) = &self.pages_url else {
            return Ok(());
        };
        let title = format!(
            "{app} · inside span {} ({:.0} ms) · {}",
            slow.span_name,
            slow.duration_ms,
            profile_type.split(':').next().unwrap_or("profile")
        );
        let unit = profile_type
            .split(':')
            .nth(2)
            .unwrap_or("samples")
            .to_owned();
        self.store_folded(&id, &folded).await?;
        let drawn = tokio::task::spawn_blocking(move || flamegraph::svg(&folded, &title, &unit))
            .await
            .map_err(|err| HandlerError::retry(format!("drawing panicked: {err}")))?;
        match drawn {
            Ok(svg) => {
                self.put(&proto::keys::object::flamegraph(&id), &svg)
                    .await?;
                slow.span_profile_url = Some(proto::pages::flamegraph(base, &id));
            }
            Err(err) => slow.span_profile_note = Some(format!("cannot draw its profile: {err}")),
        }
        Ok(())
    }

    /// Stores a profile's stacks and drawings, links them, and publishes the evidence.
    pub(crate) async fn publish_profile(&self, gathered: Gathered) -> Result<(), HandlerError> {
        let mut profile = gathered.evidence;
        if let Some(current) = &gathered.current {
            // Stacks and drawings are served under an id nobody can guess.
            let id = profiling::page_id(&profile.evidence_id);
            profile.folded = Some(self.store_folded(&id, current).await?);
            // Drawn whether or not pages are served: Slack gets the PNG previews either way.
            let (page, diff) = self
                .draw(
                    &id,
                    &mut profile,
                    current.clone(),
                    gathered.baseline.clone(),
                )
                .await?;
            if let Some(base) = &self.pages_url {
                profile.flamegraph_url = page.then(|| proto::pages::flamegraph(base, &id));
                profile.diff_url = diff.then(|| proto::pages::flamegraph_diff(base, &id));
            }
        }
        self.bus
            .publish(&profile)
            .await
            .map_err(HandlerError::retry)?;
        Ok(())
    }

    /// Draws the flamegraph (and the diff, with a baseline) as pages and as PNG previews for
    /// Slack, and stores them; says which pages were drawn and links the previews from
    /// `evidence`.
    async fn draw(
        &self,
        id: &str,
        evidence: &mut proto::ProfileEvidence,
        current: profile::Folded,
        baseline: Option<profile::Folded>,
    ) -> Result<(bool, bool), HandlerError> {
        let title = format!(
            "{} · {} · {} – {} UTC",
            evidence.app,
            evidence.profile_type.split(':').next().unwrap_or("profile"),
            evidence.window.from.format("%Y-%m-%d %H:%M"),
            evidence.window.to.format("%H:%M"),
        );
        let unit = evidence.unit.clone();
        let drawn = tokio::task::spawn_blocking(move || {
            let page = flamegraph::svg(&current, &title, &unit);
            let preview = pictures::flamegraph::Preview {
                title: &title,
                stacks: &current,
                baseline: None,
            }
            .png();
            let diff = baseline.map(|baseline| {
                let title = format!("{title} vs baseline");
                let page = flamegraph::diff_svg(&baseline, &current, &title, &unit);
                let preview = pictures::flamegraph::Preview {
                    title: &title,
                    stacks: &current,
                    baseline: Some(&baseline),
                }
                .png();
                (page, preview)
            });
            ((page, preview), diff)
        })
        .await
        .map_err(|err| HandlerError::retry(format!("drawing panicked: {err}")))?;
        let ((page, preview), diff) = drawn;
        let mut drawn = (false, false);
        match page {
            Ok(svg) => {
                self.put(&proto::keys::object::flamegraph(id), &svg).await?;
                drawn.0 = true;
            }
            Err(err) => tracing::warn!(error = %err, "no flamegraph"),
        }
        match preview {
            Ok(png) => {
                evidence.flamegraph_png = Some(
                    self.store(proto::keys::object::flamegraph_png(id), &png, "image/png")
                        .await?,
                );
            }
            Err(err) => tracing::warn!(error = %err, "no flamegraph preview"),
        }
        if let Some((page, preview)) = diff {
            match page {
                Ok(svg) => {
                    self.put(&proto::keys::object::diff(id), &svg).await?;
                    drawn.1 = true;
                }
                Err(err) => tracing::warn!(error = %err, "no differential flamegraph"),
            }
            match preview {
                Ok(png) => {
                    evidence.diff_png = Some(
                        self.store(proto::keys::object::diff_png(id), &png, "image/png")
                            .await?,
                    );
                }
                Err(err) => tracing::warn!(error = %err, "no differential flamegraph preview"),
            }
        }
        Ok(drawn)
    }

    async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), HandlerError> {
        let store = self.bus.blob_store().await.map_err(HandlerError::retry)?;
        store
            .put(key, &mut &bytes[..])
            .await
            .map_err(|err| HandlerError::retry(format!("object store: {err}")))?;
        Ok(())
    }

    /// Keeps the folded stacks in the object store, for download and for the flamegraph.
    async fn store_folded(
        &self,
        page_id: &str,
        folded: &profile::Folded,
    ) -> Result<proto::ObjectRef, HandlerError> {
        let text = profile::to_text(folded);
        self.store(
            proto::keys::object::folded(page_id),
            text.as_bytes(),
            "text/plain; charset=utf-8",
        )
        .await
    }
}

/// The chart's markers: each change, in minutes before the window's end.
fn markers(changes: &[proto::Change]) -> Vec<pictures::chart::Marker> {
    changes
        .iter()
        .map(|change| pictures::chart::Marker {
            at: change.at.timestamp(),
            label: match &change.version {
                Some(version) => format!("{} {version}", change.kind.noun()),
                None => change.kind.noun().to_owned(),
            },
        })
        .collect()
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
