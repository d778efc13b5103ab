//! The workload through the Kubernetes API, with kube-rs, read-only: its recent events, the last
//! lines of a crashing container's log (its previous run when it restarted), and its rollout
//! history (the deployment's ReplicaSets by revision).
//!
//! The verbs are exactly those of the Role in `k8s/workload-reader/`: `get` deployments and pods,
//! `list` pods, replicasets and events, `get` pods/log. Every call has a deadline; a refusal says
//! which permission is missing; a log is capped in lines and bytes and stripped of control
//! characters before it is kept.

use std::time::Duration;

use k8s_openapi::api::{
    apps::v1::{Deployment, ReplicaSet},
    core::v1::{Event, Pod},
};
use kube::{
    Api, Client,
    api::{ListParams, LogParams},
};
use proto::evidence::{KubeEvent, LogTail, Rollout, WorkloadRef};

use crate::config::KubernetesConfig;

/// Revisions of the rollout history listed.
const MAX_ROLLOUTS: usize = 5;

/// A read-only client of one cluster.
#[derive(Clone)]
pub struct KubeApi {
    client: Client,
    timeout: Duration,
}

impl std::fmt::Debug for KubeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeApi")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// What the API said.
#[derive(Debug, Default)]
pub struct Read {
    pub events: Vec<KubeEvent>,
    pub log: Option<LogTail>,
    pub rollouts: Vec<Rollout>,
    pub notes: Vec<String>,
}

/// A call that did not answer: a sentence for the reply.
#[derive(Debug)]
struct Refused(String);

/// Why the Kubernetes API's client could not be made (the service does not start).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("kubernetes.api = \"in-cluster\": {0}")]
    InCluster(#[source] kube::config::InClusterError),
    #[error("kubernetes.api: {url:?}: {source}")]
    Url {
        url: String,
        #[source]
        source: axum::http::uri::InvalidUri,
    },
    #[error("cannot build the Kubernetes client: {0}")]
    Client(#[source] kube::Error),
}

impl KubeApi {
    /// A client for `config.api`: `None` when it is empty.
    pub async fn connect(config: &KubernetesConfig) -> Result<Option<KubeApi>, ConnectError> {
        runtime::install_crypto_provider();
        let mut kube_config = match config.api.as_str() {
            "" => return Ok(None),
            "in-cluster" => kube::Config::incluster().map_err(ConnectError::InCluster)?,
            url => {
                let uri = url.parse().map_err(|source| ConnectError::Url {
                    url: url.to_owned(),
                    source,
                })?;
                let mut kube_config = kube::Config::new(uri);
                if let Some(token_file) = &config.token_file {
                    kube_config.auth_info.token_file = Some(token_file.display().to_string());
                }
                kube_config.root_cert_file = config.ca_file.clone();
                kube_config
            }
        };
        // The client's own deadlines sit past ours, so a slow API server is reported as ours.
        kube_config.connect_timeout = Some(config.timeout + Duration::from_secs(1));
        kube_config.read_timeout = Some(config.timeout + Duration::from_secs(1));
        let client = Client::try_from(kube_config).map_err(ConnectError::Client)?;
        Ok(Some(KubeApi {
            client,
            timeout: config.timeout,
        }))
    }

    /// Reads what the API knows of `workload`.
    pub async fn read(&self, workload: &WorkloadRef, config: &KubernetesConfig) -> Read {
        let mut read = Read::default();
        let namespace = workload.namespace.as_str();
        let deployment = match &workload.deployment {
            Some(name) => match self
                .call("get", "deployments", namespace, async {
                    Api::<Deployment>::namespaced(self.client.clone(), namespace)
                        .get_opt(name)
                        .await
                })
                .await
            {
                Ok(found) => found,
                Err(Refused(note)) => {
                    read.notes.push(note);
                    None
                }
            },
            None => None,
        };
        let pod = match self.pick_pod(workload, deployment.as_ref()).await {
            Ok(pod) => pod,
            Err(Refused(note)) => {
                read.notes.push(note);
                None
            }
        };
        let mut objects: Vec<String> = Vec::new();
        if let Some(pod) = pod.as_ref().and_then(|pod| pod.metadata.name.clone()) {
            objects.push(pod);
        }
        if let Some(deployment) = &workload.deployment {
            objects.push(deployment.clone());
        }
        let (events, log, rollouts) = tokio::join!(
            self.events(namespace, &objects, config.max_events),
            async {
                match &pod {
                    Some(pod) => self.log(namespace, pod, workload, config).await.map(Some),
                    None => Ok(None),
                }
            },
            async {
                match &deployment {
                    Some(deployment) => self.rollouts(namespace, deployment).await,
                    None => Ok(Vec::new()),
                }
            },
        );
        match events {
            Ok(events) => read.events = events,
            Err(Refused(note)) => read.notes.push(note),
        }
        match log {
            Ok(log) => read.log = log,
            Err(Refused(note)) => read.notes.push(note),
        }
        match rollouts {
            Ok(rollouts) => read.rollouts = rollouts,
            Err(Refused(note)) => read.notes.push(note),
        }
        if workload.deployment.is_some() && deployment.is_none() && workload.pod.is_none() {
            read.notes.push(format!(
                "no deployment {} in namespace {namespace}",
                workload.deployment.as_deref().unwrap_or_default()
            ));
        }
        read
    }

    /// Runs one call with the deadline; errors become the sentence the reply shows.
    async fn call<T>(
        &self,
        verb: &str,
        resource: &str,
        namespace: &str,
        call: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, Refused> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(Refused(refusal(verb, resource, namespace, &err))),
            Err(_) => Err(Refused(format!(
                "the Kubernetes API did not answer within {:?} ({verb} {resource} in {namespace})",
                self.timeout
            ))),
        }
    }

    /// The named pod, or the deployment's pod that restarted most.
    async fn pick_pod(
        &self,
        workload: &WorkloadRef,
        deployment: Option<&Deployment>,
    ) -> Result<Option<Pod>, Refused> {
        let namespace = workload.namespace.as_str();
        let pods = Api::<Pod>::namespaced(self.client.clone(), namespace);
        if let Some(name) = &workload.pod {
            return self
                .call("get", "pods", namespace, pods.get_opt(name))
                .await;
        }
        let Some(selector) = deployment.and_then(selector_of) else {
            return Ok(None);
        };
        let list = self
            .call(
                "list",
                "pods",
                namespace,
                pods.list(&ListParams::default().labels(&selector)),
            )
            .await?;
        Ok(list.items.into_iter().max_by_key(restarts_of))
    }

    async fn events(
        &self,
        namespace: &str,
        objects: &[String],
        max: usize,
    ) -> Result<Vec<KubeEvent>, Refused> {
        let api = Api::<Event>::namespaced(self.client.clone(), namespace);
        let mut events = Vec::new();
        for object in objects {
            let params = ListParams::default()
                .fields(&format!("involvedObject.name={object}"))
                .limit(100);
            let list = self
                .call("list", "events", namespace, api.list(&params))
                .await?;
            events.extend(list.items.into_iter().map(|event| {
                let at = event
                    .last_timestamp
                    .map(|time| time.0)
                    .or(event.event_time.map(|time| time.0))
                    .or(event.metadata.creation_timestamp.map(|time| time.0))
                    .and_then(|time| chrono::DateTime::from_timestamp(time.as_second(), 0));
                KubeEvent {
                    at,
                    kind: bounded(event.type_.as_deref().unwrap_or("Normal"), 16),
                    reason: bounded(event.reason.as_deref().unwrap_or(""), 64),
                    message: bounded(event.message.as_deref().unwrap_or(""), 300),
                    object: bounded(
                        &format!(
                            "{}/{}",
                            event.involved_object.kind.as_deref().unwrap_or("Object"),
                            event.involved_object.name.as_deref().unwrap_or("")
                        ),
                        200,
                    ),
                    count: event.count.unwrap_or(1).max(0) as u32,
                }
            }));
        }
        // Warnings first, then the newest.
        events.sort_by(|a, b| {
            (b.kind == "Warning")
                .cmp(&(a.kind == "Warning"))
                .then_with(|| b.at.cmp(&a.at))
        });
        events.truncate(max);
        Ok(events)
    }

    async fn log(
        &self,
        namespace: &str,
        pod: &Pod,
        workload: &WorkloadRef,
        config: &KubernetesConfig,
    ) -> Result<LogTail, Refused> {
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        let statuses = pod
            .status
            .as_ref()
            .and_then(|status| status.container_statuses.clone())
            .unwrap_or_default();
        // The named container, or the one that restarted most.
        let container = workload.container.clone().or_else(|| {
            statuses
                .iter()
                .max_by_key(|status| status.restart_count)
                .map(|status| status.name.clone())
        });
        let restarted = statuses
            .iter()
            .find(|status| Some(&status.name) == container.as_ref())
            .is_some_and(|status| status.restart_count > 0);
        let api = Api::<Pod>::namespaced(self.client.clone(), namespace);
        let params = |previous| LogParams {
            container: container.clone(),
            tail_lines: Some(i64::from(config.log_lines)),
            limit_bytes: Some(i64::from(config.max_log_bytes)),
            previous,
            ..LogParams::default()
        };
        let (text, previous) = match self
            .call(
                "get",
                "pods/log",
                namespace,
                api.logs(&pod_name, &params(restarted)),
            )
            .await
        {
            Ok(text) => (text, restarted),
            // No previous run kept (the node restarted, or it was replaced): the current one.
            Err(_) if restarted => (
                self.call(
                    "get",
                    "pods/log",
                    namespace,
                    api.logs(&pod_name, &params(false)),
                )
                .await?,
                false,
            ),
            Err(refused) => return Err(refused),
        };
        let lines = text.lines().count();
        let truncated =
            text.len() >= config.max_log_bytes as usize || lines >= config.log_lines as usize;
        Ok(LogTail {
            pod: pod_name,
            container: container.unwrap_or_default(),
            previous,
            text: clean_log(&text, config.max_log_bytes as usize),
            truncated,
        })
    }

    async fn rollouts(
        &self,
        namespace: &str,
        deployment: &Deployment,
    ) -> Result<Vec<Rollout>, Refused> {
        let Some(selector) = selector_of(deployment) else {
            return Ok(Vec::new());
        };
        let name = deployment.metadata.name.clone().unwrap_or_default();
        let api = Api::<ReplicaSet>::namespaced(self.client.clone(), namespace);
        let list = self
            .call(
                "list",
                "replicasets",
                namespace,
                api.list(&ListParams::default().labels(&selector)),
            )
            .await?;
        let mut rollouts: Vec<Rollout> = list
            .items
            .into_iter()
            .filter(|replicaset| {
                replicaset
                    .metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|owner| owner.kind == "Deployment" && owner.name == name)
            })
            .filter_map(|replicaset| {
                let revision = replicaset
                    .metadata
                    .annotations
                    .as_ref()?
                    .get("deployment.kubernetes.io/revision")?
                    .parse()
                    .ok()?;
                Some(Rollout {
                    revision,
                    replicaset: bounded(&replicaset.metadata.name.clone().unwrap_or_default(), 253),
                    created_at: replicaset
                        .metadata
                        .creation_timestamp
                        .and_then(|time| chrono::DateTime::from_timestamp(time.0.as_second(), 0)),
                    images: replicaset
                        .spec
                        .and_then(|spec| spec.template)
                        .and_then(|template| template.spec)
                        .map(|spec| {
                            spec.containers
                                .into_iter()
                                .filter_map(|container| container.image)
                                .map(|image| bounded(&image, 256))
                                .take(4)
                                .collect()
                        })
                        .unwrap_or_default(),
                })
            })
            .collect();
        rollouts.sort_by_key(|rollout| std::cmp::Reverse(rollout.revision));
        rollouts.truncate(MAX_ROLLOUTS);
        Ok(rollouts)
    }
}

/// A deployment's `matchLabels` as a label selector (`app=checkout,tier=web`).
fn selector_of(deployment: &Deployment) -> Option<String> {
    let labels = deployment.spec.as_ref()?.selector.match_labels.as_ref()?;
    (!labels.is_empty()).then(|| {
        labels
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect::<Vec<_>>()
            .join(",")
    })
}

fn restarts_of(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|status| status.container_statuses.as_ref())
        .map(|statuses| statuses.iter().map(|status| status.restart_count).sum())
        .unwrap_or(0)
}

/// The sentence a failed call becomes: a 403 names the permission the Role lacks.
fn refusal(verb: &str, resource: &str, namespace: &str, err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) if status.code == 403 => format!(
            "Kubernetes refused to {verb} {resource} in {namespace} (403): the Role needs `{verb}` on `{resource}`"
        ),
        kube::Error::Api(status) if status.code == 401 => format!(
            "Kubernetes did not accept flamethread's credentials (401) to {verb} {resource} in {namespace}"
        ),
        kube::Error::Api(status) => format!(
            "Kubernetes answered {} to {verb} {resource} in {namespace}: {}",
            status.code,
            bounded(&status.message, 200)
        ),
        other => format!(
            "the Kubernetes API could not be reached to {verb} {resource} in {namespace}: {}",
            bounded(&other.to_string(), 200)
        ),
    }
}

/// At most `max` characters, without control characters.
fn bounded(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// A log as text that is safe to keep: control characters (terminal escapes) removed, lines
/// kept, at most `max_bytes` bytes on a character boundary.
pub fn clean_log(text: &str, max_bytes: usize) -> String {
    let mut cleaned = String::with_capacity(text.len().min(max_bytes));
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            continue;
        }
        if cleaned.len() + c.len_utf8() > max_bytes {
            break;
        }
        cleaned.push(c);
    }
    cleaned.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_lose_terminal_escapes_and_stay_bounded() {
        let log = "\u{1b}[31mpanic\u{1b}[0m: out of memory\r\n\tat alloc\n";
        assert_eq!(
            clean_log(log, 100),
            "[31mpanic[0m: out of memory\n\tat alloc"
        );
        assert_eq!(clean_log("ééé", 5), "éé");
    }
}
