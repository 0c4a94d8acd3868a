//! The span that posts an event continues the trace that came with it in
//! the JetStream message headers (`traceparent`).

mod common;

use std::sync::{Arc, Mutex};

use anpr_common::proto::{EventSelection, PlateEvent, PlateEventKind};
use anpr_common::subjects;
use common::*;
use opentelemetry::trace::{SpanId, TraceId, TracerProvider as _};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use prost::Message as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Keeps every finished span.
#[derive(Debug, Clone, Default)]
struct Collect(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Collect {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(batch);
        std::future::ready(Ok(()))
    }
}

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_post_span_is_a_child_of_the_incoming_traceparent() {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let spans = Collect::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(spans.clone())
        .build();
    tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("info"))
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bridge-test")))
        .init();

    let sim = simulator(|_| {}).await;
    let mut stack = Stack::start().await;
    stack
        .add_camera("gate", "Gate 1", "192.168.1.21", |_| {})
        .await;
    stack
        .add_target("nx-trace", &sim, EventSelection::Detect, |_| {})
        .await;

    let event = PlateEvent {
        event_id: uuid_like("gate", PlateEventKind::Detect, 1),
        kind: PlateEventKind::Detect as i32,
        camera_id: "gate".into(),
        plate_text: "TR1".into(),
        ..Default::default()
    };
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", event.event_id.as_str());
    headers.insert(
        "traceparent",
        format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01").as_str(),
    );
    let subject = subjects::plates("gate", PlateEventKind::Detect).expect("subject");
    stack
        .js
        .publish_with_headers(subject, headers, event.encode_to_vec().into())
        .await
        .expect("publishing")
        .await
        .expect("stored");
    wait_for_events(&sim, 1).await;

    let finished = || -> Vec<SpanData> {
        spans
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|span| span.name == "vms.deliver")
            .cloned()
            .collect()
    };
    wait_for("the delivery span to end", || {
        let done = !finished().is_empty();
        async move { done }
    })
    .await;
    let span = &finished()[0];
    assert_eq!(
        span.span_context.trace_id(),
        TraceId::from_hex(TRACE_ID).expect("trace id")
    );
    assert_eq!(
        span.parent_span_id,
        SpanId::from_hex(PARENT_SPAN_ID).expect("span id")
    );
    assert!(span.parent_span_is_remote);
}
