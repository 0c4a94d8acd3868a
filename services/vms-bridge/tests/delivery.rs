//! Plate events from ANPR_PLATES to simulated VMS servers: event choice,
//! camera mapping, API generations and authentication.

mod common;

use anpr_common::proto::{EventSelection, PlateEventKind, TlsTrust, VmsAuth};
use anpr_vms_sim::{BearerOverHttp, Profile, SimUser, ENCODER_CH2_ID, EXIT_ID, GATE1_ID, YARD_ID};
use common::*;

/// Cameras of the fixture, each known to the VMS by another `url` form, an
/// encoder channel, and one camera the VMS does not have.
async fn add_cameras(stack: &mut Stack) {
    stack
        .add_camera("gate", "Gate 1", "192.168.1.21", |_| {})
        .await;
    stack
        .add_camera("exit", "Exit", "192.168.1.22", |_| {})
        .await;
    stack
        .add_camera("yard", "Yard", "192.168.1.23", |_| {})
        .await;
    stack
        .add_camera("enc2", "Encoder 2", "192.168.1.40", |c| {
            c.encoder_channel = Some(1)
        })
        .await;
    stack.add_camera("ghost", "Ghost", "10.9.9.9", |_| {}).await;
}

const CAMERAS: [(&str, Option<&str>); 5] = [
    ("gate", Some(GATE1_ID)),
    ("exit", Some(EXIT_ID)),
    ("yard", Some(YARD_ID)),
    ("enc2", Some(ENCODER_CH2_ID)),
    ("ghost", None),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_target_gets_its_kinds_on_the_right_vms_camera() {
    let detect_sim = simulator(|_| {}).await;
    let lost_sim = simulator(|_| {}).await;
    let both_sim = simulator(|_| {}).await;
    let mut stack = Stack::start().await;
    add_cameras(&mut stack).await;
    stack
        .add_target("nx-detect", &detect_sim, EventSelection::Detect, |_| {})
        .await;
    stack
        .add_target("nx-lost", &lost_sim, EventSelection::Lost, |_| {})
        .await;
    stack
        .add_target("nx-both", &both_sim, EventSelection::Both, |_| {})
        .await;

    for (seq, (camera, _)) in CAMERAS.iter().enumerate() {
        let plate = format!("AB{seq}23CD");
        for kind in [
            PlateEventKind::Detect,
            PlateEventKind::Update,
            PlateEventKind::Lost,
        ] {
            stack.publish(camera, kind, &plate, seq as u32).await;
        }
    }

    let detects = wait_for_events(&detect_sim, CAMERAS.len()).await;
    let losts = wait_for_events(&lost_sim, CAMERAS.len()).await;
    let both = wait_for_events(&both_sim, 2 * CAMERAS.len()).await;
    for (events, word) in [(&detects, "Detect"), (&losts, "Lost")] {
        assert_eq!(events.len(), CAMERAS.len(), "{word}: {events:#?}");
        for (event, (camera, vms_id)) in events.iter().zip(CAMERAS) {
            assert!(
                event.description.starts_with(&format!("ANPR {word} ")),
                "{event:?}"
            );
            assert_eq!(event.api, "v4");
            assert_eq!(event.auth_method, "bearer");
            assert_eq!(event.state.as_deref(), Some("instant"));
            let expected: Vec<String> = vms_id.iter().map(|id| id.to_string()).collect();
            assert_eq!(
                event.resolved_camera_ids, expected,
                "camera {camera}: {event:?}"
            );
            assert_eq!(event.camera_refs, expected, "camera {camera}");
        }
    }
    assert_eq!(detects[0].source, "Gate 1");
    assert_eq!(detects[0].caption, "AB023CD");
    assert_eq!(detects[0].timestamp_ms, Some(1_795_946_401_000));
    assert_eq!(
        detects[0].description,
        "ANPR Detect AB023CD 93% on Gate 1 at 2026-11-29 10:00:01Z"
    );
    // Both: detect and lost of each camera, in order, never the updates.
    assert_eq!(both.len(), 2 * CAMERAS.len());
    for (pair, (camera, _)) in both.chunks(2).zip(CAMERAS) {
        assert!(
            pair[0].description.starts_with("ANPR Detect"),
            "{camera}: {pair:?}"
        );
        assert!(
            pair[1].description.starts_with("ANPR Lost"),
            "{camera}: {pair:?}"
        );
    }
    let status = stack
        .wait_for_status(
            "nx-detect",
            "the ghost camera problem and 5 deliveries",
            |s| s.delivered == 5 && !s.camera_problems.is_empty(),
        )
        .await;
    assert_eq!(
        status.camera_problems,
        ["ghost: no VMS camera has IP 10.9.9.9"]
    );
    // UPDATE events were skipped by the "both" target, not counted as sent.
    let both_status = stack
        .wait_for_status("nx-both", "an empty queue", |s| {
            s.queue_depth == 0 && s.delivered >= 10
        })
        .await;
    assert_eq!(both_status.delivered, 10, "{both_status:?}");
    assert_eq!(status.server, "6.1.0.42176 / rest v4");
    assert!(status.last_error.is_empty(), "{status:?}");
    assert!(status.last_success.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_4x_server_gets_create_event_with_digest() {
    let sim = simulator(|c| c.profile = Profile::V4x).await;
    let mut stack = Stack::start().await;
    add_cameras(&mut stack).await;
    stack
        .add_target("nx-old", &sim, EventSelection::Detect, |_| {})
        .await;
    stack
        .publish("gate", PlateEventKind::Detect, "OLD123", 1)
        .await;
    stack
        .publish("enc2", PlateEventKind::Detect, "OLD456", 2)
        .await;
    let events = wait_for_events(&sim, 2).await;
    assert_eq!(events[0].api, "legacy");
    assert_eq!(events[0].method, "POST");
    assert_eq!(events[0].auth_method, "digest");
    assert_eq!(events[0].resolved_camera_ids, [GATE1_ID]);
    assert_eq!(events[1].resolved_camera_ids, [ENCODER_CH2_ID]);
    assert_eq!(events[0].caption, "OLD123");
    let status = stack
        .wait_for_status("nx-old", "two deliveries", |s| s.delivered == 2)
        .await;
    assert_eq!(status.server, "4.2.0.32840 / legacy api");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prolonged_events_pair_with_identical_texts() {
    let sim = simulator(|_| {}).await;
    let mut stack = Stack::start().await;
    add_cameras(&mut stack).await;
    stack
        .add_target("nx-long", &sim, EventSelection::Both, |t| {
            t.prolonged = true
        })
        .await;
    stack
        .publish("gate", PlateEventKind::Detect, "PRO123", 1)
        .await;
    stack
        .publish("gate", PlateEventKind::Lost, "PRO123", 1)
        .await;
    let events = wait_for_events(&sim, 2).await;
    assert_eq!(events[0].state.as_deref(), Some("started"));
    assert_eq!(events[1].state.as_deref(), Some("stopped"));
    assert_eq!(events[0].description, "ANPR plate PRO123 on Gate 1");
    for field in [
        |e: &anpr_vms_sim::RecordedEvent| e.source.clone(),
        |e: &anpr_vms_sim::RecordedEvent| e.caption.clone(),
        |e: &anpr_vms_sim::RecordedEvent| e.description.clone(),
    ] {
        assert_eq!(field(&events[0]), field(&events[1]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_reported_and_the_event_waits_for_the_fix() {
    let sim = simulator(|_| {}).await;
    let mut stack = Stack::start().await;
    add_cameras(&mut stack).await;
    stack
        .add_target("nx-pw", &sim, EventSelection::Detect, |t| {
            t.password = "not-the-password".into()
        })
        .await;
    stack
        .publish("gate", PlateEventKind::Detect, "PW1", 1)
        .await;
    let status = stack
        .wait_for_status("nx-pw", "the wrong password", |s| !s.last_error.is_empty())
        .await;
    assert_eq!(status.last_error, "wrong password for user admin");
    assert!(
        !status.last_error.contains(PASSWORD) && !status.last_error.contains("not-the-password")
    );
    assert!(sim.events().is_empty());

    stack
        .update_target("nx-pw", |t| t.password = PASSWORD.into())
        .await;
    let events = wait_for_events(&sim, 1).await;
    assert_eq!(events[0].caption, "PW1");
    stack
        .wait_for_status("nx-pw", "the error cleared", |s| {
            s.last_error.is_empty() && s.delivered == 1
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_disabled_for_the_user_is_explained() {
    let sim = simulator(|c| {
        c.users = vec![SimUser {
            digest_enabled: false,
            ..SimUser::new("admin", PASSWORD)
        }]
    })
    .await;
    let mut stack = Stack::start().await;
    add_cameras(&mut stack).await;
    stack
        .add_target("nx-digest", &sim, EventSelection::Detect, |t| {
            t.auth = VmsAuth::Digest as i32
        })
        .await;
    stack
        .publish("gate", PlateEventKind::Detect, "DG1", 1)
        .await;
    let status = stack
        .wait_for_status("nx-digest", "digest refused", |s| !s.last_error.is_empty())
        .await;
    assert_eq!(
        status.last_error,
        "digest/basic disabled for this user on the VMS; use bearer auth or enable digest for the user"
    );
    assert!(sim.events().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_token_leads_to_one_new_login() {
    let sim = simulator(|_| {}).await;
    let mut stack = Stack::start().await;
    add_cameras(&mut stack).await;
    stack
        .add_target("nx-token", &sim, EventSelection::Detect, |_| {})
        .await;
    stack
        .publish("gate", PlateEventKind::Detect, "TK1", 1)
        .await;
    wait_for_events(&sim, 1).await;
    sim.invalidate_tokens();
    stack
        .publish("gate", PlateEventKind::Detect, "TK2", 2)
        .await;
    let events = wait_for_events(&sim, 2).await;
    assert_eq!(events[1].caption, "TK2");
    assert_eq!(events[1].auth_method, "bearer");
    let status = stack
        .wait_for_status("nx-token", "two deliveries", |s| s.delivered == 2)
        .await;
    assert!(status.last_error.is_empty(), "{status:?}");
    let logins = stack
        .metric("anpr_vms_logins_total{target=\"nx-token\"}")
        .await;
    assert_eq!(logins, Some(2.0), "one login, one re-login");
    let delivered = stack
        .metric("anpr_vms_events_delivered_total{target=\"nx-token\"}")
        .await;
    assert_eq!(delivered, Some(2.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_redirect_pinning_and_refused_pins() {
    let forced = simulator(|c| c.encryption_forced = true).await;
    let forced_verify = simulator(|c| c.encryption_forced = true).await;
    let pinned = simulator(|_| {}).await;
    let wrong_pin = simulator(|_| {}).await;
    let mut stack = Stack::start().await;
    add_cameras(&mut stack).await;
    // Plain HTTP target on a server that forces HTTPS: follows the redirect
    // and applies its trust mode (insecure here).
    stack
        .add_target("nx-forced", &forced, EventSelection::Detect, |t| {
            t.tls_trust = TlsTrust::Insecure as i32
        })
        .await;
    // Same, trust VERIFY: the self-signed certificate must be refused.
    stack
        .add_target("nx-verify", &forced_verify, EventSelection::Detect, |_| {})
        .await;
    let pin = pinned.cert_sha256_hex();
    stack
        .add_target("nx-pinned", &pinned, EventSelection::Detect, |t| {
            t.use_ssl = true;
            t.tls_trust = TlsTrust::Pinned as i32;
            t.pinned_cert_sha256 = pin;
        })
        .await;
    stack
        .add_target("nx-wrongpin", &wrong_pin, EventSelection::Detect, |t| {
            t.use_ssl = true;
            t.tls_trust = TlsTrust::Pinned as i32;
            t.pinned_cert_sha256 = "ab".repeat(32);
        })
        .await;
    stack
        .publish("gate", PlateEventKind::Detect, "TLS1", 1)
        .await;

    let events = wait_for_events(&forced, 1).await;
    assert_eq!(events[0].caption, "TLS1");
    let events = wait_for_events(&pinned, 1).await;
    assert_eq!(events[0].caption, "TLS1");
    let refused = stack
        .wait_for_status("nx-wrongpin", "the pin mismatch", |s| {
            !s.last_error.is_empty()
        })
        .await;
    assert!(
        refused.last_error.contains("does not match the pinned"),
        "{refused:?}"
    );
    let unverified = stack
        .wait_for_status("nx-verify", "the untrusted certificate", |s| {
            !s.last_error.is_empty()
        })
        .await;
    assert!(
        unverified.last_error.contains("not trusted"),
        "{unverified:?}"
    );
    assert!(wrong_pin.events().is_empty());
    assert!(forced_verify.events().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_refused_over_plain_http_is_explained_not_dead_lettered() {
    let refusing = simulator(|c| c.bearer_over_http = BearerOverHttp::Reject403).await;
    let refusing_401 = simulator(|c| c.bearer_over_http = BearerOverHttp::Reject401).await;
    let mut stack = Stack::start().await;
    add_cameras(&mut stack).await;
    stack
        .add_target("nx-http403", &refusing, EventSelection::Detect, |_| {})
        .await;
    stack
        .add_target("nx-http401", &refusing_401, EventSelection::Detect, |_| {})
        .await;
    stack
        .publish("gate", PlateEventKind::Detect, "HT1", 1)
        .await;
    for target in ["nx-http403", "nx-http401"] {
        let status = stack
            .wait_for_status(target, "the refused token", |s| !s.last_error.is_empty())
            .await;
        assert!(
            status
                .last_error
                .contains("refuses session tokens over plain HTTP"),
            "{target}: {status:?}"
        );
        assert_eq!(status.dead_lettered, 0);
    }
    assert!(refusing.events().is_empty() && refusing_401.events().is_empty());
    assert!(stack.dead_letters().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_event_choice_recreates_the_consumer_and_removal_cleans_up() {
    let sim = simulator(|_| {}).await;
    let mut stack = Stack::start().await;
    add_cameras(&mut stack).await;
    stack
        .add_target("nx-change", &sim, EventSelection::Detect, |_| {})
        .await;
    stack
        .publish("gate", PlateEventKind::Detect, "CH1", 1)
        .await;
    wait_for_events(&sim, 1).await;

    stack
        .update_target("nx-change", |t| t.events = EventSelection::Lost as i32)
        .await;
    stack
        .wait_for_consumer("nx-change", EventSelection::Lost)
        .await;
    stack
        .publish("gate", PlateEventKind::Detect, "CH2", 2)
        .await;
    stack.publish("gate", PlateEventKind::Lost, "CH2", 2).await;
    let events = wait_for_events(&sim, 2).await;
    assert_eq!(events[1].caption, "CH2");
    assert!(events[1].description.starts_with("ANPR Lost"), "{events:?}");
    stack
        .wait_for_status("nx-change", "two deliveries", |s| s.delivered >= 1)
        .await;

    stack.delete_target("nx-change").await;
    let js = stack.js.clone();
    wait_for(
        "the consumer and status of the removed target to go",
        || {
            let js = js.clone();
            async move {
                let Ok(stream) = js.get_stream(anpr_common::subjects::PLATE_STREAM).await else {
                    return false;
                };
                let consumer_gone = stream.consumer_info("vms-bridge-nx-change").await.is_err();
                let status_gone = match js
                    .get_key_value(anpr_common::subjects::VMS_STATUS_BUCKET)
                    .await
                {
                    Ok(kv) => matches!(kv.get("nx-change").await, Ok(None)),
                    Err(_) => false,
                };
                consumer_gone && status_gone
            }
        },
    )
    .await;
    assert_eq!(sim.events().len(), 2, "only the selected kinds were sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_recorded_as_delivered_is_not_posted_again() {
    let sim = simulator(|_| {}).await;
    let mut stack = Stack::start().await;
    add_cameras(&mut stack).await;
    stack
        .add_target("nx-dup", &sim, EventSelection::Detect, |_| {})
        .await;
    // A replica delivered this event and crashed before acking it.
    let already = uuid_like("gate", PlateEventKind::Detect, 1);
    let kv = stack
        .js
        .get_key_value(anpr_common::subjects::VMS_DELIVERED_BUCKET)
        .await
        .expect("delivered bucket");
    kv.put(format!("nx-dup.{already}"), "1".into())
        .await
        .expect("recording");
    stack
        .publish("gate", PlateEventKind::Detect, "DUP1", 1)
        .await;
    stack
        .publish("gate", PlateEventKind::Detect, "NEW2", 2)
        .await;
    let events = wait_for_events(&sim, 1).await;
    assert_eq!(events[0].caption, "NEW2");
    wait_for("the duplicate to be counted", || async {
        stack
            .metric("anpr_vms_duplicates_skipped_total{target=\"nx-dup\"}")
            .await
            == Some(1.0)
    })
    .await;
    assert_eq!(sim.events().len(), 1);
    // And the delivered one is recorded in turn.
    let new_id = uuid_like("gate", PlateEventKind::Detect, 2);
    assert!(kv
        .get(format!("nx-dup.{new_id}"))
        .await
        .expect("reading")
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_and_forced_digest_on_a_6_1_server() {
    let sim = simulator(|_| {}).await;
    let mut stack = Stack::start().await;
    add_cameras(&mut stack).await;
    stack
        .add_target("nx-basic", &sim, EventSelection::Detect, |t| {
            t.auth = VmsAuth::Basic as i32
        })
        .await;
    stack
        .add_target("nx-dig", &sim, EventSelection::Lost, |t| {
            t.auth = VmsAuth::Digest as i32
        })
        .await;
    stack
        .publish("gate", PlateEventKind::Detect, "BA1", 1)
        .await;
    stack.publish("gate", PlateEventKind::Lost, "BA1", 1).await;
    stack.publish("gate", PlateEventKind::Lost, "BA2", 2).await;
    let events = wait_for_events(&sim, 3).await;
    let mut methods: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.caption.as_str(), e.auth_method.as_str()))
        .collect();
    methods.sort();
    assert_eq!(
        methods,
        [("BA1", "basic"), ("BA1", "digest"), ("BA2", "digest")]
    );
    assert!(events
        .iter()
        .all(|e| e.api == "v4" && e.resolved_camera_ids == [GATE1_ID]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_5_0_to_6_0_use_sessions_and_create_event() {
    let profiles = [
        (Profile::V50, "5.0.0.35136 / rest v1"),
        (Profile::V51, "5.1.5.39242 / rest v2"),
        (Profile::V60, "6.0.6.41837 / rest v3"),
    ];
    let mut sims = Vec::new();
    for (profile, _) in profiles {
        sims.push(simulator(|c| c.profile = profile).await);
    }
    let mut stack = Stack::start().await;
    add_cameras(&mut stack).await;
    for (index, sim) in sims.iter().enumerate() {
        stack
            .add_target(&format!("nx-{index}"), sim, EventSelection::Detect, |_| {})
            .await;
    }
    stack
        .publish("yard", PlateEventKind::Detect, "REL1", 1)
        .await;
    for (index, (sim, (_, server))) in sims.iter().zip(profiles).enumerate() {
        let events = wait_for_events(sim, 1).await;
        assert_eq!(events[0].api, "legacy", "{server}");
        assert_eq!(events[0].auth_method, "bearer", "{server}");
        assert_eq!(events[0].resolved_camera_ids, [YARD_ID], "{server}");
        let status = stack
            .wait_for_status(&format!("nx-{index}"), "one delivery", |s| s.delivered == 1)
            .await;
        assert_eq!(status.server, server);
    }
}
