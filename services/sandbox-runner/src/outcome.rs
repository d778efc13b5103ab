//! What a run said, read back (pure): the script's output tails, its exit status and its profile
//! from what the container wrote, and how the run ended.

use std::time::Duration;

use profiling::Folded;
use proto::sandbox::SandboxOutcome;

/// What the container left: its output as the engine kept it, and how it stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Finished {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The runner killed it at the outer wall-clock limit.
    pub killed_at_limit: bool,
    /// The kernel's OOM killer struck inside it.
    pub oom_killed: bool,
    pub wall: Duration,
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
}

/// Reads `finished`; `marker` is the run's own marker line, `wall_limit` the script's limit.
pub fn read(finished: &Finished, marker: &str, wall_limit: Duration, tail_bytes: usize) -> Read {
    let (script_stderr, exit, profile) = split_report(&finished.stderr, marker);
    let stderr = strip_profiler_lines(&script_stderr);
    let stdout = strip_profiler_lines(&finished.stdout);
    let (stdout_tail, stdout_truncated) = tail(&stdout, tail_bytes);
    let (stderr_tail, stderr_truncated) = tail(&stderr, tail_bytes);
    // `timeout -s KILL` ends a script at the limit with 137, as the OOM killer's SIGKILL does.
    let near_limit = finished.wall + Duration::from_millis(1500) >= wall_limit;
    let outcome = if finished.oom_killed {
        SandboxOutcome::OutOfMemory
    } else if finished.killed_at_limit || (exit == Some(137) && near_limit) {
        SandboxOutcome::TimedOut
    } else {
        match exit {
            Some(code) => SandboxOutcome::Exited { code },
            None => SandboxOutcome::Failed {
                reason: cut_short(&stderr),
            },
        }
    };
    Read {
        outcome,
        stdout_tail,
        stdout_truncated,
        stderr_tail,
        stderr_truncated,
        profile,
    }
}

/// Why a run ended without the script's exit status, as far as its output tells.
fn cut_short(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let out_of_processes = [
        "Resource temporarily unavailable",
        "WouldBlock",
        "can't fork",
    ]
    .iter()
    .any(|sign| text.contains(sign));
    if out_of_processes {
        "the run was cut short: the script used up the sandbox's process limit, and the profiler could not go on".to_owned()
    } else {
        "the run was cut short before the script's exit status was known".to_owned()
    }
}

/// The script's stderr, and the runner's report: the lines that start with the marker (stacks,
/// then `exit=<status>`), wherever the engine's log kept them.
fn split_report(stderr: &[u8], marker: &str) -> (Vec<u8>, Option<i64>, Folded) {
    let prefix = format!("{marker} ");
    let mut script = Vec::with_capacity(stderr.len());
    let mut exit = None;
    let mut folded = Folded::new();
    for line in stderr.split_inclusive(|b| *b == b'\n') {
        let Some(report) = line
            .strip_prefix(prefix.as_bytes())
            .and_then(|rest| std::str::from_utf8(rest).ok())
        else {
            script.extend_from_slice(line);
            continue;
        };
        let report = report.trim_end();
        if let Some(status) = report.strip_prefix("exit=") {
            exit = status.trim().parse::<i64>().ok();
        } else if let Some((stack, count)) = parse_stack(report) {
            *folded.entry(stack).or_default() += count;
        }
    }
    (script, exit, folded)
}

/// One line of py-spy's raw output, `process N:"cmd"` frames dropped.
fn parse_stack(line: &str) -> Option<(String, u64)> {
    let (stack, count) = line.rsplit_once(' ')?;
    let count = count.parse::<u64>().ok()?;
    let frames: Vec<&str> = stack
        .split(';')
        .filter(|frame| !(frame.starts_with("process ") && frame.contains(":\"")))
        .collect();
    (!frames.is_empty()).then(|| (frames.join(";"), count))
}

/// Drops py-spy's own progress lines (`py-spy> …`, written to the script's stdout) and the
/// blank lines it puts around the script's output.
fn strip_profiler_lines(output: &[u8]) -> Vec<u8> {
    let lines: Vec<&[u8]> = output.split_inclusive(|b| *b == b'\n').collect();
    let is_banner =
        |line: &[u8], what: &[u8]| line.starts_with(b"py-spy> ") && line[8..].starts_with(what);
    let mut kept = Vec::with_capacity(output.len());
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with(b"py-spy> ") {
            continue;
        }
        let blank = *line == b"\n";
        let after_banner = i > 0 && is_banner(lines[i - 1], b"Sampling");
        let before_stop = lines
            .get(i + 1)
            .is_some_and(|next| is_banner(next, b"Stopped"));
        if blank && (after_banner || before_stop) {
            continue;
        }
        kept.extend_from_slice(line);
    }
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

    const MARK: &str = "FT-MARK-1234";

    fn finished(stdout: &str, stderr: &str) -> Finished {
        Finished {
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
            wall: Duration::from_secs(2),
            ..Finished::default()
        }
    }

    #[test]
    fn a_finished_run_has_its_status_profile_and_output() {
        let stderr = format!(
            "Traceback: oops\n{MARK} process 9:\"\";process 11:\"timeout -s KILL 10 python3 /work/script.py\";process 12:\"python3 -I /work/script.py\";<module> (script.py);burn (script.py) 74\n{MARK} process 12:\"python3\";<module> (script.py) 2\n{MARK} exit=3\n"
        );
        let stdout = "py-spy> Sampling process 100 times a second. Press Control-C to exit.\n\nhello\n\n\npy-spy> Stopped sampling because process exited\npy-spy> Wrote raw flamegraph data\n";
        let read = read(
            &finished(stdout, &stderr),
            MARK,
            Duration::from_secs(30),
            1024,
        );
        assert_eq!(read.outcome, SandboxOutcome::Exited { code: 3 });
        assert_eq!(
            read.stdout_tail, "hello\n\n",
            "the script's own blank line stays"
        );
        assert_eq!(read.stderr_tail, "Traceback: oops\n");
        assert_eq!(read.profile["<module> (script.py);burn (script.py)"], 74);
        assert_eq!(read.profile["<module> (script.py)"], 2);
    }

    #[test]
    fn a_script_cannot_forge_the_report_with_an_earlier_marker() {
        let stderr = format!(
            "FT-MARK-guess exit=0\nFT-MARK-guess fake;stack 999\n{MARK} real 5\n{MARK} exit=1\n"
        );
        let read = read(&finished("", &stderr), MARK, Duration::from_secs(30), 1024);
        assert_eq!(read.outcome, SandboxOutcome::Exited { code: 1 });
        assert_eq!(read.profile.len(), 1);
        assert!(
            read.stderr_tail.contains("fake;stack 999"),
            "that is the script's output"
        );
    }

    #[test]
    fn a_report_cut_at_its_start_by_the_log_limit_keeps_what_survived() {
        // The engine's log dropped the first report lines; interleaved output stays the script's.
        let stderr = format!("yyyy\n{MARK} main;b 2\nyyyy\n{MARK} exit=137\n");
        let read = read(
            &Finished {
                wall: Duration::from_secs(30),
                ..finished("", &stderr)
            },
            MARK,
            Duration::from_secs(30),
            64,
        );
        assert_eq!(read.outcome, SandboxOutcome::TimedOut);
        assert_eq!(read.profile["main;b"], 2);
        assert_eq!(read.stderr_tail, "yyyy\nyyyy\n");
    }

    #[test]
    fn limits_are_told_apart() {
        let at_limit = Finished {
            wall: Duration::from_secs(30),
            ..finished("", &format!("{MARK} a 1\n{MARK} exit=137\n"))
        };
        let timed_out = read(&at_limit, MARK, Duration::from_secs(30), 64);
        assert_eq!(timed_out.outcome, SandboxOutcome::TimedOut);
        assert_eq!(timed_out.profile.len(), 1, "the profile survives the limit");
        let early_kill = finished("", &format!("{MARK} exit=137\n"));
        assert_eq!(
            read(&early_kill, MARK, Duration::from_secs(30), 64).outcome,
            SandboxOutcome::Exited { code: 137 },
            "a script that kills itself is not a timeout"
        );
        let oom = Finished {
            oom_killed: true,
            ..finished("", "")
        };
        assert_eq!(
            read(&oom, MARK, Duration::from_secs(30), 64).outcome,
            SandboxOutcome::OutOfMemory
        );
        let killed = Finished {
            killed_at_limit: true,
            ..finished("", "")
        };
        assert_eq!(
            read(&killed, MARK, Duration::from_secs(30), 64).outcome,
            SandboxOutcome::TimedOut
        );
        assert!(matches!(
            read(
                &finished("", "no marker"),
                MARK,
                Duration::from_secs(30),
                64
            )
            .outcome,
            SandboxOutcome::Failed { .. }
        ));
        let forked = finished(
            "",
            &format!(
                "failed to spawn thread: Os {{ code: 11, kind: WouldBlock }}\n{MARK} exit=unknown\n"
            ),
        );
        let SandboxOutcome::Failed { reason } =
            read(&forked, MARK, Duration::from_secs(30), 64).outcome
        else {
            panic!("cut short")
        };
        assert!(reason.contains("process limit"), "{reason}");
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
