//! What a run said, read back (pure): the init's report (the one JSON line on the container's
//! stdout, which only the init can write), the engine's view (killed at the outer limit, OOM),
//! and from both the outcome, the limits the script ran into, its output tails and its profile.

use std::time::Duration;

use profiling::Folded;
use proto::sandbox::{LimitHit, SandboxLimits, SandboxOutcome};
use serde::Deserialize;

/// What the container left: its output as the engine kept it, and how it stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Finished {
    /// The init's report (the script cannot write here).
    pub stdout: Vec<u8>,
    /// The init's own complaints, if it had any.
    pub stderr: Vec<u8>,
    /// The runner killed it at the outer wall-clock limit.
    pub killed_at_limit: bool,
    /// The kernel's OOM killer struck inside it.
    pub oom_killed: bool,
    /// The init ended by SIGKILL (exit 137) that the runner did not send. Nothing inside the
    /// container can send it to PID 1, so it came from the host: under gVisor, whose sandbox the
    /// host's OOM killer takes whole without Docker's OOMKilled flag, that is the memory limit.
    pub killed_from_outside: bool,
    /// The init's exit status as the engine saw it.
    pub exit_code: Option<i64>,
    pub wall: Duration,
}

/// The init's report (`init/init.py`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Report {
    pub exit_code: Option<i64>,
    pub signal: Option<i64>,
    pub timed_out: bool,
    pub pids_exhausted: Option<bool>,
    #[serde(default)]
    pub tmp_full: Option<bool>,
    /// The container's cgroup counted an OOM kill (the engine's flag can miss one).
    #[serde(default)]
    pub oom_killed: Option<bool>,
    pub held_ms: u64,
    pub stdout: Stream,
    pub stderr: Stream,
    pub profile: ProfileReport,
    pub profiler: ProfilerReport,
}

/// One of the script's output streams: its end, and how much there was.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Stream {
    pub tail: String,
    pub bytes: u64,
    pub truncated: bool,
}

/// py-spy's raw folded stacks: the first bytes, and how many it wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ProfileReport {
    /// Folded stacks, root first, biggest first, names made safe by the init.
    pub folded: String,
    pub bytes: u64,
    pub truncated: bool,
    /// Samples py-spy took, and those left out to fit the report.
    #[serde(default)]
    pub samples: u64,
    #[serde(default)]
    pub dropped_samples: u64,
}

/// How py-spy ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ProfilerReport {
    pub status: Option<i64>,
    pub stderr: String,
}

/// The run, read.
#[derive(Debug, Clone, PartialEq)]
pub struct Read {
    pub outcome: SandboxOutcome,
    pub stdout_tail: String,
    pub stdout_truncated: bool,
    pub stderr_tail: String,
    pub stderr_truncated: bool,
    pub profile: Folded,
    /// Why `profile` is empty although the script ran.
    pub profile_missing: String,
    pub limits_hit: Vec<LimitHit>,
}

/// Longest frame name kept (a script can name a function anything, of any length).
pub const MAX_FRAME_CHARS: usize = 200;
/// Deepest stack kept: the frames nearest the root, then one that says how many were left out.
pub const MAX_DEPTH: usize = 256;

/// Reads `finished`, a run with `limits` and `/tmp` of `tmp_mib`.
pub fn read(finished: &Finished, limits: SandboxLimits, tmp_mib: u32) -> Read {
    let Some(report) = report(&finished.stdout) else {
        return unreported(finished);
    };
    let oom = finished.oom_killed || report.oom_killed == Some(true);
    // The report is the init's word on the wall clock: it was written before any outside kill.
    let outcome = if report.timed_out {
        SandboxOutcome::TimedOut
    } else if oom && report.signal == Some(9) {
        SandboxOutcome::OutOfMemory
    } else {
        match (report.exit_code, report.signal) {
            (Some(code), _) => SandboxOutcome::Exited { code },
            // The shell's convention: a script ended by signal N exited with 128 + N.
            (None, Some(signal)) => SandboxOutcome::Exited { code: 128 + signal },
            (None, None) => SandboxOutcome::Failed {
                reason: "the sandbox init reported no exit status".to_owned(),
            },
        }
    };
    let mut limits_hit = Vec::new();
    if report.pids_exhausted == Some(true) {
        // The engine's bound: the script's limit and what the init and profiler may use of it.
        limits_hit.push(LimitHit::Processes {
            max: limits.pids + crate::plan::RESERVED_PIDS,
        });
    }
    if oom && outcome != SandboxOutcome::OutOfMemory {
        limits_hit.push(LimitHit::Memory {
            mib: limits.memory_mib,
        });
    }
    if report.tmp_full == Some(true) {
        limits_hit.push(LimitHit::Tmp { mib: tmp_mib });
    }
    let mut streams = Vec::new();
    for (name, stream) in [("stdout", &report.stdout), ("stderr", &report.stderr)] {
        let truncated = stream.truncated;
        if truncated {
            limits_hit.push(LimitHit::Output {
                stream: name.to_owned(),
                bytes: stream.bytes,
            });
        }
        // The init kept at most this much; a longer tail is not its.
        let (tail, cut) = tail(stream.tail.as_bytes(), crate::config::MAX_OUTPUT_TAIL_BYTES);
        streams.push((tail, truncated || cut));
    }
    let [
        (stdout_tail, stdout_truncated),
        (stderr_tail, stderr_truncated),
    ] = <[_; 2]>::try_from(streams).unwrap_or_else(|_| unreachable!("two streams"));
    let profile = folded(&report.profile);
    let profile_missing = if profile.is_empty() {
        missing_profile(&report.profiler)
    } else {
        String::new()
    };
    Read {
        outcome,
        stdout_tail,
        stdout_truncated,
        stderr_tail,
        stderr_truncated,
        profile,
        profile_missing,
        limits_hit,
    }
}

/// The report: the init's stdout is one JSON line and nothing else; anything more means it was
/// written to by someone else, and none of it is believed.
pub fn report(stdout: &[u8]) -> Option<Report> {
    let mut lines = stdout
        .split(|b| *b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace));
    let only = lines.next()?;
    if lines.next().is_some() {
        return None;
    }
    serde_json::from_slice(only).ok()
}

/// A run whose init said nothing: killed from outside, by memory, or the runner's fault.
fn unreported(finished: &Finished) -> Read {
    let outcome = if finished.killed_at_limit {
        SandboxOutcome::TimedOut
    } else if finished.oom_killed || finished.killed_from_outside {
        SandboxOutcome::OutOfMemory
    } else {
        let (said, _) = tail(&finished.stderr, 300);
        SandboxOutcome::Failed {
            reason: format!(
                "the sandbox init ended without a report{}{}",
                finished
                    .exit_code
                    .map(|code| format!(" (exit status {code})"))
                    .unwrap_or_default(),
                match said.trim() {
                    "" => String::new(),
                    said => format!(": {said}"),
                }
            ),
        }
    };
    Read {
        outcome,
        stdout_tail: String::new(),
        stdout_truncated: false,
        stderr_tail: String::new(),
        stderr_truncated: false,
        profile: Folded::new(),
        profile_missing: "the run ended before the profiler reported".to_owned(),
        limits_hit: Vec::new(),
    }
}

fn missing_profile(profiler: &ProfilerReport) -> String {
    let said = profiler
        .stderr
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("")
        .trim();
    match profiler.status {
        Some(0) => "the script ended before the profiler took a sample".to_owned(),
        _ if said.is_empty() => "the profiler stopped without a word".to_owned(),
        _ => format!("the profiler stopped: {}", cut(said, MAX_FRAME_CHARS)),
    }
}

/// py-spy's raw output as folded stacks: `process N:"cmd"` frames dropped (a command line is not
/// the script's frame), names and depth bounded, and a line cut by the size cap dropped.
fn folded(profile: &ProfileReport) -> Folded {
    let mut text = profile.folded.as_str();
    if profile.truncated
        && let Some((whole, _)) = text.rsplit_once('\n')
    {
        text = whole;
    }
    let mut folded = Folded::new();
    for line in text.lines() {
        if let Some((stack, count)) = parse_stack(line) {
            let total = folded.entry(stack).or_default();
            *total = total.saturating_add(count);
        }
    }
    folded
}

/// One folded line; `None` for what is not the script's: a stack of an interpreter starting (a
/// child python's; the first is held past its start), whose every frame is start-up code (the
/// frozen import machinery and site, the codec search, the site hook). A child run with
/// `python3 -m` keeps its stacks: they reach its module.
fn parse_stack(line: &str) -> Option<(String, u64)> {
    let (stack, count) = line.trim_end().rsplit_once(' ')?;
    let count = count.parse::<u64>().ok()?;
    let frames: Vec<&str> = stack
        .split(';')
        .filter(|frame| !(frame.starts_with("process ") && frame.contains(":\"")))
        .collect();
    let starting = |frame: &&str| {
        (frame.ends_with(">)") && frame.contains("(<frozen "))
            || frame.contains(" (encodings/")
            || frame.ends_with(" (sitecustomize.py)")
            || frame.ends_with("/sitecustomize.py)")
    };
    if frames.iter().all(starting) {
        return None;
    }
    let mut kept: Vec<String> = frames
        .iter()
        .take(MAX_DEPTH)
        .map(|frame| cut(frame, MAX_FRAME_CHARS))
        .collect();
    if frames.len() > MAX_DEPTH {
        kept.push(format!("… {} deeper frames", frames.len() - MAX_DEPTH));
    }
    Some((kept.join(";"), count))
}

/// At most `max` characters, ending in `…` when cut.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut kept: String = text.chars().take(max - 1).collect();
    kept.push('…');
    kept
}

/// The last `max` bytes as text (invalid UTF-8 replaced), and whether anything was cut.
pub fn tail(bytes: &[u8], max: usize) -> (String, bool) {
    if bytes.len() <= max {
        return (String::from_utf8_lossy(bytes).into_owned(), false);
    }
    let mut start = bytes.len() - max;
    // Start at a character boundary when the cut lands inside one.
    while start < bytes.len() && (bytes[start] & 0b1100_0000) == 0b1000_0000 {
        start += 1;
    }
    (String::from_utf8_lossy(&bytes[start..]).into_owned(), true)
}

#[cfg(test)]
mod tests;
