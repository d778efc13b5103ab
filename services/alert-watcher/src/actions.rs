//! The buttons under an incident's reply, decided (pure): who may press which (an empty
//! allow-list is nobody unless the operator wrote `allow_anyone`), the silence a "Silence"
//! creates (equality matchers on every label Alertmanager confirmed, never fewer, for the duration
//! its confirm dialog showed), whether Alertmanager's alerts matching it are this incident's only,
//! the messages that say who did what in the thread (with a button to expire the silence), and the
//! profile requests of "Profile now" (live, from the service's pprof endpoint, as its own reply in
//! the thread) and "Re-run diagnosis" (the continuous profile again, into the incident's reply).

use std::time::Duration;

use chrono::{DateTime, Utc};
use proto::{
    BlockAction, Incident, PostRequest, ProfileRequest, ReplyTarget, SchemaVersion,
    evidence::ProfileMode,
    slack::{ButtonValue as _, ExpireButton, actions},
};
use proto::{Mrkdwn, mrkdwn, mrkdwn::blocks};

use crate::alertmanager_api::{ExistingSilence, MatchedAlert, NewSilence};

/// What the reply's buttons carry: the incident and where its state is kept.
pub type IncidentRef = proto::slack::IncidentButton;

/// Whether `user` may press a button whose allow-list is `allowed`: listed, or anyone when the
/// operator wrote `allow_anyone`. An empty list is nobody: the buttons act on the world.
pub fn allowed(user: &str, allowed: &[String], allow_anyone: bool) -> bool {
    allow_anyone || allowed.iter().any(|id| id == user)
}

/// Why a silence is not created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SilenceRefusal {
    #[error(
        "Alertmanager has not confirmed this alert's labels (it was read from a message's text), so I will not silence it; silence it in Alertmanager."
    )]
    Unconfirmed,
    #[error(
        "The button asks for {asked}, longer than alert-watcher allows ({allowed}, actions.silence_for)."
    )]
    TooLong { asked: String, allowed: String },
    #[error(
        "A silence with these matchers would also silence {count} other alert(s) in Alertmanager ({example}); silence it in Alertmanager with narrower matchers."
    )]
    TooBroad { count: usize, example: String },
}

/// The silence for `incident`: every label Alertmanager confirmed and its name, for `asked`
/// (what the confirm dialog showed, at most `longest`) from `now`.
pub fn silence_for(
    incident: &Incident,
    user: &str,
    now: DateTime<Utc>,
    asked: Duration,
    longest: Duration,
) -> Result<NewSilence, SilenceRefusal> {
    let matchers = incident
        .alert
        .silence_matchers()
        .ok_or(SilenceRefusal::Unconfirmed)?;
    if asked > longest {
        return Err(SilenceRefusal::TooLong {
            asked: proto::slack::duration_text(asked),
            allowed: proto::slack::duration_text(longest),
        });
    }
    Ok(NewSilence {
        matchers,
        starts_at: now,
        ends_at: now + chrono::Duration::from_std(asked).unwrap_or(chrono::Duration::hours(1)),
        created_by: format!("{user} (Slack, via flamethread)"),
        comment: format!(
            "Silenced from Slack for incident {} ({} on {})",
            incident.id.0,
            incident.alert.name,
            incident
                .alert
                .service
                .as_deref()
                .unwrap_or("unknown service")
        ),
    })
}

/// Whether the alerts Alertmanager matches with `silence`'s matchers are this incident's only
/// (those it confirmed); any other is refused, named.
pub fn check_scope(incident: &Incident, matched: &[MatchedAlert]) -> Result<(), SilenceRefusal> {
    let ours = &incident.alert.alertmanager_fingerprints;
    let others: Vec<&MatchedAlert> = matched
        .iter()
        .filter(|alert| !ours.contains(&alert.fingerprint))
        .collect();
    match others.first() {
        None => Ok(()),
        Some(first) => Err(SilenceRefusal::TooBroad {
            count: others.len(),
            example: first
                .labels
                .iter()
                .map(|(key, value)| format!("{key}={value:?}"))
                .collect::<Vec<_>>()
                .join(" "),
        }),
    }
}

/// A silence already made for this incident with the same matchers and still in force: a retried
/// click, a redelivered one, or a second person's, finds it instead of making another.
pub fn already_silenced<'a>(
    incident: &Incident,
    silence: &NewSilence,
    existing: &'a [ExistingSilence],
) -> Option<&'a ExistingSilence> {
    let mark = format!("for incident {} (", incident.id.0);
    existing.iter().find(|found| {
        matches!(found.state.as_str(), "active" | "pending")
            && found.comment.contains(&mark)
            && found.matchers == silence.matchers
    })
}

/// "Silenced for 1h by @user", in the thread, with a button to expire it.
pub fn silenced(
    incident: &Incident,
    user: &str,
    silence_id: &str,
    silence: &NewSilence,
) -> PostRequest {
    let matchers = Mrkdwn::join(
        silence
            .matchers
            .iter()
            .map(|(name, value)| mrkdwn!("{}=\"{}\"", name, value)),
        ", ",
    );
    let text = mrkdwn!(
        "🔕 {} silenced `{}` until {} UTC (silence `{}`, matchers {}).",
        Mrkdwn::mention(user),
        incident.alert.name,
        silence.ends_at.format("%H:%M").to_string(),
        silence_id,
        matchers
    );
    let expire = ExpireButton {
        silence_id: silence_id.to_owned(),
        incident_id: incident.id.0.clone(),
    }
    .value();
    let blocks = vec![
        blocks::section(text.clone()),
        blocks::actions(vec![
            blocks::button("Expire silence", actions::SILENCE_EXPIRE, &expire).style("danger"),
        ]),
    ];
    thread_post(
        incident,
        format!("silence-{silence_id}"),
        text,
        Some(blocks),
    )
}

/// "Silence expired by @user", in place of the message that offered it.
pub fn expired(
    incident_id: &str,
    thread: ReplyTarget,
    user: &str,
    silence_id: &str,
) -> PostRequest {
    PostRequest {
        schema_version: SchemaVersion::CURRENT,
        post_id: format!("silence-expired-{silence_id}"),
        reply_key: Some(proto::keys::reply::silence(incident_id)),
        target: thread,
        text: mrkdwn!(
            "🔔 {} expired silence `{}`: alerts notify again.",
            Mrkdwn::mention(user),
            silence_id
        ),
        blocks: None,
        incident_id: Some(proto::IncidentId(incident_id.to_owned())),
        stands_for: None,
    }
}

/// A live profile of the incident's service, as its own reply in the thread.
pub fn profile_now(incident: &Incident, action: &BlockAction) -> Option<ProfileRequest> {
    let app = incident.alert.service.clone()?;
    let now = action.received_at;
    Some(ProfileRequest {
        schema_version: SchemaVersion::CURRENT,
        request_id: format!("now-{}", action.trigger_id),
        app: Some(app),
        window: proto::TimeWindow { from: now, to: now },
        profile_type: None,
        mode: ProfileMode::Live { seconds: 0 },
        // Its own reply: the incident's reply keeps the continuous profile.
        incident_id: None,
        requested_by: Some(action.user.clone()),
        reply: thread(incident),
    })
}

/// The incident's continuous profile gathered again, into the incident's reply.
pub fn rerun(incident: &Incident, action: &BlockAction) -> Option<ProfileRequest> {
    let app = incident.alert.service.clone()?;
    Some(ProfileRequest {
        schema_version: SchemaVersion::CURRENT,
        request_id: format!("rerun-{}", action.trigger_id),
        app: Some(app),
        window: incident.window,
        profile_type: None,
        mode: ProfileMode::Continuous,
        incident_id: Some(incident.id.clone()),
        requested_by: Some(action.user.clone()),
        reply: thread(incident),
    })
}

/// What a "Profile now" or "Re-run" click shows at once, where its answer will land (the
/// profile's own reply, or the incident's), until that answer replaces it.
pub fn progress(incident: &Incident, request: &ProfileRequest) -> PostRequest {
    let app = request.app.as_deref().unwrap_or("the service");
    let by = request
        .requested_by
        .as_deref()
        .map(|user| mrkdwn!(", asked by {}", Mrkdwn::mention(user)))
        .unwrap_or_default();
    let text = match request.mode {
        ProfileMode::Live { .. } => mrkdwn!(
            "⏳ Taking a live CPU profile of `{}` now{}… the flamegraph replaces this message.",
            app,
            by
        ),
        _ => mrkdwn!(
            "⏳ Re-running the diagnosis{}: gathering `{}`'s profile again…",
            by,
            app
        ),
    };
    PostRequest {
        schema_version: SchemaVersion::CURRENT,
        post_id: format!("progress-{}", request.request_id),
        reply_key: None,
        target: thread(incident),
        text,
        blocks: None,
        incident_id: request.incident_id.clone(),
        stands_for: Some(request.request_id.clone()),
    }
}

/// An answer only the clicker sees.
pub fn only_you(action: &BlockAction, text: Mrkdwn) -> PostRequest {
    PostRequest {
        schema_version: SchemaVersion::CURRENT,
        post_id: format!("action-answer-{}", action.trigger_id),
        reply_key: None,
        target: action.only_them(),
        text,
        blocks: None,
        incident_id: None,
        stands_for: None,
    }
}

/// What to say in the thread that a button did (e.g. "Re-running…").
pub fn note(incident: &Incident, key: String, text: Mrkdwn) -> PostRequest {
    thread_post(incident, key, text, None)
}

pub fn thread(incident: &Incident) -> ReplyTarget {
    ReplyTarget::Thread {
        channel: incident.thread.channel.clone(),
        thread_ts: incident.thread.ts.clone(),
    }
}

fn thread_post(
    incident: &Incident,
    post_id: String,
    text: Mrkdwn,
    blocks: Option<Vec<proto::Block>>,
) -> PostRequest {
    PostRequest {
        schema_version: SchemaVersion::CURRENT,
        post_id,
        reply_key: Some(proto::keys::reply::silence(&incident.id.0)),
        target: thread(incident),
        text,
        blocks,
        incident_id: Some(incident.id.clone()),
        stands_for: None,
    }
}

#[cfg(test)]
mod tests;
