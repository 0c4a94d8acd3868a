//! HTTP Digest (RFC 2617, MD5) arithmetic, the `Authorization: Digest` header
//! parser, the server's stateless nonces and the `?auth=` URL key (VMS notes
//! §2.3, §2.4). Pure functions: the auth module decides what to do with them.

use std::collections::HashMap;

use md5::{Digest as _, Md5};
use sha2::Sha256;

/// Realm the simulated server announces.
pub const REALM: &str = "VMS";

/// How long a nonce stays valid (the real server: about five minutes).
pub const NONCE_LIFETIME_US: u64 = 5 * 60 * 1_000_000;

/// Length of the authentication code appended to a nonce.
const NONCE_MAC_LEN: usize = 16;

/// Lower-case hex MD5 of `text`.
pub fn md5_hex(text: &str) -> String {
    hex::encode(Md5::digest(text.as_bytes()))
}

/// HA1 = MD5(lower(login):realm:password); the server lower-cases the login.
pub fn ha1(login: &str, realm: &str, password: &str) -> String {
    md5_hex(&format!("{}:{realm}:{password}", login.to_lowercase()))
}

/// The `qop=auth` parts of a Digest response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QopAuth<'a> {
    pub nc: &'a str,
    pub cnonce: &'a str,
}

/// The expected `response` of a Digest Authorization header.
pub fn response(
    ha1: &str,
    nonce: &str,
    method: &str,
    uri: &str,
    qop: Option<&QopAuth<'_>>,
) -> String {
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    match qop {
        Some(q) => md5_hex(&format!("{ha1}:{nonce}:{}:{}:auth:{ha2}", q.nc, q.cnonce)),
        None => md5_hex(&format!("{ha1}:{nonce}:{ha2}")),
    }
}

/// The `?auth=` key: BASE64(lower(login):nonce:MD5(HA1:nonce:MD5(METHOD:))).
pub fn auth_key(login: &str, password: &str, nonce: &str, method: &str) -> String {
    use base64::Engine as _;
    let digest = auth_key_digest(&ha1(login, REALM, password), nonce, method);
    base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{nonce}:{digest}", login.to_lowercase()))
}

/// The digest inside an `?auth=` key.
pub fn auth_key_digest(ha1: &str, nonce: &str, method: &str) -> String {
    let ha2 = md5_hex(&format!("{method}:"));
    md5_hex(&format!("{ha1}:{nonce}:{ha2}"))
}

/// The parts of a decoded `?auth=` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthKey {
    pub login: String,
    pub nonce: String,
    pub digest: String,
}

/// Decodes an `?auth=` key; `None` when it is not base64 of `login:nonce:digest`.
pub fn decode_auth_key(key: &str) -> Option<AuthKey> {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(key.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    // The login may not contain ':' but nonce and digest never do either.
    let mut parts = text.rsplitn(3, ':');
    let digest = parts.next()?.to_string();
    let nonce = parts.next()?.to_string();
    let login = parts.next()?.to_string();
    Some(AuthKey {
        login,
        nonce,
        digest,
    })
}

/// Parses the parameters of `Digest k=v, k="v", …` (keys lower-cased).
pub fn parse_params(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let key: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .to_ascii_lowercase();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(escaped) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => break,
                    other => value.push(other),
                }
            }
        } else {
            while let Some(c) = chars.peek() {
                if *c == ',' {
                    break;
                }
                value.push(*c);
                chars.next();
            }
            value = value.trim().to_string();
        }
        out.insert(key, value);
    }
    out
}

/// Issues and checks nonces without storing them: a nonce is the issue time
/// in hex followed by a keyed hash of it, so any nonce this instance issued
/// in the last five minutes verifies.
#[derive(Clone)]
pub struct NonceIssuer {
    secret: [u8; 32],
}

impl NonceIssuer {
    /// A new issuer with a random secret.
    pub fn new() -> Self {
        NonceIssuer {
            secret: rand::random(),
        }
    }

    fn mac(&self, stamp: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update(stamp.as_bytes());
        hex::encode(h.finalize())[..NONCE_MAC_LEN].to_string()
    }

    /// A nonce for the time `now_us` (µs since epoch).
    pub fn issue(&self, now_us: u64) -> String {
        let stamp = format!("{now_us:x}");
        let mac = self.mac(&stamp);
        format!("{stamp}{mac}")
    }

    /// Whether `nonce` was issued by this issuer and is still fresh at `now_us`.
    pub fn verify(&self, nonce: &str, now_us: u64) -> bool {
        if nonce.len() <= NONCE_MAC_LEN || !nonce.is_ascii() {
            return false;
        }
        let (stamp, mac) = nonce.split_at(nonce.len() - NONCE_MAC_LEN);
        let Ok(issued) = u64::from_str_radix(stamp, 16) else {
            return false;
        };
        self.mac(stamp) == mac
            && issued <= now_us.saturating_add(5_000_000)
            && now_us.saturating_sub(issued) <= NONCE_LIFETIME_US
    }
}

impl Default for NonceIssuer {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The worked example of RFC 2617 §3.5.
    #[test]
    fn rfc2617_example_with_qop() {
        let h1 = md5_hex("Mufasa:testrealm@host.com:Circle Of Life");
        assert_eq!(h1, "939e7578ed9e3c518a452acee763bce9");
        let resp = response(
            &h1,
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            "GET",
            "/dir/index.html",
            Some(&QopAuth {
                nc: "00000001",
                cnonce: "0a4f113b",
            }),
        );
        assert_eq!(resp, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn ha1_lower_cases_the_login() {
        assert_eq!(ha1("ADMIN", "VMS", "pw"), ha1("admin", "VMS", "pw"));
        assert_eq!(ha1("admin", "VMS", "pw"), md5_hex("admin:VMS:pw"));
    }

    #[test]
    fn response_without_qop_is_rfc2069_form() {
        let h1 = ha1("admin", REALM, "admin");
        let ha2 = md5_hex("POST:/api/createEvent");
        assert_eq!(
            response(&h1, "abc", "POST", "/api/createEvent", None),
            md5_hex(&format!("{h1}:abc:{ha2}"))
        );
    }

    #[test]
    fn parses_quoted_and_bare_params() {
        let p = parse_params(
            r#"username="admin", realm="VMS", nonce="n1", uri="/a?b=1,2", qop=auth, nc=00000001, cnonce="c\"x", response="r""#,
        );
        assert_eq!(p["username"], "admin");
        assert_eq!(p["uri"], "/a?b=1,2");
        assert_eq!(p["qop"], "auth");
        assert_eq!(p["nc"], "00000001");
        assert_eq!(p["cnonce"], "c\"x");
        assert_eq!(p["response"], "r");
    }

    #[test]
    fn nonces_verify_only_when_ours_and_fresh() {
        let issuer = NonceIssuer::new();
        let now = 1_700_000_000_000_000;
        let nonce = issuer.issue(now);
        assert!(issuer.verify(&nonce, now));
        assert!(issuer.verify(&nonce, now + NONCE_LIFETIME_US));
        assert!(!issuer.verify(&nonce, now + NONCE_LIFETIME_US + 1));
        assert!(!NonceIssuer::new().verify(&nonce, now));
        assert!(!issuer.verify("abc", now));
        let mut forged = nonce.clone();
        forged.replace_range(0..1, "f");
        assert!(!issuer.verify(&forged, now));
    }

    #[test]
    fn auth_key_round_trip() {
        let key = auth_key("Admin", "secret", "n0nce", "POST");
        let parts = decode_auth_key(&key).unwrap();
        assert_eq!(parts.login, "admin");
        assert_eq!(parts.nonce, "n0nce");
        assert_eq!(
            parts.digest,
            auth_key_digest(&ha1("admin", REALM, "secret"), "n0nce", "POST")
        );
        assert!(decode_auth_key("not base64!").is_none());
    }
}
