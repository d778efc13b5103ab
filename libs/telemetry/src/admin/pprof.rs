//! `GET /debug/pprof/profile?seconds=N`: a CPU profile of this very process, in the format Go's
//! `net/http/pprof` answers (gzipped `perftools.profiles.Profile`), so flamethread's "profile now"
//! (and `go tool pprof`, and Pyroscope's scrapers) can profile flamethread itself.
//!
//! Sampling is pprof-rs's `SIGPROF` timer at 100 Hz. One profile at a time per process (a second
//! request gets 409 and a reason); `seconds` defaults to 30 like Go's and is capped at
//! [`MAX_SECONDS`]. The sampling runs on a blocking thread so the admin server keeps answering.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    extract::Query,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use profiling::pprof::{StackCount, encode};

/// The longest profile one request may ask for.
pub const MAX_SECONDS: u64 = 120;
const DEFAULT_SECONDS: u64 = 30;
const FREQUENCY_HZ: i32 = 100;

static PROFILING: AtomicBool = AtomicBool::new(false);

#[derive(Debug, serde::Deserialize)]
pub(super) struct ProfileQuery {
    seconds: Option<String>,
}

pub(super) async fn profile(Query(query): Query<ProfileQuery>) -> Response {
    let seconds = match query.seconds.as_deref().map(str::parse::<u64>) {
        None => DEFAULT_SECONDS,
        Some(Ok(seconds)) if (1..=MAX_SECONDS).contains(&seconds) => seconds,
        Some(_) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("seconds must be a whole number from 1 to {MAX_SECONDS}"),
            );
        }
    };
    if PROFILING.swap(true, Ordering::SeqCst) {
        return refuse(
            StatusCode::CONFLICT,
            "a profile of this process is already being taken; try again when it is done".into(),
        );
    }
    // The sampling thread frees the profiler when it is done, not this handler: a caller that
    // goes away mid-profile drops the handler, and the profiler must not stay taken.
    let busy = Busy;
    let taken = tokio::task::spawn_blocking(move || {
        let _busy = busy;
        take(Duration::from_secs(seconds))
    })
    .await;
    match taken {
        Ok(Ok(bytes)) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"profile\"",
                ),
            ],
            bytes,
        )
            .into_response(),
        Ok(Err(err)) => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot take the profile: {err}"),
        ),
        Err(err) => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the profiler panicked: {err}"),
        ),
    }
}

/// The profiler taken; dropping it frees it.
struct Busy;

impl Drop for Busy {
    fn drop(&mut self) {
        PROFILING.store(false, Ordering::SeqCst);
    }
}

fn refuse(status: StatusCode, reason: String) -> Response {
    (status, format!("{reason}\n")).into_response()
}

/// Samples this process for `duration` and writes what it saw as a pprof profile.
fn take(duration: Duration) -> Result<Vec<u8>, pprof::Error> {
    let started = SystemTime::now();
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(FREQUENCY_HZ)
        // Unwinding through these can deadlock inside a signal handler (pprof-rs's advice).
        .blocklist(&["libc", "libgcc", "pthread", "vdso"])
        .build()?;
    std::thread::sleep(duration);
    let report = guard.report().build()?;
    drop(guard);
    let stacks: Vec<StackCount> = report
        .data
        .iter()
        .filter(|(_, count)| **count > 0)
        .map(|(frames, count)| {
            // pprof-rs lists frames leaf first, and each frame's inlined symbols innermost first.
            let mut frames: Vec<String> = frames
                .frames
                .iter()
                .rev()
                .flat_map(|symbols| symbols.iter().rev().map(|symbol| symbol.name()))
                .collect();
            // The leaf end is the profiler's own unwinding inside its signal handler.
            while frames.last().is_some_and(|frame| is_profiler_frame(frame)) {
                frames.pop();
            }
            StackCount {
                frames,
                count: *count as u64,
            }
        })
        .collect();
    let nanos = |time: SystemTime| {
        time.duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos() as i64)
    };
    Ok(encode(
        &stacks,
        1_000_000_000 / i64::from(FREQUENCY_HZ),
        nanos(started),
        duration.as_nanos() as i64,
    ))
}

/// Frames of the sampling itself (pprof-rs's handler, the unwinder, the signal trampoline).
fn is_profiler_frame(frame: &str) -> bool {
    let frame = frame.trim_start_matches('<');
    frame.starts_with("pprof::")
        || frame.starts_with("backtrace::")
        || frame.contains("perf_signal_handler")
        || frame == "__restore_rt"
}
