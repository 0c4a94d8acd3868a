//! Logs and traces for every service.
//!
//! Logs go to stderr, JSON by default (`LOG_FORMAT=text` for people), filtered
//! by `RUST_LOG` (default `info`). Spans always get OpenTelemetry ids so the
//! W3C `traceparent` can be carried between services; they are exported over
//! OTLP/gRPC only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("RUST_LOG is not a valid filter: {0}")]
    Filter(#[from] tracing_subscriber::filter::ParseError),
    #[error("LOG_FORMAT must be 'json' or 'text', got {0:?}")]
    Format(String),
    #[error("building the OTLP exporter for {endpoint}: {source}")]
    Exporter {
        endpoint: String,
        source: opentelemetry_otlp::ExporterBuildError,
    },
    #[error("installing the global tracing subscriber: {0}")]
    Install(#[from] tracing_subscriber::util::TryInitError),
}

/// Flushes and stops trace export when dropped at the end of `main`.
#[must_use = "dropping the guard stops trace export"]
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Err(err) = self.provider.shutdown() {
            eprintln!("flushing traces failed: {err}");
        }
    }
}

/// Module whose trace level prints every payload the NATS client receives:
/// for the services that read the secrets bucket, that includes passwords.
const NATS_PAYLOAD_LOGGER_CAP: &str = "async_nats::connection=debug";

/// The log filter a service runs with: `spec` (`RUST_LOG`; `info` when
/// empty) with the NATS payload logger capped at debug, whatever `spec` says,
/// so that no log level shows a secret read from NATS.
pub fn log_filter(spec: &str) -> String {
    let spec = spec.trim().trim_end_matches(',');
    let spec = if spec.is_empty() { "info" } else { spec };
    format!("{spec},{NATS_PAYLOAD_LOGGER_CAP}")
}

/// Installs logging and tracing for the process `service` (e.g. "anpr-config").
pub fn init(service: &'static str) -> Result<TelemetryGuard, TelemetryError> {
    let spec = std::env::var("RUST_LOG").unwrap_or_default();
    let filter = EnvFilter::try_new(log_filter(&spec))?;
    let format = std::env::var("LOG_FORMAT").unwrap_or_else(|_| "json".to_string());
    let fmt_layer = match format.as_str() {
        "json" => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed(),
        "text" => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
        other => return Err(TelemetryError::Format(other.to_string())),
    };

    let resource = Resource::builder().with_service_name(service).build();
    let mut provider = SdkTracerProvider::builder().with_resource(resource);
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok();
    if let Some(endpoint) = endpoint.as_ref().filter(|e| !e.is_empty()) {
        // The builder reads the endpoint and headers from the OTEL_* variables.
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()
            .map_err(|source| TelemetryError::Exporter {
                endpoint: endpoint.clone(),
                source,
            })?;
        provider = provider.with_batch_exporter(exporter);
    }
    let provider = provider.build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let otel_layer = tracing_opentelemetry::layer().with_tracer(provider.tracer(service));

    tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()?;
    Ok(TelemetryGuard { provider })
}

#[cfg(test)]
mod tests {
    use super::log_filter;

    #[test]
    fn no_log_level_shows_nats_payloads() {
        assert_eq!(log_filter(""), "info,async_nats::connection=debug");
        assert_eq!(log_filter("trace"), "trace,async_nats::connection=debug");
        assert_eq!(
            log_filter("info,async_nats=trace,"),
            "info,async_nats=trace,async_nats::connection=debug"
        );
        // Later directives for the same target win in tracing's EnvFilter.
        assert!(
            log_filter("async_nats::connection=trace").ends_with(",async_nats::connection=debug")
        );
    }
}
