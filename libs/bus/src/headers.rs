//! NATS headers for trace context.

use async_nats::HeaderMap;

/// Writes the current span's W3C trace context into `headers`.
pub(crate) fn inject_trace_context(headers: &mut HeaderMap) {
    telemetry::propagation::inject_current(|name, value| headers.insert(name, value.as_str()));
}

/// Reads W3C trace context from `headers`.
pub(crate) fn extract_trace_context(headers: Option<&HeaderMap>) -> opentelemetry::Context {
    let Some(headers) = headers else {
        return opentelemetry::Context::new();
    };
    let values: Vec<(&str, &str)> = telemetry::propagation::TRACE_HEADERS
        .iter()
        .filter_map(|name| Some((*name, headers.get(*name)?.as_str())))
        .collect();
    telemetry::propagation::extract(&values)
}

/// All headers as a map, for dead letters.
pub(crate) fn to_map(
    headers: Option<&HeaderMap>,
) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut map = std::collections::BTreeMap::new();
    if let Some(headers) = headers {
        for (name, values) in headers.iter() {
            map.insert(
                name.to_string(),
                values
                    .iter()
                    .map(|value| value.as_str().to_owned())
                    .collect(),
            );
        }
    }
    map
}
