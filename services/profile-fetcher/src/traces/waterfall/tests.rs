use super::*;

fn span(id: &str, parent: &str, start_ms: i64, duration_ms: u64) -> Span {
    Span {
        span_id: id.to_owned(),
        parent_span_id: parent.to_owned(),
        name: format!("op {id}"),
        service: "checkout".to_owned(),
        start: DateTime::from_timestamp_millis(1_764_750_000_000 + start_ms).unwrap(),
        duration_ns: duration_ms * 1_000_000,
        failed: false,
        status_message: String::new(),
        kind: "Server".to_owned(),
        detail: String::new(),
    }
}

fn order(layout: &Layout) -> Vec<(&str, usize)> {
    layout
        .lines
        .iter()
        .map(|line| (line.span.span_id.as_str(), line.depth))
        .collect()
}

#[test]
fn children_sit_under_their_parent_in_the_order_they_started() {
    let layout = layout(vec![
        span("c2", "root", 50, 10),
        span("root", "", 0, 100),
        span("g1", "c1", 12, 5),
        span("c1", "root", 10, 30),
    ]);
    assert_eq!(
        order(&layout),
        [("root", 0), ("c1", 1), ("g1", 2), ("c2", 1)]
    );
    assert_eq!(layout.orphans, 0);
}

#[test]
fn every_span_is_shown_once_whatever_its_parents_say() {
    let layout = layout(vec![
        span("a", "b", 0, 1),
        span("b", "a", 1, 1),
        span("self", "self", 2, 1),
        span("lost", "gone", 3, 1),
        span("lost", "gone", 3, 1),
    ]);
    let mut ids: Vec<_> = order(&layout).into_iter().map(|(id, _)| id).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["a", "b", "lost", "self"]);
    assert_eq!(layout.orphans, 1, "only `lost` names a parent not held");
}

#[test]
fn a_span_name_is_text_on_the_page() {
    let mut hostile = span("aa", "", 0, 20);
    hostile.name = "<script>alert(1)</script>".to_owned();
    hostile.service = "\" onmouseover=\"x".to_owned();
    hostile.status_message = "<img src=x>".to_owned();
    hostile.failed = true;
    let html = render(
        "ab".repeat(16).as_str(),
        &layout(vec![hostile]),
        Some("aa"),
        false,
    )
    .unwrap();
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(!html.contains("<img"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
        "{html}"
    );
    assert!(!html.contains("\" onmouseover"), "{html}");
    assert!(html.contains(r#"class="error focus""#), "{html}");
}

#[test]
fn bars_are_placed_on_the_trace_time_axis() {
    let html = render(
        "ab",
        &layout(vec![span("r", "", 0, 200), span("c", "r", 100, 50)]),
        None,
        true,
    )
    .unwrap();
    assert!(html.contains("left: 50.000%; width: 25.000%"), "{html}");
    assert!(html.contains("left: 0.000%; width: 100.000%"), "{html}");
    assert!(html.contains("Only the first 2 spans"), "{html}");
    assert!(html.contains("200 ms · 2 spans"), "{html}");
    // A bar reaching the end has its duration inside it, not over the edge.
    assert!(
        html.contains("left: 0.500%; color: #fff\">200 ms"),
        "{html}"
    );
    assert!(html.contains("left: 75.500%\">50 ms"), "{html}");
}

#[test]
fn rows_read_back_from_the_store() {
    let rows = vec![vec![
        "00f067aa0ba902b7".to_owned(),
        "NULL".to_owned(),
        "GET /cart".to_owned(),
        "checkout".to_owned(),
        "2025-12-03T08:20:00.123456789Z".to_owned(),
        "812000000".to_owned(),
        "Error".to_owned(),
        "timeout".to_owned(),
        "Server".to_owned(),
        "orders.created".to_owned(),
    ]];
    let spans = spans(&rows);
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].parent_span_id, "");
    assert!(spans[0].failed);
    assert_eq!(spans[0].start.timestamp_subsec_nanos(), 123_456_789);
    assert_eq!(duration(spans[0].duration_ns), "812 ms");
    assert_eq!(spans[0].detail, "orders.created");
    assert!(query("x'y").contains("TraceId = 'x''y'"));
}
