//! The diagnosis: declarative rules that operators can read and change, evaluated over an
//! incident and its evidence (pure).
//!
//! A rule matches the alert (name, labels, source) and lists conditions on the evidence (CPU up
//! against the baseline, a function's share grew, memory climbing, errors up, no profile). The
//! first rule whose conditions all hold gives the diagnosis: a one-line summary, the facts behind
//! it with their numbers (written by the conditions themselves, so they are never made up),
//! remediations templated from the alert's labels (a template that needs a label the alert does
//! not have is left out), the alert's runbook, and a confidence that the reply states as it is.
//! Operator rules come first (`[[diagnosis.rules]]`), then the built-in ones ([`builtin`]); when
//! none holds, the reply says so rather than guess.

use std::collections::BTreeMap;

use minijinja::{Environment, UndefinedBehavior, context};
use proto::{
    ChangesEvidence, Incident, MetricsEvidence, ProfileEvidence, WorkloadEvidence,
    evidence::{ContainerFacts, EvidenceStatus, MetricSummary, Trend},
    incident::AlertSource,
};
use regex::Regex;
use serde::{Deserialize, Serialize};

/// How sure a diagnosis is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    Low,
    Medium,
    High,
}

/// A condition on the evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// The metric's mean over the incident window is at least `above` times its baseline mean.
    MetricRatio { metric: String, above: f64 },
    /// The metric's trend over the incident window.
    MetricTrend { metric: String, trend: Trend },
    /// Some function's share of the profile grew by at least `points` percentage points.
    FunctionGrew { points: f64 },
    /// The top function takes at least `above` percent of the profile.
    TopFunctionShare { above: f64 },
    /// There is no usable profile (none configured, no data, failed).
    NoProfile,
    /// A change to the service came at most `within_minutes` before the alert started.
    ChangedBefore { within_minutes: u32 },
    /// A container of the workload last terminated for `reason` (`OOMKilled`, `Error`).
    Terminated { reason: String },
    /// A container of the workload restarted at least `at_least` times.
    Restarting { at_least: u64 },
    /// A container's memory peaked at `above` percent of its limit or more.
    MemoryNearLimit { above: f64 },
    /// A container was throttled in `above` percent of its CPU periods or more.
    Throttled { above: f64 },
    /// A container used `above` percent of its CPU limit or more.
    CpuNearLimit { above: f64 },
}

/// The evidence a diagnosis reads; each part may still be missing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gathered<'a> {
    pub metrics: Option<&'a MetricsEvidence>,
    pub profile: Option<&'a ProfileEvidence>,
    pub changes: Option<&'a ChangesEvidence>,
    pub workload: Option<&'a WorkloadEvidence>,
}

/// A rule as written in configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: String,
    /// A regular expression the alert's name must match. Default: any alert.
    #[serde(default)]
    pub alert: Option<String>,
    /// Labels the alert must have, each matching its regular expression.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The tool that raised the alert. Default: any.
    #[serde(default)]
    pub source: Option<AlertSource>,
    /// All must hold.
    #[serde(default)]
    pub when: Vec<Condition>,
    /// The one-line diagnosis (a minijinja template).
    pub summary: String,
    /// Commands or steps to suggest (minijinja templates over the alert's labels).
    #[serde(default)]
    pub remediations: Vec<String>,
    pub confidence: Confidence,
}

/// A diagnosis, ready to show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    pub rule: String,
    pub summary: String,
    pub facts: Vec<String>,
    pub remediations: Vec<String>,
    pub runbook: Option<String>,
    pub confidence: Confidence,
}

#[derive(Debug)]
struct Rule {
    config: RuleConfig,
    alert: Option<Regex>,
    labels: Vec<(String, Regex)>,
}

/// Rules in the order they are tried.
#[derive(Debug)]
pub struct RuleSet {
    rules: Vec<Rule>,
    env: Environment<'static>,
}

impl Default for RuleSet {
    fn default() -> RuleSet {
        RuleSet::new(Vec::new()).unwrap_or_else(|_| unreachable!("the built-in rules compile"))
    }
}

/// Why a diagnosis rule cannot be used: which rule, which part of it, and the regex's or the
/// template's own error.
#[derive(Debug, thiserror::Error)]
#[error("diagnosis rule {index} ({name}): {part}: {source}")]
pub struct RuleError {
    pub index: usize,
    pub name: String,
    pub part: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl RuleSet {
    /// `rules` (tried first), then the built-in ones. Errors name the rule and what is wrong.
    pub fn new(rules: Vec<RuleConfig>) -> Result<RuleSet, RuleError> {
        let mut env = Environment::new();
        // A remediation that needs a label the alert lacks is left out, not shown half-filled.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let mut compiled = Vec::new();
        for (i, config) in rules.into_iter().chain(builtin()).enumerate() {
            let at = |part: &str, source: Box<dyn std::error::Error + Send + Sync>| RuleError {
                index: i,
                name: config.name.clone(),
                part: part.to_owned(),
                source,
            };
            let alert = config
                .alert
                .as_deref()
                .map(Regex::new)
                .transpose()
                .map_err(|err| at("alert", err.into()))?;
            let labels = config
                .labels
                .iter()
                .map(|(key, pattern)| {
                    Regex::new(&format!("^(?:{pattern})$"))
                        .map(|regex| (key.clone(), regex))
                        .map_err(|err| at(&format!("labels.{key}"), err.into()))
                })
                .collect::<Result<_, _>>()?;
            for template in std::iter::once(&config.summary).chain(&config.remediations) {
                env.template_from_str(template)
                    .map_err(|err| at("template", err.into()))?;
            }
            compiled.push(Rule {
                config,
                alert,
                labels,
            });
        }
        Ok(RuleSet {
            rules: compiled,
            env,
        })
    }

    /// The first rule that holds on the metrics and the profile alone, or `None`.
    pub fn diagnose(
        &self,
        incident: &Incident,
        metrics: Option<&MetricsEvidence>,
        profile: Option<&ProfileEvidence>,
    ) -> Option<Diagnosis> {
        self.diagnose_all(
            incident,
            Gathered {
                metrics,
                profile,
                ..Gathered::default()
            },
        )
    }

    /// The first rule that holds on everything gathered, or `None`.
    pub fn diagnose_all(&self, incident: &Incident, gathered: Gathered<'_>) -> Option<Diagnosis> {
        let alert = &incident.alert;
        let facts = Facts::of(gathered, incident);
        for rule in &self.rules {
            let config = &rule.config;
            if rule
                .alert
                .as_ref()
                .is_some_and(|re| !re.is_match(&alert.name))
                || config.source.is_some_and(|source| source != alert.source)
                || rule.labels.iter().any(|(key, re)| {
                    !alert
                        .labels
                        .get(key)
                        .is_some_and(|value| re.is_match(value))
                })
            {
                continue;
            }
            let Some(said) = config
                .when
                .iter()
                .map(|condition| facts.check(condition))
                .collect::<Option<Vec<String>>>()
            else {
                continue;
            };
            let ctx = context! {
                alert => alert,
                labels => &alert.labels,
                annotations => &alert.annotations,
                service => alert.service.as_deref().unwrap_or(""),
                metric => &facts.metric_context(),
                grown => &facts.grown,
                top => &facts.top,
                change => &facts.change,
                container => &facts.containers.first(),
            };
            let render = |template: &str| {
                self.env
                    .render_str(template, &ctx)
                    .ok()
                    .filter(|text| !text.trim().is_empty())
            };
            let Some(summary) = render(&config.summary) else {
                continue;
            };
            let runbook = alert
                .annotations
                .get("runbook_url")
                .or_else(|| alert.annotations.get("runbook"))
                .cloned()
                .or_else(|| {
                    alert
                        .links
                        .iter()
                        .find(|link| link.title.to_ascii_lowercase().contains("runbook"))
                        .map(|link| link.url.clone())
                });
            return Some(Diagnosis {
                rule: config.name.clone(),
                summary,
                facts: said,
                remediations: config
                    .remediations
                    .iter()
                    .filter_map(|template| render(template))
                    .collect(),
                runbook,
                confidence: config.confidence,
            });
        }
        None
    }
}

/// A metric's numbers, as templates see them.
#[derive(Debug, Clone, Serialize)]
struct MetricFacts {
    current: f64,
    baseline: Option<f64>,
    peak: Option<f64>,
    ratio: Option<f64>,
    trend: Trend,
    unit: String,
}

/// A function's growth, in percent.
#[derive(Debug, Clone, Serialize)]
struct Growth {
    name: String,
    from: f64,
    to: f64,
    points: f64,
}

/// A function's share, in percent.
#[derive(Debug, Clone, Serialize)]
struct Share {
    name: String,
    share: f64,
}

/// The newest change before the alert, as templates see it.
#[derive(Debug, Clone, Serialize)]
struct ChangeFacts {
    service: String,
    version: String,
    /// `checkout 1.4.2`.
    title: String,
    /// `deploy`, `config change`…
    noun: String,
    /// `deployed`, `config changed`…
    verb: String,
    who: String,
    /// Whole minutes between the change and the alert's start.
    minutes: i64,
    /// The same for people: `7 min`, `2 h 5 min`, `less than a minute`.
    before: String,
}

/// A container of the workload, as templates see it.
#[derive(Debug, Clone, Serialize)]
struct ContainerView {
    name: String,
    pod: String,
    restarts: u64,
    reason: String,
    memory_mib: Option<f64>,
    limit_mib: Option<f64>,
    /// Peak working set over the limit, in percent.
    memory_percent: Option<f64>,
    throttled_percent: Option<f64>,
    /// CPU used over its limit, in percent.
    cpu_percent: Option<f64>,
}

impl ContainerView {
    fn of(facts: &ContainerFacts) -> ContainerView {
        const MIB: f64 = 1024.0 * 1024.0;
        let memory = facts.memory_peak_bytes.or(facts.memory_bytes);
        ContainerView {
            name: facts.container.clone(),
            pod: facts.pod.clone(),
            restarts: facts.restarts.unwrap_or(0),
            reason: facts.last_terminated.clone().unwrap_or_default(),
            memory_mib: memory.map(|bytes| bytes / MIB),
            limit_mib: facts.memory_limit_bytes.map(|bytes| bytes / MIB),
            memory_percent: match (memory, facts.memory_limit_bytes) {
                (Some(used), Some(limit)) if limit > 0.0 => Some(used / limit * 100.0),
                _ => None,
            },
            throttled_percent: facts.cpu_throttled.map(|share| share * 100.0),
            cpu_percent: match (facts.cpu_cores, facts.cpu_limit_cores) {
                (Some(used), Some(limit)) if limit > 0.0 => Some(used / limit * 100.0),
                _ => None,
            },
        }
    }
}

/// The evidence, reduced to what conditions and templates read.
#[derive(Debug)]
struct Facts {
    metrics: Vec<(String, MetricFacts)>,
    grown: Vec<Growth>,
    top: Vec<Share>,
    profile_problem: Option<String>,
    change: Option<ChangeFacts>,
    containers: Vec<ContainerView>,
}

impl Facts {
    fn of(gathered: Gathered<'_>, incident: &Incident) -> Facts {
        let Gathered {
            metrics,
            profile,
            changes,
            workload,
        } = gathered;
        let start = incident.alert.starts_at.unwrap_or(incident.opened_at);
        let change = changes
            .and_then(|changes| changes.changes.iter().find(|change| change.at <= start))
            .map(|change| ChangeFacts {
                service: change.service.clone(),
                version: change.version.clone().unwrap_or_default(),
                title: change.title(),
                noun: change.kind.noun().to_owned(),
                verb: change.kind.verb().to_owned(),
                who: change.who.clone().unwrap_or_default(),
                minutes: (start - change.at).num_minutes(),
                before: before((start - change.at).num_minutes()),
            });
        let containers = workload
            .map(|workload| workload.containers.iter().map(ContainerView::of).collect())
            .unwrap_or_default();
        let metrics = metrics
            .map(|metrics| {
                metrics
                    .series
                    .iter()
                    .filter(|series| series.status == EvidenceStatus::Ok)
                    .filter_map(|series: &MetricSummary| {
                        let current = series.current?;
                        let ratio = series
                            .baseline
                            .filter(|baseline| *baseline > 0.0)
                            .map(|baseline| current / baseline);
                        Some((
                            series.name.clone(),
                            MetricFacts {
                                current,
                                baseline: series.baseline,
                                peak: series.peak,
                                ratio,
                                trend: series.trend,
                                unit: series.unit.clone().unwrap_or_default(),
                            },
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let usable = profile.filter(|profile| profile.status == EvidenceStatus::Ok);
        let mut grown: Vec<Growth> = usable
            .map(|profile| {
                profile
                    .grown
                    .iter()
                    .map(|g| Growth {
                        name: g.name.clone(),
                        from: g.baseline_share * 100.0,
                        to: g.current_share * 100.0,
                        points: (g.current_share - g.baseline_share) * 100.0,
                    })
                    .collect()
            })
            .unwrap_or_default();
        grown.sort_by(|a, b| b.points.total_cmp(&a.points));
        let top = usable
            .map(|profile| {
                profile
                    .top_functions
                    .iter()
                    .map(|f| Share {
                        name: f.name.clone(),
                        share: f.self_share * 100.0,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let profile_problem = match profile {
            None => Some("no profile arrived".to_owned()),
            Some(profile) => match &profile.status {
                EvidenceStatus::Ok => None,
                EvidenceStatus::NoData { detail }
                | EvidenceStatus::Failed { detail }
                | EvidenceStatus::TimedOut { detail } => Some(detail.clone()),
            },
        };
        Facts {
            metrics,
            grown,
            top,
            profile_problem,
            change,
            containers,
        }
    }

    /// The first container for which `holds` gives a fact.
    fn container_fact(&self, holds: impl Fn(&ContainerView) -> Option<String>) -> Option<String> {
        self.containers.iter().find_map(holds)
    }

    /// The first series named `name` (or `name {…}` for one of several).
    fn metric(&self, name: &str) -> Option<&MetricFacts> {
        self.metrics
            .iter()
            .find(|(series, _)| series == name || series.starts_with(&format!("{name} {{")))
            .map(|(_, facts)| facts)
    }

    fn metric_context(&self) -> BTreeMap<String, MetricFacts> {
        let mut by_name = BTreeMap::new();
        for (name, facts) in &self.metrics {
            let short = name.split(" {").next().unwrap_or(name).to_owned();
            by_name.entry(short).or_insert_with(|| facts.clone());
        }
        by_name
    }

    /// The fact that makes `condition` hold, or `None` when it does not.
    fn check(&self, condition: &Condition) -> Option<String> {
        match condition {
            Condition::MetricRatio { metric, above } => {
                let facts = self.metric(metric)?;
                let ratio = facts.ratio?;
                (ratio >= *above).then(|| {
                    format!(
                        "`{metric}` {}{} against {}{} at baseline ({ratio:.1}×)",
                        number(facts.current),
                        unit(&facts.unit),
                        number(facts.baseline.unwrap_or(0.0)),
                        unit(&facts.unit),
                    )
                })
            }
            Condition::MetricTrend { metric, trend } => {
                let facts = self.metric(metric)?;
                (facts.trend == *trend).then(|| {
                    format!(
                        "`{metric}` is {} over the window: {}{} now, peak {}{}",
                        format!("{trend:?}").to_lowercase(),
                        number(facts.current),
                        unit(&facts.unit),
                        number(facts.peak.unwrap_or(facts.current)),
                        unit(&facts.unit),
                    )
                })
            }
            Condition::FunctionGrew { points } => {
                let first = self.grown.first()?;
                (first.points >= *points).then(|| {
                    format!(
                        "`{}` grew from {:.1}% to {:.1}% of the profile (+{:.1} points)",
                        first.name, first.from, first.to, first.points
                    )
                })
            }
            Condition::TopFunctionShare { above } => {
                let first = self.top.first()?;
                (first.share >= *above)
                    .then(|| format!("`{}` takes {:.1}% of the profile", first.name, first.share))
            }
            Condition::NoProfile => self
                .profile_problem
                .as_ref()
                .map(|problem| format!("no profile to look at: {problem}")),
            Condition::ChangedBefore { within_minutes } => {
                let change = self.change.as_ref()?;
                (change.minutes <= i64::from(*within_minutes)).then(|| {
                    let by = if change.who.is_empty() {
                        String::new()
                    } else {
                        format!(", by {}", change.who)
                    };
                    format!(
                        "{} {} {} before the alert{by}",
                        change.title, change.verb, change.before
                    )
                })
            }
            Condition::Terminated { reason } => self.container_fact(|container| {
                (container.reason == *reason).then(|| {
                    format!(
                        "container `{}` of `{}` last terminated {} ({} restarts)",
                        container.name, container.pod, container.reason, container.restarts
                    )
                })
            }),
            Condition::Restarting { at_least } => self.container_fact(|container| {
                (container.restarts >= *at_least).then(|| {
                    format!(
                        "container `{}` of `{}` restarted {} times",
                        container.name, container.pod, container.restarts
                    )
                })
            }),
            Condition::MemoryNearLimit { above } => self.container_fact(|container| {
                let percent = container.memory_percent?;
                (percent >= *above).then(|| {
                    format!(
                        "memory of `{}` peaked at {:.0} MiB of its {:.0} MiB limit ({percent:.0}%)",
                        container.name,
                        container.memory_mib.unwrap_or(0.0),
                        container.limit_mib.unwrap_or(0.0),
                    )
                })
            }),
            Condition::Throttled { above } => self.container_fact(|container| {
                let percent = container.throttled_percent?;
                (percent >= *above).then(|| {
                    format!(
                        "`{}` was throttled in {percent:.0}% of its CPU periods",
                        container.name
                    )
                })
            }),
            Condition::CpuNearLimit { above } => self.container_fact(|container| {
                let percent = container.cpu_percent?;
                (percent >= *above)
                    .then(|| format!("`{}` used {percent:.0}% of its CPU limit", container.name))
            }),
        }
    }
}

/// How long before the alert a change came, for people.
fn before(minutes: i64) -> String {
    match minutes {
        ..=0 => "less than a minute".to_owned(),
        1..=59 => format!("{minutes} min"),
        _ if minutes % 60 == 0 => format!("{} h", minutes / 60),
        _ => format!("{} h {} min", minutes / 60, minutes % 60),
    }
}

fn number(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

fn unit(unit: &str) -> String {
    if unit.is_empty() {
        String::new()
    } else {
        format!(" {unit}")
    }
}

/// The rules flamethread ships with (`diagnose/builtin.toml`, in the operator's format), tried
/// after the operator's. The file is part of the binary and checked by its tests, so reading it
/// cannot fail at run time.
pub fn builtin() -> Vec<RuleConfig> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Builtin {
        rules: Vec<RuleConfig>,
    }
    toml::from_str::<Builtin>(include_str!("diagnose/builtin.toml"))
        .expect("diagnose/builtin.toml is valid: checked by its tests")
        .rules
}

#[cfg(test)]
mod tests;
