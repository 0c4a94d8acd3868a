//! The pipeline from plate reads to the VMS, assembled in one process from
//! the services' libraries on a real nats-server: what the end-to-end tests,
//! the delivery benchmark and the demo's reads feeder share.

pub mod passages;
pub mod stack;
