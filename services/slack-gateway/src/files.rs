//! Shared files: the gateway's own consumer of `slack.file_received`. It asks Slack about the file
//! (`files.info`), downloads it with the bot token, and stores it in the object store, so that no
//! other service needs a Slack token to read it; then it publishes `slack.file` with the stored
//! object, or with the reason it was refused (too large, a type that is not a script, gone).
//!
//! `files.info` is read as JSON rather than through slack-morphism, whose `SlackFile` drops the
//! `size` and `shares` fields this needs. A download is checked twice: against the size cap while
//! streaming (Slack's reported size can lie, a `Content-Length` can be absent), and against
//! Slack's habit of answering a bad token with `200` and an HTML sign-in page.

use bus::{Bus, Delivery, HandlerError};
use chrono::Utc;
use proto::{FileReceived, FileShared, ObjectRef, SchemaVersion, slack::StoredFile};
use runtime::body::{BodyError, read_capped};
use serde_json::Value;
use slack::{RawApi, Secret};

use crate::config::FilesConfig;

#[derive(Debug, Clone)]
pub(crate) struct FileFetcher {
    pub(crate) bus: Bus,
    /// `files.info`, rate limits waited out.
    pub(crate) slack: RawApi,
    /// The download, with the bot token (a file URL, not a Web API method).
    pub(crate) http: reqwest::Client,
    pub(crate) bot_token: Secret,
    pub(crate) config: FilesConfig,
}

/// What Slack says about a file.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct FileInfo {
    pub(crate) name: String,
    pub(crate) mimetype: Option<String>,
    pub(crate) size: u64,
    pub(crate) download_url: Option<String>,
    /// The `ts` of the message it was shared with in `channel`.
    pub(crate) message_ts: Option<String>,
}

/// Reads `files.info`'s `file` object; `channel` picks the share to answer under.
pub(crate) fn file_info(file: &Value, channel: &str) -> FileInfo {
    let share_ts = ["public", "private"].iter().find_map(|visibility| {
        file["shares"][visibility][channel]
            .as_array()
            .and_then(|shares| shares.first())
            .and_then(|share| share["ts"].as_str())
            .map(str::to_owned)
    });
    FileInfo {
        name: file["name"].as_str().unwrap_or("unnamed").to_owned(),
        mimetype: file["mimetype"].as_str().map(str::to_owned),
        size: file["size"].as_u64().unwrap_or(0),
        download_url: file["url_private_download"]
            .as_str()
            .or_else(|| file["url_private"].as_str())
            .map(str::to_owned),
        message_ts: share_ts,
    }
}

/// Why a file was not stored: a reason for the person who shared it.
pub(crate) fn refusal(info: &FileInfo, config: &FilesConfig) -> Option<String> {
    if info.size > config.max_bytes {
        return Some(format!(
            "{} is {} bytes; flamethread takes files up to {} bytes",
            info.name, info.size, config.max_bytes
        ));
    }
    let mimetype = info.mimetype.as_deref().unwrap_or("unknown");
    if !config
        .allowed_types
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(mimetype))
    {
        return Some(format!(
            "{} is {mimetype}; flamethread runs scripts ({})",
            info.name,
            config.allowed_types.join(", ")
        ));
    }
    if info.download_url.is_none() {
        return Some(format!("Slack gave no download link for {}", info.name));
    }
    None
}

enum Fetch {
    Stored(FileInfo, ObjectRef),
    Refused(FileInfo, String),
}

impl FileFetcher {
    pub(crate) async fn handle(
        &self,
        delivery: Delivery<FileReceived>,
    ) -> Result<(), HandlerError> {
        let received = delivery.message;
        let (info, file) = match self.fetch(&received).await? {
            Fetch::Stored(info, object) => (info, StoredFile::Stored { object }),
            Fetch::Refused(info, reason) => {
                tracing::info!(file = %received.file_id, %reason, "shared file refused");
                metrics::counter!("ft_gateway_files_refused_total").increment(1);
                (info, StoredFile::Rejected { reason })
            }
        };
        let shared = FileShared {
            schema_version: SchemaVersion::CURRENT,
            event_id: received.event_id.clone(),
            file_id: received.file_id.clone(),
            channel: received.channel.clone(),
            user: received.user.clone(),
            message_ts: info.message_ts,
            name: info.name,
            size: info.size,
            mimetype: info.mimetype,
            file,
            received_at: received.received_at,
        };
        self.bus
            .publish(&shared)
            .await
            .map_err(HandlerError::retry)?;
        Ok(())
    }

    async fn fetch(&self, received: &FileReceived) -> Result<Fetch, HandlerError> {
        let answer = match self
            .slack
            // A longer limit is retried later (it is transient): the download needs the rest of
            // the handler's time (three download timeouts).
            .get_patiently(
                "files.info",
                &[("file", &received.file_id)],
                self.config.download_timeout,
            )
            .await
        {
            Ok(answer) => answer,
            Err(err) if matches!(err.code(), Some("file_not_found" | "file_deleted")) => {
                return Ok(Fetch::Refused(
                    FileInfo {
                        name: received.file_id.clone(),
                        ..FileInfo::default()
                    },
                    "the file was deleted before flamethread could read it".to_owned(),
                ));
            }
            Err(err) if err.is_transient() => {
                return Err(HandlerError::retry(format!("files.info: {err}")));
            }
            // invalid_auth, missing_scope…: a configuration problem no retry fixes.
            Err(err) => {
                return Err(HandlerError::reject(format!(
                    "files.info: {err} (check the bot token and its files:read scope)"
                )));
            }
        };
        let info = file_info(&answer["file"], &received.channel);
        if let Some(reason) = refusal(&info, &self.config) {
            return Ok(Fetch::Refused(info, reason));
        }
        let url = info.download_url.clone().unwrap_or_default();
        let bytes = match self.download(&url).await? {
            Ok(bytes) => bytes,
            Err(reason) => return Ok(Fetch::Refused(info, reason)),
        };
        let key = proto::keys::object::slack_file(&received.file_id, &info.name);
        let store = self.bus.blob_store().await.map_err(HandlerError::retry)?;
        let mut reader = bytes.as_slice();
        store
            .put(key.as_str(), &mut reader)
            .await
            .map_err(|err| HandlerError::retry(format!("object store: {err}")))?;
        let object = ObjectRef {
            bucket: self.bus.subjects().blob_bucket(),
            key,
            size: bytes.len() as u64,
            content_type: info
                .mimetype
                .clone()
                .unwrap_or_else(|| "text/plain".to_owned()),
        };
        let info = FileInfo {
            size: bytes.len() as u64,
            ..info
        };
        tracing::info!(file = %received.file_id, bytes = object.size, "shared file stored");
        Ok(Fetch::Stored(info, object))
    }

    /// Downloads `url` with the bot token: `Ok(Err(reason))` when the answer is not the file.
    async fn download(&self, url: &str) -> Result<Result<Vec<u8>, String>, HandlerError> {
        let started = Utc::now();
        let response = tokio::time::timeout(
            self.config.download_timeout,
            self.http
                .get(url)
                .bearer_auth(self.bot_token.expose())
                .send(),
        )
        .await
        .map_err(|_| HandlerError::retry("the download did not start in time"))?
        .and_then(reqwest::Response::error_for_status)
        .map_err(|err| HandlerError::retry(format!("download: {err}")))?;
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if content_type.starts_with("text/html") {
            // Slack's answer to a missing or wrong token: a sign-in page, with status 200.
            return Err(HandlerError::reject(
                "Slack answered the download with a sign-in page: the bot token is not accepted for files (files:read)",
            ));
        }
        let cap = self.config.max_bytes;
        let limit = usize::try_from(cap).unwrap_or(usize::MAX);
        let bytes = match read_capped(response, limit, self.config.download_timeout).await {
            Ok(bytes) => bytes,
            Err(BodyError::TooLarge(_)) => {
                return Ok(Err(format!("the file is over {cap} bytes")));
            }
            Err(BodyError::Stalled(_)) => {
                return Err(HandlerError::retry("the download stalled"));
            }
            Err(BodyError::Transport(err)) => {
                return Err(HandlerError::retry(format!("download: {err}")));
            }
        };
        tracing::debug!(
            elapsed_ms = (Utc::now() - started).num_milliseconds(),
            "downloaded"
        );
        Ok(Ok(bytes))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn info(size: u64, mimetype: &str) -> FileInfo {
        FileInfo {
            name: "load.py".into(),
            mimetype: Some(mimetype.into()),
            size,
            download_url: Some("https://files.slack.com/files-pri/T1-F1/download/load.py".into()),
            message_ts: None,
        }
    }

    #[test]
    fn files_info_is_read_with_the_share_under_the_channel() {
        let file = json!({
            "id": "F1", "name": "load.py", "mimetype": "text/x-python", "size": 120,
            "url_private_download": "https://files.slack.com/files-pri/T1-F1/download/load.py",
            "shares": {"public": {"C0GENERAL": [{"ts": "1700000000.000300", "reply_count": 0}]}}
        });
        let read = file_info(&file, "C0GENERAL");
        assert_eq!(read.size, 120);
        assert_eq!(read.message_ts.as_deref(), Some("1700000000.000300"));
        assert_eq!(file_info(&file, "C0OTHER").message_ts, None);
    }

    #[test]
    fn size_and_type_are_checked_before_downloading() {
        let config = FilesConfig::default();
        assert_eq!(refusal(&info(100, "text/x-python"), &config), None);
        let big = refusal(&info(config.max_bytes + 1, "text/x-python"), &config).unwrap();
        assert!(big.contains("flamethread takes files up to"), "{big}");
        let binary = refusal(&info(100, "application/octet-stream"), &config).unwrap();
        assert!(binary.contains("application/octet-stream"), "{binary}");
        let mut no_link = info(100, "text/plain");
        no_link.download_url = None;
        assert!(
            refusal(&no_link, &config)
                .unwrap()
                .contains("no download link")
        );
    }
}
