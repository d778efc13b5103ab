//! An HTTP answer's body read whole, but never more than a cap, and never waiting on a stalled
//! stream forever: what every client of an outside server (Prometheus, Pyroscope, Alertmanager,
//! a live profile endpoint, Slack's file host) needs, since none of them is trusted to be small
//! or quick.

use std::time::Duration;

/// Why an HTTP client could not be built (no TLS roots, a bad system configuration).
#[derive(Debug, thiserror::Error)]
#[error("cannot build an HTTP client: {0}")]
pub struct ClientError(#[from] reqwest::Error);

/// The HTTP client for an outside server: rustls with the process's crypto provider, and each
/// request bounded by `timeout` when there is one (a live profile's request sets its own).
pub fn client(timeout: Option<Duration>) -> Result<reqwest::Client, ClientError> {
    Ok(builder(timeout).build()?)
}

/// [`client`]'s builder, for a client that adds to it ([`crate::auth::ServerAuth::client`]).
pub(crate) fn builder(timeout: Option<Duration>) -> reqwest::ClientBuilder {
    crate::install_crypto_provider();
    let builder = reqwest::Client::builder();
    match timeout {
        Some(timeout) => builder.timeout(timeout),
        None => builder,
    }
}

/// Why a body was not read whole.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// More than the cap: said by `Content-Length` up front, or found while streaming.
    #[error("the answer is over {0} bytes")]
    TooLarge(usize),
    /// No chunk arrived within the stall limit.
    #[error("the answer stalled for {0:?}")]
    Stalled(Duration),
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
}

/// No stall limit: the caller bounds the whole read in time itself.
pub const NO_STALL_LIMIT: Duration = Duration::MAX;

/// Reads `response`'s body: at most `cap` bytes, each chunk within `stall`.
pub async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
    stall: Duration,
) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|length| length > cap as u64)
    {
        return Err(BodyError::TooLarge(cap));
    }
    let mut body = Vec::new();
    loop {
        let chunk = tokio::time::timeout(stall, response.chunk())
            .await
            .map_err(|_| BodyError::Stalled(stall))??;
        let Some(chunk) = chunk else {
            return Ok(body);
        };
        if body.len() + chunk.len() > cap {
            return Err(BodyError::TooLarge(cap));
        }
        body.extend_from_slice(&chunk);
    }
}

/// Why an exchange with an outside server gave no whole answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    #[error("the answer is over {0} bytes")]
    TooLarge(usize),
    /// Not reached, or the connection broke: the error with its causes.
    #[error("unreachable: {0}")]
    Unreachable(String),
}

/// Sends `request` and reads the whole answer, all of it within `timeout` and at most `cap`
/// bytes: the status and the body, whatever the status (the caller reads refusals too).
pub async fn exchange(
    request: reqwest::RequestBuilder,
    cap: usize,
    timeout: Duration,
) -> Result<(reqwest::StatusCode, Vec<u8>), ExchangeError> {
    let transport = |err: reqwest::Error| {
        if err.is_timeout() {
            ExchangeError::TimedOut(timeout)
        } else {
            ExchangeError::Unreachable(bus::error_chain(&err))
        }
    };
    tokio::time::timeout(timeout, async {
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let body = read_capped(response, cap, NO_STALL_LIMIT)
            .await
            .map_err(|err| match err {
                BodyError::Transport(err) => transport(err),
                BodyError::TooLarge(_) | BodyError::Stalled(_) => ExchangeError::TooLarge(cap),
            })?;
        Ok((status, body))
    })
    .await
    .map_err(|_| ExchangeError::TimedOut(timeout))?
}
