use std::time::Duration;

use super::*;

const SERVICE: ServiceName = ServiceName {
    name: "test-service",
    env_prefix: "TEST_SERVICE_",
    about: "A service for the config tests.",
};

crate::service_config! {
    /// A service with no settings of its own.
    struct TestConfig, admin port 9199 {}
}

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn write(text: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), text).unwrap();
    file
}

fn load_test(file: Option<&Path>, vars: &[(&str, &str)]) -> Result<TestConfig, String> {
    load::<TestConfig>(SERVICE, file, &env(vars)).map_err(|err| err.to_string())
}

#[test]
fn nothing_given_means_defaults() {
    assert_eq!(
        load_test(None, &[("PATH", "/bin"), ("OTHER_SERVICE_NATS__URL", "x")]).unwrap(),
        TestConfig::default()
    );
}

#[test]
fn file_then_environment() {
    let file = write(
        "[nats]\nurl = \"nats://from-file:4222\"\nack_wait = \"45s\"\n[log]\nformat = \"json\"\n",
    );
    let config = load_test(
        Some(file.path()),
        &[
            ("TEST_SERVICE_NATS__URL", "nats://from-env:4222"),
            ("TEST_SERVICE_NATS__MAX_DELIVER", "9"),
        ],
    )
    .unwrap();
    assert_eq!(config.nats.url, "nats://from-env:4222");
    assert_eq!(config.nats.ack_wait, Duration::from_secs(45));
    assert_eq!(config.nats.max_deliver, 9);
    assert_eq!(config.log.format, LogFormat::Json);
    assert_eq!(config.admin, AdminConfig::on_port(9199));
}

#[test]
fn the_file_can_come_from_the_environment() {
    let file = write("[admin]\nlisten = \"127.0.0.1:7000\"\n");
    let path = file.path().to_str().unwrap();
    let config = load_test(None, &[("TEST_SERVICE_CONFIG", path)]).unwrap();
    assert_eq!(config.admin.listen, "127.0.0.1:7000".parse().unwrap());
}

#[test]
fn unknown_keys_are_rejected_and_named() {
    let file = write("[nats]\nurll = \"nats://typo:4222\"\n");
    let err = load_test(Some(file.path()), &[]).unwrap_err();
    assert!(err.contains("unknown field"), "{err}");
    assert!(err.contains("urll"), "{err}");
    assert!(err.starts_with("nats.urll: unknown field"), "{err}");
    assert!(
        err.ends_with(&format!("(in {})", file.path().display())),
        "{err}"
    );

    let err = load_test(None, &[("TEST_SERVICE_NATZ__URL", "x")]).unwrap_err();
    assert!(err.contains("natz"), "{err}");
    assert!(
        err.contains("environment variable TEST_SERVICE_NATZ__URL"),
        "{err}"
    );
}

#[test]
fn wrong_types_and_values_are_explained() {
    let err = load_test(None, &[("TEST_SERVICE_NATS__MAX_DELIVER", "many")]).unwrap_err();
    assert_eq!(
        err,
        "nats.max_deliver: invalid type: found string \"many\", expected i64 (in environment variable TEST_SERVICE_NATS__MAX_DELIVER)"
    );

    let err = load_test(None, &[("TEST_SERVICE_NATS__ACK_WAIT", "soon")]).unwrap_err();
    assert!(err.contains("nats.ack_wait"), "{err}");

    let err = load_test(None, &[("TEST_SERVICE_ADMIN__LISTEN", "not-an-address")]).unwrap_err();
    assert!(err.contains("admin.listen"), "{err}");

    let err = load_test(None, &[("TEST_SERVICE_NATS__PREFIX", "ft.*")]).unwrap_err();
    assert!(
        err.starts_with("nats.prefix: invalid subject prefix"),
        "{err}"
    );

    let err = load_test(None, &[("TEST_SERVICE_LOG__FORMAT", "xml")]).unwrap_err();
    assert!(err.contains("log.format"), "{err}");

    let err = load_test(None, &[("TEST_SERVICE_NATS__USER", "ft")]).unwrap_err();
    assert_eq!(err, "nats.user and nats.password: set both or neither");

    let err = load_test(None, &[("TEST_SERVICE___", "x")]).unwrap_err();
    assert!(err.contains("not a config key"), "{err}");
}

#[test]
fn broken_and_missing_files_are_reported() {
    let file = write("[nats\nurl = ");
    let err = load_test(Some(file.path()), &[]).unwrap_err();
    assert!(
        err.contains(&file.path().display().to_string()) || err.contains("TOML"),
        "{err}"
    );

    let err = load_test(Some(Path::new("/nonexistent/flamethread.toml")), &[]).unwrap_err();
    assert_eq!(
        err,
        "config file /nonexistent/flamethread.toml does not exist"
    );
}
