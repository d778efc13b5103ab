//! The Docker engine, through bollard: start a planned container, wait for it with a deadline,
//! kill it past the deadline, read what the engine kept of its output, and always remove it.
//! Containers left by a crashed runner are found by their label and reaped. An engine without the
//! sandbox image loads it from an archive when one is configured.

use std::{collections::HashMap, path::Path, time::Duration};

use bollard::{
    Docker,
    container::LogOutput,
    errors::Error as DockerError,
    models::ContainerCreateBody,
    query_parameters::{
        CreateContainerOptionsBuilder, ImportImageOptionsBuilder, InspectContainerOptions,
        KillContainerOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
        RemoveContainerOptionsBuilder, WaitContainerOptionsBuilder,
    },
};
use futures::StreamExt;
use tokio::time::Instant;
use tokio_util::io::ReaderStream;

use crate::{outcome::Finished, plan};

/// A connected engine.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
}

/// Why the engine could not run something.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Worth another try: the engine may be back.
    #[error("the Docker engine is unreachable: {0}")]
    Unreachable(#[source] DockerError),
    /// The engine answered no; the same request would get the same answer.
    #[error("the Docker engine refused ({status}): {message}")]
    Refused { status: u16, message: String },
}

fn refused(err: DockerError) -> EngineError {
    match err {
        DockerError::DockerResponseServerError {
            status_code,
            message,
        } => EngineError::Refused {
            status: status_code,
            message,
        },
        other => EngineError::Unreachable(other),
    }
}

/// Why the engine cannot run sandboxes now (the runner's readiness says it).
#[derive(Debug, thiserror::Error)]
pub enum Unready {
    #[error("the Docker engine does not answer: {0}")]
    NoAnswer(#[source] DockerError),
    #[error(
        "the Docker engine has no runtime {runtime:?} (it has {known:?}; deploy/sandbox/README.md says how to add gVisor's runsc)"
    )]
    NoRuntime { runtime: String, known: Vec<String> },
    #[error("the sandbox image {0} is missing (deploy/sandbox/build-image.sh builds it)")]
    NoImage(String),
    #[error("cannot inspect the sandbox image {image}: {source}")]
    Inspect {
        image: String,
        #[source]
        source: DockerError,
    },
    #[error("the sandbox image {image} is missing and loading {archive} failed: {source}")]
    Load {
        image: String,
        archive: String,
        #[source]
        source: LoadError,
    },
    #[error(
        "the sandbox image {image} is missing: {archive} was loaded but does not hold it (docker save that image, with its tag)"
    )]
    NotInArchive { image: String, archive: String },
}

/// Why an image archive could not be loaded into the engine.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read it: {0}")]
    Read(#[source] std::io::Error),
    #[error("the engine refused it: {0}")]
    Engine(#[source] DockerError),
}

fn is_not_found(err: &DockerError) -> bool {
    matches!(
        err,
        DockerError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

impl Engine {
    /// Connects to `docker_host` (empty: the local socket or `DOCKER_HOST`).
    pub async fn connect(docker_host: &str) -> Result<Engine, EngineError> {
        let docker = if docker_host.is_empty() {
            Docker::connect_with_local_defaults()
        } else if let Some(path) = docker_host.strip_prefix("unix://") {
            Docker::connect_with_unix(path, 120, bollard::API_DEFAULT_VERSION)
        } else {
            Docker::connect_with_http(docker_host, 120, bollard::API_DEFAULT_VERSION)
        }
        .map_err(EngineError::Unreachable)?;
        // An engine that is down now may be up later: keep the client, negotiate when it answers
        // (bollard's calls work against older APIs un-negotiated too).
        let docker = match docker.clone().negotiate_version().await {
            Ok(negotiated) => negotiated,
            Err(err) => {
                tracing::warn!(error = %err, "the Docker engine does not answer yet");
                docker
            }
        };
        Ok(Engine { docker })
    }

    /// Whether the engine answers, knows `runtime` and has `image`; the reason when not.
    pub async fn check(&self, image: &str, runtime: &str) -> Result<(), Unready> {
        let info = self.docker.info().await.map_err(Unready::NoAnswer)?;
        let runtimes = info.runtimes.unwrap_or_default();
        if !runtimes.contains_key(runtime) {
            let mut known: Vec<String> = runtimes.into_keys().collect();
            known.sort();
            return Err(Unready::NoRuntime {
                runtime: runtime.to_owned(),
                known,
            });
        }
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(()),
            Err(err) if is_not_found(&err) => Err(Unready::NoImage(image.to_owned())),
            Err(source) => Err(Unready::Inspect {
                image: image.to_owned(),
                source,
            }),
        }
    }

    /// [`check`](Engine::check), and when only the image is missing and `archive` (a `docker
    /// save` tar, gzipped or not) is given, loads it and checks again. A pod's engine (a dind
    /// sidecar) starts with no images and cannot pull: the archive is how the image gets there.
    pub async fn check_or_load(
        &self,
        image: &str,
        runtime: &str,
        archive: Option<&Path>,
    ) -> Result<(), Unready> {
        let archive = match (self.check(image, runtime).await, archive) {
            (Err(Unready::NoImage(_)), Some(archive)) => archive,
            (checked, _) => return checked,
        };
        tracing::info!(%image, archive = %archive.display(), "loading the sandbox image into the engine");
        let loaded = self.load(archive).await;
        let archive = archive.display().to_string();
        if let Err(source) = loaded {
            return Err(Unready::Load {
                image: image.to_owned(),
                archive,
                source,
            });
        }
        match self.check(image, runtime).await {
            Err(Unready::NoImage(_)) => Err(Unready::NotInArchive {
                image: image.to_owned(),
                archive,
            }),
            checked => checked,
        }
    }

    /// `docker load` of `archive`, streamed from the file.
    async fn load(&self, archive: &Path) -> Result<(), LoadError> {
        let file = tokio::fs::File::open(archive)
            .await
            .map_err(LoadError::Read)?;
        let mut progress = self.docker.import_image_stream(
            ImportImageOptionsBuilder::default().quiet(true).build(),
            ReaderStream::new(file),
            None,
        );
        while let Some(step) = progress.next().await {
            step.map_err(LoadError::Engine)?;
        }
        Ok(())
    }

    /// Whether the engine maps containers' users to unprivileged host users (`userns-remap`), so
    /// the init's root is nobody on the host; `None` when the engine does not say.
    pub async fn remaps_users(&self) -> Option<bool> {
        let info = self.docker.info().await.ok()?;
        let options = info.security_options?;
        Some(options.iter().any(|option| option.contains("name=userns")))
    }

    /// Removes sandbox containers older than `older_than` (left by a runner that crashed).
    pub async fn reap(&self, older_than: Duration) -> Result<usize, EngineError> {
        let filters = HashMap::from([("label".to_owned(), vec![plan::LABEL.to_owned()])]);
        let containers = self
            .docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(refused)?;
        let now = chrono::Utc::now().timestamp();
        let mut reaped = 0;
        for container in containers {
            let old = container
                .created
                .is_some_and(|created| now - created >= older_than.as_secs() as i64);
            if let (true, Some(id)) = (old, container.id) {
                self.remove(&id).await?;
                reaped += 1;
            }
        }
        Ok(reaped)
    }

    /// Removes a container by name or id, running or not; gone already is fine.
    pub async fn remove(&self, name: &str) -> Result<(), EngineError> {
        match self
            .docker
            .remove_container(
                name,
                Some(
                    RemoveContainerOptionsBuilder::default()
                        .force(true)
                        .v(true)
                        .build(),
                ),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(err) if is_not_found(&err) => Ok(()),
            Err(err) => Err(refused(err)),
        }
    }

    /// Runs `body` as container `name` for at most `deadline`, then removes it. What a run left
    /// of its output is capped at `max_output` bytes per stream.
    pub async fn run(
        &self,
        name: &str,
        body: ContainerCreateBody,
        deadline: Duration,
        max_output: usize,
    ) -> Result<Finished, EngineError> {
        // A container of the same name is what a crashed runner left of this very request.
        self.remove(name).await?;
        self.docker
            .create_container(
                Some(CreateContainerOptionsBuilder::default().name(name).build()),
                body,
            )
            .await
            .map_err(refused)?;
        let ran = self.start_and_wait(name, deadline, max_output).await;
        // Always removed, whatever happened.
        let removed = self.remove(name).await;
        let finished = ran?;
        removed?;
        Ok(finished)
    }

    async fn start_and_wait(
        &self,
        name: &str,
        deadline: Duration,
        max_output: usize,
    ) -> Result<Finished, EngineError> {
        let started = Instant::now();
        self.docker
            .start_container(
                name,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
            .map_err(refused)?;
        let mut wait = self.docker.wait_container(
            name,
            Some(
                WaitContainerOptionsBuilder::default()
                    .condition("not-running")
                    .build(),
            ),
        );
        let killed_at_limit = match tokio::time::timeout(deadline, wait.next()).await {
            // A non-zero exit is an error to bollard; either way it ended by itself.
            Ok(_) => false,
            Err(_) => {
                let kill = self
                    .docker
                    .kill_container(
                        name,
                        Some(
                            KillContainerOptionsBuilder::default()
                                .signal("SIGKILL")
                                .build(),
                        ),
                    )
                    .await;
                if let Err(err) = kill
                    && !is_not_found(&err)
                {
                    tracing::warn!(error = %err, "cannot kill a sandbox container at its limit");
                }
                let _ = tokio::time::timeout(Duration::from_secs(10), wait.next()).await;
                true
            }
        };
        let wall = started.elapsed();
        let state = self
            .docker
            .inspect_container(name, None::<InspectContainerOptions>)
            .await
            .map_err(refused)?
            .state;
        let oom_killed = state
            .as_ref()
            .and_then(|state| state.oom_killed)
            .unwrap_or(false);
        let exit_code = state.and_then(|state| state.exit_code);
        let killed_from_outside = !killed_at_limit && exit_code == Some(128 + 9);
        let (stdout, stderr) = self.output(name, max_output).await?;
        Ok(Finished {
            stdout,
            stderr,
            killed_at_limit,
            oom_killed,
            killed_from_outside,
            exit_code,
            wall,
        })
    }

    /// What the engine kept of the container's stdout and stderr, each capped at `max` bytes
    /// (the end is kept: that is where errors and the profile are).
    async fn output(&self, name: &str, max: usize) -> Result<(Vec<u8>, Vec<u8>), EngineError> {
        let mut logs = self.docker.logs(
            name,
            Some(
                LogsOptionsBuilder::default()
                    .stdout(true)
                    .stderr(true)
                    .follow(false)
                    .tail("all")
                    .build(),
            ),
        );
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        while let Some(chunk) = logs.next().await {
            match chunk.map_err(refused)? {
                LogOutput::StdOut { message } => keep_end(&mut stdout, &message, max),
                LogOutput::StdErr { message } => keep_end(&mut stderr, &message, max),
                _ => {}
            }
        }
        Ok((stdout, stderr))
    }
}

/// Appends `more` to `buffer`, keeping only the last `max` bytes.
fn keep_end(buffer: &mut Vec<u8>, more: &[u8], max: usize) {
    buffer.extend_from_slice(more);
    if buffer.len() > max.saturating_mul(2) {
        let cut = buffer.len() - max;
        buffer.drain(..cut);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_end_is_kept() {
        let mut buffer = Vec::new();
        for _ in 0..1000 {
            super::keep_end(&mut buffer, b"0123456789", 25);
        }
        assert!(buffer.len() <= 50);
        assert!(buffer.ends_with(b"0123456789"));
    }
}
