//! App Home as a person sees it (pure): what their Home shows, taken from the reply records
//! ([`collect`]), and the view drawn from it ([`view`]).
//!
//! It shows four things, newest first and each bounded, and only what anyone may read where it
//! came from:
//! - the open incidents of public channels, each linking to its alert's thread;
//! - the apps flamethread can profile, each with a button that asks `/profile` for it;
//! - the profiles asked for lately, in a public channel or by this person;
//! - the person's own sandbox runs.
//!
//! The buttons carry the `/profile` text they stand for, like a picker's options, so alert-watcher
//! reads a click exactly as if it had been typed. An app whose name the grammar would not read
//! back gets no button.

use chrono::{DateTime, Utc};
use proto::{
    Incident, KnownApp, Mrkdwn, ProfileEvidence, ReplyTarget, SandboxResult, SlackThread,
    evidence::EvidenceStatus,
    mrkdwn,
    mrkdwn::blocks::{self, Block, cut},
    sandbox::SandboxOutcome,
    slack::actions,
};
use serde_json::{Value, json};

use super::clock;
use crate::record::ReplyRecord;

/// How many of each a Home shows.
pub const OPEN_INCIDENTS: usize = 10;
pub const RECENT_PROFILES: usize = 5;
pub const OWN_RUNS: usize = 5;

/// What one person's Home shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Home {
    pub user: String,
    pub apps: Vec<KnownApp>,
    pub apps_note: Option<String>,
    pub incidents: Vec<Incident>,
    pub profiles: Vec<ProfileEvidence>,
    pub runs: Vec<SandboxResult>,
}

/// The channels whose visibility decides what of `records` a Home may show: the incidents'
/// and the profiles answered in a thread.
pub fn channels(records: &[ReplyRecord]) -> std::collections::BTreeSet<&str> {
    records
        .iter()
        .filter_map(
            |record| match (&record.content.incident, &record.content.profile) {
                (Some(incident), _) => Some(incident.thread.channel.as_str()),
                (None, Some(profile)) => match &profile.reply {
                    Some(ReplyTarget::Thread { channel, .. }) => Some(channel.as_str()),
                    _ => None,
                },
                (None, None) => None,
            },
        )
        .collect()
}

/// What `user` may see of `records`, newest first: the open incidents of public channels, the
/// profiles answered in a public channel or to `user`, and `user`'s own sandbox runs; at most
/// [`OPEN_INCIDENTS`], [`RECENT_PROFILES`] and [`OWN_RUNS`]. A Home is seen by one person, but
/// what it shows must be what anyone may read where it came from: `public` says which channels
/// everyone in the workspace may read.
pub fn collect(
    user: &str,
    records: impl IntoIterator<Item = ReplyRecord>,
    public: &dyn Fn(&str) -> bool,
) -> Home {
    let mut home = Home {
        user: user.to_owned(),
        ..Home::default()
    };
    for record in records {
        let content = record.content;
        if let Some(incident) = content.incident {
            if incident.resolved_at.is_none() && public(&incident.thread.channel) {
                home.incidents.push(incident);
            }
        } else if let Some(profile) = content.profile
            && profile.status == EvidenceStatus::Ok
        {
            let visible = match &profile.reply {
                Some(ReplyTarget::Thread { channel, .. }) => public(channel),
                _ => profile.requested_by.as_deref() == Some(user),
            };
            if visible {
                home.profiles.push(profile);
            }
        }
        if let Some(run) = content.sandbox
            && run.requested_by == user
        {
            home.runs.push(run);
        }
    }
    home.incidents
        .sort_by_key(|incident| std::cmp::Reverse(incident.last_seen_at));
    home.incidents.truncate(OPEN_INCIDENTS);
    home.profiles
        .sort_by_key(|profile| std::cmp::Reverse(profile.collected_at));
    home.profiles.truncate(RECENT_PROFILES);
    home.runs
        .sort_by_key(|run| std::cmp::Reverse(run.finished_at));
    home.runs.truncate(OWN_RUNS);
    home
}

/// The `home` view of `home`, as `views.publish` takes it. `permalink` links a thread.
pub fn view(home: &Home, now: DateTime<Utc>, permalink: &dyn Fn(&SlackThread) -> String) -> Value {
    let mut shown: Vec<Block> = vec![
        blocks::header("flamethread"),
        blocks::context(mrkdwn!(
            "What flamethread sees for {}, as of {}. Ask me anywhere: `@flamethread profile checkout 30m`, or \"Diagnose this message\" on any message.",
            Mrkdwn::mention(&home.user),
            clock(now)
        )),
        blocks::section(mrkdwn!("*Open incidents* ({})", home.incidents.len())),
    ];
    if home.incidents.is_empty() {
        shown.push(blocks::context(mrkdwn!("No open incidents.")));
    }
    for incident in &home.incidents {
        shown.push(blocks::section(incident_line(incident, permalink)));
    }

    shown.push(blocks::divider());
    shown.push(blocks::section(mrkdwn!("*Profile an app*")));
    let buttons: Vec<(&KnownApp, String)> = home
        .apps
        .iter()
        .filter_map(|app| {
            let asks = if app.live {
                format!("{} now", app.name)
            } else {
                format!("{} 15m", app.name)
            };
            // Offered only when it reads back as this app.
            proto::command::parse_profile(&asks, now)
                .ok()
                .filter(|args| args.app.as_deref() == Some(app.name.as_str()))
                .map(|_| (app, asks))
        })
        .collect();
    if buttons.is_empty() {
        shown.push(blocks::context(mrkdwn!(
            "No apps to offer: profile-fetcher knows an app from Pyroscope (`pyroscope.url`) or a `[live]` pprof target."
        )));
    }
    for (app, asks) in buttons {
        let (how, label) = if app.live {
            ("a live CPU profile from its pprof endpoint", "Profile now")
        } else {
            ("its last 15 minutes in Pyroscope", "Last 15 minutes")
        };
        shown.push(blocks::section_with(
            mrkdwn!("{} · {}", Mrkdwn::code(&app.name), how),
            blocks::button(label, actions::PROFILE_PICK, &asks),
        ));
    }
    if let Some(note) = &home.apps_note {
        shown.push(blocks::context(Mrkdwn::plain(&cut(note, 300))));
    }

    shown.push(blocks::divider());
    shown.push(blocks::section(mrkdwn!("*Recent profiles*")));
    if home.profiles.is_empty() {
        shown.push(blocks::context(mrkdwn!(
            "None asked for lately: `/profile checkout 30m`, or a button above."
        )));
    }
    for profile in &home.profiles {
        shown.push(blocks::section(profile_line(profile)));
    }

    shown.push(blocks::divider());
    shown.push(blocks::section(mrkdwn!("*Your sandbox runs*")));
    if home.runs.is_empty() {
        shown.push(blocks::context(mrkdwn!(
            "None yet: share a `.py` in a channel with flamethread, and it offers to run and profile it."
        )));
    }
    for run in &home.runs {
        shown.push(blocks::section(run_line(run)));
    }
    json!({"type": "home", "blocks": shown})
}

fn incident_line(incident: &Incident, permalink: &dyn Fn(&SlackThread) -> String) -> Mrkdwn {
    let alert = &incident.alert;
    let mut line = mrkdwn!(
        "🔥 {}",
        Mrkdwn::link(&permalink(&incident.thread), &cut(&alert.name, 120))
    );
    if let Some(service) = &alert.service {
        line.push(&mrkdwn!(" · {}", Mrkdwn::code(&cut(service, 60))));
    }
    line.push(&mrkdwn!(" · firing since {}", clock(incident.opened_at)));
    if incident.notification_count > 1 {
        line.push(&mrkdwn!(" · {} notifications", incident.notification_count));
    }
    if incident.stale_since.is_some() {
        line.push(&mrkdwn!(" · _not heard from lately_"));
    }
    line
}

fn profile_line(profile: &ProfileEvidence) -> Mrkdwn {
    let kind = profile.profile_type.split(':').next().unwrap_or_default();
    let mut line = mrkdwn!(
        "{} · {} · {}",
        Mrkdwn::code(&cut(&profile.app, 60)),
        Mrkdwn::plain(&cut(kind, 40)),
        clock(profile.window.to)
    );
    if let Some(top) = profile.top_functions.first() {
        line.push(&mrkdwn!(
            " · top {} {:.0}%",
            Mrkdwn::code(&cut(&top.name, 80)),
            top.self_share * 100.0
        ));
    }
    if let Some(url) = &profile.flamegraph_url {
        line.push(&flamegraph(url));
    }
    line
}

fn run_line(run: &SandboxResult) -> Mrkdwn {
    let outcome = match &run.outcome {
        SandboxOutcome::Exited { code: 0 } => mrkdwn!("finished"),
        SandboxOutcome::Exited { code } => mrkdwn!("exited with code {}", code),
        SandboxOutcome::TimedOut => mrkdwn!("stopped at its time limit"),
        SandboxOutcome::OutOfMemory => mrkdwn!("ran out of memory"),
        SandboxOutcome::Rejected { .. } => mrkdwn!("was not run"),
        SandboxOutcome::Failed { .. } => mrkdwn!("could not be run"),
    };
    let name = if run.file_name.is_empty() {
        "a script".to_owned()
    } else {
        cut(&run.file_name, 80)
    };
    let mut line = mrkdwn!(
        "{} {} in {:.1} s",
        Mrkdwn::code(&name),
        outcome,
        run.wall_ms as f64 / 1000.0
    );
    if let Some(at) = run.finished_at {
        line.push(&mrkdwn!(" · {}", clock(at)));
    }
    if let Some(url) = run
        .profile
        .as_ref()
        .and_then(|profile| profile.flamegraph_url.as_deref())
    {
        line.push(&flamegraph(url));
    }
    line
}

/// ` · Flamegraph` linked, or nothing when the URL is not one to link.
fn flamegraph(url: &str) -> Mrkdwn {
    if proto::mrkdwn::is_safe_url(url) {
        mrkdwn!(" · {}", Mrkdwn::link(url, "Flamegraph"))
    } else {
        Mrkdwn::new()
    }
}

#[cfg(test)]
mod tests;
