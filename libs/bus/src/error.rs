//! Errors of the bus.

/// What went wrong talking to NATS.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid NATS configuration: {0}")]
    Config(String),
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },
    #[error("cannot provision {what}: {detail}")]
    Provision { what: String, detail: String },
    #[error("publish to {subject} failed: {detail}")]
    Publish { subject: String, detail: String },
    #[error("consumer {consumer}: {detail}")]
    Consumer { consumer: String, detail: String },
    #[error("cannot read stream {stream} back: {detail}")]
    Read { stream: String, detail: String },
}

/// How a handler failed, which decides what happens to the message.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth trying again (a server was down, a lookup timed out): the message is redelivered
    /// after a backoff, and dead-lettered when it runs out of deliveries.
    #[error("{0}")]
    Retry(String),
    /// Will never succeed (the message is understood and refused): dead-lettered at once.
    #[error("{0}")]
    Reject(String),
}

impl HandlerError {
    pub fn retry(err: impl std::fmt::Display) -> HandlerError {
        HandlerError::Retry(err.to_string())
    }

    pub fn reject(err: impl std::fmt::Display) -> HandlerError {
        HandlerError::Reject(err.to_string())
    }
}
