use super::*;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-03T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn accept(change: NewChange) -> Result<Change, ChangeError> {
    change.into_change(ChangeSource::Api, now(), || "generated".to_owned())
}

#[test]
fn a_minimal_change_is_a_deploy_now_with_a_generated_id() {
    let change = accept(NewChange {
        service: " checkout ".into(),
        version: Some("1.4.2".into()),
        ..NewChange::default()
    })
    .unwrap();
    assert_eq!(change.service, "checkout");
    assert_eq!(change.kind, ChangeKind::Deploy);
    assert_eq!(change.at, now());
    assert_eq!(change.change_id, "generated");
    assert_eq!(change.title(), "checkout 1.4.2");
    assert!(change.concerns(["CHECKOUT"]));
    assert!(!change.concerns(["", "cart"]));
}

#[test]
fn bad_fields_are_refused_with_what_is_wrong() {
    let base = || NewChange {
        service: "checkout".into(),
        ..NewChange::default()
    };
    let cases: Vec<(NewChange, ChangeError)> = vec![
        (
            NewChange {
                service: "  ".into(),
                ..base()
            },
            ChangeError::Empty { field: "service" },
        ),
        (
            NewChange {
                service: "x".repeat(129),
                ..base()
            },
            ChangeError::TooLong {
                field: "service",
                max: 128,
            },
        ),
        (
            NewChange {
                version: Some("1.0\u{7}".into()),
                ..base()
            },
            ChangeError::ControlCharacters { field: "version" },
        ),
        (
            NewChange {
                who: Some("a\nb".into()),
                ..base()
            },
            ChangeError::ControlCharacters { field: "who" },
        ),
        (
            NewChange {
                url: Some("javascript:alert(1)".into()),
                ..base()
            },
            ChangeError::BadUrl,
        ),
        (
            NewChange {
                url: Some("https://ci/run|<!here>".into()),
                ..base()
            },
            ChangeError::BadUrl,
        ),
        (
            NewChange {
                id: Some("a b".into()),
                ..base()
            },
            ChangeError::BadId,
        ),
        (
            NewChange {
                message: Some("m".repeat(1001)),
                ..base()
            },
            ChangeError::TooLong {
                field: "message",
                max: 1000,
            },
        ),
        (
            NewChange {
                at: Some(now() + Duration::hours(1)),
                ..base()
            },
            ChangeError::OutOfRange("in the future"),
        ),
        (
            NewChange {
                at: Some(now() - Duration::days(2)),
                ..base()
            },
            ChangeError::OutOfRange("more than a day ago"),
        ),
    ];
    for (change, error) in cases {
        assert_eq!(accept(change.clone()), Err(error), "{change:?}");
    }
}

#[test]
fn a_commit_message_keeps_its_lines() {
    let change = accept(NewChange {
        service: "checkout".into(),
        message: Some("fix coupons\n\nand more".into()),
        id: Some("ci-812.1".into()),
        ..NewChange::default()
    })
    .unwrap();
    assert_eq!(change.message.as_deref(), Some("fix coupons\n\nand more"));
    assert_eq!(change.change_id, "ci-812.1");
    assert_eq!(change.idempotency_key(), "change:checkout:ci-812.1");
}

#[test]
fn unknown_fields_and_kinds_are_refused_by_the_decoder() {
    let unknown: Result<NewChange, _> = serde_json::from_str(r#"{"service":"a","sevrice":"b"}"#);
    assert!(unknown.unwrap_err().to_string().contains("unknown field"));
    let kind: Result<NewChange, _> = serde_json::from_str(r#"{"service":"a","kind":"migration"}"#);
    assert!(kind.unwrap_err().to_string().contains("unknown variant"));
}
