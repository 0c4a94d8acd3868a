//! The Nx Witness HTTP API, as far as the bridge needs it.

pub mod auth;
pub mod client;
pub mod devices;
pub mod discover;
pub mod events;
pub mod tls;
