use proto::{ChangeKind, ChangeSource};
use test_support::fixtures;

use super::*;

fn change(id: &str, service: &str, version: &str, at: i64) -> Change {
    Change {
        schema_version: SchemaVersion::CURRENT,
        change_id: id.into(),
        service: service.into(),
        environment: None,
        version: Some(version.into()),
        kind: ChangeKind::Deploy,
        who: None,
        url: None,
        message: None,
        at: fixtures::at(at),
        source: ChangeSource::Api,
    }
}

#[test]
fn only_the_services_changes_in_the_window_newest_first_once_each() {
    let window = TimeWindow {
        from: fixtures::at(1000),
        to: fixtures::at(5000),
    };
    let changes = vec![
        change("a", "checkout", "1.4.1", 1500),
        change("b", "cart", "9", 2000),
        change("c", "Checkout", "1.4.2", 3000),
        // The same deploy seen by a second source, which said more.
        Change {
            url: Some("https://ci/812".into()),
            ..change("d", "checkout", "1.4.2", 2900)
        },
        change("e", "checkout", "1.3.0", 500),
        change("f", "checkout", "1.5.0", 6000),
    ];
    let selected = select(changes, &["checkout"], window, 10);
    let ids: Vec<&str> = selected.iter().map(|c| c.change_id.as_str()).collect();
    assert_eq!(ids, ["d", "a"], "{selected:?}");
    // Versions that differ are different changes, however close.
    let two = select(
        vec![
            change("x", "checkout", "1", 1500),
            change("y", "checkout", "2", 1510),
        ],
        &["checkout"],
        window,
        10,
    );
    assert_eq!(two.len(), 2);
    let one = select(
        vec![
            change("a", "checkout", "1", 1500),
            change("b", "checkout", "2", 1600),
        ],
        &["checkout"],
        window,
        1,
    );
    assert_eq!(one[0].change_id, "b");
}

#[test]
fn before_and_after_a_change() {
    let incident =
        fixtures::incident_event("inc", "1.0", proto::IncidentChange::Opened, 1).incident;
    let end = incident.window.to;
    let (after, before) = around(end - chrono::Duration::minutes(7), &incident).unwrap();
    assert_eq!(after.to, end);
    assert_eq!(after.from, before.to);
    assert_eq!((before.to - before.from).num_minutes(), 7);
    let (_, short) = around(end - chrono::Duration::minutes(2), &incident).unwrap();
    assert_eq!(
        (short.to - short.from).num_minutes(),
        5,
        "at least 5 minutes"
    );
    assert!(around(end - chrono::Duration::seconds(30), &incident).is_none());
}
