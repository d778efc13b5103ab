//! A load harness for sandbox-runner on a real Docker engine: `--runs` trivial scripts (or
//! `--script FILE`) submitted at once to a runner with `--concurrency` sandboxes, through a real
//! nats-server. Reports the time from request published to result stored (p50/p90/p99/max), the
//! time of a lone run (the container start-to-removal overhead), and runs per minute.
//!
//! `cargo run --release -p sandbox-runner --example sandbox_load -- --runs 40 --concurrency 2`
//! (`--runtime runsc` for gVisor)

#![allow(clippy::print_stdout, reason = "a load harness reports on stdout")]

use std::time::{Duration, Instant};

use futures::StreamExt as _;
use hdrhistogram::Histogram;
use proto::{ObjectRef, ReplyTarget, SandboxRequest, SchemaVersion, sandbox::Language};
use test_support::NatsServer;
use tokio_util::sync::CancellationToken;

struct Args {
    runs: usize,
    concurrency: usize,
    script: String,
    runtime: sandbox_runner::SandboxRuntime,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        runs: 40,
        concurrency: 2,
        script: "print('hello')\n".to_owned(),
        runtime: sandbox_runner::SandboxRuntime::Runc,
    };
    let mut iter = std::env::args().skip(1);
    while let Some(flag) = iter.next() {
        let value = iter
            .next()
            .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))?;
        match flag.as_str() {
            "--runs" => args.runs = value.parse()?,
            "--concurrency" => args.concurrency = value.parse::<usize>()?.max(1),
            "--script" => args.script = std::fs::read_to_string(value)?,
            "--runtime" => {
                args.runtime = match value.as_str() {
                    "runc" => sandbox_runner::SandboxRuntime::Runc,
                    "runsc" => sandbox_runner::SandboxRuntime::Runsc,
                    other => anyhow::bail!("--runtime {other}: runc or runsc"),
                }
            }
            other => anyhow::bail!(
                "unknown flag {other} (use --runs, --concurrency, --script, --runtime)"
            ),
        }
    }
    Ok(args)
}

async fn submit(bus: &bus::Bus, id: &str, script: &str) -> anyhow::Result<()> {
    let key = format!("load/{id}.py");
    bus.blob_store()
        .await?
        .put(key.as_str(), &mut script.as_bytes())
        .await?;
    bus.publish(&SandboxRequest {
        schema_version: SchemaVersion::CURRENT,
        request_id: id.to_owned(),
        language: Language::Python,
        script: ObjectRef {
            bucket: bus.subjects().blob_bucket(),
            key,
            size: script.len() as u64,
            content_type: "text/x-python".into(),
        },
        file_name: format!("{id}.py"),
        // One person per run: this measures the engine, not the per-person throttle.
        requested_by: format!("U-{id}"),
        limits: None,
        reply: ReplyTarget::Thread {
            channel: "C0LOAD".into(),
            thread_ts: "1.1".into(),
        },
    })
    .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let nats = NatsServer::start()?;
    let work = tempfile::tempdir()?;
    let reservation = test_support::reserve_port()?;
    let admin = reservation.addr();
    let nats_config = bus::NatsConfig {
        url: nats.url(),
        ..Default::default()
    };
    let config = sandbox_runner::Config {
        nats: nats_config.clone(),
        admin: runtime::AdminConfig { listen: admin },
        sandbox: sandbox_runner::SandboxConfig {
            work_dir: work.path().to_string_lossy().into_owned(),
            concurrency: args.concurrency,
            runtime: args.runtime,
            ..Default::default()
        },
        ..Default::default()
    };
    let shutdown = CancellationToken::new();
    drop(reservation);
    let runner = tokio::spawn(sandbox_runner::run(config, shutdown.clone()));
    test_support::wait_ready(admin, Duration::from_secs(60)).await?;
    let bus = bus::Bus::connect(&nats_config, "sandbox-load").await?;
    bus.provision().await?;
    let mut results = bus
        .client()
        .subscribe(bus.subjects().subject(proto::Subject::SandboxResult))
        .await?;

    // A lone run first: the overhead of one container from request to result.
    let lone = Instant::now();
    submit(&bus, "lone", &args.script).await?;
    results.next().await;
    let lone = lone.elapsed();

    let started = Instant::now();
    let mut sent = std::collections::HashMap::new();
    for i in 0..args.runs {
        let id = format!("run-{i}");
        sent.insert(id.clone(), Instant::now());
        submit(&bus, &id, &args.script).await?;
    }
    let mut latency = Histogram::<u64>::new(3)?;
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for _ in 0..args.runs {
        let message = tokio::time::timeout(Duration::from_secs(600), results.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("the result subscription ended"))?;
        let result: serde_json::Value = serde_json::from_slice(&message.payload)?;
        let id = result["request_id"].as_str().unwrap_or_default();
        if let Some(at) = sent.get(id) {
            latency.record(at.elapsed().as_millis() as u64)?;
        }
        *outcomes
            .entry(result["outcome"]["kind"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    let total = started.elapsed();
    println!("lone run, request to result: {} ms", lone.as_millis());
    println!(
        "{} runs, concurrency {}: {:.1} s, {:.1} runs/min; outcomes {outcomes:?}",
        args.runs,
        args.concurrency,
        total.as_secs_f64(),
        args.runs as f64 * 60.0 / total.as_secs_f64()
    );
    println!(
        "request to result under load: p50 {} ms, p90 {} ms, p99 {} ms, max {} ms",
        latency.value_at_quantile(0.5),
        latency.value_at_quantile(0.9),
        latency.value_at_quantile(0.99),
        latency.max()
    );
    shutdown.cancel();
    let _ = runner.await;
    Ok(())
}
