//! `GET|POST /sso/v1/authorize`: the authorization endpoint and its pages.
//!
//! GET comes from the app (the browser redirected); POST from the Hub's own
//! forms (sign in, choose an organisation), which carry the request along in
//! hidden fields and a CSRF token. Errors about the client or the redirect URI
//! are shown on a page (redirecting to an unverified URI would make the Hub an
//! open redirector); every other error goes back to the app's redirect URI
//! with the standard code and `state` (RFC 6749 §4.1.2.1).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use serde::Deserialize;

use super::claims::{self, OrgClaim};
use super::pages::{PageForm, PageQuery};
use super::store::{self as sso_store, Grant};
use super::{browser, pages, AUTHORIZE_PATH};
use crate::api::users::{authenticate, request_client, start_session};
use crate::api::AppState;
use crate::secrets;
use crate::store::users::{SessionUser, UserRow};
use crate::store::{apps, now_ms};
use crate::validate;

/// The parameters of an authorization request (OIDC Core §3.1.2.1), and the
/// fields of the Hub's forms. Unknown parameters are ignored, as OAuth asks.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[schema(as = AuthorizeForm)]
#[into_params(parameter_in = Query)]
pub struct Params {
    /// `code`.
    response_type: Option<String>,
    /// The app's API key.
    client_id: Option<String>,
    /// One of the app's registered redirect URIs, exactly.
    redirect_uri: Option<String>,
    /// Must hold `openid`; may add `profile` and `email`.
    scope: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
    /// The S256 hash of the PKCE verifier.
    code_challenge: Option<String>,
    /// `S256`.
    code_challenge_method: Option<String>,
    /// `none`, `login`, `consent` or `select_account`.
    prompt: Option<String>,
    /// Seconds: a sign-in older than this is asked again (0: always).
    max_age: Option<String>,
    // The Hub's forms (not parameters an app sends).
    /// The CSRF token of the page the form came from.
    #[param(ignore)]
    csrf: Option<String>,
    /// `signin` or `org`.
    #[param(ignore)]
    action: Option<String>,
    #[param(ignore)]
    email: Option<String>,
    #[param(ignore)]
    password: Option<String>,
    /// The chosen organisation (`action=org`).
    #[param(ignore)]
    org: Option<String>,
}

/// A request whose client and redirect URI are known good.
struct Request {
    app: apps::AppRow,
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: String,
    prompt: Option<String>,
    /// `max_age` (OpenID Connect Core §3.1.2.1): seconds.
    max_age: Option<i64>,
    /// The same, as the form carries it back.
    max_age_text: Option<String>,
}

impl Request {
    /// The fields a form carries to come back here.
    fn hidden(&self) -> Vec<(&'static str, &str)> {
        let mut fields = vec![
            ("response_type", "code"),
            ("client_id", self.client_id.as_str()),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("scope", self.scope.as_str()),
            ("code_challenge", self.code_challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        if let Some(state) = &self.state {
            fields.push(("state", state));
        }
        if let Some(nonce) = &self.nonce {
            fields.push(("nonce", nonce));
        }
        if let Some(max_age) = &self.max_age_text {
            fields.push(("max_age", max_age));
        }
        fields
    }

    /// Whether the session's sign-in is older than `max_age` allows: the
    /// user is then asked for their password again.
    fn too_old(&self, session: &SessionUser) -> bool {
        // 0 always asks, even within the second of the sign-in (OpenID
        // Connect Core: max_age=0 is prompt=login).
        self.max_age.is_some_and(|max_age| {
            max_age == 0 || now_ms() / 1000 - session_auth_time(session) > max_age
        })
    }

    /// Back to the app with `params` (and `state`, and `iss` per RFC 9207).
    fn redirect(&self, issuer: &str, params: &[(&str, &str)]) -> Response {
        let mut url = url::Url::parse(&self.redirect_uri).expect("registered URIs are URLs");
        {
            let mut query = url.query_pairs_mut();
            for (key, value) in params {
                query.append_pair(key, value);
            }
            if let Some(state) = &self.state {
                query.append_pair("state", state);
            }
            query.append_pair("iss", issuer);
        }
        let mut response = Redirect::to(url.as_str()).into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }

    fn error(&self, issuer: &str, code: &str, description: &str) -> Response {
        self.redirect(
            issuer,
            &[("error", code), ("error_description", description)],
        )
    }
}

fn bad_client(detail: &str) -> Response {
    pages::problem(
        StatusCode::BAD_REQUEST,
        "This sign-in link is not valid",
        &format!("{detail} The app that sent you here must fix its sign-in settings; nothing was shared with it."),
    )
}

// The error of a check is the page (or redirect) to answer with.
#[allow(clippy::result_large_err)]
/// Check the client and the redirect URI (errors shown here), then the rest
/// of the request (errors sent back to the app).
async fn check(state: &AppState, params: &Params) -> Result<Request, Response> {
    let Some(client_id) = params.client_id.as_deref().filter(|c| !c.is_empty()) else {
        return Err(bad_client("The request has no client_id."));
    };
    let app = match apps::key_lookup(&state.store.pool, client_id).await {
        Ok(Some((app_id, _))) => apps::get(&state.store.pool, &app_id).await,
        Ok(None) => Ok(None),
        Err(e) => Err(e),
    };
    let app = match app {
        Ok(Some(app)) => app,
        Ok(None) => {
            return Err(bad_client(
                "The client_id is not the API key of an app of this platform (unknown, or expired after a rotation).",
            ))
        }
        Err(e) => return Err(server_error(e)),
    };
    let client = sso_store::client(&state.store.pool, &app.id)
        .await
        .map_err(server_error)?;
    let Some(redirect_uri) = params.redirect_uri.clone() else {
        return Err(bad_client("The request has no redirect_uri."));
    };
    if !client.redirect_uris.contains(&redirect_uri) {
        return Err(bad_client(&format!(
            "The redirect_uri {redirect_uri:?} is not one the app registered (they must match exactly)."
        )));
    }
    // Registered before the present rules: not sent to, whatever it may be read as.
    if let Err(why) = validate::redirect_uri_shape("redirect_uri", &redirect_uri) {
        return Err(bad_client(&format!(
            "The app's registered {why}. Its owner must register it again."
        )));
    }
    // OpenID Connect's max_age: seconds, 0 or more.
    let max_age: Result<Option<i64>, ()> = match params.max_age.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => text
            .parse::<u32>()
            .map(|s| Some(i64::from(s)))
            .map_err(drop),
    };
    let request = Request {
        app,
        client_id: client_id.to_owned(),
        redirect_uri,
        scope: params.scope.clone().unwrap_or_default(),
        state: params.state.clone(),
        nonce: params.nonce.clone(),
        code_challenge: params.code_challenge.clone().unwrap_or_default(),
        prompt: params.prompt.clone(),
        max_age: max_age.unwrap_or(None),
        max_age_text: params.max_age.clone(),
    };
    let issuer = &state.config.sso.issuer;
    let refuse = |code: &str, description: &str| Err(request.error(issuer, code, description));
    match params.response_type.as_deref() {
        Some("code") => {}
        None => return refuse("invalid_request", "response_type is required; use code"),
        Some(_) => {
            return refuse(
                "unsupported_response_type",
                "only the authorization code flow is supported; use response_type=code",
            )
        }
    }
    if !request.scope.split(' ').any(|s| s == "openid") {
        return refuse("invalid_scope", "scope must include openid");
    }
    if request.code_challenge.is_empty() {
        return refuse(
            "invalid_request",
            "PKCE is required: send code_challenge (S256 of the code_verifier) and code_challenge_method=S256",
        );
    }
    if params.code_challenge_method.as_deref() != Some("S256") {
        return refuse(
            "invalid_request",
            "code_challenge_method must be S256 (plain is not accepted)",
        );
    }
    let challenge_ok = request.code_challenge.len() == 43
        && request
            .code_challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !challenge_ok {
        return refuse(
            "invalid_request",
            "code_challenge must be the base64url SHA-256 of the code_verifier (43 characters)",
        );
    }
    if max_age.is_err() {
        return refuse(
            "invalid_request",
            "max_age must be a whole number of seconds (0 or more)",
        );
    }
    match request.prompt.as_deref() {
        None
        | Some("")
        | Some("none")
        | Some("login")
        | Some("consent")
        | Some("select_account") => {}
        Some(_) => {
            return refuse(
                "invalid_request",
                "prompt must be none, login, consent or select_account",
            )
        }
    }
    Ok(request)
}

fn server_error(e: impl std::fmt::Display) -> Response {
    pages::server_error("single sign-on page", e)
}

/// `GET /sso/v1/authorize`: a signed-in browser goes on (to the app, or to
/// the choice of organisation); any other sees the sign-in form.
#[utoipa::path(
    get,
    path = "/sso/v1/authorize",
    tag = "sso",
    params(Params),
    responses(
        (status = 200, description = "A page: the sign-in form, or the choice of organisation", content_type = "text/html", body = String),
        (status = 303, description = "Back to the app's redirect URI with `code` (or `error`), `state` and `iss`", headers(("Location" = String))),
        (status = 400, description = "A page: the client_id or redirect_uri is not valid, so the request cannot go back to the app", content_type = "text/html", body = String),
        (status = 403, description = "A page: none of the user's organisations installed the app", content_type = "text/html", body = String),
    )
)]
pub async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageQuery(params): PageQuery<Params>,
) -> Response {
    let request = match check(&state, &params).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    let session = match browser::session(&state, &headers).await {
        Ok(session) => session,
        Err(e) => return server_error(e),
    };
    let issuer = &state.config.sso.issuer;
    let prompt = request.prompt.as_deref();
    match session {
        Some(session) if request.too_old(&session) && prompt == Some("none") => request.error(
            issuer,
            "login_required",
            "the user signed in to the Hub longer ago than max_age allows",
        ),
        // prompt=login, or a sign-in older than max_age, asks for the
        // password even of a signed-in user.
        Some(session) if prompt != Some("login") && !request.too_old(&session) => {
            go_on(&state, &headers, &request, session, None).await
        }
        None if prompt == Some("none") => request.error(
            issuer,
            "login_required",
            "the user is not signed in to the Hub",
        ),
        _ => sign_in_form(&state, &headers, &request, None).await,
    }
}

/// `POST /sso/v1/authorize`: the sign-in form (`action=signin`) or the choice
/// of organisation (`action=org`).
#[utoipa::path(
    post,
    path = "/sso/v1/authorize",
    tag = "sso",
    request_body(content = Params, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "A page: the choice of organisation", content_type = "text/html", body = String),
        (status = 303, description = "Back to the app's redirect URI with `code` (or `error`), `state` and `iss`", headers(("Location" = String))),
        (status = 400, description = "A page: the form or the request it carries is not valid", content_type = "text/html", body = String),
        (status = 401, description = "The sign-in form again, saying why the sign-in failed", content_type = "text/html", body = String),
        (status = 403, description = "A page: the form did not come from this browser (CSRF), or the organisation chosen is not one the user may sign in with", content_type = "text/html", body = String),
    )
)]
pub async fn submit(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    PageForm(params): PageForm<Params>,
) -> Response {
    match browser::csrf_ok(&state, &headers, params.csrf.as_deref()).await {
        Ok(true) => {}
        Ok(false) => return pages::form_expired("Go back to the app and sign in again."),
        Err(e) => return server_error(e),
    }
    let request = match check(&state, &params).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    match params.action.as_deref() {
        Some("signin") => {
            let email = match validate::email(params.email.as_deref()) {
                Ok(email) => email,
                Err(detail) => {
                    return sign_in_form(&state, &headers, &request, Some(&detail)).await
                }
            };
            let password = params.password.clone().unwrap_or_default();
            let address = request_client(&state, connect, &headers);
            let user = match authenticate(&state, &email, password, address.as_deref()).await {
                Ok(user) => user,
                Err(e) => {
                    let detail = e
                        .errors
                        .first()
                        .map(|e| e.detail.clone())
                        .unwrap_or_default();
                    let mut page = sign_in_form(&state, &headers, &request, Some(&detail)).await;
                    // Too many attempts: 429 with its Retry-After, as the API answers it.
                    if e.status == StatusCode::TOO_MANY_REQUESTS {
                        *page.status_mut() = StatusCode::TOO_MANY_REQUESTS;
                        if let Some(retry_after) = e.retry_after {
                            page.headers_mut()
                                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
                        }
                    }
                    return page;
                }
            };
            let (token, session_id, expires_at) = match start_session(&state, &user).await {
                Ok(started) => started,
                Err(e) => return server_error(format!("{e:?}")),
            };
            let session = SessionUser {
                session_id,
                expires_at,
                user,
            };
            let max_age = (expires_at - now_ms()) / 1000;
            let cookie =
                browser::set_cookie(&state, browser::SESSION_COOKIE, &token, max_age, "Lax");
            go_on(&state, &headers, &request, session, Some(cookie)).await
        }
        Some("org") => {
            let session = match browser::session(&state, &headers).await {
                Ok(Some(session)) => session,
                Ok(None) => {
                    return sign_in_form(
                        &state,
                        &headers,
                        &request,
                        Some("Your Hub session has ended; sign in again."),
                    )
                    .await
                }
                Err(e) => return server_error(e),
            };
            let org = params.org.clone().unwrap_or_default();
            match claims::org_claim(&state.store.pool, &session.user.id, &request.app.id, &org, None).await {
                Ok(Some(org)) => issue_code(&state, &request, &session, &org).await,
                Ok(None) => pages::problem(
                    StatusCode::FORBIDDEN,
                    "Choose another organisation",
                    "You are not a member of that organisation, or it has not installed this app. Go back and choose one of the organisations listed.",
                ),
                Err(e) => server_error(e),
            }
        }
        _ => pages::problem(
            StatusCode::BAD_REQUEST,
            "This form is not complete",
            "The form did not say what to do (action). Go back to the app and sign in again.",
        ),
    }
}

/// A signed-in user: straight to the app with the one eligible org, a choice
/// when there are several, a page saying why when there is none.
async fn go_on(
    state: &AppState,
    headers: &HeaderMap,
    request: &Request,
    session: SessionUser,
    cookie: Option<HeaderValue>,
) -> Response {
    let orgs =
        match claims::eligible_orgs(&state.store.pool, &session.user.id, &request.app.id).await {
            Ok(orgs) => orgs,
            Err(e) => return server_error(e),
        };
    let response = match orgs.as_slice() {
        [] => no_org(&request.app, &session.user),
        [org] => issue_code(state, request, &session, org).await,
        several => choose_org(state, headers, request, several).await,
    };
    browser::with_cookie(response, cookie)
}

async fn issue_code(
    state: &AppState,
    request: &Request,
    session: &SessionUser,
    org: &OrgClaim,
) -> Response {
    let code = secrets::new_opaque_token("mac_");
    let grant = Grant {
        app_id: request.app.id.clone(),
        client_id: request.client_id.clone(),
        user_id: session.user.id.clone(),
        session_id: session.session_id.clone(),
        org_id: org.id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        code_challenge: request.code_challenge.clone(),
        nonce: request.nonce.clone(),
        scope: request.scope.clone(),
        auth_time: session_auth_time(session),
    };
    let ttl = state.config.sso.code_ttl.as_millis() as i64;
    if let Err(e) = sso_store::insert_code(&state.store.pool, &code, &grant, ttl).await {
        return server_error(e);
    }
    request.redirect(&state.config.sso.issuer, &[("code", &code)])
}

/// When the user signed in: the session's start (its end minus its life).
fn session_auth_time(session: &SessionUser) -> i64 {
    // Sessions do not keep their start apart from their id (a UUIDv7, whose
    // first 48 bits are its creation time in milliseconds).
    uuid::Uuid::parse_str(&session.session_id)
        .ok()
        .and_then(|id| id.get_timestamp())
        .map(|ts| {
            let (secs, _) = ts.to_unix();
            secs as i64
        })
        .unwrap_or_else(|| now_ms() / 1000)
}

async fn sign_in_form(
    state: &AppState,
    headers: &HeaderMap,
    request: &Request,
    error: Option<&str>,
) -> Response {
    let (csrf, set) = match browser::csrf_token(state, headers).await {
        Ok(token) => token,
        Err(e) => return server_error(e),
    };
    let mut fields = request.hidden();
    fields.push(("csrf", &csrf));
    fields.push(("action", "signin"));
    let error = error
        .map(|e| format!("<p class=\"error\">{}</p>", pages::escape(e)))
        .unwrap_or_default();
    let body = format!(
        "<p>{app} asks you to sign in with your Hub account.</p>\n{error}\n\
         <form method=\"post\" action=\"{AUTHORIZE_PATH}\">\n{hidden}\n\
         <label for=\"email\">Email</label><input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required>\n\
         <label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\n\
         <button type=\"submit\">Sign in</button>\n</form>",
        app = pages::escape(&request.app.name),
        hidden = pages::hidden(&fields),
    );
    let status = if error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    };
    browser::with_cookie(pages::page(status, "Sign in", &body), set)
}

async fn choose_org(
    state: &AppState,
    headers: &HeaderMap,
    request: &Request,
    orgs: &[OrgClaim],
) -> Response {
    let (csrf, set) = match browser::csrf_token(state, headers).await {
        Ok(token) => token,
        Err(e) => return server_error(e),
    };
    let mut fields = request.hidden();
    fields.push(("csrf", &csrf));
    fields.push(("action", "org"));
    let buttons: Vec<String> = orgs
        .iter()
        .map(|org| {
            format!(
                "<button type=\"submit\" name=\"org\" value=\"{}\">{} (your role: {})</button>",
                pages::escape(&org.id),
                pages::escape(&org.name),
                pages::escape(&org.role)
            )
        })
        .collect();
    let body = format!(
        "<p>You belong to several organisations that use {app}. Which one are you signing in with?</p>\n\
         <form method=\"post\" action=\"{AUTHORIZE_PATH}\">\n{hidden}\n{buttons}\n</form>",
        app = pages::escape(&request.app.name),
        hidden = pages::hidden(&fields),
        buttons = buttons.join("\n"),
    );
    browser::with_cookie(
        pages::page(StatusCode::OK, "Choose an organisation", &body),
        set,
    )
}

fn no_org(app: &apps::AppRow, user: &UserRow) -> Response {
    pages::problem(
        StatusCode::FORBIDDEN,
        "No organisation uses this app",
        &format!(
            "You are signed in as {}, but none of your organisations has installed {}. An admin of your organisation can install it from the marketplace; then sign in again.",
            user.email, app.name
        ),
    )
}
