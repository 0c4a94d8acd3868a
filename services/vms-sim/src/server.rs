//! The listener: one TCP port for plain HTTP and TLS (the first byte 0x16
//! marks a TLS ClientHello, as on the real server's port 7001), the accept
//! loop, and the [`Simulator`] handle tests drive.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Fault, SimCamera, SimConfig, SimUser};
use crate::events::RecordedEvent;
use crate::router::{self, ConnContext};
use crate::state::Shared;

/// First byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// The per-instance certificate.
struct Tls {
    config: Arc<ServerConfig>,
    pem: Arc<String>,
    sha256_hex: String,
}

fn other_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// A self-signed certificate for localhost / 127.0.0.1 / ::1 and a rustls
/// server configuration with the ring provider.
fn make_tls() -> io::Result<Tls> {
    let certified = rcgen::generate_simple_self_signed(vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ])
    .map_err(other_error)?;
    let der: CertificateDer<'static> = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let sha256_hex = hex::encode(Sha256::digest(der.as_ref()));
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(other_error)?
            .with_no_client_auth()
            .with_single_cert(vec![der], key)
            .map_err(other_error)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Tls {
        config: Arc::new(config),
        pem: Arc::new(certified.cert.pem()),
        sha256_hex,
    })
}

/// The accept loop of one listening period (between start/resume and stop).
struct Running {
    cancel: CancellationToken,
    accept: JoinHandle<()>,
    connections: TaskTracker,
}

/// A running simulated VMS server.
pub struct Simulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    tls: Tls,
    running: Mutex<Option<Running>>,
}

impl Simulator {
    /// Binds `listen` (port 0 picks a free port) and starts serving.
    pub async fn start(listen: SocketAddr, config: SimConfig) -> io::Result<Simulator> {
        let tls = make_tls()?;
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let sim = Simulator {
            shared: Arc::new(Shared::new(config)),
            addr,
            tls,
            running: Mutex::new(None),
        };
        sim.spawn(listener);
        tracing::info!(%addr, "VMS simulator listening");
        Ok(sim)
    }

    fn spawn(&self, listener: TcpListener) {
        let cancel = CancellationToken::new();
        let connections = TaskTracker::new();
        let accept = tokio::spawn(accept_loop(
            listener,
            Arc::clone(&self.shared),
            Arc::clone(&self.tls.config),
            Arc::clone(&self.tls.pem),
            cancel.clone(),
            connections.clone(),
        ));
        let previous = self.running_slot().replace(Running {
            cancel,
            accept,
            connections,
        });
        if let Some(old) = previous {
            old.cancel.cancel();
        }
    }

    fn running_slot(&self) -> std::sync::MutexGuard<'_, Option<Running>> {
        self.running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The bound address (with the real port when started with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// PEM of this instance's self-signed certificate.
    pub fn cert_pem(&self) -> String {
        self.tls.pem.as_str().to_string()
    }

    /// Lower-case hex SHA-256 of the certificate DER (what pinning compares).
    pub fn cert_sha256_hex(&self) -> String {
        self.tls.sha256_hex.clone()
    }

    /// Events received so far, oldest first.
    pub fn events(&self) -> Vec<RecordedEvent> {
        self.shared.events()
    }

    pub fn clear_events(&self) {
        self.shared.clear_events();
    }

    /// Applies to requests (and, for reset, connections) from now on.
    pub fn set_fault(&self, fault: Fault) {
        self.shared.set_fault(fault);
    }

    /// Forgets all bearer sessions, like a server restart does.
    pub fn invalidate_tokens(&self) {
        self.shared.invalidate_tokens();
    }

    pub fn set_cameras(&self, cameras: Vec<SimCamera>) {
        self.shared.set_cameras(cameras);
    }

    /// Adds the user, or replaces the one with the same login.
    pub fn set_user(&self, user: SimUser) {
        self.shared.set_user(user);
    }

    /// After `after` failed logins for one user, `/rest/vN/login/sessions`
    /// answers 403 "Too many attempts, try again later" for that user (the
    /// server's brute-force protection); `None` (the default) never locks out.
    /// Setting it forgets earlier failures.
    pub fn set_login_lockout(&self, after: Option<u32>) {
        self.shared.set_login_lockout(after);
    }

    /// Stops listening and drops open connections: clients then get
    /// "connection refused" until [`Simulator::resume`].
    pub async fn stop(&self) {
        let running = self.running_slot().take();
        if let Some(running) = running {
            running.cancel.cancel();
            if let Err(e) = running.accept.await {
                tracing::warn!(error = %e, "accept loop ended abnormally");
            }
            running.connections.close();
            running.connections.wait().await;
            tracing::info!(addr = %self.addr, "VMS simulator stopped");
        }
    }

    /// Listens again on the same port, like a restarted server: recorded
    /// events are kept, sessions are not.
    pub async fn resume(&self) -> io::Result<()> {
        self.stop().await;
        let listener = TcpListener::bind(self.addr).await?;
        self.shared.invalidate_tokens();
        self.shared.new_runtime_id();
        self.spawn(listener);
        tracing::info!(addr = %self.addr, "VMS simulator resumed");
        Ok(())
    }

    /// Stops for good.
    pub async fn shutdown(self) {
        self.stop().await;
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        // A simulator dropped without shutdown must not keep serving.
        if let Some(running) = self.running_slot().take() {
            running.cancel.cancel();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Arc<ServerConfig>,
    cert_pem: Arc<String>,
    cancel: CancellationToken,
    connections: TaskTracker,
) {
    let local_addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "listener has no local address");
            return;
        }
    };
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let ctx = ConnSetup {
                    shared: Arc::clone(&shared),
                    tls: Arc::clone(&tls),
                    cert_pem: Arc::clone(&cert_pem),
                    local_addr,
                    cancel: cancel.clone(),
                };
                connections.spawn(async move {
                    tracing::debug!(%peer, "connection accepted");
                    serve_connection(stream, ctx).await;
                });
            }
            Err(e) => {
                // Typically out of file descriptors: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

struct ConnSetup {
    shared: Arc<Shared>,
    tls: Arc<ServerConfig>,
    cert_pem: Arc<String>,
    local_addr: SocketAddr,
    cancel: CancellationToken,
}

impl ConnSetup {
    fn context(&self, is_tls: bool) -> Arc<ConnContext> {
        Arc::new(ConnContext {
            shared: Arc::clone(&self.shared),
            is_tls,
            local_addr: self.local_addr,
            cancel: self.cancel.clone(),
            cert_pem: Arc::clone(&self.cert_pem),
        })
    }
}

async fn serve_connection(stream: TcpStream, setup: ConnSetup) {
    if setup.shared.fault() == Fault::ResetMidResponse {
        // Closing with SO_LINGER 0 sends a TCP RST: a real reset, not a FIN.
        if let Err(e) = stream.set_zero_linger() {
            tracing::debug!(error = %e, "cannot set SO_LINGER");
        }
    }
    let mut first = [0u8; 1];
    let peeked = tokio::select! {
        _ = setup.cancel.cancelled() => return,
        peeked = stream.peek(&mut first) => peeked,
    };
    match peeked {
        Ok(0) | Err(_) => return,
        Ok(_) => {}
    }
    if first[0] == TLS_HANDSHAKE {
        let acceptor = TlsAcceptor::from(Arc::clone(&setup.tls));
        let handshake = tokio::select! {
            _ = setup.cancel.cancelled() => return,
            handshake = acceptor.accept(stream) => handshake,
        };
        match handshake {
            Ok(tls_stream) => serve_http(tls_stream, setup.context(true), &setup.cancel).await,
            Err(e) => tracing::debug!(error = %e, "TLS handshake failed"),
        }
    } else {
        serve_http(stream, setup.context(false), &setup.cancel).await;
    }
}

async fn serve_http<S>(io: S, ctx: Arc<ConnContext>, cancel: &CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| router::handle(Arc::clone(&ctx), req));
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(io), service);
    tokio::select! {
        // Dropping the connection future closes the socket: stop() drops clients.
        _ = cancel.cancelled() => {}
        result = conn => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
    }
}
