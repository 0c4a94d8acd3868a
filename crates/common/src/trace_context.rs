//! Carries W3C trace context (`traceparent`, `tracestate`) in NATS message
//! headers, so one plate's trace follows it from service to service.

use async_nats::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector};
use tracing_opentelemetry::OpenTelemetrySpanExt;

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value.as_str());
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|value| value.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name.as_ref()).collect()
    }
}

/// Writes the context of `span` into `headers`.
pub fn inject(span: &tracing::Span, headers: &mut HeaderMap) {
    let context = span.context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut HeaderInjector(headers));
    });
}

/// Headers carrying the context of the current span.
pub fn current_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    inject(&tracing::Span::current(), &mut headers);
    headers
}

/// Makes `span` a child of the trace found in `headers`, if any. Call it before
/// `span` is first entered: after that the span keeps the trace it started.
pub fn set_parent_from(span: &tracing::Span, headers: Option<&HeaderMap>) {
    let Some(headers) = headers else { return };
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(headers))
    });
    // A disabled span has nothing to link; a span that already started keeps
    // its own trace, which is a caller bug worth seeing in the logs.
    if let Err(error) = span.set_parent(parent) {
        if !span.is_disabled() {
            tracing::debug!(%error, "could not link span to the incoming trace");
        }
    }
}

/// The `traceparent` value in `headers`, if any (for logs and tests).
pub fn traceparent(headers: &HeaderMap) -> Option<&str> {
    headers.get("traceparent").map(|value| value.as_str())
}
