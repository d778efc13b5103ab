//! The real binary: it starts, becomes ready against a real nats-server, stops on SIGTERM, and
//! refuses a bad configuration with a message naming the key.

use test_support::{NatsServer, binary};

const BINARY: &str = env!("CARGO_BIN_EXE_alert-watcher");

#[test]
fn starts_reports_ready_and_stops_on_sigterm() {
    let nats = NatsServer::start().expect("nats-server starts");
    binary::check_lifecycle(BINARY, "ALERT_WATCHER_", &nats).expect("lifecycle");
}

#[test]
fn a_bad_config_exits_64_naming_the_key() {
    binary::check_bad_config(BINARY, "ALERT_WATCHER_").expect("bad config refused");
}

#[test]
fn the_example_config_documents_the_defaults() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/config/alert-watcher.example.toml"
    );
    let env = std::collections::HashMap::new();
    let loaded: alert_watcher::Config = runtime::config::load(
        alert_watcher::SERVICE,
        Some(std::path::Path::new(example)),
        &env,
    )
    .expect("example loads");
    assert_eq!(loaded, alert_watcher::Config::default());
}
