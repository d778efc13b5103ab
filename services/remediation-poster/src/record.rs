//! The state of one reply, as kept in the reply KV bucket: where it goes, what it says (the
//! latest incident, the latest evidence, a sandbox result or a requested post), and how far Slack
//! has caught up (its `ts`, the content revision it shows, the reactions added).
//!
//! Everything here is pure: merging a message into a record is a function that says whether the
//! content changed. The poster writes records back with compare-and-set, so two replicas merging
//! at once both land, and it re-renders until Slack shows the latest content revision.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use proto::{
    ChangesEvidence, Incident, IncidentChange, IncidentEvent, MetricsEvidence, PostRequest,
    ProfileEvidence, ReplyTarget, SandboxResult, SlackThread, TracesEvidence, WorkloadEvidence,
};
use serde::{Deserialize, Serialize};

/// A replica that is posting a reply (between `chat.postMessage` and recording its `ts`) or
/// sharing a picture right now. Others wait for it; after `claim_timeout` they assume it crashed
/// and take over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub owner: String,
    pub at: DateTime<Utc>,
}

/// Pictures shared into the reply's thread in one message (by [`WantedShare::key`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Picture {
    /// A replica is uploading it; after `claim_timeout` another may take over.
    Sharing(Claim),
    Shared {
        file_ids: Vec<String>,
    },
    /// Slack refused it (a missing `files:write` scope, uploads disabled): not tried again.
    Refused {
        code: String,
    },
}

/// Pictures to share into the reply's thread in one message.
#[derive(Debug, Clone, PartialEq)]
pub struct WantedShare {
    /// Its key in [`ReplyRecord::pictures`]: the first picture's object key.
    pub key: String,
    pub files: Vec<WantedFile>,
    /// The message's text (mrkdwn), e.g. a link to the interactive page.
    pub comment: Option<proto::mrkdwn::Mrkdwn>,
}

/// One picture of a [`WantedShare`].
#[derive(Debug, Clone, PartialEq)]
pub struct WantedFile {
    pub object: proto::ObjectRef,
    pub filename: String,
    pub title: String,
    pub alt_text: String,
}

/// What the reply shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Content {
    #[serde(default)]
    pub incident: Option<Incident>,
    #[serde(default)]
    pub metrics: Option<MetricsEvidence>,
    #[serde(default)]
    pub profile: Option<ProfileEvidence>,
    /// What changed before the alert.
    #[serde(default)]
    pub changes: Option<ChangesEvidence>,
    /// What the alert's Kubernetes workload is doing.
    #[serde(default)]
    pub workload: Option<WorkloadEvidence>,
    /// Which requests of the alert's service got slow or failing.
    #[serde(default)]
    pub traces: Option<TracesEvidence>,
    #[serde(default)]
    pub sandbox: Option<SandboxResult>,
    #[serde(default)]
    pub post: Option<PostRequest>,
    /// The stream sequence of `post`: of two requests for one reply key, the later published
    /// wins, whichever of them the poster happens to handle first.
    #[serde(default)]
    pub post_sequence: u64,
    /// The trace the incident arrived in, shown in the reply so that one click finds the whole
    /// path from the alert to this reply.
    #[serde(default)]
    pub trace_id: Option<String>,
    /// The evidence deadline passed with evidence still missing: the reply says which.
    #[serde(default)]
    pub evidence_overdue: bool,
}

/// One reply's record in the KV bucket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplyRecord {
    /// Where the reply goes; unknown until the incident (or request) arrives: evidence can come
    /// first, and waits here.
    #[serde(default)]
    pub target: Option<ReplyTarget>,
    pub content: Content,
    /// Incremented on every change of `content`.
    pub content_revision: u64,
    /// The content revision of the last change that was more than a repeat's counts (a new
    /// alert state, evidence, an answer): Slack must show it soon. Changes since are cosmetic
    /// (how many notifications, when last seen) and are shown when Slack's budget allows.
    #[serde(default)]
    pub substantive_revision: u64,
    /// The reply's `ts`, once posted (thread targets only).
    #[serde(default)]
    pub message_ts: Option<String>,
    /// The content revision Slack shows.
    pub rendered_revision: u64,
    #[serde(default)]
    pub claim: Option<Claim>,
    /// Reactions added to the alert's message.
    #[serde(default)]
    pub reactions: BTreeSet<String>,
    /// Pictures shared into the thread, by [`WantedShare::key`]: each share is made once.
    #[serde(default)]
    pub pictures: BTreeMap<String, Picture>,
    /// Posted again after someone deleted the first reply.
    #[serde(default)]
    pub reposted: bool,
}

impl ReplyRecord {
    /// How long on-call waited for this reply, posted at `reply_ts`: from the alert's message to
    /// the reply under it, on Slack's clock. Only for an incident's first reply: a note a button
    /// adds, an answer to `@flamethread diagnose` (asked maybe days after the message) and a
    /// reply posted again after a deletion are not what an alert waited for.
    pub fn alert_to_reply(&self, reply_ts: &str) -> Option<std::time::Duration> {
        let incident = self.content.incident.as_ref()?;
        let first_reply_to_the_alert = incident.asked_by.is_none()
            && !self.reposted
            && matches!(&self.target, Some(ReplyTarget::Thread { thread_ts, .. }) if *thread_ts == incident.thread.ts);
        if !first_reply_to_the_alert {
            return None;
        }
        slack::ts_between(&incident.thread.ts, reply_ts)
    }

    /// True when Slack shows everything there is.
    pub fn caught_up(&self) -> bool {
        self.target.is_some()
            && self.rendered_revision >= self.content_revision
            && (self.message_ts.is_some() || !self.is_thread_reply())
    }

    /// Posted, and what Slack does not show yet is only a repeat's counts.
    pub fn only_cosmetic_pending(&self) -> bool {
        self.message_ts.is_some() && self.rendered_revision >= self.substantive_revision
    }

    fn is_thread_reply(&self) -> bool {
        matches!(self.target, Some(ReplyTarget::Thread { .. }))
    }

    /// The thread the reply is in.
    pub fn thread(&self) -> Option<SlackThread> {
        match &self.target {
            Some(ReplyTarget::Thread { channel, thread_ts }) => Some(SlackThread {
                channel: channel.clone(),
                ts: thread_ts.clone(),
            }),
            _ => None,
        }
    }

    /// Reactions the alert's message should carry: eyes once seen, a check mark once resolved.
    pub fn wanted_reactions(&self) -> Vec<&'static str> {
        match &self.content.incident {
            Some(incident) if incident.resolved_at.is_some() => vec!["eyes", "white_check_mark"],
            Some(_) => vec!["eyes"],
            None => Vec::new(),
        }
    }

    /// The pictures the thread should carry now, once the reply is posted in a thread: the
    /// metrics chart, and the flamegraph preview (with the diff's, when there is a baseline)
    /// linking to the interactive pages.
    pub fn wanted_shares(&self) -> Vec<WantedShare> {
        let (Some(ReplyTarget::Thread { .. }), Some(_)) = (&self.target, &self.message_ts) else {
            return Vec::new();
        };
        let about = self
            .content
            .incident
            .as_ref()
            .map_or_else(String::new, |incident| {
                let service = incident.alert.service.as_deref().unwrap_or("?");
                format!(" · {} on {service}", incident.alert.name)
            });
        let mut shares = Vec::new();
        if let Some(metrics) = &self.content.metrics
            && let Some(png) = &metrics.chart_png
        {
            let series = metrics
                .series
                .iter()
                .map(|series| {
                    let unit = series.unit.as_deref().unwrap_or("");
                    let number =
                        |value: Option<f64>| value.map_or("?".to_owned(), |v| format!("{v:.2}"));
                    format!(
                        "{}: {} {unit} now, {} {unit} usually",
                        series.name,
                        number(series.current),
                        number(series.baseline)
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            shares.push(WantedShare {
                key: png.key.clone(),
                files: vec![WantedFile {
                    object: png.clone(),
                    filename: "metrics.png".to_owned(),
                    title: format!("Metrics{about}"),
                    alt_text: format!("Chart of the metrics around the alert. {series}"),
                }],
                comment: metrics
                    .chart_url
                    .as_deref()
                    .map(|url| proto::mrkdwn::Mrkdwn::link(url, "Open the chart")),
            });
        }
        if let Some(profile) = &self.content.profile
            && let Some(png) = &profile.flamegraph_png
        {
            let hottest = profile
                .top_functions
                .first()
                .map_or_else(String::new, |top| {
                    format!(
                        " The hottest function is {} ({:.1}% of the CPU).",
                        top.name,
                        top.self_share * 100.0
                    )
                });
            let mut files = vec![WantedFile {
                object: png.clone(),
                filename: "flamegraph.png".to_owned(),
                title: format!("Flamegraph{about}"),
                alt_text: format!("Flamegraph of {}.{hottest}", profile.app),
            }];
            if let Some(diff) = &profile.diff_png {
                files.push(WantedFile {
                    object: diff.clone(),
                    filename: "flamegraph-diff.png".to_owned(),
                    title: format!("What changed against the baseline{about}"),
                    alt_text: format!(
                        "Differential flamegraph of {}: red grew, blue shrank.",
                        profile.app
                    ),
                });
            }
            let links = [
                profile
                    .flamegraph_url
                    .as_deref()
                    .map(|url| proto::mrkdwn::Mrkdwn::link(url, "Open the interactive flamegraph")),
                profile
                    .diff_url
                    .as_deref()
                    .map(|url| proto::mrkdwn::Mrkdwn::link(url, "the diff")),
            ];
            let links: Vec<_> = links.into_iter().flatten().collect();
            shares.push(WantedShare {
                key: png.key.clone(),
                files,
                comment: (!links.is_empty()).then(|| proto::mrkdwn::Mrkdwn::join(links, " · ")),
            });
        }
        shares
    }

    /// Merges a change of the incident; older revisions than the one shown are ignored, so a
    /// redelivered or late `opened` never hides a `resolved`.
    pub fn merge_incident(&mut self, event: &IncidentEvent, trace_id: Option<&str>) -> bool {
        let incident = &event.incident;
        if let Some(current) = &self.content.incident
            && current.revision >= incident.revision
        {
            return false;
        }
        let mut incident = incident.clone();
        if event.change == IncidentChange::Resolved && incident.resolved_at.is_none() {
            incident.resolved_at = Some(incident.last_seen_at);
        }
        let cosmetic = self
            .content
            .incident
            .as_ref()
            .is_some_and(|current| only_counts_differ(current, &incident));
        self.target = Some(ReplyTarget::Thread {
            channel: incident.thread.channel.clone(),
            thread_ts: incident.thread.ts.clone(),
        });
        self.content.incident = Some(incident);
        if self.content.trace_id.is_none() {
            self.content.trace_id = trace_id.map(str::to_owned);
        }
        if cosmetic {
            self.content_revision += 1;
            return true;
        }
        self.bump()
    }

    /// Merges metrics; the newest collection wins.
    pub fn merge_metrics(&mut self, metrics: &MetricsEvidence) -> bool {
        if let Some(current) = &self.content.metrics
            && (current.evidence_id == metrics.evidence_id
                || current.collected_at > metrics.collected_at)
        {
            return false;
        }
        self.content.metrics = Some(metrics.clone());
        self.bump()
    }

    /// Merges the changes before the alert; the newest collection wins.
    pub fn merge_changes(&mut self, changes: &ChangesEvidence) -> bool {
        if let Some(current) = &self.content.changes
            && (current.evidence_id == changes.evidence_id
                || current.collected_at > changes.collected_at)
        {
            return false;
        }
        self.content.changes = Some(changes.clone());
        self.bump()
    }

    /// Merges what the workload is doing; the newest collection wins.
    pub fn merge_workload(&mut self, workload: &WorkloadEvidence) -> bool {
        if let Some(current) = &self.content.workload
            && (current.evidence_id == workload.evidence_id
                || current.collected_at > workload.collected_at)
        {
            return false;
        }
        self.content.workload = Some(workload.clone());
        self.bump()
    }

    /// Merges which requests got slow; the newest collection wins.
    pub fn merge_traces(&mut self, traces: &TracesEvidence) -> bool {
        if let Some(current) = &self.content.traces
            && (current.evidence_id == traces.evidence_id
                || current.collected_at > traces.collected_at)
        {
            return false;
        }
        self.content.traces = Some(traces.clone());
        self.bump()
    }

    /// Marks an incident's evidence overdue, if some is still missing.
    pub fn mark_overdue(&mut self) -> bool {
        let content = &self.content;
        let missing = content.metrics.is_none() || content.profile.is_none();
        if content.incident.is_none() || !missing || content.evidence_overdue {
            return false;
        }
        self.content.evidence_overdue = true;
        self.bump()
    }

    /// Merges a profile; the newest collection wins. A profile asked for by a request carries its
    /// own reply target.
    pub fn merge_profile(&mut self, profile: &ProfileEvidence) -> bool {
        if let Some(current) = &self.content.profile
            && (current.evidence_id == profile.evidence_id
                || current.collected_at > profile.collected_at)
        {
            return false;
        }
        if self.target.is_none() {
            self.target = profile.reply.clone();
        }
        self.content.profile = Some(profile.clone());
        self.bump()
    }

    pub fn merge_sandbox(&mut self, result: &SandboxResult) -> bool {
        if self.content.sandbox.as_ref() == Some(result) {
            return false;
        }
        self.target = Some(result.reply.clone());
        self.content.sandbox = Some(result.clone());
        self.bump()
    }

    /// Merges a post request published at stream `sequence`; an older one than the reply shows
    /// (handled late because handlers run concurrently) changes nothing.
    pub fn merge_post(&mut self, post: &PostRequest, sequence: u64) -> bool {
        if let Some(current) = &self.content.post
            && (current.post_id == post.post_id || sequence < self.content.post_sequence)
        {
            return false;
        }
        self.target = Some(post.target.clone());
        self.content.post = Some(post.clone());
        self.content.post_sequence = sequence;
        self.bump()
    }

    fn bump(&mut self) -> bool {
        self.content_revision += 1;
        self.substantive_revision = self.content_revision;
        true
    }
}

/// Whether `new` is `current` seen again: only its revision, notification counts, last-seen
/// times and the window's end (which follows the last notification) differ: a repeat
/// notification of the same alerts.
fn only_counts_differ(current: &Incident, new: &Incident) -> bool {
    let mut new = new.clone();
    new.revision = current.revision;
    new.window.to = current.window.to;
    new.notification_count = current.notification_count;
    new.last_seen_at = current.last_seen_at;
    if new.related.len() == current.related.len() {
        for (related, was) in new.related.iter_mut().zip(&current.related) {
            related.notification_count = was.notification_count;
            related.last_seen_at = was.last_seen_at;
            related.last_message = was.last_message.clone();
        }
    }
    new.related_untracked = current.related_untracked;
    new == *current
}

#[cfg(test)]
pub(crate) mod tests;
