//! The handler for `sandbox.request`: refuse what must not run (too large, empty, binary, too
//! many runs by one person) before any container starts, wait for a slot (telling the person
//! their place), run and profile the script in its container, and publish one `sandbox.result`
//! with the profile's stacks and flamegraph stored where profile-fetcher's pages serve them.
//!
//! Redelivery is safe: the container's name comes from the request, so a run a crashed runner
//! left behind is removed before the new one starts, and the result's `Nats-Msg-Id` is the
//! request's, so JetStream stores one result. A redelivery that arrives while this process is
//! still running the request (JetStream stopped waiting, e.g. when a hostile script starved the
//! machine and the progress acknowledgements came late) joins that run instead of starting a
//! container of the same name, which would remove the first one mid-run; one that arrives just
//! after the run published is acknowledged without running the script again.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use bus::{Bus, HandlerError};
use proto::{
    ObjectRef, PostRequest, ReplyTarget, SandboxRequest, SandboxResult, SchemaVersion,
    sandbox::{RunProfile, SandboxOutcome},
};
use tokio::io::AsyncReadExt as _;
use tokio::time::Instant;

use crate::{
    config::SandboxConfig,
    engine::{Engine, EngineError},
    outcome, plan,
    throttle::Throttle,
};

/// Deliveries of a request while the engine is unreachable before the person is told it failed.
const ENGINE_RETRIES: u64 = 3;
/// Time a container gets past the script's own limit (held for the profiler, py-spy writing the
/// profile, the init reporting) before it is killed from outside.
const GRACE: Duration = Duration::from_secs(plan::HOLD_SECONDS + plan::PROFILER_GRACE_SECONDS + 5);

/// The longest one run can take once it has its slot: the script's limit, the grace, and time
/// for the engine to create, inspect and remove its container.
pub(crate) fn longest_run(config: &SandboxConfig) -> Duration {
    config.wall_limit + GRACE + Duration::from_secs(60)
}

/// How long a request may be handled, waiting in line included: a request waits for at most
/// every other request the consumer holds (`held`), `concurrency` at a time, so a run that
/// waits its turn is never dropped for having waited (and later dead-lettered, unanswered).
pub(crate) fn handler_timeout(config: &SandboxConfig, held: usize) -> Duration {
    let rounds = held.div_ceil(config.concurrency.max(1)) as u32;
    longest_run(config) * (rounds + 1)
}

#[derive(Debug)]
pub(crate) struct Runner {
    pub(crate) bus: Bus,
    pub(crate) engine: Engine,
    pub(crate) config: SandboxConfig,
    pub(crate) throttle: Arc<Throttle>,
    pub(crate) in_progress: Arc<InProgress>,
}

/// The requests this process is running, each with a lock its run holds until it ends; the lock
/// then says whether the run published its result. A published run stays known for
/// [`REMEMBER_PUBLISHED`], so a redelivery that arrives just after it (JetStream had not yet
/// taken the acknowledgement, e.g. on a machine a hostile script starved) is acknowledged
/// instead of running the script a second time.
#[derive(Debug, Default)]
pub(crate) struct InProgress(Mutex<HashMap<String, Run>>);

/// How long a published run is remembered.
const REMEMBER_PUBLISHED: Duration = Duration::from_secs(600);

#[derive(Debug)]
struct Run {
    lock: Arc<tokio::sync::Mutex<bool>>,
    /// When it published its result; `None` while it runs (or if it published nothing).
    published_at: Option<std::time::Instant>,
}

/// Held while a request runs; dropping it lets the duplicates waiting for it go.
#[derive(Debug)]
struct RunGuard {
    in_progress: Arc<InProgress>,
    request_id: String,
    published: tokio::sync::OwnedMutexGuard<bool>,
}

impl InProgress {
    /// The guard of a new run, or the lock of the run under way (or just published) for
    /// `request_id`.
    fn start(
        self: &Arc<Self>,
        request_id: &str,
    ) -> Result<RunGuard, Arc<tokio::sync::Mutex<bool>>> {
        let mut runs = self.0.lock().unwrap_or_else(|e| e.into_inner());
        runs.retain(|_, run| {
            run.published_at
                .is_none_or(|at| at.elapsed() < REMEMBER_PUBLISHED)
        });
        if let Some(run) = runs.get(request_id) {
            return Err(run.lock.clone());
        }
        let lock = Arc::new(tokio::sync::Mutex::new(false));
        let held = lock.clone().try_lock_owned().map_err(|_| lock.clone())?;
        runs.insert(
            request_id.to_owned(),
            Run {
                lock,
                published_at: None,
            },
        );
        Ok(RunGuard {
            in_progress: self.clone(),
            request_id: request_id.to_owned(),
            published: held,
        })
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        let mut runs = self.in_progress.0.lock().unwrap_or_else(|e| e.into_inner());
        if *self.published {
            if let Some(run) = runs.get_mut(&self.request_id) {
                run.published_at = Some(std::time::Instant::now());
            }
        } else {
            runs.remove(&self.request_id);
        }
    }
}

impl Runner {
    pub(crate) async fn on_request(
        &self,
        request: SandboxRequest,
        delivered: u64,
    ) -> Result<(), HandlerError> {
        let mut running = match self.in_progress.start(&request.request_id) {
            Ok(guard) => guard,
            Err(run) => {
                // The run under way publishes the result; this copy waits for it, and is
                // retried if that run ended without publishing.
                tracing::info!(request = %request.request_id, delivered, "redelivered while running here; joining that run");
                metrics::counter!("ft_sandbox_redeliveries_joined_total").increment(1);
                return if *run.lock().await {
                    Ok(())
                } else {
                    Err(HandlerError::retry(
                        "the run this redelivery joined published no result",
                    ))
                };
            }
        };
        let started = Instant::now();
        let result = match self.run(&request, delivered).await {
            Ok(result) => result,
            Err(Stop::Answer(outcome)) => self.result(&request, outcome, started.elapsed()),
            Err(Stop::Retry(err)) => return Err(err),
        };
        let outcome = match &result.outcome {
            SandboxOutcome::Exited { .. } => "exited",
            SandboxOutcome::TimedOut => "timed_out",
            SandboxOutcome::OutOfMemory => "out_of_memory",
            SandboxOutcome::Rejected { .. } => "rejected",
            SandboxOutcome::Failed { .. } => "failed",
        };
        metrics::counter!("ft_sandbox_runs_total", "outcome" => outcome).increment(1);
        tracing::info!(request = %request.request_id, outcome, wall_ms = result.wall_ms, "sandbox run ended");
        self.bus
            .publish(&result)
            .await
            .map_err(HandlerError::retry)?;
        *running.published = true;
        Ok(())
    }

    async fn run(&self, request: &SandboxRequest, delivered: u64) -> Result<SandboxResult, Stop> {
        let max = self.config.max_script_bytes;
        if request.script.size > max {
            return Err(reject(format!(
                "`{}` is {} bytes; the sandbox takes scripts up to {max} bytes",
                request.file_name, request.script.size
            )));
        }
        // A redelivery was admitted the first time.
        if delivered == 1
            && let Err(wait) = self.throttle.admit(&request.requested_by)
        {
            return Err(reject(format!(
                "you have started {} runs in a short time; try again in {}s (others' runs are not held up)",
                self.config.per_user_burst,
                wait.as_secs().max(1)
            )));
        }
        let script = self.fetch(&request.script, max).await?;
        plan::check_script(&script, max).map_err(reject)?;

        let _slot = self
            .throttle
            .slot(|place| {
                let bus = self.bus.clone();
                let notice = queued_notice(request, place);
                // Best effort: a lost notice costs nothing but the message.
                tokio::spawn(async move { bus.publish(&notice).await });
            })
            .await;

        let name = plan::container_name(&request.request_id);
        let job_dir = PathBuf::from(&self.config.work_dir).join(&name);
        let script_name = plan::script_file_name(&request.file_name);
        write_job(&job_dir, &script_name, &script)
            .await
            .map_err(|err| Stop::Retry(HandlerError::retry(format!("job directory: {err}"))))?;
        let limits = plan::limits(request.limits, &self.config);
        let init = plan::init_plan(request.language, &self.config, limits, &script_name);
        let body = plan::container(
            &self.config,
            limits,
            &init,
            &job_dir.to_string_lossy(),
            &request.request_id,
        );
        let wall_limit = Duration::from_secs(u64::from(limits.wall_seconds));
        let ran = self
            .engine
            .run(
                &name,
                body,
                wall_limit + GRACE,
                self.config.engine_log_bytes as usize,
            )
            .await;
        let _ = tokio::fs::remove_dir_all(&job_dir).await;
        let finished = match ran {
            Ok(finished) => finished,
            Err(err @ EngineError::Unreachable(_)) if delivered < ENGINE_RETRIES => {
                return Err(Stop::Retry(HandlerError::retry(err)));
            }
            Err(err) => {
                return Err(Stop::Answer(SandboxOutcome::Failed {
                    reason: err.to_string(),
                }));
            }
        };
        let read = outcome::read(&finished, limits, self.config.tmp_mib);
        let mut result = self.result(request, read.outcome, finished.wall);
        result.stdout_tail = read.stdout_tail;
        result.stdout_truncated = read.stdout_truncated;
        result.stderr_tail = read.stderr_tail;
        result.stderr_truncated = read.stderr_truncated;
        result.limits_hit = read.limits_hit;
        result.profile_missing = read.profile_missing;
        if !read.profile.is_empty() {
            result.profile = Some(self.store_profile(&name, read.profile).await?);
        }
        Ok(result)
    }

    /// The script from the object store, reading at most `max + 1` bytes.
    async fn fetch(&self, script: &ObjectRef, max: u64) -> Result<Vec<u8>, Stop> {
        let store = self
            .bus
            .blob_store()
            .await
            .map_err(|err| Stop::Retry(HandlerError::retry(err)))?;
        let object = match store.get(&script.key).await {
            Ok(object) => object,
            Err(err)
                if err.kind() == async_nats::jetstream::object_store::GetErrorKind::NotFound =>
            {
                return Err(reject(
                    "the shared file is no longer stored; share it again".to_owned(),
                ));
            }
            Err(err) => {
                return Err(Stop::Retry(HandlerError::retry(format!(
                    "object store: {err}"
                ))));
            }
        };
        let mut bytes = Vec::new();
        object
            .take(max + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(|err| Stop::Retry(HandlerError::retry(format!("object store: {err}"))))?;
        Ok(bytes)
    }

    /// Keeps the stacks and the flamegraph where profile-fetcher's pages serve them.
    async fn store_profile(
        &self,
        name: &str,
        folded: profiling::Folded,
    ) -> Result<RunProfile, Stop> {
        let id = profiling::page_id(&format!(
            "sandbox-{}",
            name.trim_start_matches("ft-sandbox-")
        ));
        let retry = |err: String| Stop::Retry(HandlerError::retry(format!("object store: {err}")));
        let store = self
            .bus
            .blob_store()
            .await
            .map_err(|err| retry(err.to_string()))?;
        let text = profiling::folded::to_text(&folded);
        let key = proto::keys::object::folded(&id);
        store
            .put(key.as_str(), &mut text.as_bytes())
            .await
            .map_err(|err| retry(err.to_string()))?;
        let top_functions = profiling::folded::top_functions(&folded, 10);
        let total_samples = profiling::folded::total(&folded);
        let drawn = tokio::task::spawn_blocking(move || {
            profiling::flamegraph::svg(&folded, "sandbox run", "samples")
        })
        .await
        .map_err(|err| retry(format!("drawing panicked: {err}")))?;
        let mut flamegraph_url = None;
        if let Ok(svg) = drawn {
            store
                .put(proto::keys::object::flamegraph(&id).as_str(), &mut &svg[..])
                .await
                .map_err(|err| retry(err.to_string()))?;
            if !self.config.pages_url.is_empty() {
                flamegraph_url = Some(proto::pages::flamegraph(&self.config.pages_url, &id));
            }
        }
        Ok(RunProfile {
            folded: ObjectRef {
                bucket: self.bus.subjects().blob_bucket(),
                key,
                size: text.len() as u64,
                content_type: "text/plain; charset=utf-8".to_owned(),
            },
            total_samples,
            top_functions,
            flamegraph_url,
        })
    }

    fn result(
        &self,
        request: &SandboxRequest,
        outcome: SandboxOutcome,
        wall: Duration,
    ) -> SandboxResult {
        SandboxResult {
            schema_version: SchemaVersion::CURRENT,
            request_id: request.request_id.clone(),
            outcome,
            wall_ms: wall.as_millis() as u64,
            stdout_tail: String::new(),
            stdout_truncated: false,
            stderr_tail: String::new(),
            stderr_truncated: false,
            profile: None,
            profile_missing: String::new(),
            limits_hit: Vec::new(),
            reply: request.reply.clone(),
            requested_by: request.requested_by.clone(),
            file_name: request.file_name.clone(),
            finished_at: Some(chrono::Utc::now()),
        }
    }
}

/// How a run stopped short: an answer for the person, or a failure worth another delivery.
enum Stop {
    Answer(SandboxOutcome),
    Retry(HandlerError),
}

fn reject(reason: String) -> Stop {
    Stop::Answer(SandboxOutcome::Rejected { reason })
}

/// "Queued: N runs ahead of yours", only to the person who asked.
fn queued_notice(request: &SandboxRequest, place: usize) -> PostRequest {
    let target = match &request.reply {
        ReplyTarget::Thread { channel, thread_ts } => ReplyTarget::Ephemeral {
            channel: channel.clone(),
            user: request.requested_by.clone(),
            thread_ts: Some(thread_ts.clone()),
        },
        other => other.clone(),
    };
    PostRequest {
        schema_version: SchemaVersion::CURRENT,
        post_id: format!("sandbox-queued-{}", request.request_id),
        reply_key: None,
        target,
        text: proto::mrkdwn!(
            "`{}` is queued: {} ahead of it. It starts as soon as a sandbox is free.",
            request.file_name,
            match place {
                1 => "1 run".to_owned(),
                n => format!("{n} runs"),
            }
        ),
        blocks: None,
        incident_id: None,
        stands_for: None,
    }
}

/// The job directory: `script/` (mounted at `/work`) holds the script as `name`, `init/`
/// (mounted at `/opt/flamethread`) the init and its site hook, all readable by the container's
/// users.
async fn write_job(dir: &std::path::Path, name: &str, script: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let _ = tokio::fs::remove_dir_all(dir).await;
    let script_path = format!("script/{name}");
    let files = [
        (script_path.as_str(), script),
        ("init/init.py", plan::INIT_PY.as_bytes()),
        (
            "init/site/sitecustomize.py",
            plan::SITECUSTOMIZE_PY.as_bytes(),
        ),
    ];
    for dir in ["", "script", "init", "init/site"].map(|sub| dir.join(sub)) {
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).await?;
    }
    for (path, bytes) in files {
        let path = dir.join(path);
        tokio::fs::write(&path, bytes).await?;
        tokio::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
