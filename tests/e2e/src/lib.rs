//! The pipeline from plate reads to the VMS, assembled in one process from
//! the services' libraries on a real nats-server: what the end-to-end tests,
//! the delivery benchmark and the demo's reads feeder share. For the test of
//! every service as a separate process: where the release binaries are, and
//! an OTLP receiver that collects their spans.

pub mod binaries;
pub mod otlp;
pub mod passages;
pub mod stack;
