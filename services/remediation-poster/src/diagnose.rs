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
    Incident, MetricsEvidence, ProfileEvidence,
    evidence::{EvidenceStatus, MetricSummary, Trend},
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

impl RuleSet {
    /// `rules` (tried first), then the built-in ones. Errors name the rule and what is wrong.
    pub fn new(rules: Vec<RuleConfig>) -> Result<RuleSet, String> {
        let mut env = Environment::new();
        // A remediation that needs a label the alert lacks is left out, not shown half-filled.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let mut compiled = Vec::new();
        for (i, config) in rules.into_iter().chain(builtin()).enumerate() {
            let at = |what: &str, err: &dyn std::fmt::Display| {
                format!("diagnosis rule {i} ({}): {what}: {err}", config.name)
            };
            let alert = config
                .alert
                .as_deref()
                .map(Regex::new)
                .transpose()
                .map_err(|err| at("alert", &err))?;
            let labels = config
                .labels
                .iter()
                .map(|(key, pattern)| {
                    Regex::new(&format!("^(?:{pattern})$"))
                        .map(|regex| (key.clone(), regex))
                        .map_err(|err| at(&format!("labels.{key}"), &err))
                })
                .collect::<Result<_, _>>()?;
            for template in std::iter::once(&config.summary).chain(&config.remediations) {
                env.template_from_str(template)
                    .map_err(|err| at("template", &err))?;
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

    /// The first rule that holds, or `None`.
    pub fn diagnose(
        &self,
        incident: &Incident,
        metrics: Option<&MetricsEvidence>,
        profile: Option<&ProfileEvidence>,
    ) -> Option<Diagnosis> {
        let alert = &incident.alert;
        let facts = Facts::of(metrics, profile);
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

/// The evidence, reduced to what conditions and templates read.
#[derive(Debug)]
struct Facts {
    metrics: Vec<(String, MetricFacts)>,
    grown: Vec<Growth>,
    top: Vec<Share>,
    profile_problem: Option<String>,
}

impl Facts {
    fn of(metrics: Option<&MetricsEvidence>, profile: Option<&ProfileEvidence>) -> Facts {
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
        }
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
        }
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

/// The rules flamethread ships with, tried after the operator's.
pub fn builtin() -> Vec<RuleConfig> {
    let rollout = [
        "kubectl -n {{ labels.namespace }} rollout history deployment/{{ service }}",
        "kubectl -n {{ labels.namespace }} rollout undo deployment/{{ service }}",
    ];
    vec![
        RuleConfig {
            name: "cpu-up-and-a-function-grew".into(),
            alert: None,
            labels: BTreeMap::new(),
            source: None,
            when: vec![
                Condition::MetricRatio { metric: "cpu".into(), above: 1.3 },
                Condition::FunctionGrew { points: 10.0 },
            ],
            summary: "CPU is {{ metric.cpu.ratio | round(1) }}× its baseline, and `{{ grown[0].name }}` went from {{ grown[0].from | round(1) }}% to {{ grown[0].to | round(1) }}% of it: most likely a change in that code path, or more traffic through it.".into(),
            remediations: rollout.iter().map(|s| (*s).to_owned()).collect(),
            confidence: Confidence::High,
        },
        RuleConfig {
            name: "memory-climbing".into(),
            alert: None,
            labels: BTreeMap::new(),
            source: None,
            when: vec![
                Condition::MetricTrend { metric: "memory".into(), trend: Trend::Rising },
                Condition::MetricRatio { metric: "memory".into(), above: 1.2 },
            ],
            summary: "Memory is climbing steadily ({{ metric.memory.baseline | round(1) }} → {{ metric.memory.current | round(1) }} {{ metric.memory.unit }}): a leak, or a cache or queue without a bound.".into(),
            remediations: vec![
                "kubectl -n {{ labels.namespace }} top pod -l app={{ service }}".into(),
                "kubectl -n {{ labels.namespace }} rollout restart deployment/{{ service }}".into(),
            ],
            confidence: Confidence::Medium,
        },
        RuleConfig {
            name: "errors-up".into(),
            alert: None,
            labels: BTreeMap::new(),
            source: None,
            when: vec![Condition::MetricRatio { metric: "errors".into(), above: 2.0 }],
            summary: "Errors are {{ metric.errors.ratio | round(1) }}× their baseline: if something was deployed just before, roll it back first.".into(),
            remediations: rollout.iter().map(|s| (*s).to_owned()).collect(),
            confidence: Confidence::Medium,
        },
        RuleConfig {
            name: "a-function-grew".into(),
            alert: None,
            labels: BTreeMap::new(),
            source: None,
            when: vec![Condition::FunctionGrew { points: 15.0 }],
            summary: "`{{ grown[0].name }}` went from {{ grown[0].from | round(1) }}% to {{ grown[0].to | round(1) }}% of the CPU: that code path changed or is being hit harder.".into(),
            remediations: vec![rollout[0].to_owned()],
            confidence: Confidence::Medium,
        },
        RuleConfig {
            name: "cpu-up-without-a-profile".into(),
            alert: None,
            labels: BTreeMap::new(),
            source: None,
            when: vec![
                Condition::MetricRatio { metric: "cpu".into(), above: 1.3 },
                Condition::NoProfile,
            ],
            summary: "CPU is {{ metric.cpu.ratio | round(1) }}× its baseline, but there is no profile to say where it goes: press Profile now.".into(),
            remediations: Vec::new(),
            confidence: Confidence::Low,
        },
        RuleConfig {
            name: "one-function-dominates".into(),
            alert: None,
            labels: BTreeMap::new(),
            source: None,
            when: vec![Condition::TopFunctionShare { above: 30.0 }],
            summary: "`{{ top[0].name }}` takes {{ top[0].share | round(1) }}% of the CPU; nothing says it changed, so compare with the baseline before blaming it.".into(),
            remediations: Vec::new(),
            confidence: Confidence::Low,
        },
    ]
}

#[cfg(test)]
mod tests;
