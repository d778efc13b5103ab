//! Replaying dead letters once their cause is fixed: each dead letter's original message is
//! published again on its original subject, with its original headers (its trace context among
//! them) and a new `Nats-Msg-Id` (`redrive:<stream>:<sequence>`: the original id would be taken
//! for a duplicate, and a redrive that is run twice replays each letter once), then the dead letter
//! and any payload it kept in the object store are deleted. `flamethread-redrive` runs it.

use async_nats::{HeaderMap, jetstream::message::PublishMessage};
use proto::DeadLetter;
use tokio::io::AsyncReadExt as _;

use crate::{Bus, Error};

/// What a redrive did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Redriven {
    /// Dead letters replayed (or, in a dry run, that would be), as (sequence, original subject).
    pub replayed: Vec<(u64, String)>,
    /// Dead letters left where they are, and why.
    pub left: Vec<(u64, String)>,
}

/// Replays the dead letters whose original subject starts with `subject_prefix` (all of them
/// when empty). With `dry_run`, says what it would replay and changes nothing.
pub async fn redrive(bus: &Bus, subject_prefix: &str, dry_run: bool) -> Result<Redriven, Error> {
    let name = bus
        .subjects()
        .stream_name(proto::subjects::Stream::DeadLetter);
    let failed = |detail: String| Error::Provision {
        what: format!("stream {name}"),
        detail,
    };
    let mut stream = bus
        .jetstream()
        .get_stream(&name)
        .await
        .map_err(|err| failed(err.to_string()))?;
    let state = stream
        .info()
        .await
        .map_err(|err| failed(err.to_string()))?
        .state
        .clone();
    let mut done = Redriven::default();
    if state.messages == 0 {
        return Ok(done);
    }
    for sequence in state.first_sequence..=state.last_sequence {
        // Deleted sequences (replayed before) are gaps.
        let Ok(stored) = stream.get_raw_message(sequence).await else {
            continue;
        };
        let letter: DeadLetter = match serde_json::from_slice(&stored.payload) {
            Ok(letter) => letter,
            Err(err) => {
                done.left
                    .push((sequence, format!("not a dead letter: {err}")));
                continue;
            }
        };
        if !letter.subject.starts_with(subject_prefix) {
            continue;
        }
        let payload = match payload_of(bus, &letter).await {
            Ok(payload) => payload,
            Err(why) => {
                done.left.push((sequence, why.to_string()));
                continue;
            }
        };
        if !dry_run {
            let mut headers = HeaderMap::new();
            for (key, values) in &letter.headers {
                if key.eq_ignore_ascii_case("Nats-Msg-Id") {
                    continue;
                }
                for value in values {
                    headers.append(key.as_str(), value.as_str());
                }
            }
            headers.insert(
                async_nats::header::NATS_MESSAGE_ID,
                format!("redrive:{}:{}", letter.stream, letter.stream_sequence).as_str(),
            );
            bus.jetstream()
                .send_publish(
                    letter.subject.clone(),
                    PublishMessage::build()
                        .payload(payload.into())
                        .headers(headers),
                )
                .await
                .map_err(|err| publish_error(&letter.subject, err.to_string()))?
                .await
                .map_err(|err| publish_error(&letter.subject, err.to_string()))?;
            stream
                .delete_message(sequence)
                .await
                .map_err(|err| failed(err.to_string()))?;
            if let Some(object) = &letter.payload_object
                && let Ok(store) = bus.blob_store().await
            {
                let _ = store.delete(&object.key).await;
            }
        }
        done.replayed.push((sequence, letter.subject.clone()));
    }
    Ok(done)
}

fn publish_error(subject: &str, detail: String) -> Error {
    Error::Publish {
        subject: subject.to_owned(),
        detail,
    }
}

/// The original bytes: inline, or from the object store.
async fn payload_of(bus: &Bus, letter: &DeadLetter) -> Result<Vec<u8>, PayloadError> {
    if let Some(payload) = letter.inline_payload() {
        return Ok(payload);
    }
    let Some(object) = &letter.payload_object else {
        return Err(PayloadError::Nowhere);
    };
    let store = bus.blob_store().await?;
    let unreadable = |source: Box<dyn std::error::Error + Send + Sync>| PayloadError::Unreadable {
        key: object.key.clone(),
        source,
    };
    let mut stored = store
        .get(&object.key)
        .await
        .map_err(|err| unreadable(err.into()))?;
    let mut payload = Vec::new();
    stored
        .read_to_end(&mut payload)
        .await
        .map_err(|err| unreadable(err.into()))?;
    Ok(payload)
}

/// Why a dead letter's payload could not be had back.
#[derive(Debug, thiserror::Error)]
enum PayloadError {
    #[error("its payload is neither inline nor in the object store")]
    Nowhere,
    #[error(transparent)]
    Store(#[from] Error),
    #[error("its payload {key}: {source}")]
    Unreadable {
        key: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}
