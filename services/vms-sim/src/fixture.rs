//! The default camera set. It exercises every `url` form a client has to map
//! an IP address from (section 3 of the VMS notes): bare IP, complete URL,
//! host:port, DNS name, two encoder channels sharing one address, and an
//! offline camera. Ids are fixed so tests can assert them.

use crate::config::SimCamera;

/// Id of the (only) simulated server: `parentId` / `serverId` of every camera.
pub const SERVER_ID: &str = "5c2a3f7e-61d4-4b8a-9c1e-0d2f4a6b8c90";

/// "Gate 1", url `192.168.1.21` (bare IP), logical id 1.
pub const GATE1_ID: &str = "3a4ad4ea-9269-4b1f-a7aa-2cec537d0248";
/// "Exit", url `http://192.168.1.22:80/onvif/device_service`, logical id 2.
pub const EXIT_ID: &str = "7b1f0c52-3e8d-4a61-b5c4-2f9e8d7a6b10";
/// "Yard", url `192.168.1.23:554` (host:port), logical id 3.
pub const YARD_ID: &str = "c4e2a9d1-8f3b-4c7e-a1d5-6b0e9f2c3a21";
/// "North", url `cam-north.example.local` (DNS name), logical id 4.
pub const NORTH_ID: &str = "e9d8c7b6-a5f4-4e3d-8c2b-1a0f9e8d7c32";
/// "Encoder ch1" on 192.168.1.40, physical id `AA-BB-CC-DD-EE-FF`, logical id 5.
pub const ENCODER_CH1_ID: &str = "1f2e3d4c-5b6a-4798-8a6b-5c4d3e2f1a43";
/// "Encoder ch2" on 192.168.1.40, physical id `AA-BB-CC-DD-EE-FF_channel=2`, logical id 6.
pub const ENCODER_CH2_ID: &str = "2a3b4c5d-6e7f-4801-9b2c-3d4e5f6a7b54";
/// "Old", offline, url `192.168.1.99`, no logical id.
pub const OLD_ID: &str = "9e8f7a6b-5c4d-4e3f-8a1b-2c3d4e5f6a65";

/// Physical id (and MAC) of "Gate 1".
pub const GATE1_PHYSICAL_ID: &str = "00-1A-2B-3C-4D-5E";
/// Physical id of encoder channel 1; also the encoder's MAC.
pub const ENCODER_PHYSICAL_ID: &str = "AA-BB-CC-DD-EE-FF";
/// Physical id of encoder channel 2.
pub const ENCODER_CH2_PHYSICAL_ID: &str = "AA-BB-CC-DD-EE-FF_channel=2";
/// Address both encoder channels report.
pub const ENCODER_URL: &str = "http://192.168.1.40:80/onvif/device_service";

fn camera(
    id: &str,
    name: &str,
    url: &str,
    physical_id: &str,
    mac: &str,
    logical_id: Option<u32>,
    status: &str,
) -> SimCamera {
    SimCamera {
        id: id.to_string(),
        name: name.to_string(),
        url: url.to_string(),
        physical_id: physical_id.to_string(),
        mac: mac.to_string(),
        logical_id,
        status: status.to_string(),
    }
}

/// The default cameras (see the module comment).
pub fn fixture_cameras() -> Vec<SimCamera> {
    vec![
        camera(
            GATE1_ID,
            "Gate 1",
            "192.168.1.21",
            GATE1_PHYSICAL_ID,
            GATE1_PHYSICAL_ID,
            Some(1),
            "Online",
        ),
        camera(
            EXIT_ID,
            "Exit",
            "http://192.168.1.22:80/onvif/device_service",
            "00-1A-2B-3C-4D-5F",
            "00-1A-2B-3C-4D-5F",
            Some(2),
            "Recording",
        ),
        camera(
            YARD_ID,
            "Yard",
            "192.168.1.23:554",
            "00-1A-2B-3C-4D-60",
            "00-1A-2B-3C-4D-60",
            Some(3),
            "Online",
        ),
        camera(
            NORTH_ID,
            "North",
            "cam-north.example.local",
            "00-1A-2B-3C-4D-61",
            "00-1A-2B-3C-4D-61",
            Some(4),
            "Online",
        ),
        camera(
            ENCODER_CH1_ID,
            "Encoder ch1",
            ENCODER_URL,
            ENCODER_PHYSICAL_ID,
            ENCODER_PHYSICAL_ID,
            Some(5),
            "Online",
        ),
        camera(
            ENCODER_CH2_ID,
            "Encoder ch2",
            ENCODER_URL,
            ENCODER_CH2_PHYSICAL_ID,
            ENCODER_PHYSICAL_ID,
            Some(6),
            "Online",
        ),
        camera(
            OLD_ID,
            "Old",
            "192.168.1.99",
            "00-1A-2B-3C-4D-62",
            "00-1A-2B-3C-4D-62",
            None,
            "Offline",
        ),
    ]
}
