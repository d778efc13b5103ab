//! The contract checks itself: committed schemas and the README table match the Rust types, and
//! messages written by hand from the schemas (as a producer in another language would) validate
//! and decode.
//!
//! `FT_BLESS=1 cargo test -p proto` rewrites the committed files after an intended change.

#![allow(clippy::unwrap_used, reason = "a panic is how a test fails")]

use std::{fs, path::PathBuf};

use proto::{
    Correlated, DecodeError, ErrorCode, IncidentChange, IncidentEvent, Message, SlackMessage,
    Subject,
    schema::{CATALOG, subject_table},
};
use serde_json::json;

fn proto_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn blessing() -> bool {
    std::env::var_os("FT_BLESS").is_some()
}

#[test]
fn committed_schemas_match_the_types() {
    let dir = proto_dir().join("schemas");
    let mut drifted = Vec::new();
    for entry in CATALOG {
        let path = dir.join(entry.file);
        let expected = entry.schema_text();
        let committed = fs::read_to_string(&path).unwrap_or_default();
        if committed != expected {
            if blessing() {
                fs::write(&path, expected).unwrap();
            } else {
                drifted.push(entry.file);
            }
        }
    }
    let listed: Vec<_> = CATALOG.iter().map(|entry| entry.file).collect();
    for file in fs::read_dir(&dir).unwrap() {
        let name = file.unwrap().file_name().into_string().unwrap();
        assert!(
            listed.contains(&name.as_str()),
            "proto/schemas/{name} belongs to no message"
        );
    }
    assert!(
        drifted.is_empty(),
        "schemas drifted from the Rust types: {drifted:?}; run `FT_BLESS=1 cargo test -p proto` and commit"
    );
}

#[test]
fn readme_table_matches_the_catalog() {
    const START: &str = "<!-- subject-table:start -->\n";
    const END: &str = "<!-- subject-table:end -->";
    let path = proto_dir().join("README.md");
    let readme = fs::read_to_string(&path).unwrap();
    let start = readme.find(START).expect("README has the start marker") + START.len();
    let end = readme.find(END).expect("README has the end marker");
    let table = subject_table();
    if readme[start..end] != table {
        assert!(
            blessing(),
            "proto/README.md's table is stale; run `FT_BLESS=1 cargo test -p proto`"
        );
        fs::write(
            &path,
            format!("{}{table}{}", &readme[..start], &readme[end..]),
        )
        .unwrap();
    }
}

#[test]
fn every_subject_has_exactly_one_message_type() {
    for subject in Subject::ALL {
        let owners: Vec<_> = CATALOG
            .iter()
            .filter(|entry| entry.subjects.contains(&subject))
            .collect();
        assert_eq!(owners.len(), 1, "{subject:?}");
    }
}

fn committed_schema(file: &str) -> serde_json::Value {
    let text = fs::read_to_string(proto_dir().join("schemas").join(file)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A message as Alertmanager's Slack notifier makes Slack deliver it, written by hand.
fn hand_written_slack_message() -> serde_json::Value {
    json!({
        "schema_version": 1,
        "event_id": "Ev08MFMKH6",
        "team_id": "T0001",
        "channel": "C0ALERTS",
        "ts": "1700000000.000200",
        "bot_id": "B0AMGR",
        "subtype": "bot_message",
        "text": "",
        "received_at": "2026-11-21T10:00:00Z",
        "transport": "socket_mode",
        "raw": {
            "type": "message", "subtype": "bot_message", "channel": "C0ALERTS",
            "attachments": [{
                "title": "[FIRING:1] HighCPU checkout (prod)",
                "title_link": "http://am:9093/#/alerts?receiver=slack",
                "fallback": "[FIRING:1] HighCPU checkout (prod) | http://am:9093/#/alerts?receiver=slack",
                "color": "danger"
            }]
        }
    })
}

fn hand_written_incident_event() -> serde_json::Value {
    json!({
        "schema_version": 1,
        "change": "opened",
        "incident": {
            "id": "inc-01",
            "fingerprint": "alertmanager/HighCPU/service=checkout",
            "alert": {
                "source": "alertmanager", "status": "firing", "name": "HighCPU",
                "labels": {"service": "checkout", "severity": "page"}
            },
            "thread": {"channel": "C0ALERTS", "ts": "1700000000.000200"},
            "opened_at": "2026-11-21T10:00:00Z",
            "last_seen_at": "2026-11-21T10:00:00Z",
            "notification_count": 1,
            "window": {"from": "2026-11-21T09:45:00Z", "to": "2026-11-21T10:05:00Z"},
            "baseline": {"from": "2026-11-21T08:45:00Z", "to": "2026-11-21T09:05:00Z"},
            "revision": 1
        }
    })
}

#[test]
fn hand_written_messages_validate_against_the_committed_schemas_and_decode() {
    let cases = [
        ("slack-message.v1.json", hand_written_slack_message()),
        ("incident-event.v1.json", hand_written_incident_event()),
    ];
    for (file, message) in &cases {
        let validator = jsonschema::validator_for(&committed_schema(file)).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(message)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{file}: {errors:?}");
    }

    let bytes = serde_json::to_vec(&cases[0].1).unwrap();
    let decoded: SlackMessage = proto::decode(&bytes).unwrap();
    assert_eq!(decoded.channel, "C0ALERTS");
    assert_eq!(
        decoded.raw["attachments"][0]["title_link"],
        "http://am:9093/#/alerts?receiver=slack"
    );
    assert_eq!(decoded.idempotency_key(), "slack-event:Ev08MFMKH6");

    let bytes = serde_json::to_vec(&cases[1].1).unwrap();
    let decoded: IncidentEvent = proto::decode(&bytes).unwrap();
    assert_eq!(decoded.change, IncidentChange::Opened);
    assert_eq!(decoded.subject(), Subject::IncidentOpened);
    assert_eq!(decoded.correlation().alert_name, Some("HighCPU"));
}

#[test]
fn schemas_reject_what_the_decoder_rejects() {
    let validator = jsonschema::validator_for(&committed_schema("slack-message.v1.json")).unwrap();
    let mut wrong_version = hand_written_slack_message();
    wrong_version["schema_version"] = json!(2);
    assert!(!validator.is_valid(&wrong_version));
    let mut missing_channel = hand_written_slack_message();
    missing_channel.as_object_mut().unwrap().remove("channel");
    assert!(!validator.is_valid(&missing_channel));
}

#[test]
fn decode_errors_say_what_is_wrong() {
    let not_json = proto::decode::<SlackMessage>(b"{\"schema_version\": 1,").unwrap_err();
    assert!(matches!(not_json, DecodeError::NotJson(_)), "{not_json}");
    assert_eq!(not_json.code(), ErrorCode::Malformed);

    let mut message = hand_written_slack_message();
    message["schema_version"] = json!(7);
    let version =
        proto::decode::<SlackMessage>(&serde_json::to_vec(&message).unwrap()).unwrap_err();
    assert_eq!(
        version.to_string(),
        "unsupported schema_version 7 (this build understands 1)"
    );
    assert_eq!(version.code(), ErrorCode::UnsupportedSchemaVersion);

    let mut message = hand_written_incident_event();
    message["incident"]["alert"]
        .as_object_mut()
        .unwrap()
        .remove("name");
    let shape = proto::decode::<IncidentEvent>(&serde_json::to_vec(&message).unwrap()).unwrap_err();
    assert_eq!(shape.code(), ErrorCode::Malformed);
    assert!(shape.to_string().contains("incident.alert"), "{shape}");
    assert!(
        shape.to_string().contains("missing field `name`"),
        "{shape}"
    );

    let no_version = proto::decode::<SlackMessage>(b"{}").unwrap_err();
    assert_eq!(
        no_version.to_string(),
        "payload does not match the schema: missing field `schema_version`"
    );

    let not_an_object = proto::decode::<SlackMessage>(b"[1,2]").unwrap_err();
    assert_eq!(not_an_object.code(), ErrorCode::Malformed);
}

#[test]
fn encode_then_decode_is_identity() {
    let bytes = serde_json::to_vec(&hand_written_incident_event()).unwrap();
    let event: IncidentEvent = proto::decode(&bytes).unwrap();
    let again: IncidentEvent = proto::decode(&proto::encode(&event)).unwrap();
    assert_eq!(event, again);
}

/// `deploy/nats/permissions.conf` and its copy in `k8s/base/` (kustomize reads only files below
/// it), which deployments include, are what the contract says.
#[test]
fn the_committed_nats_permissions_match_the_contract() {
    let subjects = proto::Subjects::new(proto::subjects::DEFAULT_PREFIX).unwrap();
    let expected = proto::permissions::nats_authorization(&subjects);
    for copy in [
        "../deploy/nats/permissions.conf",
        "../k8s/base/permissions.conf",
    ] {
        let path = proto_dir().join(copy);
        if blessing() {
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, &expected).unwrap();
        }
        assert_eq!(
            fs::read_to_string(&path).unwrap_or_default(),
            expected,
            "{copy} is stale: FT_BLESS=1 cargo test -p proto"
        );
    }
}
