//! The test kit's camera: a rendered plate clip served over RTSP, stopped and
//! restarted on the same port.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use anpr_testkit::clip::{self, ClipSpec};
use anpr_testkit::rtsp::{self, RtspServer};

const PROBE: Duration = Duration::from_secs(30);

fn short_clip() -> clip::PlateClip {
    let mut spec = ClipSpec::new(&["KX5M21"]);
    spec.seconds_per_plate = 2.0;
    spec.gap_seconds = 1.0;
    clip::plate_clip(&spec)
}

#[test]
fn a_clip_is_rendered_once_and_then_reused() {
    let clip = short_clip();
    let first = std::fs::metadata(&clip.path).expect("the clip exists");
    assert!(
        first.len() > 10_000,
        "the clip is only {} bytes",
        first.len()
    );
    assert_eq!(clip.plates, ["KX5M21"]);
    assert_eq!(clip.duration, Duration::from_secs(3));

    let again = short_clip();
    assert_eq!(again.path, clip.path);
    let second = std::fs::metadata(&again.path).expect("the clip exists");
    assert_eq!(
        first.modified().ok(),
        second.modified().ok(),
        "not rendered again"
    );

    // A frame from the middle of the crossing can be extracted as JPEG.
    let dir = tempfile::tempdir().expect("temporary directory");
    let frame = dir.path().join("frame.jpg");
    clip.extract_frame(clip.mid_crossing_times(0, 1)[0], &frame);
    let bytes = std::fs::read(&frame).expect("the frame");
    assert_eq!(&bytes[..2], [0xff, 0xd8], "a JPEG");
}

#[test]
fn the_server_streams_the_clip_stops_and_comes_back_on_the_same_port() {
    let clip = short_clip();
    let mut server = RtspServer::start(&clip.path);
    let url = server.url();
    assert_eq!(url, format!("rtsp://127.0.0.1:{}/plate", server.port()));

    let stream = rtsp::probe(&url, PROBE).unwrap_or_else(|err| {
        panic!(
            "the server does not serve: {err}; its log:\n{}",
            server.log()
        )
    });
    assert_eq!(stream, ("h264".to_string(), 1280, 720));
    // The looped file plays past its own end: still served after a loop.
    std::thread::sleep(clip.duration + Duration::from_millis(500));
    assert!(server.is_running(), "the server exited: {}", server.log());
    assert_eq!(
        rtsp::probe(&url, PROBE).as_ref().map(|s| s.0.as_str()),
        Ok("h264")
    );

    server.stop();
    assert!(!server.is_running());
    let refused = TcpStream::connect(("127.0.0.1", server.port())).is_err();
    assert!(
        refused,
        "port {} still accepts connections after stop",
        server.port()
    );
    assert!(rtsp::probe(&url, PROBE).is_err());

    let port = server.port();
    let started = Instant::now();
    server.restart();
    assert_eq!(server.port(), port);
    assert_eq!(server.url(), url);
    let stream = rtsp::probe(&url, PROBE).unwrap_or_else(|err| {
        panic!(
            "the restarted server does not serve: {err}; its log:\n{}",
            server.log()
        )
    });
    assert_eq!(stream, ("h264".to_string(), 1280, 720));
    eprintln!("restarted and probed in {:?}", started.elapsed());
}
