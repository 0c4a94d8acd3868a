//! Which API a VMS server speaks, found without credentials: `GET
//! /rest/v4/site/info` (6.1+), else `/rest/v3/system/info` (6.0), else
//! `/api/moduleInformation` (every version).

use serde::Deserialize;

/// The API family used to post events and list cameras.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// 4.x and older: `/api/*` and `/ec2/*` only, no sessions.
    Legacy,
    /// `/rest/v<N>` with the highest N the server offers (1 = 5.0 … 4 = 6.1).
    Rest(u32),
}

/// What the probe learnt about the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    pub version: String,
    pub api: Api,
}

impl ServerInfo {
    /// The status line, e.g. "6.1.0.1234 / rest v4".
    pub fn describe(&self) -> String {
        match self.api {
            Api::Legacy => format!("{} / legacy api", self.version),
            Api::Rest(n) => format!("{} / rest v{n}", self.version),
        }
    }

    /// Whether `POST /rest/v4/events/generic` exists.
    pub fn has_generic_events_v4(&self) -> bool {
        matches!(self.api, Api::Rest(n) if n >= 4)
    }

    /// The REST version used for sessions and device lists, if any.
    pub fn rest_version(&self) -> Option<u32> {
        match self.api {
            Api::Rest(n) => Some(n),
            Api::Legacy => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unexpected server information: {0}")]
pub struct DiscoverError(String);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Info {
    #[serde(default)]
    version: String,
    rest_api_versions: Option<Versions>,
}

#[derive(Deserialize)]
struct Versions {
    max: serde_json::Value,
}

/// Parses `/rest/v4/site/info` or `/rest/v3/system/info`.
pub fn parse_site_info(body: &[u8]) -> Result<ServerInfo, DiscoverError> {
    let info: Info = serde_json::from_slice(body).map_err(|err| DiscoverError(err.to_string()))?;
    let from_versions = info
        .rest_api_versions
        .and_then(|v| parse_api_version(&v.max));
    let api = match from_versions.or_else(|| api_of_version(&info.version).rest_version()) {
        Some(n) => Api::Rest(n),
        None => Api::Legacy,
    };
    Ok(ServerInfo {
        version: info.version,
        api,
    })
}

/// "v4", "4" or 4.
fn parse_api_version(value: &serde_json::Value) -> Option<u32> {
    match value {
        serde_json::Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        serde_json::Value::String(s) => s.trim().trim_start_matches(['v', 'V']).parse().ok(),
        _ => None,
    }
}

/// Parses `/api/moduleInformation` (`{"reply":{"version":...}}`).
pub fn parse_module_information(body: &[u8]) -> Result<ServerInfo, DiscoverError> {
    #[derive(Deserialize)]
    struct Module {
        reply: Reply,
    }
    #[derive(Deserialize)]
    struct Reply {
        version: String,
    }
    let module: Module =
        serde_json::from_slice(body).map_err(|err| DiscoverError(err.to_string()))?;
    Ok(api_of_version(&module.reply.version))
}

/// The newest REST API of a server version, by the published version map
/// (5.0 → v1, 5.1 → v2, 6.0 → v3, 6.1+ → v4, older → none).
pub fn api_of_version(version: &str) -> ServerInfo {
    let mut parts = version.trim().split('.').map(|p| p.parse::<u32>().ok());
    let major = parts.next().flatten().unwrap_or(0);
    let minor = parts.next().flatten().unwrap_or(0);
    let api = match (major, minor) {
        (0..=4, _) => Api::Legacy,
        (5, 0) => Api::Rest(1),
        (5, _) => Api::Rest(2),
        (6, 0) => Api::Rest(3),
        _ => Api::Rest(4),
    };
    ServerInfo {
        version: version.trim().to_string(),
        api,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_info_gives_the_highest_rest_version() {
        let info = parse_site_info(
            br#"{"name":"s","version":"6.1.0.1234","restApiVersions":{"min":"v1","max":"v4"},"synchronizedTimeMs":1}"#,
        )
        .unwrap();
        assert_eq!(info.api, Api::Rest(4));
        assert_eq!(info.describe(), "6.1.0.1234 / rest v4");
        assert!(info.has_generic_events_v4());
        let numeric =
            parse_site_info(br#"{"version":"6.0.3","restApiVersions":{"min":1,"max":3}}"#).unwrap();
        assert_eq!(numeric.api, Api::Rest(3));
        assert!(!numeric.has_generic_events_v4());
        let versionless = parse_site_info(br#"{"version":"6.0.1"}"#).unwrap();
        assert_eq!(versionless.api, Api::Rest(3));
        assert!(parse_site_info(b"not json").is_err());
    }

    #[test]
    fn module_information_maps_versions_to_apis() {
        let legacy = parse_module_information(
            br#"{"error":"0","reply":{"version":"4.2.0.32840","name":"s"}}"#,
        )
        .unwrap();
        assert_eq!(legacy.api, Api::Legacy);
        assert_eq!(legacy.describe(), "4.2.0.32840 / legacy api");
        assert_eq!(legacy.rest_version(), None);
        for (version, api) in [
            ("5.0.0", Api::Rest(1)),
            ("5.1.2", Api::Rest(2)),
            ("6.0.0", Api::Rest(3)),
            ("6.1.0", Api::Rest(4)),
            ("7.0", Api::Rest(4)),
            ("3.2", Api::Legacy),
        ] {
            assert_eq!(api_of_version(version).api, api, "{version}");
        }
        assert!(parse_module_information(br#"{"error":"0"}"#).is_err());
    }
}
