use proto::IncidentChange;
use test_support::fixtures;

use super::*;

fn incident(labels: &[(&str, &str)]) -> Incident {
    let mut incident = fixtures::incident_event("inc-1", "1.1", IncidentChange::Opened, 1).incident;
    incident.alert.service = Some("checkout".into());
    incident.alert.labels = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    incident
}

fn metrics(series: Vec<MetricSummary>) -> MetricsEvidence {
    let mut evidence = fixtures::metrics_evidence("inc-1", "m1", 0);
    evidence.series = series;
    evidence
}

fn profile(top: &[(&str, f64)], grown: &[(&str, f64, f64)]) -> ProfileEvidence {
    fixtures::profile_evidence(&incident(&[]), top, grown)
}

fn no_profile(detail: &str) -> ProfileEvidence {
    ProfileEvidence {
        status: EvidenceStatus::NoData {
            detail: detail.into(),
        },
        top_functions: Vec::new(),
        grown: Vec::new(),
        ..profile(&[], &[])
    }
}

#[test]
fn cpu_up_and_a_function_grew_is_a_confident_diagnosis_with_its_numbers() {
    let rules = RuleSet::default();
    let diagnosis = rules
        .diagnose(
            &incident(&[("namespace", "shop")]),
            Some(&metrics(vec![fixtures::series(
                "cpu",
                1.8,
                0.4,
                Trend::Rising,
                "cores",
            )])),
            Some(&profile(
                &[("regex_backtrack", 0.62), ("parse_json", 0.2)],
                &[("regex_backtrack", 0.031, 0.62)],
            )),
        )
        .unwrap();
    assert_eq!(diagnosis.rule, "cpu-up-and-a-function-grew");
    assert_eq!(diagnosis.confidence, Confidence::High);
    assert!(
        diagnosis
            .summary
            .starts_with("CPU is 4.5× its baseline, and `regex_backtrack` went from 3.1% to 62.0%"),
        "{}",
        diagnosis.summary
    );
    assert_eq!(
        diagnosis.facts,
        [
            "`cpu` 1.80 cores against 0.40 cores at baseline (4.5×)",
            "`regex_backtrack` grew from 3.1% to 62.0% of the profile (+58.9 points)"
        ]
    );
    assert_eq!(
        diagnosis.remediations,
        [
            "kubectl -n shop rollout history deployment/checkout",
            "kubectl -n shop rollout undo deployment/checkout"
        ]
    );
}

#[test]
fn a_remediation_that_needs_a_missing_label_is_left_out() {
    let diagnosis = RuleSet::default()
        .diagnose(
            &incident(&[]),
            Some(&metrics(vec![fixtures::series(
                "cpu",
                1.8,
                0.4,
                Trend::Rising,
                "cores",
            )])),
            Some(&profile(&[("f", 0.5)], &[("f", 0.1, 0.5)])),
        )
        .unwrap();
    assert!(
        diagnosis.remediations.is_empty(),
        "{:?}",
        diagnosis.remediations
    );
}

#[test]
fn memory_climbing_errors_up_and_function_growth_alone() {
    let rules = RuleSet::default();
    let memory = rules
        .diagnose(
            &incident(&[]),
            Some(&metrics(vec![fixtures::series(
                "memory",
                900.0,
                500.0,
                Trend::Rising,
                "MiB",
            )])),
            None,
        )
        .unwrap();
    assert_eq!(memory.rule, "memory-climbing");
    assert!(
        memory.summary.contains("500.0 → 900.0 MiB"),
        "{}",
        memory.summary
    );
    assert_eq!(memory.confidence, Confidence::Medium);

    let errors = rules
        .diagnose(
            &incident(&[]),
            Some(&metrics(vec![fixtures::series(
                "errors",
                12.0,
                2.0,
                Trend::Flat,
                "/s",
            )])),
            None,
        )
        .unwrap();
    assert_eq!(errors.rule, "errors-up");
    assert!(
        errors.summary.starts_with("Errors are 6.0×"),
        "{}",
        errors.summary
    );

    let grew = rules
        .diagnose(
            &incident(&[]),
            Some(&metrics(vec![fixtures::series(
                "cpu",
                1.0,
                1.0,
                Trend::Flat,
                "cores",
            )])),
            Some(&profile(
                &[("cache_miss", 0.3)],
                &[("cache_miss", 0.05, 0.3)],
            )),
        )
        .unwrap();
    assert_eq!(grew.rule, "a-function-grew", "CPU flat: not the CPU rule");
}

#[test]
fn partial_evidence_gives_an_honest_low_confidence_or_nothing() {
    let rules = RuleSet::default();
    let blind = rules
        .diagnose(
            &incident(&[]),
            Some(&metrics(vec![fixtures::series(
                "cpu",
                2.0,
                0.5,
                Trend::Rising,
                "cores",
            )])),
            Some(&no_profile("no continuous profiler is configured")),
        )
        .unwrap();
    assert_eq!(blind.rule, "cpu-up-without-a-profile");
    assert_eq!(blind.confidence, Confidence::Low);
    assert!(blind.facts[1].contains("no continuous profiler is configured"));

    let dominated = rules
        .diagnose(
            &incident(&[]),
            None,
            Some(&profile(&[("json_dumps", 0.45)], &[])),
        )
        .unwrap();
    assert_eq!(dominated.rule, "one-function-dominates");

    assert_eq!(
        rules.diagnose(&incident(&[]), None, Some(&profile(&[("a", 0.1)], &[]))),
        None,
        "nothing holds: no diagnosis rather than a guess"
    );
    let failed = metrics(vec![MetricSummary {
        status: EvidenceStatus::Failed {
            detail: "down".into(),
        },
        ..fixtures::series("cpu", 9.0, 1.0, Trend::Rising, "cores")
    }]);
    assert_eq!(
        rules.diagnose(&incident(&[]), Some(&failed), None),
        None,
        "failed series are not facts"
    );
}

#[test]
fn operator_rules_come_first_match_alerts_and_say_what_is_wrong() {
    let config: Vec<RuleConfig> = toml::from_str::<BTreeMap<String, Vec<RuleConfig>>>(
        r#"
[[rules]]
name = "payments-gc"
alert = "^HighLatency$"
labels = { team = "payments|billing" }
when = [{ kind = "top_function_share", above = 20 }]
summary = "GC again: `{{ top[0].name }}` at {{ top[0].share | round }}%"
remediations = ["see {{ annotations.dashboard }}", "page {{ labels.team }}"]
confidence = "medium"
"#,
    )
    .unwrap()
    .remove("rules")
    .unwrap();
    let rules = RuleSet::new(config.clone()).unwrap();
    let mut latency = incident(&[("team", "payments")]);
    latency.alert.name = "HighLatency".into();
    latency
        .alert
        .annotations
        .insert("runbook_url".into(), "https://runbooks/latency".into());
    let gc = profile(&[("runtime.gcBgMarkWorker", 0.35)], &[]);
    let diagnosis = rules.diagnose(&latency, None, Some(&gc)).unwrap();
    assert_eq!(diagnosis.rule, "payments-gc");
    assert_eq!(
        diagnosis.summary,
        "GC again: `runtime.gcBgMarkWorker` at 35.0%"
    );
    assert_eq!(
        diagnosis.remediations,
        ["page payments"],
        "no dashboard annotation"
    );
    assert_eq!(
        diagnosis.runbook.as_deref(),
        Some("https://runbooks/latency")
    );
    // Another alert name: the built-in rule instead.
    let mut other = latency.clone();
    other.alert.name = "HighCPU".into();
    assert_eq!(
        rules.diagnose(&other, None, Some(&gc)).unwrap().rule,
        "one-function-dominates"
    );

    let mut broken = config;
    broken[0].alert = Some("(".into());
    let err = RuleSet::new(broken.clone()).unwrap_err();
    assert!(
        err.starts_with("diagnosis rule 0 (payments-gc): alert:"),
        "{err}"
    );
    broken[0].alert = None;
    broken[0].summary = "{{ unclosed".into();
    assert!(RuleSet::new(broken).unwrap_err().contains("template"));
}
