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
        labels_confirmed: false,
        alertmanager_fingerprints: Vec::new(),
    };
    let alert_fingerprint = fingerprint(&alert, &["HighCPU".into(), "checkout".into()]);
    Observation {
        fingerprint: in_channel("C0ALERTS", &alert_fingerprint),
        alert_fingerprint,
        alert,
        message: SlackThread {
            channel: "C0ALERTS".into(),
            ts: ts.into(),
        },
        edited_ts: None,
        asked_by: None,
    }
}

/// The state `decision` writes, and whose event was then published (as the watcher records).
fn apply(decision: Decision) -> IncidentState {
    IncidentState {
        announced: true,
        ..written(decision)
    }
}

/// The state `decision` writes, before (or without) its event being published.
fn written(decision: Decision) -> IncidentState {
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

/// A distinct alert (its own name and fingerprint) for the same service, seen in message `ts`.
fn other_alert(name: &str, status: AlertStatus, ts: &str) -> Observation {
    let mut observation = observation(status, ts);
    observation.alert.name = name.into();
    observation.alert.service = Some("checkout".into());
    observation.fingerprint = fingerprint(&observation.alert, &[name.into(), "checkout".into()]);
    observation
}

#[test]
fn storm_members_join_count_and_resolve_the_incident_together() {
    let opened = apply(decide(
        None,
        &observation(AlertStatus::Firing, "1.1"),
        at(0),
        WINDOWS,
        || "inc-a".into(),
    ));
    let joined = apply(decide(
        Some(&opened),
        &other_alert("HighLatency", AlertStatus::Firing, "2.1"),
        at(10),
        WINDOWS,
        || unreachable!("a member never opens an incident"),
    ));
    assert_eq!(joined.event().change, IncidentChange::Updated);
    assert_eq!(joined.incident.related.len(), 1);
    assert_eq!(joined.incident.related[0].alert.name, "HighLatency");
    assert_eq!(
        joined.last_message, opened.last_message,
        "the leader's redelivery check is kept"
    );

    let repeated = apply(decide(
        Some(&joined),
        &other_alert("HighLatency", AlertStatus::Firing, "2.2"),
        at(20),
        WINDOWS,
        || unreachable!(),
    ));
    assert_eq!(
        repeated.incident.related.len(),
        1,
        "a repeat is not a new member"
    );
    assert_eq!(repeated.incident.related[0].notification_count, 2);
    assert!(matches!(
        decide(
            Some(&repeated),
            &other_alert("HighLatency", AlertStatus::Firing, "2.2"),
            at(21),
            WINDOWS,
            || unreachable!()
        ),
        Decision::Republish(_)
    ));

    let leader_resolved = apply(decide(
        Some(&repeated),
        &observation(AlertStatus::Resolved, "1.2"),
        at(30),
        WINDOWS,
        || unreachable!(),
    ));
    assert_eq!(
        leader_resolved.incident.resolved_at, None,
        "a member still fires"
    );
    assert_eq!(leader_resolved.event().change, IncidentChange::Updated);

    let all_resolved = apply(decide(
        Some(&leader_resolved),
        &other_alert("HighLatency", AlertStatus::Resolved, "2.3"),
        at(40),
        WINDOWS,
        || unreachable!(),
    ));
    assert_eq!(all_resolved.event().change, IncidentChange::Resolved);
    assert_eq!(all_resolved.incident.thread.ts, "1.1");
}

#[test]
fn a_member_resolving_before_it_joined_changes_nothing_and_members_are_bounded() {
    let mut state = apply(decide(
        None,
        &observation(AlertStatus::Firing, "1.1"),
        at(0),
        WINDOWS,
        || "inc-a".into(),
    ));
    assert_eq!(
        decide(
            Some(&state),
            &other_alert("Unknown", AlertStatus::Resolved, "3.1"),
            at(1),
            WINDOWS,
            || unreachable!()
        ),
        Decision::Ignore("resolved_without_open_incident")
    );
    for index in 0..=MAX_RELATED {
        state = apply(decide(
            Some(&state),
            &other_alert(
                &format!("Alert{index}"),
                AlertStatus::Firing,
                &format!("4.{index}"),
            ),
            at(2),
            WINDOWS,
            || unreachable!(),
        ));
    }
    assert_eq!(state.incident.related.len(), MAX_RELATED);
    assert_eq!(state.incident.related_untracked, 1);
}

#[test]
fn storm_groups_are_per_channel_and_group_values_within_the_window() {
    let rules = StormRules {
        window: Duration::from_secs(300),
        group_by: vec!["service".into()],
    };
    let latency = other_alert("HighLatency", AlertStatus::Firing, "1");
    let errors = other_alert("Errors", AlertStatus::Firing, "2");
    assert_eq!(rules.group_key(&latency), rules.group_key(&errors));
    let mut elsewhere = errors.clone();
    elsewhere.message.channel = "C0OTHER".into();
    assert_ne!(rules.group_key(&latency), rules.group_key(&elsewhere));
    let mut cart = errors.clone();
    cart.alert.service = Some("cart".into());
    assert_ne!(rules.group_key(&latency), rules.group_key(&cart));

    let mark = StormMark {
        leader: latency.fingerprint.clone(),
        opened_at: at(0),
    };
    assert!(rules.joins(&mark, at(299)));
    assert!(!rules.joins(&mark, at(300)));
    let off = StormRules {
        window: Duration::ZERO,
        ..rules
    };
    assert_eq!(off.group_key(&latency), None);
}

#[test]
fn an_edit_resolves_or_enriches_but_never_counts_as_a_repeat() {
    let opened = apply(decide(
        None,
        &observation(AlertStatus::Firing, "1.1"),
        at(0),
        WINDOWS,
        || "inc-a".into(),
    ));
    let edit = |status, edited: &str| Observation {
        edited_ts: Some(edited.into()),
        ..observation(status, "1.1")
    };
    assert_eq!(
        decide(
            Some(&opened),
            &edit(AlertStatus::Firing, "5.0"),
            at(5),
            WINDOWS,
            || unreachable!()
        ),
        Decision::Ignore("edit_without_change"),
        "the same alert re-said (an acknowledgement, a reworded text) is not a notification"
    );
    let mut more = edit(AlertStatus::Firing, "6.0");
    more.alert.labels.insert("pod".into(), "checkout-1".into());
    let enriched = apply(decide(
        Some(&opened),
        &more,
        at(6),
        WINDOWS,
        || unreachable!(),
    ));
    assert_eq!(enriched.incident.notification_count, 1);
    assert_eq!(enriched.incident.alert.labels["pod"], "checkout-1");

    let resolved = apply(decide(
        Some(&enriched),
        &edit(AlertStatus::Resolved, "7.0"),
        at(7),
        WINDOWS,
        || unreachable!(),
    ));
    assert_eq!(resolved.event().change, IncidentChange::Resolved);
    assert!(
        matches!(
            decide(
                Some(&resolved),
                &edit(AlertStatus::Resolved, "7.0"),
                at(8),
                WINDOWS,
                || unreachable!()
            ),
            Decision::Republish(_)
        ),
        "the same edit redelivered"
    );
}

#[test]
fn a_message_in_another_channel_never_touches_an_incident() {
    let opened = apply(decide(
        None,
        &observation(AlertStatus::Firing, "1.1"),
        at(0),
        WINDOWS,
        || "inc-a".into(),
    ));
    let mut elsewhere = observation(AlertStatus::Resolved, "2.1");
    elsewhere.message.channel = "C0RANDOM".into();
    assert_ne!(
        in_channel("C0RANDOM", &elsewhere.alert_fingerprint),
        opened.incident.fingerprint,
        "the same alert in another channel is another incident"
    );
    // Even handed the first channel's state, a message from another channel changes nothing.
    assert_eq!(
        decide(Some(&opened), &elsewhere, at(5), WINDOWS, || unreachable!()),
        Decision::Ignore("other_channel")
    );
}

#[test]
fn incidents_alertmanager_no_longer_has_are_resolved_in_place() {
    let mut opened = apply(decide(
        None,
        &observation(AlertStatus::Firing, "1.1"),
        at(0),
        WINDOWS,
        || "inc-a".into(),
    ));
    let grace = Duration::from_secs(60);
    let none = std::collections::HashSet::new();
    // Labels read from text only: never resolved this way.
    assert_eq!(resolve_absent(&opened, &none, at(600), grace), None);
    opened.incident.alert.labels_confirmed = true;
    opened.incident.alert.alertmanager_fingerprints = vec!["a1".into(), "a2".into()];
    // Still in Alertmanager (one of its alerts is enough).
    let active: std::collections::HashSet<String> = ["a2".to_owned()].into();
    assert_eq!(resolve_absent(&opened, &active, at(600), grace), None);
    // Gone, but the last notification is too recent.
    assert_eq!(resolve_absent(&opened, &none, at(30), grace), None);
    // Gone: resolved, in place.
    let resolved = resolve_absent(&opened, &none, at(600), grace).unwrap();
    assert_eq!(resolved.incident.resolved_at, Some(at(600)));
    assert_eq!(resolved.incident.id, opened.incident.id);
    assert_eq!(resolved.event().change, IncidentChange::Resolved);
    assert_eq!(
        resolve_absent(&resolved, &none, at(700), grace),
        None,
        "once"
    );
    // A storm member Alertmanager never confirmed keeps the incident open.
    let mut storm = opened.clone();
    let mut member = observation(AlertStatus::Firing, "2.1").alert;
    member.name = "HighLatency".into();
    storm.incident.related.push(RelatedAlert {
        fingerprint: "m".into(),
        alert: member,
        last_message: storm.incident.thread.clone(),
        first_seen_at: at(0),
        last_seen_at: at(0),
        notification_count: 1,
    });
    assert_eq!(resolve_absent(&storm, &none, at(600), grace), None);
}

#[test]
fn an_incident_nobody_resolves_is_marked_stale_then_revived() {
    let mut observed = observation(AlertStatus::Firing, "1.1");
    observed.alert.source = AlertSource::Generic;
    let opened = apply(decide(None, &observed, at(0), WINDOWS, || "inc-a".into()));
    let day = Duration::from_secs(86_400);
    assert_eq!(
        mark_stale(&opened, at(3600), day),
        None,
        "heard from an hour ago"
    );
    assert_eq!(mark_stale(&opened, at(90_000), Duration::ZERO), None, "off");
    let stale = mark_stale(&opened, at(90_000), day).unwrap();
    assert_eq!(stale.incident.stale_since, Some(at(90_000)));
    assert_eq!(stale.event().change, IncidentChange::Updated);
    assert_eq!(mark_stale(&stale, at(200_000), day), None, "once");
    // The next notification revives it.
    let mut again = observed.clone();
    again.message.ts = "9.9".into();
    let revived = apply(decide(
        Some(&stale),
        &again,
        at(95_000),
        WINDOWS,
        || unreachable!(),
    ));
    assert_eq!(revived.incident.stale_since, None);
    // Alertmanager incidents it confirmed are reconciled instead.
    let mut confirmed = opened.clone();
    confirmed.incident.alert.source = AlertSource::Alertmanager;
    confirmed.incident.alert.alertmanager_fingerprints = vec!["a1".into()];
    assert_eq!(mark_stale(&confirmed, at(90_000), day), None);
}

/// The publish after the write that opened an incident failed, and the next notification
/// updated the incident before that message came back: its event still says `Opened` (the
/// evidence is asked for once it lands), until an `Opened` was published and recorded.
#[test]
fn an_incident_whose_opening_was_not_published_opens_with_its_next_event() {
    let opened = written(decide(
        None,
        &observation(AlertStatus::Firing, "1.1"),
        at(0),
        WINDOWS,
        || "inc-a".into(),
    ));
    assert!(!opened.announced);
    assert_eq!(opened.event().change, IncidentChange::Opened);

    // Not announced: the repeat's event opens it.
    let repeated = written(decide(
        Some(&opened),
        &observation(AlertStatus::Firing, "1.2"),
        at(5),
        WINDOWS,
        || unreachable!(),
    ));
    assert_eq!(repeated.incident.revision, 2);
    let event = repeated.event();
    assert_eq!(event.change, IncidentChange::Opened);
    assert_eq!(event.incident.notification_count, 2);

    // Announced: the next repeat is an update; the mark is kept through it.
    let announced = IncidentState {
        announced: true,
        ..repeated
    };
    let again = apply(decide(
        Some(&announced),
        &observation(AlertStatus::Firing, "1.3"),
        at(10),
        WINDOWS,
        || unreachable!(),
    ));
    assert!(again.announced);
    assert_eq!(again.event().change, IncidentChange::Updated);

    // A resolution says so, announced or not.
    let resolved = written(decide(
        Some(&opened),
        &observation(AlertStatus::Resolved, "1.4"),
        at(15),
        WINDOWS,
        || unreachable!(),
    ));
    assert_eq!(resolved.event().change, IncidentChange::Resolved);
}

/// A state written before `announced` and `republish` were kept reads as announced and not to
/// be published again: upgrading re-opens and re-publishes nothing.
#[test]
fn a_state_from_before_reads_as_announced_and_published() {
    let opened = written(decide(
        None,
        &observation(AlertStatus::Firing, "1.1"),
        at(0),
        WINDOWS,
        || "inc-a".into(),
    ));
    let mut json = serde_json::to_value(&opened).unwrap();
    json.as_object_mut().unwrap().remove("announced");
    json.as_object_mut().unwrap().remove("republish");
    let read: IncidentState = serde_json::from_value(json).unwrap();
    assert!(read.announced && !read.republish);
}

/// The writes no message would bring back if the publish after them failed (the sweep's, an
/// enrichment's) are for the sweep to publish until recorded; a notification's are not (its
/// message is redelivered until its event is out).
#[test]
fn writes_no_message_brings_back_are_left_for_the_sweep_to_publish() {
    let opened = apply(decide(
        None,
        &observation(AlertStatus::Firing, "1.1"),
        at(0),
        WINDOWS,
        || "inc-a".into(),
    ));
    assert!(!opened.republish);
    let repeated = written(decide(
        Some(&opened),
        &observation(AlertStatus::Firing, "1.2"),
        at(5),
        WINDOWS,
        || unreachable!(),
    ));
    assert!(!repeated.republish);
    let stale = mark_stale(&opened, at(3600), Duration::from_secs(60)).unwrap();
    assert!(stale.republish && stale.incident.revision == opened.incident.revision + 1);

    let mut confirmed = opened.clone();
    confirmed.incident.alert.source = AlertSource::Alertmanager;
    confirmed.incident.alert.labels_confirmed = true;
    confirmed.incident.alert.alertmanager_fingerprints = vec!["fp1".into()];
    let resolved = resolve_absent(
        &confirmed,
        &std::collections::HashSet::new(),
        at(3600),
        Duration::from_secs(60),
    )
    .unwrap();
    assert!(resolved.republish);
    assert_eq!(resolved.event().change, IncidentChange::Resolved);

    let mut known = opened.incident.alert.clone();
    known.labels.insert("region".into(), "eu-west-1".into());
    let enriched = enrich(&opened, &known).unwrap();
    assert!(enriched.republish);
}
