//! `anprctl vms ...`: the VMS targets that receive plate events.

use std::io::Write;

use anpr_common::proto::{
    CreateVmsTargetRequest, DeleteVmsTargetRequest, EventSelection, GetVmsTargetRequest,
    ListVmsTargetsRequest, TlsTrust, UpdateVmsTargetRequest, VmsAuth, VmsTarget, VmsType,
};

use crate::cli::{TlsTrustArg, VmsAddArgs, VmsCommand, VmsUpdateArgs, VMS_PASSWORD_ENV};
use crate::error::Noun;
use crate::{json, print_list, print_record, print_removed, secret, table, Context};

/// The target `vms add` creates. Settings not given stay unset, so the
/// config service's documented defaults apply.
pub fn new_target(args: &VmsAddArgs, password: String) -> VmsTarget {
    let mut target = VmsTarget {
        name: args.name.clone(),
        host: args.host.clone(),
        port: Some(args.port),
        use_ssl: args.ssl,
        pinned_cert_sha256: args.pin.clone().unwrap_or_default(),
        login: args.login.clone(),
        password,
        enabled: Some(!args.disabled),
        prolonged: args.prolonged,
        ..Default::default()
    };
    target.set_type(VmsType::from(args.vms_type));
    target.set_events(EventSelection::from(args.events));
    // A pin is only used by the pinned mode, so giving one selects it.
    let trust = args
        .tls_trust
        .or(args.pin.as_ref().map(|_| TlsTrustArg::Pinned));
    if let Some(trust) = trust {
        target.set_tls_trust(TlsTrust::from(trust));
    }
    if let Some(auth) = args.auth {
        target.set_auth(VmsAuth::from(auth));
    }
    target
}

/// Applies the flags that were given to `current` (as read from the server)
/// and returns the update, which the server refuses if the target changed
/// since it was read.
pub fn update_request(
    mut current: VmsTarget,
    args: &VmsUpdateArgs,
    password: Option<String>,
) -> UpdateVmsTargetRequest {
    let expected_revision = current.revision;
    let target = &mut current;
    if let Some(host) = &args.host {
        target.host = host.clone();
    }
    if let Some(port) = args.port {
        target.port = Some(port);
    }
    if args.ssl {
        target.use_ssl = true;
    }
    if args.no_ssl {
        target.use_ssl = false;
    }
    if let Some(login) = &args.login {
        target.login = login.clone();
    }
    if let Some(events) = args.events {
        target.set_events(EventSelection::from(events));
    }
    if let Some(auth) = args.auth {
        target.set_auth(VmsAuth::from(auth));
    }
    if args.prolonged {
        target.prolonged = true;
    }
    if args.no_prolonged {
        target.prolonged = false;
    }
    if args.enabled {
        target.enabled = Some(true);
    }
    if args.disabled {
        target.enabled = Some(false);
    }
    if let Some(vms_type) = args.vms_type {
        target.set_type(VmsType::from(vms_type));
    }
    match (args.tls_trust, &args.pin) {
        (Some(trust), Some(pin)) => {
            target.set_tls_trust(TlsTrust::from(trust));
            target.pinned_cert_sha256 = pin.clone();
        }
        (None, Some(pin)) => {
            target.set_tls_trust(TlsTrust::Pinned);
            target.pinned_cert_sha256 = pin.clone();
        }
        (Some(trust), None) => {
            target.set_tls_trust(TlsTrust::from(trust));
            // The stored pin means nothing to the other modes, and the
            // service refuses a pin without the pinned mode.
            if trust != TlsTrustArg::Pinned {
                target.pinned_cert_sha256.clear();
            }
        }
        (None, None) => {}
    }
    // Empty keeps the stored password.
    target.password = password.unwrap_or_default();
    UpdateVmsTargetRequest {
        target: Some(current),
        expected_revision: Some(expected_revision),
    }
}

pub async fn run(
    command: VmsCommand,
    ctx: &mut Context,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match command {
        VmsCommand::Add(args) => {
            // Read the password before any call, so a missing one fails fast.
            let password = secret::vms_password_for_add(
                args.password_stdin,
                std::io::stdin().lock(),
                secret::env_var(VMS_PASSWORD_ENV),
            )?;
            let request = CreateVmsTargetRequest {
                target: Some(new_target(&args, password)),
            };
            let created = ctx
                .client
                .create_vms_target(request)
                .await
                .map_err(|status| {
                    ctx.failed(
                        format!("creating VMS target {:?}", args.name),
                        Noun::VmsTarget,
                        &status,
                    )
                })?
                .into_inner();
            print_target(ctx, out, &created)?;
        }
        VmsCommand::List => {
            let targets = ctx
                .client
                .list_vms_targets(ListVmsTargetsRequest {})
                .await
                .map_err(|status| {
                    ctx.failed("listing VMS targets".into(), Noun::VmsTarget, &status)
                })?
                .into_inner()
                .targets;
            print_list(
                out,
                ctx.output,
                &targets,
                table::vms_targets_table,
                json::vms_target,
            )?;
        }
        VmsCommand::Show { name } => {
            let target = get(ctx, &name).await?;
            print_target(ctx, out, &target)?;
        }
        VmsCommand::Update(args) => {
            let password = secret::vms_password_for_update(
                args.password_stdin,
                args.password_from_env,
                std::io::stdin().lock(),
                secret::env_var(VMS_PASSWORD_ENV),
            )?;
            let current = get(ctx, &args.name).await?;
            let updated = ctx
                .client
                .update_vms_target(update_request(current, &args, password))
                .await
                .map_err(|status| {
                    ctx.failed(
                        format!("updating VMS target {:?}", args.name),
                        Noun::VmsTarget,
                        &status,
                    )
                })?
                .into_inner();
            print_target(ctx, out, &updated)?;
        }
        VmsCommand::Rm { name } => {
            ctx.client
                .delete_vms_target(DeleteVmsTargetRequest {
                    name: name.clone(),
                    expected_revision: None,
                })
                .await
                .map_err(|status| {
                    ctx.failed(
                        format!("removing VMS target {name:?}"),
                        Noun::VmsTarget,
                        &status,
                    )
                })?;
            print_removed(out, ctx.output, "VMS target", &name)?;
        }
    }
    Ok(())
}

async fn get(ctx: &mut Context, name: &str) -> anyhow::Result<VmsTarget> {
    ctx.client
        .get_vms_target(GetVmsTargetRequest {
            name: name.to_string(),
        })
        .await
        .map(tonic::Response::into_inner)
        .map_err(|status| {
            ctx.failed(
                format!("reading VMS target {name:?}"),
                Noun::VmsTarget,
                &status,
            )
        })
}

fn print_target(ctx: &Context, out: &mut dyn Write, target: &VmsTarget) -> std::io::Result<()> {
    print_record(
        out,
        ctx.output,
        || table::vms_target_fields(target),
        || json::vms_target(target),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{AuthArg, Cli, Command, EventsArg};
    use clap::Parser;

    fn add_args(args: &[&str]) -> VmsAddArgs {
        let cli = Cli::try_parse_from(["anprctl", "vms", "add"].iter().chain(args))
            .expect("valid command line");
        match cli.command {
            Command::Vms(VmsCommand::Add(args)) => args,
            other => panic!("not vms add: {other:?}"),
        }
    }

    fn update_args(args: &[&str]) -> VmsUpdateArgs {
        let cli = Cli::try_parse_from(["anprctl", "vms", "update", "nx1"].iter().chain(args))
            .expect("valid command line");
        match cli.command {
            Command::Vms(VmsCommand::Update(args)) => args,
            other => panic!("not vms update: {other:?}"),
        }
    }

    fn stored() -> VmsTarget {
        let mut target = VmsTarget {
            name: "nx1".into(),
            host: "10.0.0.5".into(),
            port: Some(7001),
            use_ssl: true,
            pinned_cert_sha256: "ab".repeat(32),
            login: "admin".into(),
            password_set: true,
            enabled: Some(true),
            revision: 17,
            ..Default::default()
        };
        target.set_type(VmsType::NxGenericEvent);
        target.set_tls_trust(TlsTrust::Pinned);
        target.set_events(EventSelection::Detect);
        target.set_auth(VmsAuth::Digest);
        target
    }

    #[test]
    fn add_maps_flags_and_leaves_the_rest_to_the_server() {
        let target = new_target(
            &add_args(&["nx1", "--host", "10.0.0.5", "--login", "admin"]),
            "pw".into(),
        );
        assert_eq!(target.name, "nx1");
        assert_eq!(target.host, "10.0.0.5");
        assert_eq!(target.port, Some(7001));
        assert_eq!(target.r#type(), VmsType::NxGenericEvent);
        assert_eq!(target.events(), EventSelection::Detect);
        assert_eq!(target.tls_trust(), TlsTrust::Unspecified);
        assert_eq!(target.auth(), VmsAuth::Unspecified);
        assert_eq!(target.password, "pw");
        assert_eq!(target.enabled, Some(true));
        assert!(!target.use_ssl && !target.prolonged);

        let target = new_target(
            &add_args(&[
                "nx2",
                "--host",
                "nx.example.com",
                "--port",
                "7443",
                "--ssl",
                "--pin",
                "AB:CD",
                "--events",
                "lost",
                "--auth",
                "bearer",
                "--prolonged",
                "--disabled",
                "--login",
                "op",
            ]),
            "pw".into(),
        );
        assert_eq!(target.port, Some(7443));
        assert!(target.use_ssl && target.prolonged);
        assert_eq!(target.tls_trust(), TlsTrust::Pinned, "a pin selects pinned");
        assert_eq!(target.pinned_cert_sha256, "AB:CD");
        assert_eq!(target.events(), EventSelection::Lost);
        assert_eq!(target.auth(), VmsAuth::Bearer);
        assert_eq!(target.enabled, Some(false));
    }

    #[test]
    fn update_changes_only_the_given_fields_and_carries_the_revision() {
        let request = update_request(stored(), &update_args(&["--events", "both"]), None);
        assert_eq!(request.expected_revision, Some(17));
        let mut expected = stored();
        expected.set_events(EventSelection::from(EventsArg::Both));
        assert_eq!(request.target, Some(expected));

        let request = update_request(
            stored(),
            &update_args(&["--port", "7443", "--auth", "basic", "--disabled"]),
            Some("new-pw".into()),
        );
        let target = request.target.expect("target");
        assert_eq!(target.port, Some(7443));
        assert_eq!(target.auth(), VmsAuth::from(AuthArg::Basic));
        assert_eq!(target.enabled, Some(false));
        assert_eq!(target.password, "new-pw");
        assert_eq!(target.host, "10.0.0.5");
        assert_eq!(target.login, "admin");
        assert_eq!(target.events(), EventSelection::Detect);
    }

    #[test]
    fn leaving_pinned_mode_drops_the_pin() {
        let target = update_request(stored(), &update_args(&["--tls-trust", "insecure"]), None)
            .target
            .expect("target");
        assert_eq!(target.tls_trust(), TlsTrust::Insecure);
        assert_eq!(target.pinned_cert_sha256, "");

        let mut plain = stored();
        plain.set_tls_trust(TlsTrust::Verify);
        plain.pinned_cert_sha256.clear();
        let target = update_request(plain, &update_args(&["--pin", "cd:ef"]), None)
            .target
            .expect("target");
        assert_eq!(target.tls_trust(), TlsTrust::Pinned);
        assert_eq!(target.pinned_cert_sha256, "cd:ef");
    }

    #[test]
    fn update_without_a_password_flag_keeps_the_stored_one() {
        let mut read = stored();
        // Responses never carry a password; even if one did, it must not be
        // sent back as a change.
        read.password = "leaked".into();
        let target = update_request(read, &update_args(&["--no-ssl"]), None)
            .target
            .expect("target");
        assert_eq!(target.password, "");
        assert!(!target.use_ssl);
    }
}
