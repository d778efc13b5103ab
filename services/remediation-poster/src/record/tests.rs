use test_support::fixtures;

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
    assert_eq!(reply_key("incident", "inc-1"), "incident.inc-1");
    assert_eq!(
        reply_key("post", "help:U0ONCALL/C1"),
        "post.help_U0ONCALL_C1"
    );
    assert_eq!(reply_key("sandbox", "a b.c"), "sandbox.a_b_c");
}
