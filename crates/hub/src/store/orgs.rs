//! Organisations (the tenants) and their members.

use serde_json::json;
use sqlx::AnyPool;

use super::{new_id, now_ms, rfc3339, NewEvent, Store, WriteTx};
use crate::access::Role;
use mno_events::subject::hub_kind;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrgRow {
    pub id: String,
    pub name: String,
    pub currency: String,
    pub timezone: String,
    pub country: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl OrgRow {
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "id": self.id,
            "name": self.name,
            "currency": self.currency,
            "timezone": self.timezone,
            // Stored empty when not given; answered as null.
            "country": (!self.country.is_empty()).then_some(&self.country),
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        })
    }

    /// As [`OrgRow::to_json`], with the caller's role.
    pub fn to_json_with_role(&self, role: Role) -> serde_json::Value {
        let mut value = self.to_json();
        value["role"] = json!(role.as_str());
        value
    }
}

/// The editable fields of an org, already validated.
#[derive(Debug, Clone, Default)]
pub struct OrgFields {
    pub name: Option<String>,
    pub currency: Option<String>,
    pub timezone: Option<String>,
    pub country: Option<String>,
}

/// An org row followed by a member's role.
type OrgAndRole = (String, String, String, String, String, i64, i64, String);

const ORG_COLUMNS: &str = "id, name, currency, timezone, country, created_at, updated_at";

/// Create an org whose creator is its first super_admin.
pub async fn create(
    store: &Store,
    creator: &str,
    name: &str,
    currency: &str,
    timezone: &str,
    country: &str,
) -> Result<OrgRow, sqlx::Error> {
    let now = now_ms();
    let org = OrgRow {
        id: new_id(),
        name: name.to_owned(),
        currency: currency.to_owned(),
        timezone: timezone.to_owned(),
        country: country.to_owned(),
        created_at: now,
        updated_at: now,
    };
    let mut w = store.begin_write().await?;
    sqlx::query(
        "INSERT INTO hub_orgs (id, name, currency, timezone, country, created_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(&org.id)
    .bind(&org.name)
    .bind(&org.currency)
    .bind(&org.timezone)
    .bind(&org.country)
    .bind(creator)
    .bind(now)
    .execute(&mut *w.tx)
    .await?;
    insert_member(&mut w, &org.id, creator, Role::SuperAdmin).await?;
    w.emit(
        NewEvent::new(&org.id, hub_kind::ORG_CREATED, ("user", creator.to_owned()))
            .user(creator)
            .payload(org.to_json()),
    )
    .await?;
    w.emit(
        NewEvent::new(
            &org.id,
            hub_kind::MEMBER_ADDED,
            ("user", creator.to_owned()),
        )
        .user(creator)
        .payload(json!({"user_id": creator, "role": Role::SuperAdmin})),
    )
    .await?;
    w.commit().await?;
    Ok(org)
}

pub(super) async fn insert_member(
    w: &mut WriteTx,
    org: &str,
    user: &str,
    role: Role,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO hub_members (org_id, user_id, role, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)",
    )
    .bind(org)
    .bind(user)
    .bind(role.as_str())
    .bind(now)
    .execute(&mut *w.tx)
    .await?;
    Ok(())
}

pub async fn get(pool: &AnyPool, org: &str) -> Result<Option<OrgRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {ORG_COLUMNS} FROM hub_orgs WHERE id = $1"))
        .bind(org)
        .fetch_optional(pool)
        .await
}

/// The orgs `user` belongs to, with the user's role, oldest first.
pub async fn of_user(pool: &AnyPool, user: &str) -> Result<Vec<(OrgRow, Role)>, sqlx::Error> {
    let rows: Vec<OrgAndRole> = sqlx::query_as(
        "SELECT o.id, o.name, o.currency, o.timezone, o.country, o.created_at, o.updated_at, m.role
         FROM hub_orgs o JOIN hub_members m ON m.org_id = o.id
         WHERE m.user_id = $1 ORDER BY o.created_at, o.id",
    )
    .bind(user)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(
            |(id, name, currency, timezone, country, created_at, updated_at, role)| {
                let role = role.parse().ok()?;
                Some((
                    OrgRow {
                        id,
                        name,
                        currency,
                        timezone,
                        country,
                        created_at,
                        updated_at,
                    },
                    role,
                ))
            },
        )
        .collect())
}

/// Apply the given fields; `None` if the org does not exist.
pub async fn update(
    store: &Store,
    actor: &str,
    org: &str,
    fields: &OrgFields,
) -> Result<Option<OrgRow>, sqlx::Error> {
    let mut w = store.begin_write().await?;
    let Some(mut row): Option<OrgRow> =
        sqlx::query_as(&format!("SELECT {ORG_COLUMNS} FROM hub_orgs WHERE id = $1"))
            .bind(org)
            .fetch_optional(&mut *w.tx)
            .await?
    else {
        return Ok(None);
    };
    let mut changed = Vec::new();
    for (field, value, target) in [
        ("name", &fields.name, &mut row.name),
        ("currency", &fields.currency, &mut row.currency),
        ("timezone", &fields.timezone, &mut row.timezone),
        ("country", &fields.country, &mut row.country),
    ] {
        if let Some(value) = value {
            if value != target {
                *target = value.clone();
                changed.push(field);
            }
        }
    }
    if changed.is_empty() {
        return Ok(Some(row));
    }
    row.updated_at = now_ms();
    sqlx::query(
        "UPDATE hub_orgs SET name = $1, currency = $2, timezone = $3, country = $4, updated_at = $5 WHERE id = $6",
    )
    .bind(&row.name)
    .bind(&row.currency)
    .bind(&row.timezone)
    .bind(&row.country)
    .bind(row.updated_at)
    .bind(org)
    .execute(&mut *w.tx)
    .await?;
    let mut payload = row.to_json();
    payload["changed_fields"] = json!(changed);
    w.emit(NewEvent::new(org, hub_kind::ORG_UPDATED, ("user", actor.to_owned())).payload(payload))
        .await?;
    w.commit().await?;
    Ok(Some(row))
}

/// The role of `user` in `org`, if a member.
pub async fn role_of(pool: &AnyPool, org: &str, user: &str) -> Result<Option<Role>, sqlx::Error> {
    let role: Option<String> =
        sqlx::query_scalar("SELECT role FROM hub_members WHERE org_id = $1 AND user_id = $2")
            .bind(org)
            .bind(user)
            .fetch_optional(pool)
            .await?;
    Ok(role.and_then(|r| r.parse().ok()))
}

#[derive(Debug, Clone)]
pub struct MemberRow {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub created_at: i64,
}

impl MemberRow {
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "user_id": self.user_id,
            "email": self.email,
            "name": self.name,
            "role": self.role,
            "added_at": rfc3339(self.created_at),
        })
    }
}

const MEMBER_SELECT: &str = "SELECT m.user_id, u.email, u.name, m.role, m.created_at
     FROM hub_members m JOIN hub_users u ON u.id = m.user_id";

fn member_from(row: (String, String, String, String, i64)) -> Option<MemberRow> {
    let (user_id, email, name, role, created_at) = row;
    Some(MemberRow {
        user_id,
        email,
        name,
        role: role.parse().ok()?,
        created_at,
    })
}

pub async fn members(pool: &AnyPool, org: &str) -> Result<Vec<MemberRow>, sqlx::Error> {
    let rows: Vec<(String, String, String, String, i64)> = sqlx::query_as(&format!(
        "{MEMBER_SELECT} WHERE m.org_id = $1 ORDER BY m.created_at, m.user_id"
    ))
    .bind(org)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().filter_map(member_from).collect())
}

pub(super) async fn member_in(
    w: &mut WriteTx,
    org: &str,
    user: &str,
) -> Result<Option<MemberRow>, sqlx::Error> {
    let row: Option<(String, String, String, String, i64)> = sqlx::query_as(&format!(
        "{MEMBER_SELECT} WHERE m.org_id = $1 AND m.user_id = $2"
    ))
    .bind(org)
    .bind(user)
    .fetch_optional(&mut *w.tx)
    .await?;
    Ok(row.and_then(member_from))
}

async fn super_admins(w: &mut WriteTx, org: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM hub_members WHERE org_id = $1 AND role = 'super_admin'",
    )
    .bind(org)
    .fetch_one(&mut *w.tx)
    .await
}

/// Why a member change was refused.
#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    #[error("not a member")]
    NotAMember,
    #[error("the caller's role may not manage this member or role")]
    RoleTooHigh,
    #[error("the org would have no super_admin left")]
    LastSuperAdmin,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Change a member's role, keeping at least one super_admin.
pub async fn set_role(
    store: &Store,
    actor: &str,
    actor_role: Role,
    org: &str,
    user: &str,
    role: Role,
) -> Result<MemberRow, MemberError> {
    let mut w = store.begin_write().await?;
    let mut member = member_in(&mut w, org, user)
        .await?
        .ok_or(MemberError::NotAMember)?;
    if !actor_role.can_manage_member_with(member.role) || !actor_role.can_manage_member_with(role) {
        return Err(MemberError::RoleTooHigh);
    }
    if member.role == role {
        return Ok(member);
    }
    if member.role == Role::SuperAdmin && super_admins(&mut w, org).await? <= 1 {
        return Err(MemberError::LastSuperAdmin);
    }
    sqlx::query(
        "UPDATE hub_members SET role = $1, updated_at = $2 WHERE org_id = $3 AND user_id = $4",
    )
    .bind(role.as_str())
    .bind(now_ms())
    .bind(org)
    .bind(user)
    .execute(&mut *w.tx)
    .await?;
    let previous = member.role;
    member.role = role;
    w.emit(
        NewEvent::new(org, hub_kind::MEMBER_UPDATED, ("user", actor.to_owned()))
            .user(user)
            .payload(json!({"user_id": user, "role": role, "previous_role": previous})),
    )
    .await?;
    w.commit().await?;
    Ok(member)
}

/// Remove a member, keeping at least one super_admin. A member may always leave
/// (remove themselves) unless they are the last super_admin.
pub async fn remove_member(
    store: &Store,
    actor: &str,
    actor_role: Role,
    org: &str,
    user: &str,
) -> Result<(), MemberError> {
    let mut w = store.begin_write().await?;
    let member = member_in(&mut w, org, user)
        .await?
        .ok_or(MemberError::NotAMember)?;
    if actor != user && !actor_role.can_manage_member_with(member.role) {
        return Err(MemberError::RoleTooHigh);
    }
    if member.role == Role::SuperAdmin && super_admins(&mut w, org).await? <= 1 {
        return Err(MemberError::LastSuperAdmin);
    }
    sqlx::query("DELETE FROM hub_members WHERE org_id = $1 AND user_id = $2")
        .bind(org)
        .bind(user)
        .execute(&mut *w.tx)
        .await?;
    w.emit(
        NewEvent::new(org, hub_kind::MEMBER_REMOVED, ("user", actor.to_owned()))
            .user(user)
            .payload(json!({"user_id": user, "role": member.role})),
    )
    .await?;
    w.commit().await?;
    Ok(())
}
