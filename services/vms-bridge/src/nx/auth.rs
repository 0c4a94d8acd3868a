//! Credentials and the pure parts of Nx authentication: the RFC 2617 Digest
//! computation, challenge parsing, and the operator-facing meaning of the
//! `X-Auth-Result` header.

use std::fmt;

use md5::{Digest as _, Md5};

/// A password that never shows in `Debug` or `Display` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How requests are authenticated, once AUTO has been resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Bearer,
    Digest,
    Basic,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Bearer => "bearer",
            AuthMethod::Digest => "digest",
            AuthMethod::Basic => "basic",
        }
    }
}

/// A `WWW-Authenticate: Digest ...` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestChallenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    /// `auth` when the server offers qop=auth; `None` for RFC 2069 style.
    pub qop_auth: bool,
    pub stale: bool,
}

impl DigestChallenge {
    /// Parses the Digest challenge out of a `WWW-Authenticate` value (which
    /// may also carry a Basic challenge). `None` if there is no usable one.
    pub fn parse(header: &str) -> Option<Self> {
        let start = header.to_ascii_lowercase().find("digest ")?;
        let params = parse_params(&header[start + "digest ".len()..]);
        let get = |name: &str| {
            params
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.clone())
        };
        if let Some(algorithm) = get("algorithm") {
            // Only MD5 is computed here; Nx offers nothing else.
            if !algorithm.eq_ignore_ascii_case("md5") {
                return None;
            }
        }
        Some(DigestChallenge {
            realm: get("realm")?,
            nonce: get("nonce")?,
            opaque: get("opaque"),
            qop_auth: get("qop")
                .map(|qop| {
                    qop.split(',')
                        .any(|q| q.trim().eq_ignore_ascii_case("auth"))
                })
                .unwrap_or(false),
            stale: get("stale")
                .map(|stale| stale.eq_ignore_ascii_case("true"))
                .unwrap_or(false),
        })
    }
}

/// `key=value` and `key="quoted, value"` pairs, comma separated. Stops at
/// the next scheme (a token followed by a space rather than `=`).
fn parse_params(input: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut rest = input.trim_start();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].trim().trim_start_matches(',').trim();
        if key.contains(' ') {
            break;
        }
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            out.push(escaped);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => out.push(c),
                }
            }
            value = out;
            rest = &quoted[end.min(quoted.len())..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        params.push((key.to_string(), value));
        rest = rest.trim_start().trim_start_matches(',').trim_start();
    }
    params
}

fn md5_hex(input: &str) -> String {
    hex::encode(Md5::digest(input.as_bytes()))
}

/// The RFC 2617 `response` value (MD5; qop=auth when `qop_nc_cnonce` is
/// given as (nc, cnonce), else the RFC 2069 form).
pub fn digest_response(
    username: &str,
    password: &str,
    method: &str,
    uri: &str,
    challenge: &DigestChallenge,
    qop_nc_cnonce: Option<(u32, &str)>,
) -> String {
    let ha1 = md5_hex(&format!("{username}:{}:{password}", challenge.realm));
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    match qop_nc_cnonce {
        Some((nc, cnonce)) => md5_hex(&format!(
            "{ha1}:{}:{nc:08x}:{cnonce}:auth:{ha2}",
            challenge.nonce
        )),
        None => md5_hex(&format!("{ha1}:{}:{ha2}", challenge.nonce)),
    }
}

/// The full `Authorization: Digest ...` header value.
pub fn digest_header(
    username: &str,
    password: &str,
    method: &str,
    uri: &str,
    challenge: &DigestChallenge,
    nc: u32,
    cnonce: &str,
) -> String {
    let qop = challenge.qop_auth.then_some((nc, cnonce));
    let response = digest_response(username, password, method, uri, challenge, qop);
    let mut header = format!(
        "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", algorithm=MD5, response=\"{response}\"",
        quote(username),
        quote(&challenge.realm),
        quote(&challenge.nonce),
        quote(uri),
    );
    if challenge.qop_auth {
        header.push_str(&format!(
            ", qop=auth, nc={nc:08x}, cnonce=\"{}\"",
            quote(cnonce)
        ));
    }
    if let Some(opaque) = &challenge.opaque {
        header.push_str(&format!(", opaque=\"{}\"", quote(opaque)));
    }
    header
}

fn quote(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Explains an `X-Auth-Result` value to an operator, in plain words.
pub fn explain_auth_result(result: &str, login: &str, method: AuthMethod) -> String {
    match result {
        "Auth_DisabledBasicAndDigest" => "digest/basic disabled for this user on the VMS; use bearer auth or enable digest for the user".to_string(),
        "Auth_WrongPassword" => format!("wrong password for user {login}"),
        "Auth_WrongLogin" => format!("unknown user {login} on the VMS"),
        "Auth_WrongDigest" => format!("the VMS refused the {} credentials of user {login}", method.as_str()),
        "Auth_LockedOut" => format!("user {login} is locked out on the VMS (too many failed logins)"),
        "Auth_WrongSessionToken" => "the VMS refused a freshly issued session token".to_string(),
        "Auth_Forbidden" => format!("user {login} is not allowed to use this API"),
        "" => format!("the VMS refused the {} credentials of user {login} (HTTP 401)", method.as_str()),
        other => format!("the VMS refused the {} credentials of user {login} ({other})", method.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_the_rfc_2617_example() {
        let header = r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#;
        let challenge = DigestChallenge::parse(header).unwrap();
        assert!(challenge.qop_auth);
        assert_eq!(
            challenge.opaque.as_deref(),
            Some("5ccc069c403ebaf9f0171e9517f40e41")
        );
        let response = digest_response(
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            &challenge,
            Some((1, "0a4f113b")),
        );
        assert_eq!(response, "6629fae49393a05397450978507c4ef1");
        let full = digest_header(
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            &challenge,
            1,
            "0a4f113b",
        );
        assert!(full.contains("nc=00000001"), "{full}");
        assert!(
            full.contains("response=\"6629fae49393a05397450978507c4ef1\""),
            "{full}"
        );
        assert!(
            full.contains("opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""),
            "{full}"
        );
    }

    #[test]
    fn digest_without_qop_is_the_rfc_2069_form() {
        let challenge = DigestChallenge::parse(
            r#"Basic realm="VMS", Digest realm="VMS", nonce="abc", algorithm=MD5"#,
        )
        .unwrap();
        assert!(!challenge.qop_auth);
        assert_eq!(challenge.realm, "VMS");
        let ha1 = md5_hex("admin:VMS:pw");
        let ha2 = md5_hex("POST:/api/createEvent");
        let expected = md5_hex(&format!("{ha1}:abc:{ha2}"));
        assert_eq!(
            digest_response("admin", "pw", "POST", "/api/createEvent", &challenge, None),
            expected
        );
        let full = digest_header(
            "admin",
            "pw",
            "POST",
            "/api/createEvent",
            &challenge,
            1,
            "c",
        );
        assert!(!full.contains("qop="), "{full}");
    }

    #[test]
    fn challenges_parse_stale_and_refuse_other_algorithms() {
        let stale =
            DigestChallenge::parse(r#"Digest realm="VMS", nonce="n2", stale=TRUE"#).unwrap();
        assert!(stale.stale);
        assert!(
            DigestChallenge::parse(r#"Digest realm="VMS", nonce="n", algorithm=SHA-256"#).is_none()
        );
        assert!(DigestChallenge::parse(r#"Basic realm="VMS""#).is_none());
        assert!(DigestChallenge::parse(r#"Digest realm="VMS""#).is_none());
        let escaped = DigestChallenge::parse(r#"Digest realm="a \"b\", c", nonce=xyz"#).unwrap();
        assert_eq!(escaped.realm, "a \"b\", c");
        assert_eq!(escaped.nonce, "xyz");
    }

    #[test]
    fn auth_results_read_as_plain_words_without_secrets() {
        assert_eq!(
            explain_auth_result("Auth_DisabledBasicAndDigest", "anpr", AuthMethod::Digest),
            "digest/basic disabled for this user on the VMS; use bearer auth or enable digest for the user"
        );
        assert_eq!(
            explain_auth_result("Auth_WrongPassword", "anpr", AuthMethod::Digest),
            "wrong password for user anpr"
        );
        assert!(format!("{:?}", Secret::new("hunter2")) == "<redacted>");
    }
}
