//! A server that answers the Kubernetes API's read calls flamethread makes, as the API server
//! does: objects and lists as k8s-openapi serializes them (`apiVersion`, `kind`, list
//! `metadata.resourceVersion`), failures as `Status` objects with the API server's reasons and
//! messages. No API server can run on these machines, so this stands in for one in the tests, and
//! is at least as strict:
//!
//! - every call needs `Authorization: Bearer <token>` (401 `Unauthorized` otherwise);
//! - RBAC: a call whose verb and resource the emulated Role does not grant is 403 `Forbidden`
//!   with the API server's message (`events is forbidden: User "…" cannot list resource
//!   "events" in API group "" in the namespace "shop"`); [`KubeEmulator::revoke`] takes one away;
//! - label selectors (`k=v`, `k==v`, `k!=v`) and the field selectors the API server supports for
//!   events are parsed, anything else is 400 `BadRequest`; so are bad `tailLines`/`limitBytes`;
//! - a log without `container` for a pod of several containers, of an unknown container, or with
//!   `previous=true` when no previous run is kept is 400, with the API server's message;
//! - [`KubeEmulator::delay`] makes every answer late, as a slow API server does.
//!
//! Served: `GET /apis/apps/v1/namespaces/{ns}/deployments/{name}`,
//! `GET /apis/apps/v1/namespaces/{ns}/replicasets`, `GET /api/v1/namespaces/{ns}/pods`,
//! `GET /api/v1/namespaces/{ns}/pods/{name}`, `GET /api/v1/namespaces/{ns}/pods/{name}/log`,
//! `GET /api/v1/namespaces/{ns}/events`.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    extract::{Path, Query, Request, State},
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
use k8s_openapi::{
    ListableResource, Metadata,
    api::{
        apps::v1::{Deployment, ReplicaSet},
        core::v1::{Event, Pod},
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use serde::Serialize;
use serde_json::{Value, json};

/// The verbs and resources a least-privilege reader is granted (the Role in
/// `k8s/workload-reader/`).
pub const GRANTED: &[(&str, &str)] = &[
    ("get", "deployments"),
    ("list", "replicasets"),
    ("get", "pods"),
    ("list", "pods"),
    ("get", "pods/log"),
    ("list", "events"),
];

/// A container's log, now and of its previous run.
#[derive(Debug, Clone, Default)]
pub struct Logs {
    pub current: String,
    pub previous: Option<String>,
}

#[derive(Debug, Default)]
struct Cluster {
    token: String,
    user: String,
    granted: BTreeSet<(String, String)>,
    delay: Duration,
    deployments: Vec<Deployment>,
    replicasets: Vec<ReplicaSet>,
    pods: Vec<Pod>,
    events: Vec<Event>,
    /// (namespace, pod, container) → logs.
    logs: BTreeMap<(String, String, String), Logs>,
}

/// A running emulator.
#[derive(Debug, Clone)]
pub struct KubeEmulator {
    cluster: Arc<Mutex<Cluster>>,
    /// Where it listens (plain HTTP on loopback).
    pub addr: SocketAddr,
}

type Shared = Arc<Mutex<Cluster>>;

fn lock(cluster: &Shared) -> std::sync::MutexGuard<'_, Cluster> {
    cluster
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl KubeEmulator {
    /// Starts serving on a free loopback port; calls must carry `token`, and act as the service
    /// account `user` with the [`GRANTED`] permissions.
    pub async fn start(token: &str, user: &str) -> std::io::Result<KubeEmulator> {
        let cluster = Arc::new(Mutex::new(Cluster {
            token: token.to_owned(),
            user: user.to_owned(),
            granted: GRANTED
                .iter()
                .map(|(verb, resource)| ((*verb).to_owned(), (*resource).to_owned()))
                .collect(),
            ..Cluster::default()
        }));
        let router = Router::new()
            .route(
                "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
                get(get_deployment),
            )
            .route(
                "/apis/apps/v1/namespaces/{namespace}/replicasets",
                get(list_replicasets),
            )
            .route("/api/v1/namespaces/{namespace}/pods", get(list_pods))
            .route("/api/v1/namespaces/{namespace}/pods/{name}", get(get_pod))
            .route(
                "/api/v1/namespaces/{namespace}/pods/{name}/log",
                get(pod_log),
            )
            .route("/api/v1/namespaces/{namespace}/events", get(list_events))
            .fallback(|| async {
                status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    "the server could not find the requested resource",
                )
            })
            .layer(axum::middleware::from_fn_with_state(
                cluster.clone(),
                authenticate,
            ))
            .with_state(cluster.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(KubeEmulator { cluster, addr })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn add_deployment(&self, deployment: Deployment) {
        lock(&self.cluster).deployments.push(deployment);
    }

    pub fn add_replicaset(&self, replicaset: ReplicaSet) {
        lock(&self.cluster).replicasets.push(replicaset);
    }

    pub fn add_pod(&self, pod: Pod) {
        lock(&self.cluster).pods.push(pod);
    }

    pub fn add_event(&self, event: Event) {
        lock(&self.cluster).events.push(event);
    }

    pub fn set_logs(&self, namespace: &str, pod: &str, container: &str, logs: Logs) {
        lock(&self.cluster).logs.insert(
            (namespace.to_owned(), pod.to_owned(), container.to_owned()),
            logs,
        );
    }

    /// Takes a permission away from the Role, as an operator who trimmed it would.
    pub fn revoke(&self, verb: &str, resource: &str) {
        lock(&self.cluster)
            .granted
            .remove(&(verb.to_owned(), resource.to_owned()));
    }

    /// Every answer waits this long first.
    pub fn delay(&self, delay: Duration) {
        lock(&self.cluster).delay = delay;
    }
}

/// A `Status` object, as the API server writes every failure.
fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code.as_u16(),
        })
        .to_string(),
    )
        .into_response()
}

fn object<T: Serialize>(value: &T) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string(value).unwrap_or_default(),
    )
        .into_response()
}

/// A list as the API server writes it: `<Kind>List` with `metadata.resourceVersion`.
fn list<T: Serialize + ListableResource>(items: Vec<T>) -> Response {
    let items: Vec<Value> = items
        .iter()
        .map(|item| serde_json::to_value(item).unwrap_or(Value::Null))
        .collect();
    object(&json!({
        "kind": T::LIST_KIND,
        "apiVersion": T::API_VERSION,
        "metadata": {"resourceVersion": "12345"},
        "items": items,
    }))
}

async fn authenticate(State(cluster): State<Shared>, request: Request, next: Next) -> Response {
    let delay = lock(&cluster).delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let expected = format!("Bearer {}", lock(&cluster).token);
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    if given != Some(expected.as_str()) {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
    }
    next.run(request).await
}

/// 403 unless the Role grants `verb` on `resource`.
fn authorize(
    cluster: &Cluster,
    verb: &str,
    resource: &str,
    group: &str,
    namespace: &str,
) -> Option<Response> {
    if cluster
        .granted
        .contains(&(verb.to_owned(), resource.to_owned()))
    {
        return None;
    }
    let (plural, sub) = resource.split_once('/').unwrap_or((resource, ""));
    let subresource = if sub.is_empty() {
        format!("resource \"{plural}\"")
    } else {
        format!("resource \"{plural}/{sub}\"")
    };
    Some(status(
        StatusCode::FORBIDDEN,
        "Forbidden",
        &format!(
            "{resource} is forbidden: User \"{}\" cannot {verb} {subresource} in API group \"{group}\" in the namespace \"{namespace}\"",
            cluster.user
        ),
    ))
}

/// An equality-based label selector: `k=v`, `k==v`, `k!=v`, comma-separated.
fn label_selector(text: &str) -> Result<Vec<(String, bool, String)>, String> {
    let mut requirements = Vec::new();
    for part in text.split(',').filter(|part| !part.is_empty()) {
        let (key, equal, value) = if let Some((key, value)) = part.split_once("!=") {
            (key, false, value)
        } else if let Some((key, value)) = part.split_once("==") {
            (key, true, value)
        } else if let Some((key, value)) = part.split_once('=') {
            (key, true, value)
        } else {
            return Err(format!(
                "unable to parse requirement: found '{part}', expected: '=', '!=', '==', 'in', notin'"
            ));
        };
        let valid = |s: &str| {
            s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        };
        if key.is_empty() || !valid(key) || !valid(value) {
            return Err(format!(
                "unable to parse requirement: invalid label selector {part:?}"
            ));
        }
        requirements.push((key.to_owned(), equal, value.to_owned()));
    }
    Ok(requirements)
}

fn selected(meta: &ObjectMeta, requirements: &[(String, bool, String)]) -> bool {
    requirements.iter().all(|(key, equal, value)| {
        let has = meta
            .labels
            .as_ref()
            .and_then(|labels| labels.get(key))
            .is_some_and(|label| label == value);
        has == *equal
    })
}

fn in_namespace<T: Metadata<Ty = ObjectMeta>>(item: &T, namespace: &str) -> bool {
    item.metadata().namespace.as_deref() == Some(namespace)
}

fn named<T: Metadata<Ty = ObjectMeta>>(item: &T, name: &str) -> bool {
    item.metadata().name.as_deref() == Some(name)
}

fn not_found(kind: &str, name: &str) -> Response {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("{kind} \"{name}\" not found"),
    )
}

type Params = Query<BTreeMap<String, String>>;

fn labels_of(params: &BTreeMap<String, String>) -> Result<Vec<(String, bool, String)>, String> {
    label_selector(params.get("labelSelector").map_or("", String::as_str))
}

async fn get_deployment(
    State(cluster): State<Shared>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    let cluster = lock(&cluster);
    if let Some(refused) = authorize(&cluster, "get", "deployments", "apps", &namespace) {
        return refused;
    }
    match cluster
        .deployments
        .iter()
        .find(|d| in_namespace(*d, &namespace) && named(*d, &name))
    {
        Some(deployment) => object(deployment),
        None => not_found("deployments.apps", &name),
    }
}

async fn list_replicasets(
    State(cluster): State<Shared>,
    Path(namespace): Path<String>,
    Query(params): Params,
) -> Response {
    let cluster = lock(&cluster);
    if let Some(refused) = authorize(&cluster, "list", "replicasets", "apps", &namespace) {
        return refused;
    }
    let requirements = match labels_of(&params) {
        Ok(requirements) => requirements,
        Err(err) => return status(StatusCode::BAD_REQUEST, "BadRequest", &err),
    };
    list(
        cluster
            .replicasets
            .iter()
            .filter(|rs| in_namespace(*rs, &namespace) && selected(&rs.metadata, &requirements))
            .cloned()
            .collect(),
    )
}

async fn list_pods(
    State(cluster): State<Shared>,
    Path(namespace): Path<String>,
    Query(params): Params,
) -> Response {
    let cluster = lock(&cluster);
    if let Some(refused) = authorize(&cluster, "list", "pods", "", &namespace) {
        return refused;
    }
    let requirements = match labels_of(&params) {
        Ok(requirements) => requirements,
        Err(err) => return status(StatusCode::BAD_REQUEST, "BadRequest", &err),
    };
    list(
        cluster
            .pods
            .iter()
            .filter(|pod| in_namespace(*pod, &namespace) && selected(&pod.metadata, &requirements))
            .cloned()
            .collect(),
    )
}

async fn get_pod(
    State(cluster): State<Shared>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    let cluster = lock(&cluster);
    if let Some(refused) = authorize(&cluster, "get", "pods", "", &namespace) {
        return refused;
    }
    match cluster
        .pods
        .iter()
        .find(|pod| in_namespace(*pod, &namespace) && named(*pod, &name))
    {
        Some(pod) => object(pod),
        None => not_found("pods", &name),
    }
}

async fn pod_log(
    State(cluster): State<Shared>,
    Path((namespace, name)): Path<(String, String)>,
    Query(params): Params,
) -> Response {
    let cluster = lock(&cluster);
    if let Some(refused) = authorize(&cluster, "get", "pods/log", "", &namespace) {
        return refused;
    }
    let bad = |message: &str| status(StatusCode::BAD_REQUEST, "BadRequest", message);
    let Some(pod) = cluster
        .pods
        .iter()
        .find(|pod| in_namespace(*pod, &namespace) && named(*pod, &name))
    else {
        return not_found("pods", &name);
    };
    let containers: Vec<String> = pod
        .spec
        .as_ref()
        .map(|spec| spec.containers.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default();
    let container = match params.get("container") {
        Some(container) => container.clone(),
        None if containers.len() == 1 => containers[0].clone(),
        None => {
            return bad(&format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            ));
        }
    };
    if !containers.contains(&container) {
        return bad(&format!(
            "container {container} is not valid for pod {name}"
        ));
    }
    let number = |key: &str, least: i64| -> Result<Option<i64>, String> {
        match params.get(key) {
            None => Ok(None),
            Some(text) => match text.parse::<i64>() {
                Ok(value) if value >= least => Ok(Some(value)),
                _ => Err(format!(
                    "{key}: Invalid value: \"{text}\": must be greater than or equal to {least}"
                )),
            },
        }
    };
    let (tail_lines, limit_bytes) = match (number("tailLines", 0), number("limitBytes", 1)) {
        (Ok(tail), Ok(limit)) => (tail, limit),
        (Err(err), _) | (_, Err(err)) => return bad(&err),
    };
    let previous = match params.get("previous").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => return bad(&format!("previous: Invalid value: \"{other}\"")),
    };
    let logs = cluster
        .logs
        .get(&(namespace.clone(), name.clone(), container.clone()))
        .cloned()
        .unwrap_or_default();
    let text = if previous {
        match logs.previous {
            Some(text) => text,
            None => {
                return bad(&format!(
                    "previous terminated container \"{container}\" in pod \"{name}\" not found"
                ));
            }
        }
    } else {
        logs.current
    };
    // tailLines first, then limitBytes, as the kubelet applies them.
    let mut text = match tail_lines {
        Some(tail) => {
            let lines: Vec<&str> = text.lines().collect();
            let keep = lines.len().saturating_sub(tail as usize);
            let mut kept = lines[keep..].join("\n");
            if !kept.is_empty() {
                kept.push('\n');
            }
            kept
        }
        None => text,
    };
    if let Some(limit) = limit_bytes {
        let mut cut = (limit as usize).min(text.len());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    ([(header::CONTENT_TYPE, "text/plain")], text).into_response()
}

/// The field selectors the API server supports for events.
const EVENT_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
    "metadata.name",
    "metadata.namespace",
];

fn event_field(event: &Event, field: &str) -> String {
    let object = &event.involved_object;
    match field {
        "involvedObject.kind" => object.kind.clone(),
        "involvedObject.namespace" => object.namespace.clone(),
        "involvedObject.name" => object.name.clone(),
        "involvedObject.uid" => object.uid.clone(),
        "involvedObject.apiVersion" => object.api_version.clone(),
        "involvedObject.resourceVersion" => object.resource_version.clone(),
        "involvedObject.fieldPath" => object.field_path.clone(),
        "reason" => event.reason.clone(),
        "reportingComponent" => event.reporting_component.clone(),
        "source" => event
            .source
            .as_ref()
            .and_then(|source| source.component.clone()),
        "type" => event.type_.clone(),
        "metadata.name" => event.metadata.name.clone(),
        "metadata.namespace" => event.metadata.namespace.clone(),
        _ => None,
    }
    .unwrap_or_default()
}

async fn list_events(
    State(cluster): State<Shared>,
    Path(namespace): Path<String>,
    Query(params): Params,
) -> Response {
    let cluster = lock(&cluster);
    if let Some(refused) = authorize(&cluster, "list", "events", "", &namespace) {
        return refused;
    }
    let mut fields = Vec::new();
    for part in params
        .get("fieldSelector")
        .map_or("", String::as_str)
        .split(',')
        .filter(|part| !part.is_empty())
    {
        let (key, equal, value) = if let Some((key, value)) = part.split_once("!=") {
            (key, false, value)
        } else if let Some((key, value)) = part.split_once("==") {
            (key, true, value)
        } else if let Some((key, value)) = part.split_once('=') {
            (key, true, value)
        } else {
            return status(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!("invalid selector: '{part}'; can't understand '{part}'"),
            );
        };
        if !EVENT_FIELDS.contains(&key) {
            return status(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!("field label not supported: {key}"),
            );
        }
        fields.push((key.to_owned(), equal, value.to_owned()));
    }
    let limit = match params.get("limit").map(|text| text.parse::<usize>()) {
        None => usize::MAX,
        Some(Ok(limit)) => limit.max(1),
        Some(Err(_)) => {
            return status(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "limit: Invalid value",
            );
        }
    };
    list(
        cluster
            .events
            .iter()
            .filter(|event| in_namespace(*event, &namespace))
            .filter(|event| {
                fields
                    .iter()
                    .all(|(key, equal, value)| (event_field(event, key) == *value) == *equal)
            })
            .take(limit)
            .cloned()
            .collect(),
    )
}

/// Builders of the objects a scenario needs, shaped as the API server returns them.
pub mod objects {
    use k8s_openapi::{
        api::{
            apps::v1::{Deployment, DeploymentSpec, DeploymentStatus, ReplicaSet, ReplicaSetSpec},
            core::v1::{
                Container, ContainerState, ContainerStateTerminated, ContainerStatus, Event,
                ObjectReference, Pod, PodSpec, PodStatus, PodTemplateSpec,
            },
        },
        apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference, Time},
        jiff::Timestamp,
    };
    use std::collections::BTreeMap;

    fn time(unix: i64) -> Time {
        Time(Timestamp::from_second(unix).unwrap_or(Timestamp::UNIX_EPOCH))
    }

    fn labels(app: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("app".to_owned(), app.to_owned())])
    }

    fn meta(namespace: &str, name: &str, app: &str) -> ObjectMeta {
        ObjectMeta {
            namespace: Some(namespace.to_owned()),
            name: Some(name.to_owned()),
            uid: Some(format!("uid-{name}")),
            labels: Some(labels(app)),
            ..ObjectMeta::default()
        }
    }

    fn owner(kind: &str, api_version: &str, name: &str) -> Vec<OwnerReference> {
        vec![OwnerReference {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            name: name.to_owned(),
            uid: format!("uid-{name}"),
            controller: Some(true),
            ..OwnerReference::default()
        }]
    }

    /// A deployment selecting `app=<name>`.
    pub fn deployment(namespace: &str, name: &str, desired: i32, ready: i32) -> Deployment {
        Deployment {
            metadata: meta(namespace, name, name),
            spec: Some(DeploymentSpec {
                replicas: Some(desired),
                selector: LabelSelector {
                    match_labels: Some(labels(name)),
                    ..LabelSelector::default()
                },
                ..DeploymentSpec::default()
            }),
            status: Some(DeploymentStatus {
                replicas: Some(desired),
                ready_replicas: Some(ready),
                ..DeploymentStatus::default()
            }),
        }
    }

    /// A ReplicaSet of `deployment` at `revision`, running `image`, created at `created`.
    pub fn replicaset(
        namespace: &str,
        deployment: &str,
        name: &str,
        revision: u64,
        image: &str,
        created: i64,
    ) -> ReplicaSet {
        let mut metadata = meta(namespace, name, deployment);
        metadata.owner_references = Some(owner("Deployment", "apps/v1", deployment));
        metadata.annotations = Some(BTreeMap::from([(
            "deployment.kubernetes.io/revision".to_owned(),
            revision.to_string(),
        )]));
        metadata.creation_timestamp = Some(time(created));
        ReplicaSet {
            metadata,
            spec: Some(ReplicaSetSpec {
                selector: LabelSelector {
                    match_labels: Some(labels(deployment)),
                    ..LabelSelector::default()
                },
                template: Some(PodTemplateSpec {
                    metadata: None,
                    spec: Some(PodSpec {
                        containers: vec![Container {
                            name: deployment.to_owned(),
                            image: Some(image.to_owned()),
                            ..Container::default()
                        }],
                        ..PodSpec::default()
                    }),
                }),
                ..ReplicaSetSpec::default()
            }),
            status: None,
        }
    }

    /// A pod of `replicaset` (labelled `app=<app>`) with one container per `(name, restarts,
    /// last terminated reason)`.
    pub fn pod(
        namespace: &str,
        app: &str,
        replicaset: &str,
        name: &str,
        containers: &[(&str, i32, Option<&str>)],
    ) -> Pod {
        let mut metadata = meta(namespace, name, app);
        metadata.owner_references = Some(owner("ReplicaSet", "apps/v1", replicaset));
        Pod {
            metadata,
            spec: Some(PodSpec {
                containers: containers
                    .iter()
                    .map(|(container, _, _)| Container {
                        name: (*container).to_owned(),
                        ..Container::default()
                    })
                    .collect(),
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                phase: Some("Running".to_owned()),
                container_statuses: Some(
                    containers
                        .iter()
                        .map(|(container, restarts, reason)| ContainerStatus {
                            name: (*container).to_owned(),
                            restart_count: *restarts,
                            ready: reason.is_none(),
                            last_state: reason.map(|reason| ContainerState {
                                terminated: Some(ContainerStateTerminated {
                                    reason: Some(reason.to_owned()),
                                    exit_code: 137,
                                    ..ContainerStateTerminated::default()
                                }),
                                ..ContainerState::default()
                            }),
                            ..ContainerStatus::default()
                        })
                        .collect(),
                ),
                ..PodStatus::default()
            }),
        }
    }

    /// An event about `kind/name`.
    pub fn event(
        namespace: &str,
        kind: &str,
        name: &str,
        type_: &str,
        reason: &str,
        message: &str,
        at: i64,
    ) -> Event {
        Event {
            metadata: ObjectMeta {
                namespace: Some(namespace.to_owned()),
                name: Some(format!("{name}.{at:x}")),
                creation_timestamp: Some(time(at)),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                kind: Some(kind.to_owned()),
                name: Some(name.to_owned()),
                namespace: Some(namespace.to_owned()),
                ..ObjectReference::default()
            },
            type_: Some(type_.to_owned()),
            reason: Some(reason.to_owned()),
            message: Some(message.to_owned()),
            last_timestamp: Some(time(at)),
            count: Some(1),
            ..Event::default()
        }
    }
}
