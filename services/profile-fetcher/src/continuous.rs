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

/// What to look up: an app's profile of one type over a window, and a baseline to compare with.
#[derive(Debug, Clone, Copy)]
pub struct Lookup<'a> {
    pub app: &'a str,
    pub profile_type: &'a str,
    pub window: TimeWindow,
    pub baseline: Option<TimeWindow>,
}

/// Gathers profile evidence for `incident`.
pub async fn gather(
    pyroscope: Option<&Pyroscope>,
    config: &PyroscopeConfig,
    incident: &Incident,
    evidence_id: String,
) -> Gathered {
    let app = incident.alert.service.clone().unwrap_or_default();
    let lookup = Lookup {
        app: &app,
        profile_type: &config.profile_type,
        window: incident.window,
        baseline: Some(incident.baseline),
    };
    let mut gathered = look_up(pyroscope, config, lookup, evidence_id).await;
    gathered.evidence.incident_id = Some(incident.id.clone());
    gathered
}

/// Gathers profile evidence for one lookup (an incident's, or a `/profile` request's).
pub async fn look_up(
    pyroscope: Option<&Pyroscope>,
    config: &PyroscopeConfig,
    lookup: Lookup<'_>,
    evidence_id: String,
) -> Gathered {
    let app = lookup.app.to_owned();
    let mut evidence = ProfileEvidence {
        requested_by: None,
        schema_version: SchemaVersion::CURRENT,
        evidence_id,
        incident_id: None,
        request_id: None,
        status: EvidenceStatus::Ok,
        source: ProfileSource::Pyroscope,
        app: app.clone(),
        profile_type: lookup.profile_type.to_owned(),
        window: lookup.window,
        baseline: lookup.baseline,
        total: 0,
        unit: unit_of(lookup.profile_type),
        top_functions: Vec::new(),
        grown: Vec::new(),
        flamegraph_url: None,
        diff_url: None,
        flamegraph_png: None,
        diff_png: None,
        baseline_label: None,
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
        pyroscope.profile(&app, lookup.profile_type, lookup.window),
        async {
            match lookup.baseline {
                Some(baseline) => pyroscope.profile(&app, lookup.profile_type, baseline).await,
                None => Ok(Folded::new()),
            }
        },
    );
    let current = match current {
        Ok(current) if current.is_empty() => {
            evidence.status = EvidenceStatus::NoData {
                detail: format!(
                    "no `{}` samples for `{app}` in {}",
                    lookup.profile_type,
                    describe(lookup.window)
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
    pub(crate) fn nothing(evidence: ProfileEvidence) -> Gathered {
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
pub(crate) fn unit_of(profile_type: &str) -> String {
    profile_type
        .split(':')
        .nth(2)
        .unwrap_or("samples")
        .to_owned()
}

pub(crate) fn describe(window: TimeWindow) -> String {
    format!(
        "{} – {} UTC",
        window.from.format("%H:%M:%S"),
        window.to.format("%H:%M:%S")
    )
}
