//! What a run is, before anything runs (pure): the script accepted or refused, the limits it gets,
//! and the container that runs it — every hardening flag in one place, so a test can read them.
//!
//! A language is an image, a command and a profiler output parser; Python is the first: py-spy
//! records `python3 -I /work/script.py` (with `--subprocesses`, so the shell and `timeout` around
//! it do not hide it), `timeout -s KILL` enforces the wall clock from inside, and the container is
//! killed from outside a little later as a backstop.

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig};
use proto::sandbox::{Language, SandboxLimits};

use crate::config::SandboxConfig;

/// The label every sandbox container carries, so leftovers of a crashed runner can be found.
pub const LABEL: &str = "dev.flamethread.sandbox";
/// The label that names the request a container runs.
pub const REQUEST_LABEL: &str = "dev.flamethread.request";

/// The user scripts run as (`nobody`).
pub const USER: &str = "65534:65534";

/// The shell script that runs and profiles the user's script; it writes py-spy's folded stacks
/// and then the script's exit status to stderr, each line starting with the run's marker.
pub const RUN_SH: &str = r#"# flamethread sandbox: runs /work/script.py under py-spy. Lines on stderr that start with the
# marker are the runner's: the folded stacks, then the script's exit status last.
wall="$1"; marker="$2"; rate="$3"
mkdir -p /tmp/.ft
# py-spy may end, and kill the shell it started, as soon as python exits, before that shell has
# written the status. So python's own parent, a shell py-spy does not kill, writes it; the
# outer shell writes timeout's status (137 at the wall clock) as the fallback.
py-spy record --subprocesses --nonblocking --nolineno --rate "$rate" --format raw \
    --output /tmp/.ft/profile -- \
    /bin/sh -c 'timeout -s KILL "$0" /bin/sh -c "python3 -I /work/script.py </dev/null; echo \$? > /tmp/.ft/exit"; echo $? > /tmp/.ft/exit.outer' "$wall"
i=0
while [ ! -s /tmp/.ft/exit ] && [ ! -s /tmp/.ft/exit.outer ] && [ "$i" -lt 10 ]; do sleep 0.1; i=$((i + 1)); done
[ -s /tmp/.ft/exit ] || cp /tmp/.ft/exit.outer /tmp/.ft/exit 2>/dev/null
# Let the engine take in what the script printed first: its log has a size limit, and what is cut
# when it is reached is the oldest, so the report goes last, every line marked, the status last.
sleep 1
sed "s/^/$marker /" /tmp/.ft/profile >&2 2>/dev/null
echo "$marker exit=$(cat /tmp/.ft/exit 2>/dev/null || echo unknown)" >&2
"#;

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

/// The container that runs one script: no network, read-only root, no capabilities, no new
/// privileges, an unprivileged user, limited processes, memory (no swap), CPU and `/tmp`, the
/// script mounted read-only, capped logs, and an environment with nothing in it.
pub fn container(
    language: Language,
    config: &SandboxConfig,
    limits: SandboxLimits,
    job_dir: &str,
    request_id: &str,
    marker: &str,
) -> ContainerCreateBody {
    let Language::Python = language;
    let memory = i64::from(limits.memory_mib) << 20;
    ContainerCreateBody {
        image: Some(config.image.clone()),
        cmd: Some(vec![
            "/bin/sh".to_owned(),
            "/work/run.sh".to_owned(),
            limits.wall_seconds.to_string(),
            marker.to_owned(),
            config.profile_rate.to_string(),
        ]),
        user: Some(USER.to_owned()),
        working_dir: Some("/tmp".to_owned()),
        // Only what Python needs; nothing of the runner's environment.
        env: Some(vec![
            "PATH=/usr/local/bin:/usr/bin:/bin".to_owned(),
            "HOME=/tmp".to_owned(),
            "LANG=C.UTF-8".to_owned(),
            "PYTHONDONTWRITEBYTECODE=1".to_owned(),
        ]),
        network_disabled: Some(true),
        attach_stdin: Some(false),
        open_stdin: Some(false),
        tty: Some(false),
        labels: Some(HashMap::from([
            (LABEL.to_owned(), "1".to_owned()),
            (REQUEST_LABEL.to_owned(), request_id.to_owned()),
        ])),
        host_config: Some(HostConfig {
            network_mode: Some("none".to_owned()),
            readonly_rootfs: Some(true),
            cap_drop: Some(vec!["ALL".to_owned()]),
            security_opt: Some(vec!["no-new-privileges".to_owned()]),
            pids_limit: Some(i64::from(limits.pids)),
            memory: Some(memory),
            memory_swap: Some(memory),
            nano_cpus: Some(i64::from(limits.cpu_millis) * 1_000_000),
            tmpfs: Some(HashMap::from([(
                "/tmp".to_owned(),
                format!("rw,nosuid,nodev,noexec,size={}m,mode=1777", config.tmp_mib),
            )])),
            binds: Some(vec![format!("{job_dir}:/work:ro")]),
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
mod tests {
    use super::*;

    #[test]
    fn every_run_is_locked_down() {
        let config = SandboxConfig::default();
        let body = container(
            Language::Python,
            &config,
            limits(None, &config),
            "/srv/jobs/r1",
            "r1",
            "MARK",
        );
        let host = body.host_config.as_ref().unwrap();
        assert_eq!(body.network_disabled, Some(true));
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        assert_eq!(host.readonly_rootfs, Some(true));
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(
            host.security_opt,
            Some(vec!["no-new-privileges".to_owned()])
        );
        assert_eq!(body.user.as_deref(), Some(USER));
        assert_eq!(host.memory, host.memory_swap, "no swap beyond memory");
        assert_eq!(host.memory, Some(256 << 20));
        assert_eq!(host.pids_limit, Some(64));
        assert_eq!(host.nano_cpus, Some(1_000_000_000));
        assert_eq!(host.binds, Some(vec!["/srv/jobs/r1:/work:ro".to_owned()]));
        assert!(host.tmpfs.as_ref().unwrap()["/tmp"].contains("size=16m"));
        assert!(host.privileged.is_none() && host.devices.is_none() && host.cap_add.is_none());
        let env = body.env.unwrap().join("\n");
        assert!(!env.contains("NATS") && !env.contains("TOKEN"), "{env}");
        assert_eq!(body.labels.unwrap()[LABEL], "1");
    }

    #[test]
    fn limits_never_exceed_the_configuration() {
        let config = SandboxConfig::default();
        let asked = SandboxLimits {
            wall_seconds: 10_000,
            memory_mib: 1 << 20,
            cpu_millis: 64_000,
            pids: 1 << 20,
        };
        assert_eq!(limits(Some(asked), &config), limits(None, &config));
        let small = SandboxLimits {
            wall_seconds: 5,
            memory_mib: 64,
            cpu_millis: 500,
            pids: 16,
        };
        assert_eq!(limits(Some(small), &config), small);
    }

    #[test]
    fn scripts_are_checked_before_any_container() {
        assert!(check_script(b"", 100).unwrap_err().contains("empty"));
        assert!(check_script(b"  \n\t", 100).unwrap_err().contains("empty"));
        assert!(
            check_script(&[b'x'; 101], 100)
                .unwrap_err()
                .contains("up to 100 bytes")
        );
        assert!(
            check_script(b"print(1)\0", 100)
                .unwrap_err()
                .contains("not a text script")
        );
        assert!(
            check_script(&[0xff, 0xfe, b'a'], 100)
                .unwrap_err()
                .contains("non-UTF-8")
        );
        assert_eq!(check_script("print('héllo')".as_bytes(), 100), Ok(()));
        assert_eq!(container_name("T1/../x y"), "ft-sandbox-T1____x_y");
    }
}
