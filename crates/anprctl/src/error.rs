//! Turns a failed gRPC call into one line an operator can act on.

use tonic::{Code, Status};

/// The kind of record a call was about, for "no such ..." hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Noun {
    VmsTarget,
    Camera,
    AnalyticSettings,
}

impl Noun {
    fn name(self) -> &'static str {
        match self {
            Noun::VmsTarget => "VMS target",
            Noun::Camera => "camera",
            // Analytic settings exist for every camera; a missing one is the
            // camera itself.
            Noun::AnalyticSettings => "camera",
        }
    }

    /// The command group that manages records of this kind.
    fn command(self) -> &'static str {
        match self {
            Noun::VmsTarget => "anprctl vms",
            Noun::Camera | Noun::AnalyticSettings => "anprctl camera",
        }
    }
}

/// A refused or failed call: what was being done, the server's message, and
/// a hint for the codes where the next step is clear.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {message}{}", hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
pub struct RpcError {
    pub what: String,
    pub code: Code,
    pub message: String,
    pub hint: Option<String>,
}

/// Describes `status`, returned while doing `what` (e.g. `creating VMS target
/// "nx1"`) against the config service at `config_url`.
pub fn rpc_error(
    what: impl Into<String>,
    noun: Noun,
    status: &Status,
    config_url: &str,
) -> RpcError {
    let hint = match status.code() {
        Code::NotFound => Some(format!(
            "no such {}; `{} list` shows the existing ones",
            noun.name(),
            noun.command()
        )),
        Code::AlreadyExists => Some(format!(
            "a {} with this name exists already; change it with `{command} update` or remove it with `{command} rm`",
            noun.name(),
            command = noun.command()
        )),
        Code::FailedPrecondition => {
            Some("it was changed meanwhile; read it again and retry".to_string())
        }
        // The server's message names the refused field; nothing to add.
        Code::InvalidArgument => None,
        // Also returned when the service cannot reach its storage; the
        // server's message then says so, and the address is still worth seeing.
        Code::Unavailable => Some(format!("cannot reach the config service at {config_url}")),
        Code::DeadlineExceeded => Some(format!(
            "the config service at {config_url} did not answer in time"
        )),
        Code::Unimplemented => Some(format!(
            "the service at {config_url} does not serve this call; is it the ANPR config service, and as new as anprctl?"
        )),
        _ => None,
    };
    // Keep the error on one line even if a message spans several.
    let message = status
        .message()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    RpcError {
        what: what.into(),
        code: status.code(),
        message: if message.is_empty() {
            status.code().description().to_string()
        } else {
            message
        },
        hint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://127.0.0.1:50051";

    fn line(what: &str, noun: Noun, status: Status) -> String {
        rpc_error(what, noun, &status, URL).to_string()
    }

    #[test]
    fn each_code_gets_its_hint() {
        assert_eq!(
            line(
                "reading VMS target \"nx9\"",
                Noun::VmsTarget,
                Status::not_found("VMS target \"nx9\" not found")
            ),
            "reading VMS target \"nx9\": VMS target \"nx9\" not found (no such VMS target; `anprctl vms list` shows the existing ones)"
        );
        assert_eq!(
            line(
                "reading camera \"gate-9\"",
                Noun::Camera,
                Status::not_found("camera \"gate-9\" not found")
            ),
            "reading camera \"gate-9\": camera \"gate-9\" not found (no such camera; `anprctl camera list` shows the existing ones)"
        );
        assert!(line(
            "creating VMS target \"nx1\"",
            Noun::VmsTarget,
            Status::already_exists("VMS target \"nx1\" already exists")
        )
        .ends_with("(a VMS target with this name exists already; change it with `anprctl vms update` or remove it with `anprctl vms rm`)"));
        assert_eq!(
            line(
                "updating camera \"gate-1\"",
                Noun::Camera,
                Status::failed_precondition("camera \"gate-1\" was changed meanwhile: expected revision 3, stored revision 4")
            ),
            "updating camera \"gate-1\": camera \"gate-1\" was changed meanwhile: expected revision 3, stored revision 4 (it was changed meanwhile; read it again and retry)"
        );
        assert_eq!(
            line(
                "listing VMS targets",
                Noun::VmsTarget,
                Status::unavailable("tcp connect error")
            ),
            "listing VMS targets: tcp connect error (cannot reach the config service at http://127.0.0.1:50051)"
        );
    }

    #[test]
    fn invalid_arguments_are_printed_as_the_server_wrote_them() {
        let error = rpc_error(
            "creating VMS target \"nx1\"",
            Noun::VmsTarget,
            &Status::invalid_argument("invalid request: target.port: must be 1-65535, got 0"),
            URL,
        );
        assert_eq!(error.code, Code::InvalidArgument);
        assert_eq!(error.hint, None);
        assert_eq!(
            error.to_string(),
            "creating VMS target \"nx1\": invalid request: target.port: must be 1-65535, got 0"
        );
    }

    #[test]
    fn the_error_stays_on_one_line() {
        let text = line(
            "listing cameras",
            Noun::Camera,
            Status::internal("first line\nsecond line"),
        );
        assert_eq!(text, "listing cameras: first line second line");
        let text = line("listing cameras", Noun::Camera, Status::internal(""));
        assert_eq!(text, "listing cameras: Internal error");
    }
}
