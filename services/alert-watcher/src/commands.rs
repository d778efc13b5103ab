//! Slash commands and picker choices, turned into requests (pure): `/profile …` becomes a
//! `profile.request` for profile-fetcher, `/flamethread sql …` and `/flamethread trace …` become a
//! `profile.traces` command for it, a mistake becomes an answer only the person sees, and
//! `/flamethread` alone explains what flamethread does. Clicks this service does not act on yet are
//! ignored and counted by the caller.

use chrono::{DateTime, Utc};
use proto::{
    AskOrigin, BlockAction, PostRequest, ProfileRequest, ReplyTarget, SchemaVersion, SlackAsk,
    SlashCommand, TimeWindow, TracesAsk, TracesCommand,
    command::{self, Ask, FlamethreadArgs, ProfileArgs, WindowSpec},
    evidence::ProfileMode,
    slack::actions,
};

/// What a command or a click leads to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Ask profile-fetcher.
    Profile(Box<ProfileRequest>),
    /// Ask profile-fetcher's span store.
    Traces(Box<TracesCommand>),
    /// Answer the person directly.
    Answer(Box<PostRequest>),
    /// Run a shared script, and say so in its thread.
    Sandbox {
        request: Box<proto::SandboxRequest>,
        notice: Box<PostRequest>,
    },
    /// Nothing for this service to do.
    Ignore(&'static str),
}

const HELP: &str = "flamethread answers alerts in their threads with what the metrics did, which functions burned the CPU and a flamegraph. Ask for a profile any time:";

/// What `/profile …` or `/flamethread …` asks for.
pub fn on_command(command: &SlashCommand, now: DateTime<Utc>) -> Outcome {
    let reply = ReplyTarget::ResponseUrl {
        url: command.response_url.clone(),
    };
    let answer = |text: String| {
        Outcome::Answer(Box::new(post(
            format!("answer-{}", command.trigger_id),
            reply.clone(),
            text,
        )))
    };
    match command.command.as_str() {
        "/profile" => {
            let text = command.text.trim();
            if text.eq_ignore_ascii_case("help") {
                return answer(command::USAGE.to_owned());
            }
            match command::parse_profile(text, now) {
                Ok(args) => Outcome::Profile(Box::new(request(
                    format!("cmd-{}", command.trigger_id),
                    &args,
                    now,
                    Some(command.user.clone()),
                    reply,
                ))),
                Err(mistake) => answer(format!("{mistake}. {}", command::USAGE)),
            }
        }
        "/flamethread" => {
            let traces = |ask: TracesAsk| {
                Outcome::Traces(Box::new(TracesCommand {
                    schema_version: SchemaVersion::CURRENT,
                    command_id: format!("cmd-{}", command.trigger_id),
                    requested_by: command.user.clone(),
                    reply: reply.clone(),
                    ask,
                }))
            };
            match command::parse_flamethread(&command.text) {
                Ok(FlamethreadArgs::Help) => answer(format!(
                    "{HELP} {} {}",
                    command::USAGE,
                    command::FLAMETHREAD_USAGE
                )),
                Ok(FlamethreadArgs::Sql(query)) => traces(TracesAsk::Sql { query }),
                Ok(FlamethreadArgs::TraceAll { service, length }) => traces(TracesAsk::TraceAll {
                    service,
                    seconds: length.as_secs(),
                }),
                Err(mistake) => answer(format!("{mistake}. {}", command::FLAMETHREAD_USAGE)),
            }
        }
        _ => Outcome::Ignore("unknown_command"),
    }
}

/// What a person asked in words (`@flamethread …`, a DM): a profile, answered in the thread it
/// was asked in; the span store, answered to the person only; help and mistakes, to the person
/// only in a channel. `diagnose` arrives here only when slack-gateway could not read the thread
/// (or there is none), and is answered with why.
pub fn on_ask(ask: &SlackAsk, now: DateTime<Utc>) -> Outcome {
    let in_thread = ask.reply_target();
    let only_them = match ask.origin {
        AskOrigin::DirectMessage => in_thread.clone(),
        AskOrigin::Mention => ReplyTarget::Ephemeral {
            channel: ask.channel.clone(),
            user: ask.user.clone(),
            thread_ts: Some(ask.thread_ts.clone().unwrap_or_else(|| ask.ts.clone())),
        },
    };
    let answer = |target: ReplyTarget, text: String| {
        Outcome::Answer(Box::new(post(
            format!("answer-{}", ask.ask_id),
            target,
            text,
        )))
    };
    match command::parse_ask(&ask.text, now) {
        Ok(Ask::Profile(args)) => Outcome::Profile(Box::new(request(
            format!("ask-{}", ask.ask_id),
            &args,
            now,
            Some(ask.user.clone()),
            in_thread,
        ))),
        Ok(Ask::Diagnose) if ask.thread_ts.is_none() => answer(
            only_them,
            "`diagnose` reads the first message of the thread it is asked in: ask in the alert's thread, or use the message shortcut \"Diagnose this message\" on it.".to_owned(),
        ),
        Ok(Ask::Diagnose) => answer(
            only_them,
            "I could not read this thread's first message from Slack just now (is flamethread in this channel?). Try again, or use the message shortcut \"Diagnose this message\" on it.".to_owned(),
        ),
        Ok(Ask::Flamethread(FlamethreadArgs::Help)) => {
            answer(only_them, format!("{HELP} {}", command::ASK_USAGE))
        }
        Ok(Ask::Flamethread(FlamethreadArgs::Sql(query))) => Outcome::Traces(Box::new(TracesCommand {
            schema_version: SchemaVersion::CURRENT,
            command_id: format!("ask-{}", ask.ask_id),
            requested_by: ask.user.clone(),
            reply: only_them,
            ask: TracesAsk::Sql { query },
        })),
        Ok(Ask::Flamethread(FlamethreadArgs::TraceAll { service, length })) => {
            Outcome::Traces(Box::new(TracesCommand {
                schema_version: SchemaVersion::CURRENT,
                command_id: format!("ask-{}", ask.ask_id),
                requested_by: ask.user.clone(),
                reply: in_thread,
                ask: TracesAsk::TraceAll {
                    service,
                    seconds: length.as_secs(),
                },
            }))
        }
        Err(mistake) => answer(only_them, format!("{mistake}. {}", command::ASK_USAGE)),
    }
}

/// What a click asks for (only picker choices so far).
pub fn on_action(action: &BlockAction, now: DateTime<Utc>) -> Outcome {
    if action.action_id != actions::PROFILE_PICK {
        return Outcome::Ignore("unhandled_action");
    }
    let reply = match &action.response_url {
        Some(url) => ReplyTarget::ResponseUrl { url: url.clone() },
        None => action.only_them(),
    };
    let picked = action.value.as_deref().unwrap_or("");
    match command::parse_profile(picked, now) {
        Ok(args) if args.app.is_some() => Outcome::Profile(Box::new(request(
            format!("pick-{}", action.trigger_id),
            &args,
            now,
            Some(action.user.clone()),
            reply,
        ))),
        // Our own pickers write these values; anything else was not made by us.
        _ => Outcome::Answer(Box::new(post(
            format!("answer-{}", action.trigger_id),
            reply,
            format!(
                "That choice (`{picked}`) is not one I offered. {}",
                command::USAGE
            ),
        ))),
    }
}

fn request(
    request_id: String,
    args: &ProfileArgs,
    now: DateTime<Utc>,
    requested_by: Option<String>,
    reply: ReplyTarget,
) -> ProfileRequest {
    let (window, mode) = match args.window {
        WindowSpec::Since(since) => (
            TimeWindow {
                from: now - chrono::Duration::from_std(since).unwrap_or(chrono::Duration::hours(1)),
                to: now,
            },
            ProfileMode::Continuous,
        ),
        WindowSpec::Range { from, to } => (TimeWindow { from, to }, ProfileMode::Continuous),
        WindowSpec::Now(seconds) => (
            TimeWindow { from: now, to: now },
            ProfileMode::Live {
                seconds: seconds.unwrap_or(0),
            },
        ),
    };
    ProfileRequest {
        schema_version: SchemaVersion::CURRENT,
        request_id,
        app: args.app.clone(),
        window,
        profile_type: args.profile_type.clone(),
        mode,
        incident_id: None,
        requested_by,
        reply,
    }
}

/// An answer in flamethread's words, which echo what the person typed: all of it escaped, so
/// the echo is never markup (backticks and asterisks still format).
fn post(post_id: String, target: ReplyTarget, text: String) -> PostRequest {
    PostRequest {
        schema_version: SchemaVersion::CURRENT,
        post_id,
        reply_key: None,
        target,
        text: proto::Mrkdwn::plain(&text),
        blocks: None,
        incident_id: None,
        stands_for: None,
    }
}

#[cfg(test)]
mod tests;
