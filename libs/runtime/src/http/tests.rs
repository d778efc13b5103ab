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
