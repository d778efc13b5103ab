//! The Events API over HTTP, checked by slack-morphism's own axum layer, which verifies Slack's
//! signature and timestamp: `url_verification` passes with the right signing secret and fails with
//! a wrong one; events arrive signed; a delivery the app fails is retried with
//! `X-Slack-Retry-Num` and `X-Slack-Retry-Reason`.

#![allow(clippy::unwrap_used, reason = "a panic is how a test fails")]

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{Extension, Router, http::HeaderMap, response::IntoResponse, routing::post};
use hyper_util::client::legacy::connect::HttpConnector;
use slack_emulator::EmulatorConfig;
use slack_morphism::prelude::*;
use test_support::{http_get_async, http_post_json};
use tokio::sync::mpsc;

/// (message text, X-Slack-Retry-Num, X-Slack-Retry-Reason) as the app saw them.
type Seen = (String, Option<String>, Option<String>);

/// An app that verifies signatures with `signing_secret`, fails the first "flaky" event, and
/// reports every event it accepted.
async fn start_app(
    emulator: &slack_emulator::Running,
    signing_secret: &str,
    seen: mpsc::UnboundedSender<Seen>,
) -> SocketAddr {
    let client = Arc::new(SlackClient::new(
        SlackClientHyperConnector::with_connector(HttpConnector::new())
            .with_slack_api_url(&emulator.api_base()),
    ));
    let listener =
        SlackEventsAxumListener::new(Arc::new(SlackClientEventsListenerEnvironment::new(client)));
    let failed_once = Arc::new(AtomicBool::new(false));
    let handler = move |Extension(event): Extension<SlackPushEvent>, headers: HeaderMap| {
        let seen = seen.clone();
        let failed_once = failed_once.clone();
        async move {
            match event {
                SlackPushEvent::UrlVerification(verification) => {
                    verification.challenge.into_response()
                }
                SlackPushEvent::EventCallback(callback) => {
                    let SlackEventCallbackBody::Message(message) = callback.event else {
                        return axum::http::StatusCode::OK.into_response();
                    };
                    let text = message
                        .content
                        .and_then(|content| content.text)
                        .unwrap_or_default();
                    if text == "flaky" && !failed_once.swap(true, Ordering::SeqCst) {
                        return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
                    }
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned)
                    };
                    seen.send((
                        text,
                        header("x-slack-retry-num"),
                        header("x-slack-retry-reason"),
                    ))
                    .unwrap();
                    axum::http::StatusCode::OK.into_response()
                }
                _ => axum::http::StatusCode::OK.into_response(),
            }
        }
    };
    let app = Router::new().route(
        "/slack/events",
        post(handler).layer(
            listener
                .events_layer(&SlackSigningSecret::new(signing_secret.into()))
                .with_event_extractor(SlackEventsExtractors::push_event()),
        ),
    );
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(socket, app).await.unwrap() });
    addr
}

async fn set_request_url(emulator: &slack_emulator::Running, url: String) -> (u16, String) {
    let addr = emulator.addr();
    let body = serde_json::json!({"url": url}).to_string();
    tokio::task::spawn_blocking(move || {
        http_post_json(addr, "/control/events/request-url", &body).unwrap()
    })
    .await
    .unwrap()
}

async fn post_as_user(emulator: &slack_emulator::Running, text: &str) {
    let addr = emulator.addr();
    let body =
        serde_json::json!({"channel": "C0ALERTS", "user": "U0ONCALL", "text": text}).to_string();
    let (status, answer) =
        tokio::task::spawn_blocking(move || http_post_json(addr, "/control/post", &body).unwrap())
            .await
            .unwrap();
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test]
async fn signed_deliveries_verification_and_retries() {
    let config = EmulatorConfig {
        http_retry_delays: vec![Duration::from_millis(100); 3],
        ..EmulatorConfig::default()
    };
    let secret = config.signing_secret.clone();
    let emulator = slack_emulator::start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();

    // An app with the wrong signing secret refuses the challenge, so it never gets events.
    let (ignored, _) = mpsc::unbounded_channel();
    let impostor = start_app(&emulator, "not-the-secret", ignored).await;
    let (status, answer) =
        set_request_url(&emulator, format!("http://{impostor}/slack/events")).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("url_verification_failed"), "{answer}");

    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let app = start_app(&emulator, &secret, seen_tx).await;
    let (status, answer) = set_request_url(&emulator, format!("http://{app}/slack/events")).await;
    assert_eq!(status, 200, "{answer}");

    post_as_user(&emulator, "checkout is slow").await;
    let first = tokio::time::timeout(Duration::from_secs(10), seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first, ("checkout is slow".to_owned(), None, None));

    post_as_user(&emulator, "flaky").await;
    let retried = tokio::time::timeout(Duration::from_secs(10), seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        retried,
        (
            "flaky".to_owned(),
            Some("1".to_owned()),
            Some("http_error".to_owned())
        )
    );

    let (_, deliveries) = http_get_async(emulator.addr(), "/control/deliveries").await;
    let deliveries: serde_json::Value = serde_json::from_str(&deliveries).unwrap();
    let attempts: Vec<(u64, bool)> = deliveries["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|delivery| {
            (
                delivery["attempts"].as_u64().unwrap(),
                delivery["acked"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(attempts, [(1, true), (2, true)]);
}

#[test]
fn the_signature_is_slacks_v0_scheme() {
    // Slack's documented example (api.slack.com/authentication/verifying-requests-from-slack).
    let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    assert_eq!(
        slack_emulator::events_api::sign("8f742231b10e8888abcd99yyyzzz85a5", 1531420618, body),
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    );
}
