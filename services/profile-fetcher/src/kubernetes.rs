//! What the alert's Kubernetes workload is doing: restarts, the last termination's reason, ready
//! against desired replicas, CPU throttling and memory against its limit from kube-state-metrics
//! and cAdvisor series in Prometheus ([`ksm`]); its events, a crashing container's last log lines
//! and its rollout history from the Kubernetes API, read-only ([`api`]).
//!
//! - [`target`] (pure): which workload an alert names, from its labels; label values are text
//!   from outside, so only valid Kubernetes names are used.
//! - [`gather`]: the evidence; every source that cannot answer (no labels, a 403, a timeout, a
//!   huge log) adds a sentence to it instead of failing it.

pub mod api;
pub mod ksm;

use chrono::Utc;
use proto::{
    Incident, SchemaVersion, WorkloadEvidence,
    evidence::{EvidenceStatus, WorkloadRef},
};

use crate::{config::KubernetesConfig, metrics::prometheus::Prometheus};

/// The workload `incident`'s alert names, or a sentence saying why there is none.
pub fn target(incident: &Incident, config: &KubernetesConfig) -> Result<WorkloadRef, String> {
    let labels = &incident.alert.labels;
    let first = |keys: &[String]| {
        keys.iter()
            .find_map(|key| labels.get(key).map(|value| (key.clone(), value.clone())))
    };
    let Some((key, namespace)) = first(&config.namespace_labels) else {
        return Err(format!(
            "the alert has no namespace label ({}), so there is no Kubernetes workload to look at",
            config.namespace_labels.join(", ")
        ));
    };
    if !is_label_name(&namespace) {
        return Err(format!(
            "the alert's `{key}` label is not a Kubernetes namespace name"
        ));
    }
    let named = |keys: &[String], check: fn(&str) -> bool| -> Result<Option<String>, String> {
        match first(keys) {
            None => Ok(None),
            Some((_, value)) if check(&value) => Ok(Some(value)),
            Some((key, _)) => Err(format!(
                "the alert's `{key}` label is not a Kubernetes object name"
            )),
        }
    };
    let pod = named(&config.pod_labels, is_subdomain)?;
    let container = named(&config.container_labels, is_label_name)?;
    let deployment = named(&config.deployment_labels, is_subdomain)?
        .or_else(|| pod.as_deref().and_then(deployment_of_pod))
        .or_else(|| {
            incident
                .alert
                .service
                .clone()
                .filter(|service| is_subdomain(service))
        });
    if pod.is_none() && deployment.is_none() {
        return Err(
            "the alert names a namespace but no pod, deployment or service to look at".to_owned(),
        );
    }
    Ok(WorkloadRef {
        namespace,
        deployment,
        pod,
        container,
    })
}

/// The deployment a pod belongs to by Kubernetes' naming: `<deployment>-<pod-template-hash>-<5
/// characters>`.
pub fn deployment_of_pod(pod: &str) -> Option<String> {
    let mut parts = pod.rsplitn(3, '-');
    let suffix = parts.next()?;
    let hash = parts.next()?;
    let deployment = parts.next()?;
    let alphanumeric = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    (suffix.len() == 5
        && (6..=10).contains(&hash.len())
        && alphanumeric(suffix)
        && alphanumeric(hash)
        && !deployment.is_empty())
    .then(|| deployment.to_owned())
}

/// A DNS-1123 label: a namespace or container name.
pub fn is_label_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// A DNS-1123 subdomain: a pod, deployment or ReplicaSet name.
pub fn is_subdomain(name: &str) -> bool {
    (1..=253).contains(&name.len()) && name.split('.').all(is_label_name)
}

/// Gathers what the workload of `incident` is doing.
pub async fn gather(
    prometheus: Option<&Prometheus>,
    kube: Option<&api::KubeApi>,
    config: &KubernetesConfig,
    incident: &Incident,
    evidence_id: String,
) -> WorkloadEvidence {
    let mut evidence = WorkloadEvidence {
        schema_version: SchemaVersion::CURRENT,
        evidence_id,
        incident_id: incident.id.clone(),
        status: EvidenceStatus::Ok,
        workload: None,
        replicas: None,
        containers: Vec::new(),
        events: Vec::new(),
        log: None,
        rollouts: Vec::new(),
        notes: Vec::new(),
        collected_at: Utc::now(),
    };
    let workload = match target(incident, config) {
        Ok(workload) => workload,
        Err(why) => {
            evidence.status = EvidenceStatus::NoData { detail: why };
            return evidence;
        }
    };
    let metrics = async {
        match (prometheus, config.metrics) {
            (Some(prometheus), true) => Some(ksm::facts(prometheus, &workload, incident).await),
            _ => None,
        }
    };
    let (facts, read) = tokio::join!(metrics, async {
        match kube {
            Some(kube) => Some(kube.read(&workload, config).await),
            None => None,
        }
    });
    if let Some(facts) = facts {
        evidence.replicas = facts.replicas;
        evidence.containers = facts.containers;
        evidence.notes.extend(facts.notes);
    }
    match read {
        Some(read) => {
            evidence.events = read.events;
            evidence.rollouts = read.rollouts;
            evidence.notes.extend(read.notes);
            // The log of the container that crashed: its previous run, if it restarted.
            evidence.log = read.log;
        }
        None => evidence.notes.push(
            "no Kubernetes API is configured (profile-fetcher's kubernetes.api), so no events, logs or rollout history".to_owned(),
        ),
    }
    let found = evidence.replicas.is_some()
        || !evidence.containers.is_empty()
        || !evidence.events.is_empty()
        || evidence.log.is_some()
        || !evidence.rollouts.is_empty();
    if !found {
        evidence.status = EvidenceStatus::NoData {
            detail: format!(
                "nothing found for {} in namespace {}",
                workload
                    .pod
                    .as_deref()
                    .or(workload.deployment.as_deref())
                    .unwrap_or("the workload"),
                workload.namespace
            ),
        };
    }
    evidence.workload = Some(workload);
    evidence.collected_at = Utc::now();
    evidence
}

#[cfg(test)]
mod tests {
    use test_support::fixtures;

    use super::*;

    fn incident(labels: &[(&str, &str)]) -> Incident {
        let mut incident =
            fixtures::incident_event("inc", "1.0", proto::IncidentChange::Opened, 1).incident;
        incident.alert.labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        incident
    }

    #[test]
    fn the_workload_comes_from_the_labels() {
        let config = KubernetesConfig::default();
        let found = target(
            &incident(&[("namespace", "shop"), ("pod", "checkout-7d9f8b6c5-x2k4z")]),
            &config,
        )
        .unwrap();
        assert_eq!(found.deployment.as_deref(), Some("checkout"));
        assert_eq!(found.pod.as_deref(), Some("checkout-7d9f8b6c5-x2k4z"));
        // Without a pod or deployment, the alert's service names the deployment.
        let by_service = target(&incident(&[("namespace", "shop")]), &config).unwrap();
        assert_eq!(by_service.deployment.as_deref(), Some("svc-inc"));
    }

    #[test]
    fn missing_or_hostile_labels_say_why() {
        let config = KubernetesConfig::default();
        let missing = target(&incident(&[("pod", "x")]), &config).unwrap_err();
        assert!(missing.contains("no namespace label"), "{missing}");
        let hostile = target(
            &incident(&[("namespace", "shop\"} or vector(1) #")]),
            &config,
        )
        .unwrap_err();
        assert!(
            hostile.contains("not a Kubernetes namespace name"),
            "{hostile}"
        );
        let bad_pod = target(
            &incident(&[("namespace", "shop"), ("pod", "a/../b")]),
            &config,
        )
        .unwrap_err();
        assert!(bad_pod.contains("`pod`"), "{bad_pod}");
        assert_eq!(deployment_of_pod("web-1"), None);
        assert_eq!(deployment_of_pod("web-abc-def"), None);
    }
}
