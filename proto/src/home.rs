//! App Home: what a person sees on flamethread's Home tab, assembled by the services that know
//! each part.
//!
//! slack-gateway publishes [`HomeOpened`] when a person opens the tab (on `profile.home_opened`,
//! a request for profile-fetcher, so that it reads nothing else of what Slack sends); profile-fetcher, which knows
//! the apps (Pyroscope's and the `[live]` pprof targets), answers with a [`HomeRequest`];
//! remediation-poster adds what its reply records hold (the open incidents with links to their
//! threads, recent profiles, the person's own sandbox runs) and publishes the view with
//! `views.publish`. Each hop is a JetStream message, so a Home opened while a service restarts is
//! still drawn when it is back.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Correlated, Message, SchemaVersion, Subject};

/// The most apps a Home lists (each is a block, and a view holds 100).
pub const MAX_APPS: usize = 20;

/// A person opened flamethread's Home tab (Slack's `app_home_opened` with `tab: home`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HomeOpened {
    pub schema_version: SchemaVersion,
    /// Slack's `event_id`.
    pub event_id: String,
    #[serde(default)]
    pub team_id: Option<String>,
    /// Whose Home: a view is published per person.
    pub user: String,
    pub received_at: DateTime<Utc>,
}

impl Message for HomeOpened {
    fn subject(&self) -> Subject {
        Subject::HomeOpened
    }

    fn idempotency_key(&self) -> String {
        format!("slack-home:{}", self.event_id)
    }
}

impl Correlated for HomeOpened {}

/// An app flamethread can profile.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub struct KnownApp {
    /// As `/profile` takes it.
    pub name: String,
    /// A `[live]` pprof target: "Profile now" takes a live profile. Otherwise the profile is
    /// read from Pyroscope.
    pub live: bool,
}

/// Draw `user`'s Home: profile-fetcher's part (the apps), for remediation-poster to complete
/// and publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HomeRequest {
    pub schema_version: SchemaVersion,
    /// The [`HomeOpened`] event it answers.
    pub home_id: String,
    pub user: String,
    /// At most [`MAX_APPS`], by name.
    #[serde(default)]
    pub apps: Vec<KnownApp>,
    /// Why the list may be incomplete (Pyroscope did not answer), for the person to read.
    #[serde(default)]
    pub apps_note: Option<String>,
    pub opened_at: DateTime<Utc>,
}

impl Message for HomeRequest {
    fn subject(&self) -> Subject {
        Subject::PostHome
    }

    fn idempotency_key(&self) -> String {
        format!("home:{}", self.home_id)
    }
}

impl Correlated for HomeRequest {}
