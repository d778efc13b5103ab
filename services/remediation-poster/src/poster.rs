//! The poster's core: merge what arrived into the reply's record (KV, compare-and-set), then bring
//! Slack up to date with the record, until Slack shows its latest content.
//!
//! One reply per key, whatever happens:
//! - **Two replicas**: posting starts with a *claim* written by compare-and-set; whoever loses
//!   waits (its message is redelivered later) and then only updates the reply the winner posted.
//! - **A crash between posting and recording the `ts`**: the claim stays behind. After
//!   `claim_timeout` another delivery takes it over, looks for the reply in the thread (its first
//!   block's `block_id` is the record's marker) and adopts it instead of posting again.
//! - **Redelivery and concurrent updates**: every writer re-reads the record after its Slack call
//!   and renders again if the content moved on, so the last content always reaches Slack; a
//!   delivery that finds Slack already caught up does nothing (an alert storm's updates coalesce).
//!
//! Merges happen outside the per-key lock, delivery inside it: while one delivery waits for its
//! turn at Slack, every change that arrives meanwhile lands in the record, and the next delivery
//! shows them all at once (a storm of repeats is a few edits, not one edit per repeat).
//!
//! Slack's rate limits: per-channel limiters keep posts under about one a second, and edits too;
//! new replies have a limiter of their own, so a storm's edits never hold up the first reply to a
//! new alert, which is what on-call people wait for. A 429 is
//! waited out (`Retry-After`) and the same call made again. Nothing is dropped.

use std::{
    collections::HashMap,
    num::NonZeroU32,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_nats::jetstream::kv;
use bus::HandlerError;
use chrono::Utc;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use proto::ReplyTarget;
use serde_json::{Value, json};
use slack::{ANY_WAIT, CallError, Identity, RawApi};

use crate::{
    record::{Claim, Picture, ReplyRecord},
    render::{self, Rendered},
};

/// How many compare-and-set rounds a merge may lose before it gives up (and is retried).
const MAX_CAS_ROUNDS: usize = 50;
/// At most one edit per this period and channel only brings repeat counts up to date.
const COSMETIC_EDIT_PERIOD: Duration = Duration::from_secs(10);

/// How often a reply another replica is posting is looked at again.
const CLAIM_POLL: Duration = Duration::from_millis(250);
#[derive(Debug)]
pub(crate) struct Poster {
    pub(crate) store: kv::Store,
    /// Where the pictures to share are (the object store), when sharing them is on.
    pictures: Option<PictureStore>,
    pub(crate) api: RawApi,
    pub(crate) identity: Identity,
    /// This replica, in claims.
    pub(crate) owner: String,
    /// New replies (`chat.postMessage`), per channel.
    pub(crate) post_limiter: DefaultKeyedRateLimiter<String>,
    /// Edits of replies (`chat.update`), per channel.
    pub(crate) update_limiter: DefaultKeyedRateLimiter<String>,
    /// Edits that only bring a repeat's counts up to date, per channel: a small share of the
    /// edits, so that they never crowd out the evidence and resolutions people wait for.
    pub(crate) cosmetic_limiter: DefaultKeyedRateLimiter<String>,
    pub(crate) claim_timeout: Duration,
    pub(crate) view: render::View,
    locks: KeyedLocks,
    /// Whether a channel is public, as `conversations.info` said lately: App Home shows only
    /// what everyone may read.
    pub(crate) public_channels: Mutex<HashMap<String, (bool, std::time::Instant)>>,
}

/// Serializes work on one key inside this process (replicas coordinate through the KV).
#[derive(Debug, Default)]
struct KeyedLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl KeyedLocks {
    /// The key's lock, unless another task of this process holds it.
    fn try_lock(&self, key: &str) -> Option<KeyGuard<'_>> {
        let lock = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.to_owned())
            .or_default()
            .clone();
        let guard = lock.try_lock_owned().ok()?;
        Some(KeyGuard {
            locks: self,
            key: key.to_owned(),
            _guard: guard,
        })
    }
}

struct KeyGuard<'a> {
    locks: &'a KeyedLocks,
    key: String,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        let mut locks = self.locks.0.lock().unwrap_or_else(|e| e.into_inner());
        // Two references left: the map's and this guard's lock; nobody else holds it.
        if locks
            .get(&self.key)
            .is_some_and(|lock| Arc::strong_count(lock) <= 2)
        {
            locks.remove(&self.key);
        }
    }
}

fn retry(what: &str, err: impl std::fmt::Display) -> HandlerError {
    HandlerError::retry(format!("{what}: {err}"))
}

/// A Web API call that did not succeed, kept typed so that callers decide by Slack's code.
#[derive(Debug, thiserror::Error)]
#[error("{method}: {error}")]
pub(crate) struct SlackFailed {
    pub(crate) method: String,
    pub(crate) error: CallError,
}

/// A failed Slack call as a handler's failure: retried when it may pass, dead-lettered with
/// Slack's reason when it will not.
pub(crate) fn slack_failed(method: &str, error: CallError) -> HandlerError {
    let transient = error.is_transient();
    let failed = SlackFailed {
        method: method.to_owned(),
        error,
    };
    if transient {
        HandlerError::retry(failed)
    } else {
        HandlerError::reject(failed)
    }
}

impl Poster {
    pub(crate) fn new(
        store: kv::Store,
        api: RawApi,
        identity: Identity,
        posts_per_second: NonZeroU32,
        burst: NonZeroU32,
        claim_timeout: Duration,
        view: render::View,
    ) -> Poster {
        Poster {
            store,
            pictures: None,
            api,
            identity,
            owner: format!("poster-{}", uuid::Uuid::new_v4()),
            post_limiter: RateLimiter::keyed(
                Quota::per_second(posts_per_second).allow_burst(burst),
            ),
            update_limiter: RateLimiter::keyed(
                Quota::per_second(posts_per_second).allow_burst(burst),
            ),
            cosmetic_limiter: RateLimiter::keyed(
                Quota::with_period(COSMETIC_EDIT_PERIOD).map_or_else(
                    || Quota::per_minute(NonZeroU32::MIN),
                    |quota| quota.allow_burst(NonZeroU32::MIN),
                ),
            ),
            claim_timeout,
            view,
            locks: KeyedLocks::default(),
            public_channels: Mutex::default(),
        }
    }

    /// Shares pictures (the chart PNG) into threads, read from `store`.
    pub(crate) fn with_pictures(mut self, store: Option<PictureStore>) -> Poster {
        self.pictures = store;
        self
    }

    /// Merges with `merge` and brings Slack up to date.
    pub(crate) async fn apply(
        &self,
        key: &str,
        merge: impl Fn(&mut ReplyRecord) -> bool,
    ) -> Result<(), HandlerError> {
        self.update(key, |record| merge(record)).await?;
        loop {
            let Some(guard) = self.locks.try_lock(key) else {
                // Another delivery of this reply is under way here. It re-reads the record after
                // each Slack call, so it shows this change too; waiting for it would hold one of
                // the consumer's slots, and a storm's repeats would hold them all.
                return Ok(());
            };
            self.deliver(key).await?;
            drop(guard);
            // A change merged while this delivery was finishing may have found the lock still
            // held and left itself to this delivery.
            let (record, _) = self.read(key).await?;
            if record.target.is_none() || record.caught_up() || record.only_cosmetic_pending() {
                return Ok(());
            }
        }
    }

    async fn read(&self, key: &str) -> Result<(ReplyRecord, u64), HandlerError> {
        let (record, revision) = bus::json_kv::read(&self.store, key).await?;
        Ok((record.unwrap_or_default(), revision))
    }

    /// Read, change, compare-and-set, until it lands. Returns the record as written, or as read
    /// when `change` said nothing changed.
    async fn update(
        &self,
        key: &str,
        change: impl Fn(&mut ReplyRecord) -> bool,
    ) -> Result<ReplyRecord, HandlerError> {
        Ok(bus::json_kv::update(&self.store, key, MAX_CAS_ROUNDS, change).await?)
    }

    /// Brings Slack up to date with the record, until a re-read finds nothing newer (or the
    /// reply is another replica's to post, which then shows what the record holds).
    async fn deliver(&self, key: &str) -> Result<(), HandlerError> {
        let marker = format!("ft-reply:{key}");
        loop {
            let (record, _) = self.read(key).await?;
            let record = match next_step(&record) {
                // Evidence before its incident: it waits in the record.
                Step::Wait => return Ok(()),
                Step::Finish => {
                    self.share_pictures(key, &record).await?;
                    return self.react(key, &record).await;
                }
                Step::Show => record,
                Step::Edit { channel } => {
                    if !self.paced(&channel, record.only_cosmetic_pending()).await {
                        return Ok(());
                    }
                    // The edit shows what the record holds after the wait, not before it.
                    self.read(key).await?.0
                }
            };
            self.show(key, &record, &marker).await?;
        }
    }

    /// Waits for `channel`'s edit budget; `false` when the edit is only cosmetic (counts
    /// changed) and the budget has none now: such an edit is never waited for (the next change,
    /// or the next repeat, shows it).
    async fn paced(&self, channel: &str, cosmetic: bool) -> bool {
        let channel = channel.to_owned();
        if cosmetic {
            self.cosmetic_limiter.check_key(&channel).is_ok()
                && self.update_limiter.check_key(&channel).is_ok()
        } else {
            self.update_limiter.until_key_ready(&channel).await;
            true
        }
    }

    /// Shows what `record` holds where its target says: a thread reply posted once and edited
    /// after, an ephemeral, a DM, or an answer through a `response_url`.
    async fn show(
        &self,
        key: &str,
        record: &ReplyRecord,
        marker: &str,
    ) -> Result<(), HandlerError> {
        let Some(target) = record.target.clone() else {
            return Ok(());
        };
        let showing = record.content_revision;
        let rendered = render::render_with(record, marker, &self.view);
        match target {
            ReplyTarget::Thread { channel, thread_ts } => match record.message_ts.clone() {
                Some(ts) => match self.call_update(&channel, &ts, &rendered, marker).await? {
                    Updated::Yes => {
                        metrics::counter!("ft_poster_updates_total").increment(1);
                        self.mark_rendered(key, showing).await?;
                    }
                    Updated::Gone => {
                        // Someone deleted the reply: post a new one.
                        self.update(key, |record| {
                            let gone = record.message_ts.as_deref() == Some(ts.as_str());
                            if gone {
                                record.message_ts = None;
                                record.rendered_revision = 0;
                                record.reposted = true;
                            }
                            gone
                        })
                        .await?;
                    }
                },
                None => {
                    self.post_once(key, record, &channel, &thread_ts, marker)
                        .await?
                }
            },
            ReplyTarget::Ephemeral {
                channel,
                user,
                thread_ts,
            } => {
                let mut body = json!({"channel": channel, "user": user, "text": rendered.text, "blocks": rendered.blocks});
                if let Some(thread_ts) = thread_ts {
                    body["thread_ts"] = json!(thread_ts);
                }
                self.call_with_retry("chat.postEphemeral", &body).await?;
                self.mark_rendered(key, showing).await?;
            }
            ReplyTarget::Direct { user } => {
                // Slack posts a message sent to a person's id into the app's DM with them.
                let body =
                    json!({"channel": user, "text": rendered.text, "blocks": rendered.blocks});
                self.call_with_retry("chat.postMessage", &body).await?;
                self.mark_rendered(key, showing).await?;
            }
            ReplyTarget::ResponseUrl { url } => {
                let body = json!({
                    "response_type": "ephemeral",
                    "replace_original": record.rendered_revision > 0,
                    "text": rendered.text,
                    "blocks": rendered.blocks,
                });
                self.respond(&url, &body).await?;
                self.mark_rendered(key, showing).await?;
            }
        }
        Ok(())
    }

    /// Answers through a `response_url`, waiting out rate limits. An expired one (30 minutes,
    /// five uses) cannot be answered any more: that is logged, not retried forever.
    async fn respond(&self, url: &str, body: &serde_json::Value) -> Result<(), HandlerError> {
        loop {
            match self.api.respond(url, body).await {
                Ok(()) => return Ok(()),
                Err(err) if slack::waited_out("response_url", &err, ANY_WAIT).await => {}
                Err(CallError::Slack { code, detail }) => {
                    tracing::warn!(%code, %detail, "response_url refused the answer");
                    return Ok(());
                }
                Err(err) => return Err(retry("response_url", err)),
            }
        }
    }

    async fn mark_rendered(&self, key: &str, showing: u64) -> Result<(), HandlerError> {
        self.update(key, |record| {
            if record.rendered_revision >= showing {
                return false;
            }
            record.rendered_revision = showing;
            true
        })
        .await?;
        Ok(())
    }

    /// Posts the reply unless someone else is, or did.
    async fn post_once(
        &self,
        key: &str,
        record: &ReplyRecord,
        channel: &str,
        thread_ts: &str,
        marker: &str,
    ) -> Result<(), HandlerError> {
        let now = Utc::now();
        let stale_claim = match &record.claim {
            Some(claim) if claim.owner != self.owner => {
                let age = (now - claim.at).to_std().unwrap_or_default();
                if age < self.claim_timeout {
                    // Another replica is posting it: wait here (the caller's loop reads the
                    // record again) instead of spending this message's deliveries; a claim
                    // left by a crash goes stale and is taken over below.
                    metrics::counter!("ft_poster_claim_waits_total").increment(1);
                    tokio::time::sleep(CLAIM_POLL).await;
                    return Ok(());
                }
                tracing::warn!(previous = %claim.owner, ?age, "taking over a reply whose poster went silent");
                true
            }
            Some(_) => true,
            None => false,
        };
        // Wait for the channel's turn first: what arrives meanwhile (the evidence, most often)
        // is in the reply when it is posted, instead of in an edit that waits its own turn.
        self.post_limiter.until_key_ready(&channel.to_owned()).await;
        // Claim it (compare-and-set: of two replicas, one wins).
        let claimed = self
            .update(key, |current| {
                if current.message_ts.is_some() || current.claim != record.claim {
                    return false;
                }
                current.claim = Some(Claim {
                    owner: self.owner.clone(),
                    at: now,
                });
                true
            })
            .await?;
        if claimed.message_ts.is_some() {
            return Ok(()); // posted meanwhile; the caller's loop updates it
        }
        if claimed.claim.as_ref().map(|claim| claim.owner.as_str()) != Some(self.owner.as_str()) {
            // Another replica claimed it first: as above, wait for it here.
            tokio::time::sleep(CLAIM_POLL).await;
            return Ok(());
        }
        if stale_claim && let Some(ts) = self.find_posted(channel, thread_ts, marker).await? {
            tracing::info!(%ts, "found the reply a crashed poster had posted; adopting it");
            metrics::counter!("ft_poster_adopted_total").increment(1);
            return self.record_posted(key, &ts, 0).await;
        }
        let showing = claimed.content_revision;
        let rendered = render::render_with(&claimed, marker, &self.view);
        let ts = self
            .call_post(key, channel, thread_ts, &rendered, marker)
            .await?;
        metrics::counter!("ft_poster_posts_total").increment(1);
        if let Some(waited) = claimed.alert_to_reply(&ts) {
            metrics::histogram!("ft_alert_to_reply_seconds").record(waited.as_secs_f64());
        }
        self.record_posted(key, &ts, showing).await
    }

    async fn record_posted(&self, key: &str, ts: &str, showing: u64) -> Result<(), HandlerError> {
        self.update(key, |record| {
            record.message_ts = Some(ts.to_owned());
            record.rendered_revision = record.rendered_revision.max(showing);
            record.claim = None;
            true
        })
        .await?;
        Ok(())
    }

    /// Calls `method`, waiting out rate limits.
    pub(crate) async fn call_with_retry(
        &self,
        method: &str,
        body: &Value,
    ) -> Result<Value, HandlerError> {
        self.api
            .call_patiently(method, body)
            .await
            .map_err(|err| slack_failed(method, err))
    }

    async fn call_post(
        &self,
        key: &str,
        channel: &str,
        thread_ts: &str,
        rendered: &Rendered,
        marker: &str,
    ) -> Result<String, HandlerError> {
        let mut rendered = rendered.clone();
        loop {
            // Keep the claim fresh while waiting out rate limits, so nobody takes it over.
            self.update(key, |record| match &mut record.claim {
                Some(claim) if claim.owner == self.owner => {
                    claim.at = Utc::now();
                    true
                }
                _ => false,
            })
            .await?;
            let body = json!({
                "channel": channel, "thread_ts": thread_ts, "text": rendered.text,
                "blocks": rendered.blocks, "unfurl_links": false, "unfurl_media": false,
            });
            match self.api.call("chat.postMessage", &body).await {
                Ok(answer) => {
                    return answer["ts"]
                        .as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| retry("chat.postMessage", "the answer has no ts"));
                }
                // The claim is refreshed (above) before the call is made again.
                Err(err) if slack::waited_out("chat.postMessage", &err, ANY_WAIT).await => {}
                Err(err) if is_content_error(&err) => {
                    tracing::warn!(%err, "Slack refused the blocks; posting the text alone");
                    rendered = text_only(&rendered, marker);
                }
                Err(err) => return Err(slack_failed("chat.postMessage", err)),
            }
        }
    }

    async fn call_update(
        &self,
        channel: &str,
        ts: &str,
        rendered: &Rendered,
        marker: &str,
    ) -> Result<Updated, HandlerError> {
        let mut rendered = rendered.clone();
        loop {
            let body = json!({"channel": channel, "ts": ts, "text": rendered.text, "blocks": rendered.blocks});
            match self.api.call_patiently("chat.update", &body).await {
                Ok(_) => return Ok(Updated::Yes),
                Err(err) if err.code() == Some("message_not_found") => return Ok(Updated::Gone),
                Err(err) if is_content_error(&err) => rendered = text_only(&rendered, marker),
                Err(err) => return Err(slack_failed("chat.update", err)),
            }
        }
    }

    /// Looks in the thread for a reply of this app whose first block carries `marker`.
    async fn find_posted(
        &self,
        channel: &str,
        thread_ts: &str,
        marker: &str,
    ) -> Result<Option<String>, HandlerError> {
        let answer = self
            .api
            .get_patiently(
                "conversations.replies",
                &[("channel", channel), ("ts", thread_ts), ("limit", "1000")],
                slack::ANY_WAIT,
            )
            .await
            .map_err(|err| slack_failed("conversations.replies", err))?;
        let found = answer["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|message| {
                self.identity
                    .is_own(message["user"].as_str(), message["bot_id"].as_str())
                    && message["blocks"][0]["block_id"] == marker
            })
            .and_then(|message| message["ts"].as_str())
            .map(str::to_owned);
        Ok(found)
    }

    /// Shares the pictures the thread should carry and does not have yet, each once: a claim
    /// written by compare-and-set first (so two replicas do not both upload), the upload, then
    /// the file's id. A refusal (no `files:write` scope) is recorded and not tried again; an
    /// unreachable Slack releases the claim and is retried.
    async fn share_pictures(&self, key: &str, record: &ReplyRecord) -> Result<(), HandlerError> {
        let (Some(store), Some(thread)) = (&self.pictures, record.target.as_ref()) else {
            return Ok(());
        };
        let (ReplyTarget::Thread { channel, thread_ts }, Some(_)) = (thread, &record.message_ts)
        else {
            return Ok(());
        };
        for wanted in record.wanted_shares() {
            let share = wanted.key.clone();
            let now = Utc::now();
            let timeout = chrono::Duration::from_std(self.claim_timeout).unwrap_or_default();
            let claim = Claim {
                owner: self.owner.clone(),
                at: now,
            };
            let mine = |record: &ReplyRecord| {
                record.pictures.get(&share) == Some(&Picture::Sharing(claim.clone()))
            };
            let written = self
                .update(key, |record| {
                    let free = match record.pictures.get(&share) {
                        None => true,
                        Some(Picture::Sharing(other)) => now - other.at > timeout,
                        Some(_) => false,
                    };
                    if free {
                        record
                            .pictures
                            .insert(share.clone(), Picture::Sharing(claim.clone()));
                    }
                    free
                })
                .await?;
            if !mine(&written) {
                continue;
            }
            // Any failure from here on gives the claim back, so a retry may share it; the
            // outcome is written only while the claim is still this replica's.
            let release = || async {
                self.update(key, |record| {
                    mine(record) && record.pictures.remove(&share).is_some()
                })
                .await
            };
            let settle = |outcome: Picture| {
                let (share, mine) = (&share, &mine);
                async move {
                    self.update(key, |record| {
                        let owned = mine(record);
                        if owned {
                            record.pictures.insert(share.clone(), outcome.clone());
                        }
                        owned
                    })
                    .await
                }
            };
            if wanted
                .files
                .iter()
                .any(|file| file.object.size > MAX_PICTURE_BYTES)
            {
                // Never sent cut short: said once, in the record and the log.
                tracing::warn!(share = %share, "a picture is over {MAX_PICTURE_BYTES} bytes; not shared");
                settle(Picture::Refused {
                    code: "picture_too_large".to_owned(),
                })
                .await?;
                continue;
            }
            let mut bytes = Vec::with_capacity(wanted.files.len());
            for file in &wanted.files {
                match read_picture(store, &file.object).await {
                    Ok(read) => bytes.push(read),
                    Err(err) => {
                        release().await?;
                        return Err(err);
                    }
                }
            }
            let uploads: Vec<slack::Upload<'_>> = wanted
                .files
                .iter()
                .zip(&bytes)
                .map(|(file, bytes)| slack::Upload {
                    filename: &file.filename,
                    title: &file.title,
                    alt_text: &file.alt_text,
                    bytes,
                })
                .collect();
            let comment = wanted.comment.as_ref().map(|comment| comment.as_str());
            let outcome = loop {
                match self
                    .api
                    .share_files(&uploads, channel, thread_ts, comment)
                    .await
                {
                    Ok(file_ids) => break Picture::Shared { file_ids },
                    // A longer wait than half the claim lasts is left to another delivery.
                    Err(err)
                        if slack::waited_out("files.share", &err, self.claim_timeout / 2).await => {
                    }
                    Err(err) if !err.is_transient() => {
                        tracing::warn!(%err, "Slack refused a picture");
                        let code = err.code().unwrap_or("refused").to_owned();
                        break Picture::Refused { code };
                    }
                    Err(err) => {
                        // Unreachable, a passing failure, or a wait longer than the claim
                        // lasts: another delivery tries again. (A `completeUploadExternal`
                        // that landed but whose answer was lost shares the picture twice.)
                        release().await?;
                        return Err(retry("sharing a picture", err));
                    }
                }
            };
            metrics::counter!("ft_poster_pictures_total", "outcome" => match outcome {
                Picture::Shared { .. } => "shared",
                _ => "refused",
            })
            .increment(1);
            settle(outcome).await?;
        }
        Ok(())
    }

    /// Adds the reactions the alert should carry (eyes when seen, a check mark when resolved).
    async fn react(&self, key: &str, record: &ReplyRecord) -> Result<(), HandlerError> {
        let Some(thread) = record.thread() else {
            return Ok(());
        };
        for name in record.wanted_reactions() {
            if record.reactions.contains(name) {
                continue;
            }
            let body = json!({"channel": thread.channel, "timestamp": thread.ts, "name": name});
            match self.api.call_patiently("reactions.add", &body).await {
                Ok(_) => {}
                // Already there, or the alert was deleted: nothing more to do either way.
                Err(err) if matches!(err.code(), Some("already_reacted" | "message_not_found")) => {
                }
                Err(err) => return Err(slack_failed("reactions.add", err)),
            }
            self.update(key, |record| record.reactions.insert(name.to_owned()))
                .await?;
        }
        Ok(())
    }
}

/// The object store the pictures are read from.
pub(crate) struct PictureStore(pub(crate) async_nats::jetstream::object_store::ObjectStore);

impl std::fmt::Debug for PictureStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PictureStore")
    }
}

/// Most bytes of a picture read from the object store (a chart PNG is tens of kilobytes).
const MAX_PICTURE_BYTES: u64 = 8 * 1024 * 1024;

async fn read_picture(
    PictureStore(store): &PictureStore,
    object: &proto::ObjectRef,
) -> Result<Vec<u8>, HandlerError> {
    use tokio::io::AsyncReadExt as _;

    let reader = store
        .get(&object.key)
        .await
        .map_err(|err| retry("reading a picture", err))?;
    let mut bytes = Vec::new();
    reader
        .take(MAX_PICTURE_BYTES)
        .read_to_end(&mut bytes)
        .await
        .map_err(|err| retry("reading a picture", err))?;
    Ok(bytes)
}

enum Updated {
    Yes,
    /// The reply is gone from Slack.
    Gone,
}

/// Slack refused the message's content (too long, blocks it does not accept).
fn is_content_error(err: &CallError) -> bool {
    matches!(
        err.code(),
        Some("invalid_blocks" | "msg_too_long" | "invalid_blocks_format" | "too_many_attachments")
    )
}

/// The blocks Slack refused, replaced by the text alone (still marked, still findable).
fn text_only(rendered: &Rendered, marker: &str) -> Rendered {
    let fitted = render::fit(Rendered {
        text: rendered.text.clone(),
        blocks: vec![proto::mrkdwn::blocks::section(rendered.text.clone()).into_json()],
    });
    let mut blocks = fitted.blocks;
    blocks[0]["block_id"] = json!(marker);
    Rendered {
        text: fitted.text,
        blocks,
    }
}

/// What delivering a reply needs next, from its record alone.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// No target yet (evidence came before its incident).
    Wait,
    /// Slack shows everything the record holds: share its pictures and react.
    Finish,
    /// Edit the thread reply already posted in `channel`, within the channel's edit budget.
    Edit { channel: String },
    /// Post or send it (a first thread reply, an ephemeral, a DM, a response_url).
    Show,
}

fn next_step(record: &ReplyRecord) -> Step {
    match (&record.target, &record.message_ts) {
        (None, _) => Step::Wait,
        _ if record.caught_up() => Step::Finish,
        (Some(ReplyTarget::Thread { channel, .. }), Some(_)) => Step::Edit {
            channel: channel.clone(),
        },
        _ => Step::Show,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_step_follows_from_the_record() {
        let mut record = ReplyRecord::default();
        assert_eq!(next_step(&record), Step::Wait, "no target yet");
        record.target = Some(ReplyTarget::Thread {
            channel: "C1".into(),
            thread_ts: "1.1".into(),
        });
        record.content_revision = 1;
        assert_eq!(next_step(&record), Step::Show, "a first reply to post");
        record.message_ts = Some("1.2".into());
        assert_eq!(
            next_step(&record),
            Step::Edit {
                channel: "C1".into()
            },
            "posted, and newer content to show"
        );
        record.rendered_revision = 1;
        assert_eq!(next_step(&record), Step::Finish, "Slack shows it all");
        record.target = Some(ReplyTarget::Direct { user: "U1".into() });
        record.message_ts = None;
        record.rendered_revision = 0;
        assert_eq!(next_step(&record), Step::Show, "a DM is sent, never edited");
    }
}
