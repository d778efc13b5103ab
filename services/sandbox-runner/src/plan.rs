//! What a run is, before anything runs (pure): the script accepted or refused, the limits it gets,
//! and the container that runs it — every hardening flag in one place, so a test can read them.
//!
//! A run's PID 1 is the sandbox init (`init/init.py`, mounted read-only at `/opt/flamethread`):
//! container root with four capabilities (ptrace, setuid, setgid, kill), it starts the script as another user with none, held
//! by a site hook until py-spy (attached from outside the script's process tree) samples, waits
//! for it under the wall clock, and prints one JSON report ([`crate::outcome::Report`]) on the
//! container's stdout. The script's output goes to pipes the init reads, so nothing the script
//! writes can reach that stdout, and the init is not dumpable, so `/proc/1` is closed to it.
//! The container is also killed from outside a little after the wall clock, as a backstop.

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig, ResourcesUlimits};
use proto::sandbox::{Language, SandboxLimits};
use serde::Serialize;

use crate::config::{SandboxConfig, SandboxRuntime};

/// The label every sandbox container carries, so leftovers of a crashed runner can be found.
pub const LABEL: &str = "dev.flamethread.sandbox";
/// The label that names the request a container runs.
pub const REQUEST_LABEL: &str = "dev.flamethread.request";

/// The user scripts run as under runc (`nobody`). Under gVisor, whose ptrace does not let the
/// profiler read another user's memory, scripts keep root's uid but no capability at all.
pub const SCRIPT_USER: (u32, u32) = (65534, 65534);

/// The sandbox init, PID 1 of every run.
pub const INIT_PY: &str = include_str!("init/init.py");
/// The site hook that holds a run's first python until the profiler is attached.
pub const SITECUSTOMIZE_PY: &str = include_str!("init/sitecustomize.py");
/// Where the init and its site hook are mounted (read-only).
pub const INIT_DIR: &str = "/opt/flamethread";

/// Processes the init and the profiler need beyond the script's limit.
pub const RESERVED_PIDS: u32 = 16;
/// Under gVisor the engine's process limit counts the sandbox kernel's own host threads (tens,
/// more under load), not the script's processes, which gVisor keeps inside its own memory: so the
/// limit there is a host-side bound this much higher, and a fork bomb runs into the memory limit.
pub const GVISOR_SENTRY_PIDS: u32 = 512;
/// Memory the init and the profiler need beyond the script's limit, MiB.
pub const RESERVED_MEMORY_MIB: u32 = 128;
/// CPU the profiler needs beyond the script's share, thousandths of a core.
pub const RESERVED_CPU_MILLIS: u32 = 250;
/// Open files a script may have.
pub const NOFILE: u64 = 1024;
/// Bytes of folded stacks a run's report carries at most (and never more than a sixteenth of the
/// engine's log: JSON may write a character of a name as six, and the engine escapes it again).
pub const MAX_PROFILE_BYTES: u64 = 2 << 20;
/// Bytes of py-spy's speedscope file the init reads at most (one entry per sample: 20 s at 1 kHz
/// of 30 frames is about 2 MiB); a larger profile is left out, and the report says so.
pub const MAX_SPEEDSCOPE_BYTES: u64 = 16 << 20;
/// Longest a script is held waiting for the profiler to attach before it runs unprofiled.
pub const HOLD_SECONDS: u64 = 5;
/// Time py-spy gets to write its stacks after the script ended.
pub const PROFILER_GRACE_SECONDS: u64 = 10;

/// What the init is told (its only argument, JSON): nothing in it is secret, since the script
/// can read `/proc/1/cmdline`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InitPlan {
    pub command: Vec<String>,
    pub env: HashMap<String, String>,
    pub script_user: (u32, u32),
    pub nofile: u64,
    pub wall_seconds: u64,
    pub tail_bytes: usize,
    pub profile_bytes: u64,
    pub speedscope_bytes: u64,
    pub max_frame_chars: usize,
    pub max_depth: usize,
    pub hold_seconds: u64,
    pub profiler_grace_seconds: u64,
    pub profiler: ProfilerPlan,
}

/// The profiler the init attaches (`--pid` and `--output` are its to add).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfilerPlan {
    pub command: Vec<String>,
}

/// The name the script runs under, so its frames and tracebacks name the file that was shared
/// (`slow_report.py`, not a name of ours): the shared name when it is a plain Python file name
/// (letters, digits, `_`, `-`, `.`, ending in `.py`, at most 64 characters, not hidden), else
/// `script.py`.
pub fn script_file_name(shared: &str) -> String {
    let base = shared.rsplit(['/', '\\']).next().unwrap_or_default();
    let plain = base
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    let fits = (4..=64).contains(&base.len()) && base.ends_with(".py");
    if plain && fits && !base.starts_with(['.', '-']) {
        base.to_owned()
    } else {
        "script.py".to_owned()
    }
}

/// The init's plan for a Python script: `python3 -s /work/<name>` (no user site; the site hook
/// comes from `PYTHONPATH`), an environment with nothing of the runner's in it, and py-spy
/// recording the script and its children at the runtime's rate.
pub fn init_plan(
    language: Language,
    config: &SandboxConfig,
    limits: SandboxLimits,
    script_name: &str,
) -> InitPlan {
    let Language::Python = language;
    let env = [
        ("PATH", "/usr/local/bin:/usr/bin:/bin"),
        ("HOME", "/tmp"),
        ("LANG", "C.UTF-8"),
        ("PYTHONDONTWRITEBYTECODE", "1"),
        ("PYTHONPATH", "/opt/flamethread/site"),
    ];
    InitPlan {
        command: vec![
            "python3".to_owned(),
            "-s".to_owned(),
            format!("/work/{script_name}"),
        ],
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        script_user: match config.runtime {
            SandboxRuntime::Runc => SCRIPT_USER,
            SandboxRuntime::Runsc => (0, 0),
        },
        nofile: NOFILE,
        wall_seconds: u64::from(limits.wall_seconds),
        tail_bytes: config.output_tail_bytes,
        profile_bytes: MAX_PROFILE_BYTES.min(config.engine_log_bytes / 16),
        speedscope_bytes: MAX_SPEEDSCOPE_BYTES,
        max_frame_chars: crate::outcome::MAX_FRAME_CHARS,
        max_depth: crate::outcome::MAX_DEPTH,
        hold_seconds: HOLD_SECONDS,
        profiler_grace_seconds: PROFILER_GRACE_SECONDS,
        profiler: ProfilerPlan {
            command: profiler_command(config),
        },
    }
}

/// Why a script is refused before any container starts.
pub fn check_script(bytes: &[u8], max: u64) -> Result<(), String> {
    if bytes.is_empty() || bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("the file is empty: there is nothing to run".to_owned());
    }
    if bytes.len() as u64 > max {
        return Err(format!(
            "the script is {} bytes; the sandbox takes scripts up to {max} bytes",
            bytes.len()
        ));
    }
    if bytes.contains(&0) || std::str::from_utf8(bytes).is_err() {
        return Err("this is not a text script (it has binary or non-UTF-8 content)".to_owned());
    }
    Ok(())
}

/// The limits a run gets: what was asked, never more than the configuration allows.
pub fn limits(asked: Option<SandboxLimits>, config: &SandboxConfig) -> SandboxLimits {
    let most = SandboxLimits {
        wall_seconds: config.wall_limit.as_secs().max(1) as u32,
        memory_mib: config.memory_mib,
        cpu_millis: config.cpu_millis,
        pids: config.pids,
    };
    match asked {
        None => most,
        Some(asked) => SandboxLimits {
            wall_seconds: asked.wall_seconds.clamp(1, most.wall_seconds),
            memory_mib: asked.memory_mib.clamp(16, most.memory_mib),
            cpu_millis: asked.cpu_millis.clamp(100, most.cpu_millis),
            pids: asked.pids.clamp(8, most.pids),
        },
    }
}

/// The container name of a request: the same on every delivery, so a redelivered request finds
/// (and removes) what a crashed runner left.
pub fn container_name(request_id: &str) -> String {
    let safe: String = request_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    format!("ft-sandbox-{safe}")
}

/// py-spy recording the script and its children at the runtime's rate. Under runc it pauses the
/// script for each sample (a stack read while it runs can be torn: a frame without its
/// callers); under gVisor pausing costs so much that the script would run several times slower,
/// so it reads without pausing there.
fn profiler_command(config: &SandboxConfig) -> Vec<String> {
    let mut command: Vec<String> = ["py-spy", "record", "--subprocesses", "--nolineno"]
        .map(str::to_owned)
        .to_vec();
    if config.runtime == SandboxRuntime::Runsc {
        command.push("--nonblocking".to_owned());
    }
    command.extend(
        // JSON: every name arrives escaped, where the raw format would let a name with a line
        // break in it write stacks of its own.
        ["--format", "speedscope", "--rate"]
            .map(str::to_owned)
            .into_iter()
            .chain([config.sampling_rate().to_string()]),
    );
    command
}

/// The container that runs one script: no network, read-only root, all capabilities dropped but
/// the init's four (the script has none), no new privileges, limited processes, memory (no
/// swap), CPU, `/tmp` and `/dev/shm`, no core dumps, the script and the init mounted read-only,
/// capped logs, and the configured runtime (runc, or gVisor's runsc).
pub fn container(
    config: &SandboxConfig,
    limits: SandboxLimits,
    plan: &InitPlan,
    job_dir: &str,
    request_id: &str,
) -> ContainerCreateBody {
    let memory = i64::from(limits.memory_mib + RESERVED_MEMORY_MIB) << 20;
    let plan = serde_json::to_string(plan).unwrap_or_else(|_| unreachable!("plain data"));
    ContainerCreateBody {
        image: Some(config.image.clone()),
        cmd: Some(vec![
            "python3".to_owned(),
            "-I".to_owned(),
            format!("{INIT_DIR}/init.py"),
            plan,
        ]),
        user: Some("0:0".to_owned()),
        working_dir: Some("/tmp".to_owned()),
        env: Some(vec!["PATH=/usr/local/bin:/usr/bin:/bin".to_owned()]),
        network_disabled: Some(true),
        attach_stdin: Some(false),
        open_stdin: Some(false),
        tty: Some(false),
        labels: Some(HashMap::from([
            (LABEL.to_owned(), "1".to_owned()),
            (REQUEST_LABEL.to_owned(), request_id.to_owned()),
        ])),
        host_config: Some(HostConfig {
            runtime: Some(config.runtime.name().to_owned()),
            network_mode: Some("none".to_owned()),
            readonly_rootfs: Some(true),
            cap_drop: Some(vec!["ALL".to_owned()]),
            cap_add: Some(
                ["SYS_PTRACE", "SETUID", "SETGID", "KILL"]
                    .map(str::to_owned)
                    .to_vec(),
            ),
            security_opt: Some(vec!["no-new-privileges".to_owned()]),
            pids_limit: Some(i64::from(
                limits.pids
                    + RESERVED_PIDS
                    + match config.runtime {
                        SandboxRuntime::Runc => 0,
                        SandboxRuntime::Runsc => GVISOR_SENTRY_PIDS,
                    },
            )),
            memory: Some(memory),
            memory_swap: Some(memory),
            nano_cpus: Some(i64::from(limits.cpu_millis + RESERVED_CPU_MILLIS) * 1_000_000),
            ulimits: Some(vec![
                ResourcesUlimits {
                    name: Some("core".to_owned()),
                    soft: Some(0),
                    hard: Some(0),
                },
                ResourcesUlimits {
                    name: Some("nofile".to_owned()),
                    soft: Some(NOFILE as i64),
                    hard: Some(NOFILE as i64),
                },
            ]),
            shm_size: Some(i64::from(config.tmp_mib) << 20),
            tmpfs: Some(HashMap::from([(
                "/tmp".to_owned(),
                format!("rw,nosuid,nodev,noexec,size={}m,mode=1777", config.tmp_mib),
            )])),
            binds: Some(vec![
                format!("{job_dir}/script:/work:ro"),
                format!("{job_dir}/init:{INIT_DIR}:ro"),
            ]),
            ipc_mode: Some("private".to_owned()),
            init: Some(false),
            log_config: Some(HostConfigLogConfig {
                typ: Some("json-file".to_owned()),
                config: Some(HashMap::from([
                    ("max-size".to_owned(), config.engine_log_bytes.to_string()),
                    ("max-file".to_owned(), "1".to_owned()),
                ])),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;
