use super::*;

const WINDOWS: Windows = Windows {
    lookback: Duration::from_secs(15 * 60),
    baseline: Duration::from_secs(60 * 60),
};

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
}

fn observation(status: AlertStatus, ts: &str) -> Observation {
    let alert = Alert {
        source: AlertSource::Alertmanager,
        status,
        name: "HighCPU".into(),
        severity: None,
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        starts_at: None,
        links: Vec::new(),
        service: None,
    };
    Observation {
        fingerprint: fingerprint(&alert, &["HighCPU".into(), "checkout".into()]),
        alert,
        message: SlackThread {
            channel: "C0ALERTS".into(),
            ts: ts.into(),
        },
    }
}

fn apply(decision: Decision) -> IncidentState {
    match decision {
        Decision::Apply(state) => state,
        other => panic!("expected a change, got {other:?}"),
    }
}

#[test]
fn firing_repeats_and_resolution_make_one_incident_in_one_thread() {
    let opened = apply(decide(
        None,
        &observation(AlertStatus::Firing, "1.1"),
        at(0),
        WINDOWS,
        || "inc-a".into(),
    ));
    assert_eq!(opened.incident.id.0, "inc-a");
    assert_eq!(opened.event().change, IncidentChange::Opened);
    assert_eq!(opened.incident.window.from, at(-900));
    assert_eq!(opened.incident.baseline.from, at(-900 - 3600));

    let repeated = apply(decide(
        Some(&opened),
        &observation(AlertStatus::Firing, "1.2"),
        at(300),
        WINDOWS,
        || unreachable!(),
    ));
    assert_eq!(repeated.incident.notification_count, 2);
    assert_eq!(
        repeated.incident.thread.ts, "1.1",
        "the thread stays the first message's"
    );
    assert_eq!(repeated.event().change, IncidentChange::Updated);

    let resolved = apply(decide(
        Some(&repeated),
        &observation(AlertStatus::Resolved, "1.3"),
        at(600),
        WINDOWS,
        || unreachable!(),
    ));
    assert_eq!(resolved.event().change, IncidentChange::Resolved);
    assert_eq!(resolved.incident.revision, 3);
    assert_eq!(resolved.incident.thread.ts, "1.1");

    let reopened = apply(decide(
        Some(&resolved),
        &observation(AlertStatus::Firing, "1.4"),
        at(900),
        WINDOWS,
        || "inc-b".into(),
    ));
    assert_eq!(
        reopened.incident.id.0, "inc-b",
        "firing again after resolution is a new incident"
    );
    assert_eq!(reopened.incident.thread.ts, "1.4");
}

#[test]
fn a_redelivered_message_republishes_instead_of_counting_twice() {
    let opened = apply(decide(
        None,
        &observation(AlertStatus::Firing, "1.1"),
        at(0),
        WINDOWS,
        || "inc-a".into(),
    ));
    match decide(
        Some(&opened),
        &observation(AlertStatus::Firing, "1.1"),
        at(5),
        WINDOWS,
        || unreachable!(),
    ) {
        Decision::Republish(event) => assert_eq!(event.incident.revision, 1),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        decide(
            None,
            &observation(AlertStatus::Resolved, "1.9"),
            at(5),
            WINDOWS,
            || unreachable!()
        ),
        Decision::Ignore("resolved_without_open_incident")
    );
}

#[test]
fn fingerprints_ignore_volatile_labels_and_separate_services() {
    let mut alert = observation(AlertStatus::Firing, "1").alert;
    alert.source = AlertSource::Grafana;
    alert.labels.insert("service".into(), "checkout".into());
    alert.labels.insert("value".into(), "97".into());
    let first = fingerprint(&alert, &[]);
    alert.labels.insert("value".into(), "12".into());
    assert_eq!(
        fingerprint(&alert, &[]),
        first,
        "a changing value is the same alert"
    );
    alert.labels.insert("service".into(), "cart".into());
    assert_ne!(
        fingerprint(&alert, &[]),
        first,
        "another service is another alert"
    );
}

#[test]
fn the_webhook_enriches_an_open_incident_once() {
    let opened = apply(decide(
        None,
        &observation(AlertStatus::Firing, "1.1"),
        at(0),
        WINDOWS,
        || "inc-a".into(),
    ));
    let mut known = opened.incident.alert.clone();
    known.labels.insert("service".into(), "checkout".into());
    known.service = Some("checkout".into());
    let enriched = enrich(&opened, &known).unwrap();
    assert_eq!(enriched.incident.revision, 2);
    assert_eq!(enriched.incident.alert.service.as_deref(), Some("checkout"));
    assert_eq!(enriched.event().change, IncidentChange::Updated);
    assert_eq!(
        enrich(&enriched, &known),
        None,
        "nothing new the second time"
    );
}
