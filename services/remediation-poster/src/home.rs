//! The consumer of `post.home`: a person opened App Home, and profile-fetcher said which apps it
//! can profile. The rest comes from the reply records in this service's KV bucket: the newest
//! [`READ_PER_KIND`] of each kind, so one Home costs a bounded number of reads however long the
//! bucket's retention. [`render::home`] draws it (pure), and `views.publish` shows it.

use async_nats::jetstream::kv;
use bus::HandlerError;
use chrono::Utc;
use futures::TryStreamExt as _;
use proto::HomeRequest;
use serde_json::json;

use crate::{poster::Poster, record::ReplyRecord, render};

/// How many reply records of each kind one Home reads (the newest written: the KV lists keys in
/// the order they were last written).
pub(crate) const READ_PER_KIND: usize = 200;

/// The kinds of reply a Home shows something of (see [`crate::record::reply_key`]).
const KINDS: [&str; 3] = ["incident.", "profile-request.", "sandbox."];

impl Poster {
    pub(crate) async fn on_home(&self, request: HomeRequest) -> Result<(), HandlerError> {
        let records = self.recent_records().await?;
        let mut home = render::home::collect(&request.user, records);
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
        let mut records = Vec::new();
        for kind in KINDS {
            let of_kind: Vec<&String> = keys.iter().filter(|key| key.starts_with(kind)).collect();
            let newest = &of_kind[of_kind.len().saturating_sub(READ_PER_KIND)..];
            for key in newest {
                match self.store.entry(key.as_str()).await {
                    Ok(Some(entry)) if entry.operation == kv::Operation::Put => {
                        match serde_json::from_slice::<ReplyRecord>(&entry.value) {
                            Ok(record) => records.push(record),
                            Err(err) => {
                                tracing::warn!(%key, error = %err, "an unreadable reply record left out of App Home")
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(err) => {
                        return Err(HandlerError::retry(format!("reading {key}: {err}")));
                    }
                }
            }
        }
        Ok(records)
    }
}
