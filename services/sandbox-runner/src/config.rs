//! `[sandbox]`: the engine, the image, the limits every run gets and the throttles.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[sandbox]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    /// The Docker engine: empty (default) for the local socket or `DOCKER_HOST`, else a
    /// `unix://` path or `tcp://host:port` (a dind sidecar).
    pub docker_host: String,
    /// The OCI runtime runs use: `runc` (default; the engine's own) or `runsc` (gVisor: each run
    /// gets its own user-space kernel, a much stronger wall; the engine must have it registered,
    /// see deploy/sandbox/README.md). Default `runc`.
    pub runtime: SandboxRuntime,
    /// The image that runs scripts (python3 and py-spy; `deploy/sandbox/build-image.sh`).
    /// Default `flamethread-sandbox:py3`.
    pub image: String,
    /// A `docker save` archive of `image` (tar, gzipped or not), loaded into the engine
    /// whenever the engine lacks the image: a pod's engine (the dind sidecar) starts empty and
    /// cannot pull (k8s/sandbox puts the archive there from an image of its own). Empty
    /// (default): none; the image must already be in the engine.
    pub image_archive: String,
    /// A directory the runner and the engine both see at the same path (one machine, or an
    /// emptyDir shared with a dind sidecar): each run's script is written there and mounted
    /// read-only. Default `/tmp/flamethread-sandbox`.
    pub work_dir: String,
    /// Largest script accepted; larger ones are refused before any container starts.
    /// Default 262144 (256 KiB).
    pub max_script_bytes: u64,
    /// Wall-clock limit of a run (the container is killed past it). Default `30s`.
    #[serde(with = "humantime_serde")]
    pub wall_limit: Duration,
    /// Memory of a run, MiB (swap is the same: none beyond it). Default 256.
    pub memory_mib: u32,
    /// CPU of a run in thousandths of a core. Default 1000.
    pub cpu_millis: u32,
    /// Processes and threads of a run. Default 64.
    pub pids: u32,
    /// Size of the run's `/tmp` (tmpfs), MiB. Default 16.
    pub tmp_mib: u32,
    /// Bytes of stdout and of stderr kept (the end). Default 8192.
    pub output_tail_bytes: usize,
    /// Bytes of output the engine keeps per run (its log file is capped, so printing gigabytes
    /// costs no disk). Default 4194304.
    pub engine_log_bytes: u64,
    /// Runs at once on this runner; the rest wait in line (and are told their place).
    /// Default 2.
    pub concurrency: usize,
    /// Runs one person may start in a burst. Default 3.
    pub per_user_burst: u32,
    /// Runs one person may start per minute, sustained. Default 3.
    pub per_user_per_minute: u32,
    /// py-spy's sampling rate, Hz; 0 (default) picks the runtime's: 1000 under runc (py-spy's
    /// intervals are random, so a fifth of a second needs hundreds of samples to be measured
    /// within a few percent), 250 under runsc (whose memory reads are slower).
    pub profile_rate: u32,
    /// The base URL of profile-fetcher's pages, for flamegraph links (empty: no links).
    /// Default empty.
    pub pages_url: String,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            docker_host: String::new(),
            runtime: SandboxRuntime::Runc,
            image: "flamethread-sandbox:py3".to_owned(),
            image_archive: String::new(),
            work_dir: "/tmp/flamethread-sandbox".to_owned(),
            max_script_bytes: 256 << 10,
            wall_limit: Duration::from_secs(30),
            memory_mib: 256,
            cpu_millis: 1000,
            pids: 64,
            tmp_mib: 16,
            output_tail_bytes: 8192,
            engine_log_bytes: 4 << 20,
            concurrency: 2,
            per_user_burst: 3,
            per_user_per_minute: 3,
            profile_rate: 0,
            pages_url: String::new(),
        }
    }
}

/// The most of each output stream a result carries: two of them, even of control characters
/// (six bytes each in JSON), and ten bounded function names fit in NATS's 1 MiB message.
pub(crate) const MAX_OUTPUT_TAIL_BYTES: usize = 32 << 10;

/// `sandbox.runtime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxRuntime {
    Runc,
    Runsc,
}

impl SandboxRuntime {
    /// The name the engine knows it by.
    pub fn name(self) -> &'static str {
        match self {
            SandboxRuntime::Runc => "runc",
            SandboxRuntime::Runsc => "runsc",
        }
    }
}

impl SandboxConfig {
    /// py-spy's rate: the configured one, or the runtime's.
    pub fn sampling_rate(&self) -> u32 {
        match (self.profile_rate, self.runtime) {
            (0, SandboxRuntime::Runc) => 1000,
            (0, SandboxRuntime::Runsc) => 250,
            (rate, _) => rate,
        }
    }
}

impl runtime::ConfigSection for SandboxConfig {
    fn validate(&self) -> Result<(), String> {
        let positive = [
            ("sandbox.memory_mib", u64::from(self.memory_mib)),
            ("sandbox.cpu_millis", u64::from(self.cpu_millis)),
            ("sandbox.pids", u64::from(self.pids)),
            ("sandbox.tmp_mib", u64::from(self.tmp_mib)),
            ("sandbox.concurrency", self.concurrency as u64),
            ("sandbox.per_user_burst", u64::from(self.per_user_burst)),
            (
                "sandbox.per_user_per_minute",
                u64::from(self.per_user_per_minute),
            ),
            ("sandbox.max_script_bytes", self.max_script_bytes),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(format!("{key}: must be above 0"));
            }
        }
        if self.cpu_millis < 100 {
            return Err("sandbox.cpu_millis: at least 100 (a tenth of a core)".to_owned());
        }
        if self.memory_mib < 16 {
            return Err("sandbox.memory_mib: at least 16 (python alone needs about 10)".to_owned());
        }
        if self.pids < 8 {
            return Err("sandbox.pids: at least 8 (the shell, py-spy and python)".to_owned());
        }
        if self.wall_limit < Duration::from_secs(1) || self.wall_limit > Duration::from_secs(3600) {
            return Err("sandbox.wall_limit: from 1s to 1h".to_owned());
        }
        if self.profile_rate > 10_000 {
            return Err(
                "sandbox.profile_rate: at most 10000 Hz (0 picks the runtime's)".to_owned(),
            );
        }
        if self.output_tail_bytes > MAX_OUTPUT_TAIL_BYTES {
            return Err(
                "sandbox.output_tail_bytes: at most 32768 (the result must fit in one message)"
                    .to_owned(),
            );
        }
        if self.image.trim().is_empty() {
            return Err("sandbox.image: empty".to_owned());
        }
        if !(self.image_archive.is_empty() || self.image_archive.starts_with('/')) {
            return Err(format!(
                "sandbox.image_archive: {:?} is not an absolute path",
                self.image_archive
            ));
        }
        if !self.work_dir.starts_with('/') {
            return Err(format!(
                "sandbox.work_dir: {:?} is not an absolute path",
                self.work_dir
            ));
        }
        let http = self.pages_url.starts_with("http://") || self.pages_url.starts_with("https://");
        if !(self.pages_url.is_empty() || http) {
            return Err(format!(
                "sandbox.pages_url: {:?} is not an http(s) URL",
                self.pages_url
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use runtime::ConfigSection as _;

    use super::*;

    /// A change to the default config.
    type Change = fn(&mut SandboxConfig);

    /// Each bad value is refused with its key named; the defaults and the edges are accepted.
    #[test]
    fn bad_values_are_refused_naming_their_key() {
        assert_eq!(SandboxConfig::default().validate(), Ok(()));
        let with = |change: Change| {
            let mut config = SandboxConfig::default();
            change(&mut config);
            config.validate()
        };
        let refused: [(Change, &str); 12] = [
            (|c| c.memory_mib = 0, "sandbox.memory_mib"),
            (|c| c.memory_mib = 15, "sandbox.memory_mib"),
            (|c| c.cpu_millis = 99, "sandbox.cpu_millis"),
            (|c| c.pids = 7, "sandbox.pids"),
            (|c| c.concurrency = 0, "sandbox.concurrency"),
            (
                |c| c.wall_limit = Duration::from_millis(500),
                "sandbox.wall_limit",
            ),
            (|c| c.profile_rate = 10_001, "sandbox.profile_rate"),
            (
                |c| c.output_tail_bytes = MAX_OUTPUT_TAIL_BYTES + 1,
                "sandbox.output_tail_bytes",
            ),
            (|c| c.image = " ".into(), "sandbox.image"),
            (
                |c| c.image_archive = "sandbox.tar".into(),
                "sandbox.image_archive",
            ),
            (|c| c.work_dir = "tmp/runs".into(), "sandbox.work_dir"),
            (
                |c| c.pages_url = "javascript:alert(1)".into(),
                "sandbox.pages_url",
            ),
        ];
        for (change, key) in refused {
            let err = with(change).expect_err(key);
            assert!(err.starts_with(key), "{key}: {err}");
        }
        assert_eq!(
            with(|c| c.image_archive = "/var/lib/flamethread/sandbox.tar".into()),
            Ok(())
        );
        assert_eq!(with(|c| c.profile_rate = 10_000), Ok(()));
        assert_eq!(with(|c| c.pids = 8), Ok(()));
    }
}
