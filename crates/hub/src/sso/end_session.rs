//! `GET|POST /sso/v1/end_session` (OpenID Connect RP-Initiated Logout 1.0).
//!
//! With an `id_token_hint` the app proves which session to end, and it ends at
//! once. Without one, the browser's user confirms on a form (CSRF-safe), so a
//! third-party page cannot sign anyone out. Either way the Hub session is
//! revoked, which tells the apps that registered a back-channel logout URI.
//! `post_logout_redirect_uri` must be one the app registered, exactly.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::claims::{self, IdClaims};
use super::pages::{PageForm, PageQuery};
use super::store as sso_store;
use super::{browser, pages, END_SESSION_PATH};
use crate::api::AppState;
use crate::store::{apps, users};

/// The parameters of a logout request (RP-Initiated Logout 1.0), and the
/// fields of the confirmation form.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[schema(as = EndSessionForm)]
#[into_params(parameter_in = Query)]
pub struct Params {
    /// An ID token of the session to end: with it, the session ends at once.
    id_token_hint: Option<String>,
    /// One of the app's registered post-logout URIs, exactly.
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
    client_id: Option<String>,
    /// The CSRF token of the confirmation page (the form only).
    #[param(ignore)]
    csrf: Option<String>,
}

/// Where to go once signed out: the app's registered URI (with `state`), or
/// the Hub's own page.
struct After {
    redirect: Option<String>,
}

fn server_error(e: impl std::fmt::Display) -> Response {
    pages::server_error("end-session request", e)
}

fn bad(detail: &str) -> Response {
    pages::problem(
        StatusCode::BAD_REQUEST,
        "This sign-out link is not valid",
        detail,
    )
}

// The error of a check is the page to answer with.
#[allow(clippy::result_large_err)]
/// Check the hint and the post-logout URI.
async fn check(state: &AppState, params: &Params) -> Result<(Option<IdClaims>, After), Response> {
    let pool = &state.store.pool;
    let hint = match params.id_token_hint.as_deref().filter(|h| !h.is_empty()) {
        None => None,
        Some(token) => match claims::verify_hint(pool, &state.config.sso.issuer, token).await {
            Ok(Some(claims)) => Some(claims),
            Ok(None) => {
                return Err(bad(
                    "The id_token_hint is not an ID token this platform signed.",
                ))
            }
            Err(e) => return Err(server_error(e)),
        },
    };
    let client_id = match (&hint, params.client_id.as_deref().filter(|c| !c.is_empty())) {
        (Some(hint), Some(id)) if hint.aud != id => {
            return Err(bad(
                "The client_id is not the audience of the id_token_hint.",
            ))
        }
        (Some(hint), _) => Some(hint.aud.clone()),
        (None, id) => id.map(str::to_owned),
    };
    let Some(uri) = params
        .post_logout_redirect_uri
        .clone()
        .filter(|u| !u.is_empty())
    else {
        return Ok((hint, After { redirect: None }));
    };
    let Some(client_id) = client_id else {
        return Err(bad(
            "A post_logout_redirect_uri needs the id_token_hint or the client_id of the app.",
        ));
    };
    let app = match apps::key_lookup(pool, &client_id).await {
        Ok(Some((app, _))) => app,
        Ok(None) => {
            return Err(bad(
                "The client_id is not the API key of an app of this platform.",
            ))
        }
        Err(e) => return Err(server_error(e)),
    };
    let client = sso_store::client(pool, &app).await.map_err(server_error)?;
    if !client.post_logout_redirect_uris.contains(&uri) {
        return Err(bad(&format!(
            "The post_logout_redirect_uri {uri:?} is not one the app registered (they must match exactly)."
        )));
    }
    // Registered before the present rules: not sent to, whatever it may be read as.
    if let Err(why) = crate::validate::redirect_uri_shape("post_logout_redirect_uri", &uri) {
        return Err(bad(&format!(
            "The app's registered {why}. Its owner must register it again."
        )));
    }
    let mut url =
        url::Url::parse(&uri).map_err(|_| bad("The post_logout_redirect_uri is not a URL."))?;
    if let Some(state) = &params.state {
        url.query_pairs_mut().append_pair("state", state);
    }
    Ok((
        hint,
        After {
            redirect: Some(url.into()),
        },
    ))
}

fn signed_out(state: &AppState, after: After) -> Response {
    let mut response = match after.redirect {
        Some(url) => Redirect::to(&url).into_response(),
        None => pages::page(
            StatusCode::OK,
            "Signed out",
            "<p>You are signed out of the Hub and of the apps you signed in to with it.</p>",
        ),
    };
    response.headers_mut().append(
        header::SET_COOKIE,
        browser::set_cookie(state, browser::SESSION_COOKIE, "", 0, "Lax"),
    );
    response
}

async fn revoke(state: &AppState, session_id: &str) -> Result<(), sqlx::Error> {
    if let Some((user, true)) = sso_store::session_owner(&state.store.pool, session_id).await? {
        users::revoke_session(&state.store, session_id, &user).await?;
    }
    Ok(())
}

/// GET: with a valid hint, sign out now; without, ask the user to confirm.
#[utoipa::path(
    get,
    path = "/sso/v1/end_session",
    tag = "sso",
    params(Params),
    responses(
        (status = 200, description = "A page: the confirmation form (no hint), or signed out", content_type = "text/html", body = String),
        (status = 303, description = "Signed out; back to the post-logout URI with `state`", headers(("Location" = String))),
        (status = 400, description = "A page: the hint or the post-logout URI is not valid", content_type = "text/html", body = String),
    )
)]
pub async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageQuery(params): PageQuery<Params>,
) -> Response {
    let (hint, after) = match check(&state, &params).await {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    if let Some(hint) = hint {
        if let Err(e) = revoke(&state, &hint.sid).await {
            return server_error(e);
        }
        return signed_out(&state, after);
    }
    let (csrf, set) = match browser::csrf_token(&state, &headers).await {
        Ok(token) => token,
        Err(e) => return server_error(e),
    };
    let mut fields = vec![("csrf", csrf.as_str())];
    for (name, value) in [
        ("post_logout_redirect_uri", &params.post_logout_redirect_uri),
        ("state", &params.state),
        ("client_id", &params.client_id),
    ] {
        if let Some(value) = value {
            fields.push((name, value));
        }
    }
    let body = format!(
        "<p>Sign out of the Hub, and of the apps you signed in to with it?</p>\n\
         <form method=\"post\" action=\"{END_SESSION_PATH}\">\n{}\n<button type=\"submit\">Sign out</button>\n</form>",
        pages::hidden(&fields)
    );
    browser::with_cookie(pages::page(StatusCode::OK, "Sign out", &body), set)
}

/// POST: the confirmation form, which ends the browser's Hub session; or an
/// app's POST with `id_token_hint`, which ends the hinted session as the GET does.
#[utoipa::path(
    post,
    path = "/sso/v1/end_session",
    tag = "sso",
    request_body(content = Params, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "A page: signed out", content_type = "text/html", body = String),
        (status = 303, description = "Signed out; back to the post-logout URI with `state`", headers(("Location" = String))),
        (status = 400, description = "A page: the form, the hint or the post-logout URI is not valid", content_type = "text/html", body = String),
        (status = 403, description = "A page: the form did not come from this browser (CSRF); nothing changed", content_type = "text/html", body = String),
    )
)]
pub async fn confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(params): PageForm<Params>,
) -> Response {
    let from_our_form = match browser::csrf_ok(&state, &headers, params.csrf.as_deref()).await {
        Ok(ours) => ours,
        Err(e) => return server_error(e),
    };
    if !from_our_form && params.id_token_hint.is_none() {
        return pages::form_expired("Nothing was changed.");
    }
    let (hint, after) = match check(&state, &params).await {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    if !from_our_form {
        // An app's POST (RP-Initiated Logout allows POST as well as GET): as
        // the GET, the hint's own session ends, never the browser's other one.
        let Some(hint) = hint else {
            return pages::form_expired("Nothing was changed.");
        };
        if let Err(e) = revoke(&state, &hint.sid).await {
            return server_error(e);
        }
        return signed_out(&state, after);
    }
    let session = match browser::session(&state, &headers).await {
        Ok(session) => session,
        Err(e) => return server_error(e),
    };
    let sids = session
        .map(|s| s.session_id)
        .into_iter()
        .chain(hint.map(|h| h.sid));
    for sid in sids {
        if let Err(e) = revoke(&state, &sid).await {
            return server_error(e);
        }
    }
    signed_out(&state, after)
}
