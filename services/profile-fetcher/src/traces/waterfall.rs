//! One trace as a waterfall page: `/traces/<trace id>` on the pages listener, linked from a
//! thread's "Requests" as the incident window's slowest trace (`?span=<span id>` marks the span
//! the reply named).
//!
//! The causal graph is drawn as the tools people know draw it (Jaeger, Tempo, Honeycomb): one row
//! per span, under its parent, children in the order they started, a bar on the trace's time
//! axis, failed spans red. A span whose parent the store does not hold (not reported, or sampled
//! away) is shown at the top level and counted, not dropped. Everything a span carries is text
//! from outside: the page is a minijinja template with HTML escaping on, and what reaches a
//! `style` attribute is only numbers and colours this module computes. A trace of more than
//! [`MAX_SPANS`] spans shows its first ones and says so.
//!
//! [`query`], [`spans`], [`layout`] and [`render`] are pure; [`router`] is the I/O.

use std::collections::{HashMap, HashSet};

use axum::{
    Router,
    extract::{Path, Query, State},
    http::{StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Queries, QueryRefusal};

/// Most spans drawn on one page.
pub const MAX_SPANS: usize = 2000;

/// Colours by service, in the order services first appear (Slack's palette).
const PALETTE: [&str; 8] = [
    "#1264a3", "#2bac76", "#e8a723", "#7c3085", "#36c5f0", "#de4e2b", "#4a154b", "#0b7b6c",
];

/// Deepest nesting drawn as indentation; deeper spans line up at this depth.
const MAX_INDENT_DEPTH: usize = 40;

/// The spans of one trace, oldest first. `trace_id` is the stored form (32 hex digits, as
/// [`spans::intake::id_text`] makes it), so it cannot end the literal.
pub fn query(trace_id: &str) -> String {
    format!(
        "SELECT SpanId, ParentSpanId, SpanName, ServiceName, Timestamp, Duration, StatusCode, \
         StatusMessage, SpanKind, coalesce(SpanAttributes['messaging.destination.name'], \
         SpanAttributes['http.route'], SpanAttributes['db.statement'], '') AS Detail \
         FROM otel_traces WHERE TraceId = '{}' ORDER BY Timestamp LIMIT {}",
        trace_id.replace('\'', "''"),
        MAX_SPANS + 1
    )
}

/// One span of the trace, as [`query`] returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub span_id: String,
    pub parent_span_id: String,
    pub name: String,
    pub service: String,
    pub start: DateTime<Utc>,
    pub duration_ns: u64,
    pub failed: bool,
    pub status_message: String,
    pub kind: String,
    /// What the span was about, when its attributes say: the subject it published or consumed,
    /// the HTTP route, the database statement.
    pub detail: String,
}

/// The rows of [`query`] as spans; a row that does not read (it cannot, from our own store) is
/// left out.
pub fn spans(rows: &[Vec<String>]) -> Vec<Span> {
    rows.iter()
        .filter_map(|row| {
            let [
                span_id,
                parent,
                name,
                service,
                start,
                duration,
                status,
                message,
                kind,
                detail,
            ] = row.as_slice()
            else {
                return None;
            };
            Some(Span {
                span_id: span_id.clone(),
                parent_span_id: if parent == "NULL" {
                    String::new()
                } else {
                    parent.clone()
                },
                name: name.clone(),
                service: service.clone(),
                start: DateTime::parse_from_rfc3339(start).ok()?.to_utc(),
                duration_ns: duration.parse().ok()?,
                failed: status == "Error",
                status_message: message.clone(),
                kind: kind.clone(),
                detail: if detail == "NULL" {
                    String::new()
                } else {
                    detail.clone()
                },
            })
        })
        .collect()
}

/// A span and how deep it sits under the trace's roots.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub span: Span,
    pub depth: usize,
}

/// The spans in waterfall order.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub lines: Vec<Line>,
    /// Spans whose parent the trace does not hold.
    pub orphans: usize,
}

/// Orders `spans` depth first: each root (no parent, or a parent the trace does not hold) in the
/// order it started, each span's children under it in the order they started. A span id that
/// repeats is shown once; spans in a cycle of parents (only forged input makes one) are shown
/// at the top level after the rest, so every span is shown exactly once.
pub fn layout(mut spans: Vec<Span>) -> Layout {
    let mut seen = HashSet::new();
    spans.retain(|span| seen.insert(span.span_id.clone()));
    spans.sort_by(|a, b| a.start.cmp(&b.start).then(a.span_id.cmp(&b.span_id)));
    let index: HashMap<&str, usize> = spans
        .iter()
        .enumerate()
        .map(|(at, span)| (span.span_id.as_str(), at))
        .collect();
    let mut children = vec![Vec::new(); spans.len()];
    let mut roots = Vec::new();
    let mut orphans = 0;
    for (at, span) in spans.iter().enumerate() {
        let parent = span.parent_span_id.as_str();
        match index.get(parent) {
            Some(&up) if !parent.is_empty() && up != at => children[up].push(at),
            _ => {
                if !parent.is_empty() && !index.contains_key(parent) {
                    orphans += 1;
                }
                roots.push(at);
            }
        }
    }
    let mut order = Vec::with_capacity(spans.len());
    let mut visited = vec![false; spans.len()];
    let starts = roots.into_iter().chain(0..spans.len());
    for start in starts {
        let mut stack = vec![(start, 0)];
        while let Some((at, depth)) = stack.pop() {
            if std::mem::replace(&mut visited[at], true) {
                continue;
            }
            order.push((at, depth));
            stack.extend(children[at].iter().rev().map(|&child| (child, depth + 1)));
        }
    }
    let mut spans: Vec<Option<Span>> = spans.into_iter().map(Some).collect();
    let lines = order
        .into_iter()
        .filter_map(|(at, depth)| {
            Some(Line {
                span: spans[at].take()?,
                depth,
            })
        })
        .collect();
    Layout { lines, orphans }
}

/// A duration as people read it: `640 µs`, `12.5 ms`, `812 ms`, `2.31 s`.
pub fn duration(ns: u64) -> String {
    let ms = ns as f64 / 1e6;
    if ms < 1.0 {
        format!("{:.0} µs", ns as f64 / 1e3)
    } else if ms < 10.0 {
        format!("{ms:.1} ms")
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

#[derive(Serialize)]
struct Row {
    name: String,
    detail: String,
    service: String,
    title: String,
    class: &'static str,
    indent: usize,
    left: String,
    width: String,
    /// Where the duration is written: after the bar, inside a wide bar, or before it.
    label: String,
    duration: String,
    color: &'static str,
}

/// The duration's place: after the bar when there is room, inside it when it is wide, before
/// it otherwise (numbers only: this reaches a `style` attribute).
fn label_place(left: f64, width: f64) -> String {
    if left + width + 0.5 <= 88.0 {
        format!("left: {:.3}%", left + width + 0.5)
    } else if width >= 12.0 {
        format!("left: {:.3}%; color: #fff", left + 0.5)
    } else {
        format!("right: {:.3}%", 100.0 - left + 0.5)
    }
}

#[derive(Serialize)]
struct Tick {
    left: u32,
    label: String,
}

#[derive(Serialize)]
struct Service {
    name: String,
    color: &'static str,
}

/// The page for `layout`; `focus` marks one span, `truncated` says the trace has more spans.
pub fn render(
    trace_id: &str,
    layout: &Layout,
    focus: Option<&str>,
    truncated: bool,
) -> Result<String, minijinja::Error> {
    let begin = layout.lines.iter().map(|line| line.span.start).min();
    let end = layout
        .lines
        .iter()
        .map(|line| line.span.start + chrono::Duration::nanoseconds(line.span.duration_ns as i64))
        .max();
    let (begin, total_ns) = match (begin, end) {
        (Some(begin), Some(end)) => (
            begin,
            (end - begin).num_nanoseconds().unwrap_or(i64::MAX).max(1) as u64,
        ),
        _ => (DateTime::UNIX_EPOCH, 1),
    };
    let percent = |ns: u64| ns as f64 / total_ns as f64 * 100.0;
    let mut services: Vec<Service> = Vec::new();
    let mut color_of = |service: &str| -> &'static str {
        let at = match services.iter().position(|known| known.name == service) {
            Some(at) => at,
            None => {
                services.push(Service {
                    name: service.to_owned(),
                    color: PALETTE[services.len() % PALETTE.len()],
                });
                services.len() - 1
            }
        };
        services[at].color
    };
    let rows: Vec<Row> = layout
        .lines
        .iter()
        .map(|line| {
            let span = &line.span;
            let offset = (span.start - begin).num_nanoseconds().unwrap_or(0).max(0) as u64;
            let left = percent(offset).min(100.0);
            let width = percent(span.duration_ns).clamp(0.15, 100.0 - left + 0.15);
            let focused = focus.is_some_and(|focus| focus == span.span_id);
            let mut title = format!(
                "{} · {} · {} · {}",
                span.name,
                span.service,
                span.kind,
                duration(span.duration_ns)
            );
            if !span.status_message.is_empty() && span.status_message != "NULL" {
                title.push_str(" · ");
                title.push_str(&span.status_message);
            }
            Row {
                name: span.name.clone(),
                detail: span.detail.clone(),
                service: span.service.clone(),
                title,
                class: match (span.failed, focused) {
                    (true, true) => "error focus",
                    (true, false) => "error",
                    (false, true) => "focus",
                    (false, false) => "",
                },
                indent: 6 + line.depth.min(MAX_INDENT_DEPTH) * 14,
                left: format!("{left:.3}"),
                width: format!("{width:.3}"),
                label: label_place(left, width),
                duration: duration(span.duration_ns),
                color: color_of(&span.service),
            }
        })
        .collect();
    let ticks: Vec<Tick> = [0u32, 25, 50, 75]
        .into_iter()
        .map(|left| Tick {
            left,
            label: duration(total_ns * u64::from(left) / 100),
        })
        .collect();
    let errors = layout.lines.iter().filter(|line| line.span.failed).count();
    static PAGE: std::sync::OnceLock<minijinja::Environment<'static>> = std::sync::OnceLock::new();
    let environment = PAGE.get_or_init(|| {
        let mut environment = minijinja::Environment::new();
        environment
            .add_template("waterfall.html", include_str!("waterfall.html"))
            .expect("the waterfall template parses (unit tests render it)");
        environment
    });
    environment
        .get_template("waterfall.html")?
        .render(minijinja::context! {
            trace_id,
            total => duration(total_ns),
            spans => rows,
            services,
            ticks,
            errors,
            truncated,
            orphans => layout.orphans,
            started => begin.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string(),
        })
}

#[derive(Deserialize)]
struct PageQuery {
    span: Option<String>,
}

/// The route; without the span store every trace is "not found", said as such.
pub fn router(queries: Option<Queries>) -> Router {
    Router::new()
        .route(proto::pages::routes::TRACE, get(page))
        .with_state(queries)
        .layer(axum::middleware::map_response(crate::pages::secure))
        .layer(axum::middleware::map_response(never_cached))
}

/// A trace can still be arriving and a refusal is for now: neither is kept by the browser
/// (the flamegraph pages' day of caching is for pages that never change).
async fn never_cached(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

fn refuse(status: StatusCode, text: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text.into(),
    )
        .into_response()
}

async fn page(
    State(queries): State<Option<Queries>>,
    Path(id): Path<String>,
    Query(page): Query<PageQuery>,
) -> Response {
    let Some(queries) = queries else {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, super::STORE_OFF);
    };
    let trace_id = match spans::intake::id_text(&id, 16, "the trace id") {
        Ok(id) => id,
        Err(err) => return refuse(StatusCode::BAD_REQUEST, err.to_string()),
    };
    let focus = match page
        .span
        .as_deref()
        .map(|span| spans::intake::id_text(span, 8, "?span="))
    {
        Some(Err(err)) => return refuse(StatusCode::BAD_REQUEST, err.to_string()),
        Some(Ok(span)) => Some(span),
        None => None,
    };
    let mut limits = queries.limits();
    limits.max_rows = MAX_SPANS;
    // Whole timestamps and ids, whatever the operator's cell limit; names are 4 KiB at most.
    limits.max_cell_chars = proto::span::MAX_TEXT_BYTES + 1;
    let answer = match queries.run_for_page(&query(&trace_id), limits).await {
        Ok(answer) => answer,
        Err(QueryRefusal::Busy) => {
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                QueryRefusal::Busy.to_string(),
            );
        }
        Err(err) => {
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the span store: {err}"),
            );
        }
    };
    if answer.rows.is_empty() {
        return refuse(
            StatusCode::NOT_FOUND,
            format!(
                "the span store holds no span of trace {trace_id} (past its retention, or never reported)"
            ),
        );
    }
    let spans = spans(&answer.rows);
    if spans.is_empty() {
        return refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the store's rows for this trace did not read as spans",
        );
    }
    let layout = layout(spans);
    match render(&trace_id, &layout, focus.as_deref(), answer.truncated) {
        Ok(html) => Html(html).into_response(),
        Err(err) => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot draw the trace: {err}"),
        ),
    }
}

#[cfg(test)]
mod tests;
