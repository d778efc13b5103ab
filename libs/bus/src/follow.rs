//! Following a stream in order from a sequence, without a durable consumer: the reader keeps its
//! own position (the span store's files name the last sequence they hold), so the server keeps
//! nothing for it and a restart resumes exactly where the reader's own state ends.

use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use futures::{Stream, StreamExt as _};
use proto::{DecodeError, Message, Subject};

use crate::{Bus, Error};

/// One message read in order: its stream sequence and what it decoded to.
#[derive(Debug)]
pub struct Followed<M> {
    pub sequence: u64,
    pub message: Result<M, DecodeError>,
}

impl Bus {
    /// Every message on `subject` stored after stream sequence `after`, in order, as they arrive.
    /// The stream ends only with an error the ordered consumer could not recover from.
    pub async fn follow<M: Message>(
        &self,
        subject: Subject,
        after: u64,
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
        let consumer = stream
            .create_consumer(OrderedConfig {
                filter_subject: self.subjects.subject(subject),
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: after + 1,
                },
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
            let sequence = message
                .info()
                .map(|info| info.stream_sequence)
                .map_err(|err| read_error(err.to_string()))?;
            Ok(Followed {
                sequence,
                message: proto::decode::<M>(&message.payload),
            })
        }))
    }
}
