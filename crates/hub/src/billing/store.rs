//! The billing tables: bills, recurring bills and invoices. Every change is
//! a Hub write transaction that emits its event (docs/api/billing.md lists them).

use serde_json::json;
use sqlx::AnyPool;

use super::ledger::{Invoice, LedgerBill};
use super::money::{Every, Period};
use crate::store::{now_ms, rfc3339, NewEvent, Store, WriteTx};
use mno_events::subject::hub_kind;

/// A bill an app submitted, validated.
#[derive(Debug, Clone)]
pub struct NewBill {
    pub org: String,
    pub price_cents: i64,
    pub currency: String,
    pub description: String,
    pub units: i64,
    pub period_started_at: Option<i64>,
    pub period_ended_at: Option<i64>,
    pub third_party: bool,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BillRow {
    pub id: String,
    pub app_id: String,
    pub org_id: String,
    pub recurring_bill_id: Option<String>,
    pub price_cents: i64,
    pub currency: String,
    pub description: String,
    pub units: i64,
    pub period_started_at: Option<i64>,
    pub period_ended_at: Option<i64>,
    pub third_party: i64,
    pub due_period: String,
    pub status: String,
    pub invoice_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const BILL_COLUMNS: &str = "id, app_id, org_id, recurring_bill_id, price_cents, currency, description, units, period_started_at, period_ended_at, third_party, due_period, status, invoice_id, created_at, updated_at";

impl BillRow {
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "id": self.id,
            "app_id": self.app_id,
            "org_id": self.org_id,
            "recurring_bill_id": self.recurring_bill_id,
            "price_cents": self.price_cents,
            "currency": self.currency,
            "description": self.description,
            "units": self.units,
            "period_started_at": self.period_started_at.map(rfc3339),
            "period_ended_at": self.period_ended_at.map(rfc3339),
            "third_party": self.third_party != 0,
            "due_period": self.due_period,
            "status": self.status,
            "invoice_id": self.invoice_id,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        })
    }

    /// What the `bill_created` event carries: the facts an invoice needs.
    fn ledger(&self, app_name: &str) -> LedgerBill {
        LedgerBill {
            id: self.id.clone(),
            app_id: self.app_id.clone(),
            app_name: app_name.to_owned(),
            org_id: self.org_id.clone(),
            price_cents: self.price_cents,
            currency: self.currency.clone(),
            description: self.description.clone(),
            units: self.units,
            period_started_at: self.period_started_at.map(rfc3339),
            period_ended_at: self.period_ended_at.map(rfc3339),
            third_party: self.third_party != 0,
            due_period: self.due_period.clone(),
            created_at: rfc3339(self.created_at),
        }
    }
}

/// Why a billing change was refused.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    #[error("the app is not installed in the org")]
    NotInstalled,
    #[error("the idempotency key was used with another body")]
    KeyReused,
    #[error("no such bill")]
    NotFound,
    #[error("the bill is {0}")]
    NotCancellable(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// The name of `app` if it is installed in `org`.
async fn installed_app_name(
    w: &mut WriteTx,
    org: &str,
    app: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT a.name FROM hub_installs i JOIN hub_apps a ON a.id = i.app_id WHERE i.org_id = $1 AND i.app_id = $2",
    )
    .bind(org)
    .bind(app)
    .fetch_optional(&mut *w.tx)
    .await
}

async fn bill_in(w: &mut WriteTx, id: &str) -> Result<Option<BillRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {BILL_COLUMNS} FROM hub_bills WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *w.tx)
    .await
}

/// Insert a bill and emit `bill_created`, in `w`.
async fn insert_bill(
    w: &mut WriteTx,
    row: &BillRow,
    app_name: &str,
    key: Option<(&str, &str)>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO hub_bills (id, app_id, org_id, recurring_bill_id, idempotency_key, request_hash, price_cents, currency, description, units,
             period_started_at, period_ended_at, third_party, due_period, status, invoice_id, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, NULL, $16, $16)",
    )
    .bind(&row.id)
    .bind(&row.app_id)
    .bind(&row.org_id)
    .bind(&row.recurring_bill_id)
    .bind(key.map(|k| k.0))
    .bind(key.map(|k| k.1))
    .bind(row.price_cents)
    .bind(&row.currency)
    .bind(&row.description)
    .bind(row.units)
    .bind(row.period_started_at)
    .bind(row.period_ended_at)
    .bind(row.third_party)
    .bind(&row.due_period)
    .bind(&row.status)
    .bind(row.created_at)
    .execute(&mut *w.tx)
    .await?;
    w.emit(
        NewEvent::new(
            &row.org_id,
            hub_kind::BILL_CREATED,
            ("app", row.app_id.clone()),
        )
        .app(&row.app_id)
        .payload(json!(row.ledger(app_name))),
    )
    .await?;
    Ok(())
}

/// The id of what an earlier request with this Idempotency-Key made in
/// `table` (one of ours), when its body was the same; [`BillingError::KeyReused`]
/// when it was another.
async fn earlier_request(
    w: &mut WriteTx,
    table: &'static str,
    app: &str,
    key: Option<(&str, &str)>,
) -> Result<Option<String>, BillingError> {
    let Some((key, hash)) = key else {
        return Ok(None);
    };
    let earlier: Option<(String, Option<String>)> = sqlx::query_as(&format!(
        "SELECT id, request_hash FROM {table} WHERE app_id = $1 AND idempotency_key = $2"
    ))
    .bind(app)
    .bind(key)
    .fetch_optional(&mut *w.tx)
    .await?;
    match earlier {
        Some((_, earlier_hash)) if earlier_hash.as_deref() != Some(hash) => {
            Err(BillingError::KeyReused)
        }
        Some((id, _)) => Ok(Some(id)),
        None => Ok(None),
    }
}

/// Submit a bill. With an idempotency key, a repeat of the same body
/// answers the bill made the first time (`false`: nothing new).
pub async fn submit(
    store: &Store,
    app: &str,
    bill: NewBill,
    key: Option<(&str, &str)>,
) -> Result<(BillRow, bool), BillingError> {
    let mut w = store.begin_write().await?;
    if let Some(id) = earlier_request(&mut w, "hub_bills", app, key).await? {
        let row = bill_in(&mut w, &id).await?.ok_or(BillingError::NotFound)?;
        return Ok((row, false));
    }
    let app_name = installed_app_name(&mut w, &bill.org, app)
        .await?
        .ok_or(BillingError::NotInstalled)?;
    let now = now_ms();
    let row = BillRow {
        id: crate::store::new_id(),
        app_id: app.to_owned(),
        org_id: bill.org,
        recurring_bill_id: None,
        price_cents: bill.price_cents,
        currency: bill.currency,
        description: bill.description,
        units: bill.units,
        period_started_at: bill.period_started_at,
        period_ended_at: bill.period_ended_at,
        third_party: bill.third_party as i64,
        // The month its service ended, else the month it was submitted.
        due_period: Period::of_ms(bill.period_ended_at.unwrap_or(now)).to_string(),
        status: "submitted".into(),
        invoice_id: None,
        created_at: now,
        updated_at: now,
    };
    insert_bill(&mut w, &row, &app_name, key).await?;
    w.commit().await?;
    Ok((row, true))
}

pub async fn bill_of_app(
    pool: &AnyPool,
    app: &str,
    id: &str,
) -> Result<Option<BillRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {BILL_COLUMNS} FROM hub_bills WHERE id = $1 AND app_id = $2"
    ))
    .bind(id)
    .bind(app)
    .fetch_optional(pool)
    .await
}

/// The app's bills, oldest first, of one org when given.
pub async fn bills_of_app(
    pool: &AnyPool,
    app: &str,
    org: Option<&str>,
) -> Result<Vec<BillRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {BILL_COLUMNS} FROM hub_bills WHERE app_id = $1 AND ($2 = '' OR org_id = $2) ORDER BY created_at, id"
    ))
    .bind(app)
    .bind(org.unwrap_or(""))
    .fetch_all(pool)
    .await
}

/// The org's bills from every app, oldest first.
pub async fn bills_of_org(pool: &AnyPool, org: &str) -> Result<Vec<BillRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {BILL_COLUMNS} FROM hub_bills WHERE org_id = $1 ORDER BY created_at, id"
    ))
    .bind(org)
    .fetch_all(pool)
    .await
}

/// The names of the apps that billed the org (one-off or recurring), by app id.
pub async fn billing_app_names(
    pool: &AnyPool,
    org: &str,
) -> Result<std::collections::HashMap<String, String>, sqlx::Error> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, name FROM hub_apps WHERE id IN
           (SELECT app_id FROM hub_bills WHERE org_id = $1
            UNION SELECT app_id FROM hub_recurring_bills WHERE org_id = $1)",
    )
    .bind(org)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Cancel a bill not yet invoiced (cancelling twice answers the same).
pub async fn cancel(store: &Store, app: &str, id: &str) -> Result<BillRow, BillingError> {
    let mut w = store.begin_write().await?;
    let mut row = bill_in(&mut w, id)
        .await?
        .filter(|b| b.app_id == app)
        .ok_or(BillingError::NotFound)?;
    match row.status.as_str() {
        "cancelled" => return Ok(row),
        "submitted" => {}
        other => return Err(BillingError::NotCancellable(other.to_owned())),
    }
    row.status = "cancelled".into();
    row.updated_at = now_ms();
    sqlx::query("UPDATE hub_bills SET status = 'cancelled', updated_at = $1 WHERE id = $2")
        .bind(row.updated_at)
        .bind(id)
        .execute(&mut *w.tx)
        .await?;
    w.emit(
        NewEvent::new(
            &row.org_id,
            hub_kind::BILL_CANCELLED,
            ("app", app.to_owned()),
        )
        .app(app)
        .payload(json!({"id": id})),
    )
    .await?;
    w.commit().await?;
    Ok(row)
}

/// A recurring bill an app submitted, validated.
#[derive(Debug, Clone)]
pub struct NewRecurring {
    pub org: String,
    pub price_cents: i64,
    pub currency: String,
    pub description: String,
    pub every: Every,
    pub frequency: i64,
    pub cycles: Option<i64>,
    pub start_date: chrono::NaiveDate,
    pub initial_cents: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RecurringRow {
    pub id: String,
    pub app_id: String,
    pub org_id: String,
    pub price_cents: i64,
    pub currency: String,
    pub description: String,
    pub period: String,
    pub frequency: i64,
    pub cycles: Option<i64>,
    pub start_date: String,
    pub initial_cents: i64,
    pub cycles_billed: i64,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const RECURRING_COLUMNS: &str = "id, app_id, org_id, price_cents, currency, description, period, frequency, cycles, start_date, initial_cents, cycles_billed, status, created_at, updated_at";

impl RecurringRow {
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "id": self.id,
            "app_id": self.app_id,
            "org_id": self.org_id,
            "price_cents": self.price_cents,
            "currency": self.currency,
            "description": self.description,
            "period": self.period,
            "frequency": self.frequency,
            "cycles": self.cycles,
            "start_date": self.start_date,
            "initial_cents": self.initial_cents,
            "cycles_billed": self.cycles_billed,
            "status": self.status,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        })
    }
}

async fn recurring_in(w: &mut WriteTx, id: &str) -> Result<Option<RecurringRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {RECURRING_COLUMNS} FROM hub_recurring_bills WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *w.tx)
    .await
}

/// Submit a recurring bill; the idempotency rules of [`submit`].
pub async fn submit_recurring(
    store: &Store,
    app: &str,
    new: NewRecurring,
    key: Option<(&str, &str)>,
) -> Result<(RecurringRow, bool), BillingError> {
    let mut w = store.begin_write().await?;
    if let Some(id) = earlier_request(&mut w, "hub_recurring_bills", app, key).await? {
        let row = recurring_in(&mut w, &id)
            .await?
            .ok_or(BillingError::NotFound)?;
        return Ok((row, false));
    }
    installed_app_name(&mut w, &new.org, app)
        .await?
        .ok_or(BillingError::NotInstalled)?;
    let now = now_ms();
    let row = RecurringRow {
        id: crate::store::new_id(),
        app_id: app.to_owned(),
        org_id: new.org,
        price_cents: new.price_cents,
        currency: new.currency,
        description: new.description,
        period: new.every.as_str().to_owned(),
        frequency: new.frequency,
        cycles: new.cycles,
        start_date: new.start_date.format("%Y-%m-%d").to_string(),
        initial_cents: new.initial_cents,
        cycles_billed: 0,
        status: "submitted".into(),
        created_at: now,
        updated_at: now,
    };
    sqlx::query(
        "INSERT INTO hub_recurring_bills (id, app_id, org_id, idempotency_key, request_hash, price_cents, currency, description, period,
             frequency, cycles, start_date, initial_cents, cycles_billed, status, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 0, 'submitted', $14, $14)",
    )
    .bind(&row.id)
    .bind(app)
    .bind(&row.org_id)
    .bind(key.map(|k| k.0))
    .bind(key.map(|k| k.1))
    .bind(row.price_cents)
    .bind(&row.currency)
    .bind(&row.description)
    .bind(&row.period)
    .bind(row.frequency)
    .bind(row.cycles)
    .bind(&row.start_date)
    .bind(row.initial_cents)
    .bind(now)
    .execute(&mut *w.tx)
    .await?;
    w.emit(
        NewEvent::new(
            &row.org_id,
            hub_kind::RECURRING_BILL_CREATED,
            ("app", app.to_owned()),
        )
        .app(app)
        .payload(row.to_json()),
    )
    .await?;
    w.commit().await?;
    Ok((row, true))
}

pub async fn recurring_of_app(
    pool: &AnyPool,
    app: &str,
    id: Option<&str>,
) -> Result<Vec<RecurringRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {RECURRING_COLUMNS} FROM hub_recurring_bills WHERE app_id = $1 AND ($2 = '' OR id = $2) ORDER BY created_at, id"
    ))
    .bind(app)
    .bind(id.unwrap_or(""))
    .fetch_all(pool)
    .await
}

/// The org's recurring bills from every app, oldest first.
pub async fn recurring_of_org(pool: &AnyPool, org: &str) -> Result<Vec<RecurringRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {RECURRING_COLUMNS} FROM hub_recurring_bills WHERE org_id = $1 ORDER BY created_at, id"
    ))
    .bind(org)
    .fetch_all(pool)
    .await
}

async fn set_recurring_status(
    w: &mut WriteTx,
    row: &mut RecurringRow,
    status: &str,
    actor: (&'static str, String),
) -> Result<(), sqlx::Error> {
    row.status = status.to_owned();
    row.updated_at = now_ms();
    sqlx::query("UPDATE hub_recurring_bills SET status = $1, cycles_billed = $2, updated_at = $3 WHERE id = $4")
        .bind(status)
        .bind(row.cycles_billed)
        .bind(row.updated_at)
        .bind(&row.id)
        .execute(&mut *w.tx)
        .await?;
    w.emit(
        NewEvent::new(&row.org_id, hub_kind::RECURRING_BILL_UPDATED, actor)
            .app(&row.app_id)
            .payload(row.to_json()),
    )
    .await?;
    Ok(())
}

/// Cancel a recurring bill: no cycle is billed after this; bills already
/// made stay as they are (cancel them one by one if need be).
pub async fn cancel_recurring(
    store: &Store,
    app: &str,
    id: &str,
) -> Result<RecurringRow, BillingError> {
    let mut w = store.begin_write().await?;
    let mut row = recurring_in(&mut w, id)
        .await?
        .filter(|r| r.app_id == app)
        .ok_or(BillingError::NotFound)?;
    match row.status.as_str() {
        "cancelled" => return Ok(row),
        "expired" => return Err(BillingError::NotCancellable("expired".into())),
        _ => {}
    }
    set_recurring_status(&mut w, &mut row, "cancelled", ("app", app.to_owned())).await?;
    w.commit().await?;
    Ok(row)
}

/// The recurring bills that may still bill a cycle.
pub async fn live_recurring(pool: &AnyPool) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM hub_recurring_bills WHERE status IN ('submitted', 'active') ORDER BY created_at, id")
        .fetch_all(pool)
        .await
}

/// Turn every cycle of recurring bill `id` that starts by the end of `upto`
/// into its own bill, with the id `<recurring id>-c<n>` (n from 1), and the
/// initial charge, once, as `<recurring id>-initial`. Deterministic ids and
/// the count kept in the same transaction: running this twice bills nothing twice.
pub async fn bill_cycles(store: &Store, id: &str, upto: Period) -> Result<usize, BillingError> {
    let mut w = store.begin_write().await?;
    let Some(mut row) = recurring_in(&mut w, id).await? else {
        return Err(BillingError::NotFound);
    };
    if !matches!(row.status.as_str(), "submitted" | "active") {
        return Ok(0);
    }
    // Billed only while installed; the cycles wait if the app was uninstalled.
    let Some(app_name) = installed_app_name(&mut w, &row.org_id, &row.app_id).await? else {
        return Ok(0);
    };
    let every = Every::parse(Some(&row.period)).map_err(|_| BillingError::NotFound)?;
    let start =
        super::money::date("start_date", &row.start_date).map_err(|_| BillingError::NotFound)?;
    let last_day = upto.last_day();
    let mut made = 0;
    let actor = ("system", "billing".to_owned());
    loop {
        let index = row.cycles_billed;
        if row.cycles.is_some_and(|cycles| index >= cycles) {
            break;
        }
        let Some(cycle_start) = every.cycle_start(start, row.frequency, index) else {
            break;
        };
        if cycle_start > last_day {
            break;
        }
        let cycle_end = every.cycle_start(start, row.frequency, index + 1);
        let now = now_ms();
        let bill = |suffix: String, cents: i64, description: String| BillRow {
            id: format!("{}-{suffix}", row.id),
            app_id: row.app_id.clone(),
            org_id: row.org_id.clone(),
            recurring_bill_id: Some(row.id.clone()),
            price_cents: cents,
            currency: row.currency.clone(),
            description,
            units: 1,
            period_started_at: Some(super::money::midnight_ms(cycle_start)),
            period_ended_at: cycle_end.map(super::money::midnight_ms),
            third_party: 0,
            due_period: Period::of_date(cycle_start).to_string(),
            status: "submitted".into(),
            invoice_id: None,
            created_at: now,
            updated_at: now,
        };
        if index == 0 && row.initial_cents > 0 {
            let initial = bill(
                "initial".into(),
                row.initial_cents,
                format!("{} (initial charge)", row.description),
            );
            insert_bill(&mut w, &initial, &app_name, None).await?;
            made += 1;
        }
        let cycle = bill(
            format!("c{}", index + 1),
            row.price_cents,
            row.description.clone(),
        );
        insert_bill(&mut w, &cycle, &app_name, None).await?;
        made += 1;
        row.cycles_billed += 1;
    }
    if made > 0 {
        let status = if row.cycles.is_some_and(|c| row.cycles_billed >= c) {
            "expired"
        } else {
            "active"
        };
        set_recurring_status(&mut w, &mut row, status, actor).await?;
        w.commit().await?;
    }
    Ok(made)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvoiceRow {
    pub id: String,
    pub org_id: String,
    pub period: String,
    pub currency: String,
    pub cut_seq: i64,
    pub total_cents: i64,
    pub body: String,
    pub created_at: i64,
}

const INVOICE_COLUMNS: &str =
    "id, org_id, period, currency, cut_seq, total_cents, body, created_at";

impl InvoiceRow {
    /// The summary a list shows.
    pub fn to_summary_json(&self) -> serde_json::Value {
        json!({
            "id": self.id,
            "org_id": self.org_id,
            "period": self.period,
            "currency": self.currency,
            "total_cents": self.total_cents,
            "cut_at_seq": self.cut_seq,
            "issued_at": rfc3339(self.created_at),
        })
    }
}

/// What became of an invoice the run tried to issue.
#[derive(Debug, PartialEq, Eq)]
pub enum Issued {
    New,
    /// An earlier run issued it.
    Already,
    /// A bill on it changed since the stream position it was cut at
    /// (cancelled meanwhile); the run cuts again.
    Stale,
}

/// Record an invoice, mark its bills invoiced and emit `invoice_issued`, in
/// one transaction: a crash leaves all of it or none.
pub async fn issue(store: &Store, invoice: &Invoice) -> Result<Issued, sqlx::Error> {
    let mut w = store.begin_write().await?;
    let exists: Option<String> = sqlx::query_scalar("SELECT id FROM hub_invoices WHERE id = $1")
        .bind(&invoice.id)
        .fetch_optional(&mut *w.tx)
        .await?;
    if exists.is_some() {
        return Ok(Issued::Already);
    }
    let now = now_ms();
    for bill in invoice.bill_ids() {
        let updated = sqlx::query(
            "UPDATE hub_bills SET status = 'invoiced', invoice_id = $1, updated_at = $2 WHERE id = $3 AND status = 'submitted'",
        )
        .bind(&invoice.id)
        .bind(now)
        .bind(&bill)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Ok(Issued::Stale);
        }
    }
    let bytes = invoice.to_bytes();
    let body = String::from_utf8(bytes).expect("serde_json writes UTF-8");
    sqlx::query(
        "INSERT INTO hub_invoices (id, org_id, period, currency, cut_seq, total_cents, body, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&invoice.id)
    .bind(&invoice.org_id)
    .bind(&invoice.period)
    .bind(&invoice.currency)
    .bind(invoice.cut_at_seq as i64)
    .bind(invoice.total_cents)
    .bind(&body)
    .bind(now)
    .execute(&mut *w.tx)
    .await?;
    w.emit(
        NewEvent::new(
            &invoice.org_id,
            hub_kind::INVOICE_ISSUED,
            ("system", "billing".to_owned()),
        )
        .payload(serde_json::from_str(&body).expect("just written")),
    )
    .await?;
    w.commit().await?;
    Ok(Issued::New)
}

pub async fn invoices_of_org(pool: &AnyPool, org: &str) -> Result<Vec<InvoiceRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {INVOICE_COLUMNS} FROM hub_invoices WHERE org_id = $1 ORDER BY period, currency"
    ))
    .bind(org)
    .fetch_all(pool)
    .await
}

pub async fn invoice(pool: &AnyPool, id: &str) -> Result<Option<InvoiceRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {INVOICE_COLUMNS} FROM hub_invoices WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}
