//! The real alert path, end to end, with nothing emulated but Slack: a real Prometheus scrapes
//! the demo checkout service (`demo-app`), whose coupon campaign burns the CPU; the demo's own
//! alerting rule (`deploy/local/demo/rules.yml`, the file `up.sh` loads) fires; a real
//! Alertmanager posts into the emulator's `#alerts` through its Slack notifier; slack-gateway,
//! alert-watcher, profile-fetcher (the metrics from that Prometheus, a live CPU profile from the
//! demo's pprof endpoint, a flamegraph page) and remediation-poster answer in the alert's thread;
//! the campaign stops, the rule stops firing, Alertmanager posts `[RESOLVED]`, and the same reply
//! says so. One trace id runs from the gateway through every service on the path.

use std::{collections::BTreeSet, net::SocketAddr, time::Duration};

use serde_json::Value;
use test_support::{Alertmanager, NatsServer, Prometheus, reserve_port, wait_for};
use tokio_util::sync::CancellationToken;

use crate::{
    slack_edge::{
        Control, RunningService, emulator_config, observer, published, replies_of, spawn_service,
        start_emulator, start_gateway, start_poster, start_watcher,
    },
    support::{nats_config, stored_messages},
};

const RULES: &str = include_str!("../../deploy/local/demo/rules.yml");
const ALERTMANAGER: &str = include_str!("../../deploy/local/demo/alertmanager.yml");

/// The files shared into the thread.
fn pictures_of(message: &Value) -> Vec<Value> {
    let replies = message["replies"].as_array().cloned().unwrap_or_default();
    replies
        .iter()
        .filter_map(|reply| reply["files"].as_array())
        .flatten()
        .cloned()
        .collect()
}

/// How many distinct colours a PNG has (a blank picture has one).
/// Every pixel of `png`, as its channels (RGB or RGBA).
fn png_pixels(png: &[u8]) -> Vec<Vec<u8>> {
    let mut reader = png::Decoder::new(std::io::Cursor::new(png))
        .read_info()
        .unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    buf[..info.buffer_size()]
        .chunks_exact(channels)
        .map(<[u8]>::to_vec)
        .collect()
}

fn png_colours(png: &[u8]) -> usize {
    png_pixels(png)
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

fn blocks_text(message: &Value) -> String {
    serde_json::to_string(&message["blocks"]).unwrap()
}

/// The demo checkout service, in this process, serving on a free port.
async fn start_demo() -> (demo_app::Demo, SocketAddr, CancellationToken) {
    let reservation = reserve_port().unwrap();
    let addr = reservation.addr();
    drop(reservation);
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let demo = demo_app::Demo::start(&demo_app::Config {
        listen: addr,
        workers: 2,
        campaign: false,
        coupon_length: 22,
    });
    let shutdown = CancellationToken::new();
    tokio::spawn(demo_app::serve(listener, demo.clone(), shutdown.clone()));
    (demo, addr, shutdown)
}

/// profile-fetcher with the metrics from `prometheus`, live profiles of the demo at `demo`, and
/// its flamegraph pages on `pages` (a fixed address, so a restarted fetcher serves the same links).
async fn start_fetcher(
    nats: &NatsServer,
    prometheus: &Prometheus,
    demo: SocketAddr,
    pages: SocketAddr,
    spans: Option<(SocketAddr, &std::path::Path)>,
) -> RunningService {
    let config = profile_fetcher::Config {
        traces: match spans {
            Some((listen, dir)) => profile_fetcher::TracesConfig {
                listen: Some(listen),
                dir: dir.to_owned(),
                sql_token: profile_fetcher::Secret::new(SQL_TOKEN),
                ..Default::default()
            },
            None => Default::default(),
        },
        nats: nats_config(nats),
        prometheus: profile_fetcher::PrometheusConfig {
            url: prometheus.url(),
            ..Default::default()
        },
        pages: profile_fetcher::PagesConfig {
            listen: Some(pages),
            public_url: format!("http://{pages}"),
        },
        live: profile_fetcher::LiveConfig {
            targets: [("checkout".to_owned(), format!("http://{demo}"))].into(),
            default_seconds: 3,
            ..Default::default()
        },
        ..Default::default()
    };
    spawn_service(|admin, shutdown| {
        profile_fetcher::run(profile_fetcher::Config { admin, ..config }, shutdown)
    })
    .await
}

/// alert-watcher recovering labels from `alertmanager`, looking two minutes back (this
/// Prometheus is younger than the default 15 minutes anyway).
async fn start_alert_watcher(nats: &NatsServer, alertmanager: &Alertmanager) -> RunningService {
    let url = format!("http://{}", alertmanager.addr());
    start_watcher(nats, |config| {
        config.alertmanager.url = url;
        config.incidents.lookback = Duration::from_secs(120);
    })
    .await
}

/// A real Prometheus scraping the demo every second with the demo's rule, and a real
/// Alertmanager posting into the emulator's `#alerts`.
fn start_monitoring(
    slack: &slack_emulator::Running,
    demo: SocketAddr,
) -> (Alertmanager, Prometheus) {
    let alertmanager = Alertmanager::start(&ALERTMANAGER.replace(
        "__SLACK_WEBHOOK__",
        &slack.webhook_url("T0FLAME/B0AMGR/alertmanager"),
    ))
    .unwrap();
    let prometheus = Prometheus::start_with_rules(
        &format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{}']\n\
             scrape_configs:\n  - job_name: checkout\n    static_configs:\n      - targets: ['{demo}']\n",
            alertmanager.addr()
        ),
        RULES,
    )
    .unwrap();
    (alertmanager, prometheus)
}

/// Waits until the alert's first reply satisfies `done`.
async fn wait_reply(control: &Control, what: &str, done: impl Fn(&str) -> bool) {
    let waited = wait_for(Duration::from_secs(120), what, || async {
        control
            .channel("C0ALERTS")
            .await
            .first()
            .is_some_and(|alert| {
                replies_of(alert)
                    .first()
                    .is_some_and(|reply| done(&blocks_text(reply)))
            })
    })
    .await;
    if let Err(err) = waited {
        let channel = control.channel("C0ALERTS").await;
        panic!("{err}; #alerts holds {channel:?}");
    }
}

const SQL_TOKEN: &str = "alert-path-sql-token";

/// Sends `spans` to the span intake at `intake` as OTLP/HTTP protobuf, converted by the
/// OpenTelemetry exporter's own transform.
async fn export_to_intake(intake: SocketAddr, spans: Vec<opentelemetry_sdk::trace::SpanData>) {
    use opentelemetry_proto::{
        tonic::collector::trace::v1::ExportTraceServiceRequest,
        transform::{
            common::tonic::ResourceAttributesWithSchema,
            trace::tonic::group_spans_by_resource_and_scope,
        },
    };
    use prost::Message as _;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("flamethread")
        .build();
    let request = ExportTraceServiceRequest {
        resource_spans: group_spans_by_resource_and_scope(
            spans,
            &ResourceAttributesWithSchema::from(&resource),
        ),
    };
    let response = reqwest::Client::new()
        .post(format!("http://{intake}/v1/traces"))
        .header("Content-Type", "application/x-protobuf")
        .body(request.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// The rows of `query` over the span store, through the SQL API.
async fn sql(pages: SocketAddr, query: &str) -> Vec<Vec<String>> {
    let response = reqwest::Client::new()
        .post(format!("http://{pages}/api/v1/sql"))
        .bearer_auth(SQL_TOKEN)
        .body(query.to_owned())
        .send()
        .await
        .unwrap();
    let answer: serde_json::Value = response.json().await.unwrap();
    serde_json::from_value(answer["rows"].clone()).unwrap_or_default()
}

/// The trace id in a stored message's `traceparent` header.
fn trace_id_of(message: &async_nats::jetstream::message::StreamMessage) -> String {
    let traceparent = message
        .headers
        .get("traceparent")
        .expect("every stored message carries its trace")
        .to_string();
    traceparent.split('-').nth(1).unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_alert_from_prometheus_gets_one_diagnosis_with_its_profile_and_resolves() {
    let (telemetry, exporter) = crate::support::telemetry();
    let nats = NatsServer::start().unwrap();
    let slack = start_emulator(emulator_config()).await;
    let control = Control::new(&slack);
    let (demo, demo_addr, demo_shutdown) = start_demo().await;

    let (alertmanager, prometheus) = start_monitoring(&slack, demo_addr);
    let gateway = start_gateway(&nats, &slack).await;
    let watcher = start_alert_watcher(&nats, &alertmanager).await;
    let pages = reserve_port().unwrap().addr();
    let span_intake = reserve_port().unwrap().addr();
    let span_store = tempfile::tempdir().unwrap();
    let fetcher = start_fetcher(
        &nats,
        &prometheus,
        demo_addr,
        pages,
        Some((span_intake, span_store.path())),
    )
    .await;
    let poster = start_poster(&nats, &slack).await;
    let bus = observer(&nats).await;

    // At rest the rule does not fire: Prometheus records a calm baseline and nothing is posted.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(
        control.channel("C0ALERTS").await.is_empty(),
        "no alert while checkout is calm"
    );

    // The campaign starts: checkout's CPU climbs past the rule's half core.
    demo.set_campaign(true);
    wait_reply(
        &control,
        "the reply with the profile under Alertmanager's message",
        |reply| reply.contains("coupon_pattern_matches"),
    )
    .await;
    let channel = control.channel("C0ALERTS").await;
    let firing = &channel[0];
    let title = firing["attachments"][0]["title"].as_str().unwrap();
    assert!(
        title.starts_with("[FIRING:1] CheckoutCpuHigh"),
        "Alertmanager's own title: {title}"
    );
    let replies = replies_of(firing);
    assert_eq!(replies.len(), 1, "one reply: {replies:?}");

    // The incident, with the labels Alertmanager's API gave back.
    let opened = published(&bus, "FT_INCIDENTS", "ft.incident.opened").await;
    assert_eq!(opened.len(), 1, "{opened:?}");
    let incident = &opened[0]["incident"];
    assert_eq!(incident["alert"]["service"], "checkout");
    assert_eq!(incident["alert"]["labels"]["team"], "payments");
    assert_eq!(incident["thread"]["ts"], firing["ts"]);

    // The evidence: the CPU from Prometheus, the hot function from the live profile, and a
    // flamegraph page that draws it.
    let metrics = published(&bus, "FT_EVIDENCE", "ft.evidence.metrics").await;
    assert_eq!(metrics.len(), 1, "{metrics:?}");
    let cpu = metrics[0]["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|series| series["name"] == "cpu")
        .unwrap_or_else(|| panic!("no cpu series: {}", metrics[0]));
    assert_eq!(cpu["status"]["state"], "ok", "{cpu}");
    // The rule fired on 2.5 CPU-seconds in 10 s; over the query's 60 s rate interval that is at
    // least ~0.04 cores at the window's end, and rising.
    let peak = cpu["peak"].as_f64().unwrap();
    assert!(peak > 0.04, "the burst shows at the window's end: {cpu}");
    assert_eq!(cpu["trend"], "rising", "{cpu}");
    let profile = published(&bus, "FT_EVIDENCE", "ft.evidence.profile").await;
    assert_eq!(profile.len(), 1, "{profile:?}");
    let profile = &profile[0];
    assert_eq!(profile["source"], "pprof", "{profile}");
    let hottest = profile["top_functions"][0]["name"].as_str().unwrap();
    assert!(
        hottest.contains("coupon_pattern_matches"),
        "the matcher burns the CPU: {profile}"
    );
    let flamegraph = profile["flamegraph_url"].as_str().unwrap();
    let page = reqwest::get(flamegraph).await.unwrap();
    assert_eq!(page.status(), 200, "{flamegraph}");
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("coupon_pattern_matches")
    );
    let reply = blocks_text(&replies[0]);
    assert!(
        reply.contains(flamegraph),
        "the reply links the flamegraph: {reply}"
    );
    let diagnosis = replies[0]["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|block| block["text"]["text"].as_str())
        .find(|text| text.starts_with("*Diagnosis*"))
        .unwrap_or_else(|| panic!("no diagnosis: {reply}"));
    assert!(
        diagnosis.contains("coupon_pattern_matches"),
        "the diagnosis names the function: {diagnosis}"
    );

    // One trace from Slack's delivery to the reply: the gateway's receive span and every
    // consumer on the path carry the trace id the incident was published in.
    let stored = stored_messages(&bus, "FT_INCIDENTS").await;
    let opened_message = stored
        .iter()
        .find(|message| message.subject.as_str() == "ft.incident.opened")
        .unwrap();
    let trace_id = trace_id_of(opened_message);
    assert!(
        reply.contains(&trace_id),
        "the reply shows its trace id: {reply}"
    );
    telemetry.flush();
    let spans = exporter.get_finished_spans().unwrap();
    let in_trace: Vec<_> = spans
        .iter()
        .filter(|span| span.span_context.trace_id().to_string() == trace_id)
        .collect();
    let consumers: BTreeSet<String> = in_trace
        .iter()
        .filter(|span| span.name == "consume")
        .filter_map(|span| {
            span.attributes
                .iter()
                .find(|kv| kv.key.as_str() == "messaging.consumer.group.name")
                .map(|kv| kv.value.to_string())
        })
        .collect();
    assert!(
        in_trace.iter().any(|span| span.name == "slack.receive"),
        "the gateway started the trace: {:?}",
        in_trace.iter().map(|span| &span.name).collect::<Vec<_>>()
    );
    for consumer in [
        "alert-watcher-messages",
        "profile-fetcher-incidents",
        "remediation-poster-incidents",
        "remediation-poster-evidence",
    ] {
        assert!(
            consumers.contains(consumer),
            "{consumer} not in {consumers:?}"
        );
    }

    // The pipeline's trace in flamethread's own span store, exported as the services' OTLP
    // exporter does (the same transform, the same endpoint): "why was this reply slow?" is one
    // query by the trace id the reply shows.
    export_to_intake(
        span_intake,
        in_trace.iter().map(|span| (*span).clone()).collect(),
    )
    .await;
    let query = format!(
        "SELECT SpanName, SpanAttributes['messaging.consumer.group.name'] AS consumer, \
         Duration / 1e6 AS ms FROM otel_traces WHERE TraceId = '{trace_id}' ORDER BY Timestamp"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let stored = loop {
        let stored = sql(pages, &query).await;
        if stored.len() == in_trace.len() {
            break stored;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the pipeline's {} spans were not all stored: {stored:?}",
            in_trace.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        stored[0][0], "slack.receive",
        "the root comes first: {stored:?}"
    );
    let stored_consumers: BTreeSet<String> = stored
        .iter()
        .map(|row| row[1].clone())
        .filter(|consumer| consumer != "NULL")
        .collect();
    assert!(
        consumers.is_subset(&stored_consumers),
        "{consumers:?} not all in the store's {stored_consumers:?}"
    );

    // The metrics chart and the flamegraph preview are shared into the thread as PNGs, once
    // each, and each is a picture (not one colour). The emulator's page, as Chromium renders
    // it, shows the reply's markup rendered (bold, links) and both pictures loaded.
    wait_for(
        Duration::from_secs(60),
        "the pictures in the thread",
        || async {
            control
                .channel("C0ALERTS")
                .await
                .first()
                .is_some_and(|alert| pictures_of(alert).len() >= 2)
        },
    )
    .await
    .unwrap();
    let channel = control.channel("C0ALERTS").await;
    let pictures = pictures_of(&channel[0]);
    let titles: Vec<&str> = pictures
        .iter()
        .filter_map(|p| p["title"].as_str())
        .collect();
    assert_eq!(
        pictures.len(),
        2,
        "the chart and the flamegraph: {pictures:?}"
    );
    assert!(
        titles[0].starts_with("Metrics · CheckoutCpuHigh on checkout"),
        "{titles:?}"
    );
    assert!(
        titles[1].starts_with("Flamegraph · CheckoutCpuHigh"),
        "{titles:?}"
    );
    let url = format!("http://{}/", slack.addr());
    // On a busy machine Chromium can dump the DOM before the images' load events (seen with the
    // suite running around it); the thread is the same each time, so it is read again, at most
    // three times, and the assertions below judge the last reading.
    let mut dom = String::new();
    for _ in 0..3 {
        let url = url.clone();
        dom = tokio::task::spawn_blocking(move || test_support::rendered_dom(&url))
            .await
            .unwrap()
            .unwrap();
        if dom.contains("data-loaded=\"800x") && dom.contains("data-loaded=\"1200x") {
            break;
        }
    }
    for picture in &pictures {
        assert_eq!(picture["mimetype"], "image/png", "{picture}");
        let file_id = picture["id"].as_str().unwrap();
        let image = reqwest::get(format!("http://{}/control/files/{file_id}", slack.addr()))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert!(
            png_colours(&image) > 20,
            "{file_id} is a picture, not a blank"
        );
        assert!(
            dom.contains(&format!("/control/files/{file_id}")),
            "{file_id} is shown: {dom}"
        );
    }
    assert!(
        dom.contains("data-loaded=\"800x"),
        "the chart loaded: {dom}"
    );
    assert!(
        dom.contains("data-loaded=\"1200x"),
        "the flamegraph preview loaded: {dom}"
    );
    assert!(dom.contains("<b>"), "bold is rendered: {dom}");
    assert!(
        dom.contains(&format!("href=\"{flamegraph}\"")),
        "links are links: {dom}"
    );
    assert!(
        dom.contains(">Open the interactive flamegraph</a>"),
        "{dom}"
    );
    // A Slack link left unrendered starts with `<http:` or `<https:`; a profiled function
    // such as `<http::request::Request<B>>::call` is code, rightly escaped, not a link.
    for raw in [
        "*Status*",
        "<http:/",
        "<https:/",
        "&lt;http:/",
        "&lt;https:/",
    ] {
        if let Some(at) = dom.find(raw) {
            let around: String = dom[at.saturating_sub(400)..].chars().take(700).collect();
            panic!("raw markup {raw:?} on the page: …{around}…");
        }
    }
    // What a person sees: a screenshot of the page holds the chart PNG as drawn: its CPU line's
    // red, #D62728, in more than a few pixels (no other picture or page element uses it; the
    // page draws Slack's own chart blocks in another red), not a blank or a broken image.
    let url = format!("http://{}/", slack.addr());
    let shot = tokio::task::spawn_blocking(move || test_support::screenshot(&url, 1300, 3600))
        .await
        .unwrap()
        .unwrap();
    let pixels = png_pixels(&shot);
    let chart_red = pixels
        .iter()
        .filter(|pixel| {
            [214i16, 39, 40]
                .iter()
                .zip(pixel.iter())
                .all(|(want, got)| (want - i16::from(*got)).abs() <= 12)
        })
        .count();
    assert!(
        png_colours(&shot) > 50 && chart_red > 50,
        "the screenshot shows the chart: {} colours, {chart_red} pixels of its line",
        png_colours(&shot)
    );

    // The campaign ends, the rule stops firing, Alertmanager posts [RESOLVED]: the same reply
    // says resolved, and no second thread opens.
    demo.set_campaign(false);
    wait_reply(&control, "the reply to say resolved", |reply| {
        reply.contains("✅ Resolved")
    })
    .await;
    let channel = control.channel("C0ALERTS").await;
    assert_eq!(
        channel.len(),
        2,
        "the alert and its [RESOLVED]: {channel:?}"
    );
    assert!(
        channel[1]["attachments"][0]["title"]
            .as_str()
            .unwrap()
            .starts_with("[RESOLVED] CheckoutCpuHigh")
    );
    assert!(replies_of(&channel[1]).is_empty(), "no second thread");
    assert_eq!(replies_of(&channel[0]).len(), 1, "still one reply");
    assert_eq!(
        published(&bus, "FT_INCIDENTS", "ft.incident.resolved")
            .await
            .len(),
        1
    );

    poster.stop().await;
    fetcher.stop().await;
    watcher.stop().await;
    gateway.stop().await;
    demo_shutdown.cancel();
}

/// The same path with every service on it killed once while the alert is in flight (as a crash
/// would: nothing in flight is acknowledged) and nats-server killed and restarted in the middle:
/// still one incident, one reply with the profile, and the resolution in the same thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_each_service_and_restarting_nats_mid_alert_still_gives_one_reply() {
    let mut nats = NatsServer::start().unwrap();
    let slack = start_emulator(emulator_config()).await;
    let control = Control::new(&slack);
    let (demo, demo_addr, demo_shutdown) = start_demo().await;
    let (alertmanager, prometheus) = start_monitoring(&slack, demo_addr);
    let pages = reserve_port().unwrap().addr();
    let mut gateway = start_gateway(&nats, &slack).await;
    let watcher = start_alert_watcher(&nats, &alertmanager).await;
    let fetcher = start_fetcher(&nats, &prometheus, demo_addr, pages, None).await;
    let poster = start_poster(&nats, &slack).await;
    let bus = observer(&nats).await;
    tokio::time::sleep(Duration::from_secs(5)).await;

    demo.set_campaign(true);
    // The gateway dies as Alertmanager's message arrives: Slack redelivers what it did not ack.
    wait_for(
        Duration::from_secs(60),
        "Alertmanager's message",
        || async { !control.channel("C0ALERTS").await.is_empty() },
    )
    .await
    .unwrap();
    gateway.kill().await;
    gateway = start_gateway(&nats, &slack).await;

    // The fetcher and the poster die as the incident opens, with its evidence being gathered
    // and its reply being posted; nats-server dies and comes back while they are down.
    wait_for(Duration::from_secs(60), "the incident", || async {
        !published(&bus, "FT_INCIDENTS", "ft.incident.opened")
            .await
            .is_empty()
    })
    .await
    .unwrap();
    fetcher.kill().await;
    poster.kill().await;
    nats.restart().unwrap();
    // The demo's profiler may still be busy with the killed fetcher's request (one at a time).
    tokio::time::sleep(Duration::from_secs(4)).await;
    let fetcher = start_fetcher(&nats, &prometheus, demo_addr, pages, None).await;
    let poster = start_poster(&nats, &slack).await;
    wait_reply(&control, "the reply with the profile", |reply| {
        reply.contains("coupon_pattern_matches")
    })
    .await;

    // The watcher dies with the incident open; a new one resolves it from the state in KV.
    watcher.kill().await;
    let watcher = start_alert_watcher(&nats, &alertmanager).await;
    demo.set_campaign(false);
    wait_reply(&control, "the reply to say resolved", |reply| {
        reply.contains("✅ Resolved")
    })
    .await;

    let bus = observer(&nats).await;
    let channel = control.channel("C0ALERTS").await;
    let firing = &channel[0];
    assert!(
        firing["attachments"][0]["title"]
            .as_str()
            .unwrap()
            .starts_with("[FIRING:1] CheckoutCpuHigh")
    );
    assert_eq!(replies_of(firing).len(), 1, "one reply: {channel:?}");
    for message in &channel[1..] {
        assert!(
            replies_of(message).is_empty(),
            "no second thread: {channel:?}"
        );
    }
    let reply = blocks_text(&replies_of(firing)[0]);
    assert!(reply.contains("coupon_pattern_matches"), "{reply}");
    assert_eq!(
        published(&bus, "FT_INCIDENTS", "ft.incident.opened")
            .await
            .len(),
        1,
        "one incident"
    );
    assert_eq!(
        published(&bus, "FT_INCIDENTS", "ft.incident.resolved")
            .await
            .len(),
        1
    );
    let profiles = published(&bus, "FT_EVIDENCE", "ft.evidence.profile").await;
    assert!(
        profiles
            .iter()
            .any(|profile| profile["status"]["state"] == "ok"),
        "{profiles:?}"
    );
    let dead = stored_messages(&bus, "FT_DEADLETTER").await;
    assert!(dead.is_empty(), "nothing dead-lettered: {}", dead.len());

    poster.stop().await;
    fetcher.stop().await;
    watcher.stop().await;
    gateway.stop().await;
    demo_shutdown.cancel();
}
