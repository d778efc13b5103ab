//! The subject namespace: subjects, the streams that store them, the KV bucket and object store,
//! and the durable consumers each service owns.
//!
//! Everything is named under one prefix (default `ft`), so that two flamethread installations, or
//! a test and a developer's pipeline, can share one NATS account without seeing each other.

use std::{fmt, time::Duration};

/// The default subject prefix.
pub const DEFAULT_PREFIX: &str = "ft";

/// Every subject a message is published on, without the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    SlackMessage,
    SlackCommand,
    SlackAction,
    SlackFile,
    SlackFileReceived,
    SlackAsk,
    HomeOpened,
    IncidentOpened,
    IncidentUpdated,
    IncidentResolved,
    EvidenceMetrics,
    EvidenceProfile,
    EvidenceChanges,
    EvidenceWorkload,
    EvidenceTraces,
    ProfileRequest,
    SandboxRequest,
    SandboxResult,
    PostRequest,
    PostHome,
    ChangeRecorded,
    SpanReceived,
    TracesCommand,
}

impl Subject {
    pub const ALL: [Subject; 23] = [
        Subject::SlackMessage,
        Subject::SlackCommand,
        Subject::SlackAction,
        Subject::SlackFile,
        Subject::SlackFileReceived,
        Subject::SlackAsk,
        Subject::HomeOpened,
        Subject::IncidentOpened,
        Subject::IncidentUpdated,
        Subject::IncidentResolved,
        Subject::EvidenceMetrics,
        Subject::EvidenceProfile,
        Subject::EvidenceChanges,
        Subject::EvidenceWorkload,
        Subject::EvidenceTraces,
        Subject::ProfileRequest,
        Subject::SandboxRequest,
        Subject::SandboxResult,
        Subject::PostRequest,
        Subject::PostHome,
        Subject::ChangeRecorded,
        Subject::SpanReceived,
        Subject::TracesCommand,
    ];

    /// The subject after the prefix, e.g. `slack.message`.
    pub fn token(self) -> &'static str {
        match self {
            Subject::SlackMessage => "slack.message",
            Subject::SlackCommand => "slack.command",
            Subject::SlackAction => "slack.action",
            Subject::SlackFile => "slack.file",
            Subject::SlackFileReceived => "slack.file_received",
            Subject::SlackAsk => "slack.ask",
            Subject::HomeOpened => "profile.home_opened",
            Subject::IncidentOpened => "incident.opened",
            Subject::IncidentUpdated => "incident.updated",
            Subject::IncidentResolved => "incident.resolved",
            Subject::EvidenceMetrics => "evidence.metrics",
            Subject::EvidenceProfile => "evidence.profile",
            Subject::EvidenceChanges => "evidence.changes",
            Subject::EvidenceWorkload => "evidence.workload",
            Subject::EvidenceTraces => "evidence.traces",
            Subject::ProfileRequest => "profile.request",
            Subject::SandboxRequest => "sandbox.request",
            Subject::SandboxResult => "sandbox.result",
            Subject::PostRequest => "post.request",
            Subject::PostHome => "post.home",
            Subject::ChangeRecorded => "change.recorded",
            Subject::SpanReceived => "span.received",
            Subject::TracesCommand => "profile.traces",
        }
    }

    /// The stream that stores this subject.
    pub fn stream(self) -> Stream {
        match self {
            Subject::SlackMessage
            | Subject::SlackCommand
            | Subject::SlackAction
            | Subject::SlackFile
            | Subject::SlackFileReceived
            | Subject::SlackAsk => Stream::Slack,
            Subject::IncidentOpened | Subject::IncidentUpdated | Subject::IncidentResolved => {
                Stream::Incidents
            }
            Subject::EvidenceMetrics
            | Subject::EvidenceProfile
            | Subject::EvidenceChanges
            | Subject::EvidenceWorkload
            | Subject::EvidenceTraces => Stream::Evidence,
            Subject::ProfileRequest | Subject::TracesCommand | Subject::HomeOpened => {
                Stream::Profile
            }
            Subject::SandboxRequest | Subject::SandboxResult => Stream::Sandbox,
            Subject::PostRequest | Subject::PostHome => Stream::Post,
            Subject::ChangeRecorded => Stream::Changes,
            Subject::SpanReceived => Stream::Spans,
        }
    }
}

/// The JetStream streams. Every subject is stored, so every message survives a restart of its
/// consumer; consumers are durable and ack explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stream {
    Slack,
    Incidents,
    Evidence,
    Profile,
    Sandbox,
    Post,
    Changes,
    Spans,
    DeadLetter,
}

impl Stream {
    pub const ALL: [Stream; 9] = [
        Stream::Slack,
        Stream::Incidents,
        Stream::Evidence,
        Stream::Profile,
        Stream::Sandbox,
        Stream::Post,
        Stream::Changes,
        Stream::Spans,
        Stream::DeadLetter,
    ];

    fn suffix(self) -> &'static str {
        match self {
            Stream::Slack => "SLACK",
            Stream::Incidents => "INCIDENTS",
            Stream::Evidence => "EVIDENCE",
            Stream::Profile => "PROFILE",
            Stream::Sandbox => "SANDBOX",
            Stream::Post => "POST",
            Stream::Changes => "CHANGES",
            Stream::Spans => "SPANS",
            Stream::DeadLetter => "DEADLETTER",
        }
    }

    /// The first subject token the stream captures (`<prefix>.<token>.>`).
    fn subject_root(self) -> &'static str {
        match self {
            Stream::Slack => "slack",
            Stream::Incidents => "incident",
            Stream::Evidence => "evidence",
            Stream::Profile => "profile",
            Stream::Sandbox => "sandbox",
            Stream::Post => "post",
            Stream::Changes => "change",
            Stream::Spans => "span",
            Stream::DeadLetter => "deadletter",
        }
    }

    /// How long JetStream remembers a `Nats-Msg-Id`. Slack retries an event for about five
    /// minutes, and a publisher retries across a server restart; both must land inside it.
    fn duplicate_window(self) -> Duration {
        match self {
            Stream::Slack => Duration::from_secs(15 * 60),
            _ => Duration::from_secs(10 * 60),
        }
    }

    fn max_age(self) -> Duration {
        const DAY: u64 = 24 * 60 * 60;
        match self {
            // Changes are read back by time: a month covers any incident's lookback and the
            // markers API's listing, and deploys are few.
            Stream::DeadLetter | Stream::Changes => Duration::from_secs(30 * DAY),
            // Spans are a buffer in front of the span store, which keeps them for its own
            // retention; a day lets a store that lost its disk rebuild the last day.
            Stream::Spans => Duration::from_secs(DAY),
            _ => Duration::from_secs(7 * DAY),
        }
    }

    fn description(self) -> &'static str {
        match self {
            Stream::Slack => "events accepted from Slack by slack-gateway",
            Stream::Incidents => "incidents opened, updated and resolved by alert-watcher",
            Stream::Evidence => "metrics and profiles gathered for incidents",
            Stream::Profile => {
                "requests for profile-fetcher: a profile (/profile, Profile now), SQL over spans and trace-everything (/flamethread sql, /flamethread trace), and App Home's apps"
            }
            Stream::Sandbox => "script runs requested and their results",
            Stream::Post => {
                "what remediation-poster is asked to say in Slack, and the App Home views it draws"
            }
            Stream::Changes => "deploys, config changes and rollbacks, read back by time",
            Stream::Spans => "spans accepted at the intake, on their way to the span store",
            Stream::DeadLetter => "messages no consumer could process, with the reason",
        }
    }
}

/// What a stream looks like, independent of the NATS client; the bus turns it into a stream
/// config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    pub stream: Stream,
    pub name: String,
    pub subjects: Vec<String>,
    pub description: &'static str,
    pub max_age: Duration,
    pub duplicate_window: Duration,
}

/// A durable consumer: which service owns it and which subjects it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumerSpec {
    /// The durable name; unique within its stream.
    pub durable: &'static str,
    /// The service that runs it.
    pub owner: &'static str,
    pub stream: Stream,
    pub subjects: &'static [Subject],
}

/// Every durable consumer in the system. The table in `proto/README.md` is this list.
///
/// alert-watcher reads Slack interactions as well as messages: it holds the Alertmanager
/// credentials a "Silence" click needs and it decides who may run a shared script, so it is where
/// commands and clicks become requests.
pub const CONSUMERS: &[ConsumerSpec] = &[
    SLACK_GATEWAY_FILES,
    ALERT_WATCHER_MESSAGES,
    ALERT_WATCHER_INTERACTIONS,
    PROFILE_FETCHER_INCIDENTS,
    PROFILE_FETCHER_REQUESTS,
    PROFILE_FETCHER_TRACES,
    PROFILE_FETCHER_HOME,
    SANDBOX_RUNNER,
    REMEDIATION_POSTER_INCIDENTS,
    REMEDIATION_POSTER_EVIDENCE,
    REMEDIATION_POSTER_SANDBOX,
    REMEDIATION_POSTER_POSTS,
    REMEDIATION_POSTER_HOME,
];

pub const SLACK_GATEWAY_FILES: ConsumerSpec = ConsumerSpec {
    durable: "slack-gateway-files",
    owner: "slack-gateway",
    stream: Stream::Slack,
    subjects: &[Subject::SlackFileReceived],
};

pub const ALERT_WATCHER_MESSAGES: ConsumerSpec = ConsumerSpec {
    durable: "alert-watcher-messages",
    owner: "alert-watcher",
    stream: Stream::Slack,
    subjects: &[Subject::SlackMessage],
};

pub const ALERT_WATCHER_INTERACTIONS: ConsumerSpec = ConsumerSpec {
    durable: "alert-watcher-interactions",
    owner: "alert-watcher",
    stream: Stream::Slack,
    subjects: &[
        Subject::SlackCommand,
        Subject::SlackAction,
        Subject::SlackFile,
        Subject::SlackAsk,
    ],
};

pub const PROFILE_FETCHER_INCIDENTS: ConsumerSpec = ConsumerSpec {
    durable: "profile-fetcher-incidents",
    owner: "profile-fetcher",
    stream: Stream::Incidents,
    subjects: &[Subject::IncidentOpened, Subject::IncidentUpdated],
};

pub const PROFILE_FETCHER_REQUESTS: ConsumerSpec = ConsumerSpec {
    durable: "profile-fetcher-requests",
    owner: "profile-fetcher",
    stream: Stream::Profile,
    subjects: &[Subject::ProfileRequest],
};

pub const PROFILE_FETCHER_TRACES: ConsumerSpec = ConsumerSpec {
    durable: "profile-fetcher-traces",
    owner: "profile-fetcher",
    stream: Stream::Profile,
    subjects: &[Subject::TracesCommand],
};

pub const PROFILE_FETCHER_HOME: ConsumerSpec = ConsumerSpec {
    durable: "profile-fetcher-home",
    owner: "profile-fetcher",
    stream: Stream::Profile,
    subjects: &[Subject::HomeOpened],
};

pub const SANDBOX_RUNNER: ConsumerSpec = ConsumerSpec {
    durable: "sandbox-runner",
    owner: "sandbox-runner",
    stream: Stream::Sandbox,
    subjects: &[Subject::SandboxRequest],
};

pub const REMEDIATION_POSTER_INCIDENTS: ConsumerSpec = ConsumerSpec {
    durable: "remediation-poster-incidents",
    owner: "remediation-poster",
    stream: Stream::Incidents,
    subjects: &[
        Subject::IncidentOpened,
        Subject::IncidentUpdated,
        Subject::IncidentResolved,
    ],
};

pub const REMEDIATION_POSTER_EVIDENCE: ConsumerSpec = ConsumerSpec {
    durable: "remediation-poster-evidence",
    owner: "remediation-poster",
    stream: Stream::Evidence,
    subjects: &[
        Subject::EvidenceMetrics,
        Subject::EvidenceProfile,
        Subject::EvidenceChanges,
        Subject::EvidenceWorkload,
        Subject::EvidenceTraces,
    ],
};

pub const REMEDIATION_POSTER_SANDBOX: ConsumerSpec = ConsumerSpec {
    durable: "remediation-poster-sandbox",
    owner: "remediation-poster",
    stream: Stream::Sandbox,
    subjects: &[Subject::SandboxResult],
};

pub const REMEDIATION_POSTER_POSTS: ConsumerSpec = ConsumerSpec {
    durable: "remediation-poster-posts",
    owner: "remediation-poster",
    stream: Stream::Post,
    subjects: &[Subject::PostRequest],
};

pub const REMEDIATION_POSTER_HOME: ConsumerSpec = ConsumerSpec {
    durable: "remediation-poster-home",
    owner: "remediation-poster",
    stream: Stream::Post,
    subjects: &[Subject::PostHome],
};

/// The prefix was not a valid sequence of subject tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid subject prefix {0:?}: use dot-separated tokens of letters, digits, '-' and '_' (e.g. \"ft\" or \"acme.ft\")"
)]
pub struct InvalidPrefix(pub String);

/// The names of everything under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    prefix: String,
}

impl Default for Subjects {
    fn default() -> Self {
        Subjects {
            prefix: DEFAULT_PREFIX.to_owned(),
        }
    }
}

impl fmt::Display for Subjects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.prefix)
    }
}

impl Subjects {
    pub fn new(prefix: &str) -> Result<Subjects, InvalidPrefix> {
        let valid_token = |token: &str| {
            !token.is_empty()
                && token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if prefix.split('.').all(valid_token) {
            Ok(Subjects {
                prefix: prefix.to_owned(),
            })
        } else {
            Err(InvalidPrefix(prefix.to_owned()))
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The full subject, e.g. `ft.slack.message`.
    pub fn subject(&self, subject: Subject) -> String {
        format!("{}.{}", self.prefix, subject.token())
    }

    /// The contract subject a full subject names, if any: `ft.slack.message` is
    /// [`Subject::SlackMessage`] under the prefix `ft`.
    pub fn parse(&self, full_subject: &str) -> Option<Subject> {
        let token = full_subject.strip_prefix(&self.prefix)?.strip_prefix('.')?;
        Subject::ALL
            .into_iter()
            .find(|subject| subject.token() == token)
    }

    /// The subject a message that failed on `original_subject` is dead-lettered to:
    /// `ft.slack.message` becomes `ft.deadletter.slack.message`.
    pub fn dead_letter_subject(&self, original_subject: &str) -> String {
        let rest = original_subject
            .strip_prefix(&self.prefix)
            .and_then(|rest| rest.strip_prefix('.'))
            .unwrap_or(original_subject);
        format!("{}.deadletter.{rest}", self.prefix)
    }

    /// A stream name: the prefix upper-cased, with `.` and `-` as `_` (`FT_SLACK`).
    pub fn stream_name(&self, stream: Stream) -> String {
        format!(
            "{}_{}",
            self.name_stem().to_ascii_uppercase(),
            stream.suffix()
        )
    }

    pub fn stream_spec(&self, stream: Stream) -> StreamSpec {
        StreamSpec {
            stream,
            name: self.stream_name(stream),
            subjects: vec![format!("{}.{}.>", self.prefix, stream.subject_root())],
            description: stream.description(),
            max_age: stream.max_age(),
            duplicate_window: stream.duplicate_window(),
        }
    }

    pub fn streams(&self) -> Vec<StreamSpec> {
        Stream::ALL
            .iter()
            .map(|&stream| self.stream_spec(stream))
            .collect()
    }

    /// The KV bucket with one entry per incident, updated by compare-and-set.
    pub fn incident_bucket(&self) -> String {
        format!("{}_incidents", self.name_stem())
    }

    /// The KV bucket where remediation-poster keeps each reply's Slack `ts` and the state it
    /// renders, updated by compare-and-set (one reply per incident, whatever the replicas do).
    pub fn reply_bucket(&self) -> String {
        format!("{}_replies", self.name_stem())
    }

    /// The object store for blobs: shared files, folded stacks, flamegraphs, charts.
    pub fn blob_bucket(&self) -> String {
        format!("{}_blobs", self.name_stem())
    }

    fn name_stem(&self) -> String {
        self.prefix.replace(['.', '-'], "_")
    }
}

#[cfg(test)]
mod tests;
