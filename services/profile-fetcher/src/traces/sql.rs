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
use crate::config::Secret;

/// Most bytes of a query.
const MAX_QUERY_BYTES: usize = 64 * 1024;

#[derive(Clone)]
struct Sql {
    queries: Option<Queries>,
    token: Arc<Secret>,
}

/// The route; `queries` is `None` when the span store is off (`traces.listen` unset).
pub fn router(queries: Option<Queries>, token: Secret) -> Router {
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
        return refuse(StatusCode::SERVICE_UNAVAILABLE, super::STORE_OFF);
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

/// Control characters and bidirectional overrides as escapes (`\n`, `\u{1b}`, `\u{202e}`), so
/// text from spans cannot move the cursor, recolour the terminal or reorder what it shows.
pub fn visible(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// Columns aligned, each at most 60 characters wide, for a terminal or a Slack code block.
pub fn table(columns: &[String], rows: &[Vec<String>]) -> String {
    const WIDEST: usize = 60;
    let fit = |cell: &str| spans::cut_cell(visible(cell), WIDEST);
    let header: Vec<String> = columns.iter().map(|c| fit(c)).collect();
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|c| fit(c)).collect())
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            body.iter()
                .filter_map(|row| row.get(i))
                .chain([&header[i]])
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let mut out = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect::<Vec<_>>()
            .join(" | ");
        out.truncate(out.trim_end().len());
        out.push('\n');
        out
    };
    let mut out = line(&header);
    out.push_str(
        &widths
            .iter()
            .map(|width| "-".repeat(*width))
            .collect::<Vec<_>>()
            .join("-+-"),
    );
    out.push('\n');
    for row in &body {
        out.push_str(&line(row));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_aligned_and_cannot_reach_the_terminal_as_control_codes() {
        let columns = vec!["SpanName".to_owned(), "n".to_owned()];
        let rows = vec![
            vec!["GET /cart".to_owned(), "12".to_owned()],
            vec!["\u{1b}[31mred\u{1b}[0m\nnext".to_owned(), "3".to_owned()],
        ];
        let text = table(&columns, &rows);
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(text.contains("\\u{1b}[31mred"), "{text}");
        let reordered = table(
            &columns,
            &[vec!["a\u{202e}gnp.exe".to_owned(), "1".to_owned()]],
        );
        assert!(reordered.contains("a\\u{202e}gnp.exe"), "{reordered}");
        assert_eq!(text.lines().count(), 4, "{text}");
        assert!(text.starts_with("SpanName"), "{text}");
    }
}
