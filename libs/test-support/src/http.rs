//! Waiting for things to hold, and plain HTTP/1.0 probes of admin servers (no HTTP client
//! dependency).

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

use anyhow::bail;

/// Polls `condition` every 20 ms until it holds or `timeout` passes.
pub async fn wait_for<F, Fut>(timeout: Duration, what: &str, mut condition: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !condition().await {
        if tokio::time::Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// `GET path` over plain HTTP/1.0; returns the status code and the body. Enough to probe an admin
/// server without an HTTP client dependency.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    http_request(
        addr,
        &format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n"),
    )
}

/// [`http_get`] off the async runtime, so that a server on the same runtime can answer it.
/// A connection failure reads as status 0.
pub async fn http_get_async(addr: SocketAddr, path: &str) -> (u16, String) {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || http_get(addr, &path))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or((0, String::new()))
}

/// `POST path` with a JSON body over plain HTTP/1.0; returns the status code and the body.
pub fn http_post_json(addr: SocketAddr, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let request = format!(
        "POST {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    http_request(addr, &request)
}

/// Sends a whole HTTP/1.0 request and reads the status code and body of the answer.
fn http_request(addr: SocketAddr, request: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {response:?}")))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Waits until `GET /readyz` on an admin server answers 200.
pub async fn wait_ready(admin: SocketAddr, timeout: Duration) -> anyhow::Result<()> {
    wait_for(
        timeout,
        &format!("{admin}/readyz to answer 200"),
        || async move { http_get_async(admin, "/readyz").await.0 == 200 },
    )
    .await
}
