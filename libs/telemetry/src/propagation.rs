//! W3C trace context across process boundaries, independent of the transport.
//!
//! [`inject_current`] writes the current span's context as `traceparent`/`tracestate` through a
//! setter; [`extract`] reads it back from header pairs and returns a context to parent a span on.
//! The bus adapts these to NATS headers, so that one alert is one trace across services.

use opentelemetry::{
    Context,
    propagation::{Extractor, Injector},
    trace::TraceContextExt as _,
};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

struct FnInjector<F>(F);

impl<F: FnMut(&str, String)> Injector for FnInjector<F> {
    fn set(&mut self, key: &str, value: String) {
        (self.0)(key, value)
    }
}

/// The headers trace context travels in.
pub const TRACE_HEADERS: [&str; 2] = ["traceparent", "tracestate"];

/// Writes the current span's trace context through `set(name, value)`.
pub fn inject_current(set: impl FnMut(&str, String)) {
    let context = tracing::Span::current().context();
    let mut injector = FnInjector(set);
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut injector)
    });
}

/// Reads trace context from already-collected header values.
pub fn extract(headers: &[(&str, &str)]) -> Context {
    struct Pairs<'a>(&'a [(&'a str, &'a str)]);
    impl Extractor for Pairs<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(key))
                .map(|(_, value)| *value)
        }
        fn keys(&self) -> Vec<&str> {
            self.0.iter().map(|(name, _)| *name).collect()
        }
    }
    opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&Pairs(headers)))
}

/// The trace id of `span`, as 32 hex digits, or `None` when it has no valid context.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}
