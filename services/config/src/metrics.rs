//! Every metric of the config service, named in one place.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// gRPC method name, e.g. `CreateVmsTarget`.
    pub method: &'static str,
    /// gRPC status code name, e.g. `Ok`, `InvalidArgument`.
    pub code: String,
}

#[derive(Clone, Default)]
pub struct Metrics {
    /// `anpr_config_requests_total{method,code}`: finished API calls.
    pub requests: Family<RequestLabels, Counter>,
    /// `anpr_config_watch_streams`: Watch streams open now.
    pub watch_streams: Gauge,
    /// `anpr_config_watch_changes_total`: changes sent to Watch streams.
    pub watch_changes: Counter,
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Metrics::default();
        let prefixed = registry.sub_registry_with_prefix("anpr_config");
        prefixed.register(
            "requests",
            "Finished config API calls by method and status code",
            metrics.requests.clone(),
        );
        prefixed.register(
            "watch_streams",
            "Watch streams open now",
            metrics.watch_streams.clone(),
        );
        prefixed.register(
            "watch_changes",
            "Configuration changes sent to Watch streams",
            metrics.watch_changes.clone(),
        );
        metrics
    }
}
