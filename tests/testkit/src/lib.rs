//! Real servers for integration tests, started through one helper each and
//! cleaned up on drop.
//!
//! - [`NatsServer`]: a `nats-server` with JetStream on a free loopback port and
//!   a temporary store, which a test can stop and restart on the same port and
//!   store (to prove that state survives).
//! - [`NatsCluster`]: n `nats-server`s with JetStream routed into one cluster
//!   on free loopback ports, each with its own store; a test can kill one node
//!   and restart it on the same ports and store (to prove that replicated
//!   streams survive losing a node and that clients fail over).
//! - [`ServiceProcess`]: one of our binaries run as a child process with its
//!   output captured, so tests can wait for log lines and scan them.
//! - [`rtsp::RtspServer`]: a GStreamer RTSP server looping one video file, as
//!   a camera; it can be stopped and restarted on the same port.
//! - [`clip`]: test video rendered with ffmpeg, in which plates with known
//!   texts drive across the picture one after the other.

pub mod clip;
mod nats;
mod nats_cluster;
mod process;
pub mod rtsp;

pub use nats::NatsServer;
pub use nats_cluster::NatsCluster;
pub use process::ServiceProcess;
pub use rtsp::RtspServer;

use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// A loopback TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("no free loopback port")
}

/// Waits until something accepts TCP connections on `127.0.0.1:port`.
pub fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
