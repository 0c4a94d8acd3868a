//! `anprctl analytic ...`: the analytic's global defaults and per-camera
//! overrides.

use std::io::Write;

use anpr_common::proto::{
    AnalyticSettings, AnalyticSettingsView, GetAnalyticSettingsRequest,
    ListAnalyticOverridesRequest, PlateFormats, ResetAnalyticSettingsRequest,
    SetAnalyticSettingsRequest,
};

use crate::cli::{AnalyticCommand, AnalyticSetArgs};
use crate::error::Noun;
use crate::{json, print_list, print_record, table, Context};

/// The request `analytic set` sends: only the given settings, which the
/// service merges into what is stored.
pub fn set_request(args: &AnalyticSetArgs) -> SetAnalyticSettingsRequest {
    let plate_formats = if args.no_plate_formats {
        // Set and empty: replaces the stored list with none, unlike unset.
        Some(PlateFormats::default())
    } else if args.plate_formats.is_empty() {
        None
    } else {
        Some(PlateFormats {
            patterns: args.plate_formats.clone(),
        })
    };
    SetAnalyticSettingsRequest {
        camera_id: args.camera.clone().unwrap_or_default(),
        settings: Some(AnalyticSettings {
            skip_first_reads: args.skip_first,
            min_confidence: args.min_confidence,
            lost_timeout_ms: args.lost_timeout_ms,
            grouping_distance: args.grouping_distance,
            plate_formats,
        }),
        expected_revision: None,
    }
}

/// `the defaults` or `camera "gate-1"`'s settings, for error messages.
fn scope(camera_id: &str) -> String {
    if camera_id.is_empty() {
        "the analytic defaults".to_string()
    } else {
        format!("the analytic settings of camera {camera_id:?}")
    }
}

pub async fn run(
    command: AnalyticCommand,
    ctx: &mut Context,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match command {
        AnalyticCommand::Show { camera } => {
            let camera_id = camera.unwrap_or_default();
            let view = ctx
                .client
                .get_analytic_settings(GetAnalyticSettingsRequest {
                    camera_id: camera_id.clone(),
                })
                .await
                .map_err(|status| {
                    ctx.failed(
                        format!("reading {}", scope(&camera_id)),
                        Noun::AnalyticSettings,
                        &status,
                    )
                })?
                .into_inner();
            print_view(ctx, out, &view)?;
        }
        AnalyticCommand::Set(args) => {
            let request = set_request(&args);
            let camera_id = request.camera_id.clone();
            let view = ctx
                .client
                .set_analytic_settings(request)
                .await
                .map_err(|status| {
                    ctx.failed(
                        format!("setting {}", scope(&camera_id)),
                        Noun::AnalyticSettings,
                        &status,
                    )
                })?
                .into_inner();
            print_view(ctx, out, &view)?;
        }
        AnalyticCommand::Reset { camera } => {
            let camera_id = camera.unwrap_or_default();
            let view = ctx
                .client
                .reset_analytic_settings(ResetAnalyticSettingsRequest {
                    camera_id: camera_id.clone(),
                    expected_revision: None,
                })
                .await
                .map_err(|status| {
                    ctx.failed(
                        format!("resetting {}", scope(&camera_id)),
                        Noun::AnalyticSettings,
                        &status,
                    )
                })?
                .into_inner();
            print_view(ctx, out, &view)?;
        }
        AnalyticCommand::List => {
            let overrides = ctx
                .client
                .list_analytic_overrides(ListAnalyticOverridesRequest {})
                .await
                .map_err(|status| {
                    ctx.failed(
                        "listing analytic overrides".into(),
                        Noun::AnalyticSettings,
                        &status,
                    )
                })?
                .into_inner()
                .overrides;
            print_list(
                out,
                ctx.output,
                &overrides,
                table::analytic_overrides_table,
                json::analytic_override,
            )?;
        }
    }
    Ok(())
}

fn print_view(
    ctx: &Context,
    out: &mut dyn Write,
    view: &AnalyticSettingsView,
) -> std::io::Result<()> {
    print_record(
        out,
        ctx.output,
        || table::analytic_view_table(view),
        || json::analytic_view(view),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn set_args(args: &[&str]) -> AnalyticSetArgs {
        let cli = Cli::try_parse_from(["anprctl", "analytic", "set"].iter().chain(args))
            .expect("valid command line");
        match cli.command {
            Command::Analytic(AnalyticCommand::Set(args)) => args,
            other => panic!("not analytic set: {other:?}"),
        }
    }

    #[test]
    fn set_sends_only_the_given_settings() {
        let request = set_request(&set_args(&["--skip-first", "3"]));
        assert_eq!(request.camera_id, "");
        assert_eq!(
            request.settings,
            Some(AnalyticSettings {
                skip_first_reads: Some(3),
                ..Default::default()
            })
        );

        let request = set_request(&set_args(&[
            "--camera",
            "gate-1",
            "--min-confidence",
            "0.8",
            "--lost-timeout-ms",
            "7000",
            "--grouping-distance",
            "1",
            "--plate-format",
            "^A",
            "--plate-format",
            "^B",
        ]));
        assert_eq!(request.camera_id, "gate-1");
        assert_eq!(
            request.settings,
            Some(AnalyticSettings {
                skip_first_reads: None,
                min_confidence: Some(0.8),
                lost_timeout_ms: Some(7000),
                grouping_distance: Some(1),
                plate_formats: Some(PlateFormats {
                    patterns: vec!["^A".into(), "^B".into()],
                }),
            })
        );
    }

    #[test]
    fn no_plate_formats_sends_an_empty_list_not_an_unset_one() {
        let request = set_request(&set_args(&["--no-plate-formats"]));
        let settings = request.settings.expect("settings");
        assert_eq!(settings.plate_formats, Some(PlateFormats::default()));
        assert_eq!(settings.skip_first_reads, None);
    }
}
