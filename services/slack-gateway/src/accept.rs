//! What the gateway accepts from Slack, as plain functions over Slack's JSON (no I/O), the same
//! for Socket Mode and HTTP.
//!
//! - Messages from other bots are the alerts: kept. Messages from this app are dropped (its own
//!   replies must not come back as input: no loops). Housekeeping subtypes (joins, topic changes,
//!   deletions, edits) are dropped; everything else is kept with Slack's event untouched in `raw`.
//! - The channel allow-list applies to what the gateway overhears (messages, file shares), not to
//!   what a person explicitly asks of it (slash commands, button clicks), which always get an
//!   answer.
//! - A payload that lacks what Slack always sends is [`Malformed`]: refused, counted, never
//!   published half-understood.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use proto::{
    AskOrigin, BlockAction, FileReceived, HomeOpened, SchemaVersion, SlackAsk, SlackMessage,
    SlashCommand, slack::SlackTransport,
};
use serde_json::Value;
use slack::Identity;

/// Whose messages and which channels the gateway keeps.
#[derive(Debug, Clone)]
pub struct Filter {
    pub identity: Identity,
    /// Empty: every channel the app is in.
    pub channels: BTreeSet<String>,
}

impl Filter {
    fn channel_allowed(&self, channel: &str) -> bool {
        self.channels.is_empty() || self.channels.contains(channel)
    }
}

/// A message to publish.
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    Message(Box<SlackMessage>),
    File(Box<FileReceived>),
    Command(Box<SlashCommand>),
    Action(Box<BlockAction>),
    Ask(Box<SlackAsk>),
    Home(Box<HomeOpened>),
}

impl Outbound {
    /// The key JetStream deduplicates its publish by (`Nats-Msg-Id`).
    pub fn idempotency_key(&self) -> String {
        use proto::Message as _;
        match self {
            Outbound::Message(message) => message.idempotency_key(),
            Outbound::File(file) => file.idempotency_key(),
            Outbound::Command(command) => command.idempotency_key(),
            Outbound::Action(action) => action.idempotency_key(),
            Outbound::Ask(ask) => ask.idempotency_key(),
            Outbound::Home(home) => home.idempotency_key(),
        }
    }
}

/// Why an understood payload is not published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignored {
    /// Posted by this app.
    OwnMessage,
    ChannelNotAllowed,
    /// A message subtype that is not content (`channel_join`, `message_deleted`…).
    Subtype(String),
    /// An event type the gateway does not subscribe to.
    EventType(String),
    /// An interaction that is not a button click (`view_submission`, `shortcut`…).
    Interaction(String),
    /// A mention or a direct message from a bot: only people ask.
    BotAsk,
}

impl Ignored {
    /// A low-cardinality label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Ignored::OwnMessage => "own_message",
            Ignored::ChannelNotAllowed => "channel_not_allowed",
            Ignored::Subtype(_) => "subtype",
            Ignored::EventType(_) => "event_type",
            Ignored::Interaction(_) => "interaction_type",
            Ignored::BotAsk => "bot_ask",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Publish(Vec<Outbound>),
    Ignore(Ignored),
}

/// A payload without what Slack always sends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed Slack payload: {0}")]
pub struct Malformed(pub String);

/// Message subtypes that are housekeeping, not content.
const IGNORED_SUBTYPES: &[&str] = &[
    "message_deleted",
    "message_replied",
    "channel_join",
    "channel_leave",
    "channel_topic",
    "channel_purpose",
    "channel_name",
    "channel_archive",
    "channel_unarchive",
    "group_join",
    "group_leave",
    "pinned_item",
    "unpinned_item",
    "ekm_access_denied",
];

fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

fn required<'a>(value: &'a Value, key: &str, what: &str) -> Result<&'a str, Malformed> {
    text(value, key)
        .filter(|found| !found.is_empty())
        .ok_or_else(|| Malformed(format!("{what} has no {key}")))
}

/// An Events API `event_callback` (the Socket Mode envelope's payload, or the HTTP body).
pub fn event_callback(
    payload: &Value,
    transport: SlackTransport,
    received_at: DateTime<Utc>,
    filter: &Filter,
) -> Result<Verdict, Malformed> {
    if text(payload, "type") != Some("event_callback") {
        return Err(Malformed(format!(
            "expected an event_callback, got type {:?}",
            text(payload, "type").unwrap_or("(none)")
        )));
    }
    let event_id = required(payload, "event_id", "the event callback")?;
    let event = payload
        .get("event")
        .filter(|event| event.is_object())
        .ok_or_else(|| Malformed("the event callback has no event object".to_owned()))?;
    let team_id = text(payload, "team_id").map(str::to_owned);
    match required(event, "type", "the event")? {
        "message" => message(event, event_id, team_id, transport, received_at, filter),
        "file_shared" => file_shared(event, event_id, transport, received_at, filter),
        "app_home_opened" => home_opened(event, event_id, team_id, received_at),
        "app_mention" => ask(
            event,
            event_id,
            team_id,
            AskOrigin::Mention,
            received_at,
            filter,
        ),
        other => Ok(Verdict::Ignore(Ignored::EventType(other.to_owned()))),
    }
}

fn message(
    event: &Value,
    event_id: &str,
    team_id: Option<String>,
    transport: SlackTransport,
    received_at: DateTime<Utc>,
    filter: &Filter,
) -> Result<Verdict, Malformed> {
    if text(event, "subtype") == Some("message_changed") {
        return edit(event, event_id, team_id, transport, received_at, filter);
    }
    let subtype = text(event, "subtype");
    if let Some(subtype) = subtype.filter(|subtype| IGNORED_SUBTYPES.contains(subtype)) {
        return Ok(Verdict::Ignore(Ignored::Subtype(subtype.to_owned())));
    }
    let user = text(event, "user");
    let bot_id = text(event, "bot_id");
    if filter.identity.is_own(user, bot_id) {
        return Ok(Verdict::Ignore(Ignored::OwnMessage));
    }
    if text(event, "channel_type") == Some("im") {
        // The app's direct messages: a person asking, not a channel to overhear.
        if let Some(subtype) = subtype {
            return Ok(Verdict::Ignore(Ignored::Subtype(subtype.to_owned())));
        }
        return ask(
            event,
            event_id,
            team_id,
            AskOrigin::DirectMessage,
            received_at,
            filter,
        );
    }
    let channel = required(event, "channel", "the message event")?;
    if !filter.channel_allowed(channel) {
        return Ok(Verdict::Ignore(Ignored::ChannelNotAllowed));
    }
    let ts = required(event, "ts", "the message event")?;
    Ok(Verdict::Publish(vec![Outbound::Message(Box::new(
        SlackMessage {
            schema_version: SchemaVersion::CURRENT,
            event_id: event_id.to_owned(),
            team_id,
            channel: channel.to_owned(),
            ts: ts.to_owned(),
            thread_ts: text(event, "thread_ts")
                .filter(|thread| *thread != ts)
                .map(str::to_owned),
            user: user.map(str::to_owned),
            bot_id: bot_id.map(str::to_owned),
            subtype: subtype.map(str::to_owned),
            edited_ts: None,
            text: text(event, "text").unwrap_or_default().to_owned(),
            asked_by: None,
            received_at,
            transport,
            raw: event.clone(),
        },
    ))]))
}

/// A `message_changed` event: a real edit (the new message carries `edited`) goes on as the
/// message it now is, marked with when it was edited, so a tool that updates its alert in place
/// (to say it resolved, say) is heard. Slack's own changes (link unfurls, a reply count going up)
/// carry no `edited` and are housekeeping.
fn edit(
    event: &Value,
    event_id: &str,
    team_id: Option<String>,
    transport: SlackTransport,
    received_at: DateTime<Utc>,
    filter: &Filter,
) -> Result<Verdict, Malformed> {
    let edited = event
        .get("message")
        .filter(|message| message.is_object())
        .ok_or_else(|| Malformed("the message_changed event has no message".to_owned()))?;
    let Some(edited_ts) = edited.get("edited").and_then(|edit| text(edit, "ts")) else {
        return Ok(Verdict::Ignore(Ignored::Subtype(
            "message_changed".to_owned(),
        )));
    };
    if text(event, "channel_type") == Some("im") {
        // An edited question is not asked again.
        return Ok(Verdict::Ignore(Ignored::Subtype(
            "message_changed".to_owned(),
        )));
    }
    let channel = required(event, "channel", "the message_changed event")?;
    let mut now_reads = edited.clone();
    now_reads["channel"] = Value::String(channel.to_owned());
    let verdict = message(
        &now_reads,
        event_id,
        team_id,
        transport,
        received_at,
        filter,
    )?;
    Ok(match verdict {
        Verdict::Publish(mut outbound) => {
            for item in &mut outbound {
                if let Outbound::Message(message) = item {
                    message.edited_ts = Some(edited_ts.to_owned());
                }
            }
            Verdict::Publish(outbound)
        }
        ignored => ignored,
    })
}

/// A person opening the app's Home tab (the Messages tab is the DM, and asks come from it).
fn home_opened(
    event: &Value,
    event_id: &str,
    team_id: Option<String>,
    received_at: DateTime<Utc>,
) -> Result<Verdict, Malformed> {
    let tab = text(event, "tab").unwrap_or("home");
    if tab != "home" {
        return Ok(Verdict::Ignore(Ignored::EventType(format!(
            "app_home_opened:{tab}"
        ))));
    }
    Ok(Verdict::Publish(vec![Outbound::Home(Box::new(
        HomeOpened {
            schema_version: SchemaVersion::CURRENT,
            event_id: event_id.to_owned(),
            team_id,
            user: required(event, "user", "the app_home_opened event")?.to_owned(),
            received_at,
        },
    ))]))
}

/// A person asking in words: an `app_mention` event, or a message in the app's DMs.
fn ask(
    event: &Value,
    event_id: &str,
    team_id: Option<String>,
    origin: AskOrigin,
    received_at: DateTime<Utc>,
    filter: &Filter,
) -> Result<Verdict, Malformed> {
    let user = text(event, "user");
    let bot_id = text(event, "bot_id");
    if filter.identity.is_own(user, bot_id) {
        return Ok(Verdict::Ignore(Ignored::OwnMessage));
    }
    let (Some(user), None) = (user.filter(|user| !user.is_empty()), bot_id) else {
        return Ok(Verdict::Ignore(Ignored::BotAsk));
    };
    let what = "the asking event";
    let ts = required(event, "ts", what)?;
    let own_mention = format!("<@{}>", filter.identity.user_id);
    Ok(Verdict::Publish(vec![Outbound::Ask(Box::new(SlackAsk {
        schema_version: SchemaVersion::CURRENT,
        ask_id: event_id.to_owned(),
        origin,
        team_id,
        channel: required(event, "channel", what)?.to_owned(),
        user: user.to_owned(),
        ts: ts.to_owned(),
        thread_ts: text(event, "thread_ts")
            .filter(|thread| *thread != ts)
            .map(str::to_owned),
        text: text(event, "text")
            .unwrap_or_default()
            .replace(&own_mention, " ")
            .trim()
            .to_owned(),
        received_at,
    }))]))
}

/// The message a person asked to be diagnosed (`message`, as Slack sends it in a shortcut or
/// `conversations.replies`), as the [`SlackMessage`] alert-watcher reads: marked `asked_by` the
/// person, under an id of the ask (`ask_id`) so that it is stored once however often Slack
/// delivers the ask.
pub fn asked_message(
    message: &Value,
    channel: &str,
    ask_id: &str,
    asked_by: &str,
    team_id: Option<String>,
    transport: SlackTransport,
    received_at: DateTime<Utc>,
) -> Result<SlackMessage, Malformed> {
    let ts = required(message, "ts", "the message to diagnose")?;
    let mut raw = message.clone();
    raw["channel"] = Value::String(channel.to_owned());
    Ok(SlackMessage {
        schema_version: SchemaVersion::CURRENT,
        event_id: format!("ask-{ask_id}"),
        team_id,
        channel: channel.to_owned(),
        ts: ts.to_owned(),
        thread_ts: text(message, "thread_ts")
            .filter(|thread| *thread != ts)
            .map(str::to_owned),
        user: text(message, "user").map(str::to_owned),
        bot_id: text(message, "bot_id").map(str::to_owned),
        subtype: text(message, "subtype").map(str::to_owned),
        edited_ts: None,
        text: text(message, "text").unwrap_or_default().to_owned(),
        asked_by: Some(asked_by.to_owned()),
        received_at,
        transport,
        raw,
    })
}

/// When `ask` is `@flamethread diagnose` in a thread: the channel and the thread whose first
/// message to diagnose.
pub fn diagnose_in_thread(ask: &SlackAsk) -> Option<(&str, &str)> {
    let thread_ts = ask.thread_ts.as_deref()?;
    matches!(
        proto::command::parse_ask(&ask.text, ask.received_at),
        Ok(proto::command::Ask::Diagnose)
    )
    .then_some((ask.channel.as_str(), thread_ts))
}

fn file_shared(
    event: &Value,
    event_id: &str,
    transport: SlackTransport,
    received_at: DateTime<Utc>,
    filter: &Filter,
) -> Result<Verdict, Malformed> {
    let file_id = text(event, "file_id")
        .or_else(|| event.get("file").and_then(|file| text(file, "id")))
        .ok_or_else(|| Malformed("the file_shared event has no file_id".to_owned()))?;
    let user = required(event, "user_id", "the file_shared event")?;
    if filter.identity.is_own(Some(user), None) {
        return Ok(Verdict::Ignore(Ignored::OwnMessage));
    }
    let channel = required(event, "channel_id", "the file_shared event")?;
    if !filter.channel_allowed(channel) {
        return Ok(Verdict::Ignore(Ignored::ChannelNotAllowed));
    }
    Ok(Verdict::Publish(vec![Outbound::File(Box::new(
        FileReceived {
            schema_version: SchemaVersion::CURRENT,
            event_id: event_id.to_owned(),
            file_id: file_id.to_owned(),
            channel: channel.to_owned(),
            user: user.to_owned(),
            received_at,
            transport,
            raw: event.clone(),
        },
    ))]))
}

/// A slash command: Slack's form fields, as a JSON object of strings.
pub fn slash_command(fields: &Value, received_at: DateTime<Utc>) -> Result<Verdict, Malformed> {
    let what = "the slash command";
    Ok(Verdict::Publish(vec![Outbound::Command(Box::new(
        SlashCommand {
            schema_version: SchemaVersion::CURRENT,
            trigger_id: required(fields, "trigger_id", what)?.to_owned(),
            team_id: text(fields, "team_id").map(str::to_owned),
            channel: required(fields, "channel_id", what)?.to_owned(),
            user: required(fields, "user_id", what)?.to_owned(),
            command: required(fields, "command", what)?.to_owned(),
            text: text(fields, "text").unwrap_or_default().trim().to_owned(),
            response_url: required(fields, "response_url", what)?.to_owned(),
            received_at,
        },
    ))]))
}

/// An interaction payload: each button clicked becomes one [`BlockAction`]; the "Diagnose this
/// message" shortcut becomes the message it was used on, asked to be diagnosed.
pub fn interaction(
    payload: &Value,
    transport: SlackTransport,
    received_at: DateTime<Utc>,
) -> Result<Verdict, Malformed> {
    let kind = required(payload, "type", "the interaction")?;
    if kind == "message_action" {
        return message_shortcut(payload, transport, received_at);
    }
    if kind != "block_actions" {
        return Ok(Verdict::Ignore(Ignored::Interaction(kind.to_owned())));
    }
    let what = "the block_actions interaction";
    let trigger_id = required(payload, "trigger_id", what)?;
    let user = payload
        .get("user")
        .and_then(|user| text(user, "id"))
        .ok_or_else(|| Malformed(format!("{what} has no user.id")))?;
    let container = payload.get("container").unwrap_or(&Value::Null);
    let channel = payload
        .get("channel")
        .and_then(|channel| text(channel, "id"))
        .or_else(|| text(container, "channel_id"));
    // Only a click in a view (App Home) comes without a channel.
    if channel.is_none() && text(container, "type") != Some("view") {
        return Err(Malformed(format!("{what} has no channel")));
    }
    let message = payload.get("message").unwrap_or(&Value::Null);
    let message_ts = text(container, "message_ts").or_else(|| text(message, "ts"));
    let thread_ts = text(message, "thread_ts").filter(|thread| Some(*thread) != message_ts);
    let actions = payload
        .get("actions")
        .and_then(Value::as_array)
        .filter(|actions| !actions.is_empty())
        .ok_or_else(|| Malformed(format!("{what} has no actions")))?;
    let mut outbound = Vec::with_capacity(actions.len());
    for action in actions {
        outbound.push(Outbound::Action(Box::new(BlockAction {
            schema_version: SchemaVersion::CURRENT,
            trigger_id: trigger_id.to_owned(),
            user: user.to_owned(),
            channel: channel.map(str::to_owned),
            message_ts: message_ts.map(str::to_owned),
            thread_ts: thread_ts.map(str::to_owned),
            action_id: required(action, "action_id", "an action")?.to_owned(),
            // A button's `value`, or the option chosen in a select.
            value: text(action, "value")
                .or_else(|| action.get("selected_option").and_then(|o| text(o, "value")))
                .map(str::to_owned),
            response_url: text(payload, "response_url").map(str::to_owned),
            received_at,
            raw: without_credentials(payload),
        })));
    }
    Ok(Verdict::Publish(outbound))
}

/// A message shortcut: ours ([`proto::slack::shortcuts::DIAGNOSE_MESSAGE`]) is a person asking
/// for the message to be read as an alert, whatever posted it and wherever it is.
fn message_shortcut(
    payload: &Value,
    transport: SlackTransport,
    received_at: DateTime<Utc>,
) -> Result<Verdict, Malformed> {
    let what = "the message shortcut";
    let callback_id = required(payload, "callback_id", what)?;
    if callback_id != proto::slack::shortcuts::DIAGNOSE_MESSAGE {
        return Ok(Verdict::Ignore(Ignored::Interaction(
            "message_action".to_owned(),
        )));
    }
    let trigger_id = required(payload, "trigger_id", what)?;
    let user = payload
        .get("user")
        .and_then(|user| text(user, "id"))
        .ok_or_else(|| Malformed(format!("{what} has no user.id")))?;
    let channel = payload
        .get("channel")
        .and_then(|channel| text(channel, "id"))
        .ok_or_else(|| Malformed(format!("{what} has no channel.id")))?;
    let message = payload
        .get("message")
        .filter(|message| message.is_object())
        .ok_or_else(|| Malformed(format!("{what} has no message")))?;
    let team_id = payload
        .get("team")
        .and_then(|team| text(team, "id"))
        .map(str::to_owned);
    let asked = asked_message(
        message,
        channel,
        trigger_id,
        user,
        team_id,
        transport,
        received_at,
    )?;
    Ok(Verdict::Publish(vec![Outbound::Message(Box::new(asked))]))
}

/// `payload` without what works as a credential: Slack's verification `token` and the
/// `response_url`s (anyone holding one can answer as the app for 30 minutes). What is kept on the
/// bus and in dead letters is then safe to read; the action's own `response_url` field is the
/// one place it travels.
fn without_credentials(payload: &Value) -> Value {
    let mut kept = payload.clone();
    if let Some(object) = kept.as_object_mut() {
        for key in ["token", "response_url", "response_urls"] {
            object.remove(key);
        }
    }
    kept
}

#[cfg(test)]
mod tests;
