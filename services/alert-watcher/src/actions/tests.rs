use std::collections::BTreeMap;

use proto::IncidentChange;
use test_support::fixtures;

use super::*;

fn confirmed_incident() -> Incident {
    let mut incident = fixtures::incident_event("inc-1", "1.1", IncidentChange::Opened, 1).incident;
    incident.alert.labels = BTreeMap::from([
        ("alertname".to_owned(), "HighCPU".to_owned()),
        ("service".to_owned(), "checkout".to_owned()),
        ("severity".to_owned(), "page".to_owned()),
    ]);
    incident.alert.labels_confirmed = true;
    incident.alert.alertmanager_fingerprints = vec!["a1".to_owned()];
    incident
}

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn a_silence_matches_every_confirmed_label_and_says_who_and_until_when() {
    let incident = confirmed_incident();
    let now = fixtures::at(0);
    let silence = silence_for(&incident, "U0ONCALL", now, HOUR, HOUR).unwrap();
    assert_eq!(silence.matchers, incident.alert.labels);
    assert_eq!(
        silence.ends_at - silence.starts_at,
        chrono::Duration::hours(1)
    );
    assert!(silence.created_by.starts_with("U0ONCALL"));
    let post = silenced(&incident, "U0ONCALL", "abc-123", &silence);
    assert!(
        post.text
            .as_str()
            .contains("<@U0ONCALL> silenced `HighCPU` until"),
        "{}",
        post.text
    );
    assert_eq!(post.reply_key.as_deref(), Some("silence:inc-1"));
    let blocks = post.blocks.unwrap();
    let expire = &blocks[1]["elements"][0];
    assert_eq!(expire["action_id"], actions::SILENCE_EXPIRE);
    assert!(expire["value"].as_str().unwrap().contains("abc-123"));
}

#[test]
fn silences_fail_closed() {
    let now = fixtures::at(0);
    // Labels read from a message's text: never silenced, however many there are.
    let mut typed = confirmed_incident();
    typed.alert.labels_confirmed = false;
    assert_eq!(
        silence_for(&typed, "U1", now, HOUR, HOUR),
        Err(SilenceRefusal::Unconfirmed)
    );
    let mut unknown_alerts = confirmed_incident();
    unknown_alerts.alert.alertmanager_fingerprints.clear();
    assert_eq!(
        silence_for(&unknown_alerts, "U1", now, HOUR, HOUR),
        Err(SilenceRefusal::Unconfirmed)
    );
    let mut generic = confirmed_incident();
    generic.alert.source = proto::incident::AlertSource::Generic;
    assert_eq!(
        silence_for(&generic, "U1", now, HOUR, HOUR),
        Err(SilenceRefusal::Unconfirmed)
    );
    // Longer than the operator allows.
    assert!(matches!(
        silence_for(&confirmed_incident(), "U1", now, 2 * HOUR, HOUR),
        Err(SilenceRefusal::TooLong { .. })
    ));
    // Alertmanager matches another alert with these matchers: refused, named.
    let incident = confirmed_incident();
    let ours = MatchedAlert {
        fingerprint: "a1".into(),
        labels: incident.alert.labels.clone(),
    };
    let mut wider = incident.alert.labels.clone();
    wider.insert("instance".into(), "b:9100".into());
    let other = MatchedAlert {
        fingerprint: "b2".into(),
        labels: wider,
    };
    assert_eq!(check_scope(&incident, std::slice::from_ref(&ours)), Ok(()));
    assert_eq!(check_scope(&incident, &[]), Ok(()));
    let refused = check_scope(&incident, &[ours, other]).unwrap_err();
    assert!(
        refused.to_string().contains("instance=\"b:9100\""),
        "{refused}"
    );
    // Empty allow-lists are nobody, unless the operator says anyone.
    assert!(!allowed("U1", &[], false));
    assert!(allowed("U1", &[], true));
    assert!(allowed("U1", &["U1".to_owned()], false));
    assert!(!allowed("U2", &["U1".to_owned()], false));
}

#[test]
fn a_retried_click_finds_the_silence_it_made() {
    let incident = confirmed_incident();
    let silence = silence_for(&incident, "U1", fixtures::at(0), HOUR, HOUR).unwrap();
    let made = |state: &str, comment: &str| ExistingSilence {
        id: "s-1".into(),
        state: state.into(),
        comment: comment.into(),
        matchers: silence.matchers.clone(),
        ends_at: silence.ends_at,
    };
    let found = [made("active", &silence.comment)];
    assert_eq!(
        already_silenced(&incident, &silence, &found).map(|s| s.id.as_str()),
        Some("s-1")
    );
    assert!(already_silenced(&incident, &silence, &[made("expired", &silence.comment)]).is_none());
    assert!(already_silenced(&incident, &silence, &[made("active", "someone else's")]).is_none());
    let mut other_incident = incident.clone();
    other_incident.id = proto::IncidentId("inc-10".into());
    assert!(
        already_silenced(&other_incident, &silence, &found).is_none(),
        "inc-1 is not inc-10"
    );
}

#[test]
fn button_values() {
    assert_eq!(
        IncidentRef::parse(Some(r#"{"i":"inc-1","f":"fp"}"#)),
        Some(IncidentRef {
            incident_id: "inc-1".into(),
            fingerprint: "fp".into(),
            silence_seconds: None,
        })
    );
    assert_eq!(IncidentRef::parse(Some("inc-1")), None);
    assert_eq!(IncidentRef::parse(None), None);
}
