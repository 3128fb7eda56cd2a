//! The CRM's routes: pages, sign-in and the webhook endpoint.

use axum::extract::{FromRef, Path, Query, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use mno_example_web::{escape, page, PageError, SignIn};
use mno_sdk::connec::{Collection, Record, WriteOptions};
use mno_sdk::webhooks::{IdMapAnswer, Payload, Receiver, Webhook};
use mno_sdk::{Error, Mno};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
    let notice = notice.resolved.map_or_else(String::new, |id| {
        format!(
            "<p class=\"notice\">{} was changed meanwhile; your edit was applied to its latest version.</p>",
            escape(&id)
        )
    });
    let mut rows = String::new();
    for person in state.store.people(&session.org).await? {
        let id = escape(&person.id);
        let (first, last) = (escape(&person.first_name), escape(&person.last_name));
        rows.push_str(&format!(
            "<li><span id=\"{id}\">{first} {last}</span>\
             <form method=\"post\" action=\"/people/{id}\"><input type=\"hidden\" name=\"version\" value=\"{}\">\
             <input type=\"hidden\" name=\"seen_first_name\" value=\"{first}\"><input type=\"hidden\" name=\"seen_last_name\" value=\"{last}\">\
             <input name=\"first_name\" value=\"{first}\"><input name=\"last_name\" value=\"{last}\"><button>Save</button></form>\
             <form method=\"post\" action=\"/people/{id}/delete\"><button>Delete</button></form></li>",
            person.version
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

#[derive(Deserialize)]
struct PersonEdit {
    /// The version the user saw.
    version: u64,
    seen_first_name: String,
    seen_last_name: String,
    first_name: String,
    last_name: String,
}

/// Saves an edit: only the fields the user changed, if the person is still at
/// the version they saw; if they changed meanwhile (409), re-reads them and
/// applies the same changes to their latest version.
async fn edit_person(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<PersonEdit>,
) -> Result<Response, PageError> {
    let Some(session) = state.sign_in.user(&headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let mut patch = Map::new();
    if form.first_name != form.seen_first_name {
        patch.insert("first_name".into(), Value::String(form.first_name));
    }
    if form.last_name != form.seen_last_name {
        patch.insert("last_name".into(), Value::String(form.last_name));
    }
    if patch.is_empty() {
        return Ok(Redirect::to("/").into_response());
    }
    let people = people(&state, &session.org);
    let (record, resolved) = match people
        .update(&id, &patch, &WriteOptions::if_match(form.version))
        .await
    {
        Ok(record) => (record, false),
        Err(Error::StaleVersion { .. }) => {
            let latest = people.get(&id).await?;
            let record = people
                .update(&id, &patch, &WriteOptions::if_match(latest.version))
                .await?;
            (record, true)
        }
        Err(e) => return Err(e.into()),
    };
    save_person(&state, &session.org, &id, record).await?;
    let to = if resolved {
        format!("/?resolved={id}")
    } else {
        "/".to_owned()
    };
    Ok(Redirect::to(&to).into_response())
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
