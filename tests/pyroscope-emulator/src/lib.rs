//! A server that speaks Pyroscope's query APIs as Grafana Pyroscope 1.x does: the Connect API
//! (`POST /querier.v1.QuerierService/{SelectMergeStacktraces,SelectMergeSpanProfile,ProfileTypes,
//! LabelValues}`, JSON, int64s as strings, errors as `{"code","message"}`) and the legacy
//! `GET /pyroscope/render` flamebearer (numbers). It serves profiles ingested as folded stacks
//! (taken by real profilers in the tests), merged over the asked window, laid out as Pyroscope
//! lays out flamegraphs. A profile ingested with a span id is a span profile: its samples carry
//! the `span_id` label, as an SDK's span profiling labels them, and `SelectMergeSpanProfile`
//! answers only those of the asked spans (ids as Pyroscope parses them: 16 hex digits).

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    extract::{Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use chrono::{DateTime, Utc};
use profile_fetcher::profile::{Folded, flamebearer::Flamegraph};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
struct Ingested {
    app: String,
    profile_type: String,
    at: DateTime<Utc>,
    /// The `span_id` label of the samples, for span profiles.
    span_id: Option<String>,
    folded: Folded,
}

#[derive(Debug, Default)]
struct Store {
    profiles: Vec<Ingested>,
    /// When set, every call must carry this `X-Scope-OrgID`.
    tenant: Option<String>,
}

/// A running emulator.
#[derive(Debug, Clone)]
pub struct PyroscopeEmulator {
    store: Arc<Mutex<Store>>,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl PyroscopeEmulator {
    /// Starts serving on a free loopback port; with `tenant`, every call must carry it as
    /// `X-Scope-OrgID`, as a multi-tenant Pyroscope requires.
    pub async fn start(tenant: Option<&str>) -> std::io::Result<PyroscopeEmulator> {
        Self::start_at(SocketAddr::from(([127, 0, 0, 1], 0)), tenant).await
    }

    /// As [`PyroscopeEmulator::start`], listening on `addr` (e.g. on every interface, for
    /// services in containers).
    pub async fn start_at(
        addr: SocketAddr,
        tenant: Option<&str>,
    ) -> std::io::Result<PyroscopeEmulator> {
        let store = Arc::new(Mutex::new(Store {
            profiles: Vec::new(),
            tenant: tenant.map(str::to_owned),
        }));
        let router = Router::new()
            .route(
                "/querier.v1.QuerierService/SelectMergeStacktraces",
                post(select_merge_stacktraces),
            )
            .route(
                "/querier.v1.QuerierService/SelectMergeSpanProfile",
                post(select_merge_span_profile),
            )
            .route(
                "/querier.v1.QuerierService/ProfileTypes",
                post(profile_types),
            )
            .route("/querier.v1.QuerierService/LabelValues", post(label_values))
            .route("/pyroscope/render", get(render))
            .with_state(store.clone());
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, router).await });
        Ok(PyroscopeEmulator { store, addr })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Ingests a profile of `app` taken at `at`.
    pub fn ingest(&self, app: &str, profile_type: &str, at: DateTime<Utc>, folded: Folded) {
        self.push(Ingested {
            app: app.to_owned(),
            profile_type: profile_type.to_owned(),
            at,
            span_id: None,
            folded,
        });
    }

    /// Ingests the samples `app` took inside span `span_id` (16 hex digits) at `at`. They are
    /// part of the app's whole profile too, as labelled samples are in Pyroscope.
    pub fn ingest_span(
        &self,
        app: &str,
        profile_type: &str,
        at: DateTime<Utc>,
        span_id: &str,
        folded: Folded,
    ) {
        self.push(Ingested {
            app: app.to_owned(),
            profile_type: profile_type.to_owned(),
            at,
            span_id: Some(span_id.to_owned()),
            folded,
        });
    }

    fn push(&self, ingested: Ingested) {
        self.store
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .profiles
            .push(ingested);
    }
}

fn connect_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"code": code, "message": message}))).into_response()
}

/// The refusal, when the call does not carry the tenant the server wants.
fn refuse_tenant(store: &Store, headers: &HeaderMap) -> Option<Response> {
    let tenant = store.tenant.as_deref()?;
    let sent = headers.get("x-scope-orgid").and_then(|v| v.to_str().ok());
    (sent != Some(tenant))
        .then(|| connect_error(StatusCode::UNAUTHORIZED, "unauthenticated", "no org id"))
}

/// Milliseconds from a protojson int64 (a string) or a number.
fn millis(value: &Value) -> Option<i64> {
    value
        .as_i64()
        .or_else(|| value.as_str().and_then(|text| text.parse().ok()))
}

/// `{service_name="checkout"}` → ("service_name", "checkout").
fn selector(text: &str) -> Option<(String, String)> {
    let inner = text.trim().strip_prefix('{')?.strip_suffix('}')?;
    let (label, value) = inner.split_once('=')?;
    let value = value.trim().strip_prefix('"')?.strip_suffix('"')?;
    Some((label.trim().to_owned(), value.replace("\\\"", "\"")))
}

fn merged(
    store: &Store,
    app: &str,
    profile_type: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Folded {
    merged_where(store, app, profile_type, from, to, |_| true)
}

fn merged_where(
    store: &Store,
    app: &str,
    profile_type: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    keep: impl Fn(&Ingested) -> bool,
) -> Folded {
    let mut merged = Folded::new();
    for profile in &store.profiles {
        if profile.app == app
            && profile.profile_type == profile_type
            && profile.at >= from
            && profile.at < to
            && keep(profile)
        {
            for (stack, value) in &profile.folded {
                *merged.entry(stack.clone()).or_default() += value;
            }
        }
    }
    merged
}

fn max_self(flamegraph: &Flamegraph) -> i64 {
    flamegraph
        .levels
        .iter()
        .flat_map(|level| level.chunks_exact(4).map(|node| node[2]))
        .max()
        .unwrap_or(0)
}

/// What a `SelectMerge…` call asks for, as every one of them says it.
struct MergeRequest {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    profile_type: String,
    label: String,
    app: String,
}

/// Reads the fields every `SelectMerge…` call needs; a refusal when one is missing.
fn merge_request(body: &Value) -> Result<MergeRequest, Box<Response>> {
    let (Some(start), Some(end), Some(profile_type), Some((label, app))) = (
        millis(&body["start"]),
        millis(&body["end"]),
        body["profileTypeID"].as_str(),
        body["labelSelector"].as_str().and_then(selector),
    ) else {
        return Err(Box::new(connect_error(
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            "start, end, profileTypeID and labelSelector are required",
        )));
    };
    Ok(MergeRequest {
        from: DateTime::from_timestamp_millis(start).unwrap_or_default(),
        to: DateTime::from_timestamp_millis(end).unwrap_or_default(),
        profile_type: profile_type.to_owned(),
        label,
        app,
    })
}

async fn select_merge_stacktraces(
    State(store): State<Arc<Mutex<Store>>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let store = store.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(refused) = refuse_tenant(&store, &headers) {
        return refused;
    }
    let asked = match merge_request(&body) {
        Ok(asked) => asked,
        Err(refused) => return *refused,
    };
    if asked.label != "service_name" {
        return Json(json!({})).into_response();
    }
    connect_flamegraph(&merged(
        &store,
        &asked.app,
        &asked.profile_type,
        asked.from,
        asked.to,
    ))
}

/// The flamegraph of `folded` as the Connect API answers it.
fn connect_flamegraph(folded: &Folded) -> Response {
    let flamegraph = Flamegraph::from_folded(folded);
    let total: u64 = folded.values().sum();
    Json(json!({"flamegraph": {
        "names": flamegraph.names,
        "levels": flamegraph.levels.iter().map(|level| json!({
            "values": level.iter().map(ToString::to_string).collect::<Vec<_>>()
        })).collect::<Vec<_>>(),
        "total": total.to_string(),
        "maxSelf": max_self(&flamegraph).to_string(),
    }}))
    .into_response()
}

async fn select_merge_span_profile(
    State(store): State<Arc<Mutex<Store>>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let store = store.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(refused) = refuse_tenant(&store, &headers) {
        return refused;
    }
    let asked = match merge_request(&body) {
        Ok(asked) => asked,
        Err(refused) => return *refused,
    };
    let Some(spans) = body["spanSelector"].as_array() else {
        return connect_error(
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            "spanSelector is required",
        );
    };
    // Pyroscope parses each span id as 8 bytes of hex and refuses the call otherwise.
    let mut wanted = std::collections::BTreeSet::new();
    for span in spans {
        match span.as_str() {
            Some(id) if id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()) => {
                wanted.insert(id.to_ascii_lowercase());
            }
            _ => {
                return connect_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_argument",
                    &format!("invalid span id: {span}"),
                );
            }
        }
    }
    if asked.label != "service_name" {
        return Json(json!({})).into_response();
    }
    connect_flamegraph(&merged_where(
        &store,
        &asked.app,
        &asked.profile_type,
        asked.from,
        asked.to,
        |profile| {
            profile
                .span_id
                .as_ref()
                .is_some_and(|id| wanted.contains(id))
        },
    ))
}

async fn profile_types(State(store): State<Arc<Mutex<Store>>>, headers: HeaderMap) -> Response {
    let store = store.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(refused) = refuse_tenant(&store, &headers) {
        return refused;
    }
    let types: std::collections::BTreeSet<&str> = store
        .profiles
        .iter()
        .map(|profile| profile.profile_type.as_str())
        .collect();
    Json(json!({"profileTypes": types.into_iter().map(|id| {
        let parts: Vec<&str> = id.split(':').collect();
        json!({"ID": id, "name": parts[0], "sampleType": parts[1], "sampleUnit": parts[2], "periodType": parts[3], "periodUnit": parts[4]})
    }).collect::<Vec<_>>()}))
    .into_response()
}

async fn label_values(
    State(store): State<Arc<Mutex<Store>>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let store = store.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(refused) = refuse_tenant(&store, &headers) {
        return refused;
    }
    let names: std::collections::BTreeSet<&str> = if body["name"] == "service_name" {
        store.profiles.iter().map(|p| p.app.as_str()).collect()
    } else {
        Default::default()
    };
    Json(json!({"names": names})).into_response()
}

async fn render(
    State(store): State<Arc<Mutex<Store>>>,
    headers: HeaderMap,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    let store = store.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(refused) = refuse_tenant(&store, &headers) {
        return refused;
    }
    let query = params.get("query").map(String::as_str).unwrap_or_default();
    let Some(brace) = query.find('{') else {
        return (StatusCode::BAD_REQUEST, "invalid query").into_response();
    };
    let (profile_type, selector_text) = query.split_at(brace);
    let seconds = |key: &str| {
        params
            .get(key)
            .and_then(|text| text.parse::<i64>().ok())
            .and_then(|seconds| DateTime::from_timestamp(seconds, 0))
    };
    let (Some((_, app)), Some(from), Some(until)) =
        (selector(selector_text), seconds("from"), seconds("until"))
    else {
        return (StatusCode::BAD_REQUEST, "invalid query").into_response();
    };
    let folded = merged(&store, &app, profile_type, from, until);
    let flamegraph = Flamegraph::from_folded(&folded);
    let total: u64 = folded.values().sum();
    Json(json!({
        "version": 1,
        "flamebearer": {
            "names": flamegraph.names,
            "levels": flamegraph.levels,
            "numTicks": total,
            "maxSelf": max_self(&flamegraph),
        },
        "metadata": {"format": "single", "spyName": "pyspy", "sampleRate": 100, "units": "samples", "name": profile_type},
        "timeline": null, "groups": null, "heatmap": null
    }))
    .into_response()
}
