//! flamethread behind authentication, as Grafana Cloud, Mimir, Cortex or a Prometheus with a
//! `web.config.file` put it: a real Prometheus and a real Alertmanager, each serving TLS with a
//! private CA's certificate and refusing requests without basic auth. `[prometheus.auth]` and
//! `[alertmanager.auth]` (runtime::auth::ServerAuth) get flamethread through; each part missing
//! is refused with an error that says which.

use std::{collections::BTreeMap, time::Duration};

use alert_watcher::alertmanager_api::{AlertmanagerApi, Error as AlertmanagerError, NewSilence};
use chrono::Utc;
use profile_fetcher::metrics::prometheus::Prometheus as PrometheusApi;
use runtime::auth::ServerAuth;
use secret::Secret;
use test_support::{Alertmanager, Prometheus, TestCertificates};

const USER: &str = "flamethread";
const PASSWORD: &str = "flamethread-test-password";
/// bcrypt of [`PASSWORD`] (cost 4), as web.config.file wants it.
const PASSWORD_BCRYPT: &str = "$2b$04$3KbD12uaICLavm9nJ3rMm.lndtukhMZTyuD9QoMUWoPqCvijcBfp6";

fn web_config(certificates: &TestCertificates) -> String {
    format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\nbasic_auth_users:\n  {USER}: '{PASSWORD_BCRYPT}'\n",
        certificates.server_cert().display(),
        certificates.server_key().display()
    )
}

fn auth(certificates: &TestCertificates) -> ServerAuth {
    ServerAuth {
        username: USER.to_owned(),
        password: Secret::from(PASSWORD),
        headers: BTreeMap::from([("X-Scope-OrgID".to_owned(), "team-a".to_owned())]),
        ca_file: Some(certificates.ca()),
        ..ServerAuth::default()
    }
}

#[tokio::test]
async fn prometheus_behind_tls_and_basic_auth_answers_only_with_both() {
    let certificates = TestCertificates::generate().unwrap();
    let prometheus = Prometheus::start_with_web_config(
        "global:\n  scrape_interval: 15s\n",
        Some(&web_config(&certificates)),
    )
    .unwrap();
    let url = format!("https://{}", prometheus.addr());
    let timeout = Duration::from_secs(5);
    let with = |auth: &ServerAuth| PrometheusApi::new(&url, timeout, 1 << 20, auth).unwrap();

    // Authenticated and trusting the CA: the answer, once the TSDB is up.
    let authenticated = with(&auth(&certificates));
    let answer = first_success(|| authenticated.query("vector(42)", Utc::now())).await;
    assert_eq!(answer.len(), 1, "{answer:?}");
    assert_eq!(answer[0].value, 42.0, "{answer:?}");

    // No credentials: refused, and the error says so.
    let anonymous = with(&ServerAuth {
        ca_file: Some(certificates.ca()),
        ..ServerAuth::default()
    });
    let err = anonymous.query("vector(42)", Utc::now()).await.unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");

    // A wrong password: refused as well.
    let wrong = with(&ServerAuth {
        password: Secret::from("not-the-password"),
        ..auth(&certificates)
    });
    let err = wrong.query("vector(42)", Utc::now()).await.unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");

    // The right password without the CA: the certificate is not trusted, nothing is sent.
    let untrusting = with(&ServerAuth {
        ca_file: None,
        ..auth(&certificates)
    });
    let err = untrusting
        .query("vector(42)", Utc::now())
        .await
        .unwrap_err();
    assert!(!err.to_string().contains("401"), "{err}");
}

#[tokio::test]
async fn alertmanager_behind_tls_and_basic_auth_takes_a_silence_only_with_both() {
    let certificates = TestCertificates::generate().unwrap();
    let alertmanager = Alertmanager::start_with_web_config(
        "route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n",
        Some(&web_config(&certificates)),
    )
    .unwrap();
    let url = format!("https://{}", alertmanager.addr());
    let timeout = Duration::from_secs(5);
    let silence = NewSilence {
        matchers: BTreeMap::from([("alertname".to_owned(), "CheckoutCpuHigh".to_owned())]),
        starts_at: Utc::now(),
        ends_at: Utc::now() + chrono::Duration::hours(1),
        created_by: "flamethread".to_owned(),
        comment: "behind authentication".to_owned(),
    };

    let authenticated = AlertmanagerApi::new(&url, timeout, &auth(&certificates)).unwrap();
    let id = first_success(|| authenticated.create_silence(&silence)).await;
    assert!(!id.is_empty());
    authenticated.expire_silence(&id).await.unwrap();

    let anonymous = AlertmanagerApi::new(
        &url,
        timeout,
        &ServerAuth {
            ca_file: Some(certificates.ca()),
            ..ServerAuth::default()
        },
    )
    .unwrap();
    match anonymous.create_silence(&silence).await {
        Err(AlertmanagerError::Refused { status, .. }) => assert_eq!(status, 401),
        other => panic!("an anonymous silence must be refused with 401: {other:?}"),
    }
}

/// The first success of `call`, tried for up to 20 s while the server starts.
async fn first_success<T, E: std::fmt::Display, F: Future<Output = Result<T, E>>>(
    mut call: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match call().await {
            Ok(answer) => return answer,
            Err(err) if tokio::time::Instant::now() > deadline => {
                panic!("no success within 20 s, last: {err}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}
