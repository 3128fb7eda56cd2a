//! Single billing: the app bills the orgs that installed it; the platform's
//! monthly run puts the bills on one invoice per org.

use std::sync::Arc;

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::connec::segment;
use crate::error::Result;
use crate::transport::{Call, Transport};

/// The billing client. Get one from [`crate::Mno::billing`].
#[derive(Debug, Clone)]
pub struct Billing {
    pub(crate) transport: Arc<Transport>,
}

/// A bill to submit. Money is an integer of the currency's minor unit.
///
/// ```
/// let bill = mno_sdk::billing::NewBill::new("ORG", 1050, "USD", "3 seats").units(3);
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct NewBill {
    /// The org billed (one that installed the app).
    pub org: String,
    /// The amount in minor units (1050 is 10.50 USD).
    pub price_cents: u64,
    /// ISO 4217 code.
    pub currency: String,
    /// 1-500 characters.
    pub description: String,
    /// Units shown on the invoice (1 or more).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub units: Option<u64>,
    /// Start of the service billed (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period_started_at: Option<String>,
    /// End of the service billed (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period_ended_at: Option<String>,
    /// A cost passed on from a third party.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub third_party: Option<bool>,
}

impl NewBill {
    /// A bill of `price_cents` in `currency` to `org`.
    pub fn new(org: &str, price_cents: u64, currency: &str, description: &str) -> NewBill {
        NewBill {
            org: org.to_owned(),
            price_cents,
            currency: currency.to_owned(),
            description: description.to_owned(),
            units: None,
            period_started_at: None,
            period_ended_at: None,
            third_party: None,
        }
    }

    /// Units shown on the invoice.
    pub fn units(mut self, units: u64) -> NewBill {
        self.units = Some(units);
        self
    }

    /// The service period billed (RFC 3339 times).
    pub fn period(mut self, started_at: &str, ended_at: &str) -> NewBill {
        self.period_started_at = Some(started_at.to_owned());
        self.period_ended_at = Some(ended_at.to_owned());
        self
    }
}

/// A bill as the platform keeps it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Bill {
    /// Its id.
    pub id: String,
    /// The org billed.
    pub org_id: String,
    /// The recurring bill it came from, if any.
    #[serde(default)]
    pub recurring_bill_id: Option<String>,
    /// Minor units.
    pub price_cents: u64,
    /// ISO 4217 code.
    pub currency: String,
    /// What was billed.
    pub description: String,
    /// Units.
    #[serde(default)]
    pub units: u64,
    /// The first month (`YYYY-MM`) whose invoice may carry it.
    #[serde(default)]
    pub due_period: String,
    /// `submitted`, `invoiced` or `cancelled`.
    pub status: String,
    /// The invoice it is on, once invoiced.
    #[serde(default)]
    pub invoice_id: Option<String>,
}

/// A recurring bill to submit.
///
/// ```
/// use mno_sdk::billing::{NewRecurringBill, Period};
/// let plan = NewRecurringBill::new("ORG", 2000, "AUD", "Plan", Period::Month).cycles(12);
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct NewRecurringBill {
    /// The org billed.
    pub org: String,
    /// Minor units per cycle.
    pub price_cents: u64,
    /// ISO 4217 code.
    pub currency: String,
    /// What is billed.
    pub description: String,
    /// The period unit.
    pub period: Period,
    /// Periods per cycle (1-366).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequency: Option<u32>,
    /// Cycles to bill (none: until cancelled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cycles: Option<u32>,
    /// First day (`YYYY-MM-DD`; today by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
    /// Billed once with the first cycle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_cents: Option<u64>,
}

impl NewRecurringBill {
    /// `price_cents` every `period` to `org`.
    pub fn new(
        org: &str,
        price_cents: u64,
        currency: &str,
        description: &str,
        period: Period,
    ) -> NewRecurringBill {
        NewRecurringBill {
            org: org.to_owned(),
            price_cents,
            currency: currency.to_owned(),
            description: description.to_owned(),
            period,
            frequency: None,
            cycles: None,
            start_date: None,
            initial_cents: None,
        }
    }

    /// Bills `cycles` cycles, then expires.
    pub fn cycles(mut self, cycles: u32) -> NewRecurringBill {
        self.cycles = Some(cycles);
        self
    }

    /// Starts on `date` (`YYYY-MM-DD`).
    pub fn start_date(mut self, date: &str) -> NewRecurringBill {
        self.start_date = Some(date.to_owned());
        self
    }
}

/// A recurring bill's period unit.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// Daily.
    Day,
    /// Weekly.
    Week,
    /// The 1st and the 16th.
    Semimonth,
    /// Monthly.
    Month,
    /// Yearly.
    Year,
}

/// A recurring bill as the platform keeps it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct RecurringBill {
    /// Its id.
    pub id: String,
    /// The org billed.
    #[serde(alias = "org")]
    pub org_id: String,
    /// Minor units per cycle.
    pub price_cents: u64,
    /// ISO 4217 code.
    pub currency: String,
    /// What is billed.
    pub description: String,
    /// The period unit.
    pub period: Period,
    /// `submitted`, `active`, `expired` or `cancelled`.
    pub status: String,
}

impl Billing {
    /// Submits a bill under `idempotency_key` (the app's own, e.g.
    /// `seats-<org>-2026-11`: keys are kept for good, so a bill is never made twice).
    ///
    /// ```no_run
    /// # async fn f(mno: mno_sdk::Mno, org: &str) -> mno_sdk::Result<()> {
    /// use mno_sdk::billing::NewBill;
    /// let bill = mno.billing().create_bill(&NewBill::new(org, 1050, "USD", "3 seats").units(3),
    ///     &format!("seats-{org}-2026-11")).await?;
    /// # Ok(()) }
    /// ```
    pub async fn create_bill(&self, bill: &NewBill, idempotency_key: &str) -> Result<Bill> {
        let call = Call::new(Method::POST, "/hub/v1/bills")
            .json(bill)?
            .idempotent(Some(idempotency_key.to_owned()));
        self.transport.send(&call).await?.json()
    }

    /// The app's bills (of one org, or all), oldest first.
    pub async fn bills(&self, org: Option<&str>) -> Result<Vec<Bill>> {
        #[derive(Deserialize)]
        struct List {
            bills: Vec<Bill>,
        }
        let mut call = Call::new(Method::GET, "/hub/v1/bills");
        if let Some(org) = org {
            call = call.query("org", org);
        }
        Ok(self.transport.send(&call).await?.json::<List>()?.bills)
    }

    /// One bill.
    pub async fn bill(&self, id: &str) -> Result<Bill> {
        let call = Call::new(Method::GET, format!("/hub/v1/bills/{}", segment(id)));
        self.transport.send(&call).await?.json()
    }

    /// Cancels a bill not yet invoiced (cancelling again answers the same).
    pub async fn cancel_bill(&self, id: &str) -> Result<Bill> {
        let call =
            Call::new(Method::DELETE, format!("/hub/v1/bills/{}", segment(id))).idempotent(None);
        self.transport.send(&call).await?.json()
    }

    /// Submits a recurring bill under `idempotency_key`.
    pub async fn create_recurring_bill(
        &self,
        bill: &NewRecurringBill,
        idempotency_key: &str,
    ) -> Result<RecurringBill> {
        let call = Call::new(Method::POST, "/hub/v1/recurring_bills")
            .json(bill)?
            .idempotent(Some(idempotency_key.to_owned()));
        self.transport.send(&call).await?.json()
    }

    /// The app's recurring bills.
    pub async fn recurring_bills(&self) -> Result<Vec<RecurringBill>> {
        #[derive(Deserialize)]
        struct List {
            recurring_bills: Vec<RecurringBill>,
        }
        let call = Call::new(Method::GET, "/hub/v1/recurring_bills");
        Ok(self
            .transport
            .send(&call)
            .await?
            .json::<List>()?
            .recurring_bills)
    }

    /// Cancels a recurring bill: no cycle is billed after this.
    pub async fn cancel_recurring_bill(&self, id: &str) -> Result<RecurringBill> {
        let call = Call::new(
            Method::DELETE,
            format!("/hub/v1/recurring_bills/{}", segment(id)),
        )
        .idempotent(None);
        self.transport.send(&call).await?.json()
    }
}
