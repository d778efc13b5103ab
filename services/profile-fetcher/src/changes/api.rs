//! The markers API, on the pages listener: a CI job records a deploy with one `curl`, and anyone
//! with the token lists what was recorded.
//!
//! ```text
//! curl -H "Authorization: Bearer $FT_CHANGES_TOKEN" -H 'Content-Type: application/json' \
//!      -d '{"service":"checkout","version":"1.4.2","who":"CI run 812","url":"https://ci/812"}' \
//!      https://flamethread.example/api/v1/changes
//! curl -H "Authorization: Bearer $FT_CHANGES_TOKEN" \
//!      'https://flamethread.example/api/v1/changes?service=checkout&since=6h'
//! ```
//!
//! Every answer is JSON; every refusal is `{"error": "<what is wrong>"}` with the status that says
//! whose fault it is. A change is stored on the bus (at least once, deduplicated by its id) before
//! `201 Created` is answered, so an answered change is never lost.

use std::sync::Arc;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{
        DefaultBodyLimit, Query, State,
        rejection::{BytesRejection, QueryRejection},
    },
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use bus::Bus;
use chrono::{DateTime, Utc};
use proto::{Change, ChangeSource, NewChange, Subject, change::limits};
use serde::Deserialize;
use serde_json::json;

use crate::config::Secret;

/// Most changes one `GET` lists.
pub const MAX_LISTED: usize = 500;

#[derive(Clone)]
struct Markers {
    bus: Bus,
    token: Arc<Secret>,
}

/// `/api/v1/changes`: `POST` records, `GET` lists.
pub fn router(bus: Bus, token: Secret) -> Router {
    let markers = Markers {
        bus,
        token: Arc::new(token),
    };
    Router::new()
        .route(
            "/api/v1/changes",
            get(list).post(record).fallback(|| async {
                refuse(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "`POST` records a change, `GET` lists them",
                )
            }),
        )
        .layer(DefaultBodyLimit::max(limits::BODY_BYTES))
        // The token is checked before a byte of the body is read.
        .route_layer(axum::middleware::from_fn_with_state(
            markers.clone(),
            authenticate,
        ))
        .with_state(markers)
}

fn refuse(status: StatusCode, error: impl std::fmt::Display) -> Response {
    count(status);
    (status, Json(json!({ "error": error.to_string() }))).into_response()
}

fn count(status: StatusCode) {
    ::metrics::counter!("ft_fetcher_markers_api_total", "status" => status.as_u16().to_string())
        .increment(1);
}

async fn authenticate(
    State(markers): State<Markers>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let token = markers.token.expose();
    if token.is_empty() {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "the markers API is off: set profile-fetcher's changes.api_token",
        );
    }
    if !crate::http_api::bearer_is(request.headers(), token) {
        count(StatusCode::UNAUTHORIZED);
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(json!({ "error": "this API needs `Authorization: Bearer <changes.api_token>`" })),
        )
            .into_response();
    }
    next.run(request).await
}

async fn record(
    State(markers): State<Markers>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let json = crate::http_api::media_type(&headers) == "application/json";
    if !json {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the change as JSON (Content-Type: application/json)",
        );
    }
    // Too large (413) or cut off: said in JSON like every other refusal.
    let body = match body {
        Ok(body) => body,
        Err(err) => return refuse(err.status(), err.body_text()),
    };
    let new: NewChange = match serde_json::from_slice(&body) {
        Ok(new) => new,
        Err(err) => return refuse(StatusCode::BAD_REQUEST, format!("not a change: {err}")),
    };
    let change = match new.into_change(ChangeSource::Api, Utc::now(), || {
        uuid::Uuid::now_v7().to_string()
    }) {
        Ok(change) => change,
        Err(err) => return refuse(StatusCode::UNPROCESSABLE_ENTITY, err),
    };
    match markers.bus.publish(&change).await {
        Ok(published) => {
            let status = if published.duplicate {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            count(status);
            tracing::info!(change = %change.change_id, service = %change.service, duplicate = published.duplicate, "change recorded");
            (
                status,
                Json(json!({ "id": change.change_id, "at": change.at, "change": change })),
            )
                .into_response()
        }
        Err(err) => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the change could not be stored, try again: {err}"),
        ),
    }
}

/// `GET` parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Only this service's changes (compared without case).
    service: Option<String>,
    /// How far back: a duration (`6h`, `2d`) or an RFC 3339 time. Default `24h`.
    since: Option<String>,
    /// Most changes listed, newest first. Default 100, at most [`MAX_LISTED`].
    limit: Option<usize>,
}

async fn list(
    State(markers): State<Markers>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(query) => query,
        Err(err) => return refuse(StatusCode::BAD_REQUEST, err.body_text()),
    };
    let now = Utc::now();
    let since = match parse_since(query.since.as_deref(), now) {
        Ok(since) => since,
        Err(err) => return refuse(StatusCode::BAD_REQUEST, err),
    };
    let limit = query.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_LISTED {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!("`limit` is 1 to {MAX_LISTED}"),
        );
    }
    let history = match markers
        .bus
        .read_since::<Change>(Subject::ChangeRecorded, since, 20 * MAX_LISTED)
        .await
    {
        Ok(history) => history,
        Err(err) => return refuse(StatusCode::SERVICE_UNAVAILABLE, err),
    };
    let mut changes: Vec<Change> = history
        .messages
        .into_iter()
        .filter(|change| {
            query
                .service
                .as_deref()
                .is_none_or(|service| change.concerns([service]))
        })
        .collect();
    changes.sort_by_key(|change| std::cmp::Reverse(change.at));
    // More than asked for, or more than one read holds: the caller narrows `since` or `service`.
    let truncated = history.truncated || changes.len() > limit;
    changes.truncate(limit);
    count(StatusCode::OK);
    Json(json!({ "since": since, "changes": changes, "truncated": truncated })).into_response()
}

/// `since` as a duration back from `now` or an RFC 3339 time, within the stream's retention.
fn parse_since(since: Option<&str>, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let month = chrono::Duration::days(30);
    let at = match since {
        None => now - chrono::Duration::hours(24),
        Some(text) => match humantime::parse_duration(text) {
            Ok(duration) => {
                now - chrono::Duration::from_std(duration)
                    .unwrap_or(month)
                    .min(month)
            }
            Err(_) => DateTime::parse_from_rfc3339(text)
                .map(|at| at.with_timezone(&Utc))
                .map_err(|_| "`since` is a duration (`6h`, `2d`) or an RFC 3339 time".to_owned())?,
        },
    };
    Ok(at.max(now - month))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_reads_durations_and_times_within_a_month() {
        let now = DateTime::parse_from_rfc3339("2026-12-03T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            parse_since(None, now).unwrap(),
            now - chrono::Duration::hours(24)
        );
        assert_eq!(
            parse_since(Some("6h"), now).unwrap(),
            now - chrono::Duration::hours(6)
        );
        assert_eq!(
            parse_since(Some("2026-12-03T09:00:00Z"), now).unwrap(),
            now - chrono::Duration::hours(1)
        );
        assert_eq!(
            parse_since(Some("400d"), now).unwrap(),
            now - chrono::Duration::days(30)
        );
        assert!(parse_since(Some("yesterday"), now).is_err());
    }
}
