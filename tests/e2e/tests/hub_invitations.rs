//! Joining an org takes the invitee's consent: adding by email makes an
//! invitation that tells the inviter nothing about the address (the same
//! answer whether or not it has an account); the invited user sees it and
//! accepts or declines; an address without an account finds it after signing
//! up; admins list and revoke pending ones; `member_added` comes on acceptance.
//! Sign-ups refused for a taken email are limited as failed sign-ins are.

use anyhow::Result;
use mno_e2e::hub_client::{bearer, HubClient, TEST_PASSWORD};
use mno_e2e::TestPlatform;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

mno_e2e::on_both_databases!(adding_by_email_invites_and_only_the_invitee_makes_a_member,);

/// `member_added` rows in the Hub's outbox (written with the change itself).
async fn member_added_events(platform: &TestPlatform) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM hub_outbox WHERE kind = 'member_added'")
        .fetch_one(&platform.running().db)
        .await
        .unwrap()
}

/// An invitation answer without what differs between any two invitations.
fn shape(invitation: &Value) -> Value {
    let mut shape = invitation.clone();
    for field in ["id", "email", "created_at"] {
        shape[field] = json!("-");
    }
    shape
}

async fn adding_by_email_invites_and_only_the_invitee_makes_a_member(
    platform: &TestPlatform,
) -> Result<()> {
    let hub = HubClient::new(&platform.base_url);
    let (owner, owner_token) = hub.signup_and_login("owner@example.com").await?;
    let (bob, bob_token) = hub.signup_and_login("bob@example.com").await?;
    let (_, eve_token) = hub.signup_and_login("eve@example.com").await?;
    let org = hub.create_org(&owner_token, "Acme", "USD").await?;
    let owner_auth = bearer(&owner_token);
    let members_before = member_added_events(platform).await;

    // An account and no account get the same answer, naming neither user.
    let (status, to_bob) = hub
        .call(
            Method::POST,
            &format!("/hub/v1/orgs/{org}/members"),
            Some(&owner_auth),
            Some(json!({"email": "bob@example.com", "role": "power_user"})),
        )
        .await?;
    assert_eq!(status, StatusCode::CREATED, "{to_bob}");
    let (status, to_ghost) = hub
        .call(
            Method::POST,
            &format!("/hub/v1/orgs/{org}/invitations"),
            Some(&owner_auth),
            Some(json!({"email": "ghost@example.com", "role": "power_user"})),
        )
        .await?;
    assert_eq!(status, StatusCode::CREATED, "{to_ghost}");
    assert_eq!(shape(&to_bob), shape(&to_ghost));
    let text = to_bob.to_string();
    assert!(
        !text.contains(&bob.id) && !text.contains("\"name\""),
        "discloses the invitee: {text}"
    );
    assert_eq!(
        member_added_events(platform).await,
        members_before,
        "no member yet"
    );
    // Not a member until accepted: Bob still may not see the org.
    let (status, _) = hub
        .call(
            Method::GET,
            &format!("/hub/v1/orgs/{org}"),
            Some(&bearer(&bob_token)),
            None,
        )
        .await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Inviting the same address twice is refused.
    let (status, again) = hub
        .call(
            Method::POST,
            &format!("/hub/v1/orgs/{org}/invitations"),
            Some(&owner_auth),
            Some(json!({"email": "bob@example.com", "role": "member"})),
        )
        .await?;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    assert_eq!(again["errors"][0]["code"], "already_invited");

    // Bob sees his invitation; Eve sees none and cannot take Bob's.
    let (_, mine) = hub
        .call(
            Method::GET,
            "/hub/v1/invitations",
            Some(&bearer(&bob_token)),
            None,
        )
        .await?;
    let received = mine["invitations"].as_array().unwrap();
    assert_eq!(received.len(), 1, "{mine}");
    assert_eq!(received[0]["org_id"], org.as_str());
    assert_eq!(received[0]["org_name"], "Acme");
    assert_eq!(received[0]["role"], "power_user");
    assert_eq!(received[0]["invited_by"]["id"], owner.id.as_str());
    let bob_invitation = received[0]["id"].as_str().unwrap().to_owned();
    let (_, eves) = hub
        .call(
            Method::GET,
            "/hub/v1/invitations",
            Some(&bearer(&eve_token)),
            None,
        )
        .await?;
    assert_eq!(eves["invitations"], json!([]));
    for action in ["accept", "decline"] {
        let (status, body) = hub
            .call(
                Method::POST,
                &format!("/hub/v1/invitations/{bob_invitation}/{action}"),
                Some(&bearer(&eve_token)),
                None,
            )
            .await?;
        assert_eq!(status, StatusCode::NOT_FOUND, "eve {action}: {body}");
    }

    // Bob accepts: a power_user now, and `member_added` is written with it.
    let (status, member) = hub
        .call(
            Method::POST,
            &format!("/hub/v1/invitations/{bob_invitation}/accept"),
            Some(&bearer(&bob_token)),
            None,
        )
        .await?;
    assert_eq!(status, StatusCode::CREATED, "{member}");
    assert_eq!(member["user_id"], bob.id.as_str());
    assert_eq!(member["role"], "power_user");
    assert_eq!(member["org_id"], org.as_str());
    assert_eq!(member_added_events(platform).await, members_before + 1);
    let (status, _) = hub
        .call(
            Method::GET,
            &format!("/hub/v1/orgs/{org}"),
            Some(&bearer(&bob_token)),
            None,
        )
        .await?;
    assert_eq!(status, StatusCode::OK);
    // Spent: accepting again finds nothing.
    let (status, _) = hub
        .call(
            Method::POST,
            &format!("/hub/v1/invitations/{bob_invitation}/accept"),
            Some(&bearer(&bob_token)),
            None,
        )
        .await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A member is not invited again.
    let (status, body) = hub
        .call(
            Method::POST,
            &format!("/hub/v1/orgs/{org}/invitations"),
            Some(&owner_auth),
            Some(json!({"email": "bob@example.com", "role": "member"})),
        )
        .await?;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["errors"][0]["code"], "already_member");

    // Admins list the pending ones; a power_user may not.
    let pending_path = format!("/hub/v1/orgs/{org}/invitations");
    let (status, _) = hub
        .call(Method::GET, &pending_path, Some(&bearer(&bob_token)), None)
        .await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, pending) = hub
        .call(Method::GET, &pending_path, Some(&owner_auth), None)
        .await?;
    let pending = pending["invitations"].as_array().unwrap().clone();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0]["email"], "ghost@example.com");
    let ghost_invitation = pending[0]["id"].as_str().unwrap().to_owned();

    // The address with no account: the invitation waits for the sign-up.
    let (_, ghost_token) = hub.signup_and_login("ghost@example.com").await?;
    let (_, ghosts) = hub
        .call(
            Method::GET,
            "/hub/v1/invitations",
            Some(&bearer(&ghost_token)),
            None,
        )
        .await?;
    assert_eq!(ghosts["invitations"][0]["id"], ghost_invitation.as_str());
    // Revoked by an admin, it is gone for the invitee too.
    let (status, _) = hub
        .call(
            Method::DELETE,
            &format!("{pending_path}/{ghost_invitation}"),
            Some(&owner_auth),
            None,
        )
        .await?;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = hub
        .call(
            Method::POST,
            &format!("/hub/v1/invitations/{ghost_invitation}/accept"),
            Some(&bearer(&ghost_token)),
            None,
        )
        .await?;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Declining: no member, the invitation gone.
    let eve_invitation = hub
        .invite(&owner_token, &org, "eve@example.com", "member")
        .await?;
    let (status, _) = hub
        .call(
            Method::POST,
            &format!("/hub/v1/invitations/{eve_invitation}/decline"),
            Some(&bearer(&eve_token)),
            None,
        )
        .await?;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, pending) = hub
        .call(Method::GET, &pending_path, Some(&owner_auth), None)
        .await?;
    assert_eq!(pending["invitations"], json!([]));
    let (status, _) = hub
        .call(
            Method::GET,
            &format!("/hub/v1/orgs/{org}"),
            Some(&bearer(&eve_token)),
            None,
        )
        .await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(member_added_events(platform).await, members_before + 1);
    Ok(())
}

#[tokio::test]
async fn sign_ups_for_taken_emails_are_limited_per_email_and_per_address() -> Result<()> {
    let platform = TestPlatform::spawn().await;
    let signup_from = |email: String, address: &'static str| {
        let request = platform
            .http
            .post(platform.url("/hub/v1/users"))
            .header("x-forwarded-for", address)
            .json(&json!({"email": email, "password": TEST_PASSWORD, "name": "Probe"}));
        async move { request.send().await.unwrap() }
    };
    let hub = HubClient::new(&platform.base_url);
    hub.signup("ann@example.com", TEST_PASSWORD, "Ann").await?;

    // Five probes of one taken email (from anywhere), then it answers 429.
    for i in 0..5 {
        let address = ["198.51.100.1", "198.51.100.2"][i % 2];
        let r = signup_from("ann@example.com".into(), address).await;
        assert_eq!(r.status(), StatusCode::CONFLICT, "probe {i}");
    }
    let limited = signup_from("ann@example.com".into(), "198.51.100.3").await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key("retry-after"));
    let body: Value = limited.json().await?;
    assert_eq!(body["errors"][0]["code"], "rate_limited");
    // Ann herself still signs in: sign-up probes do not lock her out.
    hub.login("ann@example.com", TEST_PASSWORD).await?;

    // Twenty taken emails probed from one address lock that address only.
    for i in 0..20 {
        hub.signup(&format!("user{i}@example.com"), TEST_PASSWORD, "U")
            .await?;
        let r = signup_from(format!("user{i}@example.com"), "203.0.113.9").await;
        assert_eq!(r.status(), StatusCode::CONFLICT, "probe {i}");
    }
    let from_prober = signup_from("new@example.com".into(), "203.0.113.9").await;
    assert_eq!(from_prober.status(), StatusCode::TOO_MANY_REQUESTS);
    let from_elsewhere = signup_from("new@example.com".into(), "192.0.2.44").await;
    assert_eq!(from_elsewhere.status(), StatusCode::CREATED);
    Ok(())
}
