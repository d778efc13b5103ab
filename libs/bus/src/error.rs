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

/// Any error a handler met, kept whole: its message and its chain of sources.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a handler's failure does to its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Worth trying again (a server was down, a lookup timed out): the message is redelivered
    /// after a backoff, and dead-lettered when it runs out of deliveries.
    Retry,
    /// Will never succeed (the message is understood and refused): dead-lettered at once.
    Reject,
}

/// How a handler failed: what to do with the message ([`Disposition`]) and why, with the
/// error's sources kept, so that a caller decides by type (`downcast_ref`), never by reading
/// the message's text.
#[derive(Debug)]
pub struct HandlerError {
    disposition: Disposition,
    source: BoxError,
}

impl HandlerError {
    /// The message is redelivered later.
    pub fn retry(err: impl Into<BoxError>) -> HandlerError {
        HandlerError {
            disposition: Disposition::Retry,
            source: err.into(),
        }
    }

    /// The message is dead-lettered at once.
    pub fn reject(err: impl Into<BoxError>) -> HandlerError {
        HandlerError {
            disposition: Disposition::Reject,
            source: err.into(),
        }
    }

    pub fn disposition(&self) -> Disposition {
        self.disposition
    }

    /// The error it was made from, when it is an `E`.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.source.downcast_ref()
    }

    /// The error and each of its sources (what a dead letter records): [`error_chain`].
    pub fn reason(&self) -> String {
        error_chain(&*self.source)
    }
}

/// An error and each of its sources, joined with ": ", as a person reads it in a log or a reply
/// ("connect: tcp connect error: Connection refused"). A source an error already prints in its
/// own message is not repeated.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !chain.ends_with(&text) {
            chain.push_str(": ");
            chain.push_str(&text);
        }
        next = cause.source();
    }
    chain
}

impl std::fmt::Display for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.source.fmt(f)
    }
}

impl std::error::Error for HandlerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("Slack said {0}")]
    struct Refused(&'static str);

    #[derive(Debug, thiserror::Error)]
    #[error("posting the reply")]
    struct Posting(#[source] Refused);

    #[test]
    fn a_handler_error_keeps_its_kind_its_type_and_its_sources() {
        let err = HandlerError::reject(Refused("already_reacted"));
        assert_eq!(err.disposition(), Disposition::Reject);
        assert_eq!(
            err.downcast_ref::<Refused>().map(|refused| refused.0),
            Some("already_reacted")
        );
        let err = HandlerError::retry(Posting(Refused("internal_error")));
        assert_eq!(err.disposition(), Disposition::Retry);
        assert_eq!(err.reason(), "posting the reply: Slack said internal_error");
        assert!(
            err.downcast_ref::<Refused>().is_none(),
            "only the outer type"
        );
        let text = HandlerError::retry(format!("lookup timed out after {}s", 3));
        assert_eq!(text.reason(), "lookup timed out after 3s");
        assert_eq!(text.to_string(), "lookup timed out after 3s");
    }
}
