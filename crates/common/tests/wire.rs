//! The wire types survive a protobuf round trip, every message of
//! `proto/anpr/v1` is covered with every field set, and the compatibility
//! rules of the proto files (unknown fields are ignored) hold.

use std::collections::{BTreeMap, BTreeSet};

use anpr_common::proto::{
    config_item, watch_response, AnalyticOverride, AnalyticSettings, AnalyticSettingsView,
    BoundingBox, Camera, CameraStatus, ConfigItem, ConfigKey, ConfigKind, CreateCameraRequest,
    CreateVmsTargetRequest, DeadLetter, DeleteCameraRequest, DeleteResponse,
    DeleteVmsTargetRequest, EventSelection, Frame, FrameReads, FrameRef,
    GetAnalyticSettingsRequest, GetCameraRequest, GetVmsTargetRequest,
    ListAnalyticOverridesRequest, ListAnalyticOverridesResponse, ListCamerasRequest,
    ListCamerasResponse, ListVmsTargetsRequest, ListVmsTargetsResponse, MaskRegion, PlateCandidate,
    PlateEvent, PlateEventKind, PlateFormats, PlateRead, ResetAnalyticSettingsRequest,
    SetAnalyticSettingsRequest, Snapshot, StoredSecret, TlsTrust, UpdateCameraRequest,
    UpdateVmsTargetRequest, VmsAuth, VmsTarget, VmsTargetStatus, VmsType, WatchRequest,
    WatchResponse,
};
use prost::Message;
use prost_types::Timestamp;

const PIPELINE_PROTO: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../proto/anpr/v1/pipeline.proto"
));
const CONFIG_PROTO: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../proto/anpr/v1/config.proto"
));

/// One round-tripped value: the message name and its encoding.
struct Encoded {
    name: &'static str,
    bytes: Vec<u8>,
}

/// Encodes `$value` as `$ty`, decodes it back, compares, and records the
/// encoding under the message name in `$out`. The `empty` form is for the
/// messages that have no fields at all.
macro_rules! roundtrip {
    ($out:ident, $ty:ident, $value:expr) => {{
        let value: $ty = $value;
        assert_ne!(
            value,
            $ty::default(),
            concat!(stringify!($ty), ": the test value is all defaults")
        );
        let bytes = value.encode_to_vec();
        assert!(
            !bytes.is_empty(),
            concat!(stringify!($ty), " encoded to nothing")
        );
        assert_eq!(bytes.len(), value.encoded_len());
        let decoded = $ty::decode(bytes.as_slice()).expect(concat!("decoding ", stringify!($ty)));
        assert_eq!(
            decoded, value,
            concat!(stringify!($ty), " changed in a round trip")
        );
        $out.push(Encoded {
            name: stringify!($ty),
            bytes,
        });
    }};
    ($out:ident, empty $ty:ident) => {{
        let value = $ty {};
        let bytes = value.encode_to_vec();
        assert!(
            bytes.is_empty(),
            concat!(stringify!($ty), " has no fields but encoded to bytes")
        );
        let decoded = $ty::decode(bytes.as_slice()).expect(concat!("decoding ", stringify!($ty)));
        assert_eq!(decoded, value);
        $out.push(Encoded {
            name: stringify!($ty),
            bytes,
        });
    }};
}

fn timestamp(seconds: i64, nanos: i32) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos })
}

fn bbox(seed: f32) -> BoundingBox {
    BoundingBox {
        x: 10.5 + seed,
        y: 20.25 + seed,
        width: 120.0 + seed,
        height: 30.75 + seed,
    }
}

fn frame_ref() -> FrameRef {
    FrameRef {
        camera_id: "gate-1".into(),
        sequence: 4711,
    }
}

fn plate_read(text: &str) -> PlateRead {
    PlateRead {
        camera_id: "gate-1".into(),
        frame: Some(frame_ref()),
        capture_time: timestamp(1_767_225_600, 125_000_000),
        text: text.into(),
        char_confidences: vec![0.91; text.len()],
        confidence: 0.87,
        bbox: Some(bbox(1.0)),
        crop_jpeg: Some(vec![0xFF, 0xD8, 0xFF, 0xE0, 0x01, 0x02, 0xFF, 0xD9]),
        raw_text: format!("{text}."),
    }
}

fn plate_event() -> PlateEvent {
    PlateEvent {
        event_id: "0194f3c2-7a10-7c3e-9b1a-2f6d8e4c5a01".into(),
        kind: PlateEventKind::Lost as i32,
        track_id: "0194f3c2-79f0-7d11-8c2b-5e9a0f1d3b77".into(),
        camera_id: "gate-1".into(),
        camera_ip: "192.0.2.17".into(),
        plate_text: "AB123CD".into(),
        raw_text: "AB 123 CD".into(),
        confidence: 0.93,
        candidates: vec![
            PlateCandidate {
                text: "AB123C0".into(),
                confidence: 0.41,
            },
            PlateCandidate {
                text: "A8123CD".into(),
                confidence: 0.22,
            },
        ],
        first_seen: timestamp(1_767_225_600, 1),
        last_seen: timestamp(1_767_225_604, 500_000_000),
        read_count: 17,
        best_crop_jpeg: Some(vec![0xFF, 0xD8, 0x10, 0x20, 0x30, 0xFF, 0xD9]),
        best_bbox: Some(bbox(2.0)),
        event_time: timestamp(1_767_225_602, 250_000_000),
    }
}

fn vms_target(name: &str) -> VmsTarget {
    VmsTarget {
        name: name.into(),
        r#type: VmsType::NxGenericEvent as i32,
        host: "vms.example.net".into(),
        port: Some(7443),
        use_ssl: true,
        tls_trust: TlsTrust::Pinned as i32,
        pinned_cert_sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
            .into(),
        login: "anpr".into(),
        password: "s3cret".into(),
        password_set: true,
        events: EventSelection::Both as i32,
        enabled: Some(true),
        auth: VmsAuth::Digest as i32,
        prolonged: true,
        revision: 12,
        status: Some(vms_target_status()),
    }
}

fn vms_target_status() -> VmsTargetStatus {
    VmsTargetStatus {
        last_success: timestamp(1_767_225_600, 7),
        last_error_at: timestamp(1_767_225_660, 5),
        last_error: "VMS answered 503 Service Unavailable".into(),
        queue_depth: 42,
        delivered: 1_000,
        dead_lettered: 3,
        server: "6.1.0.41321 / rest v4".into(),
        camera_problems: vec!["gate-2: no VMS camera has IP 192.0.2.18".into()],
        updated_at: timestamp(1_767_225_661, 11),
    }
}

fn camera(id: &str) -> Camera {
    Camera {
        id: id.into(),
        name: "Gate 1 (north)".into(),
        rtsp_url: "rtsp://192.0.2.17:554/stream1".into(),
        rtsp_username: "viewer".into(),
        rtsp_password: "pw".into(),
        rtsp_password_set: true,
        ip_address: "192.0.2.17".into(),
        vms_camera_id: "{7c3e9b1a-2f6d-4e4c-8a01-0194f3c27a10}".into(),
        encoder_channel: Some(2),
        sample_fps: Some(12.5),
        enabled: Some(true),
        revision: 7,
        mask_regions: vec![MaskRegion {
            x: 0.05,
            y: 0.9,
            width: 0.4,
            height: 0.1,
        }],
        status: Some(camera_status()),
    }
}

fn camera_status() -> CameraStatus {
    CameraStatus {
        connected: true,
        decoded_fps: 25.0,
        published_fps: 10.0,
        dropped_frames: 4,
        reconnects: 2,
        last_error: "RTSP DESCRIBE: connection refused".into(),
        last_error_at: timestamp(1_767_225_600, 3),
        last_frame_at: timestamp(1_767_225_601, 4),
        stream: "h264 1280x720".into(),
        ingest_instance: "ingest-0".into(),
        updated_at: timestamp(1_767_225_602, 5),
    }
}

fn analytic_settings(seed: u32) -> AnalyticSettings {
    AnalyticSettings {
        skip_first_reads: Some(seed),
        min_confidence: Some(0.75),
        lost_timeout_ms: Some(4000 + seed),
        grouping_distance: Some(1 + seed % 4),
        plate_formats: Some(PlateFormats {
            patterns: vec![
                "^[A-Z]{2}[0-9]{3}[A-Z]{2}$".into(),
                "^[0-9]{4}[A-Z]{3}$".into(),
            ],
        }),
    }
}

fn analytic_override(camera_id: &str) -> AnalyticOverride {
    AnalyticOverride {
        camera_id: camera_id.into(),
        settings: Some(analytic_settings(3)),
        revision: 5,
    }
}

fn config_items() -> Vec<ConfigItem> {
    vec![
        ConfigItem {
            item: Some(config_item::Item::VmsTarget(vms_target("nx1"))),
        },
        ConfigItem {
            item: Some(config_item::Item::Camera(camera("gate-1"))),
        },
        ConfigItem {
            item: Some(config_item::Item::Analytic(analytic_override("gate-1"))),
        },
    ]
}

/// Round-trips one value of every message (one per oneof arm) and returns
/// their encodings. The names pushed here are compared with the proto files.
fn round_trip_all() -> Vec<Encoded> {
    let mut out = Vec::new();

    // pipeline.proto
    roundtrip!(
        out,
        Frame,
        Frame {
            camera_id: "gate-1".into(),
            sequence: 4711,
            capture_time: timestamp(1_767_225_600, 125_000_000),
            width: 1920,
            height: 1080,
            jpeg: vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 0xFF, 0xD9],
            camera_ip: "192.0.2.17".into(),
        }
    );
    roundtrip!(out, BoundingBox, bbox(0.5));
    roundtrip!(out, FrameRef, frame_ref());
    roundtrip!(out, PlateRead, plate_read("AB123CD"));
    roundtrip!(
        out,
        FrameReads,
        FrameReads {
            frame: Some(frame_ref()),
            capture_time: timestamp(1_767_225_600, 125_000_000),
            camera_ip: "192.0.2.17".into(),
            width: 1920,
            height: 1080,
            reads: vec![plate_read("AB123CD"), plate_read("XY987ZT")],
        }
    );
    roundtrip!(
        out,
        PlateCandidate,
        PlateCandidate {
            text: "AB123C0".into(),
            confidence: 0.41,
        }
    );
    roundtrip!(out, PlateEvent, plate_event());

    // config.proto: records
    roundtrip!(out, VmsTarget, vms_target("nx1"));
    roundtrip!(out, Camera, camera("gate-1"));
    roundtrip!(
        out,
        PlateFormats,
        PlateFormats {
            patterns: vec!["^[A-Z0-9]{5,8}$".into()],
        }
    );
    roundtrip!(out, AnalyticSettings, analytic_settings(2));
    roundtrip!(out, AnalyticOverride, analytic_override("gate-1"));
    roundtrip!(
        out,
        AnalyticSettingsView,
        AnalyticSettingsView {
            camera_id: "gate-1".into(),
            defaults: Some(analytic_settings(2)),
            r#override: Some(analytic_settings(4)),
            effective: Some(analytic_settings(4)),
            revision: 9,
        }
    );
    roundtrip!(
        out,
        StoredSecret,
        StoredSecret {
            password: "s3cret".into(),
        }
    );

    // config.proto: VMS target calls
    roundtrip!(
        out,
        CreateVmsTargetRequest,
        CreateVmsTargetRequest {
            target: Some(vms_target("nx1")),
        }
    );
    roundtrip!(
        out,
        GetVmsTargetRequest,
        GetVmsTargetRequest { name: "nx1".into() }
    );
    roundtrip!(out, empty ListVmsTargetsRequest);
    roundtrip!(
        out,
        ListVmsTargetsResponse,
        ListVmsTargetsResponse {
            targets: vec![vms_target("nx1"), vms_target("nx2")],
        }
    );
    roundtrip!(
        out,
        UpdateVmsTargetRequest,
        UpdateVmsTargetRequest {
            target: Some(vms_target("nx1")),
            expected_revision: Some(12),
        }
    );
    roundtrip!(
        out,
        DeleteVmsTargetRequest,
        DeleteVmsTargetRequest {
            name: "nx1".into(),
            expected_revision: Some(13),
        }
    );
    roundtrip!(out, empty DeleteResponse);

    // config.proto: camera calls
    roundtrip!(
        out,
        CreateCameraRequest,
        CreateCameraRequest {
            camera: Some(camera("gate-1")),
        }
    );
    roundtrip!(
        out,
        GetCameraRequest,
        GetCameraRequest {
            id: "gate-1".into()
        }
    );
    roundtrip!(out, empty ListCamerasRequest);
    roundtrip!(
        out,
        ListCamerasResponse,
        ListCamerasResponse {
            cameras: vec![camera("gate-1"), camera("gate-2")],
        }
    );
    roundtrip!(
        out,
        UpdateCameraRequest,
        UpdateCameraRequest {
            camera: Some(camera("gate-1")),
            expected_revision: Some(7),
        }
    );
    roundtrip!(
        out,
        DeleteCameraRequest,
        DeleteCameraRequest {
            id: "gate-1".into(),
            expected_revision: Some(8),
        }
    );

    // config.proto: analytic settings calls
    roundtrip!(
        out,
        GetAnalyticSettingsRequest,
        GetAnalyticSettingsRequest {
            camera_id: "gate-1".into(),
        }
    );
    roundtrip!(
        out,
        SetAnalyticSettingsRequest,
        SetAnalyticSettingsRequest {
            camera_id: "gate-1".into(),
            settings: Some(analytic_settings(1)),
            expected_revision: Some(5),
        }
    );
    roundtrip!(
        out,
        ResetAnalyticSettingsRequest,
        ResetAnalyticSettingsRequest {
            camera_id: "gate-1".into(),
            expected_revision: Some(6),
        }
    );
    roundtrip!(out, empty ListAnalyticOverridesRequest);
    roundtrip!(
        out,
        ListAnalyticOverridesResponse,
        ListAnalyticOverridesResponse {
            overrides: vec![analytic_override("gate-1"), analytic_override("gate-2")],
        }
    );

    // config.proto: watch
    roundtrip!(out, empty WatchRequest);
    for item in config_items() {
        roundtrip!(out, ConfigItem, item);
    }
    roundtrip!(
        out,
        ConfigKey,
        ConfigKey {
            kind: ConfigKind::Analytic as i32,
            id: "gate-1".into(),
            revision: 21,
        }
    );
    roundtrip!(
        out,
        Snapshot,
        Snapshot {
            items: config_items(),
        }
    );
    let changes = [
        watch_response::Change::Snapshot(Snapshot {
            items: config_items(),
        }),
        watch_response::Change::Upserted(ConfigItem {
            item: Some(config_item::Item::Camera(camera("gate-3"))),
        }),
        watch_response::Change::Deleted(ConfigKey {
            kind: ConfigKind::VmsTarget as i32,
            id: "nx2".into(),
            revision: 22,
        }),
    ];
    roundtrip!(out, VmsTargetStatus, vms_target_status());
    roundtrip!(out, CameraStatus, camera_status());
    roundtrip!(
        out,
        MaskRegion,
        MaskRegion {
            x: 0.25,
            y: 0.5,
            width: 0.5,
            height: 0.25,
        }
    );
    roundtrip!(
        out,
        DeadLetter,
        DeadLetter {
            target: "nx1".into(),
            event: Some(plate_event()),
            reason: "HTTP 200 error 2 invalidParameter: Invalid value for parameter 'state'".into(),
            http_status: 200,
            failed_at: timestamp(1_767_225_700, 9),
        }
    );
    for change in changes {
        roundtrip!(
            out,
            WatchResponse,
            WatchResponse {
                change: Some(change),
            }
        );
    }

    out
}

#[test]
fn every_message_round_trips() {
    let encoded = round_trip_all();
    assert!(!encoded.is_empty());
}

// ------------------------------------------------------------ proto schema scan

/// A field as declared in a .proto file.
#[derive(Debug)]
struct FieldDecl {
    name: String,
    number: u32,
    type_name: String,
    /// The oneof the field belongs to, if any.
    oneof: Option<String>,
}

/// Message name -> its fields, from the proto files (plus the one well-known
/// type they import).
type Schema = BTreeMap<String, Vec<FieldDecl>>;

/// Splits proto source into tokens, without comments and with `{ } ; = [ ]`
/// as tokens of their own.
fn tokens(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or("");
        let spaced: String = code
            .chars()
            .flat_map(|c| match c {
                '{' | '}' | ';' | '=' | '[' | ']' | '<' | '>' | ',' => {
                    vec![' ', c, ' ']
                }
                c => vec![c],
            })
            .collect();
        out.extend(spaced.split_whitespace().map(str::to_string));
    }
    out
}

/// Reads the top-level `message` declarations of a proto file. Enums and
/// services are skipped; a nested message or a map field fails the test, as
/// this scan does not understand them.
fn parse_proto(source: &str, schema: &mut Schema) {
    let tokens = tokens(source);
    let mut i = 0;
    while i < tokens.len() {
        match tokens[i].as_str() {
            "message" => {
                let name = tokens[i + 1].clone();
                assert_eq!(tokens[i + 2], "{", "message {name}: expected '{{'");
                let (fields, next) = parse_message_body(&tokens, i + 3, &name);
                assert!(
                    schema.insert(name.clone(), fields).is_none(),
                    "message {name} declared twice"
                );
                i = next;
            }
            "enum" | "service" => i = skip_block(&tokens, i),
            _ => i = skip_statement(&tokens, i),
        }
    }
}

/// Index after the `}` closing the block whose `{` follows `start`.
fn skip_block(tokens: &[String], start: usize) -> usize {
    let mut depth = 0;
    for (i, token) in tokens.iter().enumerate().skip(start) {
        match token.as_str() {
            "{" => depth += 1,
            "}" => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    panic!("unclosed block at token {start}");
}

/// Index after the `;` ending the statement at `start`.
fn skip_statement(tokens: &[String], start: usize) -> usize {
    tokens[start..]
        .iter()
        .position(|t| t == ";")
        .map(|p| start + p + 1)
        .unwrap_or_else(|| panic!("statement at token {start} has no ';'"))
}

/// Parses fields from `start` up to the closing `}`; returns them and the
/// index after that `}`.
fn parse_message_body(tokens: &[String], start: usize, message: &str) -> (Vec<FieldDecl>, usize) {
    let mut fields = Vec::new();
    let mut oneof: Option<String> = None;
    let mut i = start;
    loop {
        match tokens[i].as_str() {
            "}" if oneof.is_some() => {
                oneof = None;
                i += 1;
            }
            "}" => return (fields, i + 1),
            "oneof" => {
                assert_eq!(tokens[i + 2], "{", "{message}: oneof without '{{'");
                oneof = Some(tokens[i + 1].clone());
                i += 3;
            }
            "reserved" | "option" => i = skip_statement(tokens, i),
            "message" | "enum" | "map" | "extensions" | "extend" | "group" => panic!(
                "{message}: `{}` inside a message is not understood by this scan; extend it",
                tokens[i]
            ),
            _ => {
                let mut j = i;
                if matches!(tokens[j].as_str(), "optional" | "repeated") {
                    j += 1;
                }
                let type_name = tokens[j].clone();
                let name = tokens[j + 1].clone();
                assert_eq!(tokens[j + 2], "=", "{message}.{name}: expected '='");
                let number = tokens[j + 3]
                    .parse()
                    .unwrap_or_else(|_| panic!("{message}.{name}: field number {}", tokens[j + 3]));
                fields.push(FieldDecl {
                    name,
                    number,
                    type_name,
                    oneof: oneof.clone(),
                });
                i = skip_statement(tokens, j);
            }
        }
    }
}

fn schema() -> Schema {
    let mut schema = Schema::new();
    parse_proto(PIPELINE_PROTO, &mut schema);
    parse_proto(CONFIG_PROTO, &mut schema);
    schema
}

#[test]
fn round_trips_cover_every_message_in_the_proto_files() {
    let declared: BTreeSet<String> = schema().into_keys().collect();
    // A scan that found nothing would make the comparison below meaningless.
    assert!(declared.contains("PlateEvent") && declared.contains("WatchResponse"));
    let covered: BTreeSet<String> = round_trip_all()
        .iter()
        .map(|encoded| encoded.name.to_string())
        .collect();
    let missing: Vec<_> = declared.difference(&covered).collect();
    let unknown: Vec<_> = covered.difference(&declared).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "messages declared but not round-tripped: {missing:?}; \
         round-tripped but not declared: {unknown:?}"
    );
}

// ------------------------------------------------------- every field set check

/// One field as found on the wire.
enum WireValue<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
}

fn read_varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7F) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// Splits one message encoding into (field number, value) pairs.
fn wire_fields(bytes: &[u8]) -> Vec<(u32, WireValue<'_>)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let key = read_varint(bytes, &mut pos).expect("field key");
        let number = u32::try_from(key >> 3).expect("field number fits u32");
        let value = match key & 7 {
            0 => WireValue::Varint(read_varint(bytes, &mut pos).expect("varint value")),
            1 => {
                let raw: [u8; 8] = bytes[pos..pos + 8].try_into().expect("8 bytes");
                pos += 8;
                WireValue::Fixed64(u64::from_le_bytes(raw))
            }
            2 => {
                let len = read_varint(bytes, &mut pos).expect("length") as usize;
                let slice = &bytes[pos..pos + len];
                pos += len;
                WireValue::Bytes(slice)
            }
            5 => {
                let raw: [u8; 4] = bytes[pos..pos + 4].try_into().expect("4 bytes");
                pos += 4;
                WireValue::Fixed32(u32::from_le_bytes(raw))
            }
            other => panic!("unexpected wire type {other}"),
        };
        out.push((number, value));
    }
    out
}

/// Checks that one encoded `message` has every field (outside oneofs) set to
/// a non-default value, one arm of each oneof set, and the same for every
/// nested message. Returns the field numbers present at the top level.
fn check_all_set(
    schema: &Schema,
    message: &str,
    bytes: &[u8],
    path: &str,
    problems: &mut Vec<String>,
) -> BTreeSet<u32> {
    let fields = &schema[message];
    let mut seen = BTreeSet::new();
    for (number, value) in wire_fields(bytes) {
        let Some(field) = fields.iter().find(|f| f.number == number) else {
            problems.push(format!("{path}: field number {number} is not declared"));
            continue;
        };
        seen.insert(number);
        let field_path = format!("{path}.{}", field.name);
        let is_default = match value {
            WireValue::Varint(v) => v == 0,
            WireValue::Fixed64(v) => v == 0,
            WireValue::Fixed32(v) => v == 0,
            WireValue::Bytes(b) => b.is_empty(),
        };
        if is_default {
            problems.push(format!("{field_path}: set to its default value"));
        }
        let nested = field
            .type_name
            .strip_prefix('.')
            .unwrap_or(&field.type_name)
            .trim_start_matches("anpr.v1.");
        if let (WireValue::Bytes(inner), true) = (&value, schema.contains_key(nested)) {
            check_all_set(schema, nested, inner, &field_path, problems);
        }
    }
    let mut oneofs: BTreeMap<&str, usize> = BTreeMap::new();
    for field in fields {
        match &field.oneof {
            None if !seen.contains(&field.number) => {
                problems.push(format!("{path}.{}: not set", field.name));
            }
            None => {}
            Some(group) => {
                *oneofs.entry(group).or_default() += usize::from(seen.contains(&field.number));
            }
        }
    }
    for (group, set) in oneofs {
        if set != 1 {
            problems.push(format!("{path}.{group}: {set} oneof arms set, expected 1"));
        }
    }
    seen
}

/// The proto files' messages plus the well-known type they import.
fn schema_with_imports() -> Schema {
    let mut schema = schema();
    let field = |name: &str, number| FieldDecl {
        name: name.into(),
        number,
        type_name: "int64".into(),
        oneof: None,
    };
    schema.insert(
        "google.protobuf.Timestamp".into(),
        vec![field("seconds", 1), field("nanos", 2)],
    );
    schema
}

#[test]
fn round_trip_values_set_every_field_and_every_oneof_arm() {
    let schema = schema_with_imports();
    let mut problems = Vec::new();
    let mut seen_per_message: BTreeMap<&str, BTreeSet<u32>> = BTreeMap::new();
    for encoded in round_trip_all() {
        let seen = check_all_set(
            &schema,
            encoded.name,
            &encoded.bytes,
            encoded.name,
            &mut problems,
        );
        seen_per_message
            .entry(encoded.name)
            .or_default()
            .extend(seen);
    }
    // Each oneof arm must be covered by one of the values of its message.
    for (message, seen) in &seen_per_message {
        for field in &schema[*message] {
            if !seen.contains(&field.number) {
                problems.push(format!("{message}.{}: no value sets it", field.name));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "round-trip values are incomplete:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_completeness_check_notices_a_missing_field() {
    let mut event = plate_event();
    event.best_crop_jpeg = None;
    event.candidates[1].confidence = 0.0;
    event.first_seen = timestamp(1_767_225_600, 0);
    let mut problems = Vec::new();
    check_all_set(
        &schema_with_imports(),
        "PlateEvent",
        &event.encode_to_vec(),
        "PlateEvent",
        &mut problems,
    );
    assert_eq!(
        problems,
        [
            "PlateEvent.candidates.confidence: not set",
            "PlateEvent.first_seen.nanos: not set",
            "PlateEvent.best_crop_jpeg: not set",
        ]
    );
}

// ----------------------------------------------------------- decoding failures

#[test]
fn a_truncated_bytes_field_does_not_decode() {
    let jpeg: Vec<u8> = (0..=255u8).cycle().take(600).collect();
    let frame = Frame {
        camera_id: "gate-1".into(),
        sequence: 1,
        capture_time: timestamp(1_767_225_600, 1),
        width: 640,
        height: 480,
        jpeg: jpeg.clone(),
        camera_ip: "192.0.2.17".into(),
    };
    let bytes = frame.encode_to_vec();
    assert_eq!(
        Frame::decode(bytes.as_slice()).expect("the whole buffer decodes"),
        frame
    );
    let start = bytes
        .windows(jpeg.len())
        .position(|window| window == jpeg.as_slice())
        .expect("the JPEG is in the encoding");
    // Every cut from just after the length prefix to the last JPEG byte
    // leaves a length that promises more bytes than there are.
    for cut in start..start + jpeg.len() {
        assert!(
            Frame::decode(&bytes[..cut]).is_err(),
            "a Frame cut at byte {cut} of {} decoded",
            bytes.len()
        );
    }

    let event = plate_event();
    let bytes = event.encode_to_vec();
    let crop = event
        .best_crop_jpeg
        .as_deref()
        .expect("the event has a crop");
    let start = bytes
        .windows(crop.len())
        .position(|window| window == crop)
        .expect("the crop is in the encoding");
    assert!(PlateEvent::decode(&bytes[..start + crop.len() / 2]).is_err());
}

// ----------------------------------------------------------- compatibility

fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7F) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[test]
fn a_reader_ignores_fields_from_a_newer_writer() {
    let event = plate_event();
    let original = event.encode_to_vec();

    let mut newer = original.clone();
    // Field 999, varint 42: e.g. a new number added to PlateEvent later.
    push_varint(&mut newer, 999 << 3);
    push_varint(&mut newer, 42);
    // Field 1000, length-delimited: e.g. a new string or message.
    push_varint(&mut newer, (1000 << 3) | 2);
    push_varint(&mut newer, 5);
    newer.extend_from_slice(b"extra");
    assert_ne!(newer, original);

    let decoded = PlateEvent::decode(newer.as_slice()).expect("unknown fields are skipped");
    assert_eq!(decoded, event);
    // Unknown fields are dropped, not kept: re-encoding gives the old bytes.
    assert_eq!(decoded.encode_to_vec(), original);

    // The appended bytes are really parsed: a cut-off unknown field fails.
    assert!(PlateEvent::decode(&newer[..newer.len() - 1]).is_err());
}
