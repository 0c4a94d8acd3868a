//! What a camera's URL asks for, and how it may be shown.
//!
//! - `rtsp://host[:port]/path`: a camera (credentials come from the config
//!   service, never from the URL).
//! - `file:///path/clip.mp4` (or `.ts`, anything FFmpeg demuxes): a recorded
//!   clip; `file:///path/dir`: a folder of JPEGs, published in name order.
//!   Options in the query: `loop=true|false` (default false) and
//!   `rate=native|fast|live` (default native: real-time pacing; fast: as fast
//!   as the pipeline goes; live, clips only, with `epoch=<unix ms>`: looped
//!   and played as a live camera that started the clip at `epoch`, so that
//!   whoever opens it, whenever, sees the scene the wall clock is at — what
//!   a replica taking a camera over sees of a real one).

use std::path::PathBuf;

use url::Url;

/// How fast a file source is played.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rate {
    /// At the clip's own pace (or `sample_fps` for a JPEG folder).
    #[default]
    Native,
    /// As fast as decoding and publishing allow.
    Fast,
    /// Looped and anchored to the wall clock: pass `k` of the clip starts at
    /// `epoch + k × length` (Unix milliseconds).
    Live { epoch_ms: u64 },
}

/// Where a camera's pictures come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    Rtsp {
        /// Without credentials.
        url: Url,
    },
    /// A clip or a folder of JPEGs; which one is decided when it is opened.
    File {
        path: PathBuf,
        looped: bool,
        rate: Rate,
    },
}

impl SourceSpec {
    pub fn is_file(&self) -> bool {
        matches!(self, SourceSpec::File { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("camera URL is not a valid URL: {0}")]
    Invalid(#[from] url::ParseError),
    #[error("camera URL scheme {0:?} is not supported (rtsp or file)")]
    Scheme(String),
    #[error("rtsps:// (RTSP over TLS) is not supported by anpr-ingest")]
    Rtsps,
    #[error("rtsp:// URL has no host")]
    NoHost,
    #[error("file:// URL must be an absolute local path")]
    BadPath,
    #[error("unknown file source option {0:?} (known: loop, rate, epoch)")]
    UnknownOption(String),
    #[error(
        "file source option rate=live needs epoch=<unix milliseconds>, and epoch needs rate=live"
    )]
    LiveWithoutEpoch,
    #[error("file source option loop=false cannot be combined with rate=live")]
    LiveNotLooped,
    #[error("file source option {key} must be {allowed}, got {value:?}")]
    BadOption {
        key: &'static str,
        allowed: &'static str,
        value: String,
    },
}

/// Parses a camera URL.
pub fn parse(raw: &str) -> Result<SourceSpec, UrlError> {
    let mut url = Url::parse(raw.trim())?;
    match url.scheme() {
        "rtsp" => {
            if url.host().is_none() {
                return Err(UrlError::NoHost);
            }
            // The config service moves credentials out of URLs; should one
            // slip through, it must not travel in DESCRIBE or show up in a
            // log line.
            let _ = url.set_username("");
            let _ = url.set_password(None);
            Ok(SourceSpec::Rtsp { url })
        }
        "rtsps" => Err(UrlError::Rtsps),
        "file" => {
            let mut looped = None;
            let mut rate = Rate::Native;
            let mut live = false;
            let mut epoch_ms = None;
            for (key, value) in url.query_pairs() {
                match key.as_ref() {
                    "loop" => {
                        looped = match value.as_ref() {
                            "true" | "1" | "yes" => Some(true),
                            "false" | "0" | "no" => Some(false),
                            _ => {
                                return Err(UrlError::BadOption {
                                    key: "loop",
                                    allowed: "true or false",
                                    value: value.into_owned(),
                                })
                            }
                        }
                    }
                    "rate" => {
                        rate = match value.as_ref() {
                            "native" => Rate::Native,
                            "fast" => Rate::Fast,
                            "live" => {
                                live = true;
                                Rate::Native
                            }
                            _ => {
                                return Err(UrlError::BadOption {
                                    key: "rate",
                                    allowed: "native, fast or live",
                                    value: value.into_owned(),
                                })
                            }
                        }
                    }
                    "epoch" => {
                        epoch_ms = Some(value.parse::<u64>().map_err(|_| UrlError::BadOption {
                            key: "epoch",
                            allowed: "Unix time in milliseconds",
                            value: value.to_string(),
                        })?)
                    }
                    other => return Err(UrlError::UnknownOption(other.to_string())),
                }
            }
            url.set_query(None);
            let path = url.to_file_path().map_err(|()| UrlError::BadPath)?;
            if path.parent().is_none() {
                return Err(UrlError::BadPath);
            }
            if live {
                let epoch_ms = epoch_ms.ok_or(UrlError::LiveWithoutEpoch)?;
                if looped == Some(false) {
                    return Err(UrlError::LiveNotLooped);
                }
                rate = Rate::Live { epoch_ms };
            } else if epoch_ms.is_some() {
                return Err(UrlError::LiveWithoutEpoch);
            }
            let looped = looped.unwrap_or(live);
            Ok(SourceSpec::File { path, looped, rate })
        }
        other => Err(UrlError::Scheme(other.to_string())),
    }
}

/// Query keys whose values are credentials on some cameras
/// (`?user=admin&password=...`).
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "pass", "pwd", "user", "token", "auth", "key", "secret", "sig",
    ]
    .iter()
    .any(|word| key.contains(word))
}

/// The URL for logs and status: no user name, password or secret-looking
/// query value. An unparsable URL is not shown at all.
pub fn redact(raw: &str) -> String {
    let Ok(mut url) = Url::parse(raw.trim()) else {
        return "<invalid URL>".to_string();
    };
    if !url.username().is_empty() || url.password().is_some() {
        let _ = url.set_username("redacted");
        let _ = url.set_password(None);
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(key, value)| {
                let value = if is_secret_key(&key) {
                    "redacted".to_string()
                } else {
                    value.into_owned()
                };
                (key.into_owned(), value)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtsp_urls_lose_their_credentials() {
        let spec = parse("rtsp://admin:s3cret@192.168.1.20:554/Streaming/101").expect("valid");
        let SourceSpec::Rtsp { url } = spec else {
            panic!("not rtsp: {spec:?}")
        };
        assert_eq!(url.as_str(), "rtsp://192.168.1.20:554/Streaming/101");
        assert_eq!(parse("rtsp:///x"), Err(UrlError::NoHost));
        assert_eq!(parse("rtsps://cam/x"), Err(UrlError::Rtsps));
        assert_eq!(
            parse("http://cam/x"),
            Err(UrlError::Scheme("http".to_string()))
        );
        assert!(matches!(parse("not a url"), Err(UrlError::Invalid(_))));
    }

    #[test]
    fn file_urls_take_loop_and_rate_options() {
        assert_eq!(
            parse("file:///data/clip.mp4").expect("valid"),
            SourceSpec::File {
                path: "/data/clip.mp4".into(),
                looped: false,
                rate: Rate::Native,
            }
        );
        assert_eq!(
            parse("file:///data/my%20clips/a.ts?loop=true&rate=fast").expect("valid"),
            SourceSpec::File {
                path: "/data/my clips/a.ts".into(),
                looped: true,
                rate: Rate::Fast,
            }
        );
        assert_eq!(
            parse("file:///data/jpegs?rate=native&loop=false").expect("valid"),
            SourceSpec::File {
                path: "/data/jpegs".into(),
                looped: false,
                rate: Rate::Native,
            }
        );
        assert_eq!(
            parse("file:///data/a.ts?loop=maybe"),
            Err(UrlError::BadOption {
                key: "loop",
                allowed: "true or false",
                value: "maybe".into()
            })
        );
        assert_eq!(
            parse("file:///data/a.ts?rate=live&epoch=1764400000000").expect("valid"),
            SourceSpec::File {
                path: PathBuf::from("/data/a.ts"),
                looped: true,
                rate: Rate::Live {
                    epoch_ms: 1_764_400_000_000
                },
            }
        );
        assert_eq!(
            parse("file:///data/a.ts?rate=live"),
            Err(UrlError::LiveWithoutEpoch)
        );
        assert_eq!(
            parse("file:///data/a.ts?epoch=5"),
            Err(UrlError::LiveWithoutEpoch)
        );
        assert_eq!(
            parse("file:///data/a.ts?rate=live&epoch=5&loop=false"),
            Err(UrlError::LiveNotLooped)
        );
        assert!(matches!(
            parse("file:///data/a.ts?rate=slow"),
            Err(UrlError::BadOption { key: "rate", .. })
        ));
        assert_eq!(
            parse("file:///data/a.ts?speed=2"),
            Err(UrlError::UnknownOption("speed".into()))
        );
        assert_eq!(parse("file:///"), Err(UrlError::BadPath));
        assert_eq!(parse("file://otherhost/a.ts"), Err(UrlError::BadPath));
    }

    #[test]
    fn redaction_hides_every_credential() {
        let shown = redact("rtsp://admin:s3cret@10.0.0.1/live?channel=1&password=hunter2&User=bob");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(!shown.contains("admin"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("bob"), "{shown}");
        assert!(shown.contains("10.0.0.1/live"), "{shown}");
        assert!(shown.contains("channel=1"), "{shown}");
        assert_eq!(redact("rtsp://10.0.0.1/live"), "rtsp://10.0.0.1/live");
        assert_eq!(redact("rtsp://a b:c@@"), "<invalid URL>");
        assert_eq!(
            redact("file:///data/a.ts?loop=true"),
            "file:///data/a.ts?loop=true"
        );
    }
}
