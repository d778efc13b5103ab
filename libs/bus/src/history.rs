//! Reading a stream back by time: the messages of one subject stored since an instant, oldest
//! first, with a short-lived ordered consumer (no durable state, nothing to clean up: the server
//! removes it when it goes idle).
//!
//! This is how profile-fetcher finds the changes recorded before an incident: changes are few
//! (deploys, config, rollbacks), kept for their stream's retention, and looked up by time, so a
//! database of their own would add a store without adding an answer.

use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use proto::{Message, Subject};

use crate::{Bus, Error};

/// How long one message may take to arrive before the read gives up.
const NEXT_TIMEOUT: Duration = Duration::from_secs(5);

/// What a read found.
#[derive(Debug, Clone, PartialEq)]
pub struct History<M> {
    /// Oldest first.
    pub messages: Vec<M>,
    /// Messages stored there that did not decode (a newer schema, or bytes that are not the
    /// contract); skipped, counted.
    pub undecodable: usize,
    /// More were stored than `limit`: the oldest ones are left out.
    pub truncated: bool,
}

impl Bus {
    /// The messages stored on `subject` since `since`, oldest first, at most the newest `limit`.
    pub async fn read_since<M: Message>(
        &self,
        subject: Subject,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<History<M>, Error> {
        let stream_name = self.subjects.stream_name(subject.stream());
        let read_error = |detail: String| Error::Read {
            stream: stream_name.clone(),
            detail,
        };
        let start_time = time::OffsetDateTime::from_unix_timestamp_nanos(
            since.timestamp_nanos_opt().unwrap_or_default().into(),
        )
        .map_err(|err| read_error(err.to_string()))?;
        let stream = self
            .jetstream
            .get_stream(&stream_name)
            .await
            .map_err(|err| read_error(err.to_string()))?;
        let consumer = stream
            .create_consumer(OrderedConfig {
                filter_subject: self.subjects.subject(subject),
                deliver_policy: DeliverPolicy::ByStartTime { start_time },
                ..Default::default()
            })
            .await
            .map_err(|err| read_error(err.to_string()))?;
        let mut history = History {
            messages: Vec::new(),
            undecodable: 0,
            truncated: false,
        };
        let pending = consumer.cached_info().num_pending;
        if pending == 0 {
            return Ok(history);
        }
        // Only the newest `limit` are kept; older ones are read past.
        let skip = pending.saturating_sub(limit as u64);
        history.truncated = skip > 0;
        let mut messages = consumer
            .messages()
            .await
            .map_err(|err| read_error(err.to_string()))?;
        let mut seen = 0u64;
        loop {
            let next = tokio::time::timeout(NEXT_TIMEOUT, messages.next())
                .await
                .map_err(|_| read_error(format!("no message within {NEXT_TIMEOUT:?}")))?;
            let Some(message) = next else { break };
            let message = message.map_err(|err| read_error(err.to_string()))?;
            seen += 1;
            let left = message.info().map(|info| info.pending).unwrap_or(0);
            if seen > skip {
                match proto::decode::<M>(&message.payload) {
                    Ok(decoded) => history.messages.push(decoded),
                    Err(err) => {
                        tracing::warn!(error = %err, stream = %stream_name, "skipped a message that does not decode");
                        history.undecodable += 1;
                    }
                }
            }
            if left == 0 || seen >= pending {
                break;
            }
        }
        Ok(history)
    }
}
