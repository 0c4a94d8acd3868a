//! Camera lists in both forms for the fixture, projection, filters, flexible
//! ids, and a camera list that changes between calls.

mod common;

use anpr_vms_sim::{
    fixture_cameras, SimCamera, SimConfig, ENCODER_CH1_ID, ENCODER_CH2_ID, ENCODER_PHYSICAL_ID,
    ENCODER_URL, EXIT_ID, GATE1_ID, NORTH_ID, OLD_ID, SERVER_ID, YARD_ID,
};
use common::*;
use reqwest::header::AUTHORIZATION;
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn get_json(sim: &anpr_vms_sim::Simulator, token: &str, path: &str) -> (StatusCode, Value) {
    let resp = client(sim)
        .get(https(sim, path))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_devices_for_the_fixture() {
    let sim = start(SimConfig::default()).await;
    let token = login(&sim, 4, "admin", "admin").await;
    let (status, list) = get_json(&sim, &token, "/rest/v4/devices").await;
    assert_eq!(status, StatusCode::OK);
    let list = list.as_array().unwrap();
    let ids: Vec<&str> = list.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        vec![
            GATE1_ID,
            EXIT_ID,
            YARD_ID,
            NORTH_ID,
            ENCODER_CH1_ID,
            ENCODER_CH2_ID,
            OLD_ID
        ]
    );
    let urls: Vec<&str> = list.iter().map(|d| d["url"].as_str().unwrap()).collect();
    assert_eq!(
        urls,
        vec![
            "192.168.1.21",
            "http://192.168.1.22:80/onvif/device_service",
            "192.168.1.23:554",
            "cam-north.example.local",
            ENCODER_URL,
            ENCODER_URL,
            "192.168.1.99"
        ]
    );
    for d in list {
        assert_eq!(d["serverId"], SERVER_ID);
        assert_eq!(d["deviceType"], "Camera");
        assert!(d.get("parentId").is_none());
    }
    assert_eq!(list[4]["group"], list[5]["group"]);
    assert_eq!(list[4]["group"]["id"], ENCODER_PHYSICAL_ID);
    assert_eq!(list[6]["status"], "Offline");

    let (_, projected) = get_json(
        &sim,
        &token,
        "/rest/v4/devices?_with=id,name,url,physicalId,mac,deviceType",
    )
    .await;
    assert_eq!(
        projected[0],
        json!({"id": GATE1_ID, "name": "Gate 1", "url": "192.168.1.21",
               "physicalId": "00-1A-2B-3C-4D-5E", "mac": "00-1A-2B-3C-4D-5E", "deviceType": "Camera"})
    );
    let (_, filtered) = get_json(
        &sim,
        &token,
        &format!("/rest/v4/devices?url={}", enc(ENCODER_URL)),
    )
    .await;
    let filtered_ids: Vec<&str> = filtered
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(filtered_ids, vec![ENCODER_CH1_ID, ENCODER_CH2_ID]);

    // One device by id, physicalId, MAC and logicalId; older versions too.
    for flexible in [
        ENCODER_CH2_ID.to_string(),
        enc("AA-BB-CC-DD-EE-FF_channel=2"),
        "6".to_string(),
    ] {
        let (status, d) = get_json(&sim, &token, &format!("/rest/v2/devices/{flexible}")).await;
        assert_eq!(status, StatusCode::OK, "{flexible}");
        assert_eq!(d["id"], ENCODER_CH2_ID);
    }
    let (_, by_mac) = get_json(&sim, &token, "/rest/v1/devices/00-1A-2B-3C-4D-5E").await;
    assert_eq!(by_mac["id"], GATE1_ID);
    let (status, err) = get_json(&sim, &token, "/rest/v4/devices/unknown-camera").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(err["errorId"], "notFound");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_camera_list_for_the_fixture() {
    let sim = start(SimConfig::default()).await;
    let c = client(&sim);
    let list: Value = c
        .get(https(&sim, "/ec2/getCamerasEx"))
        .basic_auth("admin", Some("admin"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), fixture_cameras().len());
    assert_eq!(list[0]["parentId"], SERVER_ID);
    assert_eq!(list[0]["logicalId"], "1");
    assert_eq!(list[6]["logicalId"], "");
    assert_eq!(list[4]["groupId"], ENCODER_PHYSICAL_ID);
    assert_eq!(list[4]["groupName"], list[5]["groupName"]);
    assert_eq!(list[0]["groupId"], "");
    assert!(list[0]["addParams"].is_array());
    assert!(list[0].get("serverId").is_none());

    let one: Value = c
        .get(https(&sim, "/ec2/getCamerasEx?id=4"))
        .basic_auth("admin", Some("admin"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0]["id"], NORTH_ID);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camera_list_changes_between_calls() {
    let sim = start(SimConfig::default()).await;
    let token = login(&sim, 4, "admin", "admin").await;
    let moved = SimCamera {
        id: "11111111-2222-4333-8444-555555555555".into(),
        name: "Gate 1 (re-added)".into(),
        url: "192.168.1.21".into(),
        physical_id: "00-1A-2B-3C-4D-5E".into(),
        mac: "00-1A-2B-3C-4D-5E".into(),
        logical_id: None,
        status: "Online".into(),
    };
    sim.set_cameras(vec![moved.clone()]);
    let (_, list) = get_json(&sim, &token, "/rest/v4/devices").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], moved.id.as_str());
    // The old id no longer resolves; the event is still accepted.
    let resp = client(&sim)
        .post(https(&sim, "/rest/v4/events/generic"))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .json(&json!({"caption": "C1", "deviceIds": [GATE1_ID]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(sim.events()[0].resolved_camera_ids.is_empty());
    sim.shutdown().await;
}
