//! Whose deliveries a caller may see, asked of the Hub through the [`Idm`]
//! trait (the credential is read by `mno_events::http_auth`, as everywhere).

use std::collections::HashSet;

use mno_events::directory::Directory;
use mno_events::http_auth::decide;
use mno_events::idm::{Action, Credential, Idm, PrincipalKind};
use mno_events::ApiError;

/// The orgs whose deliveries to `app` the caller may see: the app itself, in
/// every org that installed it; an org admin, in that org.
pub async fn visible_orgs(
    idm: &dyn Idm,
    directory: &dyn Directory,
    credential: &Credential,
    app: &str,
) -> Result<HashSet<String>, ApiError> {
    let installs = directory
        .installs_of_app(app)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let mut visible = HashSet::new();
    let mut authenticated = false;
    for install in installs {
        match decide(idm, credential, &install.org, None, Action::Read).await {
            Ok(principal) => {
                authenticated = true;
                let is_the_app = principal.kind == PrincipalKind::App && principal.id == app;
                let is_admin = principal.kind == PrincipalKind::User
                    && matches!(principal.role.as_deref(), Some("admin" | "super_admin"));
                if is_the_app || is_admin {
                    visible.insert(install.org);
                }
            }
            Err(e) if e.status == axum::http::StatusCode::UNAUTHORIZED => return Err(e),
            Err(_) => authenticated = true,
        }
    }
    if visible.is_empty() {
        let detail = format!(
            "app {app} has no deliveries you may see: use the app's own credentials, or those of an admin of an organisation that installed it"
        );
        return Err(if authenticated {
            ApiError::forbidden(detail)
        } else {
            ApiError::not_found(detail)
        });
    }
    Ok(visible)
}
