//! The configuration service: VMS targets, cameras and analytic settings,
//! served over gRPC (`anpr.v1.Config`) and stored in NATS key-value buckets.

pub mod api;
pub mod metrics;
pub mod server;
pub mod store;
pub mod validate;
