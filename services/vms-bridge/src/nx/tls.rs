//! TLS towards a VMS: how its certificate is trusted.
//!
//! A VMS usually presents its own self-signed certificate, so besides normal
//! verification an operator can pin that certificate (by SHA-256 of its DER)
//! or, as a last resort, accept any. Pinning and insecure mode still check
//! the handshake signatures, so the peer must hold the certificate's key.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest as _, Sha256};

/// How the server certificate is trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Mozilla's roots and the host name.
    Verify,
    /// Exactly the certificate with this SHA-256 (DER).
    Pinned([u8; 32]),
    /// Any certificate.
    Insecure,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("pinned certificate fingerprint must be 64 hex digits (SHA-256), got {0} characters")]
    BadPin(usize),
    #[error("TLS set-up failed: {0}")]
    Rustls(#[from] rustls::Error),
}

impl Trust {
    /// Parses a pin: 64 hex digits, upper or lower case, `:` separators allowed.
    pub fn pinned(hex_pin: &str) -> Result<Self, TlsError> {
        let cleaned: String = hex_pin
            .trim()
            .chars()
            .filter(|c| *c != ':')
            .collect::<String>()
            .to_ascii_lowercase();
        let bytes = hex::decode(&cleaned).map_err(|_| TlsError::BadPin(cleaned.len()))?;
        let pin: [u8; 32] = bytes
            .try_into()
            .map_err(|_| TlsError::BadPin(cleaned.len()))?;
        Ok(Trust::Pinned(pin))
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A rustls client configuration for `trust`, on the ring provider.
pub fn client_config(trust: &Trust) -> Result<rustls::ClientConfig, TlsError> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let config = match trust {
        Trust::Verify => {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::Pinned(pin) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(FixedVerifier {
                pin: Some(*pin),
                provider,
            }))
            .with_no_client_auth(),
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(FixedVerifier {
                pin: None,
                provider,
            }))
            .with_no_client_auth(),
    };
    Ok(config)
}

/// Lower-case hex SHA-256 of a DER certificate (the pin format).
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// Accepts the pinned certificate (or any, without a pin), and verifies the
/// handshake signatures with the provider's algorithms.
#[derive(Debug)]
struct FixedVerifier {
    pin: Option<[u8; 32]>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for FixedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(pin) = self.pin else {
            return Ok(ServerCertVerified::assertion());
        };
        let actual: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if actual == pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "server certificate SHA-256 {} does not match the pinned {}",
                hex::encode(actual),
                hex::encode(pin)
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_parse_in_common_spellings() {
        let lower = "ab".repeat(32);
        assert_eq!(Trust::pinned(&lower).unwrap(), Trust::Pinned([0xab; 32]));
        assert_eq!(
            Trust::pinned(&lower.to_uppercase()).unwrap(),
            Trust::Pinned([0xab; 32])
        );
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(Trust::pinned(&colons).unwrap(), Trust::Pinned([0xab; 32]));
        assert!(matches!(Trust::pinned("abcd"), Err(TlsError::BadPin(4))));
        assert!(matches!(
            Trust::pinned(&"zz".repeat(32)),
            Err(TlsError::BadPin(64))
        ));
    }

    #[test]
    fn pinned_verifier_accepts_only_its_certificate() {
        let der = CertificateDer::from(vec![1u8, 2, 3]);
        let pin: [u8; 32] = Sha256::digest([1u8, 2, 3]).into();
        let verifier = FixedVerifier {
            pin: Some(pin),
            provider: provider(),
        };
        let name = ServerName::try_from("vms.local").unwrap();
        assert!(verifier
            .verify_server_cert(&der, &[], &name, &[], UnixTime::now())
            .is_ok());
        let other = CertificateDer::from(vec![9u8]);
        let refused = verifier
            .verify_server_cert(&other, &[], &name, &[], UnixTime::now())
            .unwrap_err();
        assert!(
            refused.to_string().contains("does not match the pinned"),
            "{refused}"
        );
        assert_eq!(fingerprint(&[1, 2, 3]), hex::encode(pin));
    }

    #[test]
    fn every_trust_mode_builds_a_config() {
        for trust in [Trust::Verify, Trust::Pinned([0; 32]), Trust::Insecure] {
            client_config(&trust).unwrap();
        }
    }
}
