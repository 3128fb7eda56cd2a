//! Dashboards in Impac!: each user keeps their own over an org, with widgets
//! in order; another member sees none of them and cannot read or change them;
//! an app may not keep one; bad widgets are refused pointing at the entry and
//! change nothing.

use mno_e2e::hub_client::{basic_auth, bearer, HubClient};
use mno_e2e::TestPlatform;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const PNL: &str = "accounts/profit_and_loss";
const AGED: &str = "invoices/aged_payables_receivables";

fn widgets(board: &Value) -> Vec<&str> {
    board["widgets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["widget"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_user_keeps_their_own_dashboards_with_widgets_in_order() {
    let platform = TestPlatform::spawn().await;
    let hub = HubClient::new(&platform.base_url);
    let (ann, org, app) = hub
        .org_with_app("ann@example.com", None, &[("invoices", true, true)])
        .await
        .unwrap();
    let (_, bob) = hub.signup_and_login("bob@example.com").await.unwrap();
    hub.add_member(&ann, &org, "bob@example.com", "admin", &bob)
        .await
        .unwrap();
    let (_, eve) = hub.signup_and_login("eve@example.com").await.unwrap();
    let (ann, bob, eve) = (bearer(&ann), bearer(&bob), bearer(&eve));
    let list = format!("/impac/api/v2/dashboards?org_ids[]={org}");

    let board = hub
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/impac/api/v2/dashboards",
            Some(&ann),
            Some(json!({"name": "Finance", "org_ids": [org], "widgets": [{"widget": PNL}, {"widget": AGED}]})),
        )
        .await
        .unwrap();
    assert_eq!(widgets(&board), [PNL, AGED]);
    let one = format!("/impac/api/v2/dashboards/{}", board["id"].as_str().unwrap());

    // Reordered (and renamed) by a PATCH of the list.
    let moved = hub
        .expect(
            StatusCode::OK,
            Method::PATCH,
            &one,
            Some(&ann),
            Some(json!({"name": "Money", "widgets": [{"widget": AGED}, {"widget": PNL}]})),
        )
        .await
        .unwrap();
    assert_eq!(widgets(&moved), [AGED, PNL]);
    assert_eq!(moved["name"], "Money");

    // Bad widgets: 422 at the entry, nothing stored.
    for (bad, pointer) in [
        (json!([{"widget": "accounts/nope"}]), "/widgets/0/widget"),
        (
            json!([{"widget": PNL}, {"widget": PNL}]),
            "/widgets/1/widget",
        ),
        (json!("P&L"), "/widgets"),
    ] {
        let (status, body) = hub
            .call(
                Method::PATCH,
                &one,
                Some(&ann),
                Some(json!({ "widgets": bad })),
            )
            .await
            .unwrap();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["errors"][0]["source"]["pointer"], pointer, "{body}");
    }
    // Names that read otherwise than they show, or show nothing: 422 at /name.
    for bad in ["x\u{202E}gpj.exe", "Board\u{200F}", "\u{200B}\u{200B}"] {
        let (status, body) = hub
            .call(
                Method::PATCH,
                &one,
                Some(&ann),
                Some(json!({ "name": bad })),
            )
            .await
            .unwrap();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}: {body}");
        assert_eq!(body["errors"][0]["source"]["pointer"], "/name", "{body}");
    }
    let kept = hub
        .expect(StatusCode::OK, Method::GET, &one, Some(&ann), None)
        .await
        .unwrap();
    assert_eq!(widgets(&kept), [AGED, PNL]);
    assert_eq!(kept["name"], "Money");

    // Another member of the org sees none of Ann's and cannot touch them.
    let bobs = hub
        .expect(StatusCode::OK, Method::GET, &list, Some(&bob), None)
        .await
        .unwrap();
    assert_eq!(bobs["dashboards"], json!([]));
    for method in [Method::GET, Method::DELETE] {
        let (status, _) = hub.call(method, &one, Some(&bob), None).await.unwrap();
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    // Someone outside the org is refused; an app may not keep dashboards.
    let (status, _) = hub
        .call(Method::GET, &list, Some(&eve), None)
        .await
        .unwrap();
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A body that is not JSON gets the platform's JSON error.
    let response = platform
        .http
        .post(platform.url("/impac/api/v2/dashboards"))
        .header("authorization", &ann)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["errors"][0]["status"], "400", "{error}");
    // Nor does a dashboard's id tell them which org it is over.
    for method in [Method::GET, Method::PATCH, Method::DELETE] {
        let body = (method == Method::PATCH).then(|| json!({"name": "Eve's"}));
        let (status, answer) = hub.call(method, &one, Some(&eve), body).await.unwrap();
        assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
        assert!(!answer.to_string().contains(&org), "{answer}");
    }
    // An app of the org is told that dashboards are people's.
    let (status, answer) = hub
        .call(
            Method::GET,
            &one,
            Some(&basic_auth(&app.key, &app.secret)),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    let (status, body) = hub
        .call(
            Method::POST,
            "/impac/api/v2/dashboards",
            Some(&basic_auth(&app.key, &app.secret)),
            Some(json!({"name": "Bot", "org_ids": [org]})),
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let anns = hub
        .expect(StatusCode::OK, Method::GET, &list, Some(&ann), None)
        .await
        .unwrap();
    assert_eq!(anns["dashboards"].as_array().unwrap().len(), 1);
    hub.expect(
        StatusCode::NO_CONTENT,
        Method::DELETE,
        &one,
        Some(&ann),
        None,
    )
    .await
    .unwrap();
    let anns = hub
        .expect(StatusCode::OK, Method::GET, &list, Some(&ann), None)
        .await
        .unwrap();
    assert_eq!(anns["dashboards"], json!([]));
}
