//! Events accepted from Slack by slack-gateway.
//!
//! The gateway acknowledges Slack only after JetStream stored the message, and Slack retries an
//! unacknowledged event with the same `event_id`; the idempotency keys below make those retries
//! (and Socket Mode redeliveries) land once.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Correlated, Correlation, Message, ObjectRef, SchemaVersion, Subject};

/// How the event reached the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SlackTransport {
    SocketMode,
    HttpEvents,
}

/// A message posted in a channel the gateway listens to, by a person or a bot (alerts are bot
/// messages). `raw` keeps Slack's event untouched: client libraries drop fields such as an
/// attachment's `title_link`, and alert parsers need them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SlackMessage {
    pub schema_version: SchemaVersion,
    /// Slack's `event_id` (`Ev…`), the same on every retry of the event.
    pub event_id: String,
    #[serde(default)]
    pub team_id: Option<String>,
    pub channel: String,
    /// The message's `ts`, its id within the channel.
    pub ts: String,
    /// Set when the message is itself a reply in a thread.
    #[serde(default)]
    pub thread_ts: Option<String>,
    /// The posting user, absent for most bot messages.
    #[serde(default)]
    pub user: Option<String>,
    /// The posting bot, e.g. Alertmanager's or Grafana's.
    #[serde(default)]
    pub bot_id: Option<String>,
    /// Slack's subtype, e.g. `bot_message`.
    #[serde(default)]
    pub subtype: Option<String>,
    /// Set when this is an edit of message `ts` (a tool updating its alert in place, e.g. to say
    /// it resolved): when the edit happened. `text` and `raw` are then the message as edited.
    #[serde(default)]
    pub edited_ts: Option<String>,
    /// The top-level text (often empty for attachment-only alerts).
    #[serde(default)]
    pub text: String,
    /// Set when a person asked for this message to be diagnosed (the message shortcut,
    /// `@flamethread diagnose`): it is read as an alert even when no reader knows its source or a
    /// person wrote it, and answered in its thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asked_by: Option<String>,
    pub received_at: DateTime<Utc>,
    pub transport: SlackTransport,
    /// The event object exactly as Slack sent it.
    pub raw: serde_json::Value,
}

impl Message for SlackMessage {
    fn subject(&self) -> Subject {
        Subject::SlackMessage
    }

    fn idempotency_key(&self) -> String {
        format!("slack-event:{}", self.event_id)
    }
}

impl Correlated for SlackMessage {
    fn correlation(&self) -> Correlation<'_> {
        Correlation {
            slack_channel: Some(&self.channel),
            ..Correlation::default()
        }
    }
}

/// A slash command: `/profile checkout 30m`, `/flamethread help`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SlashCommand {
    pub schema_version: SchemaVersion,
    /// Slack's `trigger_id`, unique per invocation.
    pub trigger_id: String,
    #[serde(default)]
    pub team_id: Option<String>,
    pub channel: String,
    pub user: String,
    /// The command, with its slash: `/profile`.
    pub command: String,
    /// Everything after the command.
    #[serde(default)]
    pub text: String,
    /// Where to answer; valid for 30 minutes and five posts.
    pub response_url: String,
    pub received_at: DateTime<Utc>,
}

impl Message for SlashCommand {
    fn subject(&self) -> Subject {
        Subject::SlackCommand
    }

    fn idempotency_key(&self) -> String {
        format!("slack-command:{}", self.trigger_id)
    }
}

impl Correlated for SlashCommand {
    fn correlation(&self) -> Correlation<'_> {
        Correlation {
            slack_channel: Some(&self.channel),
            ..Correlation::default()
        }
    }
}

/// A click on one of our buttons (Silence 1h, Profile now, Re-run, Profile it / No).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BlockAction {
    pub schema_version: SchemaVersion,
    /// Slack's `trigger_id` for this click.
    pub trigger_id: String,
    pub user: String,
    /// The channel of the message clicked; none for a click in App Home.
    #[serde(default)]
    pub channel: Option<String>,
    /// The message that carries the button.
    #[serde(default)]
    pub message_ts: Option<String>,
    /// The thread that message is in, if any.
    #[serde(default)]
    pub thread_ts: Option<String>,
    /// Which button: the `action_id` we gave it.
    pub action_id: String,
    /// The button's `value`, e.g. an incident id.
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub response_url: Option<String>,
    pub received_at: DateTime<Utc>,
    /// The interaction payload exactly as Slack sent it.
    pub raw: serde_json::Value,
}

impl BlockAction {
    /// An answer only the clicker sees: ephemeral where they clicked, or in the app's DM with
    /// them for a click in App Home.
    pub fn only_them(&self) -> crate::ReplyTarget {
        match &self.channel {
            Some(channel) => crate::ReplyTarget::Ephemeral {
                channel: channel.clone(),
                user: self.user.clone(),
                thread_ts: self.thread_ts.clone(),
            },
            None => crate::ReplyTarget::Direct {
                user: self.user.clone(),
            },
        }
    }

    /// The thread of the message clicked (the message's own when it is not in one), or the
    /// app's DM with the clicker for a click in App Home.
    pub fn thread(&self) -> crate::ReplyTarget {
        match &self.channel {
            Some(channel) => crate::ReplyTarget::Thread {
                channel: channel.clone(),
                thread_ts: self
                    .thread_ts
                    .clone()
                    .or_else(|| self.message_ts.clone())
                    .unwrap_or_default(),
            },
            None => crate::ReplyTarget::Direct {
                user: self.user.clone(),
            },
        }
    }
}

impl Message for BlockAction {
    fn subject(&self) -> Subject {
        Subject::SlackAction
    }

    fn idempotency_key(&self) -> String {
        format!("slack-action:{}:{}", self.trigger_id, self.action_id)
    }
}

impl Correlated for BlockAction {
    fn correlation(&self) -> Correlation<'_> {
        Correlation {
            slack_channel: self.channel.as_deref(),
            ..Correlation::default()
        }
    }
}

/// Where a person asked flamethread something in their own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AskOrigin {
    /// `@flamethread …` in a channel or a thread (an `app_mention` event).
    Mention,
    /// A message in the app's direct messages.
    DirectMessage,
}

/// A person asking in words rather than with a slash command: `@flamethread profile checkout 30m`
/// in a thread, or the same in a DM. alert-watcher reads `text` with
/// [`crate::command::parse_ask`] and answers in the thread it was asked in.
///
/// `diagnose` (and the "Diagnose this message" shortcut) does not come as an ask: slack-gateway
/// sends the message to diagnose as a [`SlackMessage`] with `asked_by` set, and only when it
/// could not (no thread, the thread unreadable) does the ask come here to be answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SlackAsk {
    pub schema_version: SchemaVersion,
    /// Slack's `event_id`.
    pub ask_id: String,
    pub origin: AskOrigin,
    #[serde(default)]
    pub team_id: Option<String>,
    pub channel: String,
    /// Who asked.
    pub user: String,
    /// The asking message's `ts`.
    pub ts: String,
    /// The thread the ask is in, if any.
    #[serde(default)]
    pub thread_ts: Option<String>,
    /// What was asked, with the mention of this app taken out.
    #[serde(default)]
    pub text: String,
    pub received_at: DateTime<Utc>,
}

impl SlackAsk {
    /// Where the answer goes: the thread the ask is in, or a thread on the asking message.
    pub fn reply_target(&self) -> crate::ReplyTarget {
        crate::ReplyTarget::Thread {
            channel: self.channel.clone(),
            thread_ts: self.thread_ts.clone().unwrap_or_else(|| self.ts.clone()),
        }
    }
}

impl Message for SlackAsk {
    fn subject(&self) -> Subject {
        Subject::SlackAsk
    }

    /// The same as the message a `diagnose` ask becomes ([`SlackMessage`] `ask-<event_id>`), so
    /// that of a Slack retry answered one way and the first try the other, one is stored.
    fn idempotency_key(&self) -> String {
        format!("slack-event:ask-{}", self.ask_id)
    }
}

impl Correlated for SlackAsk {
    fn correlation(&self) -> Correlation<'_> {
        Correlation {
            slack_channel: Some(&self.channel),
            ..Correlation::default()
        }
    }
}

/// What became of a shared file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StoredFile {
    /// Downloaded into the object store.
    Stored { object: ObjectRef },
    /// Not downloaded (too large, wrong type, download failed), with a reason a person can read.
    Rejected { reason: String },
}

/// A file shared in a channel the gateway listens to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FileShared {
    pub schema_version: SchemaVersion,
    /// Slack's `event_id`.
    pub event_id: String,
    pub file_id: String,
    pub channel: String,
    /// Who shared it: only they may ask for it to be run.
    pub user: String,
    /// The message the file was shared with; answers go into its thread.
    #[serde(default)]
    pub message_ts: Option<String>,
    pub name: String,
    /// Size in bytes as Slack reports it.
    pub size: u64,
    #[serde(default)]
    pub mimetype: Option<String>,
    pub file: StoredFile,
    pub received_at: DateTime<Utc>,
}

impl Message for FileShared {
    fn subject(&self) -> Subject {
        Subject::SlackFile
    }

    fn idempotency_key(&self) -> String {
        format!("slack-event:{}", self.event_id)
    }
}

impl Correlated for FileShared {
    fn correlation(&self) -> Correlation<'_> {
        Correlation {
            slack_channel: Some(&self.channel),
            ..Correlation::default()
        }
    }
}

/// A `file_shared` event, stored before the file is downloaded. The gateway acknowledges Slack as
/// soon as this is in JetStream and downloads the file from its own consumer, so a slow download
/// never breaks Slack's 3 seconds and a crash mid-download redelivers instead of losing the file.
/// Only slack-gateway reads it (it alone holds the token the download needs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FileReceived {
    pub schema_version: SchemaVersion,
    /// Slack's `event_id`.
    pub event_id: String,
    pub file_id: String,
    pub channel: String,
    /// Who shared it.
    pub user: String,
    pub received_at: DateTime<Utc>,
    pub transport: SlackTransport,
    /// The event object exactly as Slack sent it.
    pub raw: serde_json::Value,
}

impl Message for FileReceived {
    fn subject(&self) -> Subject {
        Subject::SlackFileReceived
    }

    fn idempotency_key(&self) -> String {
        format!("slack-file-received:{}", self.event_id)
    }
}

impl Correlated for FileReceived {
    fn correlation(&self) -> Correlation<'_> {
        Correlation {
            slack_channel: Some(&self.channel),
            ..Correlation::default()
        }
    }
}

/// What each button under an incident's reply carries as its `value` (Slack signs clicks, so a
/// value comes back as the poster wrote it): the incident, where alert-watcher keeps its state,
/// and for "Silence", the duration its confirm dialog promised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentButton {
    #[serde(rename = "i")]
    pub incident_id: String,
    /// [`crate::Incident::fingerprint`].
    #[serde(rename = "f")]
    pub fingerprint: String,
    /// Seconds, on the silence button only.
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    pub silence_seconds: Option<u64>,
}

/// A button's `value`, written by one service and read back by another when the button is
/// clicked: short JSON (Slack allows 2,000 characters), one type per kind of button, so that
/// the writer and the reader cannot drift apart.
pub trait ButtonValue: Serialize + serde::de::DeserializeOwned {
    /// The value as a click brings it back; `None` when it is not this kind of button's.
    fn parse(value: Option<&str>) -> Option<Self> {
        serde_json::from_str(value?).ok()
    }

    /// The value to put on the button.
    fn value(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl ButtonValue for IncidentButton {}

/// What the "Expire silence" button carries: the silence, and the incident it silenced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpireButton {
    #[serde(rename = "s")]
    pub silence_id: String,
    #[serde(rename = "i")]
    pub incident_id: String,
}

impl ButtonValue for ExpireButton {}

/// What the "Profile it" button under a shared script carries: what a run needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxOfferButton {
    /// Where the gateway stored the file.
    #[serde(rename = "o")]
    pub object: ObjectRef,
    #[serde(rename = "n")]
    pub name: String,
    /// Who shared it: only they (or an approver) may run it.
    #[serde(rename = "u")]
    pub uploader: String,
    #[serde(rename = "f")]
    pub file_id: String,
}

impl ButtonValue for SandboxOfferButton {}

/// What the "No" button under a shared script carries: the file, and who may decline it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxDeclineButton {
    #[serde(rename = "f")]
    pub file_id: String,
    #[serde(rename = "u")]
    pub uploader: String,
}

impl ButtonValue for SandboxDeclineButton {}

/// A duration as a person reads it in a button or a dialog: `1h`, `90m`, `2h 30m`, `45s`.
pub fn duration_text(duration: std::time::Duration) -> String {
    let seconds = duration.as_secs();
    let (hours, minutes, rest) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    match (hours, minutes, rest) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, 0) if h < 2 => format!("{}m", h * 60 + m),
        (h, m, 0) => format!("{h}h {m}m"),
        _ => format!("{seconds}s"),
    }
}

/// The `action_id`s of the buttons remediation-poster renders; alert-watcher routes their clicks.
pub mod actions {
    /// Silence the incident's alert (value, for this and the two below: an
    /// [`super::IncidentButton`]; offered only when Alertmanager confirmed the alert's labels).
    pub const SILENCE_1H: &str = "ft.silence_1h";
    /// Gather the evidence again and re-diagnose.
    pub const RERUN: &str = "ft.rerun";
    /// Take a live profile of the incident's service now.
    pub const PROFILE_NOW: &str = "ft.profile_now";
    /// Expire a silence created with `SILENCE_1H` (value: the silence and incident ids).
    pub const SILENCE_EXPIRE: &str = "ft.silence_expire";
    /// An app picked from a `/profile` picker (the option's value: the `/profile` text it stands
    /// for, see [`crate::command`]).
    pub const PROFILE_PICK: &str = "ft.profile_pick";
    /// Run a shared script in the sandbox (value: what the offer carries: the stored file, its
    /// name, who shared it).
    pub const SANDBOX_RUN: &str = "ft.sandbox_run";
    /// Do not run it (value: the file id).
    pub const SANDBOX_DECLINE: &str = "ft.sandbox_decline";
    /// Open the diff flamegraph of before vs after a change (a link button: Slack opens the
    /// URL, and the click it also sends is ignored).
    pub const OPEN_DIFF: &str = "ft.open_diff";
}

/// The `callback_id`s of the app's shortcuts (declared in the app manifests).
pub mod shortcuts {
    /// "Diagnose this message": any message, read as an alert and answered in its thread.
    pub const DIAGNOSE_MESSAGE: &str = "ft.diagnose_message";
}

/// What alert-watcher's interactions consumer reads: a command, a click, a shared file or an ask.
#[derive(Debug, Clone, PartialEq)]
pub enum SlackInteraction {
    Command(SlashCommand),
    Action(BlockAction),
    File(FileShared),
    Ask(SlackAsk),
}

impl crate::Inbound for SlackInteraction {
    fn decode(subject: Subject, payload: &[u8]) -> Result<SlackInteraction, crate::DecodeError> {
        match subject {
            Subject::SlackCommand => crate::decode(payload).map(SlackInteraction::Command),
            Subject::SlackAction => crate::decode(payload).map(SlackInteraction::Action),
            Subject::SlackFile => crate::decode(payload).map(SlackInteraction::File),
            Subject::SlackAsk => crate::decode(payload).map(SlackInteraction::Ask),
            other => Err(crate::unexpected_subject(other, "Slack interaction")),
        }
    }
}

impl Correlated for SlackInteraction {
    fn correlation(&self) -> Correlation<'_> {
        match self {
            SlackInteraction::Command(command) => command.correlation(),
            SlackInteraction::Action(action) => action.correlation(),
            SlackInteraction::File(file) => file.correlation(),
            SlackInteraction::Ask(ask) => ask.correlation(),
        }
    }
}
