//! The one way a service serves HTTP (Slack's HTTP events, Alertmanager's webhook, the pages, the
//! admin routes): an accept loop with a cap on open connections and a deadline for a request's
//! headers, so a slow or flooding client cannot hold a service's sockets or memory; on shutdown,
//! in-flight requests finish (for a bounded time) and new connections are refused.
//!
//! `axum::serve` has neither limit (it runs hyper without a timer, so hyper's header timeout never
//! fires), hence hyper's own connection builder here.

use std::{sync::Arc, time::Duration};

use axum::Router;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::sync::CancellationToken;

/// How much one HTTP listener admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers.
    pub header_read_timeout: Duration,
    /// How long in-flight requests may take to finish once shutdown begins.
    pub drain: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            header_read_timeout: Duration::from_secs(10),
            drain: Duration::from_secs(10),
        }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    limits: Limits,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = shutdown.cancelled() => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout);
        let connection = builder.serve_connection(
            TokioIo::new(stream),
            TowerToHyperService::new(router.clone()),
        );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "connection ended");
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(limits.drain, graceful.shutdown()).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use axum::routing::get;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    async fn start(limits: Limits) -> (std::net::SocketAddr, CancellationToken) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let router = Router::new().route("/", get(|| async { "ok" }));
        tokio::spawn(serve(listener, router, shutdown.clone(), limits));
        (addr, shutdown)
    }

    #[tokio::test]
    async fn a_client_too_slow_with_its_headers_is_cut_off() {
        let limits = Limits {
            header_read_timeout: Duration::from_millis(300),
            ..Limits::default()
        };
        let (addr, shutdown) = start(limits).await;
        let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let started = Instant::now();
        let mut answer = Vec::new();
        // The server answers 408 or just closes; either way the read ends.
        let read = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut answer))
            .await
            .expect("the server closed the slow connection");
        assert!(read.is_ok());
        assert!(started.elapsed() < Duration::from_secs(10));
        let text = String::from_utf8_lossy(&answer);
        assert!(!text.contains("200 OK"), "{text}");
        shutdown.cancel();
    }

    #[tokio::test]
    async fn connections_beyond_the_limit_wait_for_a_free_one() {
        let limits = Limits {
            max_connections: 2,
            header_read_timeout: Duration::from_secs(30),
            ..Limits::default()
        };
        let (addr, shutdown) = start(limits).await;
        // Two idle connections hold both slots.
        let held: Vec<_> = half_requests(addr, 2).await;
        let get = || async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).await.unwrap();
            String::from_utf8_lossy(&answer).into_owned()
        };
        let waiting = tokio::time::timeout(Duration::from_millis(500), get()).await;
        assert!(
            waiting.is_err(),
            "a third connection was served while two were held"
        );
        drop(held);
        let served = tokio::time::timeout(Duration::from_secs(10), get())
            .await
            .expect("served once a slot was free");
        assert!(
            served.starts_with("HTTP/1.1 200") && served.ends_with("ok"),
            "{served}"
        );
        shutdown.cancel();
    }

    async fn half_requests(addr: std::net::SocketAddr, count: usize) -> Vec<tokio::net::TcpStream> {
        let mut held = Vec::new();
        for _ in 0..count {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            // Half a request: the connection is accepted and stays open.
            stream.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
            held.push(stream);
        }
        // Let the server accept them.
        tokio::time::sleep(Duration::from_millis(200)).await;
        held
    }
}
