//! Simulator of an Nx Witness compatible VMS (DW Spectrum, Wisenet WAVE…):
//! the test double of the project's VMS contract (section 9 of the VMS notes).
//!
//! One port serves plain HTTP and TLS with a per-instance self-signed
//! certificate. Profiles imitate releases 4.x to 6.1 (which REST versions and
//! info endpoints exist); authentication covers bearer sessions, Basic,
//! Digest and the `?auth=` key; both Generic Event endpoints validate like the
//! real server and record what they accept. Test-only endpoints under
//! `/_fake/` list events, inject faults and render a bookmark log page.

mod auth;
pub mod bookmarks;
pub mod cameras;
pub mod config;
pub mod digest;
pub mod events;
mod fake;
pub mod fixture;
mod response;
mod router;
mod server;
mod state;
pub mod timestamp;

pub use config::{
    BearerOverHttp, Fault, Profile, SimCamera, SimConfig, SimUser, UnknownProfile, V4Body,
};
pub use events::RecordedEvent;
pub use fixture::*;
pub use server::Simulator;
