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

mno_harness::on_both_databases!(TestPlatform; adding_by_email_invites_and_only_the_invitee_makes_a_member,);

/// `member_added` rows in the Hub's outbox (written with the change itself).
async fn member_added_events(platform: &TestPlatform) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM hub_outbox WHERE kind = 'member_added'")
        .fetch_one(&platform.running().db)
        .await
        .unwrap()
}

/// The status of `GET /hub/v1/orgs/{org}` for the signed-in user `token`: 200 for a member.
async fn org_status(hub: &HubClient, org: &str, token: &str) -> StatusCode {
    let path = format!("/hub/v1/orgs/{org}");
    hub.call(Method::GET, &path, Some(&bearer(token)), None)
        .await
        .unwrap()
        .0
}

/// `GET /hub/v1/invitations` for the signed-in user `token`: the list.
async fn received(hub: &HubClient, token: &str) -> Value {
    let (status, body) = hub
        .call(
            Method::GET,
            "/hub/v1/invitations",
            Some(&bearer(token)),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body["invitations"].clone()
}

/// `POST /hub/v1/invitations/{id}/{action}` as `token`: the status.
async fn answer(hub: &HubClient, token: &str, id: &str, action: &str) -> StatusCode {
    let path = format!("/hub/v1/invitations/{id}/{action}");
    hub.call(Method::POST, &path, Some(&bearer(token)), None)
        .await
        .unwrap()
        .0
}

/// Invite `email` again as `auth`, which must be refused with 409: its code.
async fn refused_invitation(hub: &HubClient, org: &str, auth: &str, email: &str) -> Value {
    let path = format!("/hub/v1/orgs/{org}/invitations");
    let body = json!({"email": email, "role": "member"});
    let (status, answer) = hub
        .call(Method::POST, &path, Some(auth), Some(body))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    answer["errors"][0]["code"].clone()
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
    assert_eq!(
        org_status(&hub, &org, &bob_token).await,
        StatusCode::FORBIDDEN
    );
    // Inviting the same address twice is refused.
    assert_eq!(
        refused_invitation(&hub, &org, &owner_auth, "bob@example.com").await,
        "already_invited"
    );

    // Bob sees his invitation; Eve sees none and cannot take Bob's.
    let mine = received(&hub, &bob_token).await;
    assert_eq!(mine.as_array().map(Vec::len), Some(1), "{mine}");
    assert_eq!(mine[0]["org_id"], org.as_str());
    assert_eq!(mine[0]["org_name"], "Acme");
    assert_eq!(mine[0]["role"], "power_user");
    assert_eq!(mine[0]["invited_by"]["id"], owner.id.as_str());
    let bob_invitation = mine[0]["id"].as_str().unwrap().to_owned();
    let eves = received(&hub, &eve_token).await;
    assert_eq!(eves, json!([]));
    for action in ["accept", "decline"] {
        let status = answer(&hub, &eve_token, &bob_invitation, action).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "eve {action}");
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
    assert_eq!(org_status(&hub, &org, &bob_token).await, StatusCode::OK);
    // Spent: accepting again finds nothing.
    assert_eq!(
        answer(&hub, &bob_token, &bob_invitation, "accept").await,
        StatusCode::NOT_FOUND
    );
    // A member is not invited again.
    assert_eq!(
        refused_invitation(&hub, &org, &owner_auth, "bob@example.com").await,
        "already_member"
    );

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
    let ghosts = received(&hub, &ghost_token).await;
    assert_eq!(ghosts[0]["id"], ghost_invitation.as_str());
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
    assert_eq!(
        answer(&hub, &ghost_token, &ghost_invitation, "accept").await,
        StatusCode::NOT_FOUND
    );

    // Declining: no member, the invitation gone.
    let eve_invitation = hub
        .invite(&owner_token, &org, "eve@example.com", "member")
        .await?;
    assert_eq!(
        answer(&hub, &eve_token, &eve_invitation, "decline").await,
        StatusCode::NO_CONTENT
    );
    let (_, pending) = hub
        .call(Method::GET, &pending_path, Some(&owner_auth), None)
        .await?;
    assert_eq!(pending["invitations"], json!([]));
    assert_eq!(
        org_status(&hub, &org, &eve_token).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(member_added_events(platform).await, members_before + 1);
    Ok(())
}

#[tokio::test]
async fn sign_ups_for_taken_emails_are_limited_per_email_and_per_address() -> Result<()> {
    let platform = TestPlatform::spawn().await;
    let hub = HubClient::new(&platform.base_url);
    hub.signup("ann@example.com", TEST_PASSWORD, "Ann").await?;

    // Five probes of one taken email (from anywhere), then it answers 429.
    for i in 0..5 {
        let address = ["198.51.100.1", "198.51.100.2"][i % 2];
        let r = platform.signup_from("ann@example.com", address).await;
        assert_eq!(r.status(), StatusCode::CONFLICT, "probe {i}");
    }
    let limited = platform
        .signup_from("ann@example.com", "198.51.100.3")
        .await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key("retry-after"));
    let body: Value = limited.json().await?;
    assert_eq!(body["errors"][0]["code"], "rate_limited");
    // Ann herself still signs in: sign-up probes do not lock her out.
    hub.login("ann@example.com", TEST_PASSWORD).await?;

    // Twenty taken emails probed from one address lock that address only.
    // (Their accounts are made from addresses of their own: the accounts made
    // from one address are limited too.)
    for i in 0..20 {
        let made = platform
            .signup_from(
                &format!("user{i}@example.com"),
                &format!("192.0.2.{}", 100 + i),
            )
            .await;
        assert_eq!(made.status(), StatusCode::CREATED, "account {i}");
        let r = platform
            .signup_from(&format!("user{i}@example.com"), "203.0.113.9")
            .await;
        assert_eq!(r.status(), StatusCode::CONFLICT, "probe {i}");
    }
    let from_prober = platform.signup_from("new@example.com", "203.0.113.9").await;
    assert_eq!(from_prober.status(), StatusCode::TOO_MANY_REQUESTS);
    let from_elsewhere = platform.signup_from("new@example.com", "192.0.2.44").await;
    assert_eq!(from_elsewhere.status(), StatusCode::CREATED);
    Ok(())
}
