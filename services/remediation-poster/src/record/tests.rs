use test_support::fixtures;

use proto::keys::reply;

use super::*;

pub(crate) fn incident_event(change: IncidentChange, revision: u64) -> IncidentEvent {
    fixtures::incident_event("inc-1", "1700000000.000100", change, revision)
}

fn metrics(id: &str, collected: i64) -> MetricsEvidence {
    fixtures::metrics_evidence("inc-1", id, collected)
}

#[test]
fn evidence_before_the_incident_waits_without_a_target() {
    let mut record = ReplyRecord::default();
    assert!(record.merge_metrics(&metrics("m1", 10)));
    assert_eq!(record.target, None);
    assert!(!record.caught_up(), "nothing can be shown yet");
    assert!(record.merge_incident(&incident_event(IncidentChange::Opened, 1), None));
    assert_eq!(record.thread().unwrap().ts, "1700000000.000100");
    assert_eq!(record.content_revision, 2);
    assert!(!record.caught_up(), "not posted yet");
}

#[test]
fn an_older_incident_revision_never_replaces_a_newer_one() {
    let mut record = ReplyRecord::default();
    assert!(record.merge_incident(&incident_event(IncidentChange::Resolved, 3), None));
    assert!(!record.merge_incident(&incident_event(IncidentChange::Opened, 1), None));
    assert!(!record.merge_incident(&incident_event(IncidentChange::Resolved, 3), None));
    let incident = record.content.incident.as_ref().unwrap();
    assert_eq!(incident.revision, 3);
    assert!(incident.resolved_at.is_some());
    assert_eq!(record.wanted_reactions(), vec!["eyes", "white_check_mark"]);
}

#[test]
fn the_same_evidence_twice_changes_nothing_and_older_evidence_loses() {
    let mut record = ReplyRecord::default();
    assert!(record.merge_metrics(&metrics("m2", 20)));
    assert!(!record.merge_metrics(&metrics("m2", 20)));
    assert!(!record.merge_metrics(&metrics("m1", 10)));
    assert!(record.merge_metrics(&metrics("m3", 30)));
    assert_eq!(record.content_revision, 2);
}

#[test]
fn caught_up_means_posted_and_rendered() {
    let mut record = ReplyRecord::default();
    record.merge_incident(&incident_event(IncidentChange::Opened, 1), None);
    record.message_ts = Some("1.2".into());
    record.rendered_revision = record.content_revision;
    assert!(record.caught_up());
    record.merge_incident(&incident_event(IncidentChange::Updated, 2), None);
    assert!(!record.caught_up());
}

#[test]
fn keys_are_valid_nats_keys() {
    assert_eq!(reply::key(reply::Kind::Incident, "inc-1"), "incident.inc-1");
    assert_eq!(
        reply::key(reply::Kind::Post, "help:U0ONCALL/C1"),
        "post.help_U0ONCALL_C1"
    );
    assert_eq!(reply::key(reply::Kind::Sandbox, "a b.c"), "sandbox.a_b_c");
}

#[test]
fn of_two_post_requests_for_one_key_the_later_published_wins_in_any_order() {
    let post = |post_id: &str, text: &str| PostRequest {
        schema_version: proto::SchemaVersion::CURRENT,
        post_id: post_id.to_owned(),
        reply_key: Some("help".to_owned()),
        target: proto::ReplyTarget::Thread {
            channel: "C0ALERTS".to_owned(),
            thread_ts: "1700000000.000100".to_owned(),
        },
        text: proto::Mrkdwn::plain(text),
        blocks: None,
        incident_id: None,
        stands_for: None,
    };
    let (first, second) = (post("p2", "first answer"), post("p3", "second answer"));
    for handled in [[(&first, 7), (&second, 8)], [(&second, 8), (&first, 7)]] {
        let mut record = ReplyRecord::default();
        for (post, sequence) in handled {
            record.merge_post(post, sequence);
        }
        assert_eq!(
            record.content.post.as_ref().unwrap().text.as_str(),
            "second answer"
        );
        assert!(
            !record.merge_post(&second, 8),
            "a redelivery changes nothing"
        );
    }
}

#[test]
fn a_repeat_only_changes_counts_and_is_cosmetic_while_a_resolve_or_evidence_is_not() {
    let mut record = ReplyRecord::default();
    assert!(record.merge_incident(&incident_event(IncidentChange::Opened, 1), None));
    record.message_ts = Some("1700000000.000200".to_owned());
    record.rendered_revision = record.content_revision;
    assert!(record.caught_up());

    let mut repeat = incident_event(IncidentChange::Updated, 2);
    repeat.incident.window.to = repeat.incident.last_seen_at;
    assert!(record.merge_incident(&repeat, None));
    assert_eq!(
        record.content.incident.as_ref().unwrap().notification_count,
        2
    );
    assert!(!record.caught_up(), "the new count is still to be shown");
    assert!(record.only_cosmetic_pending(), "but only a count changed");

    let mut relabelled = incident_event(IncidentChange::Updated, 3);
    relabelled
        .incident
        .alert
        .labels
        .insert("namespace".to_owned(), "shop".to_owned());
    assert!(record.merge_incident(&relabelled, None));
    assert!(!record.only_cosmetic_pending(), "a label recovered is news");
    record.rendered_revision = record.content_revision;

    assert!(record.merge_metrics(&metrics("m1", 10)));
    assert!(!record.only_cosmetic_pending(), "evidence is news");
    record.rendered_revision = record.content_revision;

    assert!(record.merge_incident(&incident_event(IncidentChange::Resolved, 4), None));
    assert!(!record.only_cosmetic_pending(), "resolving is news");
}

#[test]
fn only_an_incidents_first_reply_is_timed_from_its_alert() {
    let mut record = ReplyRecord::default();
    assert!(record.merge_incident(&incident_event(IncidentChange::Opened, 1), None));
    // The alert was posted at …000.000100; the reply 2.5 s later.
    assert_eq!(
        record.alert_to_reply("1700000002.500100"),
        Some(std::time::Duration::from_millis(2500))
    );
    assert_eq!(record.alert_to_reply("not a ts"), None);

    let mut reposted = record.clone();
    reposted.reposted = true;
    assert_eq!(reposted.alert_to_reply("1700009000.000100"), None);

    let mut asked = record.clone();
    if let Some(incident) = asked.content.incident.as_mut() {
        incident.asked_by = Some("U0ONCALL".to_owned());
    }
    assert_eq!(asked.alert_to_reply("1700000002.500100"), None);

    // Not an incident's reply at all (a note, a sandbox offer): nothing to time.
    assert_eq!(
        ReplyRecord::default().alert_to_reply("1700000002.500100"),
        None
    );
}
