//! Info endpoints per profile and every authentication behaviour, over real HTTP.

mod common;

use std::time::Duration;

use anpr_vms_sim::digest;
use anpr_vms_sim::{BearerOverHttp, Profile, SimConfig, SimUser};
use common::*;
use reqwest::header::AUTHORIZATION;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn with_profile(profile: Profile) -> SimConfig {
    SimConfig {
        profile,
        ..SimConfig::default()
    }
}

async fn status_of(sim: &anpr_vms_sim::Simulator, path: &str) -> StatusCode {
    client(sim)
        .get(https(sim, path))
        .send()
        .await
        .expect("request")
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_profile_serves_its_info_endpoints() {
    for profile in Profile::ALL {
        let sim = start(with_profile(profile)).await;
        let c = client(&sim);
        let module: Value = c
            .get(https(&sim, "/api/moduleInformation"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(module["error"], "0");
        assert_eq!(module["reply"]["realm"], "VMS");
        assert_eq!(module["reply"]["version"], profile.server_version());

        let v3 = status_of(&sim, "/rest/v3/system/info").await;
        let v4 = status_of(&sim, "/rest/v4/site/info").await;
        match profile {
            Profile::V60 => {
                assert_eq!(v3, StatusCode::OK);
                assert_eq!(v4, StatusCode::NOT_FOUND);
                let info: Value = c
                    .get(https(&sim, "/rest/v3/system/info"))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert_eq!(info["restApiVersions"], json!({"min": "v1", "max": "v3"}));
                assert!(info["synchronizedTimeMs"].as_i64().unwrap() > 0);
            }
            Profile::V61 => {
                assert_eq!(v4, StatusCode::OK);
                let info: Value = c
                    .get(https(&sim, "/rest/v4/site/info"))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert_eq!(info["restApiVersions"], json!({"min": "v1", "max": "v4"}));
                assert_eq!(info["version"], "6.1.0.42176");
            }
            _ => {
                assert_eq!(v3, StatusCode::NOT_FOUND, "{profile}");
                assert_eq!(v4, StatusCode::NOT_FOUND, "{profile}");
            }
        }
        // Login sessions exist exactly for the REST versions of the profile.
        for version in 1..=4u8 {
            let resp = c
                .post(https(&sim, &format!("/rest/v{version}/login/sessions")))
                .json(&json!({"username": "admin", "password": "admin"}))
                .send()
                .await
                .unwrap();
            let expected = if profile.has_rest_version(version) {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            };
            assert_eq!(resp.status(), expected, "{profile} v{version}");
        }
        // The v4 generic event endpoint only on 6.1.
        let generic = c
            .post(https(&sim, "/rest/v4/events/generic"))
            .json(&json!({"caption": "X"}))
            .send()
            .await
            .unwrap()
            .status();
        if profile == Profile::V61 {
            assert_eq!(generic, StatusCode::UNAUTHORIZED);
        } else {
            assert_eq!(generic, StatusCode::NOT_FOUND, "{profile}");
        }
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_sessions_ok_wrong_password_unknown_user() {
    let sim = start(SimConfig::default()).await;
    let c = client(&sim);
    let resp = c
        .post(https(&sim, "/rest/v4/login/sessions"))
        .json(&json!({"username": "ADMIN", "password": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["username"], "admin");
    assert_eq!(body["ageS"], 0);
    assert_eq!(body["expiresInS"], 30 * 24 * 3600);
    let token = body["token"].as_str().unwrap();
    assert!(token.starts_with("vms-"));

    let current: Value = c
        .get(https(&sim, "/rest/v4/login/sessions/current"))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(current["token"], token);

    let wrong = c
        .post(https(&sim, "/rest/v4/login/sessions"))
        .json(&json!({"username": "admin", "password": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "2", "errorId": "invalidParameter", "errorString": "Wrong password"})
    );

    let unknown = c
        .post(https(&sim, "/rest/v2/login/sessions"))
        .json(&json!({"username": "ghost", "password": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    let malformed = c
        .post(https(&sim, "/rest/v4/login/sessions"))
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);

    // Ending the session makes the token useless.
    let deleted = c
        .delete(https(&sim, &format!("/rest/v4/login/sessions/{token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let after = c
        .get(https(&sim, "/rest/v4/devices"))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_invalidated_tokens_get_wrong_session_token() {
    let sim = start(SimConfig {
        token_lifetime: Duration::ZERO,
        ..SimConfig::default()
    })
    .await;
    let c = client(&sim);
    let token = login(&sim, 4, "admin", "admin").await;
    let resp = c
        .get(https(&sim, "/rest/v4/devices"))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["x-auth-result"], "Auth_WrongSessionToken");
    sim.shutdown().await;

    // A live token stops working after a simulated restart; a new login works.
    let sim = start(SimConfig::default()).await;
    let c = client(&sim);
    let token = login(&sim, 4, "admin", "admin").await;
    let ok = c
        .get(https(&sim, "/rest/v4/devices"))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let invalidate = c
        .post(https(&sim, "/_fake/invalidate-tokens"))
        .send()
        .await
        .unwrap();
    assert_eq!(invalidate.status(), StatusCode::OK);
    let stale = c
        .get(https(&sim, "/rest/v4/devices"))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(stale.headers()["x-auth-result"], "Auth_WrongSessionToken");
    let fresh = login(&sim, 4, "admin", "admin").await;
    let retried = c
        .get(https(&sim, "/rest/v4/devices"))
        .header(AUTHORIZATION, format!("Bearer {fresh}"))
        .send()
        .await
        .unwrap();
    assert_eq!(retried.status(), StatusCode::OK);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_carriers_and_basic_token_fallback() {
    let sim = start(SimConfig::default()).await;
    let c = client(&sim);
    let token = login(&sim, 4, "admin", "admin").await;
    let by_guid = c
        .get(https(&sim, "/rest/v4/devices"))
        .header("X-Runtime-Guid", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(by_guid.status(), StatusCode::OK);
    let by_query = c
        .get(https(
            &sim,
            &format!("/rest/v4/devices?_sessionToken={}", enc(&token)),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(by_query.status(), StatusCode::OK);
    let basic_token = c
        .get(https(&sim, "/rest/v4/devices"))
        .basic_auth("-", Some(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(basic_token.status(), StatusCode::OK);
    sim.shutdown().await;

    // Basic with user "-" is a 6.1 feature: on 6.0 it is an unknown login.
    let sim = start(with_profile(Profile::V60)).await;
    let token = login(&sim, 3, "admin", "admin").await;
    let resp = client(&sim)
        .get(https(&sim, "/rest/v3/devices"))
        .basic_auth("-", Some(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["x-auth-result"], "Auth_WrongLogin");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_4x_has_no_bearer_sessions() {
    let sim = start(with_profile(Profile::V4x)).await;
    let resp = client(&sim)
        .get(https(&sim, "/ec2/getCamerasEx"))
        .header(
            AUTHORIZATION,
            "Bearer vms-0123456789abcdef0123456789abcdef-x",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["x-auth-result"], "Auth_WrongDigest");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_ok_wrong_password_disabled_and_unknown_login() {
    let sim = start(SimConfig::default()).await;
    sim.set_user(SimUser {
        login: "nodigest".into(),
        password: "pw".into(),
        digest_enabled: false,
        generate_events: true,
    });
    let c = client(&sim);
    let uri = "/api/createEvent?caption=AB123CD";
    for with_qop in [true, false] {
        let header = digest_header(&sim, &Method::GET, uri, "Admin", "admin", with_qop).await;
        let resp = c
            .get(https(&sim, uri))
            .header(AUTHORIZATION, header)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "qop {with_qop}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "0");
    }
    let events = sim.events();
    assert_eq!(events.len(), 2);
    assert!(events
        .iter()
        .all(|e| e.auth_method == "digest" && e.user == "admin"));

    let wrong = digest_header(&sim, &Method::GET, uri, "admin", "bad", true).await;
    let resp = c
        .get(https(&sim, uri))
        .header(AUTHORIZATION, wrong)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["x-auth-result"], "Auth_WrongPassword");
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Digest realm=\"VMS\", nonce=\""));
    assert!(challenge.ends_with("algorithm=MD5"));

    let disabled = digest_header(&sim, &Method::GET, uri, "nodigest", "pw", true).await;
    let resp = c
        .get(https(&sim, uri))
        .header(AUTHORIZATION, disabled)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.headers()["x-auth-result"],
        "Auth_DisabledBasicAndDigest"
    );
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("Auth_DisabledBasicAndDigest"));

    let unknown = digest_header(&sim, &Method::GET, uri, "ghost", "pw", true).await;
    let resp = c
        .get(https(&sim, uri))
        .header(AUTHORIZATION, unknown)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-auth-result"], "Auth_WrongLogin");

    // A nonce the server never issued is rejected.
    let forged = format!(
        "Digest username=\"admin\", realm=\"VMS\", nonce=\"deadbeef\", uri=\"{uri}\", response=\"{}\"",
        digest::response(&digest::ha1("admin", "VMS", "admin"), "deadbeef", "GET", uri, None)
    );
    let resp = c
        .get(https(&sim, uri))
        .header(AUTHORIZATION, forged)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["x-auth-result"], "Auth_WrongDigest");
    assert_eq!(sim.events().len(), 2);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_and_missing_credentials() {
    let sim = start(SimConfig::default()).await;
    let c = client(&sim);
    let ok = c
        .get(https(&sim, "/ec2/getCamerasEx"))
        .basic_auth("admin", Some("admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let wrong = c
        .get(https(&sim, "/ec2/getCamerasEx"))
        .basic_auth("admin", Some("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.headers()["x-auth-result"], "Auth_WrongPassword");
    let none = c
        .get(https(&sim, "/api/createEvent?caption=A"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(none.headers()["x-auth-result"], "Auth_WrongDigest");
    assert!(none.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Digest realm=\"VMS\""));
    assert!(sim.events().is_empty());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_auth_key_from_get_nonce() {
    let sim = start(SimConfig::default()).await;
    let c = client(&sim);
    let nonce: Value = c
        .get(https(&sim, "/api/getNonce"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(nonce["reply"]["realm"], "VMS");
    let nonce = nonce["reply"]["nonce"].as_str().unwrap();
    let key = digest::auth_key("admin", "admin", nonce, "POST");
    let resp = c
        .post(https(&sim, &format!("/api/createEvent?auth={}", enc(&key))))
        .json(&json!({"caption": "KEY1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // The key is bound to the method it was made for.
    let resp = c
        .get(https(
            &sim,
            &format!("/api/createEvent?caption=K&auth={}", enc(&key)),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(sim.events().len(), 1);
    assert_eq!(sim.events()[0].auth_method, "urlQueryKey");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_events_permission() {
    let sim = start(SimConfig::default()).await;
    sim.set_user(SimUser {
        login: "viewer".into(),
        password: "pw".into(),
        digest_enabled: true,
        generate_events: false,
    });
    let c = client(&sim);
    let legacy = c
        .post(https(&sim, "/api/createEvent"))
        .basic_auth("viewer", Some("pw"))
        .json(&json!({"caption": "P"}))
        .send()
        .await
        .unwrap();
    assert_eq!(legacy.status(), StatusCode::FORBIDDEN);
    let body: Value = legacy.json().await.unwrap();
    assert_eq!(body["error"], "4");
    assert_eq!(body["errorId"], "forbidden");
    let token = login(&sim, 4, "viewer", "pw").await;
    let v4 = c
        .post(https(&sim, "/rest/v4/events/generic"))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .json(&json!({"caption": "P"}))
        .send()
        .await
        .unwrap();
    assert_eq!(v4.status(), StatusCode::FORBIDDEN);
    let body: Value = v4.json().await.unwrap();
    assert_eq!(body["errorId"], "forbidden");
    assert!(sim.events().is_empty());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_over_plain_http_is_configurable() {
    for (setting, expected) in [
        (BearerOverHttp::Allow, StatusCode::OK),
        (BearerOverHttp::Reject401, StatusCode::UNAUTHORIZED),
        (BearerOverHttp::Reject403, StatusCode::FORBIDDEN),
    ] {
        let sim = start(SimConfig {
            bearer_over_http: setting,
            ..SimConfig::default()
        })
        .await;
        let token = login(&sim, 4, "admin", "admin").await;
        let plain = client(&sim)
            .get(http(&sim, "/rest/v4/devices"))
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(plain.status(), expected, "{setting:?}");
        let secure = client(&sim)
            .get(https(&sim, "/rest/v4/devices"))
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(secure.status(), StatusCode::OK);
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_wrong_logins_get_too_many_attempts() {
    let sim = start(SimConfig::default()).await;
    sim.set_login_lockout(Some(2));
    let c = client(&sim);
    let attempt = |password: &'static str| {
        let c = c.clone();
        let url = https(&sim, "/rest/v4/login/sessions");
        async move {
            c.post(url)
                .json(&json!({"username": "admin", "password": password}))
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        attempt("x").await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        attempt("y").await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let locked = attempt("admin").await;
    assert_eq!(locked.status(), StatusCode::FORBIDDEN);
    let body: Value = locked.json().await.unwrap();
    assert_eq!(body["errorString"], "Too many attempts, try again later");
    sim.set_login_lockout(None);
    assert_eq!(attempt("admin").await.status(), StatusCode::OK);
    sim.shutdown().await;
}
