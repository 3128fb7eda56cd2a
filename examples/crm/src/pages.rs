//! The CRM's routes: pages, sign-in and the webhook endpoint.

use axum::extract::{FromRef, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use mno_example_web::{
    after_edit, escape, name_row, page, record_row, resolved_notice, PageError, RecordEdit,
    Session, SignIn,
};
use mno_sdk::connec::{Collection, Ids, Record, WriteOptions};
use mno_sdk::webhooks::{IdMapAnswer, Payload, Receiver, Webhook};
use mno_sdk::Mno;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::records::{OpportunityFields, OrganizationFields, PersonFields, Stored};
use crate::store::{Kind, Store};
use crate::sync;

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

impl FromRef<AppState> for SignIn {
    fn from_ref(state: &AppState) -> SignIn {
        state.sign_in.clone()
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/people", post(add_person))
        .route("/organizations", post(add_organization))
        .route("/opportunities", post(add_opportunity))
        // `{entity}` is one of the three above.
        .route("/{entity}/{id}", post(edit))
        .route("/{entity}/{id}/delete", post(delete))
        .merge(SignIn::routes())
        .route("/mno", post(webhook))
        .with_state(state)
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
    let mut people = String::new();
    for p in state.store.people(&session.org).await? {
        let action = format!("/people/{}", p.id);
        people.push_str(&name_row(
            &action,
            &p.id,
            p.version,
            &p.first_name,
            &p.last_name,
        ));
    }
    let organizations = state.store.organizations(&session.org).await?;
    let mut companies = String::new();
    let mut choices = String::from("<option value=\"\">No organization</option>");
    for o in &organizations {
        let action = format!("/organizations/{}", o.id);
        companies.push_str(&record_row(
            &action,
            &o.id,
            o.version,
            &o.name,
            &[("name", o.name.as_str())],
        ));
        choices.push_str(&format!(
            "<option value=\"{}\">{}</option>",
            escape(&o.id),
            escape(&o.name)
        ));
    }
    let mut deals = String::new();
    for d in state.store.opportunities(&session.org).await? {
        let with = d
            .organization_id
            .as_deref()
            .and_then(|id| organizations.iter().find(|o| o.id == id))
            .map_or_else(String::new, |o| format!(", with {}", o.name));
        let label = format!(
            "{}: {} {}, {}{with}",
            d.name, d.amount, d.currency, d.sales_stage
        );
        let action = format!("/opportunities/{}", d.id);
        deals.push_str(&record_row(
            &action,
            &d.id,
            d.version,
            &label,
            &[
                ("name", d.name.as_str()),
                ("amount", d.amount.as_str()),
                ("sales_stage", d.sales_stage.as_str()),
            ],
        ));
    }
    let body = format!(
        "<p>Signed in as {} ({}). <a href=\"/logout\">Sign out</a></p>{notice}\
         <h2>People</h2><ul>{people}</ul>\
         <form method=\"post\" action=\"/people\"><input name=\"first_name\" placeholder=\"First name\">\
         <input name=\"last_name\" placeholder=\"Last name\"><button>Add</button></form>\
         <h2>Organizations</h2><ul>{companies}</ul>\
         <form method=\"post\" action=\"/organizations\"><input name=\"name\" placeholder=\"Name\">\
         <button>Add</button></form>\
         <h2>Opportunities</h2><ul>{deals}</ul>\
         <form method=\"post\" action=\"/opportunities\"><input name=\"name\" placeholder=\"Name\">\
         <input name=\"amount\" placeholder=\"Amount ({currency})\"><input name=\"sales_stage\" placeholder=\"Sales stage\">\
         <select name=\"organization_id\">{choices}</select><button>Add</button></form>",
        escape(&session.user_name),
        escape(&session.org_name),
        currency = escape(&session.org_currency),
    );
    Ok(Html(page("CRM", &body)).into_response())
}

/// A record of the CRM's in Connec!, in the org the user signed in with.
fn collection(state: &AppState, org: &str, kind: Kind) -> Collection<Value> {
    state.mno.connec().collection(org, kind.entity())
}

/// Keeps `record`, as Connec! answered a write of it, under the CRM's `id`.
async fn keep(
    state: &AppState,
    kind: Kind,
    id: &str,
    record: Record<Value>,
) -> Result<(), PageError> {
    let stored = Stored {
        id,
        org: &record.group_id,
        version: record.version,
    };
    sync::keep(&state.store, &state.app_id, kind, &stored, record.fields).await?;
    Ok(())
}

/// Adds a record: shared through Connec! under a new CRM id, then kept here.
async fn add(
    state: &AppState,
    session: &Session,
    kind: Kind,
    fields: impl Serialize,
) -> Result<Response, PageError> {
    let id = state.store.next_id(kind).await?;
    let fields = serde_json::to_value(fields)?;
    let record = collection(state, &session.org, kind)
        .create(&id, &fields)
        .await?;
    keep(state, kind, &id, record).await?;
    Ok(Redirect::to("/").into_response())
}

async fn add_person(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<PersonFields>,
) -> Result<Response, PageError> {
    let Some(session) = state.sign_in.user(&headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    add(&state, &session, Kind::People, form).await
}

async fn add_organization(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<OrganizationFields>,
) -> Result<Response, PageError> {
    let Some(session) = state.sign_in.user(&headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    add(&state, &session, Kind::Organizations, form).await
}

/// The add-opportunity form: blanks mean "not given".
#[derive(Deserialize)]
struct NewOpportunity {
    name: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    sales_stage: String,
    #[serde(default)]
    organization_id: String,
}

/// Adds an opportunity in the org's currency; its amount and stage feed
/// Impac!'s sales pipeline.
async fn add_opportunity(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<NewOpportunity>,
) -> Result<Response, PageError> {
    let Some(session) = state.sign_in.user(&headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let given = |text: String| (!text.trim().is_empty()).then(|| text.trim().to_owned());
    let fields = OpportunityFields {
        name: form.name,
        amount: given(form.amount),
        currency: Some(session.org_currency.clone()),
        sales_stage: given(form.sales_stage),
        organization_id: given(form.organization_id).map(|id| Ids::local(&id)),
    };
    add(&state, &session, Kind::Opportunities, fields).await
}

fn not_found() -> Response {
    let body = "<p>No such page. <a href=\"/\">Back</a></p>";
    (StatusCode::NOT_FOUND, Html(page("CRM", body))).into_response()
}

/// Saves an edit of a person, organization or opportunity (see `RecordEdit::save`).
async fn edit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((entity, id)): Path<(String, String)>,
    Form(edit): Form<RecordEdit>,
) -> Result<Response, PageError> {
    let Some(kind) = Kind::of_entity(&entity) else {
        return Ok(not_found());
    };
    let Some(session) = state.sign_in.user(&headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let records = collection(&state, &session.org, kind);
    let Some((record, resolved)) = edit.save(&records, &id).await? else {
        return Ok(Redirect::to("/").into_response());
    };
    keep(&state, kind, &id, record).await?;
    Ok(after_edit(&id, resolved).into_response())
}

/// Deletes a record everywhere: in Connec!, then here.
async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((entity, id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let Some(kind) = Kind::of_entity(&entity) else {
        return Ok(not_found());
    };
    let Some(session) = state.sign_in.user(&headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    collection(&state, &session.org, kind)
        .delete(&id, &WriteOptions::default())
        .await?;
    state.store.delete(kind, &id).await?;
    Ok(Redirect::to("/").into_response())
}

/// Records created or changed by other apps (see `sync::apply`).
async fn webhook(
    State(state): State<AppState>,
    webhook: Webhook,
) -> Result<IdMapAnswer, PageError> {
    let mut answer = IdMapAnswer::new();
    if let Payload::Records(delivery) = webhook.payload() {
        for (entity, record) in delivery.records() {
            answer = sync::apply(&state.store, &state.app_id, entity, record, answer).await?;
        }
    }
    webhook.done().await;
    Ok(answer)
}
