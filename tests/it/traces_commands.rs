//! `/flamethread sql` and `/flamethread trace` end to end: typed in the Slack emulator, through
//! the gateway, alert-watcher (parsed into a `profile.traces` command), profile-fetcher (the span
//! store, the intake's sampler) and remediation-poster, answered on the command's `response_url`
//! to the asker only; and head sampling seen from a script's `curl`.

use std::time::Duration;

use serde_json::{Value, json};
use test_support::{NatsServer, wait_for};

use crate::{
    profile_command::{ask, ask_as, text_of},
    slack_edge::{
        Control, emulator_config, spawn_service, start_emulator, start_gateway, start_poster,
        start_watcher,
    },
    support::nats_config,
};

/// Reports one SpanEvent of `service`; the intake's answer.
async fn report(intake: std::net::SocketAddr, service: &str, span: u64, trace: u64) -> Value {
    let now = chrono::Utc::now().timestamp_micros();
    let response = reqwest::Client::new()
        .post(format!("http://{intake}/api/v1/spans"))
        .json(&json!([{
            "id": format!("{span:x}"),
            "trace_id": format!("{trace:032x}"),
            "name": format!("{service} <job>"),
            "start_timestamp_micros": now,
            "duration_micros": 250_000,
            "tags": [{"key": "service_name", "v_type": "string", "v_str": service}],
        }]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flamethread_sql_and_trace_answer_in_slack_and_sampling_obeys_them() {
    let nats = NatsServer::start().unwrap();
    let slack = start_emulator(emulator_config()).await;
    let control = Control::new(&slack);
    let _gateway = start_gateway(&nats, &slack).await;
    let _watcher = start_watcher(&nats, |config| {
        config.actions.spans = vec!["U0ONCALL".into()];
    })
    .await;
    let _poster = start_poster(&nats, &slack).await;
    let store = tempfile::tempdir().unwrap();
    let pages = test_support::reserve_port().unwrap();
    let intake = test_support::reserve_port().unwrap();
    let (pages_addr, intake_addr) = (pages.addr(), intake.addr());
    let traces = profile_fetcher::TracesConfig {
        listen: Some(intake_addr),
        dir: store.path().to_owned(),
        // Nothing of `checkout` is kept unless someone asks for it.
        sample_rates: [("checkout".to_owned(), 0.0)].into_iter().collect(),
        ..Default::default()
    };
    let _fetcher = spawn_service(|admin, shutdown| {
        drop((pages, intake));
        profile_fetcher::run(
            profile_fetcher::Config {
                nats: nats_config(&nats),
                admin,
                pages: profile_fetcher::PagesConfig {
                    listen: Some(pages_addr),
                    public_url: format!("http://{pages_addr}"),
                },
                traces,
                ..Default::default()
            },
            shutdown,
        )
    })
    .await;

    // A script's span is kept at the default rate; checkout's are sampled away and said so.
    assert_eq!(
        report(intake_addr, "cron", 1, 1).await,
        json!({"accepted": 1})
    );
    assert_eq!(
        report(intake_addr, "checkout", 2, 2).await,
        json!({"accepted": 0, "sampled_out": 1})
    );

    // SQL in Slack: a table in a code block, span text escaped, to the asker only. The intake
    // stores through JetStream, so the span becomes visible a moment after it was accepted:
    // asked again until it is.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let answer = loop {
        let answer = ask(
            &control,
            "/flamethread",
            "sql SELECT ServiceName, SpanName FROM otel_traces",
            |body| text_of(body).contains("```") || text_of(body).contains("matched no rows"),
        )
        .await;
        if text_of(&answer).contains("```") || std::time::Instant::now() > deadline {
            break answer;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    let text = answer["text"].as_str().unwrap();
    assert!(
        text.contains("`SELECT ServiceName, SpanName FROM otel_traces`: 1 row in "),
        "{text}"
    );
    assert!(text.contains("cron        | cron &lt;job&gt;"), "{text}");
    assert!(!text.contains("<job>"), "{text}");
    assert_eq!(answer["response_type"], "ephemeral", "{answer}");

    // Someone not on alert-watcher's [actions] spans list reads nothing.
    let stranger = ask_as(
        &control,
        "U0STRANGER",
        "/flamethread",
        "sql SELECT SpanName FROM otel_traces",
        |body| text_of(body).contains("not among the people"),
    )
    .await;
    assert!(!text_of(&stranger).contains("cron"), "{stranger}");
    assert_eq!(stranger["response_type"], "ephemeral", "{stranger}");

    let refused = ask(
        &control,
        "/flamethread",
        "sql DELETE FROM otel_traces",
        |body| text_of(body).contains("was refused"),
    )
    .await;
    assert!(text_of(&refused).contains("read-only"), "{refused}");
    let mistake = ask(&control, "/flamethread", "trace checkout 2d", |body| {
        text_of(body).contains("from 1s to 1h")
    })
    .await;
    assert_eq!(mistake["response_type"], "ephemeral", "{mistake}");

    // Trace everything of checkout for two minutes: its next spans are kept.
    let on = ask(&control, "/flamethread", "trace checkout 2m", |body| {
        text_of(body).contains("Keeping every span")
    })
    .await;
    assert!(
        text_of(&on).contains("Keeping every span of `checkout` until <!date^"),
        "{on}"
    );
    assert!(
        text_of(&on).contains("otherwise it keeps 0% of traces"),
        "{on}"
    );
    let mut span = 10;
    wait_for(Duration::from_secs(20), "checkout's spans kept", || {
        span += 1;
        let span = span;
        async move { report(intake_addr, "checkout", span, span).await["accepted"] == 1 }
    })
    .await
    .unwrap();
    // The span sampled away before the command never reached the store.
    let count = ask(
        &control,
        "/flamethread",
        "sql SELECT count(*) AS n FROM otel_traces WHERE TraceId = '00000000000000000000000000000002'",
        |body| text_of(body).contains("```"),
    )
    .await;
    let said = count["text"].as_str().unwrap();
    assert!(said.ends_with("```n\n-\n0```"), "{said}");
}
