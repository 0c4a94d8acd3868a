//! What every ANPR service needs, and nothing else: the generated wire types,
//! the subject names, the NATS connection, the live configuration, trace propagation over NATS headers,
//! telemetry set-up, shutdown on signals, the health/metrics endpoint, and how
//! replicas split the cameras between them (leases).

pub mod bus;
pub mod config_watch;
pub mod health;
pub mod lease;
pub mod proto;
pub mod shutdown;
pub mod subjects;
pub mod telemetry;
pub mod trace_context;

pub use prost;
pub use prost_types;
