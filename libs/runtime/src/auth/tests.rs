use super::*;

fn auth() -> ServerAuth {
    ServerAuth::default()
}

#[test]
fn nothing_set_sends_nothing() {
    assert!(auth().headers().unwrap().is_empty());
    assert!(auth().validate("prometheus.auth").is_ok());
}

#[test]
fn a_bearer_token_or_basic_auth_is_one_sensitive_authorization_header() {
    let bearer = ServerAuth {
        bearer_token: Secret::from("glc_token\n"),
        ..auth()
    };
    let headers = bearer.headers().unwrap();
    assert_eq!(headers[AUTHORIZATION], "Bearer glc_token");
    assert!(headers[AUTHORIZATION].is_sensitive());

    let basic = ServerAuth {
        username: "123456".to_owned(),
        password: Secret::from("s3cret"),
        ..auth()
    };
    let headers = basic.headers().unwrap();
    // base64("123456:s3cret")
    assert_eq!(headers[AUTHORIZATION], "Basic MTIzNDU2OnMzY3JldA==");
    assert!(headers[AUTHORIZATION].is_sensitive());
    assert!(!format!("{basic:?}").contains("s3cret"));
}

#[test]
fn extra_headers_are_sent_and_bad_ones_are_refused_by_name() {
    let tenant = ServerAuth {
        headers: BTreeMap::from([("X-Scope-OrgID".to_owned(), "team-a".to_owned())]),
        ..auth()
    };
    assert_eq!(tenant.headers().unwrap()["x-scope-orgid"], "team-a");

    for (name, value, says) in [
        (
            "bad header",
            "x",
            "headers.bad header: not a valid header name",
        ),
        (
            "X-Tenant",
            "line\nbreak",
            "headers.X-Tenant: the value has characters",
        ),
        (
            "Authorization",
            "Bearer x",
            "headers.Authorization: set bearer_token",
        ),
    ] {
        let bad = ServerAuth {
            headers: BTreeMap::from([(name.to_owned(), value.to_owned())]),
            ..auth()
        };
        let err = bad.validate("prometheus.auth").unwrap_err();
        assert!(err.starts_with(&format!("prometheus.auth.{says}")), "{err}");
    }
}

#[test]
fn credentials_that_contradict_each_other_are_refused() {
    let both = ServerAuth {
        bearer_token: Secret::from("t"),
        username: "u".to_owned(),
        password: Secret::from("p"),
        ..auth()
    };
    assert_eq!(
        both.validate("alertmanager.auth").unwrap_err(),
        "alertmanager.auth.bearer_token and username: set one or the other"
    );
    let colon = ServerAuth {
        username: "a:b".to_owned(),
        password: Secret::from("p"),
        ..auth()
    };
    assert!(
        colon
            .validate("alertmanager.auth")
            .unwrap_err()
            .contains("':'")
    );
    let twice = ServerAuth {
        headers: BTreeMap::from([
            ("X-Tenant".to_owned(), "a".to_owned()),
            ("x-tenant".to_owned(), "b".to_owned()),
        ]),
        ..auth()
    };
    assert!(
        twice
            .validate("alertmanager.auth")
            .unwrap_err()
            .contains("set twice")
    );
    let half = ServerAuth {
        username: "u".to_owned(),
        ..auth()
    };
    assert_eq!(
        half.validate("alertmanager.auth").unwrap_err(),
        "alertmanager.auth.username and password: set both or neither"
    );
}

#[test]
fn a_ca_file_that_is_missing_or_holds_no_certificate_is_an_error_naming_it() {
    let missing = ServerAuth {
        ca_file: Some("/nonexistent/ca.pem".into()),
        ..auth()
    };
    let err = missing.client(None).unwrap_err().to_string();
    assert!(err.starts_with("ca_file /nonexistent/ca.pem: "), "{err}");

    let path = std::env::temp_dir().join(format!("ft-auth-test-{}.pem", std::process::id()));
    std::fs::write(&path, "not a certificate\n").unwrap();
    let no_certificate = ServerAuth {
        ca_file: Some(path.clone()),
        ..auth()
    };
    let err = no_certificate.client(None).unwrap_err().to_string();
    let _ = std::fs::remove_file(&path);
    assert!(
        err.starts_with(&format!("ca_file {}: ", path.display())),
        "{err}"
    );
}

#[test]
fn the_table_reads_from_toml_and_from_the_environment_and_refuses_unknown_keys() {
    use figment::{
        Figment,
        providers::{Format as _, Toml},
    };
    let toml = r#"
        username = "123456"
        ca_file = "/etc/flamethread/ca.pem"
        [headers]
        X-Scope-OrgID = "team-a"
    "#;
    let read: ServerAuth = Figment::from(Toml::string(toml))
        .merge(("password", "from-the-environment"))
        .extract()
        .unwrap();
    assert_eq!(read.username, "123456");
    assert_eq!(read.password.expose(), "from-the-environment");
    assert_eq!(read.headers["X-Scope-OrgID"], "team-a");
    assert_eq!(read.ca_file, Some(PathBuf::from("/etc/flamethread/ca.pem")));
    assert!(read.validate("prometheus.auth").is_ok());

    let typo = Figment::from(Toml::string("bearer = \"x\"")).extract::<ServerAuth>();
    assert!(typo.unwrap_err().to_string().contains("bearer"));
}
