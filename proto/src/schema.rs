//! The catalog of messages: which type travels on which subjects, who produces it, and its JSON
//! Schema. `proto/schemas/*.json` and the table in `proto/README.md` are generated from here and
//! checked against the committed files by `proto/tests/contract.rs`.

use schemars::{JsonSchema, Schema, generate::SchemaSettings};

use crate::{
    BlockAction, Change, ChangesEvidence, DeadLetter, FileReceived, FileShared, HomeOpened,
    HomeRequest, IncidentEvent, MetricsEvidence, PostRequest, ProfileEvidence, ProfileRequest,
    SandboxRequest, SandboxResult, SlackAsk, SlackMessage, SlashCommand, SpanBatch, Subject,
    Subjects, TracesCommand, TracesEvidence, WorkloadEvidence,
    subjects::{CONSUMERS, Stream},
};

/// One message type of the contract.
#[derive(Debug, Clone, Copy)]
pub struct CatalogEntry {
    /// The Rust type's name.
    pub message: &'static str,
    /// The schema's file name in `proto/schemas/`.
    pub file: &'static str,
    /// The subjects it is published on (empty for dead letters, which mirror the original).
    pub subjects: &'static [Subject],
    pub producer: &'static str,
    /// How its `Nats-Msg-Id` is built.
    pub idempotency_key: &'static str,
    /// Who reads it without a durable consumer (by time, with an ordered consumer).
    pub read_by_time: Option<&'static str>,
    schema: fn() -> Schema,
}

impl CatalogEntry {
    pub fn schema(&self) -> Schema {
        (self.schema)()
    }

    /// The schema as committed: pretty JSON with a trailing newline.
    pub fn schema_text(&self) -> String {
        let mut text = serde_json::to_string_pretty(&self.schema()).expect("schemas serialize");
        text.push('\n');
        text
    }
}

fn schema_of<T: JsonSchema>() -> Schema {
    SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<T>()
}

pub const CATALOG: &[CatalogEntry] = &[
    CatalogEntry {
        message: "SlackMessage",
        file: "slack-message.v1.json",
        subjects: &[Subject::SlackMessage],
        producer: "slack-gateway",
        idempotency_key: "`slack-event:<event_id>`",
        read_by_time: None,
        schema: schema_of::<SlackMessage>,
    },
    CatalogEntry {
        message: "SlashCommand",
        file: "slash-command.v1.json",
        subjects: &[Subject::SlackCommand],
        producer: "slack-gateway",
        idempotency_key: "`slack-command:<trigger_id>`",
        read_by_time: None,
        schema: schema_of::<SlashCommand>,
    },
    CatalogEntry {
        message: "BlockAction",
        file: "block-action.v1.json",
        subjects: &[Subject::SlackAction],
        producer: "slack-gateway",
        idempotency_key: "`slack-action:<trigger_id>:<action_id>`",
        read_by_time: None,
        schema: schema_of::<BlockAction>,
    },
    CatalogEntry {
        message: "SlackAsk",
        file: "slack-ask.v1.json",
        subjects: &[Subject::SlackAsk],
        producer: "slack-gateway",
        idempotency_key: "`slack-event:ask-<event_id>`",
        read_by_time: None,
        schema: schema_of::<SlackAsk>,
    },
    CatalogEntry {
        message: "HomeOpened",
        file: "home-opened.v1.json",
        subjects: &[Subject::HomeOpened],
        producer: "slack-gateway",
        idempotency_key: "`slack-home:<event_id>`",
        read_by_time: None,
        schema: schema_of::<HomeOpened>,
    },
    CatalogEntry {
        message: "HomeRequest",
        file: "home-request.v1.json",
        subjects: &[Subject::PostHome],
        producer: "profile-fetcher",
        idempotency_key: "`home:<event_id>`",
        read_by_time: None,
        schema: schema_of::<HomeRequest>,
    },
    CatalogEntry {
        message: "FileShared",
        file: "file-shared.v1.json",
        subjects: &[Subject::SlackFile],
        producer: "slack-gateway",
        idempotency_key: "`slack-event:<event_id>`",
        read_by_time: None,
        schema: schema_of::<FileShared>,
    },
    CatalogEntry {
        message: "FileReceived",
        file: "file-received.v1.json",
        subjects: &[Subject::SlackFileReceived],
        producer: "slack-gateway",
        idempotency_key: "`slack-file-received:<event_id>`",
        read_by_time: None,
        schema: schema_of::<FileReceived>,
    },
    CatalogEntry {
        message: "IncidentEvent",
        file: "incident-event.v1.json",
        subjects: &[
            Subject::IncidentOpened,
            Subject::IncidentUpdated,
            Subject::IncidentResolved,
        ],
        producer: "alert-watcher",
        idempotency_key: "`incident:<incident.id>:<incident.revision>`",
        read_by_time: None,
        schema: schema_of::<IncidentEvent>,
    },
    CatalogEntry {
        message: "MetricsEvidence",
        file: "metrics-evidence.v1.json",
        subjects: &[Subject::EvidenceMetrics],
        producer: "profile-fetcher",
        idempotency_key: "`evidence:<evidence_id>`",
        read_by_time: None,
        schema: schema_of::<MetricsEvidence>,
    },
    CatalogEntry {
        message: "ProfileEvidence",
        file: "profile-evidence.v1.json",
        subjects: &[Subject::EvidenceProfile],
        producer: "profile-fetcher",
        idempotency_key: "`evidence:<evidence_id>`",
        read_by_time: None,
        schema: schema_of::<ProfileEvidence>,
    },
    CatalogEntry {
        message: "ProfileRequest",
        file: "profile-request.v1.json",
        subjects: &[Subject::ProfileRequest],
        producer: "alert-watcher",
        idempotency_key: "`profile-request:<request_id>`",
        read_by_time: None,
        schema: schema_of::<ProfileRequest>,
    },
    CatalogEntry {
        message: "SandboxRequest",
        file: "sandbox-request.v1.json",
        subjects: &[Subject::SandboxRequest],
        producer: "alert-watcher",
        idempotency_key: "`sandbox-request:<request_id>`",
        read_by_time: None,
        schema: schema_of::<SandboxRequest>,
    },
    CatalogEntry {
        message: "SandboxResult",
        file: "sandbox-result.v1.json",
        subjects: &[Subject::SandboxResult],
        producer: "sandbox-runner",
        idempotency_key: "`sandbox-result:<request_id>`",
        read_by_time: None,
        schema: schema_of::<SandboxResult>,
    },
    CatalogEntry {
        message: "PostRequest",
        file: "post-request.v1.json",
        subjects: &[Subject::PostRequest],
        producer: "alert-watcher, profile-fetcher, sandbox-runner",
        idempotency_key: "`post:<post_id>`",
        read_by_time: None,
        schema: schema_of::<PostRequest>,
    },
    CatalogEntry {
        message: "ChangesEvidence",
        file: "changes-evidence.v1.json",
        subjects: &[Subject::EvidenceChanges],
        producer: "profile-fetcher",
        idempotency_key: "`evidence:<evidence_id>`",
        read_by_time: None,
        schema: schema_of::<ChangesEvidence>,
    },
    CatalogEntry {
        message: "WorkloadEvidence",
        file: "workload-evidence.v1.json",
        subjects: &[Subject::EvidenceWorkload],
        producer: "profile-fetcher",
        idempotency_key: "`evidence:<evidence_id>`",
        read_by_time: None,
        schema: schema_of::<WorkloadEvidence>,
    },
    CatalogEntry {
        message: "TracesEvidence",
        file: "traces-evidence.v1.json",
        subjects: &[Subject::EvidenceTraces],
        producer: "profile-fetcher",
        idempotency_key: "`evidence:<evidence_id>`",
        read_by_time: None,
        schema: schema_of::<TracesEvidence>,
    },
    CatalogEntry {
        message: "Change",
        file: "change.v1.json",
        subjects: &[Subject::ChangeRecorded],
        producer: "profile-fetcher (markers API), alert-watcher (change messages in Slack)",
        idempotency_key: "`change:<service>:<change_id>`",
        read_by_time: Some(
            "profile-fetcher, by time, when an incident opens and for `GET /api/v1/changes`",
        ),
        schema: schema_of::<Change>,
    },
    CatalogEntry {
        message: "SpanBatch",
        file: "span-batch.v1.json",
        subjects: &[Subject::SpanReceived],
        producer: "profile-fetcher (the span intake: OTLP over HTTP, SpanEvent JSON)",
        idempotency_key: "`spans:<batch_id>` (a digest of the batch's spans)",
        read_by_time: Some("profile-fetcher's span store, in order, from where its files end"),
        schema: schema_of::<SpanBatch>,
    },
    CatalogEntry {
        message: "TracesCommand",
        file: "traces-command.v1.json",
        subjects: &[Subject::TracesCommand],
        producer: "alert-watcher",
        idempotency_key: "`traces-command:<command_id>`",
        read_by_time: None,
        schema: schema_of::<TracesCommand>,
    },
    CatalogEntry {
        message: "DeadLetter",
        file: "dead-letter.v1.json",
        subjects: &[],
        producer: "any consumer (the bus)",
        idempotency_key: "`dead-letter:<stream>:<stream_sequence>`",
        read_by_time: None,
        schema: schema_of::<DeadLetter>,
    },
];

/// The subject table of `proto/README.md`, for the default prefix.
pub fn subject_table() -> String {
    let subjects = Subjects::default();
    let mut table = String::from(
        "| subject | message | producer | consumers (durable) | stream | delivery |\n\
         |---|---|---|---|---|---|\n",
    );
    for entry in CATALOG {
        for &subject in entry.subjects {
            let consumers: Vec<String> = CONSUMERS
                .iter()
                .filter(|consumer| consumer.subjects.contains(&subject))
                .map(|consumer| format!("{} (`{}`)", consumer.owner, consumer.durable))
                .collect();
            table.push_str(&format!(
                "| `{}` | [`{}`](schemas/{}) | {} | {} | `{}` | at least once, explicit ack; dedup by `Nats-Msg-Id` {} |\n",
                subjects.subject(subject),
                entry.message,
                entry.file,
                entry.producer,
                match (consumers.is_empty(), entry.read_by_time) {
                    (false, _) => consumers.join(", "),
                    (true, Some(readers)) => readers.to_owned(),
                    (true, None) => "none yet".to_owned(),
                },
                subjects.stream_name(subject.stream()),
                entry.idempotency_key,
            ));
        }
    }
    let dead_letter = CATALOG
        .iter()
        .find(|entry| entry.message == "DeadLetter")
        .expect("listed");
    table.push_str(&format!(
        "| `{}.deadletter.<original subject>` | [`DeadLetter`](schemas/{}) | {} | operators | `{}` | stored; dedup by `Nats-Msg-Id` {} |\n",
        subjects.prefix(),
        dead_letter.file,
        dead_letter.producer,
        subjects.stream_name(Stream::DeadLetter),
        dead_letter.idempotency_key,
    ));
    table
}
