//! The flamegraph pages at permanent, shareable URLs: `/flamegraphs/<evidence id>` (interactive
//! SVG), `/flamegraphs/<id>/diff` (against the baseline) and `/flamegraphs/<id>/folded` (the folded
//! stacks, for download). Everything is read from the NATS object store, so any replica serves any
//! page and a restart loses none.

use std::sync::Arc;

use axum::{
    Router,
    body::Body,
    extract::{Path, State},
    http::{HeaderValue, StatusCode, header},
    middleware,
    response::{IntoResponse, Response},
    routing::get,
};
use bus::Bus;
use tokio::sync::Semaphore;
use tokio_util::io::ReaderStream;

use proto::keys::object;
use proto::pages::routes;

/// Pages streamed at once; more are told to come back (a flamegraph can be megabytes).
const MAX_IN_FLIGHT: usize = 32;

/// What every page says about itself: its scripts may not load or send anything anywhere (the
/// interactive flamegraph needs its own inline script and styles, nothing else), no other site
/// may frame it or learn its URL, the browser must not guess another type, and only the reader's
/// own browser keeps a copy.
const SECURITY_HEADERS: &[(header::HeaderName, &str)] = &[
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::CACHE_CONTROL, "private, max-age=86400"),
];

#[derive(Clone)]
struct Pages {
    bus: Arc<Bus>,
    in_flight: Arc<Semaphore>,
}

pub fn router(bus: Bus) -> Router {
    Router::new()
        .route(routes::FLAMEGRAPH, get(flamegraph))
        .route(routes::FLAMEGRAPH_DIFF, get(diff))
        .route(routes::FLAMEGRAPH_FOLDED, get(folded))
        .route(routes::CHART, get(chart))
        .route(routes::CHART_PNG, get(chart_png))
        .with_state(Pages {
            bus: Arc::new(bus),
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        })
        .layer(middleware::map_response(secure))
}

pub(crate) async fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name.clone(), HeaderValue::from_static(value));
    }
    response
}

async fn flamegraph(State(pages): State<Pages>, Path(id): Path<String>) -> Response {
    page(&pages, &id, object::flamegraph, "image/svg+xml").await
}

async fn diff(State(pages): State<Pages>, Path(id): Path<String>) -> Response {
    page(&pages, &id, object::diff, "image/svg+xml").await
}

async fn chart(State(pages): State<Pages>, Path(id): Path<String>) -> Response {
    page(&pages, &id, object::chart, "image/svg+xml").await
}

async fn chart_png(State(pages): State<Pages>, Path(id): Path<String>) -> Response {
    page(&pages, &id, object::chart_png, "image/png").await
}

async fn folded(State(pages): State<Pages>, Path(id): Path<String>) -> Response {
    page(&pages, &id, object::folded, "text/plain; charset=utf-8").await
}

async fn page(pages: &Pages, id: &str, key: fn(&str) -> String, content_type: &str) -> Response {
    let valid = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !id.contains("..");
    if !valid {
        return (StatusCode::BAD_REQUEST, "not an evidence id").into_response();
    }
    let Ok(permit) = pages.in_flight.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "2")],
            "busy serving other pages; try again in a moment",
        )
            .into_response();
    };
    let bus = &pages.bus;
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
    let object = match store.get(key(id)).await {
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
    // Streamed as it is read; the permit is held until the last byte is sent.
    let stream = ReaderStream::new(object);
    let body = Body::from_stream(holding(stream, permit));
    ([(header::CONTENT_TYPE, content_type.to_owned())], body).into_response()
}

/// `stream`, holding `permit` until it ends.
fn holding<S: futures::Stream + Send + 'static>(
    stream: S,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> impl futures::Stream<Item = S::Item> + Send + 'static {
    use futures::StreamExt as _;
    stream.map(move |item| {
        let _held = &permit;
        item
    })
}
