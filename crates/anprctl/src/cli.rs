//! The command line: every command, flag and environment variable of
//! `anprctl`, parsed by clap. No logic lives here beyond the conversions from
//! flag values to the protobuf enums they stand for.

use anpr_common::bus::NatsArgs;
use anpr_common::proto::{EventSelection, MaskRegion, PlateEventKind, TlsTrust, VmsAuth, VmsType};
use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

/// Default address of the config service's gRPC API.
pub const DEFAULT_CONFIG_URL: &str = "http://127.0.0.1:50051";
/// Environment variable holding a VMS password, so it never appears on a
/// command line (where `ps` and shell history would show it).
pub const VMS_PASSWORD_ENV: &str = "ANPR_VMS_PASSWORD";

/// Manage the ANPR system: VMS targets, cameras, analytic settings, and a
/// live view of the plate events.
#[derive(Debug, Parser)]
#[command(name = "anprctl", version, about, propagate_version = true)]
pub struct Cli {
    /// gRPC address of the config service.
    #[arg(
        long,
        env = "ANPR_CONFIG_URL",
        default_value = DEFAULT_CONFIG_URL,
        global = true
    )]
    pub config_url: String,

    /// How records are printed: aligned tables for people, or one JSON object
    /// per record (one per line) for scripts.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table, global = true)]
    pub output: OutputFormat,

    /// NATS connection, used only by `plates tail`.
    #[command(flatten, next_help_heading = "NATS (plates tail)")]
    pub nats: NatsArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// VMS servers that receive plate events as Generic Events.
    #[command(subcommand)]
    Vms(VmsCommand),
    /// Cameras whose streams are read.
    #[command(subcommand)]
    Camera(CameraCommand),
    /// Analytic settings: global defaults and per-camera overrides.
    #[command(subcommand)]
    Analytic(AnalyticCommand),
    /// Plate events on the bus.
    #[command(subcommand)]
    Plates(PlatesCommand),
}

// ------------------------------------------------------------------ VMS targets

#[derive(Debug, Subcommand)]
pub enum VmsCommand {
    /// Add a VMS target. The password comes from stdin (--password-stdin) or
    /// from the ANPR_VMS_PASSWORD environment variable.
    Add(VmsAddArgs),
    /// List the VMS targets.
    List,
    /// Show one VMS target.
    Show {
        /// Name of the target.
        name: String,
    },
    /// Change some settings of a VMS target; the others stay as they are.
    Update(VmsUpdateArgs),
    /// Remove a VMS target.
    Rm {
        /// Name of the target.
        name: String,
    },
}

#[derive(Debug, Clone, Args)]
pub struct VmsAddArgs {
    /// Unique name: 1-64 of A-Z a-z 0-9 _ -.
    pub name: String,
    /// Host name or IP address of the VMS server, without scheme or port.
    #[arg(long)]
    pub host: String,
    /// TCP port of the VMS server.
    #[arg(long, default_value_t = 7001)]
    pub port: u32,
    /// Use HTTPS on the same port.
    #[arg(long)]
    pub ssl: bool,
    /// How the server's certificate is trusted with --ssl (default verify;
    /// pinned when --pin is given).
    #[arg(long, value_enum)]
    pub tls_trust: Option<TlsTrustArg>,
    /// SHA-256 of the server certificate (hex, ':' separators allowed), for
    /// --tls-trust pinned.
    #[arg(long, value_name = "SHA256HEX")]
    pub pin: Option<String>,
    /// VMS user name.
    #[arg(long)]
    pub login: String,
    /// Which plate events the target receives.
    #[arg(long, value_enum, default_value_t = EventsArg::Detect)]
    pub events: EventsArg,
    /// How to authenticate to the VMS (default auto).
    #[arg(long, value_enum)]
    pub auth: Option<AuthArg>,
    /// Send Detect and Lost as start and end of one prolonged Generic Event.
    #[arg(long)]
    pub prolonged: bool,
    /// Store the target without sending it events.
    #[arg(long)]
    pub disabled: bool,
    /// Kind of VMS integration.
    #[arg(long = "type", value_enum, default_value_t = VmsTypeArg::NxGenericEvent)]
    pub vms_type: VmsTypeArg,
    /// Read the password from the first line of stdin.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("change").required(true).multiple(true)))]
pub struct VmsUpdateArgs {
    /// Name of the target to change.
    pub name: String,
    /// New host name or IP address.
    #[arg(long, group = "change")]
    pub host: Option<String>,
    /// New TCP port.
    #[arg(long, group = "change")]
    pub port: Option<u32>,
    /// Use HTTPS.
    #[arg(long, group = "change", conflicts_with = "no_ssl")]
    pub ssl: bool,
    /// Use plain HTTP.
    #[arg(long, group = "change")]
    pub no_ssl: bool,
    /// How the server's certificate is trusted.
    #[arg(long, value_enum, group = "change")]
    pub tls_trust: Option<TlsTrustArg>,
    /// SHA-256 of the server certificate; implies --tls-trust pinned.
    #[arg(long, value_name = "SHA256HEX", group = "change")]
    pub pin: Option<String>,
    /// New VMS user name.
    #[arg(long, group = "change")]
    pub login: Option<String>,
    /// Which plate events the target receives.
    #[arg(long, value_enum, group = "change")]
    pub events: Option<EventsArg>,
    /// How to authenticate to the VMS.
    #[arg(long, value_enum, group = "change")]
    pub auth: Option<AuthArg>,
    /// Send prolonged Generic Events.
    #[arg(long, group = "change", conflicts_with = "no_prolonged")]
    pub prolonged: bool,
    /// Send instant Generic Events.
    #[arg(long, group = "change")]
    pub no_prolonged: bool,
    /// Send events to the target again.
    #[arg(long, group = "change", conflicts_with = "disabled")]
    pub enabled: bool,
    /// Stop sending events to the target.
    #[arg(long, group = "change")]
    pub disabled: bool,
    /// Kind of VMS integration.
    #[arg(long = "type", value_enum, group = "change")]
    pub vms_type: Option<VmsTypeArg>,
    /// Set a new password read from the first line of stdin.
    #[arg(long, group = "change", conflicts_with = "password_from_env")]
    pub password_stdin: bool,
    /// Set a new password taken from ANPR_VMS_PASSWORD.
    #[arg(long, group = "change")]
    pub password_from_env: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TlsTrustArg {
    /// Verify against the system's CA roots and the host name.
    Verify,
    /// Accept exactly the certificate given with --pin.
    Pinned,
    /// Accept any certificate (encrypts, does not authenticate).
    Insecure,
}

impl From<TlsTrustArg> for TlsTrust {
    fn from(arg: TlsTrustArg) -> Self {
        match arg {
            TlsTrustArg::Verify => TlsTrust::Verify,
            TlsTrustArg::Pinned => TlsTrust::Pinned,
            TlsTrustArg::Insecure => TlsTrust::Insecure,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EventsArg {
    Detect,
    Lost,
    Both,
}

impl From<EventsArg> for EventSelection {
    fn from(arg: EventsArg) -> Self {
        match arg {
            EventsArg::Detect => EventSelection::Detect,
            EventsArg::Lost => EventSelection::Lost,
            EventsArg::Both => EventSelection::Both,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthArg {
    /// Bearer session where the server offers it, else Digest.
    Auto,
    Bearer,
    Digest,
    Basic,
}

impl From<AuthArg> for VmsAuth {
    fn from(arg: AuthArg) -> Self {
        match arg {
            AuthArg::Auto => VmsAuth::Auto,
            AuthArg::Bearer => VmsAuth::Bearer,
            AuthArg::Digest => VmsAuth::Digest,
            AuthArg::Basic => VmsAuth::Basic,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VmsTypeArg {
    /// Network Optix Nx Witness and rebrands: "VMS Generic Event".
    NxGenericEvent,
}

impl From<VmsTypeArg> for VmsType {
    fn from(arg: VmsTypeArg) -> Self {
        match arg {
            VmsTypeArg::NxGenericEvent => VmsType::NxGenericEvent,
        }
    }
}

// ---------------------------------------------------------------------- cameras

#[derive(Debug, Subcommand)]
pub enum CameraCommand {
    /// Add a camera.
    Add(CameraAddArgs),
    /// List the cameras.
    List,
    /// Show one camera.
    Show {
        /// Id of the camera.
        id: String,
    },
    /// Change some settings of a camera; the others stay as they are.
    Update(CameraUpdateArgs),
    /// Remove a camera and its analytic override.
    Rm {
        /// Id of the camera.
        id: String,
    },
}

#[derive(Debug, Clone, Args)]
pub struct CameraAddArgs {
    /// Unique id, also the NATS subject token: 1-64 of A-Z a-z 0-9 _ -.
    pub id: String,
    /// rtsp://, rtsps:// or file:// URL. Credentials in it are stored apart
    /// and removed from the URL.
    #[arg(long)]
    pub url: String,
    /// Display name, the Generic Event's source (default: the id).
    #[arg(long)]
    pub name: Option<String>,
    /// IP address the VMS knows the camera by (default: the URL's host).
    #[arg(long)]
    pub ip: Option<String>,
    /// VMS camera id (UUID, physical or logical id); wins over matching by IP.
    #[arg(long)]
    pub vms_camera_id: Option<String>,
    /// Encoder channel (0-based) when several VMS cameras share the IP.
    #[arg(long)]
    pub channel: Option<u32>,
    /// Frames per second sent to recognition (default 10).
    #[arg(long)]
    pub fps: Option<f32>,
    /// RTSP user name.
    #[arg(long)]
    pub rtsp_user: Option<String>,
    /// Read the RTSP password from the first line of stdin.
    #[arg(long)]
    pub rtsp_password_stdin: bool,
    /// A region the recognizer ignores (the camera's clock or name overlay,
    /// a sign): X,Y,WIDTH,HEIGHT as fractions of the picture, e.g.
    /// 0,0.92,0.45,0.08 for the bottom-left strip. Repeat for several.
    #[arg(long = "mask", value_name = "X,Y,W,H", value_parser = parse_mask_region)]
    pub masks: Vec<MaskRegion>,
    /// Store the camera without reading its stream.
    #[arg(long)]
    pub disabled: bool,
}

/// `X,Y,WIDTH,HEIGHT`, fractions of the picture. The config service checks
/// the ranges; this only reads the numbers.
pub fn parse_mask_region(value: &str) -> Result<MaskRegion, String> {
    let numbers: Vec<f32> = value
        .split(',')
        .map(|part| {
            part.trim()
                .parse::<f32>()
                .map_err(|_| format!("{:?} is not a number", part.trim()))
        })
        .collect::<Result<_, _>>()?;
    match numbers[..] {
        [x, y, width, height] => Ok(MaskRegion {
            x,
            y,
            width,
            height,
        }),
        _ => Err(format!(
            "expected X,Y,WIDTH,HEIGHT (four fractions of the picture), got {} numbers",
            numbers.len()
        )),
    }
}

#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("change").required(true).multiple(true)))]
pub struct CameraUpdateArgs {
    /// Id of the camera to change.
    pub id: String,
    /// New stream URL.
    #[arg(long, group = "change")]
    pub url: Option<String>,
    /// New display name.
    #[arg(long, group = "change")]
    pub name: Option<String>,
    /// New IP address the VMS knows the camera by.
    #[arg(long, group = "change")]
    pub ip: Option<String>,
    /// New VMS camera id.
    #[arg(long, group = "change", conflicts_with = "no_vms_camera_id")]
    pub vms_camera_id: Option<String>,
    /// Forget the VMS camera id and map by IP address again.
    #[arg(long, group = "change")]
    pub no_vms_camera_id: bool,
    /// New encoder channel.
    #[arg(long, group = "change", conflicts_with = "no_channel")]
    pub channel: Option<u32>,
    /// Forget the encoder channel.
    #[arg(long, group = "change")]
    pub no_channel: bool,
    /// New frames per second sent to recognition.
    #[arg(long, group = "change")]
    pub fps: Option<f32>,
    /// New RTSP user name.
    #[arg(long, group = "change")]
    pub rtsp_user: Option<String>,
    /// Set a new RTSP password read from the first line of stdin.
    #[arg(long, group = "change")]
    pub rtsp_password_stdin: bool,
    /// Replace the mask regions with these (X,Y,WIDTH,HEIGHT, fractions of
    /// the picture); repeat for several.
    #[arg(long = "mask", value_name = "X,Y,W,H", value_parser = parse_mask_region,
          group = "change", conflicts_with = "no_masks")]
    pub masks: Vec<MaskRegion>,
    /// Remove every mask region.
    #[arg(long, group = "change")]
    pub no_masks: bool,
    /// Read the camera's stream again.
    #[arg(long, group = "change", conflicts_with = "disabled")]
    pub enabled: bool,
    /// Stop reading the camera's stream.
    #[arg(long, group = "change")]
    pub disabled: bool,
}

// ------------------------------------------------------------ analytic settings

#[derive(Debug, Subcommand)]
pub enum AnalyticCommand {
    /// Show the effective settings and where each comes from.
    Show {
        /// A camera's settings instead of the global defaults.
        #[arg(long)]
        camera: Option<String>,
    },
    /// Set some settings in the defaults or in a camera's override.
    Set(AnalyticSetArgs),
    /// Remove a camera's override, or reset the defaults to the built-in ones.
    Reset {
        /// The camera whose override is removed; without it, the defaults.
        #[arg(long)]
        camera: Option<String>,
    },
    /// List the stored overrides.
    List,
}

#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("setting").required(true).multiple(true)))]
pub struct AnalyticSetArgs {
    /// Change this camera's override instead of the global defaults.
    #[arg(long)]
    pub camera: Option<String>,
    /// Reads of a new plate ignored before Detect (0-10).
    #[arg(long, group = "setting")]
    pub skip_first: Option<u32>,
    /// Minimum read confidence for Detect (0-1).
    #[arg(long, group = "setting")]
    pub min_confidence: Option<f32>,
    /// No read for this long ends a track with Lost (100-600000).
    #[arg(long, group = "setting")]
    pub lost_timeout_ms: Option<u32>,
    /// Maximum edit distance for a read to join a track (0-4).
    #[arg(long, group = "setting")]
    pub grouping_distance: Option<u32>,
    /// Plate format regex, matched against the whole plate text. Repeat it for
    /// several; the given list replaces the stored one.
    #[arg(long = "plate-format", value_name = "REGEX", group = "setting")]
    pub plate_formats: Vec<String>,
    /// Remove every plate format rule.
    #[arg(long, group = "setting", conflicts_with = "plate_formats")]
    pub no_plate_formats: bool,
}

// ----------------------------------------------------------------- plate events

#[derive(Debug, Subcommand)]
pub enum PlatesCommand {
    /// Print plate events as they are published, until Ctrl-C.
    Tail(PlatesTailArgs),
}

#[derive(Debug, Clone, Args)]
pub struct PlatesTailArgs {
    /// Only this camera's events.
    #[arg(long)]
    pub camera: Option<String>,
    /// Only events of this kind.
    #[arg(long, value_enum)]
    pub kind: Option<KindArg>,
    /// Stop after this many events.
    #[arg(long)]
    pub count: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    Detect,
    Update,
    Lost,
}

impl From<KindArg> for PlateEventKind {
    fn from(arg: KindArg) -> Self {
        match arg {
            KindArg::Detect => PlateEventKind::Detect,
            KindArg::Update => PlateEventKind::Update,
            KindArg::Lost => PlateEventKind::Lost,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("anprctl").chain(args.iter().copied()))
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn vms_add_takes_defaults_and_flags() {
        let cli = parse(&[
            "vms", "add", "nx1", "--host", "10.0.0.5", "--login", "admin",
        ])
        .expect("parses");
        let Command::Vms(VmsCommand::Add(args)) = cli.command else {
            panic!("not vms add: {:?}", cli.command);
        };
        assert_eq!(args.name, "nx1");
        assert_eq!(args.host, "10.0.0.5");
        assert_eq!(args.port, 7001);
        assert!(!args.ssl && !args.prolonged && !args.disabled && !args.password_stdin);
        assert_eq!(args.events, EventsArg::Detect);
        assert_eq!(args.vms_type, VmsTypeArg::NxGenericEvent);
        assert_eq!(args.tls_trust, None);
        assert_eq!(cli.output, OutputFormat::Table);

        let cli = parse(&[
            "--output",
            "json",
            "vms",
            "add",
            "nx2",
            "--host",
            "nx.example.com",
            "--port",
            "7443",
            "--ssl",
            "--tls-trust",
            "insecure",
            "--events",
            "both",
            "--auth",
            "digest",
            "--login",
            "op",
            "--password-stdin",
        ])
        .expect("parses");
        assert_eq!(cli.output, OutputFormat::Json);
        let Command::Vms(VmsCommand::Add(args)) = cli.command else {
            panic!("not vms add: {:?}", cli.command);
        };
        assert_eq!(args.port, 7443);
        assert!(args.ssl && args.password_stdin);
        assert_eq!(args.tls_trust, Some(TlsTrustArg::Insecure));
        assert_eq!(args.events, EventsArg::Both);
        assert_eq!(args.auth, Some(AuthArg::Digest));
    }

    #[test]
    fn a_password_cannot_be_given_on_the_command_line() {
        let err = parse(&[
            "vms",
            "add",
            "nx1",
            "--host",
            "h",
            "--login",
            "l",
            "--password",
            "secret",
        ])
        .expect_err("no --password flag");
        assert_eq!(err.kind(), ErrorKind::UnknownArgument);
    }

    #[test]
    fn vms_add_requires_host_and_login() {
        let err = parse(&["vms", "add", "nx1", "--login", "admin"]).expect_err("no host");
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument);
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn vms_update_needs_something_to_change() {
        let err = parse(&["vms", "update", "nx1"]).expect_err("nothing to change");
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument);
        let err = parse(&["vms", "update", "nx1", "--ssl", "--no-ssl"]).expect_err("contradiction");
        assert_eq!(err.kind(), ErrorKind::ArgumentConflict);
        let cli = parse(&["vms", "update", "nx1", "--events", "both"]).expect("parses");
        let Command::Vms(VmsCommand::Update(args)) = cli.command else {
            panic!("not vms update: {:?}", cli.command);
        };
        assert_eq!(args.events, Some(EventsArg::Both));
        assert_eq!(args.host, None);
        assert!(!args.password_stdin && !args.password_from_env);
    }

    #[test]
    fn global_options_may_follow_the_command() {
        let cli = parse(&[
            "camera",
            "list",
            "--config-url",
            "http://10.9.8.7:50051",
            "--output",
            "json",
        ])
        .expect("parses");
        assert_eq!(cli.config_url, "http://10.9.8.7:50051");
        assert_eq!(cli.output, OutputFormat::Json);
        assert!(matches!(cli.command, Command::Camera(CameraCommand::List)));
    }

    #[test]
    fn analytic_set_collects_repeated_formats() {
        let cli = parse(&[
            "analytic",
            "set",
            "--camera",
            "gate-1",
            "--plate-format",
            "^[A-Z]{3}[0-9]{4}$",
            "--plate-format",
            "^[0-9]{3}[A-Z]{3}$",
        ])
        .expect("parses");
        let Command::Analytic(AnalyticCommand::Set(args)) = cli.command else {
            panic!("not analytic set: {:?}", cli.command);
        };
        assert_eq!(args.camera.as_deref(), Some("gate-1"));
        assert_eq!(
            args.plate_formats,
            ["^[A-Z]{3}[0-9]{4}$", "^[0-9]{3}[A-Z]{3}$"]
        );
        let err = parse(&["analytic", "set"]).expect_err("nothing to set");
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument);
        let err = parse(&[
            "analytic",
            "set",
            "--plate-format",
            "x",
            "--no-plate-formats",
        ])
        .expect_err("contradiction");
        assert_eq!(err.kind(), ErrorKind::ArgumentConflict);
    }

    #[test]
    fn plates_tail_filters() {
        let cli = parse(&[
            "--nats-url",
            "nats://10.0.0.1:4222",
            "plates",
            "tail",
            "--camera",
            "gate-1",
            "--kind",
            "lost",
            "--count",
            "3",
        ])
        .expect("parses");
        assert_eq!(cli.nats.url, "nats://10.0.0.1:4222");
        let Command::Plates(PlatesCommand::Tail(args)) = cli.command else {
            panic!("not plates tail: {:?}", cli.command);
        };
        assert_eq!(args.camera.as_deref(), Some("gate-1"));
        assert_eq!(args.kind, Some(KindArg::Lost));
        assert_eq!(args.count, Some(3));
        let err = parse(&["plates", "tail", "--kind", "detected"]).expect_err("bad kind");
        assert_eq!(err.kind(), ErrorKind::InvalidValue);
    }
}
