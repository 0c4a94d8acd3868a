//! W3C trace context in NATS headers: written from the current span, read
//! back into a new span, and carried unchanged by a real nats-server.
//!
//! Each test installs its subscriber for its own thread only (`with_default`,
//! `set_default` with a current-thread runtime), since the tests of this file
//! run in parallel in one process. The propagator is process-global; every
//! test sets the same one.

use std::time::Duration;

use anpr_common::bus::NatsArgs;
use anpr_common::trace_context::{current_headers, set_parent_from, traceparent};
use anpr_testkit::NatsServer;
use async_nats::HeaderMap;
use futures::StreamExt;
use opentelemetry::trace::{SpanId, TraceContextExt, TraceId, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

/// A subscriber that gives spans OpenTelemetry ids, exporting nothing.
fn otel_subscriber() -> impl Subscriber + Send + Sync {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let provider = SdkTracerProvider::builder().build();
    tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("trace-context-test")))
}

fn trace_id(span: &tracing::Span) -> TraceId {
    span.context().span().span_context().trace_id()
}

fn span_id(span: &tracing::Span) -> SpanId {
    span.context().span().span_context().span_id()
}

fn is_lower_hex(text: &str, len: usize) -> bool {
    text.len() == len
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Splits `00-<trace id>-<span id>-01`, checking its form.
fn parse_traceparent(value: &str) -> (TraceId, SpanId) {
    let parts: Vec<&str> = value.split('-').collect();
    assert_eq!(parts.len(), 4, "traceparent {value:?} has not 4 parts");
    assert_eq!(parts[0], "00", "traceparent {value:?}: version");
    assert!(
        is_lower_hex(parts[1], 32),
        "traceparent {value:?}: trace id"
    );
    assert!(is_lower_hex(parts[2], 16), "traceparent {value:?}: span id");
    assert_eq!(parts[3], "01", "traceparent {value:?}: not sampled");
    let trace = TraceId::from_hex(parts[1]).expect("trace id is hex");
    let span = SpanId::from_hex(parts[2]).expect("span id is hex");
    assert_ne!(trace, TraceId::INVALID);
    assert_ne!(span, SpanId::INVALID);
    (trace, span)
}

#[test]
fn headers_carry_the_current_span_and_continue_its_trace() {
    tracing::subscriber::with_default(otel_subscriber(), || {
        let publisher = tracing::info_span!("publish");
        let headers = {
            let _entered = publisher.enter();
            current_headers()
        };
        let value = traceparent(&headers).expect("current_headers wrote a traceparent");
        let (trace, parent) = parse_traceparent(value);
        assert_eq!(trace, trace_id(&publisher));
        assert_eq!(parent, span_id(&publisher));

        // A new root span, as a consumer creates one per message.
        let consumer = tracing::info_span!(parent: None, "consume");
        set_parent_from(&consumer, Some(&headers));
        assert_eq!(trace_id(&consumer), trace);
        assert_ne!(span_id(&consumer), parent);

        // Without headers a root span starts a trace of its own.
        let unrelated = tracing::info_span!(parent: None, "unrelated");
        set_parent_from(&unrelated, None);
        assert_ne!(trace_id(&unrelated), TraceId::INVALID);
        assert_ne!(trace_id(&unrelated), trace);
    });
}

#[test]
fn no_span_no_traceparent() {
    tracing::subscriber::with_default(otel_subscriber(), || {
        let headers = current_headers();
        assert_eq!(traceparent(&headers), None);
    });
}

#[test]
fn tracestate_is_passed_on() {
    tracing::subscriber::with_default(otel_subscriber(), || {
        // As another vendor's tracer would send them.
        let mut incoming = HeaderMap::new();
        incoming.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        );
        incoming.insert("tracestate", "congo=t61rcWkgMzE");

        let span = tracing::info_span!(parent: None, "consume");
        set_parent_from(&span, Some(&incoming));
        let outgoing = {
            let _entered = span.enter();
            current_headers()
        };
        let (trace, parent) =
            parse_traceparent(traceparent(&outgoing).expect("traceparent passed on"));
        assert_eq!(
            trace,
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("hex")
        );
        assert_ne!(
            parent,
            SpanId::from_hex("00f067aa0ba902b7").expect("hex"),
            "the outgoing parent must be our span, not the incoming one"
        );
        assert_eq!(
            outgoing.get("tracestate").map(|value| value.as_str()),
            Some("congo=t61rcWkgMzE")
        );
    });
}

#[tokio::test(flavor = "current_thread")]
async fn traceparent_survives_a_trip_through_nats() {
    let _subscriber = tracing::subscriber::set_default(otel_subscriber());
    let server = NatsServer::start();
    let client = NatsArgs::plain(server.url())
        .connect("test")
        .await
        .expect("connecting to the test nats-server");
    let subject = "anpr.v1.reads.gate-1";
    let mut subscription = client.subscribe(subject).await.expect("subscribing");
    client.flush().await.expect("flushing the subscription");

    let publisher = tracing::info_span!("publish");
    let sent = {
        let _entered = publisher.enter();
        current_headers()
    };
    client
        .publish_with_headers(subject, sent.clone(), "payload".into())
        .await
        .expect("publishing");
    client.flush().await.expect("flushing the publish");

    let message = tokio::time::timeout(Duration::from_secs(5), subscription.next())
        .await
        .expect("the message arrives within 5 s")
        .expect("the subscription is open");
    let received = message.headers.expect("the message has headers");
    let sent_value = traceparent(&sent).expect("a traceparent was sent");
    assert_eq!(traceparent(&received), Some(sent_value));

    let consumer = tracing::info_span!(parent: None, "consume");
    set_parent_from(&consumer, Some(&received));
    assert_eq!(trace_id(&consumer), trace_id(&publisher));
}
