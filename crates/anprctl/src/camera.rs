//! `anprctl camera ...`: the cameras whose streams are read.

use std::io::Write;

use anpr_common::proto::{
    Camera, CreateCameraRequest, DeleteCameraRequest, GetCameraRequest, ListCamerasRequest,
    UpdateCameraRequest,
};

use crate::cli::{CameraAddArgs, CameraCommand, CameraUpdateArgs};
use crate::error::Noun;
use crate::{json, print_list, print_record, print_removed, secret, table, Context};

/// The camera `camera add` creates; settings not given stay unset so the
/// config service's defaults apply (name = id, IP from the URL, 10 fps).
pub fn new_camera(args: &CameraAddArgs, rtsp_password: Option<String>) -> Camera {
    Camera {
        id: args.id.clone(),
        name: args.name.clone().unwrap_or_default(),
        rtsp_url: args.url.clone(),
        rtsp_username: args.rtsp_user.clone().unwrap_or_default(),
        rtsp_password: rtsp_password.unwrap_or_default(),
        ip_address: args.ip.clone().unwrap_or_default(),
        vms_camera_id: args.vms_camera_id.clone().unwrap_or_default(),
        encoder_channel: args.channel,
        sample_fps: args.fps,
        enabled: Some(!args.disabled),
        mask_regions: args.masks.clone(),
        ..Default::default()
    }
}

/// The host of a URL (`scheme://[user[:pass]@]host[:port]/...`), without
/// brackets for IPv6; `None` when there is no authority.
pub fn url_host(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let host = match host_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or(bracketed),
        None => host_port.split(':').next().unwrap_or(host_port),
    };
    (!host.is_empty()).then_some(host)
}

/// Whether a URL carries `user[:password]@` before its host.
fn has_user_info(url: &str) -> bool {
    url.split_once("://")
        .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(rest))
        .is_some_and(|authority| authority.contains('@'))
}

/// Applies the flags that were given to `current` (as read from the server)
/// and returns the update, refused by the server if the camera changed since.
pub fn update_request(
    mut current: Camera,
    args: &CameraUpdateArgs,
    rtsp_password: Option<String>,
) -> UpdateCameraRequest {
    let expected_revision = current.revision;
    let camera = &mut current;
    if let Some(url) = &args.url {
        // The stored IP was taken from the old URL unless it was given
        // explicitly; when it was taken, let the service take it again from
        // the new URL instead of keeping a stale one.
        if args.ip.is_none()
            && url_host(&camera.rtsp_url).is_some_and(|host| host == camera.ip_address)
        {
            camera.ip_address.clear();
        }
        // User info in the new URL is moved to rtsp_username by the service,
        // which refuses it when it differs from a stored name.
        if args.rtsp_user.is_none() && has_user_info(url) {
            camera.rtsp_username.clear();
        }
        camera.rtsp_url = url.clone();
    }
    if let Some(name) = &args.name {
        camera.name = name.clone();
    }
    if let Some(ip) = &args.ip {
        camera.ip_address = ip.clone();
    }
    if let Some(id) = &args.vms_camera_id {
        camera.vms_camera_id = id.clone();
    }
    if args.no_vms_camera_id {
        camera.vms_camera_id.clear();
    }
    if let Some(channel) = args.channel {
        camera.encoder_channel = Some(channel);
    }
    if args.no_channel {
        camera.encoder_channel = None;
    }
    if let Some(fps) = args.fps {
        camera.sample_fps = Some(fps);
    }
    if let Some(user) = &args.rtsp_user {
        camera.rtsp_username = user.clone();
    }
    if !args.masks.is_empty() {
        camera.mask_regions = args.masks.clone();
    }
    if args.no_masks {
        camera.mask_regions.clear();
    }
    // Output only; the service ignores it, so leave it out of the request.
    camera.status = None;
    if args.enabled {
        camera.enabled = Some(true);
    }
    if args.disabled {
        camera.enabled = Some(false);
    }
    // Empty keeps the stored password.
    camera.rtsp_password = rtsp_password.unwrap_or_default();
    UpdateCameraRequest {
        camera: Some(current),
        expected_revision: Some(expected_revision),
    }
}

pub async fn run(
    command: CameraCommand,
    ctx: &mut Context,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match command {
        CameraCommand::Add(args) => {
            let password = rtsp_password(args.rtsp_password_stdin)?;
            let created = ctx
                .client
                .create_camera(CreateCameraRequest {
                    camera: Some(new_camera(&args, password)),
                })
                .await
                .map_err(|status| {
                    ctx.failed(
                        format!("creating camera {:?}", args.id),
                        Noun::Camera,
                        &status,
                    )
                })?
                .into_inner();
            print_camera(ctx, out, &created)?;
        }
        CameraCommand::List => {
            let cameras = ctx
                .client
                .list_cameras(ListCamerasRequest {})
                .await
                .map_err(|status| ctx.failed("listing cameras".into(), Noun::Camera, &status))?
                .into_inner()
                .cameras;
            print_list(
                out,
                ctx.output,
                &cameras,
                table::cameras_table,
                json::camera,
            )?;
        }
        CameraCommand::Show { id } => {
            let camera = get(ctx, &id).await?;
            print_camera(ctx, out, &camera)?;
        }
        CameraCommand::Update(args) => {
            let password = rtsp_password(args.rtsp_password_stdin)?;
            let current = get(ctx, &args.id).await?;
            let updated = ctx
                .client
                .update_camera(update_request(current, &args, password))
                .await
                .map_err(|status| {
                    ctx.failed(
                        format!("updating camera {:?}", args.id),
                        Noun::Camera,
                        &status,
                    )
                })?
                .into_inner();
            print_camera(ctx, out, &updated)?;
        }
        CameraCommand::Rm { id } => {
            ctx.client
                .delete_camera(DeleteCameraRequest {
                    id: id.clone(),
                    expected_revision: None,
                })
                .await
                .map_err(|status| {
                    ctx.failed(format!("removing camera {id:?}"), Noun::Camera, &status)
                })?;
            print_removed(out, ctx.output, "camera", &id)?;
        }
    }
    Ok(())
}

/// The RTSP password from stdin when asked for; cameras without RTSP auth
/// exist, so none is needed otherwise.
fn rtsp_password(from_stdin: bool) -> anyhow::Result<Option<String>> {
    if from_stdin {
        secret::read_line(std::io::stdin().lock(), "RTSP password").map(Some)
    } else {
        Ok(None)
    }
}

async fn get(ctx: &mut Context, id: &str) -> anyhow::Result<Camera> {
    ctx.client
        .get_camera(GetCameraRequest { id: id.to_string() })
        .await
        .map(tonic::Response::into_inner)
        .map_err(|status| ctx.failed(format!("reading camera {id:?}"), Noun::Camera, &status))
}

fn print_camera(ctx: &Context, out: &mut dyn Write, camera: &Camera) -> std::io::Result<()> {
    print_record(
        out,
        ctx.output,
        || table::camera_fields(camera),
        || json::camera(camera),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use anpr_common::proto::MaskRegion;
    use clap::Parser;

    fn update_args(args: &[&str]) -> CameraUpdateArgs {
        let cli = Cli::try_parse_from(["anprctl", "camera", "update", "gate-1"].iter().chain(args))
            .expect("valid command line");
        match cli.command {
            Command::Camera(CameraCommand::Update(args)) => args,
            other => panic!("not camera update: {other:?}"),
        }
    }

    fn stored() -> Camera {
        Camera {
            id: "gate-1".into(),
            name: "Gate 1".into(),
            rtsp_url: "rtsp://10.1.2.3:554/stream".into(),
            rtsp_username: "viewer".into(),
            rtsp_password_set: true,
            ip_address: "10.1.2.3".into(),
            vms_camera_id: "3f2a".into(),
            encoder_channel: Some(1),
            sample_fps: Some(10.0),
            enabled: Some(true),
            revision: 5,
            ..Default::default()
        }
    }

    #[test]
    fn hosts_are_found_in_urls() {
        assert_eq!(url_host("rtsp://10.1.2.3/stream"), Some("10.1.2.3"));
        assert_eq!(url_host("rtsp://u:p@10.1.2.3:554/s?x=1"), Some("10.1.2.3"));
        assert_eq!(url_host("rtsps://cam.local"), Some("cam.local"));
        assert_eq!(url_host("rtsp://[fe80::2]:554/s"), Some("fe80::2"));
        assert_eq!(url_host("file:///data/clip.ts"), None);
        assert_eq!(url_host("not a url"), None);
        assert!(has_user_info("rtsp://u:p@h/s"));
        assert!(!has_user_info("rtsp://h/s@x"));
    }

    #[test]
    fn update_changes_only_the_given_fields_and_carries_the_revision() {
        let request = update_request(stored(), &update_args(&["--fps", "5", "--disabled"]), None);
        assert_eq!(request.expected_revision, Some(5));
        let expected = Camera {
            sample_fps: Some(5.0),
            enabled: Some(false),
            ..stored()
        };
        assert_eq!(request.camera, Some(expected));

        let camera = update_request(
            stored(),
            &update_args(&["--no-vms-camera-id", "--no-channel", "--name", "North"]),
            Some("new".into()),
        )
        .camera
        .expect("camera");
        assert_eq!(camera.vms_camera_id, "");
        assert_eq!(camera.encoder_channel, None);
        assert_eq!(camera.name, "North");
        assert_eq!(camera.rtsp_password, "new");
        assert_eq!(camera.ip_address, "10.1.2.3");
    }

    #[test]
    fn masks_are_replaced_or_cleared_and_kept_otherwise() {
        let masked = Camera {
            mask_regions: vec![MaskRegion {
                x: 0.0,
                y: 0.9,
                width: 0.5,
                height: 0.1,
            }],
            ..stored()
        };
        let kept = update_request(masked.clone(), &update_args(&["--fps", "5"]), None)
            .camera
            .expect("camera");
        assert_eq!(kept.mask_regions, masked.mask_regions);

        let replaced = update_request(
            masked.clone(),
            &update_args(&["--mask", "0.7,0,0.3,0.1", "--mask", "0, 0.5, 0.25, 0.25"]),
            None,
        )
        .camera
        .expect("camera");
        assert_eq!(
            replaced.mask_regions,
            vec![
                MaskRegion {
                    x: 0.7,
                    y: 0.0,
                    width: 0.3,
                    height: 0.1
                },
                MaskRegion {
                    x: 0.0,
                    y: 0.5,
                    width: 0.25,
                    height: 0.25
                },
            ]
        );

        let cleared = update_request(masked, &update_args(&["--no-masks"]), None)
            .camera
            .expect("camera");
        assert!(cleared.mask_regions.is_empty());
    }

    #[test]
    fn mask_flags_need_four_numbers() {
        let parse = |mask: &str| {
            Cli::try_parse_from(["anprctl", "camera", "update", "gate-1", "--mask", mask])
                .map(|_| ())
                .map_err(|err| err.to_string())
        };
        assert!(parse("0,0.9,0.5,0.1").is_ok());
        let three = parse("0,0.9,0.5").expect_err("three numbers");
        assert!(three.contains("X,Y,WIDTH,HEIGHT"), "{three}");
        let word = parse("0,0.9,half,0.1").expect_err("a word");
        assert!(word.contains("\"half\" is not a number"), "{word}");
        assert!(Cli::try_parse_from([
            "anprctl",
            "camera",
            "update",
            "gate-1",
            "--mask",
            "0,0,1,1",
            "--no-masks"
        ])
        .is_err());
    }

    #[test]
    fn a_new_url_replaces_an_ip_that_came_from_the_old_one() {
        let camera = update_request(
            stored(),
            &update_args(&["--url", "rtsp://10.1.2.99/stream"]),
            None,
        )
        .camera
        .expect("camera");
        assert_eq!(camera.rtsp_url, "rtsp://10.1.2.99/stream");
        assert_eq!(camera.ip_address, "", "left for the service to derive");
        assert_eq!(camera.rtsp_username, "viewer");

        // An IP given apart from the URL was chosen on purpose: it stays.
        let explicit = Camera {
            ip_address: "192.168.0.7".into(),
            ..stored()
        };
        let camera = update_request(
            explicit,
            &update_args(&["--url", "rtsp://admin:pw@10.1.2.99/stream"]),
            None,
        )
        .camera
        .expect("camera");
        assert_eq!(camera.ip_address, "192.168.0.7");
        assert_eq!(camera.rtsp_username, "", "taken from the new URL");
    }
}
