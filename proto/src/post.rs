//! What remediation-poster is asked to say, by services that do not hold the bot token.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    Block, Correlated, Correlation, IncidentId, Message, Mrkdwn, ReplyTarget, SchemaVersion,
    Subject,
};

/// Say something in Slack. Posts with the same `reply_key` update one message in place instead of
/// adding another, so a repeated or re-run answer never adds thread noise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PostRequest {
    pub schema_version: SchemaVersion,
    /// Unique per request.
    pub post_id: String,
    /// Requests with the same key edit the same message.
    #[serde(default)]
    pub reply_key: Option<String>,
    pub target: ReplyTarget,
    /// The notification text, and the fallback where blocks cannot be shown (mrkdwn).
    pub text: Mrkdwn,
    /// Block Kit blocks, built by [`crate::mrkdwn::blocks`].
    #[serde(default)]
    pub blocks: Option<Vec<Block>>,
    #[serde(default)]
    pub incident_id: Option<IncidentId>,
    /// The request (a [`crate::ProfileRequest`]'s id) whose answer this post stands in for
    /// until it lands: "Profiling checkout now…" shown in the message the profile then replaces
    /// in place (or, with `incident_id`, in the incident's reply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stands_for: Option<String>,
}

impl Message for PostRequest {
    fn subject(&self) -> Subject {
        Subject::PostRequest
    }

    fn idempotency_key(&self) -> String {
        format!("post:{}", self.post_id)
    }
}

impl Correlated for PostRequest {
    fn correlation(&self) -> Correlation<'_> {
        Correlation::incident(self.incident_id.as_ref())
    }
}
