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
mod tests {
    use super::*;

    const LIMITS: SandboxLimits = SandboxLimits {
        wall_seconds: 30,
        memory_mib: 256,
        cpu_millis: 1000,
        pids: 64,
    };

    fn report_line(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
        let mut report = serde_json::json!({
            "exit_code": 3, "signal": null, "timed_out": false, "pids_exhausted": false,
            "tmp_full": false, "held_ms": 12,
            "stdout": {"tail": "hello\n", "bytes": 6, "truncated": false},
            "stderr": {"tail": "Traceback: oops\n", "bytes": 16, "truncated": false},
            "profile": {"folded": "process 12:\"python3 -s /work/script.py\";<module> (script.py);burn (script.py) 74\nprocess 12:\"python3\";<module> (script.py) 2\nprocess 12:\"python3\";_find_and_load (<frozen importlib._bootstrap>);<module> (<frozen site>) 1\nprocess 13:\"python3\";search_function (encodings/__init__.py);<module> (encodings/utf_8.py) 1\n_find_and_load (<frozen importlib._bootstrap>);<module> (<frozen site>);execsitecustomize (<frozen site>);<module> (/opt/flamethread/site/sitecustomize.py);_flamethread_hold (/opt/flamethread/site/sitecustomize.py) 1\n", "bytes": 220, "truncated": false},
            "profiler": {"status": 0, "stderr": ""}
        });
        edit(&mut report);
        format!("{report}\n").into_bytes()
    }

    fn finished(stdout: Vec<u8>) -> Finished {
        Finished {
            stdout,
            wall: Duration::from_secs(2),
            ..Finished::default()
        }
    }

    #[test]
    fn a_finished_run_has_its_status_profile_and_output() {
        let read = read(&finished(report_line(|_| {})), LIMITS, 16);
        assert_eq!(read.outcome, SandboxOutcome::Exited { code: 3 });
        assert_eq!(read.stdout_tail, "hello\n");
        assert_eq!(read.stderr_tail, "Traceback: oops\n");
        assert_eq!(read.profile["<module> (script.py);burn (script.py)"], 74);
        assert_eq!(read.profile["<module> (script.py)"], 2);
        assert_eq!(
            read.profile.len(),
            2,
            "the interpreter's start is not the script's"
        );
        assert!(read.limits_hit.is_empty() && read.profile_missing.is_empty());
    }

    #[test]
    fn the_report_is_the_inits_one_line_or_nothing() {
        // A second line means someone else wrote there: none of it is believed.
        let mut twice = report_line(|_| {});
        twice.extend(report_line(|r| r["exit_code"] = 0.into()));
        assert_eq!(report(&twice), None);
        assert!(report(&report_line(|_| {})).is_some());
        // A line that is not a report (or a report cut short) is no report, and the run is the
        // runner's failure, not an outcome.
        let cut = report_line(|_| {});
        let read = read(&finished(cut[..cut.len() / 2].to_vec()), LIMITS, 16);
        assert!(
            matches!(read.outcome, SandboxOutcome::Failed { .. }),
            "{read:?}"
        );
    }

    #[test]
    fn limits_are_told_apart() {
        let timed_out = read(
            &finished(report_line(|r| {
                r["timed_out"] = true.into();
                r["exit_code"] = serde_json::Value::Null;
                r["signal"] = 9.into();
            })),
            LIMITS,
            16,
        );
        assert_eq!(timed_out.outcome, SandboxOutcome::TimedOut);
        assert_eq!(timed_out.profile.len(), 2, "the profile survives the limit");
        let killed_itself = read(
            &finished(report_line(|r| {
                r["exit_code"] = serde_json::Value::Null;
                r["signal"] = 9.into();
            })),
            LIMITS,
            16,
        );
        assert_eq!(
            killed_itself.outcome,
            SandboxOutcome::Exited { code: 137 },
            "a script that kills itself is not a timeout"
        );
        let oom = Finished {
            oom_killed: true,
            ..finished(report_line(|r| {
                r["exit_code"] = serde_json::Value::Null;
                r["signal"] = 9.into();
            }))
        };
        assert_eq!(read(&oom, LIMITS, 16).outcome, SandboxOutcome::OutOfMemory);
        // gVisor: the host's OOM killer took the whole sandbox, init and all, with no flag.
        let sandbox_killed = Finished {
            killed_from_outside: true,
            ..finished(Vec::new())
        };
        assert_eq!(
            read(&sandbox_killed, LIMITS, 16).outcome,
            SandboxOutcome::OutOfMemory
        );
        assert!(matches!(
            read(&finished(Vec::new()), LIMITS, 16).outcome,
            SandboxOutcome::Failed { .. }
        ));
        let child_oom = Finished {
            oom_killed: true,
            ..finished(report_line(|_| {}))
        };
        let child_oom = read(&child_oom, LIMITS, 16);
        assert_eq!(child_oom.outcome, SandboxOutcome::Exited { code: 3 });
        assert_eq!(child_oom.limits_hit, [LimitHit::Memory { mib: 256 }]);
        let forks = read(
            &finished(report_line(|r| {
                r["pids_exhausted"] = true.into();
                r["tmp_full"] = true.into();
                r["stdout"]["bytes"] = (1u64 << 30).into();
                r["stdout"]["truncated"] = true.into();
            })),
            LIMITS,
            16,
        );
        assert_eq!(forks.outcome, SandboxOutcome::Exited { code: 3 });
        assert_eq!(
            forks.limits_hit,
            [
                LimitHit::Processes { max: 64 + 16 },
                LimitHit::Tmp { mib: 16 },
                LimitHit::Output {
                    stream: "stdout".into(),
                    bytes: 1 << 30
                }
            ]
        );
        assert!(forks.stdout_truncated && !forks.stderr_truncated);
        let backstop = Finished {
            killed_at_limit: true,
            ..finished(Vec::new())
        };
        assert_eq!(
            read(&backstop, LIMITS, 16).outcome,
            SandboxOutcome::TimedOut
        );
        let crashed = Finished {
            stderr: b"Traceback ...\nModuleNotFoundError: ctypes\n".to_vec(),
            ..finished(Vec::new())
        };
        let SandboxOutcome::Failed { reason } = read(&crashed, LIMITS, 16).outcome else {
            panic!("the init's fault is the runner's")
        };
        assert!(reason.contains("ModuleNotFoundError"), "{reason}");
    }

    #[test]
    fn a_missing_profile_says_why() {
        let read = read(
            &finished(report_line(|r| {
                r["profile"] = serde_json::json!({"folded": "", "bytes": 0, "truncated": false});
                r["profiler"] =
                    serde_json::json!({"status": 1, "stderr": "Error: Permission Denied\n"});
            })),
            LIMITS,
            16,
        );
        assert!(read.profile.is_empty());
        assert_eq!(
            read.profile_missing,
            "the profiler stopped: Error: Permission Denied"
        );
    }

    #[test]
    fn names_and_depth_are_bounded_and_a_cut_line_is_dropped() {
        let huge = "f".repeat(1 << 20);
        let deep = vec!["d (s.py)"; 1000].join(";");
        let text = format!("{huge} (s.py) 5\n{deep} 7\nmain (s.py);partial_na");
        let read = read(
            &finished(report_line(|r| {
                r["profile"] = serde_json::json!({"folded": text, "bytes": text.len() + 100, "truncated": true});
            })),
            LIMITS,
            16,
        );
        assert_eq!(read.profile.len(), 2, "{:?}", read.profile.keys());
        assert!(read.profile.keys().all(|stack| {
            stack
                .split(';')
                .all(|frame| frame.chars().count() <= MAX_FRAME_CHARS)
        }));
        let deepest = read.profile.keys().map(|s| s.split(';').count()).max();
        assert_eq!(deepest, Some(MAX_DEPTH + 1));
    }

    #[test]
    fn tails_keep_the_end_and_say_they_were_cut() {
        assert_eq!(tail(b"abc", 8), ("abc".to_owned(), false));
        assert_eq!(tail(b"abcdef", 3), ("def".to_owned(), true));
        let text = "ééé".as_bytes();
        let (cut, truncated) = tail(text, 3);
        assert!(truncated);
        assert_eq!(cut, "é", "never half a character");
        let (binary, _) = tail(&[0xff, 0xfe, b'o', b'k'], 16);
        assert!(binary.ends_with("ok"));
    }
}
