//! Who may write and read what on the bus, derived from the contract: which service publishes
//! each subject ([`PRODUCERS`]) and which consumes it ([`crate::subjects::CONSUMERS`]).
//!
//! Each service is a NATS user whose permissions *deny* what it has no business with: publishing
//! another service's messages, writing another service's KV bucket, creating consumers on (so
//! reading) a stream it does not consume, deleting or purging flamethread's streams. Deny lists,
//! rather than allow lists, keep the JetStream API subjects a client needs (inboxes, acks, flow
//! control, object store chunks) out of the contract. [`nats_authorization`] writes the
//! nats-server `authorization` block that `deploy/nats/` and `k8s/` use; passwords come from the
//! environment (`$FT_NATS_PASSWORD_<SERVICE>`).

use std::fmt::Write as _;

use crate::subjects::{CONSUMERS, Stream, Subject, Subjects};

/// The five services, as NATS users.
pub const SERVICES: [&str; 5] = [
    "slack-gateway",
    "alert-watcher",
    "profile-fetcher",
    "sandbox-runner",
    "remediation-poster",
];

/// Which service publishes each message subject.
pub const PRODUCERS: &[(&str, &[Subject])] = &[
    (
        "slack-gateway",
        &[
            Subject::SlackMessage,
            Subject::SlackCommand,
            Subject::SlackAction,
            Subject::SlackFileReceived,
            Subject::SlackFile,
            Subject::SlackAsk,
            Subject::HomeOpened,
        ],
    ),
    (
        "alert-watcher",
        &[
            Subject::IncidentOpened,
            Subject::IncidentUpdated,
            Subject::IncidentResolved,
            Subject::ProfileRequest,
            Subject::SandboxRequest,
            Subject::PostRequest,
            Subject::ChangeRecorded,
            Subject::TracesCommand,
        ],
    ),
    (
        "profile-fetcher",
        &[
            Subject::EvidenceMetrics,
            Subject::EvidenceProfile,
            Subject::EvidenceChanges,
            Subject::EvidenceWorkload,
            Subject::EvidenceTraces,
            Subject::PostRequest,
            Subject::PostHome,
            Subject::ChangeRecorded,
            Subject::SpanReceived,
        ],
    ),
    (
        "sandbox-runner",
        &[Subject::SandboxResult, Subject::PostRequest],
    ),
    ("remediation-poster", &[]),
];

/// Streams a service reads by time with short-lived ordered consumers rather than a durable one:
/// profile-fetcher reads the changes before an incident, and lists them for the markers API.
///
/// The span store reads `span.received` in order from where its files end, so it keeps no
/// consumer state of its own on the server.
pub const READERS_BY_TIME: &[(&str, Stream)] = &[
    ("profile-fetcher", Stream::Changes),
    ("profile-fetcher", Stream::Spans),
];

/// The KV buckets a service writes: the incident state is alert-watcher's alone, the replies
/// remediation-poster's.
fn buckets_written(subjects: &Subjects, service: &str) -> Vec<String> {
    match service {
        "alert-watcher" => vec![subjects.incident_bucket()],
        "remediation-poster" => vec![subjects.reply_bucket()],
        _ => Vec::new(),
    }
}

/// What `service` is refused: (publish, subscribe) subjects.
pub fn denied(subjects: &Subjects, service: &str) -> (Vec<String>, Vec<String>) {
    let own: Vec<Subject> = PRODUCERS
        .iter()
        .filter(|(producer, _)| *producer == service)
        .flat_map(|(_, produced)| produced.iter().copied())
        .collect();
    let mut publish: Vec<String> = Subject::ALL
        .iter()
        .filter(|subject| !own.contains(subject))
        .map(|subject| subjects.subject(*subject))
        .collect();
    // Other services' buckets: neither written directly nor through the JetStream API.
    for bucket in [subjects.incident_bucket(), subjects.reply_bucket()] {
        if !buckets_written(subjects, service).contains(&bucket) {
            publish.push(format!("$KV.{bucket}.>"));
        }
    }
    // Streams it does not consume: no consumers on them, so no reading them.
    let consumed: Vec<Stream> = CONSUMERS
        .iter()
        .filter(|consumer| consumer.owner == service)
        .map(|consumer| consumer.stream)
        .chain(
            READERS_BY_TIME
                .iter()
                .filter(|(reader, _)| *reader == service)
                .map(|(_, stream)| *stream),
        )
        .collect();
    for spec in subjects.streams() {
        if !consumed.contains(&spec.stream) {
            for api in ["CREATE", "DURABLE.CREATE"] {
                publish.push(format!("$JS.API.CONSUMER.{api}.{}.>", spec.name));
                publish.push(format!("$JS.API.CONSUMER.{api}.{}", spec.name));
            }
        }
        // Nobody deletes or empties flamethread's streams.
        publish.push(format!("$JS.API.STREAM.DELETE.{}", spec.name));
        publish.push(format!("$JS.API.STREAM.PURGE.{}", spec.name));
    }
    // The messages themselves reach a service only through its own consumers.
    let subscribe = vec![format!("{}.>", subjects.prefix())];
    (publish, subscribe)
}

/// The nats-server `authorization` block: one user per service, with its denials.
pub fn nats_authorization(subjects: &Subjects) -> String {
    let mut text = String::from(
        "# Generated from proto/src/permissions.rs by `FT_BLESS=1 cargo test -p proto`; do not edit.\n\
         # One NATS user per flamethread service, refused what it has no business with. Passwords\n\
         # come from the server's environment: FT_NATS_PASSWORD_<SERVICE> (e.g. _SANDBOX_RUNNER).\n\
         authorization {\n  users = [\n",
    );
    for service in SERVICES {
        let (publish, subscribe) = denied(subjects, service);
        let variable = format!(
            "FT_NATS_PASSWORD_{}",
            service.to_ascii_uppercase().replace('-', "_")
        );
        let list = |subjects: &[String]| {
            subjects
                .iter()
                .map(|subject| format!("\"{subject}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = write!(
            text,
            "    {{\n      user: \"{service}\"\n      password: ${variable}\n      permissions: {{\n        publish: {{ deny: [{}] }}\n        subscribe: {{ deny: [{}] }}\n      }}\n    }}\n",
            list(&publish),
            list(&subscribe),
        );
    }
    text.push_str("  ]\n}\n");
    text
}
