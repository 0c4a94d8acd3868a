//! A minimal OTLP/gRPC trace receiver for tests: the services export their
//! spans to it (`OTEL_EXPORTER_OTLP_ENDPOINT`), and a test asks which
//! services took part in a trace.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use tokio_util::sync::CancellationToken;

/// One received span, flattened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectedSpan {
    /// The exporting process's `service.name` resource attribute.
    pub service: String,
    pub name: String,
    /// 32 lower-case hex digits.
    pub trace_id: String,
    /// 16 lower-case hex digits.
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    /// The span's attributes and those of its events, as text.
    pub attributes: Vec<(String, String)>,
}

/// The receiver; it stops when dropped.
pub struct OtlpCollector {
    addr: SocketAddr,
    spans: Arc<Mutex<Vec<CollectedSpan>>>,
    shutdown: CancellationToken,
}

#[derive(Clone)]
struct Receiver {
    spans: Arc<Mutex<Vec<CollectedSpan>>>,
}

impl OtlpCollector {
    /// Listens on a free loopback port.
    pub async fn start() -> anyhow::Result<OtlpCollector> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the OTLP receiver")?;
        let addr = listener.local_addr()?;
        let spans = Arc::new(Mutex::new(Vec::new()));
        let shutdown = CancellationToken::new();
        let service = TraceServiceServer::new(Receiver {
            spans: spans.clone(),
        });
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let served = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(listener),
                    stop.cancelled_owned(),
                )
                .await;
            if let Err(err) = served {
                eprintln!("OTLP receiver stopped: {err}");
            }
        });
        Ok(OtlpCollector {
            addr,
            spans,
            shutdown,
        })
    }

    /// The value for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<CollectedSpan> {
        self.spans.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The spans of one trace.
    pub fn trace(&self, trace_id: &str) -> Vec<CollectedSpan> {
        self.spans()
            .into_iter()
            .filter(|span| span.trace_id == trace_id)
            .collect()
    }

    /// The services that exported spans of `trace_id`.
    pub fn services_in_trace(&self, trace_id: &str) -> BTreeSet<String> {
        self.trace(trace_id)
            .into_iter()
            .map(|span| span.service)
            .collect()
    }

    /// The services that exported any span at all.
    pub fn services(&self) -> BTreeSet<String> {
        self.spans().into_iter().map(|span| span.service).collect()
    }
}

impl Drop for OtlpCollector {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = Vec::new();
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .as_ref()
                .and_then(|resource| {
                    resource
                        .attributes
                        .iter()
                        .find(|kv| kv.key == "service.name")
                })
                .map(text)
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    let mut attributes: Vec<(String, String)> = span
                        .attributes
                        .iter()
                        .map(|kv| (kv.key.clone(), text(kv)))
                        .collect();
                    for event in &span.events {
                        attributes
                            .extend(event.attributes.iter().map(|kv| (kv.key.clone(), text(kv))));
                    }
                    received.push(CollectedSpan {
                        service: service.clone(),
                        name: span.name,
                        trace_id: hex::encode(&span.trace_id),
                        span_id: hex::encode(&span.span_id),
                        parent_span_id: hex::encode(&span.parent_span_id),
                        attributes,
                    });
                }
            }
        }
        if let Ok(mut spans) = self.spans.lock() {
            spans.extend(received);
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn text(kv: &KeyValue) -> String {
    match kv.value.as_ref().and_then(|value| value.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}
