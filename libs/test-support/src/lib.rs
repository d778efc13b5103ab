//! Test harness: real servers for integration tests, and helpers to wait for services.
//!
//! [`NatsServer`] runs the real `nats-server` binary with JetStream, on a port the OS picks and a
//! store directory of its own, so tests run in parallel without seeing each other. It can be
//! killed (`SIGKILL`, as a crash) and restarted on the same port with the same store, which is how
//! fault tests check that nothing accepted is lost. Dropping it kills the server and removes the
//! store.
//!
//! The binary is `$NATS_SERVER_BIN` or `nats-server` on `PATH`; it must be 2.10 or newer (the
//! KV and object-store calls of async-nats need it). `tests/run.sh` installs it.
//!
//! ## Layout
//! - [`nats`]: [`NatsServer`], the real `nats-server`, killable and restartable.
//! - [`cluster`]: [`NatsCluster`], three clustered `nats-server`s, each killable.
//! - [`daemons`]: [`Alertmanager`] and [`Prometheus`] from their Debian packages.
//! - [`http`]: [`wait_for`] a condition, [`wait_ready`] on an admin server, HTTP/1.0 probes.
//! - [`chromium`]: headless Chromium's DOM and screenshots of a page.
//! - [`otlp`]: [`OtlpReceiver`], a trace collector's wire format.
//! - [`ports`]: [`reserve_port`], ports parallel tests do not share.
//! - [`fixtures`]: messages as producers publish them.
//! - [`binary`]: checks on a service's real binary.
//!
//! Everything is re-exported here, so a test names `test_support::NatsServer`, whatever module
//! it lives in.

pub mod binary;
pub mod chromium;
pub mod cluster;
pub mod daemons;
pub mod fixtures;
pub mod http;
pub mod nats;
pub mod otlp;
pub mod ports;

pub use chromium::{chromium, headless_chromium, rendered_dom, screenshot};
pub use cluster::NatsCluster;
pub use daemons::{Alertmanager, Prometheus};
pub use http::{http_get, http_get_async, http_post_json, wait_for, wait_ready};
pub use nats::{NatsAuth, NatsServer, TestCertificates};
pub use otlp::{OtlpReceiver, ReceivedSpan};
pub use ports::{PortReservation, reserve_port};

#[cfg(test)]
mod tests {
    use std::net::TcpStream;

    use super::*;

    #[test]
    fn server_starts_is_killed_and_restarts_on_the_same_port() {
        let mut server = NatsServer::start().unwrap();
        let port = server.port();
        assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
        server.kill();
        assert!(!server.is_running());
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
        server.restart().unwrap();
        assert_eq!(server.port(), port);
        assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
    }
}
