//! Logs, traces and metrics for every flamethread service, and the admin HTTP server.
//!
//! - Logs: a `tracing` subscriber, human-readable or JSON ([`LogFormat`]), filtered by `RUST_LOG`
//!   (default `info`).
//! - Traces: every span goes to OpenTelemetry. Spans always get real trace ids (so trace context
//!   can travel even when nothing is exported); an OTLP exporter is switched on by the standard
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` variables, with
//!   `OTEL_EXPORTER_OTLP_PROTOCOL` choosing `grpc` or `http/protobuf` (the default).
//! - Trace context crosses process boundaries as W3C `traceparent` headers: [`propagation`] is
//!   transport-agnostic, and the bus applies it to NATS headers.
//! - Metrics: the `metrics` facade, rendered in Prometheus text format at `/metrics` by the
//!   [`admin`] server, next to `/healthz` and `/readyz`.

pub mod admin;
pub mod catalog;
pub mod propagation;

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    trace::{SdkTracerProvider, SpanExporter},
};
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

/// How log lines are written to stderr.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One readable line per event, for people.
    #[default]
    Human,
    /// One JSON object per event, for log pipelines.
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
    #[error("cannot build the OTLP span exporter: {0}")]
    Exporter(String),
    #[error("invalid OTEL_EXPORTER_OTLP_PROTOCOL {0:?}: use \"grpc\" or \"http/protobuf\"")]
    Protocol(String),
}

/// Installs logging, tracing and metrics for one service.
#[derive(Debug)]
pub struct TelemetryBuilder<E = opentelemetry_otlp::SpanExporter> {
    service_name: String,
    log_format: LogFormat,
    default_filter: String,
    exporter: Option<E>,
}

impl TelemetryBuilder {
    pub fn new(service_name: &str) -> TelemetryBuilder {
        TelemetryBuilder {
            service_name: service_name.to_owned(),
            log_format: LogFormat::Human,
            default_filter: "info".to_owned(),
            exporter: None,
        }
    }

    /// Exports spans over OTLP when the standard OTLP environment variables ask for it.
    pub fn otlp_from_env(mut self) -> Result<TelemetryBuilder, Error> {
        let configured = [
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()));
        if configured {
            self.exporter = Some(otlp_exporter_from_env()?);
        }
        Ok(self)
    }
}

impl<E> TelemetryBuilder<E> {
    pub fn log_format(mut self, log_format: LogFormat) -> Self {
        self.log_format = log_format;
        self
    }

    /// The filter used when `RUST_LOG` is not set.
    pub fn default_filter(mut self, directives: &str) -> Self {
        self.default_filter = directives.to_owned();
        self
    }

    /// Exports spans with `exporter` (tests use an in-memory one).
    pub fn span_exporter<F: SpanExporter + 'static>(self, exporter: F) -> TelemetryBuilder<F> {
        TelemetryBuilder {
            service_name: self.service_name,
            log_format: self.log_format,
            default_filter: self.default_filter,
            exporter: Some(exporter),
        }
    }

    /// Installs the global subscriber, propagator and metrics recorder.
    pub fn init(self) -> Result<Telemetry, Error>
    where
        E: SpanExporter + 'static,
    {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let resource = Resource::builder()
            .with_service_name(self.service_name.clone())
            .build();
        let mut provider = SdkTracerProvider::builder().with_resource(resource);
        if let Some(exporter) = self.exporter {
            provider = provider.with_batch_exporter(exporter);
        }
        let provider = provider.build();
        opentelemetry::global::set_tracer_provider(provider.clone());
        let tracer = provider.tracer(self.service_name.clone());

        let filter = EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| EnvFilter::new(&self.default_filter));
        let fmt_layer = match self.log_format {
            LogFormat::Human => tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .boxed(),
            LogFormat::Json => tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .with_writer(std::io::stderr)
                .boxed(),
        };
        // Filters are per layer: `RUST_LOG` decides what is logged, never what is traced, so that
        // turning logs down cannot break trace propagation across services.
        let trace_layer = tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
        tracing_subscriber::registry()
            .with(fmt_layer.with_filter(filter))
            .with(trace_layer)
            .try_init()
            .map_err(|_| Error::AlreadyInstalled)?;
        metrics_handle();
        Ok(Telemetry { provider })
    }
}

/// Keeps the tracer provider alive; [`Telemetry::shutdown`] flushes pending spans.
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Flushes and stops span export. Call once, after the service stopped.
    pub fn shutdown(self) {
        if let Err(err) = self.provider.shutdown() {
            tracing::warn!(error = %err, "span exporter did not shut down cleanly");
        }
    }

    /// Exports spans that ended so far (tests call this before reading an in-memory exporter).
    pub fn flush(&self) {
        let _ = self.provider.force_flush();
    }
}

fn otlp_exporter_from_env() -> Result<opentelemetry_otlp::SpanExporter, Error> {
    use opentelemetry_otlp::WithExportConfig as _;
    // The workspace builds rustls with ring only and no default provider (so that nothing pulls
    // in a second one); the exporter's HTTP client needs it chosen before it is built.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let protocol = std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .unwrap_or_else(|_| "http/protobuf".to_owned());
    let exporter = match protocol.as_str() {
        "grpc" => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build(),
        "http/protobuf" => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .build(),
        other => return Err(Error::Protocol(other.to_owned())),
    };
    exporter.map_err(|err| Error::Exporter(err.to_string()))
}

/// The process-wide Prometheus recorder. Installed once; several services in one process (tests,
/// the local all-in-one run) share it.
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        // Constant, non-empty buckets: this cannot fail; if it did, latencies would be summaries.
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Suffix("_seconds".to_owned()),
                catalog::SECONDS_BUCKETS,
            )
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder was installed first; metrics then go there and
        // `/metrics` shows this (empty) recorder, which a test would catch.
        if metrics::set_global_recorder(recorder).is_ok() {
            catalog::describe();
        }
        handle
    })
}
