//! TCP ports on 127.0.0.1 reserved for one test, safe against parallel tests and port-0 binds.

use std::{fs, net::SocketAddr};

/// A TCP port on 127.0.0.1 reserved for one test until this is dropped.
///
/// Picking a port by binding port 0 and releasing it races with every other process that binds
/// port 0 meanwhile (nats-server, HTTP servers in parallel tests): the kernel may hand out the
/// same port. So reserved ports come from *below* the kernel's ephemeral range, which port-0
/// binds never use, and each is held with an OS file lock that parallel test processes respect
/// and that is released when the holder exits, even by a crash.
#[derive(Debug)]
pub struct PortReservation {
    port: u16,
    _lock: fs::File,
}

impl PortReservation {
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

/// Reserves a free port (see [`PortReservation`]).
pub fn reserve_port() -> std::io::Result<PortReservation> {
    let ephemeral_start = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let low: u16 = 20000.min(ephemeral_start.saturating_sub(1000));
    let span = u32::from(ephemeral_start - low);
    let locks = std::env::temp_dir().join("flamethread-test-ports");
    fs::create_dir_all(&locks)?;
    let seed = std::process::id()
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.subsec_nanos())
            .unwrap_or(0);
    for step in 0..span {
        let port = low + ((seed.wrapping_add(step.wrapping_mul(7919))) % span) as u16;
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(locks.join(format!("{port}.lock")))?;
        if lock.try_lock().is_err() {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(PortReservation { port, _lock: lock });
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        "no free port to reserve",
    ))
}
