//! The consumer of `post.home`: a person opened App Home, and profile-fetcher said which apps it
//! can profile. The rest comes from the reply records in this service's KV bucket: the newest
//! [`READ_PER_KIND`] of each kind, so one Home costs a bounded number of reads however long the
//! bucket's retention. [`render::home`] draws it (pure), and `views.publish` shows it.

use async_nats::jetstream::kv;
use bus::HandlerError;
use chrono::Utc;
use futures::{StreamExt as _, TryStreamExt as _};
use proto::{HomeRequest, keys::reply};
use serde_json::json;

use crate::{poster::Poster, record::ReplyRecord, render};

/// How many reply records of each kind one Home reads (the newest written: the KV lists keys in
/// the order they were last written).
pub(crate) const READ_PER_KIND: usize = 200;

/// Reply records read at once.
const CONCURRENT_READS: usize = 16;

/// How long a channel's visibility is trusted before Slack is asked again.
const VISIBILITY_TTL: std::time::Duration = std::time::Duration::from_secs(600);

/// The kinds of reply a Home shows something of.
const KINDS: [reply::Kind; 3] = [
    reply::Kind::Incident,
    reply::Kind::ProfileRequest,
    reply::Kind::Sandbox,
];

impl Poster {
    pub(crate) async fn on_home(&self, request: HomeRequest) -> Result<(), HandlerError> {
        let records = self.recent_records().await?;
        let mut public = std::collections::BTreeSet::new();
        for channel in render::home::channels(&records) {
            if self.is_public(channel).await {
                public.insert(channel.to_owned());
            }
        }
        let mut home =
            render::home::collect(&request.user, records, &|channel| public.contains(channel));
        home.apps = request.apps;
        home.apps_note = request.apps_note;
        let view = render::home::view(&home, Utc::now(), &|thread| {
            self.identity.permalink(&thread.channel, &thread.ts)
        });
        self.call_with_retry(
            "views.publish",
            &json!({"user_id": request.user, "view": view}),
        )
        .await?;
        metrics::counter!("ft_poster_homes_published_total").increment(1);
        Ok(())
    }

    /// Whether everyone in the workspace may read `channel` (`conversations.info`: a channel, not
    /// private, not a DM), remembered for [`VISIBILITY_TTL`]. When Slack does not say, it is not.
    async fn is_public(&self, channel: &str) -> bool {
        let now = std::time::Instant::now();
        if let Some((public, at)) = self
            .public_channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(channel)
            && now.duration_since(*at) < VISIBILITY_TTL
        {
            return *public;
        }
        let public = match self
            .api
            .get("conversations.info", &[("channel", channel)])
            .await
        {
            Ok(answer) => {
                let flag = |key: &str| answer["channel"][key].as_bool().unwrap_or(false);
                flag("is_channel") && !flag("is_private") && !flag("is_im") && !flag("is_mpim")
            }
            Err(err) => {
                tracing::info!(%channel, error = %err, "channel visibility unknown; left out of App Home");
                return false;
            }
        };
        let mut known = self
            .public_channels
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // What is out of date goes, so the cache holds at most the channels of the last TTL.
        known.retain(|_, (_, at)| now.duration_since(*at) < VISIBILITY_TTL);
        known.insert(channel.to_owned(), (public, now));
        public
    }

    /// The newest [`READ_PER_KIND`] records of each kind a Home shows; an unreadable one is
    /// skipped (and logged), never the Home.
    async fn recent_records(&self) -> Result<Vec<ReplyRecord>, HandlerError> {
        let keys: Vec<String> = self
            .store
            .keys()
            .await
            .map_err(|err| HandlerError::retry(format!("listing the replies: {err}")))?
            .try_collect()
            .await
            .map_err(|err| HandlerError::retry(format!("listing the replies: {err}")))?;
        let wanted: Vec<String> = KINDS
            .iter()
            .flat_map(|kind| {
                let of_kind: Vec<&String> = keys
                    .iter()
                    .filter(|key| key.starts_with(kind.prefix()))
                    .collect();
                let newest = of_kind.len().saturating_sub(READ_PER_KIND);
                of_kind.into_iter().skip(newest).cloned()
            })
            .collect();
        let entries: Vec<_> = futures::stream::iter(wanted)
            .map(|key| {
                let store = self.store.clone();
                async move {
                    let entry = store.entry(key.as_str()).await;
                    (key, entry)
                }
            })
            .buffer_unordered(CONCURRENT_READS)
            .collect()
            .await;
        let mut records = Vec::with_capacity(entries.len());
        for (key, entry) in entries {
            match entry {
                Ok(Some(entry)) if entry.operation == kv::Operation::Put => {
                    match serde_json::from_slice::<ReplyRecord>(&entry.value) {
                        Ok(record) => records.push(record),
                        Err(err) => {
                            tracing::warn!(%key, error = %err, "an unreadable reply record left out of App Home")
                        }
                    }
                }
                Ok(_) => {}
                Err(err) => return Err(HandlerError::retry(format!("reading {key}: {err}"))),
            }
        }
        Ok(records)
    }
}
