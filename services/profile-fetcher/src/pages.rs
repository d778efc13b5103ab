//! The flamegraph pages at permanent, shareable URLs: `/flamegraphs/<evidence id>` (interactive
//! SVG), `/flamegraphs/<id>/diff` (against the baseline) and `/flamegraphs/<id>/folded` (the folded
//! stacks, for download). Everything is read from the NATS object store, so any replica serves any
//! page and a restart loses none.

use std::sync::Arc;

use axum::{
    Router,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use bus::Bus;
use tokio::io::AsyncReadExt as _;

/// Object store keys of an evidence's pages (shared with the sandbox runner).
pub use profiling::keys::{
    chart as chart_key, diff as diff_key, flamegraph as svg_key, folded as folded_key,
};

pub fn router(bus: Bus) -> Router {
    Router::new()
        .route("/flamegraphs/{id}", get(flamegraph))
        .route("/flamegraphs/{id}/diff", get(diff))
        .route("/flamegraphs/{id}/folded", get(folded))
        .route("/charts/{id}", get(chart))
        .with_state(Arc::new(bus))
}

async fn flamegraph(State(bus): State<Arc<Bus>>, Path(id): Path<String>) -> Response {
    page(&bus, &id, svg_key, "image/svg+xml").await
}

async fn diff(State(bus): State<Arc<Bus>>, Path(id): Path<String>) -> Response {
    page(&bus, &id, diff_key, "image/svg+xml").await
}

async fn chart(State(bus): State<Arc<Bus>>, Path(id): Path<String>) -> Response {
    page(&bus, &id, chart_key, "image/svg+xml").await
}

async fn folded(State(bus): State<Arc<Bus>>, Path(id): Path<String>) -> Response {
    page(&bus, &id, folded_key, "text/plain; charset=utf-8").await
}

async fn page(bus: &Bus, id: &str, key: fn(&str) -> String, content_type: &str) -> Response {
    let valid = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !id.contains("..");
    if !valid {
        return (StatusCode::BAD_REQUEST, "not an evidence id").into_response();
    }
    let store = match bus.blob_store().await {
        Ok(store) => store,
        Err(err) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("object store: {err}"),
            )
                .into_response();
        }
    };
    let mut object = match store.get(key(id)).await {
        Ok(object) => object,
        Err(err) if err.kind() == async_nats::jetstream::object_store::GetErrorKind::NotFound => {
            return (StatusCode::NOT_FOUND, format!("no such page: {id}")).into_response();
        }
        Err(err) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("object store: {err}"),
            )
                .into_response();
        }
    };
    let mut body = Vec::new();
    if let Err(err) = object.read_to_end(&mut body).await {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("object store: {err}"),
        )
            .into_response();
    }
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            // The page of an evidence id never changes.
            (
                header::CACHE_CONTROL,
                "public, max-age=31536000, immutable".to_owned(),
            ),
        ],
        body,
    )
        .into_response()
}
