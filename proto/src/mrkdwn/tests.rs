use super::*;

#[test]
fn a_line_chart_keeps_to_slacks_limits_whatever_comes_in() {
    let categories: Vec<String> = (0..30).map(|i| format!("10:{i:02}")).collect();
    let mut now: Vec<Option<f64>> = (0..30).map(|i| Some(f64::from(i))).collect();
    now[3] = None;
    now[4] = Some(f64::NAN);
    let lines = vec![
        ("now".to_owned(), now),
        ("usual".to_owned(), vec![Some(1.0); 30]),
    ];
    let block = blocks::line_chart(&"t".repeat(80), &categories, &lines, Some("cores"))
        .unwrap()
        .into_json();
    assert_eq!(block["type"], "data_visualization");
    assert_eq!(block["title"].as_str().unwrap().chars().count(), 50);
    let kept = block["chart"]["axis_config"]["categories"]
        .as_array()
        .unwrap();
    assert_eq!(
        kept.len(),
        20,
        "at most 20, and only where every series has a value"
    );
    assert!(
        !kept.contains(&serde_json::json!("10:03")) && !kept.contains(&serde_json::json!("10:04"))
    );
    for series in block["chart"]["series"].as_array().unwrap() {
        assert_eq!(series["data"].as_array().unwrap().len(), 20, "{series}");
    }
    assert_eq!(block["chart"]["axis_config"]["y_label"], "cores");
    // Hostile names are cut and cleaned; nothing to draw is no block.
    let hostile = vec![("<!here>\n".repeat(10), vec![Some(1.0)])];
    let block = blocks::line_chart("x", &["a".to_owned()], &hostile, None)
        .unwrap()
        .into_json();
    let name = block["chart"]["series"][0]["name"].as_str().unwrap();
    assert!(name.chars().count() <= 20 && !name.contains('\n'), "{name}");
    assert!(
        blocks::line_chart(
            "x",
            &["a".to_owned()],
            &[("s".to_owned(), vec![None])],
            None
        )
        .is_none()
    );
    assert!(blocks::line_chart("", &["a".to_owned()], &hostile, None).is_none());
}

#[test]
fn outside_text_is_never_markup() {
    let hostile = "<!channel> <@U1> <https://x|y> & `x`";
    let said = crate::mrkdwn!("*{}* in `{}`: {:.1}%", hostile, hostile.to_owned(), 12.345);
    assert_eq!(
        said.as_str(),
        "*&lt;!channel&gt; &lt;@U1&gt; &lt;https://x|y&gt; &amp; `x`* in `&lt;!channel&gt; &lt;@U1&gt; &lt;https://x|y&gt; &amp; `x``: 12.3%"
    );
    let nested = crate::mrkdwn!("{} said {}", Mrkdwn::mention("U0ONCALL"), "<@U2>");
    assert_eq!(nested.as_str(), "<@U0ONCALL> said &lt;@U2&gt;");
    assert_eq!(Mrkdwn::mention("<!here>").as_str(), "&lt;!here&gt;");
    assert_eq!(Mrkdwn::code("a`b<c").as_str(), "`aˋb&lt;c`");
}

#[test]
fn links_are_http_and_cannot_be_bent() {
    assert_eq!(
        Mrkdwn::link("https://runbooks.example/cpu?a=1&b=2", "runbook").as_str(),
        "<https://runbooks.example/cpu?a=1&amp;b=2|runbook>"
    );
    for bad in [
        "javascript:alert(1)",
        "https://x|<!channel>",
        "https://x>y",
        "https://x y",
        "slack://channel",
        "https://",
    ] {
        let said = Mrkdwn::link(bad, "runbook");
        assert!(!said.as_str().contains('<'), "{bad}: {said}");
    }
    assert_eq!(
        Mrkdwn::link("https://x", "a|b <!here>").as_str(),
        "<https://x|a¦b &lt;!here&gt;>"
    );
}

#[test]
fn truncation_never_breaks_an_entity_or_a_span() {
    let text = crate::mrkdwn!("`{}`", "<<<<<<<<<<");
    for max in 1..text.char_count() {
        let cut = text.truncated(max);
        assert!(cut.char_count() <= max, "{max}: {cut}");
        let s = cut.as_str();
        assert!(
            !s.contains("&l…") && !s.contains("&…") && !s.contains("&lt…"),
            "{s}"
        );
        assert_eq!(s.matches('`').count() % 2, 0, "{s}");
    }
}
