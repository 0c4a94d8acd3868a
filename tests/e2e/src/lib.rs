//! The pipeline from plate reads to the VMS, assembled in one process from
//! the services' libraries on a real nats-server: what the end-to-end tests,
//! the delivery benchmark and the demo's reads feeder share. For the test of
//! every service as a separate process and the pipeline benchmark: where the
//! release binaries are, starting and stopping them, an OTLP receiver that
//! collects their spans, and what the benchmark reads from `/proc` and the
//! services' `/metrics`.

pub mod binaries;
pub mod measure;
pub mod otlp;
pub mod passages;
pub mod processes;
pub mod stack;
