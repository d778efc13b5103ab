//! What people type after `/profile`, and what a picker option carries: the same text, so a
//! choice from a picker is read exactly as if it had been typed. Part of the contract because
//! profile-fetcher writes picker options that alert-watcher reads back.
//!
//! ```text
//! /profile [app] [since | from..to | now [duration]] [type]
//! /profile checkout                 the last hour, CPU
//! /profile checkout 30m             since 30 minutes ago
//! /profile checkout 2026-12-01T10:00:00Z..2026-12-01T10:30:00Z alloc_space
//! /profile checkout now 20s         a live profile, taken for 20 seconds from its pprof endpoint
//! /profile                          a picker of the apps that exist
//! ```

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The window asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowSpec {
    /// From `since` ago until now.
    Since(Duration),
    /// An absolute range.
    Range {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
    /// A live profile taken now, for the given seconds (or the configured default).
    Now(Option<u32>),
}

/// A `/profile` request as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileArgs {
    pub app: Option<String>,
    pub window: WindowSpec,
    /// A profile type: a short name (`cpu`, `alloc_space`) or a full ID with colons.
    pub profile_type: Option<String>,
}

/// The window when none is given.
pub const DEFAULT_SINCE: Duration = Duration::from_secs(3600);
/// The longest window one request may ask for.
pub const MAX_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

/// How to use the command, for answers to mistakes.
pub const USAGE: &str = "Usage: `/profile [app] [since | from..to | now [seconds]] [type]`, e.g. `/profile checkout 30m`, `/profile checkout now 20s`, `/profile checkout 2026-12-01T10:00:00Z..2026-12-01T10:30:00Z alloc_space`. With no app you get a list to pick from.";

/// What was wrong with what a person typed: each says, as a sentence they can act on, which word
/// and why (a word is shown as typed; the reply escapes it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mistake {
    #[error("a live profile takes from 1 second to an hour, not `{0}`")]
    LiveLength(String),
    #[error("`{0}` is not a window I can look at: from 1s to {max}", max = humantime::format_duration(MAX_WINDOW))]
    WindowLength(String),
    #[error("`{0}` is not an app, a window or a profile type")]
    NotAWord(String),
    #[error("I did not understand `{0}`")]
    NotUnderstood(String),
    #[error("two windows given (`{0}` is the second)")]
    TwoWindows(String),
    #[error("`{0}` is not a time")]
    TimeOutOfRange(String),
    #[error("`{0}` is not a time: write it as 2026-12-01T10:00:00Z or Unix seconds")]
    NotATime(String),
    #[error("the window ends before it starts")]
    EndsBeforeItStarts,
    #[error("the window is in the future")]
    InTheFuture,
    #[error("the window is longer than {max}", max = humantime::format_duration(MAX_WINDOW))]
    WindowTooLong,
    #[error("`sql` needs a query after it")]
    NoQuery,
    #[error("the query is longer than {max} characters", max = crate::span::MAX_QUERY_CHARS)]
    QueryTooLong,
    #[error("`trace` takes a service and a duration: `trace checkout 2m`")]
    TraceWords,
    #[error("`{0}` is not a service name")]
    NotAService(String),
    #[error("`{0}` is not a duration from 1s to 1h (write it as 2m, 90s, 1h)")]
    TraceLength(String),
    #[error("I do not know `{0}`")]
    UnknownVerb(String),
}

/// Reads what followed `/profile`.
pub fn parse_profile(text: &str, now: DateTime<Utc>) -> Result<ProfileArgs, Mistake> {
    let mut app = None;
    let mut window = None;
    let mut profile_type = None;
    let mut words = text.split_whitespace().peekable();
    while let Some(word) = words.next() {
        if word.eq_ignore_ascii_case("now") || word.eq_ignore_ascii_case("live") {
            set(&mut window, word, || {
                let seconds = match words.peek().and_then(|next| duration(next)) {
                    Some(length) => {
                        words.next();
                        let seconds = length.as_secs();
                        if seconds == 0 || seconds > 3600 {
                            return Err(Mistake::LiveLength(
                                humantime::format_duration(length).to_string(),
                            ));
                        }
                        Some(seconds as u32)
                    }
                    None => None,
                };
                Ok(WindowSpec::Now(seconds))
            })?;
        } else if let Some((from, to)) = word.split_once("..") {
            set(&mut window, word, || range(from, to, now))?;
        } else if let Some(since) = duration(word) {
            set(&mut window, word, || {
                if since.is_zero() || since > MAX_WINDOW {
                    Err(Mistake::WindowLength(word.to_owned()))
                } else {
                    Ok(WindowSpec::Since(since))
                }
            })?;
        } else if !word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/".contains(c))
        {
            return Err(Mistake::NotAWord(word.to_owned()));
        } else if app.is_none() {
            app = Some(word.to_owned());
        } else if profile_type.is_none() {
            profile_type = Some(word.to_owned());
        } else {
            return Err(Mistake::NotUnderstood(word.to_owned()));
        }
    }
    Ok(ProfileArgs {
        app,
        window: window.unwrap_or(WindowSpec::Since(DEFAULT_SINCE)),
        profile_type,
    })
}

fn set(
    slot: &mut Option<WindowSpec>,
    word: &str,
    value: impl FnOnce() -> Result<WindowSpec, Mistake>,
) -> Result<(), Mistake> {
    if slot.is_some() {
        return Err(Mistake::TwoWindows(word.to_owned()));
    }
    *slot = Some(value()?);
    Ok(())
}

/// `30m`, `2h`, `1d`, `1h30m` (not a bare number: that could be an app).
fn duration(word: &str) -> Option<Duration> {
    if !word.starts_with(|c: char| c.is_ascii_digit()) || word.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    humantime::parse_duration(word).ok()
}

fn range(from: &str, to: &str, now: DateTime<Utc>) -> Result<WindowSpec, Mistake> {
    let instant = |text: &str| -> Result<DateTime<Utc>, Mistake> {
        if let Ok(seconds) = text.parse::<i64>() {
            return DateTime::from_timestamp(seconds, 0)
                .ok_or_else(|| Mistake::TimeOutOfRange(text.to_owned()));
        }
        DateTime::parse_from_rfc3339(text)
            .map(|time| time.with_timezone(&Utc))
            .map_err(|_| Mistake::NotATime(text.to_owned()))
    };
    let (from, to) = (instant(from)?, instant(to)?);
    if from >= to {
        return Err(Mistake::EndsBeforeItStarts);
    }
    if from > now {
        return Err(Mistake::InTheFuture);
    }
    if (to - from)
        .to_std()
        .map_or(true, |length| length > MAX_WINDOW)
    {
        return Err(Mistake::WindowTooLong);
    }
    Ok(WindowSpec::Range { from, to })
}

/// What follows `/flamethread`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlamethreadArgs {
    /// Nothing, `help`, or something not understood (answered with [`FLAMETHREAD_USAGE`]).
    Help,
    /// `sql <query>`: one read-only query over `otel_traces`.
    Sql(String),
    /// `trace <service> <duration>`: keep every span of the service for a while.
    TraceAll { service: String, length: Duration },
}

/// How to use `/flamethread`, for answers to mistakes.
pub const FLAMETHREAD_USAGE: &str = "`/flamethread sql <query>` runs one read-only query over the spans (`SELECT SpanName, count(*) FROM otel_traces GROUP BY SpanName`) and shows the answer to you only; `/flamethread trace <service> <duration>` keeps every span of a service for up to an hour, whatever its sampling says (`/flamethread trace checkout 2m`).";

/// What a person asks in words: `@flamethread …` in a channel or thread, or a direct message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    /// `diagnose`: read the thread's first message as an alert and answer it.
    Diagnose,
    /// `profile …`: the rest, read as `/profile` reads it.
    Profile(ProfileArgs),
    /// `sql …`, `trace …`, `help` or nothing: as `/flamethread` reads them.
    Flamethread(FlamethreadArgs),
}

/// How to ask in words, for answers to mistakes.
pub const ASK_USAGE: &str = "Ask me in a thread or a DM: `@flamethread diagnose` (in an alert's thread: read its first message as an alert and answer it), `@flamethread profile checkout 30m` (anything `/profile` takes), `@flamethread sql <query>` or `@flamethread trace <service> <duration>`. The message shortcut \"Diagnose this message\" works on any message.";

/// Reads what a person asked, after the mention of the app (any `<@U…>` mention left in is
/// skipped).
pub fn parse_ask(text: &str, now: DateTime<Utc>) -> Result<Ask, Mistake> {
    let words: Vec<&str> = text
        .split_whitespace()
        .filter(|word| !(word.starts_with("<@") && word.ends_with('>')))
        .collect();
    let (verb, rest) = match words.split_first() {
        Some((verb, rest)) => (verb.to_ascii_lowercase(), rest.join(" ")),
        None => (String::new(), String::new()),
    };
    let verb = verb.trim_end_matches(['?', '!', '.', ',']);
    match verb {
        "diagnose" | "why" => Ok(Ask::Diagnose),
        "profile" => parse_profile(&rest, now).map(Ask::Profile),
        // A query is taken as typed after `sql` (its spacing inside quotes is its own).
        "sql" => parse_flamethread(&format!("sql {}", after_verb(text))).map(Ask::Flamethread),
        "" | "help" | "trace" => parse_flamethread(&format!("{verb} {rest}")).map(Ask::Flamethread),
        _ => Err(Mistake::NotUnderstood(
            words.join(" ").chars().take(80).collect(),
        )),
    }
}

/// `text` after its first word that is not a mention, as typed.
fn after_verb(text: &str) -> &str {
    let mut rest = text;
    loop {
        let trimmed = rest.trim_start();
        let end = trimmed.find(char::is_whitespace).unwrap_or(trimmed.len());
        let (word, after) = trimmed.split_at(end);
        if word.is_empty() || !(word.starts_with("<@") && word.ends_with('>')) {
            return after;
        }
        rest = after;
    }
}

/// Reads what followed `/flamethread`.
pub fn parse_flamethread(text: &str) -> Result<FlamethreadArgs, Mistake> {
    let text = text.trim();
    let (verb, rest) = text
        .split_once(char::is_whitespace)
        .map_or((text, ""), |(verb, rest)| (verb, rest.trim()));
    match verb.to_ascii_lowercase().as_str() {
        "" | "help" => Ok(FlamethreadArgs::Help),
        "sql" => {
            if rest.is_empty() {
                return Err(Mistake::NoQuery);
            }
            if rest.chars().count() > crate::span::MAX_QUERY_CHARS {
                return Err(Mistake::QueryTooLong);
            }
            // Slack turns a typed backtick block into the text itself; people paste queries
            // in code formatting, so it is taken off.
            Ok(FlamethreadArgs::Sql(
                rest.trim_matches('`').trim().to_owned(),
            ))
        }
        "trace" => {
            let words: Vec<&str> = rest.split_whitespace().collect();
            let [service, length] = words.as_slice() else {
                return Err(Mistake::TraceWords);
            };
            if service.len() > 128
                || !service
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:/".contains(c))
            {
                return Err(Mistake::NotAService((*service).to_owned()));
            }
            let length = duration(length)
                .filter(|length| !length.is_zero() && *length <= crate::span::MAX_TRACE_ALL)
                .ok_or_else(|| Mistake::TraceLength((*length).to_owned()))?;
            Ok(FlamethreadArgs::TraceAll {
                service: (*service).to_owned(),
                length,
            })
        }
        _ => Err(Mistake::UnknownVerb(verb.to_owned())),
    }
}

/// The text that [`parse_profile`] reads back as this request (for picker options).
pub fn to_text(args: &ProfileArgs) -> String {
    let mut words = Vec::new();
    if let Some(app) = &args.app {
        words.push(app.clone());
    }
    match args.window {
        WindowSpec::Since(since) => words.push(humantime::format_duration(since).to_string()),
        WindowSpec::Range { from, to } => {
            words.push(format!("{}..{}", from.timestamp(), to.timestamp()))
        }
        WindowSpec::Now(None) => words.push("now".to_owned()),
        WindowSpec::Now(Some(seconds)) => words.push(format!("now {seconds}s")),
    }
    if let Some(profile_type) = &args.profile_type {
        words.push(profile_type.clone());
    }
    words.join(" ")
}

#[cfg(test)]
mod tests;
