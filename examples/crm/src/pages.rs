//! The CRM's routes: pages, sign-in and the webhook endpoint.

use axum::extract::{FromRef, Path, Query, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use mno_example_web::{
    after_edit, escape, name_row, page, resolved_notice, NameEdit, PageError, SignIn,
};
use mno_sdk::connec::{Collection, Record, WriteOptions};
use mno_sdk::webhooks::{IdMapAnswer, Payload, Receiver, Webhook};
use mno_sdk::Mno;
use serde::{Deserialize, Serialize};

use crate::store::{Person, Store};

#[derive(Clone)]
pub struct AppState {
    pub mno: Mno,
    pub sign_in: SignIn,
    pub receiver: Receiver,
    pub store: Store,
    pub app_id: String,
}

impl FromRef<AppState> for Receiver {
    fn from_ref(state: &AppState) -> Receiver {
        state.receiver.clone()
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/people", post(add_person))
        .route("/people/{id}", post(edit_person))
        .route("/people/{id}/delete", post(delete_person))
        .route("/login", get(login))
        .route("/auth/callback", get(callback))
        .route("/logout", get(logout))
        .route("/mno", post(webhook))
        .with_state(state)
}

/// A person's fields as Connec! shares them.
#[derive(Debug, Serialize, Deserialize)]
struct PersonFields {
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
}

#[derive(Deserialize)]
struct Notice {
    resolved: Option<String>,
}

async fn home(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(notice): Query<Notice>,
) -> Result<Response, PageError> {
    let Some(session) = state.sign_in.user(&headers).await? else {
        let body = "<p>Signed out.</p><p><a href=\"/login\">Sign in with Mno</a></p>";
        return Ok(Html(page("CRM", body)).into_response());
    };
    let notice = notice
        .resolved
        .map_or_else(String::new, |id| resolved_notice(&id));
    let mut rows = String::new();
    for p in state.store.people(&session.org).await? {
        let action = format!("/people/{}", p.id);
        rows.push_str(&name_row(
            &action,
            &p.id,
            p.version,
            &p.first_name,
            &p.last_name,
        ));
    }
    let body = format!(
        "<p>Signed in as {} ({}). <a href=\"/logout\">Sign out</a></p>{notice}<h2>People</h2><ul>{rows}</ul>\
         <form method=\"post\" action=\"/people\"><input name=\"first_name\" placeholder=\"First name\">\
         <input name=\"last_name\" placeholder=\"Last name\"><button>Add</button></form>",
        escape(&session.user_name),
        escape(&session.org_name)
    );
    Ok(Html(page("CRM", &body)).into_response())
}

#[derive(Deserialize)]
struct NewPerson {
    first_name: String,
    last_name: String,
}

/// Adds a person: shared through Connec! under the CRM's id, then kept locally.
async fn add_person(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<NewPerson>,
) -> Result<Response, PageError> {
    let Some(session) = state.sign_in.user(&headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let id = state.store.next_id().await?;
    let fields = PersonFields {
        first_name: form.first_name,
        last_name: form.last_name,
    };
    let record = people(&state, &session.org).create(&id, &fields).await?;
    save_person(&state, &session.org, &id, record).await?;
    Ok(Redirect::to("/").into_response())
}

fn people(state: &AppState, org: &str) -> Collection<PersonFields> {
    state.mno.connec().collection(org, "people")
}

async fn save_person(
    state: &AppState,
    org: &str,
    id: &str,
    record: Record<PersonFields>,
) -> Result<(), PageError> {
    state
        .store
        .upsert_person(&Person {
            id: id.to_owned(),
            org: org.to_owned(),
            first_name: record.fields.first_name,
            last_name: record.fields.last_name,
            version: record.version as i64,
        })
        .await?;
    Ok(())
}

/// Saves an edit (see `NameEdit::save`).
async fn edit_person(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(edit): Form<NameEdit>,
) -> Result<Response, PageError> {
    let Some(session) = state.sign_in.user(&headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let Some((record, resolved)) = edit.save(&people(&state, &session.org), &id).await? else {
        return Ok(Redirect::to("/").into_response());
    };
    save_person(&state, &session.org, &id, record).await?;
    Ok(after_edit(&id, resolved).into_response())
}

/// Deletes a person everywhere: in Connec!, then here.
async fn delete_person(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let Some(session) = state.sign_in.user(&headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    people(&state, &session.org)
        .delete(&id, &WriteOptions::default())
        .await?;
    state.store.delete_person(&id).await?;
    Ok(Redirect::to("/").into_response())
}

async fn login(State(state): State<AppState>) -> Result<Response, PageError> {
    Ok(state.sign_in.login().await?)
}

async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    Ok(state.sign_in.callback(&headers, query.as_deref()).await?)
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, PageError> {
    Ok(state.sign_in.logout(&headers).await?)
}

/// Changes of people made by other apps: stored under the CRM's id (a new
/// one for a record it has not seen), and the new ids told in the answer.
async fn webhook(
    State(state): State<AppState>,
    webhook: Webhook,
) -> Result<IdMapAnswer, PageError> {
    let mut answer = IdMapAnswer::new();
    if let Payload::Records(delivery) = webhook.payload() {
        for (entity, record) in delivery.records().filter(|(e, _)| *e == "people") {
            let known = record.id.local_id(&state.app_id).map(str::to_owned);
            if record.is_delete() {
                if let Some(id) = known {
                    state.store.delete_person(&id).await?;
                }
                continue;
            }
            let id = match known {
                Some(id) => id,
                None => {
                    let id = state.store.next_id().await?;
                    if let Some(global) = record.id.connec_id() {
                        answer = answer.map(entity, global, &id);
                    }
                    id
                }
            };
            let fields: PersonFields = record.parse()?;
            state
                .store
                .upsert_person(&Person {
                    id,
                    org: record.group_id.clone(),
                    first_name: fields.first_name,
                    last_name: fields.last_name,
                    version: record.version as i64,
                })
                .await?;
        }
    }
    webhook.done().await;
    Ok(answer)
}
