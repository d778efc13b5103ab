//! Following a stream in order from a sequence or a time, without a durable consumer: the reader
//! keeps its own position (the span store's files name the last sequence they hold), so the
//! server keeps nothing for it and a restart resumes exactly where the reader's own state ends;
//! or every replica reads the same recent messages (the intake's "trace everything" commands).

use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt as _};
use proto::{DecodeError, Message, Subject};

use crate::{Bus, Error};

/// One message read in order: its stream sequence and what it decoded to.
#[derive(Debug)]
pub struct Followed<M> {
    pub sequence: u64,
    /// When JetStream stored it.
    pub published: DateTime<Utc>,
    pub message: Result<M, DecodeError>,
}

/// Where following starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowFrom {
    /// After this stream sequence (0: from the start).
    After(u64),
    /// With the first message stored at or after this time.
    Since(DateTime<Utc>),
}

impl Bus {
    /// Every message on `subject` stored from `from` on, in order, as they arrive. The stream
    /// ends only with an error the ordered consumer could not recover from.
    pub async fn follow<M: Message>(
        &self,
        subject: Subject,
        from: FollowFrom,
    ) -> Result<impl Stream<Item = Result<Followed<M>, Error>> + use<M>, Error> {
        let stream_name = self.subjects.stream_name(subject.stream());
        let read_error = move |detail: String| Error::Read {
            stream: stream_name.clone(),
            detail,
        };
        let stream = self
            .jetstream
            .get_stream(self.subjects.stream_name(subject.stream()))
            .await
            .map_err(|err| read_error(err.to_string()))?;
        let deliver_policy = match from {
            FollowFrom::After(after) => DeliverPolicy::ByStartSequence {
                start_sequence: after + 1,
            },
            FollowFrom::Since(since) => DeliverPolicy::ByStartTime {
                start_time: time::OffsetDateTime::from_unix_timestamp_nanos(
                    since.timestamp_nanos_opt().unwrap_or_default().into(),
                )
                .map_err(|err| read_error(err.to_string()))?,
            },
        };
        let consumer = stream
            .create_consumer(OrderedConfig {
                filter_subject: self.subjects.subject(subject),
                deliver_policy,
                ..Default::default()
            })
            .await
            .map_err(|err| read_error(err.to_string()))?;
        let messages = consumer
            .messages()
            .await
            .map_err(|err| read_error(err.to_string()))?;
        Ok(messages.map(move |message| {
            let message = message.map_err(|err| read_error(err.to_string()))?;
            let info = message.info().map_err(|err| read_error(err.to_string()))?;
            let published = DateTime::from_timestamp_nanos(
                i64::try_from(info.published.unix_timestamp_nanos()).unwrap_or(i64::MAX),
            );
            Ok(Followed {
                sequence: info.stream_sequence,
                published,
                message: proto::decode::<M>(&message.payload),
            })
        }))
    }
}
