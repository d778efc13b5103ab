//! The buttons under an incident's reply, decided (pure): who may press which, the silence a
//! "Silence 1h" creates (equality matchers on the alert's labels), the messages that say who did
//! what in the thread (with a button to expire the silence), and the profile requests of
//! "Profile now" (live, from the service's pprof endpoint, as its own reply in the thread) and
//! "Re-run diagnosis" (the continuous profile again, into the incident's reply).

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, Utc};
use proto::{
    BlockAction, Incident, PostRequest, ProfileRequest, ReplyTarget, SchemaVersion,
    evidence::ProfileMode, slack::actions,
};
use serde::Deserialize;
use serde_json::json;

use crate::alertmanager_api::NewSilence;

/// What the reply's buttons carry: the incident and where its state is kept.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IncidentRef {
    #[serde(rename = "i")]
    pub id: String,
    #[serde(rename = "f")]
    pub fingerprint: String,
}

impl IncidentRef {
    pub fn parse(value: Option<&str>) -> Option<IncidentRef> {
        serde_json::from_str(value?).ok()
    }
}

/// Whether `user` may press a button whose allow-list is `allowed` (empty: anyone).
pub fn allowed(user: &str, allowed: &[String]) -> bool {
    allowed.is_empty() || allowed.iter().any(|id| id == user)
}

/// The silence for `incident`: its alert name and labels, for `duration` from `now`.
pub fn silence_for(
    incident: &Incident,
    user: &str,
    now: DateTime<Utc>,
    duration: Duration,
) -> NewSilence {
    let mut matchers: BTreeMap<String, String> = incident.alert.labels.clone();
    matchers
        .entry("alertname".to_owned())
        .or_insert_with(|| incident.alert.name.clone());
    NewSilence {
        matchers,
        starts_at: now,
        ends_at: now + chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::hours(1)),
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
    }
}

/// "Silenced for 1h by @user", in the thread, with a button to expire it.
pub fn silenced(
    incident: &Incident,
    user: &str,
    silence_id: &str,
    silence: &NewSilence,
) -> PostRequest {
    let matchers: Vec<String> = silence
        .matchers
        .iter()
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect();
    let text = format!(
        "🔕 <@{user}> silenced `{}` until {} UTC (silence `{silence_id}`, matchers {}).",
        incident.alert.name,
        silence.ends_at.format("%H:%M"),
        matchers.join(", ")
    );
    let blocks = json!([
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {"type": "actions", "elements": [
            {"type": "button", "action_id": actions::SILENCE_EXPIRE, "style": "danger",
             "text": {"type": "plain_text", "text": "Expire silence"},
             "value": json!({"s": silence_id, "i": incident.id.0}).to_string()},
        ]},
    ]);
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
        reply_key: Some(format!("silence:{incident_id}")),
        target: thread,
        text: format!("🔔 <@{user}> expired silence `{silence_id}`: alerts notify again."),
        blocks: None,
        incident_id: Some(proto::IncidentId(incident_id.to_owned())),
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

/// An answer only the clicker sees.
pub fn only_you(action: &BlockAction, text: String) -> PostRequest {
    PostRequest {
        schema_version: SchemaVersion::CURRENT,
        post_id: format!("action-answer-{}", action.trigger_id),
        reply_key: None,
        target: ReplyTarget::Ephemeral {
            channel: action.channel.clone(),
            user: action.user.clone(),
            thread_ts: action.thread_ts.clone(),
        },
        text,
        blocks: None,
        incident_id: None,
    }
}

/// What to say in the thread that a button did (e.g. "Re-running…").
pub fn note(incident: &Incident, key: String, text: String) -> PostRequest {
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
    text: String,
    blocks: Option<serde_json::Value>,
) -> PostRequest {
    PostRequest {
        schema_version: SchemaVersion::CURRENT,
        post_id,
        reply_key: Some(format!("silence:{}", incident.id.0)),
        target: thread(incident),
        text,
        blocks,
        incident_id: Some(incident.id.clone()),
    }
}

#[cfg(test)]
mod tests {
    use proto::IncidentChange;
    use test_support::fixtures;

    use super::*;

    #[test]
    fn a_silence_matches_the_alert_exactly_and_says_who_and_until_when() {
        let mut incident =
            fixtures::incident_event("inc-1", "1.1", IncidentChange::Opened, 1).incident;
        incident.alert.labels = BTreeMap::from([
            ("service".to_owned(), "checkout".to_owned()),
            ("severity".to_owned(), "page".to_owned()),
        ]);
        let now = fixtures::at(0);
        let silence = silence_for(&incident, "U0ONCALL", now, Duration::from_secs(3600));
        assert_eq!(silence.matchers["alertname"], "HighCPU");
        assert_eq!(silence.matchers["service"], "checkout");
        assert_eq!(
            silence.ends_at - silence.starts_at,
            chrono::Duration::hours(1)
        );
        assert!(silence.created_by.starts_with("U0ONCALL"));
        let post = silenced(&incident, "U0ONCALL", "abc-123", &silence);
        assert!(
            post.text.contains("<@U0ONCALL> silenced `HighCPU` until"),
            "{}",
            post.text
        );
        assert_eq!(post.reply_key.as_deref(), Some("silence:inc-1"));
        let expire = &post.blocks.unwrap()[1]["elements"][0];
        assert_eq!(expire["action_id"], actions::SILENCE_EXPIRE);
        assert!(expire["value"].as_str().unwrap().contains("abc-123"));
    }

    #[test]
    fn allow_lists_and_button_values() {
        assert!(allowed("U1", &[]));
        assert!(allowed("U1", &["U1".to_owned()]));
        assert!(!allowed("U2", &["U1".to_owned()]));
        assert_eq!(
            IncidentRef::parse(Some(r#"{"i":"inc-1","f":"fp"}"#)),
            Some(IncidentRef {
                id: "inc-1".into(),
                fingerprint: "fp".into()
            })
        );
        assert_eq!(IncidentRef::parse(Some("inc-1")), None);
        assert_eq!(IncidentRef::parse(None), None);
    }
}
