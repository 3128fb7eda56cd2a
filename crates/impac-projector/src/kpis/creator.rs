//! Who created a KPI, and whether they still read what it watches: a webhook
//! KPI sends an org's figures out of the platform, so its alerts go out only
//! while its creator (a member, or an app installed with data sharing) may
//! still read the widget in every org of the KPI.

use mno_events::idm::{Principal, PrincipalKind};

use super::store::Kpi;
use crate::widgets;
use crate::ImpacState;

/// The creator as stored in `impac_kpis.created_by`.
pub fn recorded(principal: &Principal) -> String {
    match principal.kind {
        PrincipalKind::User => format!("user_id:{}", principal.id),
        PrincipalKind::App => format!("app_id:{}", principal.id),
    }
}

/// A KPI made before creators were recorded by id (`user`, `app:<key>`).
pub fn unrecorded(kpi: &Kpi) -> bool {
    !kpi.created_by.starts_with("user_id:") && !kpi.created_by.starts_with("app_id:")
}

/// Whether the KPI's creator may still read its widget in each of its orgs;
/// `Err` when the Hub could not say. KPIs made before creators were recorded
/// this way (`user`, `app:<key>`) are not checked.
pub async fn still_reads(state: &ImpacState, kpi: &Kpi) -> Result<bool, String> {
    if let Some(user) = kpi.created_by.strip_prefix("user_id:") {
        for org in &kpi.org_ids {
            let role = state
                .directory
                .member_role(org, user)
                .await
                .map_err(|e| e.to_string())?;
            if role.is_none() {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    if let Some(app) = kpi.created_by.strip_prefix("app_id:") {
        let Some(profile) = state.directory.app(app).await.map_err(|e| e.to_string())? else {
            return Ok(false);
        };
        let entities = widgets::entities_of(&kpi.widget);
        let app_reads = entities.iter().all(|entity| {
            profile
                .shared_entities
                .iter()
                .any(|shared| shared.entity == *entity && shared.read)
        });
        let installs = state
            .directory
            .installs_of_app(app)
            .await
            .map_err(|e| e.to_string())?;
        let org_shares = |org: &String| {
            installs.iter().any(|install| {
                &install.org == org && entities.iter().all(|entity| install.shares(entity))
            })
        };
        return Ok(app_reads && kpi.org_ids.iter().all(org_shares));
    }
    Ok(true)
}
