//! `POST /api/v1/sql` on the pages listener: one read-only query over `otel_traces`, for
//! `flamethread-sql` and anyone holding `traces.sql_token`.
//!
//! The body is the query (`text/plain`) or `{"query": "…"}` (`application/json`). The answer is
//! `{"columns": […], "rows": [[…]], "truncated": bool, "elapsed_ms": n}` with every cell as
//! text; a refusal is `{"error": "…"}` with 400 (not SQL, an unknown column), 403 (anything but a
//! read), 422 (too slow or too large: narrow it), 503 (the store is off or busy). Two queries run
//! at once at most: the machine has other work.

use std::sync::Arc;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use serde::Deserialize;
use serde_json::json;
use spans::QueryError;

use super::{Queries, QueryRefusal};
use crate::config::Password;

/// Most bytes of a query.
const MAX_QUERY_BYTES: usize = 64 * 1024;

#[derive(Clone)]
struct Sql {
    queries: Option<Queries>,
    token: Arc<Password>,
}

/// The route; `queries` is `None` when the span store is off (`traces.listen` unset).
pub fn router(queries: Option<Queries>, token: Password) -> Router {
    let sql = Sql {
        queries,
        token: Arc::new(token),
    };
    Router::new()
        .route("/api/v1/sql", post(query))
        .layer(DefaultBodyLimit::max(MAX_QUERY_BYTES))
        .with_state(sql)
}

fn refuse(status: StatusCode, error: impl std::fmt::Display) -> Response {
    ::metrics::counter!("ft_sql_queries_total", "status" => status.as_u16().to_string())
        .increment(1);
    (status, Json(json!({ "error": error.to_string() }))).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryBody {
    query: String,
}

async fn query(
    State(sql): State<Sql>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let token = sql.token.expose();
    if token.is_empty() {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "SQL over HTTP is off: set profile-fetcher's traces.sql_token",
        );
    }
    if !crate::http_api::bearer_is(&headers, token) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "this API needs `Authorization: Bearer <traces.sql_token>`",
        );
    }
    let Some(queries) = sql.queries.clone() else {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "the span store is off: set profile-fetcher's traces.listen",
        );
    };
    let body = match body {
        Ok(body) => body,
        Err(err) => return refuse(err.status(), err.body_text()),
    };
    let json = crate::http_api::media_type(&headers) == "application/json";
    let text = if json {
        match serde_json::from_slice::<QueryBody>(&body) {
            Ok(body) => body.query,
            Err(err) => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    format!("send {{\"query\": \"…\"}}: {err}"),
                );
            }
        }
    } else {
        match String::from_utf8(body.to_vec()) {
            Ok(text) => text,
            Err(_) => return refuse(StatusCode::BAD_REQUEST, "the query is not UTF-8"),
        }
    };
    match queries.run(&text, queries.limits()).await {
        Ok(answer) => {
            ::metrics::counter!("ft_sql_queries_total", "status" => "200").increment(1);
            Json(answer).into_response()
        }
        Err(err) => {
            let status = match &err {
                QueryRefusal::Busy => StatusCode::SERVICE_UNAVAILABLE,
                QueryRefusal::Query(QueryError::Empty | QueryError::Invalid(_)) => {
                    StatusCode::BAD_REQUEST
                }
                QueryRefusal::Query(QueryError::NotReadOnly(_)) => StatusCode::FORBIDDEN,
                QueryRefusal::Query(QueryError::TimedOut(_) | QueryError::TooMuchMemory(_)) => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
            };
            refuse(status, err)
        }
    }
}
