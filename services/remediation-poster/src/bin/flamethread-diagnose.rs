//! Dry run of the diagnosis: evaluates the rules against a recorded incident and prints the
//! diagnosis and the reply remediation-poster would post, without NATS or Slack.
//!
//! ```text
//! flamethread-diagnose RECORDED.json [--config remediation-poster.toml] [--json]
//! ```
//! RECORDED.json is `{"incident": …, "metrics": …, "profile": …}` in the wire format (`proto/`):
//! an `incident.*` event's incident and the evidence published for it (`metrics` and `profile`
//! may be left out). `--config` reads `[diagnosis]` from a remediation-poster configuration file,
//! so operators can try their rules before deploying them. Exits 64 on bad input, naming it.

#![allow(clippy::print_stdout, reason = "a command-line tool prints its answer")]

use std::process::ExitCode;

use proto::{Incident, MetricsEvidence, ProfileEvidence};
use remediation_poster::{DiagnosisConfig, diagnose::RuleSet, record::ReplyRecord, render};
use serde::Deserialize;

#[derive(Deserialize)]
struct Recorded {
    incident: Incident,
    #[serde(default)]
    metrics: Option<MetricsEvidence>,
    #[serde(default)]
    profile: Option<ProfileEvidence>,
}

#[derive(Deserialize, Default)]
struct ConfigFile {
    #[serde(default)]
    diagnosis: DiagnosisConfig,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("flamethread-diagnose: {err}");
            ExitCode::from(64)
        }
    }
}

fn run() -> Result<(), String> {
    let mut recorded = None;
    let mut config = None;
    let mut json = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => config = Some(args.next().ok_or("--config needs a file")?),
            "--json" => json = true,
            "-h" | "--help" => {
                println!(
                    "usage: flamethread-diagnose RECORDED.json [--config remediation-poster.toml] [--json]"
                );
                return Ok(());
            }
            file if recorded.is_none() => recorded = Some(file.to_owned()),
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    let path = recorded.ok_or("give a recorded incident (RECORDED.json)")?;
    let text = std::fs::read_to_string(&path).map_err(|err| format!("{path}: {err}"))?;
    let recorded: Recorded = serde_json::from_str(&text).map_err(|err| format!("{path}: {err}"))?;
    let diagnosis = match &config {
        Some(file) => {
            let text = std::fs::read_to_string(file).map_err(|err| format!("{file}: {err}"))?;
            toml::from_str::<ConfigFile>(&text)
                .map_err(|err| format!("{file}: {err}"))?
                .diagnosis
        }
        None => DiagnosisConfig::default(),
    };
    let view = render::View {
        rules: RuleSet::new(diagnosis.rules)
            .map_err(|err| format!("{}: {err}", config.as_deref().unwrap_or("configuration")))?,
        trace_url: diagnosis.trace_url,
        evidence_deadline: diagnosis.evidence_deadline,
        silence_for: diagnosis.silence_for,
        chart_blocks: true,
    };
    let found = view.rules.diagnose(
        &recorded.incident,
        recorded.metrics.as_ref(),
        recorded.profile.as_ref(),
    );
    let mut record = ReplyRecord::default();
    record.content.incident = Some(recorded.incident);
    record.content.metrics = recorded.metrics;
    record.content.profile = recorded.profile;
    let reply = render::render_with(&record, "ft-reply:dry-run", &view);
    if json {
        let out = serde_json::json!({
            "diagnosis": found,
            "text": reply.text,
            "blocks": reply.blocks,
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return Ok(());
    }
    match &found {
        Some(diagnosis) => {
            println!("rule:       {}", diagnosis.rule);
            println!("confidence: {:?}", diagnosis.confidence);
            println!("diagnosis:  {}", diagnosis.summary);
            for fact in &diagnosis.facts {
                println!("  fact:     {fact}");
            }
            for step in &diagnosis.remediations {
                println!("  try:      {step}");
            }
            if let Some(runbook) = &diagnosis.runbook {
                println!("  runbook:  {runbook}");
            }
        }
        None => println!("no rule holds on this evidence"),
    }
    println!("\nreply text: {}", reply.text);
    println!(
        "reply blocks:\n{}",
        serde_json::to_string_pretty(&reply.blocks).unwrap_or_default()
    );
    Ok(())
}
