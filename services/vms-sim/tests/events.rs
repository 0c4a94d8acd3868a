//! Both Generic Event endpoints over real HTTP: success, every validation
//! error, camera-ref resolution, timestamps and the `/_fake/events` record.

mod common;

use anpr_vms_sim::{
    Profile, SimConfig, Simulator, V4Body, ENCODER_CH1_ID, ENCODER_CH2_ID, ENCODER_CH2_PHYSICAL_ID,
    GATE1_ID, GATE1_PHYSICAL_ID, YARD_ID,
};
use common::*;
use reqwest::header::AUTHORIZATION;
use reqwest::StatusCode;
use serde_json::{json, Value};

const OK_BODY: &str = r#"{"error":"0","errorId":"ok","errorString":""}"#;

async fn legacy_get(sim: &Simulator, query: &str) -> (StatusCode, Value) {
    let resp = client(sim)
        .get(https(sim, &format!("/api/createEvent?{query}")))
        .basic_auth("admin", Some("admin"))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

async fn legacy_post(sim: &Simulator, body: &str) -> (StatusCode, Value) {
    let resp = client(sim)
        .post(https(sim, "/api/createEvent"))
        .basic_auth("admin", Some("admin"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

async fn v4_post(sim: &Simulator, token: &str, body: &str) -> (StatusCode, String) {
    let resp = client(sim)
        .post(https(sim, "/rest/v4/events/generic"))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_get_success_is_recorded() {
    let sim = start(SimConfig::default()).await;
    let metadata = format!(r#"{{"cameraRefs":["{GATE1_ID}"]}}"#);
    let query = format!(
        "source=ANPR%20Gate%201&caption=AB123CD&description=conf%3D0.93&metadata={}&timestamp=1718553761123",
        enc(&metadata)
    );
    let (status, body) = legacy_get(&sim, &query).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::from_str::<Value>(OK_BODY).unwrap());
    let events = fake_events(&sim).await;
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e["api"], "legacy");
    assert_eq!(e["method"], "GET");
    assert_eq!(e["source"], "ANPR Gate 1");
    assert_eq!(e["caption"], "AB123CD");
    assert_eq!(e["description"], "conf=0.93");
    assert_eq!(e["cameraRefs"], json!([GATE1_ID]));
    assert_eq!(e["resolvedCameraIds"], json!([GATE1_ID]));
    assert_eq!(e["state"], Value::Null);
    assert_eq!(e["timestampMs"], 1_718_553_761_123_i64);
    assert!(e["receivedAtMs"].as_i64().unwrap() > 0);
    assert_eq!(e["authMethod"], "basic");
    assert_eq!(e["user"], "admin");
    // The library view matches the HTTP view.
    let typed: Vec<anpr_vms_sim::RecordedEvent> = serde_json::from_value(json!(events)).unwrap();
    assert_eq!(typed, sim.events());

    // A '+' in a query value is a space, like on the real server.
    let (_, body) = legacy_get(&sim, "caption=AB+123").await;
    assert_eq!(body["error"], "0");
    assert_eq!(sim.events()[1].caption, "AB 123");

    let cleared = client(&sim)
        .delete(https(&sim, "/_fake/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), StatusCode::OK);
    assert!(fake_events(&sim).await.is_empty());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_post_json_prolonged_pair_and_string_metadata() {
    let sim = start(SimConfig::default()).await;
    for state in ["Active", "Inactive"] {
        let body = json!({
            "source": "ANPR Gate 1", "caption": "AB123CD", "description": "Detect",
            "metadata": {"cameraRefs": [GATE1_ID]}, "timestamp": "1718553761123", "state": state,
        });
        let (status, resp) = legacy_post(&sim, &body.to_string()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(resp["error"], "0");
    }
    let body =
        json!({"caption": "XY999", "metadata": format!(r#"{{"cameraRefs":["{YARD_ID}"]}}"#)});
    let (_, resp) = legacy_post(&sim, &body.to_string()).await;
    assert_eq!(resp["error"], "0");
    let events = sim.events();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0].state.as_deref(), Some("Active"));
    assert_eq!(events[1].state.as_deref(), Some("Inactive"));
    assert_eq!(events[0].method, "POST");
    assert_eq!(events[2].resolved_camera_ids, vec![YARD_ID.to_string()]);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_validation_errors_are_http_200_with_error_2() {
    let sim = start(SimConfig::default()).await;
    let (status, body) = legacy_post(&sim, r#"{"metadata":{"cameraRefs":["x"]}}"#).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"error": "2", "errorId": "invalidParameter",
               "errorString": "At least one of values 'source', 'caption' or 'description' should be filled"})
    );
    for (query, param) in [
        ("caption=A&state=Begin", "state"),
        ("caption=A&metadata=cameraRefs", "metadata"),
        ("caption=A&event_type=plateEvent", "event_type"),
        ("caption=A&metadata=%5B1%5D", "metadata"),
    ] {
        let (status, body) = legacy_get(&sim, query).await;
        assert_eq!(status, StatusCode::OK, "{query}");
        assert_eq!(body["error"], "2", "{query}");
        assert_eq!(body["errorId"], "invalidParameter");
        let text = body["errorString"].as_str().unwrap();
        assert!(
            text.starts_with(&format!("Invalid value for parameter '{param}'")),
            "{text}"
        );
    }
    let (status, _) = legacy_post(&sim, "{not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(sim.events().is_empty());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_4x_bodies_have_no_error_id_and_get_can_be_forbidden() {
    let sim = start(SimConfig {
        profile: Profile::V4x,
        legacy_get_allowed: false,
        ..SimConfig::default()
    })
    .await;
    let (status, body) = legacy_post(&sim, r#"{"caption":"P1"}"#).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"error": "0", "errorString": ""}));
    let (status, body) = legacy_get(&sim, "caption=P2").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "4");
    assert_eq!(sim.events().len(), 1);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camera_refs_resolve_by_every_flexible_form() {
    let sim = start(SimConfig::default()).await;
    let refs = json!([
        GATE1_ID,
        ENCODER_CH2_PHYSICAL_ID,
        "aa:bb:cc:dd:ee:ff",
        "3",
        "00000000-0000-0000-0000-00000000dead"
    ]);
    let (_, body) = legacy_post(
        &sim,
        &json!({"caption": "R1", "metadata": {"cameraRefs": refs}}).to_string(),
    )
    .await;
    assert_eq!(body["error"], "0");
    let token = login(&sim, 4, "admin", "admin").await;
    let (status, _) = v4_post(
        &sim,
        &token,
        &json!({"caption": "R2", "deviceIds": [GATE1_PHYSICAL_ID, "nope"]}).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let events = sim.events();
    assert_eq!(events[0].camera_refs.len(), 5);
    assert_eq!(
        events[0].resolved_camera_ids,
        vec![GATE1_ID, ENCODER_CH2_ID, ENCODER_CH1_ID, YARD_ID]
    );
    assert_eq!(events[1].resolved_camera_ids, vec![GATE1_ID]);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v4_generic_success_and_validation() {
    let sim = start(SimConfig::default()).await;
    let token = login(&sim, 4, "admin", "admin").await;
    let body = json!({
        "state": "instant", "timestamp": "1718553761123", "source": "ANPR Gate 1",
        "caption": "AB123CD", "description": "conf 0.93", "deviceIds": [GATE1_ID],
    });
    let (status, text) = v4_post(&sim, &token, &body.to_string()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(text, "");
    let (status, text) = v4_post(&sim, &token, r#"{"state":"active","caption":"A"}"#).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let err: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(err["error"], "2");
    assert_eq!(err["errorId"], "invalidParameter");
    assert!(err["errorString"]
        .as_str()
        .unwrap()
        .starts_with("Invalid parameter `state`"));
    let (status, _) = v4_post(&sim, &token, r#"{"caption":"A","deviceIds":"x"}"#).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = v4_post(&sim, &token, "{broken").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let events = fake_events(&sim).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["api"], "v4");
    assert_eq!(events[0]["state"], "instant");
    assert_eq!(events[0]["timestampMs"], 1_718_553_761_123_i64);
    assert_eq!(events[0]["authMethod"], "bearer");
    sim.shutdown().await;

    let sim = start(SimConfig {
        v4_success_body: V4Body::EmptyObject,
        ..SimConfig::default()
    })
    .await;
    let token = login(&sim, 4, "admin", "admin").await;
    let (status, text) = v4_post(&sim, &token, r#"{"caption":"B","state":"started"}"#).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(text, "{}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_are_parsed_like_the_server() {
    let sim = start(SimConfig::default()).await;
    for ts in ["1718553761123", "1718553761123000", "2024-06-16T16:02:41Z"] {
        let (_, body) =
            legacy_post(&sim, &json!({"caption": "T", "timestamp": ts}).to_string()).await;
        assert_eq!(body["error"], "0");
    }
    let (_, body) = legacy_post(&sim, r#"{"caption":"T","timestamp":"now"}"#).await;
    assert_eq!(body["error"], "0");
    let events = sim.events();
    assert_eq!(events[0].timestamp_ms, Some(1_718_553_761_123));
    assert_eq!(events[1].timestamp_ms, Some(1_718_553_761_123));
    assert_eq!(events[2].timestamp_ms, Some(1_718_553_761_000));
    // "now" is stamped with the arrival time.
    assert_eq!(events[3].timestamp_ms, Some(events[3].received_at_ms));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_post_form_body_and_query_params() {
    let sim = start(SimConfig::default()).await;
    let resp = client(&sim)
        .post(https(&sim, "/api/createEvent?source=Gate"))
        .basic_auth("admin", Some("admin"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "caption=FORM%2B1&metadata={}",
            enc(&format!(r#"{{"cameraRefs":["{GATE1_ID}"]}}"#))
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "0");
    let events = sim.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].source, "Gate");
    assert_eq!(events[0].caption, "FORM+1");
    assert_eq!(events[0].resolved_camera_ids, vec![GATE1_ID]);
    sim.shutdown().await;
}
