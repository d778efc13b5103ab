//! `flamethread-diagnose`, the dry run of the diagnosis: on the recorded incidents in
//! `deploy/diagnosis/` it names the rule, its facts and the reply; with an operator's rules file
//! their rule wins; bad input exits 64 naming the file. `FT_BLESS=1` rewrites the recorded
//! incidents from the fixtures below.

#![allow(clippy::unwrap_used, reason = "a panic is how a test fails")]

use std::{path::PathBuf, process::Command};

use proto::{
    IncidentChange, SchemaVersion,
    evidence::{
        EvidenceStatus, FunctionGrowth, FunctionShare, MetricSummary, ProfileSource, Trend,
    },
};
use serde_json::{Value, json};
use test_support::fixtures;

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../deploy/diagnosis/{name}"))
}

/// A HighCPU incident on `checkout` where a backtracking regex grew from 3% to 62% of the CPU.
fn regex_backtrack() -> Value {
    let mut incident =
        fixtures::incident_event("inc-7f3a", "1700000000.000100", IncidentChange::Opened, 1)
            .incident;
    incident.alert.service = Some("checkout".into());
    incident
        .alert
        .labels
        .insert("namespace".into(), "shop".into());
    incident.alert.annotations.insert(
        "runbook_url".into(),
        "https://runbooks.example/HighCPU".into(),
    );
    let mut metrics = fixtures::metrics_evidence("inc-7f3a", "metrics-inc-7f3a-r1", 0);
    metrics.series = vec![MetricSummary {
        name: "cpu".into(),
        query: "sum(rate(process_cpu_seconds_total{job=\"checkout\"}[1m]))".into(),
        unit: Some("cores".into()),
        current: Some(1.8),
        baseline: Some(0.4),
        peak: Some(1.95),
        trend: Trend::Rising,
        status: EvidenceStatus::Ok,
        points: Vec::new(),
    }];
    let profile = proto::ProfileEvidence {
        requested_by: None,
        schema_version: SchemaVersion::CURRENT,
        evidence_id: "profile-inc-7f3a-r1".into(),
        incident_id: Some(incident.id.clone()),
        request_id: None,
        status: EvidenceStatus::Ok,
        source: ProfileSource::Pyroscope,
        app: "checkout".into(),
        profile_type: "process_cpu:cpu:nanoseconds:cpu:nanoseconds".into(),
        window: incident.window,
        baseline: Some(incident.baseline),
        total: 9_000_000_000,
        unit: "nanoseconds".into(),
        top_functions: vec![
            FunctionShare {
                name: "regex_backtrack (checkout/search.py)".into(),
                self_value: 5_580_000_000,
                self_share: 0.62,
            },
            FunctionShare {
                name: "parse_json (checkout/api.py)".into(),
                self_value: 1_800_000_000,
                self_share: 0.2,
            },
        ],
        grown: vec![FunctionGrowth {
            name: "regex_backtrack (checkout/search.py)".into(),
            baseline_share: 0.031,
            current_share: 0.62,
        }],
        flamegraph_url: Some("http://127.0.0.1:9190/flamegraphs/profile-inc-7f3a-r1".into()),
        diff_url: Some("http://127.0.0.1:9190/flamegraphs/profile-inc-7f3a-r1/diff".into()),
        flamegraph_png: None,
        diff_png: None,
        baseline_label: None,
        folded: None,
        reply: None,
        collected_at: fixtures::at(0),
    };
    json!({"incident": incident, "metrics": metrics, "profile": profile})
}

fn recorded() -> PathBuf {
    let path = example("regex-backtrack.json");
    let fresh = serde_json::to_string_pretty(&regex_backtrack()).unwrap() + "\n";
    if std::env::var_os("FT_BLESS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        committed,
        fresh,
        "{} is stale: FT_BLESS=1 cargo test -p remediation-poster --test dry_run",
        path.display()
    );
    path
}

fn diagnose(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_flamethread-diagnose"))
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_dry_run_prints_the_diagnosis_and_the_reply() {
    let path = recorded();
    let (code, out, err) = diagnose(&[path.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("rule:       cpu-up-and-a-function-grew"),
        "{out}"
    );
    assert!(out.contains("confidence: High"), "{out}");
    assert!(
        out.contains("try:      kubectl -n shop rollout undo deployment/checkout"),
        "{out}"
    );
    assert!(
        out.contains("runbook:  https://runbooks.example/HighCPU"),
        "{out}"
    );
    assert!(
        out.contains("reply text: HighCPU: firing on checkout. CPU is 4.5× its baseline"),
        "{out}"
    );

    let (code, out, _) = diagnose(&[path.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0);
    let answer: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["diagnosis"]["rule"], "cpu-up-and-a-function-grew");
    assert!(answer["blocks"].as_array().unwrap().len() > 4);
}

#[test]
fn an_operators_rules_file_is_tried_first_and_bad_input_is_named() {
    let path = recorded();
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("remediation-poster.toml");
    std::fs::write(
        &rules,
        r#"
[diagnosis]
trace_url = "http://jaeger:16686/trace/{trace_id}"

[[diagnosis.rules]]
name = "search-regex"
labels = { namespace = "shop" }
when = [{ kind = "function_grew", points = 50 }]
summary = "The search regex again ({{ grown[0].to | round }}%)"
remediations = ["feature-flag search.regex off"]
confidence = "high"
"#,
    )
    .unwrap();
    let (code, out, err) = diagnose(&[path.to_str().unwrap(), "--config", rules.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("rule:       search-regex"), "{out}");
    assert!(out.contains("The search regex again (62.0%)"), "{out}");

    std::fs::write(
        &rules,
        "[[diagnosis.rules]]\nname = \"x\"\nsummary = \"{{ oops\"\nconfidence = \"high\"\n",
    )
    .unwrap();
    let (code, _, err) = diagnose(&[path.to_str().unwrap(), "--config", rules.to_str().unwrap()]);
    assert_eq!(code, 64);
    assert!(err.contains("diagnosis rule 0 (x): template"), "{err}");

    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "{\"incident\": 1}").unwrap();
    let (code, _, err) = diagnose(&[garbage.to_str().unwrap()]);
    assert_eq!(code, 64);
    assert!(err.contains("garbage.json: invalid type"), "{err}");
}
