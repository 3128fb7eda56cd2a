//! The Impac! dashboard: the user's dashboards over an organisation (kept by
//! Impac!, `/impac/api/v2/dashboards`), their widgets drawn as charts and
//! tables, the period, currency and organisation pickers, KPIs with their
//! alerts, CSV export, and live refresh over server-sent events.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, RawQuery, State};
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::{Datelike, NaiveDate, Utc};
use futures::StreamExt;
use maud::{html, Markup};
use serde_json::{json, Value};

use super::back_to;
use super::widgets::{self, DEFAULT_WIDGETS};
use crate::api::{enc, ApiFailure};
use crate::error::PageError;
use crate::forms::{self, Field, FormData};
use crate::layout::{self, Chrome};
use crate::pages::confirm::{self, Confirm};
use crate::session::Session;
use crate::PortalState;

/// The pickers' values: what every widget of the page is computed with.
#[derive(Debug, Clone)]
struct View {
    currency: String,
    from: String,
    to: String,
    period: String,
}

const PERIODS: &[&str] = &["DAILY", "WEEKLY", "MONTHLY", "QUARTERLY", "YEARLY"];

impl View {
    /// From the page's query; by default the last twelve months by month, in the org's currency.
    fn from_query(raw: Option<&str>, org_currency: &str) -> View {
        let query: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        let today = Utc::now().date_naive();
        let year_ago = NaiveDate::from_ymd_opt(today.year() - 1, today.month(), 1)
            .and_then(|d| d.checked_add_months(chrono::Months::new(1)))
            .unwrap_or(today);
        let pick = |name: &str, default: String| {
            query
                .get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .unwrap_or(default)
        };
        View {
            currency: pick("currency", org_currency.to_owned()).to_uppercase(),
            from: pick("from", year_ago.to_string()),
            to: pick("to", today.to_string()),
            period: pick("period", "MONTHLY".into()).to_uppercase(),
        }
    }

    /// The same view as a query string for the portal's own links.
    fn query(&self) -> String {
        format!(
            "currency={}&from={}&to={}&period={}",
            enc(&self.currency),
            enc(&self.from),
            enc(&self.to),
            enc(&self.period)
        )
    }

    /// Impac!'s parameters for a widget over `org`.
    fn impac_query(&self, org: &str) -> String {
        format!("org_ids[]={}&{}", enc(org), self.query())
    }
}

fn dashboards_path(org: &str) -> String {
    format!("/impac/api/v2/dashboards?org_ids[]={}", enc(org))
}

/// `/o/{org}/dashboard`: the user's first dashboard, made with the usual widgets when they have none.
pub async fn first(
    State(state): State<PortalState>,
    session: Session,
    Path(org): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let api = &state.api;
    let list = api
        .get(session.auth(), &dashboards_path(&org))
        .await
        .map_err(|e| PageError::from_api(e, &session.here))?;
    let id = match list["dashboards"].get(0).and_then(|d| d["id"].as_str()) {
        Some(id) => id.to_owned(),
        None => {
            let widgets: Vec<Value> = DEFAULT_WIDGETS
                .iter()
                .map(|w| json!({"widget": w}))
                .collect();
            let made = api
                .post(
                    session.auth(),
                    "/impac/api/v2/dashboards",
                    &json!({"name": "Overview", "org_ids": [org], "widgets": widgets}),
                )
                .await
                .map_err(|e| PageError::from_api(e, &session.here))?;
            made["id"].as_str().unwrap_or_default().to_owned()
        }
    };
    let query = raw.map(|q| format!("?{q}")).unwrap_or_default();
    Ok(Redirect::to(&format!("/o/{org}/dashboards/{id}{query}")).into_response())
}

/// The dashboard page.
pub async fn page(
    State(state): State<PortalState>,
    session: Session,
    Path((org, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    render(
        &state,
        &session,
        &org,
        &id,
        raw.as_deref(),
        &FormData::new(),
        None,
    )
    .await
}

async fn render(
    state: &PortalState,
    session: &Session,
    org: &str,
    id: &str,
    raw: Option<&str>,
    kpi_form: &FormData,
    kpi_failure: Option<&ApiFailure>,
) -> Result<Response, PageError> {
    let chrome = Chrome::load(state, session, Some(org), "dashboard").await?;
    let org_currency = chrome
        .current()
        .and_then(|o| o["currency"].as_str())
        .unwrap_or("USD")
        .to_owned();
    let view = View::from_query(raw, &org_currency);
    let api = &state.api;
    let here = &session.here;
    let fail = |e: ApiFailure| PageError::from_api(e, here);
    let dashboards = api
        .get(session.auth(), &dashboards_path(org))
        .await
        .map_err(fail)?;
    let dashboard = api
        .get(
            session.auth(),
            &format!("/impac/api/v2/dashboards/{}", enc(id)),
        )
        .await
        .map_err(fail)?;
    let catalogue = api
        .get(session.auth(), "/impac/api/v2/widgets")
        .await
        .map_err(fail)?;
    let kpis = api
        .get(
            session.auth(),
            &format!("/impac/api/v2/kpis?org_ids[]={}", enc(org)),
        )
        .await
        .map_err(fail)?;
    let alerts = api
        .get(
            session.auth(),
            &format!("/impac/api/v2/alerts?org_ids[]={}", enc(org)),
        )
        .await
        .map_err(fail)?;
    let on_board: Vec<String> = dashboard["widgets"]
        .as_array()
        .map(|ws| {
            ws.iter()
                .filter_map(|w| w["widget"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let all_widgets: Vec<String> = catalogue["widgets"]
        .as_array()
        .map(|ws| {
            ws.iter()
                .filter_map(|w| w.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let base = format!("/o/{org}/dashboards/{id}");
    let body = html! {
        form.filters method="get" action=(base) aria-label="Report settings" {
            (Field::new("from", "From").kind("date").value(&view.from).render(None))
            (Field::new("to", "To").kind("date").value(&view.to).render(None))
            div.field {
                label for="f-period" { "Period" }
                select #f-period name="period" {
                    @for p in PERIODS { option value=(p) selected[view.period == *p] { (p.to_lowercase()) } }
                }
            }
            (Field::new("currency", "Currency").value(&view.currency).render(None))
            button type="submit" { "Apply" }
        }
        div.tabs {
            span { "Dashboards:" }
            @for d in dashboards["dashboards"].as_array().into_iter().flatten() {
                @let did = d["id"].as_str().unwrap_or_default();
                a href={ "/o/" (org) "/dashboards/" (did) "?" (view.query()) } aria-current=[(did == id).then_some("page")] {
                    (d["name"].as_str().unwrap_or_default())
                }
            }
            form.inline method="post" action={ "/o/" (org) "/dashboards" } {
                (forms::csrf(&session.csrf))
                label for="new-dashboard" { "New dashboard" }
                input #new-dashboard name="name" required placeholder="Name";
                button.secondary type="submit" { "Create" }
            }
            (confirm::link(&format!("{base}/delete"), "Delete this dashboard", None))
        }
        // portal.js says here when the live connection is refused or lost, and when it is back.
        p.live #live-status role="status" { "Live: figures refresh by themselves when records change." }
        div.widgets hx-ext="sse" sse-connect={ "/o/" (org) "/live" } {
            @for (i, widget) in on_board.iter().enumerate() {
                (widget_frame(org, &base, &session.csrf, &view, i, on_board.len(), widget))
            }
        }
        @if on_board.is_empty() { p.notice { "This dashboard has no widgets yet: add one below." } }
        form.inline method="post" action={ (base) "/widgets" } {
            (forms::csrf(&session.csrf))
            label for="add-widget" { "Add a widget" }
            select #add-widget name="widget" {
                @for w in all_widgets.iter().filter(|w| !on_board.contains(w)) {
                    option value=(w) { (widgets::title(w)) " (" (w) ")" }
                }
            }
            button.secondary type="submit" { "Add" }
        }
        (kpi_section(org, &session.csrf, &view, &all_widgets, &kpis, &alerts, kpi_form, kpi_failure, id))
    };
    let title = format!(
        "{} · {}",
        dashboard["name"].as_str().unwrap_or("Dashboard"),
        chrome
            .current()
            .and_then(|o| o["name"].as_str())
            .unwrap_or_default()
    );
    Ok(layout::page(&title, &chrome, body).into_response())
}

/// One widget's frame: its figures load (and reload on every live change) from the fragment route.
fn widget_frame(
    org: &str,
    base: &str,
    csrf: &str,
    view: &View,
    index: usize,
    count: usize,
    widget: &str,
) -> Markup {
    let (category, name) = widget.split_once('/').unwrap_or((widget, ""));
    let fragment = format!("/o/{org}/widget/{category}/{name}?{}", view.query());
    let csv = format!("/o/{org}/widget/{category}/{name}.csv?{}", view.query());
    let dom_id = format!("widget-{}", widget.replace('/', "-"));
    html! {
        section.widget id=(dom_id) aria-labelledby={ (dom_id) "-title" } {
            header {
                h2 id={ (dom_id) "-title" } { (widgets::title(widget)) }
                div.inline {
                    a href=(csv) download { "CSV" }
                    @if index > 0 { (move_button(base, csrf, index, -1, widget)) }
                    @if index + 1 < count { (move_button(base, csrf, index, 1, widget)) }
                    (confirm::link(&format!("{base}/widgets/{index}/remove"), "✕", Some(&format!("Remove {}", widgets::title(widget)))))
                }
            }
            // Not a live region: every change redraws every widget, and a screen
            // reader would read them all out each time. The page's one
            // #live-status says when figures last changed.
            div.figures hx-get=(fragment) hx-trigger="load, sse:change" hx-swap="innerHTML" {
                p.hint { "Loading…" }
            }
        }
    }
}

/// A button that moves the widget at `index` up (`by` -1) or down (1).
fn move_button(base: &str, csrf: &str, index: usize, by: i8, widget: &str) -> Markup {
    let (arrow, way) = if by < 0 {
        ("↑", "up")
    } else {
        ("↓", "down")
    };
    html! {
        form.inline method="post" action={ (base) "/widgets/" (index) "/move" } {
            (forms::csrf(csrf)) input type="hidden" name="by" value=(by);
            button.secondary type="submit" aria-label={ "Move " (widgets::title(widget)) " " (way) } { (arrow) }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn kpi_section(
    org: &str,
    csrf: &str,
    view: &View,
    all_widgets: &[String],
    kpis: &Value,
    alerts: &Value,
    form: &FormData,
    failure: Option<&ApiFailure>,
    dashboard: &str,
) -> Markup {
    let chosen = match forms::value(form, "widget") {
        "" => "accounts/profit_and_loss",
        w => w,
    };
    html! {
        h2 id="kpis" { "KPIs" }
        @let kpis = kpis["kpis"].as_array().cloned().unwrap_or_default();
        @if kpis.is_empty() { p.hint { "No KPI watches this organisation yet." } }
        @else {
            table {
                thead { tr { th scope="col" { "Widget" } th scope="col" { "Value" } th scope="col" { "Target" } th scope="col" { "State" } th scope="col" { span.skip { "Actions" } } } }
                tbody {
                    @for k in &kpis {
                        tr {
                            td { (kpi_title(k)) }
                            td.num { (k["value"].as_str().and_then(widgets::money).unwrap_or_else(|| k["value"].to_string())) }
                            td { @if let Some(min) = k["target"]["min"].as_str() { "min " (min) " " } @if let Some(max) = k["target"]["max"].as_str() { "max " (max) } }
                            td { @if k["breached"].as_bool() == Some(true) { span.breached { "outside target" } } @else { span.ok { "on target" } } }
                            td {
                                (confirm::link(
                                    &format!("/o/{org}/kpis/{}/delete?dashboard={}", enc(k["id"].as_str().unwrap_or_default()), enc(dashboard)),
                                    "Delete",
                                    Some(&format!("Delete the KPI on {}", kpi_title(k))),
                                ))
                            }
                        }
                    }
                }
            }
        }
        @let alerts = alerts["alerts"].as_array().cloned().unwrap_or_default();
        h2 { "Alerts" }
        @if alerts.is_empty() { p.hint { "No alert raised." } }
        @else {
            ul {
                @for a in alerts.iter().take(20) {
                    li { (a["raised_at"].as_str().unwrap_or_default()) ": " (widgets::title(a["widget"].as_str().unwrap_or_default())) " · "
                         (a["element"].as_str().unwrap_or_default()) " was " (a["value"].as_str().unwrap_or_default()) }
                }
            }
        }
        h3 { "Watch a figure" }
        @if let Some(f) = failure { (layout::problems(f.others(&["widget", "element", "target/min", "target/max"]))) }
        form method="post" action={ "/o/" (org) "/kpis" } {
            (forms::csrf(csrf))
            input type="hidden" name="dashboard" value=(dashboard);
            input type="hidden" name="view" value=(view.query());
            div.field {
                label for="f-widget" { "Widget" }
                select #f-widget name="widget" {
                    @for w in all_widgets { option value=(w) selected[w == chosen] { (widgets::title(w)) " (" (w) ")" } }
                }
            }
            (Field::new("element", "Figure (path in the widget, as in its CSV)").value(match forms::value(form, "element") { "" => "totals.revenue", e => e }).render(failure))
            (Field::new("target/min", "Alert below").value(forms::value(form, "target/min")).optional().render(failure))
            (Field::new("target/max", "Alert above").value(forms::value(form, "target/max")).optional().render(failure))
            button type="submit" { "Create KPI" }
        }
    }
}

/// `/o/{org}/widget/{category}/{name}[.csv]`: a widget's figures as an HTML
/// fragment for htmx, or its CSV as a download.
pub async fn widget(
    State(state): State<PortalState>,
    session: Session,
    Path((org, category, name)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let view = View::from_query(raw.as_deref(), "USD");
    if let Some(name) = name.strip_suffix(".csv") {
        let path = format!(
            "/impac/api/v2/widgets/{}/{}.csv?{}",
            enc(&category),
            enc(name),
            view.impac_query(&org)
        );
        let (_, body) = state
            .api
            .get_text(session.auth(), &path)
            .await
            .map_err(|e| PageError::from_api(e, &session.here))?;
        let file = format!("attachment; filename=\"{category}-{name}.csv\"")
            .replace(|c: char| !c.is_ascii_graphic() && c != ' ', "_");
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (header::CONTENT_DISPOSITION, file),
            ],
            body,
        )
            .into_response());
    }
    let path = format!(
        "/impac/api/v2/widgets/{}/{}?{}",
        enc(&category),
        enc(&name),
        view.impac_query(&org)
    );
    let fragment = match state.api.get(session.auth(), &path).await {
        Ok(answer) => html! {
            p.hint { (answer["currency"].as_str().unwrap_or_default()) ", " (view.from) " to " (view.to) }
            (widgets::render(&answer["content"]))
        },
        Err(e) if e.status == axum::http::StatusCode::UNAUTHORIZED => {
            // htmx follows this header with a full page load: sign in, then back to the dashboard.
            let target = crate::error::signin_url(&format!("/o/{org}/dashboard"));
            return Ok(([("HX-Redirect", target)], "").into_response());
        }
        Err(e) => layout::failed(&e),
    };
    Ok(fragment.into_response())
}

/// `/o/{org}/live`: a `change` event each time a record of the org changes,
/// sent once Impac! has folded that change, so the widgets that reload on it
/// show it. Reads the org's change stream (Connec!'s SSE) as the user.
pub async fn live(
    State(state): State<PortalState>,
    session: Session,
    Path(org): Path<String>,
) -> Result<Response, PageError> {
    let upstream = state
        .api
        .open_stream(
            session.auth(),
            &format!("/connec/api/v2/{}/stream", enc(&org)),
        )
        .await
        .map_err(|e| PageError::from_api(e, &session.here))?;
    let (tx, rx) = tokio::sync::mpsc::channel::<u64>(16);
    tokio::spawn(relay_changes(
        state,
        session.token.clone(),
        org,
        upstream,
        tx,
    ));
    let events = futures::stream::unfold(rx, |mut rx| async move {
        let seq = rx.recv().await?;
        Some((
            Ok::<_, Infallible>(Event::default().event("change").data(seq.to_string())),
            rx,
        ))
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// Read the upstream stream's event ids (stream sequences); for each, wait
/// until Impac! has folded it, then tell the browser. Ends when either side does.
async fn relay_changes(
    state: PortalState,
    token: String,
    org: String,
    upstream: reqwest::Response,
    tx: tokio::sync::mpsc::Sender<u64>,
) {
    let mut bytes = upstream.bytes_stream();
    let mut pending = String::new();
    loop {
        // A closed tab ends the relay at once, not at the upstream's next
        // heartbeat: the upstream stream counts against the user's cap.
        let chunk = tokio::select! {
            next = bytes.next() => match next {
                Some(Ok(chunk)) => chunk,
                _ => return,
            },
            _ = tx.closed() => return,
        };
        pending.push_str(&String::from_utf8_lossy(&chunk));
        let mut latest = None;
        while let Some(end) = pending.find("\n\n") {
            let event: String = pending.drain(..end + 2).collect();
            if let Some(seq) = event
                .lines()
                .find_map(|l| l.strip_prefix("id:"))
                .and_then(|id| id.trim().parse::<u64>().ok())
            {
                latest = Some(seq);
            }
        }
        let Some(seq) = latest else { continue };
        // min_seq waits (up to 5 s) for the projection to fold the change.
        let wait = format!(
            "/impac/api/v2/widgets/invoices/summary?org_ids[]={}&min_seq={seq}",
            enc(&org)
        );
        let _ = state
            .api
            .get(crate::api::Auth::Session(&token), &wait)
            .await;
        if tx.send(seq).await.is_err() {
            return;
        }
    }
}

pub async fn create(
    State(state): State<PortalState>,
    session: Session,
    Path(org): Path<String>,
    Form(form): Form<FormData>,
) -> Result<Response, PageError> {
    session.check(&state, &form)?;
    let made = state
        .api
        .post(
            session.auth(),
            "/impac/api/v2/dashboards",
            &json!({"name": forms::value(&form, "name"), "org_ids": [org], "widgets": []}),
        )
        .await
        .map_err(|e| PageError::from_api(e, &session.here))?;
    Ok(back_to(&format!(
        "/o/{org}/dashboards/{}",
        made["id"].as_str().unwrap_or_default()
    )))
}

/// The dashboard `id` as Impac! has it.
async fn get_dashboard(
    state: &PortalState,
    session: &Session,
    id: &str,
) -> Result<Value, PageError> {
    state
        .api
        .get(
            session.auth(),
            &format!("/impac/api/v2/dashboards/{}", enc(id)),
        )
        .await
        .map_err(|e| PageError::from_api(e, &session.here))
}

/// `GET .../delete`: asks before deleting the dashboard.
pub async fn delete_page(
    State(state): State<PortalState>,
    session: Session,
    Path((org, id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let chrome = Chrome::load(&state, &session, Some(&org), "dashboard").await?;
    let dashboard = get_dashboard(&state, &session, &id).await?;
    let all = state
        .api
        .get(session.auth(), &dashboards_path(&org))
        .await
        .map_err(|e| PageError::from_api(e, &session.here))?;
    let name = dashboard["name"].as_str().unwrap_or("Dashboard");
    let only = all["dashboards"].as_array().is_none_or(|d| d.len() <= 1);
    let mut consequence = format!(
        "Its widgets and their order are forgotten; the figures stay in {}'s reports.",
        chrome.org_name()
    );
    if only {
        // What the trial met: the only dashboard comes back as a new Overview.
        consequence.push_str(" It is your only dashboard here: a new Overview with the usual widgets takes its place.");
    }
    Ok(confirm::page(
        &chrome,
        &Confirm {
            question: format!("Delete the dashboard {name}?"),
            consequence,
            action: &format!("/o/{org}/dashboards/{id}/delete"),
            button: format!("Delete {name}"),
            back: &format!("/o/{org}/dashboards/{id}"),
            fields: vec![],
        },
    ))
}

pub async fn delete(
    State(state): State<PortalState>,
    session: Session,
    Path((org, id)): Path<(String, String)>,
    Form(form): Form<FormData>,
) -> Result<Response, PageError> {
    session.check(&state, &form)?;
    let dashboard = get_dashboard(&state, &session, &id).await?;
    state
        .api
        .delete(
            session.auth(),
            &format!("/impac/api/v2/dashboards/{}", enc(&id)),
        )
        .await
        .map_err(|e| PageError::from_api(e, &session.here))?;
    let name = dashboard["name"].as_str().unwrap_or("Dashboard");
    Ok(super::done(
        &session,
        &format!("/o/{org}/dashboard"),
        &format!("The dashboard {name} was deleted."),
    ))
}

/// Change the dashboard's widget list with `edit` (which says what it did,
/// or `None` when there was nothing to do), and store it.
async fn edit_widgets(
    state: &PortalState,
    session: &Session,
    org: &str,
    id: &str,
    edit: impl FnOnce(&mut Vec<Value>) -> Option<String>,
) -> Result<Response, PageError> {
    let path = format!("/impac/api/v2/dashboards/{}", enc(id));
    let fail = |e| PageError::from_api(e, &session.here);
    let dashboard = state.api.get(session.auth(), &path).await.map_err(fail)?;
    let mut widgets = dashboard["widgets"].as_array().cloned().unwrap_or_default();
    let notice = edit(&mut widgets);
    state
        .api
        .patch(session.auth(), &path, &json!({ "widgets": widgets }))
        .await
        .map_err(fail)?;
    let page = format!("/o/{org}/dashboards/{id}");
    Ok(match notice {
        Some(notice) => super::done(session, &page, &notice),
        None => back_to(&page),
    })
}

/// `GET .../widgets/{index}/remove`: asks before removing the widget.
pub async fn remove_widget_page(
    State(state): State<PortalState>,
    session: Session,
    Path((org, id, index)): Path<(String, String, usize)>,
) -> Result<Response, PageError> {
    let chrome = Chrome::load(&state, &session, Some(&org), "dashboard").await?;
    let dashboard = get_dashboard(&state, &session, &id).await?;
    let base = format!("/o/{org}/dashboards/{id}");
    let Some(widget) = dashboard["widgets"][index]["widget"].as_str() else {
        // Removed meanwhile (another tab): nothing to ask.
        return Ok(back_to(&base));
    };
    let title = widgets::title(widget);
    Ok(confirm::page(
        &chrome,
        &Confirm {
            question: format!(
                "Remove {title} from {}?",
                dashboard["name"].as_str().unwrap_or("the dashboard")
            ),
            consequence: "Its figures stay in the reports; Add a widget puts it back.".to_owned(),
            action: &format!("{base}/widgets/{index}/remove"),
            button: format!("Remove {title}"),
            back: &base,
            fields: vec![("widget", widget)],
        },
    ))
}

pub async fn add_widget(
    State(state): State<PortalState>,
    session: Session,
    Path((org, id)): Path<(String, String)>,
    Form(form): Form<FormData>,
) -> Result<Response, PageError> {
    session.check(&state, &form)?;
    let widget = forms::value(&form, "widget").to_owned();
    edit_widgets(&state, &session, &org, &id, |ws| {
        let notice = format!("{} was added.", widgets::title(&widget));
        ws.push(json!({ "widget": widget }));
        Some(notice)
    })
    .await
}

pub async fn move_widget(
    State(state): State<PortalState>,
    session: Session,
    Path((org, id, index)): Path<(String, String, usize)>,
    Form(form): Form<FormData>,
) -> Result<Response, PageError> {
    session.check(&state, &form)?;
    let up = forms::value(&form, "by") == "-1";
    edit_widgets(&state, &session, &org, &id, |ws| {
        let other = if up {
            index.checked_sub(1)
        } else {
            Some(index + 1)
        };
        if let Some(other) = other.filter(|o| *o < ws.len() && index < ws.len()) {
            ws.swap(index, other);
        }
        None
    })
    .await
}

pub async fn remove_widget(
    State(state): State<PortalState>,
    session: Session,
    Path((org, id, index)): Path<(String, String, usize)>,
    Form(form): Form<FormData>,
) -> Result<Response, PageError> {
    session.check(&state, &form)?;
    // The confirmation names the widget: if the list changed since (another
    // tab), the index is no longer that widget's and nothing is removed.
    let named = forms::value(&form, "widget").to_owned();
    edit_widgets(&state, &session, &org, &id, |ws| {
        let widget = ws.get(index)?["widget"].as_str()?.to_owned();
        if !named.is_empty() && named != widget {
            return None;
        }
        ws.remove(index);
        Some(format!("{} was removed.", widgets::title(&widget)))
    })
    .await
}

/// Create an in-app KPI over the dashboard's current view; errors go back beside their fields.
pub async fn create_kpi(
    State(state): State<PortalState>,
    session: Session,
    Path(org): Path<String>,
    Form(form): Form<FormData>,
) -> Result<Response, PageError> {
    session.check(&state, &form)?;
    let dashboard = forms::value(&form, "dashboard").to_owned();
    let view_query = forms::value(&form, "view").to_owned();
    let view = View::from_query(Some(&view_query), "USD");
    let mut target = serde_json::Map::new();
    for (field, key) in [("target/min", "min"), ("target/max", "max")] {
        if !forms::value(&form, field).is_empty() {
            target.insert(key.into(), json!(forms::value(&form, field)));
        }
    }
    let body = json!({
        "org_ids": [org], "widget": forms::value(&form, "widget"), "element": forms::value(&form, "element"),
        "target": target, "alert": {"inapp": true},
        "params": {"currency": view.currency, "from": view.from, "to": view.to, "period": view.period},
    });
    let call = state
        .api
        .post(session.auth(), "/impac/api/v2/kpis", &body)
        .await;
    let page = format!("/o/{org}/dashboards/{dashboard}?{view_query}#kpis");
    match super::settle(call, &session, &page, |_| "The KPI was created.".to_owned())? {
        Ok(done) => Ok(done),
        Err(failure) => {
            let raw = Some(view_query.as_str());
            render(
                &state,
                &session,
                &org,
                &dashboard,
                raw,
                &form,
                Some(&failure),
            )
            .await
        }
    }
}

/// What a KPI watches, as its row and its confirmation name it:
/// "Profit and loss · totals.revenue".
fn kpi_title(kpi: &Value) -> String {
    format!(
        "{} · {}",
        widgets::title(kpi["widget"].as_str().unwrap_or_default()),
        kpi["element"].as_str().unwrap_or_default()
    )
}

/// The KPIs' section of the dashboard a KPI action came from.
fn kpis_of(org: &str, dashboard: &str) -> String {
    if dashboard.is_empty() {
        format!("/o/{org}/dashboard")
    } else {
        format!("/o/{org}/dashboards/{}#kpis", enc(dashboard))
    }
}

/// `GET /o/{org}/kpis/{id}/delete?dashboard=`: asks before a KPI goes.
pub async fn delete_kpi_page(
    State(state): State<PortalState>,
    session: Session,
    Path((org, id)): Path<(String, String)>,
    Query(from): Query<FormData>,
) -> Result<Response, PageError> {
    let chrome = Chrome::load(&state, &session, Some(&org), "dashboard").await?;
    let dashboard = forms::value(&from, "dashboard");
    let back = kpis_of(&org, dashboard);
    let kpis = state
        .api
        .get(
            session.auth(),
            &format!("/impac/api/v2/kpis?org_ids[]={}", enc(&org)),
        )
        .await
        .map_err(|e| PageError::from_api(e, &session.here))?;
    let kpi = kpis["kpis"]
        .as_array()
        .and_then(|all| all.iter().find(|k| k["id"].as_str() == Some(id.as_str())));
    let Some(kpi) = kpi else {
        // Deleted meanwhile (another tab, another admin): nothing to ask.
        return Ok(super::done(
            &session,
            &back,
            "That KPI was already deleted.",
        ));
    };
    Ok(confirm::page(
        &chrome,
        &Confirm {
            question: format!("Delete the KPI on {}?", kpi_title(kpi)),
            consequence: "It is no longer watched: no alert is raised for it again. The figures stay in the reports."
                .into(),
            action: &format!("/o/{org}/kpis/{}/delete", enc(&id)),
            button: "Delete the KPI".into(),
            back: &back,
            fields: vec![("dashboard", dashboard)],
        },
    ))
}

pub async fn delete_kpi(
    State(state): State<PortalState>,
    session: Session,
    Path((org, id)): Path<(String, String)>,
    Form(form): Form<FormData>,
) -> Result<Response, PageError> {
    session.check(&state, &form)?;
    state
        .api
        .delete(session.auth(), &format!("/impac/api/v2/kpis/{}", enc(&id)))
        .await
        .map_err(|e| PageError::from_api(e, &session.here))?;
    let back = kpis_of(&org, forms::value(&form, "dashboard"));
    Ok(super::done(&session, &back, "The KPI was deleted."))
}
