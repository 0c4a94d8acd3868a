//! Analytic service: follows the plate reads of every camera, groups them
//! into tracks (one per plate passage), votes each track's text and
//! publishes Detect, Update and Lost plate events to JetStream.
//!
//! The logic is pure and driven by tests ([`text`], [`vote`], [`track`],
//! [`tracker`], [`engine`]); the NATS side is [`service`], with [`resume`]
//! for cameras taken over from another replica.

pub mod clock;
pub mod engine;
pub mod frame;
pub mod metrics;
pub mod publish;
pub mod resume;
pub mod service;
pub mod settings;
pub mod text;
pub mod track;
pub mod tracker;
pub mod vote;

pub use service::{run, start, Options, Running, ServiceError};
