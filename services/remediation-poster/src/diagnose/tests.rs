use proto::IncidentChange;
use test_support::fixtures;

use proto::evidence::ContainerFacts;

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
    let err = RuleSet::new(broken.clone()).unwrap_err().to_string();
    assert!(
        err.starts_with("diagnosis rule 0 (payments-gc): alert:"),
        "{err}"
    );
    broken[0].alert = None;
    broken[0].summary = "{{ unclosed".into();
    let err = RuleSet::new(broken).unwrap_err();
    assert_eq!((err.index, err.part.as_str()), (0, "template"));
}

fn deploy(incident: &Incident, minutes_before: i64) -> ChangesEvidence {
    let start = incident.alert.starts_at.unwrap_or(incident.opened_at);
    ChangesEvidence {
        schema_version: proto::SchemaVersion::CURRENT,
        evidence_id: "c".into(),
        incident_id: incident.id.clone(),
        status: EvidenceStatus::Ok,
        window: incident.window,
        changes: vec![proto::Change {
            schema_version: proto::SchemaVersion::CURRENT,
            change_id: "ci-812".into(),
            service: "checkout".into(),
            environment: None,
            version: Some("1.4.2".into()),
            kind: proto::ChangeKind::Deploy,
            who: Some("CI run 812".into()),
            url: None,
            message: None,
            at: start - chrono::Duration::minutes(minutes_before),
            source: proto::ChangeSource::Api,
        }],
        notes: Vec::new(),
        collected_at: incident.opened_at,
    }
}

fn workload(incident: &Incident, container: ContainerFacts) -> WorkloadEvidence {
    WorkloadEvidence {
        schema_version: proto::SchemaVersion::CURRENT,
        evidence_id: "w".into(),
        incident_id: incident.id.clone(),
        status: EvidenceStatus::Ok,
        workload: None,
        replicas: None,
        containers: vec![container],
        events: Vec::new(),
        log: None,
        rollouts: Vec::new(),
        notes: Vec::new(),
        collected_at: incident.opened_at,
    }
}

fn oom_killed(restarts: u64, memory_percent: f64) -> ContainerFacts {
    ContainerFacts {
        pod: "checkout-7d9f8b6c5-x2k4z".into(),
        container: "checkout".into(),
        restarts: Some(restarts),
        last_terminated: Some("OOMKilled".into()),
        memory_peak_bytes: Some(memory_percent / 100.0 * 512.0 * 1048576.0),
        memory_limit_bytes: Some(512.0 * 1048576.0),
        ..ContainerFacts::default()
    }
}

#[test]
fn changes_and_the_workload_name_their_rule() {
    let rules = RuleSet::default();
    let incident = incident(&[("namespace", "shop")]);
    let diagnose = |changes: Option<&ChangesEvidence>,
                    workload: Option<&WorkloadEvidence>,
                    metrics: Option<&MetricsEvidence>,
                    profile: Option<&ProfileEvidence>| {
        rules
            .diagnose_all(
                &incident,
                Gathered {
                    metrics,
                    profile,
                    changes,
                    workload,
                },
            )
            .unwrap()
    };
    let recent = deploy(&incident, 7);
    let old = deploy(&incident, 300);
    let crashing = workload(&incident, oom_killed(4, 97.0));

    // A crash loop that began after a deploy: roll it back, naming the deploy.
    let crash = diagnose(Some(&recent), Some(&crashing), None, None);
    assert_eq!(crash.rule, "crash-loop-after-a-change");
    assert!(
        crash
            .summary
            .contains("and checkout 1.4.2 was deployed 7 min before the alert"),
        "{}",
        crash.summary
    );
    assert_eq!(
        crash.facts,
        [
            "container `checkout` of `checkout-7d9f8b6c5-x2k4z` restarted 4 times",
            "checkout 1.4.2 deployed 7 min before the alert, by CI run 812"
        ]
    );
    assert_eq!(
        crash.remediations,
        ["kubectl -n shop rollout undo deployment/checkout"]
    );

    // The same OOM kills long after the last deploy: the memory limit.
    let oom = diagnose(Some(&old), Some(&crashing), None, None);
    assert_eq!(oom.rule, "oom-killed-at-the-memory-limit");
    assert!(
        oom.summary.contains("at 97% of its 512 MiB limit"),
        "{}",
        oom.summary
    );
    assert_eq!(oom.confidence, Confidence::High);
    let below = workload(&incident, oom_killed(1, 60.0));
    assert_eq!(diagnose(None, Some(&below), None, None).rule, "oom-killed");

    // Throttled at the CPU limit.
    let throttled = workload(
        &incident,
        ContainerFacts {
            pod: "p".into(),
            container: "checkout".into(),
            cpu_throttled: Some(0.4),
            cpu_cores: Some(0.45),
            cpu_limit_cores: Some(0.5),
            ..ContainerFacts::default()
        },
    );
    let cpu = diagnose(None, Some(&throttled), None, None);
    assert_eq!(cpu.rule, "throttled-at-the-cpu-limit");
    assert!(
        cpu.summary
            .contains("throttled in 40% of its CPU periods while using 90% of its limit"),
        "{}",
        cpu.summary
    );

    // CPU up and a function grown after a deploy: the change is named, with the function.
    let metrics = metrics(vec![fixtures::series(
        "cpu",
        1.8,
        0.4,
        Trend::Rising,
        "cores",
    )]);
    let grown = profile(&[("parse_coupon", 0.6)], &[("parse_coupon", 0.05, 0.6)]);
    let after = diagnose(Some(&recent), None, Some(&metrics), Some(&grown));
    assert_eq!(after.rule, "cpu-and-a-function-grew-after-a-change");
    assert!(
        after.summary.contains(
            "after deploy checkout 1.4.2 (7 min before the alert): consider rolling it back"
        ),
        "{}",
        after.summary
    );
    // Without the change, the rule that does not name one.
    assert_eq!(
        diagnose(Some(&old), None, Some(&metrics), Some(&grown)).rule,
        "cpu-up-and-a-function-grew"
    );
}

/// The shipped rules file reads, compiles, and names each rule once (a duplicate would make
/// "which rule said this" ambiguous in a reply).
#[test]
fn the_builtin_rules_file_reads_and_compiles() {
    let rules = builtin();
    assert_eq!(rules.len(), 13);
    let names: std::collections::BTreeSet<_> = rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names.len(), rules.len());
    RuleSet::new(Vec::new()).expect("the built-in rules compile");
}
