//! Invitations: the only way into an org besides creating it. An admin
//! invites an email address; whoever holds a session for that address (now, or
//! after signing up) sees the invitation and accepts or declines it. Nothing
//! about the address's account is read or told when inviting. Acceptance
//! makes the member and emits `member_added`; a row lives only while pending.

use serde_json::json;
use sqlx::AnyPool;

use super::orgs::{self, MemberRow};
use super::{is_unique_violation, new_id, now_ms, rfc3339, NewEvent, Store};
use crate::access::Role;
use mno_events::subject::hub_kind;

#[derive(Debug, Clone)]
pub struct InvitationRow {
    pub id: String,
    pub org_id: String,
    pub email: String,
    pub role: Role,
    pub invited_by: String,
    pub created_at: i64,
}

impl InvitationRow {
    /// As the org's admins see it.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "id": self.id,
            "org_id": self.org_id,
            "email": self.email,
            "role": self.role,
            "invited_by": self.invited_by,
            "created_at": rfc3339(self.created_at),
        })
    }
}

/// An invitation as its invitee sees it: which org, which role, from whom.
#[derive(Debug, Clone)]
pub struct Received {
    pub invitation: InvitationRow,
    pub org_name: String,
    pub inviter_name: String,
}

impl Received {
    pub fn to_json(&self) -> serde_json::Value {
        let i = &self.invitation;
        json!({
            "id": i.id,
            "org_id": i.org_id,
            "org_name": self.org_name,
            "role": i.role,
            "invited_by": {"id": i.invited_by, "name": self.inviter_name},
            "created_at": rfc3339(i.created_at),
        })
    }
}

/// Why an invitation change was refused.
#[derive(Debug, thiserror::Error)]
pub enum InvitationError {
    #[error("no such pending invitation")]
    NotFound,
    #[error("already a member")]
    AlreadyMember,
    #[error("already invited")]
    AlreadyInvited,
    #[error("the caller's role may not grant this role")]
    RoleTooHigh,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

type Row = (String, String, String, String, String, i64);
/// A [`Row`] with the org's name and the inviter's name.
type ReceivedRow = (String, String, String, String, String, i64, String, String);

const COLUMNS: &str = "i.id, i.org_id, i.email, i.role, i.invited_by, i.created_at";

fn from_row(row: Row) -> Option<InvitationRow> {
    let (id, org_id, email, role, invited_by, created_at) = row;
    Some(InvitationRow {
        id,
        org_id,
        email,
        role: role.parse().ok()?,
        invited_by,
        created_at,
    })
}

/// Invite `email` (already validated and lower-cased) to `org` as `role`.
/// A member with that email is refused (members are visible to the org's
/// members anyway); whether an account exists otherwise is never looked at.
pub async fn invite(
    store: &Store,
    actor: &str,
    actor_role: Role,
    org: &str,
    email: &str,
    role: Role,
) -> Result<InvitationRow, InvitationError> {
    if !actor_role.can_manage_member_with(role) {
        return Err(InvitationError::RoleTooHigh);
    }
    let mut w = store.begin_write().await?;
    let member: Option<String> = sqlx::query_scalar(
        "SELECT m.user_id FROM hub_members m JOIN hub_users u ON u.id = m.user_id
         WHERE m.org_id = $1 AND u.email = $2",
    )
    .bind(org)
    .bind(email)
    .fetch_optional(&mut *w.tx)
    .await?;
    if member.is_some() {
        return Err(InvitationError::AlreadyMember);
    }
    let invitation = InvitationRow {
        id: new_id(),
        org_id: org.to_owned(),
        email: email.to_owned(),
        role,
        invited_by: actor.to_owned(),
        created_at: now_ms(),
    };
    let inserted = sqlx::query(
        "INSERT INTO hub_invitations (id, org_id, email, role, invited_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&invitation.id)
    .bind(org)
    .bind(email)
    .bind(role.as_str())
    .bind(actor)
    .bind(invitation.created_at)
    .execute(&mut *w.tx)
    .await;
    match inserted {
        Err(e) if is_unique_violation(&e) => return Err(InvitationError::AlreadyInvited),
        other => other?,
    };
    w.commit().await?;
    Ok(invitation)
}

/// The org's pending invitations, oldest first.
pub async fn of_org(pool: &AnyPool, org: &str) -> Result<Vec<InvitationRow>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM hub_invitations i WHERE i.org_id = $1 ORDER BY i.created_at, i.id"
    ))
    .bind(org)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().filter_map(from_row).collect())
}

/// The pending invitations addressed to `email`, oldest first.
pub async fn for_email(pool: &AnyPool, email: &str) -> Result<Vec<Received>, sqlx::Error> {
    let rows: Vec<ReceivedRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS}, o.name, u.name FROM hub_invitations i
             JOIN hub_orgs o ON o.id = i.org_id JOIN hub_users u ON u.id = i.invited_by
             WHERE i.email = $1 ORDER BY i.created_at, i.id"
    ))
    .bind(email)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(a, b, c, d, e, f, org_name, inviter_name)| {
            Some(Received {
                invitation: from_row((a, b, c, d, e, f))?,
                org_name,
                inviter_name,
            })
        })
        .collect())
}

/// Accept invitation `id` addressed to `email` as `user`: the member is made,
/// `member_added` emitted, and the invitation gone, in one transaction.
/// Answers the org and the new member.
pub async fn accept(
    store: &Store,
    id: &str,
    user: &str,
    email: &str,
) -> Result<(String, MemberRow), InvitationError> {
    let mut w = store.begin_write().await?;
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM hub_invitations i WHERE i.id = $1 AND i.email = $2"
    ))
    .bind(id)
    .bind(email)
    .fetch_optional(&mut *w.tx)
    .await?;
    let invitation = row.and_then(from_row).ok_or(InvitationError::NotFound)?;
    delete(&mut w, id).await?;
    if orgs::member_in(&mut w, &invitation.org_id, user)
        .await?
        .is_some()
    {
        // Nothing to add: the invitation is spent all the same.
        w.commit().await?;
        return Err(InvitationError::AlreadyMember);
    }
    orgs::insert_member(&mut w, &invitation.org_id, user, invitation.role).await?;
    let member = orgs::member_in(&mut w, &invitation.org_id, user)
        .await?
        .ok_or(InvitationError::NotFound)?;
    w.emit(
        NewEvent::new(
            &invitation.org_id,
            hub_kind::MEMBER_ADDED,
            ("user", user.to_owned()),
        )
        .user(user)
        .payload(json!({"user_id": user, "role": invitation.role,
                        "invitation_id": invitation.id, "invited_by": invitation.invited_by})),
    )
    .await?;
    w.commit().await?;
    Ok((invitation.org_id, member))
}

/// Decline invitation `id` addressed to `email`.
pub async fn decline(store: &Store, id: &str, email: &str) -> Result<(), InvitationError> {
    let mut w = store.begin_write().await?;
    let gone = sqlx::query("DELETE FROM hub_invitations WHERE id = $1 AND email = $2")
        .bind(id)
        .bind(email)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
    if gone == 0 {
        return Err(InvitationError::NotFound);
    }
    w.commit().await?;
    Ok(())
}

/// Revoke `org`'s pending invitation `id`; the caller has `actor_role`.
pub async fn revoke(
    store: &Store,
    actor_role: Role,
    org: &str,
    id: &str,
) -> Result<(), InvitationError> {
    let mut w = store.begin_write().await?;
    let role: Option<String> =
        sqlx::query_scalar("SELECT role FROM hub_invitations WHERE id = $1 AND org_id = $2")
            .bind(id)
            .bind(org)
            .fetch_optional(&mut *w.tx)
            .await?;
    let role: Role = role
        .and_then(|r| r.parse().ok())
        .ok_or(InvitationError::NotFound)?;
    if !actor_role.can_manage_member_with(role) {
        return Err(InvitationError::RoleTooHigh);
    }
    delete(&mut w, id).await?;
    w.commit().await?;
    Ok(())
}

async fn delete(w: &mut super::WriteTx, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM hub_invitations WHERE id = $1")
        .bind(id)
        .execute(&mut *w.tx)
        .await?;
    Ok(())
}
