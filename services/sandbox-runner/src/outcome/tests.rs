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
            r["profile"] =
                serde_json::json!({"folded": text, "bytes": text.len() + 100, "truncated": true});
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
