//! Connecting from config: token, user and password, TLS against a real nats-server that
//! requires them; wrong or missing credentials give an error that says what is wrong.

use bus::{Bus, NatsConfig, config::TlsConfig};
use test_support::{NatsAuth, NatsServer, TestCertificates};

use crate::support::{nats_config, slack_message};

async fn connect_and_publish(config: &NatsConfig) -> Result<(), String> {
    let bus = Bus::connect(config, "connect-test")
        .await
        .map_err(|err| err.to_string())?;
    bus.provision().await.map_err(|err| err.to_string())?;
    bus.publish(&slack_message("Ev-auth"))
        .await
        .map_err(|err| err.to_string())?;
    Ok(())
}

#[tokio::test]
async fn token_authentication() {
    let server = NatsServer::start_with_auth(&NatsAuth::Token("s3cret-token".into())).unwrap();
    let with = |token: Option<&str>| NatsConfig {
        token: token.map(Into::into),
        ..nats_config(&server)
    };

    connect_and_publish(&with(Some("s3cret-token")))
        .await
        .unwrap();

    let wrong = connect_and_publish(&with(Some("guess"))).await.unwrap_err();
    assert!(
        wrong.starts_with(&format!("cannot connect to NATS at {}", server.url())),
        "{wrong}"
    );
    assert!(wrong.to_lowercase().contains("authorization"), "{wrong}");
    let missing = connect_and_publish(&with(None)).await.unwrap_err();
    assert!(
        missing.to_lowercase().contains("authorization"),
        "{missing}"
    );
}

#[tokio::test]
async fn user_and_password_authentication() {
    let server =
        NatsServer::start_with_auth(&NatsAuth::UserPassword("flamethread".into(), "pa55".into()))
            .unwrap();
    let with = |password: &str| NatsConfig {
        user: Some("flamethread".to_owned()),
        password: Some(password.into()),
        ..nats_config(&server)
    };
    connect_and_publish(&with("pa55")).await.unwrap();
    let wrong = connect_and_publish(&with("nope")).await.unwrap_err();
    assert!(wrong.to_lowercase().contains("authorization"), "{wrong}");
}

#[tokio::test]
async fn tls_with_our_own_certificate_authority() {
    let certificates = TestCertificates::generate().unwrap();
    let server = NatsServer::start_with_tls(&certificates).unwrap();
    let with = |tls: TlsConfig| NatsConfig {
        tls,
        ..nats_config(&server)
    };

    connect_and_publish(&with(TlsConfig {
        ca_file: Some(certificates.ca()),
        ..TlsConfig::default()
    }))
    .await
    .unwrap();

    // The server's certificate is not signed by a system root.
    let untrusted = connect_and_publish(&with(TlsConfig {
        required: true,
        ..TlsConfig::default()
    }))
    .await
    .unwrap_err();
    assert!(
        untrusted.starts_with("cannot connect to NATS"),
        "{untrusted}"
    );

    let missing_ca = connect_and_publish(&with(TlsConfig {
        ca_file: Some("/nonexistent/ca.pem".into()),
        ..TlsConfig::default()
    }))
    .await
    .unwrap_err();
    assert!(
        missing_ca.starts_with("cannot connect to NATS"),
        "{missing_ca}"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error() {
    let reservation = test_support::reserve_port().unwrap();
    let port = reservation.port();
    let config = NatsConfig {
        url: format!("nats://127.0.0.1:{port}"),
        connect_timeout: std::time::Duration::from_millis(500),
        ..NatsConfig::default()
    };
    let err = connect_and_publish(&config).await.unwrap_err();
    assert!(
        err.starts_with(&format!(
            "cannot connect to NATS at nats://127.0.0.1:{port}"
        )),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_credentials_file_is_a_config_error() {
    let server = NatsServer::start().unwrap();
    let config = NatsConfig {
        credentials_file: Some("/nonexistent/flamethread.creds".into()),
        ..nats_config(&server)
    };
    let err = connect_and_publish(&config).await.unwrap_err();
    assert!(
        err.starts_with(
            "invalid NATS configuration: nats.credentials_file /nonexistent/flamethread.creds:"
        ),
        "{err}"
    );
}
