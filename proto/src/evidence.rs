//! Evidence gathered for an incident or a request: metrics from Prometheus and profiles from
//! Pyroscope or a live pprof endpoint.
//!
//! A source that fails, times out or has no data still produces evidence, with a status that says
//! so: the reply must be able to say "no data for `checkout` in the last 30m" instead of staying
//! silent.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    Correlated, Correlation, IncidentId, Message, ObjectRef, ReplyTarget, SchemaVersion, Subject,
    TimeWindow, change::Change,
};

/// How a lookup went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum EvidenceStatus {
    #[default]
    Ok,
    /// The source answered, with nothing for this query.
    NoData { detail: String },
    /// The source answered with an error, or could not be reached.
    Failed { detail: String },
    /// The source did not answer in time.
    TimedOut { detail: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    Rising,
    Falling,
    Flat,
    Unknown,
}

/// One query's summary: now versus baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MetricSummary {
    /// A short name, e.g. `cpu`.
    pub name: String,
    /// The PromQL that was run, after templating.
    pub query: String,
    #[serde(default)]
    pub unit: Option<String>,
    /// Mean over the incident window.
    #[serde(default)]
    pub current: Option<f64>,
    /// Mean over the baseline window.
    #[serde(default)]
    pub baseline: Option<f64>,
    /// Highest value in the incident window.
    #[serde(default)]
    pub peak: Option<f64>,
    pub trend: Trend,
    /// How this query went (the evidence's status sums up all of them).
    #[serde(default)]
    pub status: EvidenceStatus,
    /// The series over the incident window in at most 20 equal slices (each slice's mean), as
    /// Slack's chart block takes them; empty when there was no data.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub points: Vec<MetricPoint>,
}

/// One slice of a series: its start and its mean.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MetricPoint {
    pub at: DateTime<Utc>,
    pub value: f64,
}

/// Metrics for an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MetricsEvidence {
    pub schema_version: SchemaVersion,
    /// Unique per lookup; a re-run gets a new id.
    pub evidence_id: String,
    pub incident_id: IncidentId,
    pub status: EvidenceStatus,
    pub window: TimeWindow,
    pub baseline: TimeWindow,
    #[serde(default)]
    pub series: Vec<MetricSummary>,
    /// A chart image of the series (SVG, in the object store).
    #[serde(default)]
    pub chart: Option<ObjectRef>,
    /// Where people open that chart (profile-fetcher's pages), when it is served.
    #[serde(default)]
    pub chart_url: Option<String>,
    /// The same chart as a PNG (in the object store), for Slack, which shows no SVG.
    #[serde(default)]
    pub chart_png: Option<ObjectRef>,
    pub collected_at: DateTime<Utc>,
}

impl Message for MetricsEvidence {
    fn subject(&self) -> Subject {
        Subject::EvidenceMetrics
    }

    fn idempotency_key(&self) -> String {
        format!("evidence:{}", self.evidence_id)
    }
}

impl Correlated for MetricsEvidence {
    fn correlation(&self) -> Correlation<'_> {
        Correlation::incident(Some(&self.incident_id))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProfileSource {
    Pyroscope,
    Pprof,
    Sandbox,
}

/// A function's share of the profile's self time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FunctionShare {
    pub name: String,
    /// Self value in the profile's unit (samples or nanoseconds).
    pub self_value: u64,
    /// Self value over the profile total, 0..=1.
    pub self_share: f64,
}

/// A function whose share grew versus the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FunctionGrowth {
    pub name: String,
    pub baseline_share: f64,
    pub current_share: f64,
}

/// A profile for an incident or a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProfileEvidence {
    pub schema_version: SchemaVersion,
    pub evidence_id: String,
    /// Set when gathered for an incident.
    #[serde(default)]
    pub incident_id: Option<IncidentId>,
    /// Set when gathered for a [`ProfileRequest`].
    #[serde(default)]
    pub request_id: Option<String>,
    pub status: EvidenceStatus,
    pub source: ProfileSource,
    /// The application as the profiler knows it (Pyroscope's `service_name`).
    pub app: String,
    /// E.g. `process_cpu:cpu:nanoseconds:cpu:nanoseconds`.
    pub profile_type: String,
    pub window: TimeWindow,
    #[serde(default)]
    pub baseline: Option<TimeWindow>,
    /// Profile total in `unit`.
    #[serde(default)]
    pub total: u64,
    /// `samples` or `nanoseconds`.
    #[serde(default)]
    pub unit: String,
    #[serde(default)]
    pub top_functions: Vec<FunctionShare>,
    #[serde(default)]
    pub grown: Vec<FunctionGrowth>,
    #[serde(default)]
    pub flamegraph_url: Option<String>,
    #[serde(default)]
    pub diff_url: Option<String>,
    /// A PNG preview of the flamegraph (the hot path outlined), for Slack, which shows no SVG.
    #[serde(default)]
    pub flamegraph_png: Option<ObjectRef>,
    /// A PNG preview of the diff against the baseline, when there is one.
    #[serde(default)]
    pub diff_png: Option<ObjectRef>,
    /// What the baseline is, when it is not the incident's calm window before: "before deploy
    /// checkout 1.4.2" when a change came just before the alert, so the diff shows what it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_label: Option<String>,
    /// The profile as folded stacks (`a;b;c 42` per line).
    #[serde(default)]
    pub folded: Option<ObjectRef>,
    /// Where to answer, for a request.
    #[serde(default)]
    pub reply: Option<ReplyTarget>,
    /// Who asked for it, for a request: App Home shows a profile answered to one person only
    /// to that person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    pub collected_at: DateTime<Utc>,
}

impl Message for ProfileEvidence {
    fn subject(&self) -> Subject {
        Subject::EvidenceProfile
    }

    fn idempotency_key(&self) -> String {
        format!("evidence:{}", self.evidence_id)
    }
}

impl Correlated for ProfileEvidence {
    fn correlation(&self) -> Correlation<'_> {
        Correlation::incident(self.incident_id.as_ref())
    }
}

/// What changed before an incident: recorded changes for its service, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChangesEvidence {
    pub schema_version: SchemaVersion,
    pub evidence_id: String,
    pub incident_id: IncidentId,
    pub status: EvidenceStatus,
    /// The span of time looked at (from the lookback before the alert to now).
    pub window: TimeWindow,
    /// Newest first, at most a bounded number.
    #[serde(default)]
    pub changes: Vec<Change>,
    /// Sources that could not be read, each a sentence ("kube-state-metrics: Prometheus did not
    /// answer within 10s").
    #[serde(default)]
    pub notes: Vec<String>,
    pub collected_at: DateTime<Utc>,
}

impl Message for ChangesEvidence {
    fn subject(&self) -> Subject {
        Subject::EvidenceChanges
    }

    fn idempotency_key(&self) -> String {
        format!("evidence:{}", self.evidence_id)
    }
}

impl Correlated for ChangesEvidence {
    fn correlation(&self) -> Correlation<'_> {
        Correlation::incident(Some(&self.incident_id))
    }
}

/// The Kubernetes workload an alert is about, from its labels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WorkloadRef {
    pub namespace: String,
    #[serde(default)]
    pub deployment: Option<String>,
    #[serde(default)]
    pub pod: Option<String>,
    #[serde(default)]
    pub container: Option<String>,
}

/// Ready against desired replicas of a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Replicas {
    pub desired: u32,
    pub ready: u32,
}

/// One container of the workload, from kube-state-metrics and cAdvisor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ContainerFacts {
    pub pod: String,
    pub container: String,
    #[serde(default)]
    pub restarts: Option<u64>,
    /// Why it last terminated (`OOMKilled`, `Error`, `Completed`…).
    #[serde(default)]
    pub last_terminated: Option<String>,
    /// Working set now, and its highest over the incident window.
    #[serde(default)]
    pub memory_bytes: Option<f64>,
    #[serde(default)]
    pub memory_peak_bytes: Option<f64>,
    #[serde(default)]
    pub memory_limit_bytes: Option<f64>,
    /// Share of CFS periods throttled over the incident window, 0..=1.
    #[serde(default)]
    pub cpu_throttled: Option<f64>,
    /// CPU used against its limit, in cores.
    #[serde(default)]
    pub cpu_cores: Option<f64>,
    #[serde(default)]
    pub cpu_limit_cores: Option<f64>,
}

/// A Kubernetes event about the workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct KubeEvent {
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
    /// `Normal` or `Warning`.
    pub kind: String,
    pub reason: String,
    pub message: String,
    /// `Pod/checkout-7d9f8-x2k4z`.
    pub object: String,
    #[serde(default)]
    pub count: u32,
}

/// The last lines of a container's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LogTail {
    pub pod: String,
    pub container: String,
    /// The log of the container's previous run (the one that crashed).
    pub previous: bool,
    pub text: String,
    /// More was there than is kept.
    pub truncated: bool,
}

/// One revision of a deployment's rollout history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Rollout {
    pub revision: u64,
    pub replicaset: String,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub images: Vec<String>,
}

/// What the alert's Kubernetes workload is doing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WorkloadEvidence {
    pub schema_version: SchemaVersion,
    pub evidence_id: String,
    pub incident_id: IncidentId,
    pub status: EvidenceStatus,
    #[serde(default)]
    pub workload: Option<WorkloadRef>,
    #[serde(default)]
    pub replicas: Option<Replicas>,
    #[serde(default)]
    pub containers: Vec<ContainerFacts>,
    /// Newest first, bounded.
    #[serde(default)]
    pub events: Vec<KubeEvent>,
    #[serde(default)]
    pub log: Option<LogTail>,
    /// Newest revision first, bounded.
    #[serde(default)]
    pub rollouts: Vec<Rollout>,
    /// What could not be read, each a sentence saying why ("Kubernetes refused to list events
    /// in shop (403): the Role needs `list` on `events`").
    #[serde(default)]
    pub notes: Vec<String>,
    pub collected_at: DateTime<Utc>,
}

impl Message for WorkloadEvidence {
    fn subject(&self) -> Subject {
        Subject::EvidenceWorkload
    }

    fn idempotency_key(&self) -> String {
        format!("evidence:{}", self.evidence_id)
    }
}

impl Correlated for WorkloadEvidence {
    fn correlation(&self) -> Correlation<'_> {
        Correlation::incident(Some(&self.incident_id))
    }
}

/// How to obtain the profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProfileMode {
    /// From the continuous profiler, over `window`.
    Continuous,
    /// Live from the service's pprof endpoint, for `seconds`.
    Live { seconds: u32 },
}

/// A request for a profile: `/profile <app> [window] [type]`, or a "Profile now" click.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProfileRequest {
    pub schema_version: SchemaVersion,
    pub request_id: String,
    /// The app; absent means "offer a picker of the apps that exist".
    #[serde(default)]
    pub app: Option<String>,
    pub window: TimeWindow,
    #[serde(default)]
    pub profile_type: Option<String>,
    pub mode: ProfileMode,
    /// The incident this is for, when asked from an incident's thread.
    #[serde(default)]
    pub incident_id: Option<IncidentId>,
    /// The Slack user who asked.
    #[serde(default)]
    pub requested_by: Option<String>,
    pub reply: ReplyTarget,
}

impl Message for ProfileRequest {
    fn subject(&self) -> Subject {
        Subject::ProfileRequest
    }

    fn idempotency_key(&self) -> String {
        format!("profile-request:{}", self.request_id)
    }
}

impl Correlated for ProfileRequest {
    fn correlation(&self) -> Correlation<'_> {
        Correlation::incident(self.incident_id.as_ref())
    }
}

/// One span name of the alert's service: the incident window against the baseline before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SpanNameStats {
    pub span_name: String,
    pub spans: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    /// 0 to 1.
    pub error_rate: f64,
    /// Spans of this name in the baseline; 0 when the name is new.
    #[serde(default)]
    pub baseline_spans: u64,
    #[serde(default)]
    pub baseline_p95_ms: Option<f64>,
    #[serde(default)]
    pub baseline_error_rate: Option<f64>,
}

/// The slowest span of the incident window, to open first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SlowSpan {
    pub trace_id: String,
    pub span_id: String,
    pub span_name: String,
    pub duration_ms: f64,
    /// The trace's waterfall page with this span marked, when profile-fetcher serves pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waterfall_url: Option<String>,
    /// The flamegraph of the CPU samples taken inside this span (Pyroscope's span profiles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_profile_url: Option<String>,
    /// Why there is no span profile, when one was looked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_profile_note: Option<String>,
}

/// Which requests of the alert's service got slow or failing, from the span store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TracesEvidence {
    pub schema_version: SchemaVersion,
    pub evidence_id: String,
    pub incident_id: IncidentId,
    pub status: EvidenceStatus,
    /// The `ServiceName` looked up.
    pub service: String,
    pub window: TimeWindow,
    pub baseline: TimeWindow,
    /// Worst first (p95 grown the most, then errors), at most a few.
    #[serde(default)]
    pub span_names: Vec<SpanNameStats>,
    #[serde(default)]
    pub slowest: Option<SlowSpan>,
    pub collected_at: DateTime<Utc>,
}

impl Message for TracesEvidence {
    fn subject(&self) -> Subject {
        Subject::EvidenceTraces
    }

    fn idempotency_key(&self) -> String {
        format!("evidence:{}", self.evidence_id)
    }
}

impl Correlated for TracesEvidence {
    fn correlation(&self) -> Correlation<'_> {
        Correlation::incident(Some(&self.incident_id))
    }
}

/// What remediation-poster's evidence consumer reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Evidence {
    Metrics(Box<MetricsEvidence>),
    Profile(Box<ProfileEvidence>),
    Changes(Box<ChangesEvidence>),
    Workload(Box<WorkloadEvidence>),
    Traces(Box<TracesEvidence>),
}

impl crate::Inbound for Evidence {
    fn decode(subject: Subject, payload: &[u8]) -> Result<Evidence, crate::DecodeError> {
        match subject {
            Subject::EvidenceMetrics => {
                crate::decode(payload).map(|metrics| Evidence::Metrics(Box::new(metrics)))
            }
            Subject::EvidenceProfile => {
                crate::decode(payload).map(|profile| Evidence::Profile(Box::new(profile)))
            }
            Subject::EvidenceChanges => {
                crate::decode(payload).map(|changes| Evidence::Changes(Box::new(changes)))
            }
            Subject::EvidenceWorkload => {
                crate::decode(payload).map(|workload| Evidence::Workload(Box::new(workload)))
            }
            Subject::EvidenceTraces => {
                crate::decode(payload).map(|traces| Evidence::Traces(Box::new(traces)))
            }
            other => Err(crate::unexpected_subject(other, "evidence")),
        }
    }
}

impl Correlated for Evidence {
    fn correlation(&self) -> Correlation<'_> {
        match self {
            Evidence::Metrics(metrics) => metrics.correlation(),
            Evidence::Profile(profile) => profile.correlation(),
            Evidence::Changes(changes) => changes.correlation(),
            Evidence::Workload(workload) => workload.correlation(),
            Evidence::Traces(traces) => traces.correlation(),
        }
    }
}
