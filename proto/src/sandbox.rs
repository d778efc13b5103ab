//! Running a shared script in the sandbox, and what came of it.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    Correlated, Message, ObjectRef, ReplyTarget, SchemaVersion, Subject, evidence::FunctionShare,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    Python,
}

/// Limits for one run; the runner clamps them to its configured maxima.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SandboxLimits {
    pub wall_seconds: u32,
    pub memory_mib: u32,
    /// CPU quota in thousandths of a core.
    pub cpu_millis: u32,
    pub pids: u32,
}

/// Run `script` and profile it. Only published after the uploader (or an allowed group) said yes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SandboxRequest {
    pub schema_version: SchemaVersion,
    pub request_id: String,
    pub language: Language,
    /// The script in the object store, as the gateway stored it.
    pub script: ObjectRef,
    /// The file name as shared, for messages only.
    pub file_name: String,
    /// The Slack user who approved the run.
    pub requested_by: String,
    #[serde(default)]
    pub limits: Option<SandboxLimits>,
    pub reply: ReplyTarget,
}

impl Message for SandboxRequest {
    fn subject(&self) -> Subject {
        Subject::SandboxRequest
    }

    fn idempotency_key(&self) -> String {
        format!("sandbox-request:{}", self.request_id)
    }
}

impl Correlated for SandboxRequest {}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SandboxOutcome {
    /// The script exited by itself.
    Exited { code: i64 },
    /// Killed at the wall-clock limit.
    TimedOut,
    /// Killed by the memory limit.
    OutOfMemory,
    /// Refused before a container started (too large, not a script, throttled).
    Rejected { reason: String },
    /// The runner could not run it (engine unavailable, image missing): the runner's fault,
    /// never the script's.
    Failed { reason: String },
}

/// A limit a run ran into, whatever its outcome: the script's doing, told to its author (the
/// time and memory limits end a run, and are outcomes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "limit", rename_all = "snake_case")]
pub enum LimitHit {
    /// A process or thread was refused: the run had `max` already.
    Processes { max: u32 },
    /// `/tmp` filled up (`mib` MiB).
    Tmp { mib: u32 },
    /// The memory limit (`mib` MiB) killed one of the script's processes, not the script.
    Memory { mib: u32 },
    /// The script printed `bytes` on `stream`; the last part is kept.
    Output { stream: String, bytes: u64 },
}

/// The profile of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunProfile {
    /// Folded stacks in the object store.
    pub folded: ObjectRef,
    pub total_samples: u64,
    pub top_functions: Vec<FunctionShare>,
    #[serde(default)]
    pub flamegraph_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SandboxResult {
    pub schema_version: SchemaVersion,
    pub request_id: String,
    pub outcome: SandboxOutcome,
    pub wall_ms: u64,
    /// The last bytes of stdout, size-capped, lossily decoded as UTF-8.
    #[serde(default)]
    pub stdout_tail: String,
    #[serde(default)]
    pub stdout_truncated: bool,
    #[serde(default)]
    pub stderr_tail: String,
    #[serde(default)]
    pub stderr_truncated: bool,
    #[serde(default)]
    pub profile: Option<RunProfile>,
    /// Why there is no profile although the script ran (empty when there is one).
    #[serde(default)]
    pub profile_missing: String,
    #[serde(default)]
    pub limits_hit: Vec<LimitHit>,
    pub reply: ReplyTarget,
    /// Who asked for the run (the request's `requested_by`): App Home lists a person's own runs.
    #[serde(default)]
    pub requested_by: String,
    /// The script's file name, as shared.
    #[serde(default)]
    pub file_name: String,
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
}

impl Message for SandboxResult {
    fn subject(&self) -> Subject {
        Subject::SandboxResult
    }

    fn idempotency_key(&self) -> String {
        format!("sandbox-result:{}", self.request_id)
    }
}

impl Correlated for SandboxResult {}
