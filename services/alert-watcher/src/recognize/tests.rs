//! A corpus of messages as the tools post them (the Alertmanager ones as its notifier renders the
//! default template; the Grafana ones as its default contact-point template renders), with what
//! must be read from each.

use proptest::prelude::*;
use serde_json::json;

use super::*;

fn alerts(event: &Value) -> Vec<Reading> {
    match recognize(event) {
        Recognition::Alerts(readings) => readings,
        Recognition::NotAnAlert => panic!("not recognized: {event}"),
    }
}

fn bot(username: &str, attachments: Value) -> Value {
    json!({"type": "message", "subtype": "bot_message", "bot_id": "B0X", "username": username,
        "channel": "C0ALERTS", "ts": "1700000000.000100", "text": "", "attachments": attachments})
}

#[test]
fn alertmanager_default_template_firing_and_resolved() {
    let firing = bot(
        "Alertmanager",
        json!([{
            "color": "danger", "title": "[FIRING:3] HighCPU checkout (prod eu-west-1)", "text": "",
            "title_link": "http://alertmanager:9093/#/alerts?receiver=slack",
            "fallback": "[FIRING:3] HighCPU checkout (prod eu-west-1) | http://alertmanager:9093/#/alerts?receiver=slack"
        }]),
    );
    let readings = alerts(&firing);
    assert_eq!(readings.len(), 1);
    let reading = &readings[0];
    assert_eq!(reading.alert.source, AlertSource::Alertmanager);
    assert_eq!(reading.alert.status, AlertStatus::Firing);
    assert_eq!(reading.alert.name, "HighCPU");
    assert_eq!(reading.grouped, 3);
    assert_eq!(reading.group_values, ["HighCPU", "checkout"]);
    assert_eq!(reading.common_values, ["prod", "eu-west-1"]);
    assert_eq!(
        reading.alert.links[0].url,
        "http://alertmanager:9093/#/alerts?receiver=slack"
    );

    let resolved = bot(
        "Alertmanager",
        json!([{"color": "good", "title": "[RESOLVED] HighCPU checkout (prod eu-west-1)", "text": "",
            "fallback": "[RESOLVED] HighCPU checkout (prod eu-west-1) | http://alertmanager:9093/#/alerts?receiver=slack"}]),
    );
    let reading = &alerts(&resolved)[0];
    assert_eq!(reading.alert.status, AlertStatus::Resolved);
    assert_eq!(reading.grouped, 1);
    assert_eq!(
        reading.alert.links[0].url, "http://alertmanager:9093/#/alerts?receiver=slack",
        "the link only in fallback is found"
    );
}

#[test]
fn alertmanager_custom_template_with_labels_reads_every_alert() {
    let message = bot(
        "Alertmanager",
        json!([{
            "color": "danger", "title": "[FIRING:2] KubePodCrashLooping",
            "text": "*Alert:* Pod is crash looping - `critical`\n*Details:*\n  • *alertname:* `KubePodCrashLooping`\n  • *namespace:* `shop`\n  • *pod:* `checkout-7d9f8b6c5d-x2x9k`\n  • *severity:* `critical`\n\n*Alert:* Pod is crash looping - `critical`\n*Details:*\n  • *alertname:* `KubePodCrashLooping`\n  • *namespace:* `shop`\n  • *pod:* `cart-5c6d7e8f9a-abcde`\n  • *severity:* `critical`\n"
        }]),
    );
    let readings = alerts(&message);
    assert_eq!(readings.len(), 2);
    assert_eq!(readings[0].alert.labels["pod"], "checkout-7d9f8b6c5d-x2x9k");
    assert_eq!(readings[0].alert.severity.as_deref(), Some("critical"));
    assert_eq!(
        readings[0].alert.service.as_deref(),
        Some("checkout"),
        "the pod (without its hashes) is more specific than the namespace"
    );
    assert_eq!(readings[1].alert.service.as_deref(), Some("cart"));
}

#[test]
fn grafana_default_template_with_firing_and_resolved_alerts() {
    let message = bot(
        "Grafana",
        json!([{
            "color": "#D63232", "title": "[FIRING:1, RESOLVED:1] HighCPU (Services)",
            "title_link": "http://grafana:3000/alerting/list",
            "footer": "Grafana v10.4.1",
            "text": "**Firing**\n\nValue: B=97.1\nLabels:\n - alertname = HighCPU\n - grafana_folder = Services\n - service = checkout\n - severity = critical\nAnnotations:\n - summary = CPU above 90% on checkout\nSource: http://grafana:3000/alerting/grafana/abc123/view?orgId=1\nSilence: http://grafana:3000/alerting/silence/new?alertmanager=grafana\nDashboard: http://grafana:3000/d/xyz?orgId=1\n\n\n**Resolved**\n\nValue: B=12.0\nLabels:\n - alertname = HighCPU\n - grafana_folder = Services\n - service = cart\nAnnotations:\n - summary = CPU above 90% on cart\nSource: http://grafana:3000/alerting/grafana/def456/view?orgId=1\n"
        }]),
    );
    let readings = alerts(&message);
    assert_eq!(readings.len(), 2);
    let (firing, resolved) = (&readings[0].alert, &readings[1].alert);
    assert_eq!(firing.source, AlertSource::Grafana);
    assert_eq!(
        (firing.name.as_str(), firing.status),
        ("HighCPU", AlertStatus::Firing)
    );
    assert_eq!(firing.service.as_deref(), Some("checkout"));
    assert_eq!(firing.severity.as_deref(), Some("critical"));
    assert_eq!(firing.annotations["summary"], "CPU above 90% on checkout");
    assert_eq!(firing.annotations["value"], "B=97.1");
    assert_eq!(firing.links.len(), 3);
    assert_eq!(firing.links[0].title, "Source");
    assert_eq!(resolved.status, AlertStatus::Resolved);
    assert_eq!(resolved.service.as_deref(), Some("cart"));
}

#[test]
fn generic_webhooks_in_key_value_lines_or_json() {
    let lines = json!({"type": "message", "subtype": "bot_message", "bot_id": "B0HOOK", "channel": "C0ALERTS", "ts": "1.1",
        "text": "*alertname:* DiskFull\n*status:* firing\n*service:* billing\n*severity:* warning\n*summary:* /var at 97%\n<https://runbooks.example/disk|Runbook>"});
    let reading = &alerts(&lines)[0];
    assert_eq!(reading.alert.source, AlertSource::Generic);
    assert_eq!(reading.alert.name, "DiskFull");
    assert_eq!(reading.alert.service.as_deref(), Some("billing"));
    assert_eq!(reading.alert.annotations["summary"], "/var at 97%");
    assert_eq!(reading.alert.links[0].url, "https://runbooks.example/disk");

    let block = json!({"type": "message", "channel": "C0ALERTS", "ts": "1.2", "bot_id": "B0HOOK",
        "text": "New alert:\n```json\n{\"alert\": \"QueueBacklog\", \"status\": \"resolved\", \"labels\": {\"app\": \"worker\"}}\n```"});
    let reading = &alerts(&block)[0];
    assert_eq!(reading.alert.name, "QueueBacklog");
    assert_eq!(reading.alert.status, AlertStatus::Resolved);
    assert_eq!(reading.alert.service.as_deref(), Some("worker"));
}

#[test]
fn sentry_issue_alerts_in_block_kit_and_attachments() {
    let blocks = json!({"type": "message", "bot_id": "B0SENTRY", "channel": "C0ALERTS", "ts": "1.1", "text": "TypeError: Cannot read properties of undefined",
    "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": ":red_circle: <https://acme.sentry.io/issues/4242/?referrer=slack&alert_rule_id=7&alert_type=issue|*TypeError: Cannot read properties of undefined (reading 'id')*>"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "```app/checkout/cart.js in applyDiscount```"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "Project: checkout   Environment: production   Level: error   Short ID: CHECKOUT-1A"}]},
        {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Resolve"}, "action_id": "resolve_dialog"}]}
    ]});
    let reading = &alerts(&blocks)[0];
    assert_eq!(reading.alert.source, AlertSource::Sentry);
    assert_eq!(
        reading.alert.name,
        "TypeError: Cannot read properties of undefined (reading 'id')"
    );
    assert_eq!(
        reading.alert.status,
        AlertStatus::Firing,
        "a Resolve *button* is not a resolution"
    );
    assert_eq!(reading.alert.labels["issue_id"], "4242");
    assert_eq!(reading.alert.labels["environment"], "production");
    assert_eq!(reading.alert.service.as_deref(), Some("checkout"));
    assert_eq!(reading.alert.severity.as_deref(), Some("error"));

    let legacy = bot(
        "Sentry",
        json!([{"title": "ZeroDivisionError: division by zero",
        "title_link": "https://sentry.io/organizations/acme/issues/99/?referrer=slack",
        "text": "billing/tasks.py in compute_invoice", "footer": "billing | staging", "color": "#E03E2F"}]),
    );
    let reading = &alerts(&legacy)[0];
    assert_eq!(reading.alert.name, "ZeroDivisionError: division by zero");
    assert_eq!(reading.alert.service.as_deref(), Some("billing"));
    assert_eq!(reading.alert.labels["environment"], "staging");
}

#[test]
fn datadog_monitors_trigger_and_recover() {
    let triggered = bot(
        "Datadog",
        json!([{
            "title": "[P2] [Triggered on {host:web-1,env:prod}] High CPU on checkout",
            "title_link": "https://app.datadoghq.com/monitors/123456?group=host%3Aweb-1",
            "text": "CPU above 90% for 5 minutes. @slack-alerts\nTags: service:checkout, team:payments",
            "color": "#D63232"
        }]),
    );
    let reading = &alerts(&triggered)[0];
    assert_eq!(reading.alert.source, AlertSource::Datadog);
    assert_eq!(reading.alert.name, "High CPU on checkout");
    assert_eq!(reading.alert.status, AlertStatus::Firing);
    assert_eq!(reading.alert.labels["monitor_id"], "123456");
    assert_eq!(reading.alert.labels["host"], "web-1");
    assert_eq!(reading.alert.severity.as_deref(), Some("P2"));
    let recovered = bot(
        "Datadog",
        json!([{
            "title": "[P2] [Recovered on {host:web-1,env:prod}] High CPU on checkout",
            "title_link": "https://app.datadoghq.com/monitors/123456", "text": "", "color": "#1AAF5D"
        }]),
    );
    let recovery = &alerts(&recovered)[0];
    assert_eq!(recovery.alert.status, AlertStatus::Resolved);
    assert_eq!(
        crate::correlate::fingerprint(&recovery.alert, &[]),
        crate::correlate::fingerprint(&reading.alert, &[]),
        "the recovery closes the same incident"
    );
}

#[test]
fn operator_rules_read_in_house_formats_first() {
    let config = rules::RuleConfig {
        name: "legacy pager".into(),
        channel: None,
        bot_id: Some("B0PAGER".into()),
        username: None,
        pattern: r"^(?:ALERT|RESOLVED) (?P<alertname>\w+) on (?P<service>[\w-]+)(?: sev=(?P<severity>\w+))?"
            .into(),
        resolved_pattern: Some("^RESOLVED ".into()),
        from_people: false,
    };
    let rules = vec![config.compile(0).unwrap()];
    let firing = json!({"type": "message", "bot_id": "B0PAGER", "channel": "C1", "ts": "1.1", "text": "ALERT DiskFull on billing-db sev=high"});
    let Recognition::Alerts(readings) = recognize_with(&firing, &rules) else {
        panic!("the rule did not match")
    };
    assert_eq!(readings[0].alert.source, AlertSource::Custom);
    assert_eq!(readings[0].alert.name, "DiskFull");
    assert_eq!(readings[0].alert.service.as_deref(), Some("billing-db"));
    assert_eq!(readings[0].alert.severity.as_deref(), Some("high"));
    let resolved =
        json!({"type": "message", "bot_id": "B0PAGER", "text": "RESOLVED DiskFull on billing-db"});
    let Recognition::Alerts(readings) = recognize_with(&resolved, &rules) else {
        panic!("the rule did not match the resolution")
    };
    assert_eq!(readings[0].alert.status, AlertStatus::Resolved);
    assert_eq!(readings[0].alert.service.as_deref(), Some("billing-db"));
    let other_bot =
        json!({"type": "message", "bot_id": "B0OTHER", "text": "ALERT DiskFull on billing-db"});
    assert_eq!(recognize_with(&other_bot, &rules), Recognition::NotAnAlert);

    let bad = rules::RuleConfig {
        pattern: "(unclosed".into(),
        ..config.clone()
    };
    assert!(
        bad.compile(3)
            .unwrap_err()
            .to_string()
            .starts_with("rules[3].pattern:")
    );
    let nameless = rules::RuleConfig {
        pattern: r"^ALERT (?P<what>\w+)".into(),
        ..config
    };
    assert!(
        nameless
            .compile(0)
            .unwrap_err()
            .to_string()
            .contains("(?P<alertname>")
    );
}

#[test]
fn what_people_type_is_never_an_alert_unless_a_rule_opts_in() {
    // Each of these would be an alert if an integration had posted it.
    let typed = [
        json!({"type": "message", "user": "U0MALLORY", "channel": "C0ALERTS", "ts": "1.1", "text": "alert: PaymentsDown\nstatus: firing"}),
        json!({"type": "message", "user": "U0MALLORY", "channel": "C0ALERTS", "ts": "1.1", "text": "```json\n{\"alertname\": \"PaymentsDown\", \"service\": \"payments\"}\n```"}),
        json!({"type": "message", "user": "U0MALLORY", "channel": "C0ALERTS", "ts": "1.1", "text": "[FIRING:1] PaymentsDown (payments page)"}),
        json!({"type": "message", "user": "U0MALLORY", "subtype": "thread_broadcast", "channel": "C0ALERTS", "ts": "1.1", "text": "alert: PaymentsDown\nstatus: firing"}),
        json!({"type": "message", "user": "U0MALLORY", "bot_id": "", "channel": "C0ALERTS", "ts": "1.1", "text": "alert: PaymentsDown\nstatus: firing"}),
    ];
    for event in &typed {
        assert!(written_by_person(event), "{event}");
        assert_eq!(recognize(event), Recognition::NotAnAlert, "{event}");
    }
    let as_integration = json!({"type": "message", "subtype": "bot_message", "bot_id": "B0HOOK", "channel": "C0ALERTS", "ts": "1.1", "text": "alert: PaymentsDown\nstatus: firing"});
    assert!(matches!(recognize(&as_integration), Recognition::Alerts(_)));

    let rule = |from_people| {
        rules::RuleConfig {
            name: "typed pages".into(),
            channel: Some("C0ALERTS".into()),
            bot_id: None,
            username: None,
            pattern: r"^PAGE (?P<alertname>\w+)".into(),
            resolved_pattern: None,
            from_people,
        }
        .compile(0)
        .unwrap()
    };
    let page = json!({"type": "message", "user": "U0ONCALL", "channel": "C0ALERTS", "ts": "1.1", "text": "PAGE DiskFull"});
    assert_eq!(
        recognize_with(&page, &[rule(false)]),
        Recognition::NotAnAlert
    );
    assert!(matches!(
        recognize_with(&page, &[rule(true)]),
        Recognition::Alerts(_)
    ));
    // Opting in to one rule does not open the built-in readers to people.
    assert_eq!(
        recognize_with(&typed[0], &[rule(true)]),
        Recognition::NotAnAlert
    );
}

#[test]
fn chatter_and_near_misses_are_not_alerts() {
    for event in [
        json!({"type": "message", "user": "U0DEV", "channel": "C0ALERTS", "ts": "1.1", "text": "is checkout slow for anyone?"}),
        json!({"type": "message", "user": "U0DEV", "channel": "C0ALERTS", "ts": "1.1", "text": "status: investigating\neta: 10 minutes"}),
        json!({"type": "message", "user": "U0DEV", "channel": "C0ALERTS", "ts": "1.1", "text": "[FIRING] is how the title starts, right?"}),
        bot(
            "Deploybot",
            json!([{"title": "Deployed checkout v1.2.3", "text": "by alice"}]),
        ),
        json!({"type": "message", "channel": "C0ALERTS", "ts": "1.1", "text": "```json\n[1, 2]\n```"}),
        json!({}),
    ] {
        assert_eq!(recognize(&event), Recognition::NotAnAlert, "{event}");
    }
}

#[test]
fn services_come_from_the_most_specific_label() {
    let labels: BTreeMap<String, String> = [
        ("namespace", "shop"),
        ("pod", "checkout-7d9f8b6c5d-x2x9k"),
        ("job", "kubernetes-pods"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(
        service_of(&labels, DEFAULT_SERVICE_LABELS).as_deref(),
        Some("kubernetes-pods"),
        "job comes before pod in the default order"
    );
    assert_eq!(service_of(&labels, &["pod"]).as_deref(), Some("checkout"));
    assert_eq!(text::strip_pod_hashes("db-0"), "db");
    assert_eq!(text::strip_pod_hashes("checkout"), "checkout");
}

proptest! {
    /// No input makes a reader panic, whatever its shape.
    #[test]
    fn no_input_panics(text in ".{0,400}", title in ".{0,120}", footer in ".{0,20}") {
        let event = json!({"type": "message", "text": text,
            "attachments": [{"title": title, "text": text, "footer": footer, "fallback": title}]});
        let _ = recognize(&event);
    }

    /// Block Kit messages (Sentry's form, and anything else) of any content never panic either,
    /// nor do Grafana- and Datadog-shaped texts with arbitrary lines in them.
    #[test]
    fn no_block_kit_or_templated_text_panics(
        header in ".{0,80}",
        sections in proptest::collection::vec(".{0,200}", 0..5),
        lines in proptest::collection::vec("[ -~]{0,60}", 0..12),
        fields in proptest::collection::vec(".{0,40}", 0..6),
    ) {
        let blocks: Vec<serde_json::Value> = std::iter::once(json!({"type": "header", "text": {"type": "plain_text", "text": header}}))
            .chain(sections.iter().map(|text| json!({"type": "section", "text": {"type": "mrkdwn", "text": text},
                "fields": fields.iter().map(|f| json!({"type": "mrkdwn", "text": f})).collect::<Vec<_>>()})))
            .chain(std::iter::once(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": "Sentry"}]})))
            .collect();
        let sentry = json!({"type": "message", "subtype": "bot_message", "bot_id": "B0SENTRY",
            "username": "Sentry", "text": header, "blocks": blocks});
        let _ = recognize(&sentry);
        let body = lines.join("\n");
        for (title, footer) in [
            (format!("[FIRING:1] {header}"), "Grafana v10.4.1"),
            (format!("Triggered: {header}"), "Datadog"),
            (format!("Recovered: {header}"), "Datadog"),
        ] {
            let text = format!("**Firing**\n\nValue: A=1\nLabels:\n{body}\nAnnotations:\n{body}");
            let event = json!({"type": "message", "subtype": "bot_message", "username": footer,
                "attachments": [{"title": title, "text": text, "footer": footer, "fallback": title}]});
            let _ = recognize(&event);
        }
    }

    /// Titles built like Alertmanager's always parse back.
    #[test]
    fn alertmanager_titles_parse_back(
        count in 1u32..500,
        group in proptest::collection::vec("[A-Za-z_][A-Za-z0-9_:.-]{0,19}", 1..4),
        common in proptest::collection::vec("[A-Za-z0-9_:.-]{1,20}", 0..4),
    ) {
        let common_part = if common.is_empty() { String::new() } else { format!(" ({})", common.join(" ")) };
        let title = format!("[FIRING:{count}] {}{common_part}", group.join(" "));
        let parsed = alertmanager::parse_title(&title).unwrap();
        prop_assert_eq!(parsed.count, count);
        prop_assert_eq!(parsed.group_values, group);
        prop_assert_eq!(parsed.common_values, common);
    }
}

#[test]
fn edited_messages_read_as_they_now_are() {
    // A Grafana message edited in place (as the gateway passes an edit on: the message as it now
    // reads, with Slack's `edited` stamp).
    let mut edited = bot(
        "Grafana",
        json!([{
            "color": "#36a64f", "title": "[RESOLVED] HighCPU (Services)", "footer": "Grafana v10.4.1",
            "text": "**Resolved**\n\nValue: B=11.0\nLabels:\n - alertname = HighCPU\n - service = checkout\n"
        }]),
    );
    edited["edited"] = json!({"user": "B0X", "ts": "1700000300.000000"});
    let reading = &alerts(&edited)[0];
    assert_eq!(reading.alert.status, AlertStatus::Resolved);
    assert_eq!(reading.alert.service.as_deref(), Some("checkout"));

    // A Datadog monitor message edited from triggered to recovered.
    let mut recovered = bot(
        "Datadog",
        json!([{
            "title": "[P2] [Recovered on {host:web-1,env:prod}] High CPU on checkout",
            "title_link": "https://app.datadoghq.com/monitors/123456?group=host%3Aweb-1",
            "text": "CPU back under 80%. @slack-alerts", "color": "#2EB886"
        }]),
    );
    recovered["edited"] = json!({"user": "B0X", "ts": "1700000600.000000"});
    let reading = &alerts(&recovered)[0];
    assert_eq!(reading.alert.source, AlertSource::Datadog);
    assert_eq!(reading.alert.status, AlertStatus::Resolved);
}

#[test]
fn truncated_messages_keep_what_they_still_say() {
    // Alertmanager cuts titles at 1024 runes with "…": the name and the first values survive.
    let values: Vec<String> = (0..200).map(|n| format!("pod-{n}")).collect();
    let mut title = format!("[FIRING:200] PodCrashLooping {}", values.join(" "));
    title = title.chars().take(1023).collect::<String>() + "…";
    let cut = bot(
        "Alertmanager",
        json!([{"color": "danger", "title": title, "text": ""}]),
    );
    let reading = &alerts(&cut)[0];
    assert_eq!(reading.alert.name, "PodCrashLooping");
    assert_eq!(reading.alert.status, AlertStatus::Firing);
    assert_eq!(reading.grouped, 200);

    // Grafana's text cut mid-label: the complete labels are read, the cut one is kept as it is.
    let grafana = bot(
        "Grafana",
        json!([{"color": "#D63232", "title": "[FIRING:1] HighCPU (Services)", "footer": "Grafana v10.4.1",
            "text": "**Firing**\n\nValue: B=97.1\nLabels:\n - alertname = HighCPU\n - service = checkout\n - sever"}]),
    );
    let reading = &alerts(&grafana)[0];
    assert_eq!(reading.alert.name, "HighCPU");
    assert_eq!(reading.alert.service.as_deref(), Some("checkout"));

    // A generic JSON block cut before its end: read as the key-value lines that are there.
    let json_cut = json!({"type": "message", "bot_id": "B0HOOK", "channel": "C0ALERTS", "ts": "1.1",
        "text": "```json\n{\"alertname\": \"QueueBacklog\", \"status\": \"firing\", \"labels\": {\"app\": \"wor"});
    let readings = alerts(&json_cut);
    assert_eq!(readings[0].alert.name, "QueueBacklog");
    assert_eq!(readings[0].alert.status, AlertStatus::Firing);

    // Slack's "This message was too long" stub for a dropped attachment is not an alert.
    let stub = bot(
        "Alertmanager",
        json!([{"fallback": "[no preview available]", "text": ""}]),
    );
    assert_eq!(recognize(&stub), Recognition::NotAnAlert);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn any_alert_is_bounded_and_keeps_what_fits(
        name in ".{0,600}",
        labels in proptest::collection::btree_map("[a-z_]{1,200}", "[a-z<>&]{0,1500}", 0..80),
        annotations in proptest::collection::btree_map("[a-z]{1,20}", "[a-zé ]{0,3000}", 0..40),
    ) {
        let mut alert = super::alert(AlertSource::Generic, AlertStatus::Firing, name.clone());
        alert.labels = labels.clone();
        alert.annotations = annotations;
        let bounded = bounded(alert);
        let json = serde_json::to_vec(&bounded).unwrap();
        // Labels are kept (cut) even when annotations had to go.
        prop_assert!(bounded.labels.len() == labels.len().min(limits::LABELS));
        prop_assert!(bounded.name.len() <= limits::NAME);
        prop_assert!(bounded.labels.values().all(|v| v.len() <= limits::LABEL_VALUE));
        prop_assert!(bounded.labels.keys().all(|k| k.len() <= limits::LABEL_KEY));
        // Whatever is left fits a message many times over.
        prop_assert!(json.len() <= 64 * (limits::LABEL_KEY + limits::LABEL_VALUE + 16) + limits::ALERT_BYTES + limits::NAME + 1024);
        if name.len() <= limits::NAME {
            prop_assert_eq!(bounded.name, name);
        }
    }
}

#[test]
fn labels_cut_to_fit_are_no_longer_confirmed() {
    let mut alert = super::alert(
        AlertSource::Alertmanager,
        AlertStatus::Firing,
        "HighCPU".into(),
    );
    alert.labels.insert("service".into(), "checkout".into());
    alert.labels_confirmed = true;
    alert.alertmanager_fingerprints = vec!["a1".into()];
    let kept = bounded(alert.clone());
    assert!(kept.labels_confirmed && kept.alertmanager_fingerprints == ["a1"]);
    alert
        .labels
        .insert("huge".into(), "x".repeat(limits::LABEL_VALUE + 1));
    let cut = bounded(alert);
    assert!(
        !cut.labels_confirmed,
        "a silence of a cut label would match nothing"
    );
    assert!(cut.alertmanager_fingerprints.is_empty());
}

#[test]
fn a_message_asked_about_is_an_alert_whoever_wrote_it() {
    // A person's message no reader knows: its first line names it, its pairs are labels.
    let person = json!({
        "type": "message", "user": "U0BOB", "ts": "1.1",
        "text": "*checkout is throwing 500s* since the deploy\nservice: checkout\nregion: eu <!channel>"
    });
    assert_eq!(
        recognize(&person),
        Recognition::NotAnAlert,
        "not read unasked"
    );
    let [reading] = recognize_asked(&person, &[])
        .try_into()
        .expect("one reading");
    assert_eq!(
        reading.alert.name,
        "checkout is throwing 500s since the deploy"
    );
    assert_eq!(reading.alert.service.as_deref(), Some("checkout"));
    assert_eq!(
        reading.alert.labels.get("region").map(String::as_str),
        Some("eu <!channel>")
    );
    assert_eq!(reading.alert.status, AlertStatus::Firing);
    assert!(reading.alert.annotations["description"].contains("500s"));
    // A message a reader knows is read by it, even when a person posted it.
    let pasted = json!({
        "type": "message", "user": "U0BOB", "ts": "1.2",
        "text": "alertname: DiskFull\nseverity: critical\ninstance: db-1"
    });
    let [reading] = recognize_asked(&pasted, &[])
        .try_into()
        .expect("one reading");
    assert_eq!(reading.alert.name, "DiskFull");
    assert_eq!(reading.alert.severity.as_deref(), Some("critical"));
    // Nothing to read at all still answers, under a name that says so; huge text is bounded.
    let [empty] = recognize_asked(
        &json!({"type": "message", "user": "U0BOB", "ts": "1.3"}),
        &[],
    )
    .try_into()
    .expect("one reading");
    assert_eq!(empty.alert.name, "A message asked about");
    let huge =
        json!({"type": "message", "user": "U0BOB", "ts": "1.4", "text": "x".repeat(100_000)});
    let [reading] = recognize_asked(&huge, &[]).try_into().expect("one reading");
    let bounded = bounded(reading.alert);
    assert!(bounded.name.len() <= limits::NAME);
    assert!(serde_json::to_vec(&bounded).unwrap().len() <= limits::ALERT_BYTES);
}
