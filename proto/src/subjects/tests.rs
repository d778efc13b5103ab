use super::*;

#[test]
fn every_subject_lands_in_its_stream() {
    let subjects = Subjects::new("acme.ft").unwrap();
    for subject in Subject::ALL {
        let full = subjects.subject(subject);
        let spec = subjects.stream_spec(subject.stream());
        let pattern = spec.subjects[0].trim_end_matches('>');
        assert!(
            full.starts_with(pattern),
            "{full} is not captured by {}",
            spec.subjects[0]
        );
    }
}

#[test]
fn no_two_streams_overlap() {
    let subjects = Subjects::default();
    let roots: Vec<_> = subjects
        .streams()
        .into_iter()
        .map(|s| s.subjects[0].clone())
        .collect();
    let mut deduped = roots.clone();
    deduped.sort();
    deduped.dedup();
    assert_eq!(roots.len(), deduped.len());
}

#[test]
fn consumer_subjects_belong_to_their_stream_and_names_are_unique() {
    for consumer in CONSUMERS {
        for subject in consumer.subjects {
            assert_eq!(subject.stream(), consumer.stream, "{}", consumer.durable);
        }
    }
    let mut names: Vec<_> = CONSUMERS.iter().map(|c| c.durable).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), CONSUMERS.len());
}

#[test]
fn names_follow_the_prefix() {
    let subjects = Subjects::new("acme.flame-thread").unwrap();
    assert_eq!(
        subjects.subject(Subject::SlackMessage),
        "acme.flame-thread.slack.message"
    );
    assert_eq!(
        subjects.stream_name(Stream::Slack),
        "ACME_FLAME_THREAD_SLACK"
    );
    assert_eq!(subjects.incident_bucket(), "acme_flame_thread_incidents");
    assert_eq!(
        subjects.dead_letter_subject("acme.flame-thread.incident.opened"),
        "acme.flame-thread.deadletter.incident.opened"
    );
}

#[test]
fn full_subjects_parse_back() {
    let subjects = Subjects::new("acme.ft").unwrap();
    for subject in Subject::ALL {
        assert_eq!(subjects.parse(&subjects.subject(subject)), Some(subject));
    }
    assert_eq!(subjects.parse("ft.slack.message"), None);
    assert_eq!(subjects.parse("acme.ft.slack"), None);
    assert_eq!(subjects.parse("acme.ftx.slack.message"), None);
}

#[test]
fn bad_prefixes_are_refused() {
    for bad in ["", ".", "ft.", "ft..x", "f t", "ft.*", "ft.>", "ft/x"] {
        assert_eq!(
            Subjects::new(bad),
            Err(InvalidPrefix(bad.to_owned())),
            "{bad:?}"
        );
    }
}
