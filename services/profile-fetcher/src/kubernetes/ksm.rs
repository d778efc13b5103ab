//! The workload through Prometheus: kube-state-metrics' and cAdvisor's series, under the names and
//! labels those exporters publish (`kube_pod_container_status_restarts_total`,
//! `kube_pod_container_status_last_terminated_reason`, `kube_deployment_spec_replicas`,
//! `kube_deployment_status_replicas_ready`, `kube_pod_container_resource_limits`,
//! `kube_replicaset_created`, `kube_replicaset_owner`, `kube_pod_owner`, `kube_pod_container_info`,
//! `container_memory_working_set_bytes`, `container_cpu_usage_seconds_total`,
//! `container_cpu_cfs_periods_total`, `container_cpu_cfs_throttled_periods_total`). No cluster
//! credentials are needed: only the Prometheus flamethread already reads.
//!
//! Names reach PromQL only after [`super::target`] checked they are Kubernetes names, and are
//! escaped besides.

use std::collections::BTreeMap;

use proto::{
    Change, ChangeKind, ChangeSource, Incident, SchemaVersion, TimeWindow,
    evidence::{ContainerFacts, Replicas, WorkloadRef},
};

use crate::metrics::{
    prometheus::{Instant, Prometheus},
    template::escape,
};

/// What the series said.
#[derive(Debug, Default)]
pub struct Facts {
    pub replicas: Option<Replicas>,
    pub containers: Vec<ContainerFacts>,
    pub notes: Vec<String>,
}

/// Most containers listed (a deployment of many replicas shows its worst ones).
const MAX_CONTAINERS: usize = 6;

/// The label matchers that select the workload's pods.
fn pod_selector(workload: &WorkloadRef) -> String {
    let namespace = format!("namespace=\"{}\"", escape(&workload.namespace));
    let pods = match (&workload.pod, &workload.deployment) {
        (Some(pod), _) => format!("pod=\"{}\"", escape(pod)),
        (None, Some(deployment)) => format!(
            "pod=~\"{}-[a-z0-9]+-[a-z0-9]+\"",
            escape(&deployment.replace('.', "\\."))
        ),
        (None, None) => String::new(),
    };
    let container = workload
        .container
        .as_deref()
        .map(|container| format!(",container=\"{}\"", escape(container)))
        .unwrap_or_else(|| ",container!=\"\",container!=\"POD\"".to_owned());
    format!("{namespace},{pods}{container}")
}

fn range(window: TimeWindow) -> String {
    format!("{}s", (window.to - window.from).num_seconds().max(60))
}

/// Reads the workload's facts at the end of the incident window.
pub async fn facts(prometheus: &Prometheus, workload: &WorkloadRef, incident: &Incident) -> Facts {
    let at = incident.window.to;
    let pods = pod_selector(workload);
    let over = range(incident.window);
    let queries: Vec<(&str, String)> = vec![
        (
            "restarts",
            format!("kube_pod_container_status_restarts_total{{{pods}}}"),
        ),
        (
            "terminated",
            format!("kube_pod_container_status_last_terminated_reason{{{pods}}} == 1"),
        ),
        (
            "memory",
            format!("container_memory_working_set_bytes{{{pods}}}"),
        ),
        (
            "memory_peak",
            format!("max_over_time(container_memory_working_set_bytes{{{pods}}}[{over}])"),
        ),
        (
            "memory_limit",
            format!("kube_pod_container_resource_limits{{{pods},resource=\"memory\"}}"),
        ),
        (
            "cpu",
            format!(
                "sum by (namespace, pod, container) (rate(container_cpu_usage_seconds_total{{{pods}}}[{over}]))"
            ),
        ),
        (
            "cpu_limit",
            format!("kube_pod_container_resource_limits{{{pods},resource=\"cpu\"}}"),
        ),
        (
            "throttled",
            format!(
                "sum by (namespace, pod, container) (increase(container_cpu_cfs_throttled_periods_total{{{pods}}}[{over}])) / sum by (namespace, pod, container) (increase(container_cpu_cfs_periods_total{{{pods}}}[{over}]))"
            ),
        ),
    ];
    let answers =
        futures::future::join_all(queries.iter().map(|(_, query)| prometheus.query(query, at)))
            .await;
    let mut facts = Facts::default();
    let mut containers: BTreeMap<(String, String), ContainerFacts> = BTreeMap::new();
    let mut failures = Vec::new();
    for ((what, _), answer) in queries.iter().zip(answers) {
        let samples = match answer {
            Ok(samples) => samples,
            Err(err) => {
                failures.push(format!("{what}: {err}"));
                continue;
            }
        };
        for sample in samples {
            let (Some(pod), Some(container)) =
                (sample.labels.get("pod"), sample.labels.get("container"))
            else {
                continue;
            };
            let entry = containers
                .entry((pod.clone(), container.clone()))
                .or_insert_with(|| ContainerFacts {
                    pod: pod.clone(),
                    container: container.clone(),
                    ..ContainerFacts::default()
                });
            let value = Some(sample.value).filter(|value| value.is_finite());
            match *what {
                "restarts" => entry.restarts = value.map(|v| v.max(0.0) as u64),
                "terminated" => entry.last_terminated = sample.labels.get("reason").cloned(),
                "memory" => entry.memory_bytes = value,
                "memory_peak" => entry.memory_peak_bytes = value,
                "memory_limit" => entry.memory_limit_bytes = value,
                "cpu" => entry.cpu_cores = value,
                "cpu_limit" => entry.cpu_limit_cores = value,
                "throttled" => entry.cpu_throttled = value,
                _ => {}
            }
        }
    }
    if let Some(first) = failures.first() {
        facts.notes.push(format!(
            "{} of {} kube-state-metrics and cAdvisor queries failed ({first})",
            failures.len(),
            queries.len()
        ));
    }
    let mut containers: Vec<ContainerFacts> = containers.into_values().collect();
    // The worst first: restarts, then how close memory is to its limit.
    containers.sort_by(|a, b| {
        b.restarts
            .unwrap_or(0)
            .cmp(&a.restarts.unwrap_or(0))
            .then_with(|| memory_use(b).total_cmp(&memory_use(a)))
    });
    containers.truncate(MAX_CONTAINERS);
    facts.containers = containers;
    if let Some(deployment) = &workload.deployment {
        facts.replicas = replicas(prometheus, &workload.namespace, deployment, at)
            .await
            .unwrap_or_else(|err| {
                facts.notes.push(err);
                None
            });
    }
    if facts.containers.is_empty() && facts.replicas.is_none() && failures.is_empty() {
        facts.notes.push(format!(
            "Prometheus has no kube-state-metrics or cAdvisor series for {}",
            pods.replace('\\', "")
        ));
    }
    facts
}

fn memory_use(facts: &ContainerFacts) -> f64 {
    match (
        facts.memory_peak_bytes.or(facts.memory_bytes),
        facts.memory_limit_bytes,
    ) {
        (Some(used), Some(limit)) if limit > 0.0 => used / limit,
        _ => 0.0,
    }
}

async fn replicas(
    prometheus: &Prometheus,
    namespace: &str,
    deployment: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Option<Replicas>, String> {
    let selector = format!(
        "namespace=\"{}\",deployment=\"{}\"",
        escape(namespace),
        escape(deployment)
    );
    let desired = format!("kube_deployment_spec_replicas{{{selector}}}");
    let ready = format!("kube_deployment_status_replicas_ready{{{selector}}}");
    let (desired, ready) =
        tokio::join!(prometheus.query(&desired, at), prometheus.query(&ready, at));
    let first = |answer: Result<Vec<Instant>, _>| -> Result<Option<u32>, String> {
        answer
            .map(|samples| {
                samples
                    .first()
                    .map(|sample| sample.value)
                    .filter(|value| value.is_finite() && *value >= 0.0)
                    .map(|value| value as u32)
            })
            .map_err(|err| format!("replicas of {deployment}: {err}"))
    };
    Ok(match (first(desired)?, first(ready)?) {
        (Some(desired), Some(ready)) => Some(Replicas { desired, ready }),
        (Some(desired), None) => Some(Replicas { desired, ready: 0 }),
        _ => None,
    })
}

/// Rollouts of the alert's deployment in `window`: the ReplicaSets it created then
/// (`kube_replicaset_created` joined with `kube_replicaset_owner`), each with the image its pods
/// run (`kube_pod_container_info` joined with `kube_pod_owner`) as the version. `Err` is a
/// sentence for the reply.
pub async fn rollouts(
    prometheus: &Prometheus,
    config: &crate::config::KubernetesConfig,
    incident: &Incident,
    window: TimeWindow,
) -> Result<Vec<Change>, String> {
    let Ok(workload) = super::target(incident, config) else {
        return Ok(Vec::new());
    };
    let Some(deployment) = workload.deployment.as_deref() else {
        return Ok(Vec::new());
    };
    let namespace = escape(&workload.namespace);
    let created = format!(
        "kube_replicaset_created{{namespace=\"{namespace}\"}} * on (namespace, replicaset) group_left (owner_name) kube_replicaset_owner{{namespace=\"{namespace}\",owner_kind=\"Deployment\",owner_name=\"{}\"}}",
        escape(deployment)
    );
    let images = format!(
        "kube_pod_container_info{{namespace=\"{namespace}\"}} * on (namespace, pod) group_left (owner_name) kube_pod_owner{{namespace=\"{namespace}\",owner_kind=\"ReplicaSet\"}}"
    );
    let (created, images) = tokio::join!(
        prometheus.query(&created, window.to),
        prometheus.query(&images, window.to)
    );
    let created = created.map_err(|err| format!("rollouts from kube-state-metrics: {err}"))?;
    let images: BTreeMap<String, String> = images
        .unwrap_or_default()
        .into_iter()
        .filter_map(|sample| {
            Some((
                sample.labels.get("owner_name")?.clone(),
                sample.labels.get("image")?.clone(),
            ))
        })
        .collect();
    let service = incident
        .alert
        .service
        .clone()
        .unwrap_or_else(|| deployment.to_owned());
    Ok(created
        .into_iter()
        .filter_map(|sample| {
            let replicaset = sample.labels.get("replicaset")?;
            let at = chrono::DateTime::from_timestamp(sample.value as i64, 0)?;
            if at < window.from || at > window.to || !super::is_subdomain(replicaset) {
                return None;
            }
            let image = images.get(replicaset);
            Some(Change {
                schema_version: SchemaVersion::CURRENT,
                change_id: format!("ksm-{}-{replicaset}", workload.namespace),
                service: service.clone(),
                environment: Some(workload.namespace.clone()),
                version: image.map(|image| version_of(image)),
                kind: ChangeKind::Deploy,
                who: Some("Kubernetes rollout".to_owned()),
                url: None,
                message: Some(format!("ReplicaSet {replicaset} created")),
                at,
                source: ChangeSource::Kubernetes,
            })
        })
        .collect())
}

/// The tag of an image reference (`registry/checkout:1.4.2` → `1.4.2`), or the whole reference.
fn version_of(image: &str) -> String {
    let name = image.split('@').next().unwrap_or(image);
    match name.rsplit_once(':') {
        Some((_, tag)) if !tag.contains('/') => tag.chars().take(128).collect(),
        _ => image.chars().take(128).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_are_built_from_checked_names() {
        let workload = WorkloadRef {
            namespace: "shop".into(),
            deployment: Some("checkout.v2".into()),
            pod: None,
            container: None,
        };
        assert_eq!(
            pod_selector(&workload),
            r#"namespace="shop",pod=~"checkout\\.v2-[a-z0-9]+-[a-z0-9]+",container!="",container!="POD""#
        );
        assert_eq!(version_of("registry:5000/shop/checkout:1.4.2"), "1.4.2");
        assert_eq!(
            version_of("registry:5000/shop/checkout"),
            "registry:5000/shop/checkout"
        );
        assert_eq!(version_of("checkout:1.4.2@sha256:abc"), "1.4.2");
    }
}
