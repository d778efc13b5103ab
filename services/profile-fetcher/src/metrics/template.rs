//! PromQL templates filled from an alert's fields and labels (minijinja, strict: a template that
//! names a label the alert does not have fails with that name instead of querying `{job=""}`).
//!
//! Every value is escaped for a double-quoted PromQL string, so a label value cannot end the
//! string and inject a selector of its own.

use std::time::Duration;

use minijinja::{Environment, UndefinedBehavior, Value};
use proto::incident::Alert;

/// Why a template gave no query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template names a value this alert does not have (no `service`, a missing label).
    #[error("the alert has no {0}")]
    Missing(String),
    #[error("the query template is invalid: {0}")]
    Invalid(String),
}

/// Checks that `source` is a template (at configuration load).
pub fn check(source: &str) -> Result<(), String> {
    environment()
        .template_from_str(source)
        .map(|_| ())
        .map_err(|err| err.to_string())
}

/// Fills `source` from `alert`: `service`, `alertname`, `severity`, `labels.<name>` (and each
/// label by its own name), `rate_interval` (e.g. `60s`, four steps and at least a minute).
pub fn render(
    source: &str,
    alert: &Alert,
    rate_interval: Duration,
) -> Result<String, TemplateError> {
    let environment = environment();
    let template = environment
        .template_from_str(source)
        .map_err(|err| TemplateError::Invalid(err.to_string()))?;
    let mut context = std::collections::BTreeMap::<String, Value>::new();
    for (key, value) in &alert.labels {
        if is_identifier(key) {
            context.insert(key.clone(), Value::from(escape(value)));
        }
    }
    let labels: std::collections::BTreeMap<&str, String> = alert
        .labels
        .iter()
        .map(|(key, value)| (key.as_str(), escape(value)))
        .collect();
    context.insert("labels".into(), Value::from_serialize(&labels));
    context.insert("alertname".into(), Value::from(escape(&alert.name)));
    if let Some(service) = &alert.service {
        context.insert("service".into(), Value::from(escape(service)));
    }
    if let Some(severity) = &alert.severity {
        context.insert("severity".into(), Value::from(escape(severity)));
    }
    context.insert(
        "rate_interval".into(),
        Value::from(format!("{}s", rate_interval.as_secs().max(1))),
    );
    template.render(context).map_err(|err| match err.kind() {
        minijinja::ErrorKind::UndefinedError => {
            TemplateError::Missing(undefined_name(source, &err))
        }
        _ => TemplateError::Invalid(err.to_string()),
    })
}

fn environment() -> Environment<'static> {
    let mut environment = Environment::new();
    environment.set_undefined_behavior(UndefinedBehavior::Strict);
    environment
}

/// The name the failing expression used, for "the alert has no `service`".
fn undefined_name(source: &str, err: &minijinja::Error) -> String {
    err.range()
        .and_then(|range| source.get(range))
        .map(|expression| format!("`{}`", expression.trim()))
        .unwrap_or_else(|| "value the query needs".to_owned())
}

fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Escapes `value` for a double-quoted PromQL string.
pub fn escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use proto::incident::{AlertSource, AlertStatus};

    use super::*;

    fn alert(service: Option<&str>) -> Alert {
        Alert {
            source: AlertSource::Alertmanager,
            status: AlertStatus::Firing,
            name: "HighCPU".into(),
            severity: Some("critical".into()),
            labels: [("namespace", "shop"), ("pod", "checkout-1")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            annotations: Default::default(),
            starts_at: None,
            links: Vec::new(),
            service: service.map(str::to_owned),
            labels_confirmed: true,
            alertmanager_fingerprints: vec!["4f8e2b".into()],
        }
    }

    #[test]
    fn fills_fields_and_labels() {
        let query = render(
            r#"sum(rate(process_cpu_seconds_total{job="{{ service }}",namespace="{{ labels.namespace }}",pod="{{ pod }}"}[{{ rate_interval }}]))"#,
            &alert(Some("checkout")),
            Duration::from_secs(60),
        )
        .unwrap();
        assert_eq!(
            query,
            r#"sum(rate(process_cpu_seconds_total{job="checkout",namespace="shop",pod="checkout-1"}[60s]))"#
        );
    }

    #[test]
    fn a_missing_value_is_named_and_values_cannot_break_out() {
        let err = render(
            r#"up{job="{{ service }}"}"#,
            &alert(None),
            Duration::from_secs(60),
        )
        .unwrap_err();
        assert_eq!(err, TemplateError::Missing("`service`".into()));
        let hostile = render(
            r#"up{job="{{ service }}"}"#,
            &alert(Some(r#"x"} or vector(1) or up{a="\"#)),
            Duration::from_secs(60),
        )
        .unwrap();
        assert_eq!(hostile, r#"up{job="x\"} or vector(1) or up{a=\"\\"}"#);
        assert!(check("{{ unclosed").is_err());
    }
}
