//! Profile evidence for an incident: the service's merged profile over the incident window and
//! over its baseline, from Pyroscope; the top functions by self time and the functions whose
//! share grew most. Every outcome is evidence with a status: no profiler, no service, no samples,
//! an error or a timeout is said in the reply.

use chrono::Utc;
use proto::{
    Incident, ProfileEvidence, SchemaVersion, TimeWindow,
    evidence::{EvidenceStatus, ProfileSource},
};

use crate::{
    config::PyroscopeConfig,
    profile::{self, Folded},
    pyroscope::{Pyroscope, PyroscopeError},
};

/// The smallest growth in share of self time worth listing (half a percentage point).
pub const MIN_GROWTH: f64 = 0.005;

/// What a lookup found: the evidence, and the profiles behind it (to store and draw).
#[derive(Debug, Clone)]
pub struct Gathered {
    pub evidence: ProfileEvidence,
    /// The incident window's stacks, when there were samples.
    pub current: Option<Folded>,
    /// The baseline's stacks, when there were samples.
    pub baseline: Option<Folded>,
}

/// Gathers profile evidence for `incident`.
pub async fn gather(
    pyroscope: Option<&Pyroscope>,
    config: &PyroscopeConfig,
    incident: &Incident,
    evidence_id: String,
) -> Gathered {
    let app = incident.alert.service.clone().unwrap_or_default();
    let mut evidence = ProfileEvidence {
        schema_version: SchemaVersion::CURRENT,
        evidence_id,
        incident_id: Some(incident.id.clone()),
        request_id: None,
        status: EvidenceStatus::Ok,
        source: ProfileSource::Pyroscope,
        app: app.clone(),
        profile_type: config.profile_type.clone(),
        window: incident.window,
        baseline: Some(incident.baseline),
        total: 0,
        unit: unit_of(&config.profile_type),
        top_functions: Vec::new(),
        grown: Vec::new(),
        flamegraph_url: None,
        diff_url: None,
        folded: None,
        reply: None,
        collected_at: Utc::now(),
    };
    let Some(pyroscope) = pyroscope else {
        evidence.status = EvidenceStatus::NoData {
            detail: "no continuous profiler is configured (profile-fetcher's pyroscope.url)"
                .to_owned(),
        };
        return Gathered::nothing(evidence);
    };
    if app.is_empty() {
        evidence.status = EvidenceStatus::NoData {
            detail: "the alert names no service to profile".to_owned(),
        };
        return Gathered::nothing(evidence);
    }
    let (current, baseline) = tokio::join!(
        pyroscope.profile(&app, &config.profile_type, incident.window),
        pyroscope.profile(&app, &config.profile_type, incident.baseline),
    );
    let current = match current {
        Ok(current) if current.is_empty() => {
            evidence.status = EvidenceStatus::NoData {
                detail: format!(
                    "no `{}` samples for `{app}` in {}",
                    config.profile_type,
                    describe(incident.window)
                ),
            };
            return Gathered::nothing(evidence);
        }
        Ok(current) => current,
        Err(err) => {
            evidence.status = status_of(&err);
            return Gathered::nothing(evidence);
        }
    };
    evidence.total = profile::total(&current);
    evidence.top_functions = profile::top_functions(&current, config.top);
    // A baseline that fails or is empty only leaves the growth out.
    let baseline = baseline.ok().filter(|baseline| !baseline.is_empty());
    if let Some(baseline) = &baseline {
        evidence.grown = profile::grown(&current, baseline, config.top, MIN_GROWTH);
    }
    evidence.collected_at = Utc::now();
    Gathered {
        evidence,
        current: Some(current),
        baseline,
    }
}

impl Gathered {
    fn nothing(evidence: ProfileEvidence) -> Gathered {
        Gathered {
            evidence,
            current: None,
            baseline: None,
        }
    }
}

fn status_of(err: &PyroscopeError) -> EvidenceStatus {
    match err {
        PyroscopeError::TimedOut(_) => EvidenceStatus::TimedOut {
            detail: err.to_string(),
        },
        _ => EvidenceStatus::Failed {
            detail: err.to_string(),
        },
    }
}

/// The sample unit of a profile type ID (`name:sample_type:sample_unit:period_type:period_unit`).
fn unit_of(profile_type: &str) -> String {
    profile_type
        .split(':')
        .nth(2)
        .unwrap_or("samples")
        .to_owned()
}

fn describe(window: TimeWindow) -> String {
    format!(
        "{} – {} UTC",
        window.from.format("%H:%M:%S"),
        window.to.format("%H:%M:%S")
    )
}
