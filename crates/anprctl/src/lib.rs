//! `anprctl`, the operator CLI of the ANPR system: manages VMS targets,
//! cameras and analytic settings through the config service's gRPC API, and
//! shows the plate events on the NATS bus as they happen.
//!
//! The binary only parses the command line and calls [`run`]; everything else
//! lives here so tests can drive it.

pub mod analytic;
pub mod camera;
pub mod cli;
pub mod error;
pub mod format;
pub mod json;
pub mod plates;
pub mod secret;
pub mod table;
pub mod vms;

use std::io::Write;
use std::time::Duration;

use anpr_common::proto::config_client::ConfigClient;
use anyhow::Context as _;
use serde_json::Value;
use tonic::transport::{Channel, Endpoint};

use crate::cli::{Cli, Command, OutputFormat};
use crate::error::{rpc_error, Noun};

/// How long establishing the connection to the config service may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one call may take; every call is a small KV read or write.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs one parsed command, writing its result to `out`.
pub async fn run(cli: Cli, out: &mut dyn Write) -> anyhow::Result<()> {
    match cli.command {
        Command::Plates(command) => plates::run(command, &cli.nats, cli.output, out).await,
        Command::Vms(command) => {
            let mut ctx = Context::new(&cli.config_url, cli.output)?;
            vms::run(command, &mut ctx, out).await
        }
        Command::Camera(command) => {
            let mut ctx = Context::new(&cli.config_url, cli.output)?;
            camera::run(command, &mut ctx, out).await
        }
        Command::Analytic(command) => {
            let mut ctx = Context::new(&cli.config_url, cli.output)?;
            analytic::run(command, &mut ctx, out).await
        }
    }
}

/// What the config-service commands share: the client, where it points (for
/// error hints) and the output format.
pub struct Context {
    pub client: ConfigClient<Channel>,
    pub config_url: String,
    pub output: OutputFormat,
}

impl Context {
    /// Prepares a client for `config_url`. The connection is made by the first
    /// call, so an unreachable service is reported as that call's failure,
    /// with the same hint as any other `Unavailable`.
    pub fn new(config_url: &str, output: OutputFormat) -> anyhow::Result<Self> {
        let endpoint = Endpoint::from_shared(config_url.to_string())
            .with_context(|| format!("--config-url {config_url:?} is not a valid URL"))?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CALL_TIMEOUT);
        Ok(Context {
            client: ConfigClient::new(endpoint.connect_lazy()),
            config_url: config_url.to_string(),
            output,
        })
    }

    /// The error for a failed call made while doing `what`.
    pub fn failed(&self, what: String, noun: Noun, status: &tonic::Status) -> anyhow::Error {
        rpc_error(what, noun, status, &self.config_url).into()
    }
}

/// Prints one record: `text` for people, or `value` on one line for scripts.
pub fn print_record(
    out: &mut dyn Write,
    output: OutputFormat,
    text: impl FnOnce() -> String,
    value: impl FnOnce() -> Value,
) -> std::io::Result<()> {
    match output {
        OutputFormat::Table => out.write_all(text().as_bytes()),
        OutputFormat::Json => writeln!(out, "{}", value()),
    }
}

/// Prints a list: a table for people, or one JSON object per line per record.
pub fn print_list<T>(
    out: &mut dyn Write,
    output: OutputFormat,
    records: &[T],
    table: impl FnOnce(&[T]) -> String,
    value: impl Fn(&T) -> Value,
) -> std::io::Result<()> {
    match output {
        OutputFormat::Table => out.write_all(table(records).as_bytes()),
        OutputFormat::Json => {
            for record in records {
                writeln!(out, "{}", value(record))?;
            }
            Ok(())
        }
    }
}

/// Confirms a removal: a sentence, or `{"removed": {"kind": ..., "id": ...}}`.
pub fn print_removed(
    out: &mut dyn Write,
    output: OutputFormat,
    kind: &str,
    id: &str,
) -> std::io::Result<()> {
    match output {
        OutputFormat::Table => writeln!(out, "removed {kind} {id:?}"),
        OutputFormat::Json => writeln!(
            out,
            "{}",
            serde_json::json!({ "removed": { "kind": kind, "id": id } })
        ),
    }
}
