//! The process's own figures on `/metrics`, under the names and types Prometheus's client
//! libraries give them (`process_cpu_seconds_total` a counter in fractional seconds,
//! `process_resident_memory_bytes`, …), so the queries people already have for any service work
//! on flamethread's services and on the demo alike.
//!
//! They are read from `/proc/self` when `/metrics` is scraped and written as exposition text:
//! the `metrics` facade's counters are integers, and CPU time in whole seconds would make
//! `rate()` over short windows a staircase.

/// One reading of the process.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    cpu_seconds: f64,
    resident_bytes: u64,
    virtual_bytes: u64,
    open_fds: Option<usize>,
    threads: i64,
    start_time_seconds: f64,
}

/// The exposition text of this process's figures; empty where they cannot be read.
pub(super) fn exposition() -> String {
    sample().map(|sample| render(&sample)).unwrap_or_default()
}

#[cfg(target_os = "linux")]
fn sample() -> Option<Sample> {
    let process = procfs::process::Process::myself().ok()?;
    let stat = process.stat().ok()?;
    let ticks = procfs::ticks_per_second() as f64;
    let boot = procfs::boot_time_secs().ok()? as f64;
    Some(Sample {
        cpu_seconds: (stat.utime + stat.stime) as f64 / ticks,
        resident_bytes: stat.rss * procfs::page_size(),
        virtual_bytes: stat.vsize,
        open_fds: process.fd_count().ok(),
        threads: stat.num_threads,
        start_time_seconds: boot + stat.starttime as f64 / ticks,
    })
}

#[cfg(not(target_os = "linux"))]
fn sample() -> Option<Sample> {
    None
}

fn render(sample: &Sample) -> String {
    let mut text = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: String| {
        text.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        ));
    };
    metric(
        "process_cpu_seconds_total",
        "counter",
        "Total user and system CPU time spent in seconds.",
        sample.cpu_seconds.to_string(),
    );
    metric(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
        sample.resident_bytes.to_string(),
    );
    metric(
        "process_virtual_memory_bytes",
        "gauge",
        "Virtual memory size in bytes.",
        sample.virtual_bytes.to_string(),
    );
    if let Some(open_fds) = sample.open_fds {
        metric(
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            open_fds.to_string(),
        );
    }
    metric(
        "process_threads",
        "gauge",
        "Number of OS threads in the process.",
        sample.threads.to_string(),
    );
    metric(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since unix epoch in seconds.",
        sample.start_time_seconds.to_string(),
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_written_as_prometheus_clients_write_them() {
        let text = render(&Sample {
            cpu_seconds: 12.34,
            resident_bytes: 50 << 20,
            virtual_bytes: 1 << 30,
            open_fds: None,
            threads: 9,
            start_time_seconds: 1_700_000_000.5,
        });
        assert!(text.contains(
            "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 12.34\n"
        ));
        assert!(text.contains("process_resident_memory_bytes 52428800\n"));
        assert!(text.contains("process_threads 9\n"));
        assert!(text.contains("process_start_time_seconds 1700000000.5\n"));
        assert!(!text.contains("process_open_fds"), "left out when unknown");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_read() {
        let spin = std::time::Instant::now();
        while spin.elapsed() < std::time::Duration::from_millis(50) {
            std::hint::black_box(spin.elapsed());
        }
        let sample = sample().expect("/proc/self is readable");
        assert!(sample.cpu_seconds > 0.0, "{sample:?}");
        assert!(sample.resident_bytes > 1 << 20, "{sample:?}");
        assert!(sample.threads >= 1, "{sample:?}");
        assert!(sample.open_fds.is_some_and(|fds| fds >= 3), "{sample:?}");
        assert!(sample.start_time_seconds > 1_600_000_000.0, "{sample:?}");
    }
}
