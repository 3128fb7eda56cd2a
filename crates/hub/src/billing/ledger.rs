//! The ledger: the billing facts folded from stream HUB, and the invoice
//! they make. Invoices are computed here and only here, from events alone,
//! so the billing run and a rebuild from the stream give the same bytes.

use std::collections::{BTreeMap, BTreeSet};

use mno_events::envelope::canonical_json;
use mno_events::proto::HubEvent;
use mno_events::subject::hub_kind;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::money::Period;

/// A bill as its `bill_created` event tells it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerBill {
    pub id: String,
    pub app_id: String,
    pub app_name: String,
    pub org_id: String,
    pub price_cents: i64,
    pub currency: String,
    pub description: String,
    pub units: i64,
    pub period_started_at: Option<String>,
    pub period_ended_at: Option<String>,
    pub third_party: bool,
    pub due_period: String,
    pub created_at: String,
}

/// The billing facts up to some stream sequence.
#[derive(Debug, Default)]
pub struct Ledger {
    bills: BTreeMap<String, LedgerBill>,
    cancelled: BTreeSet<String>,
    invoiced: BTreeSet<String>,
    issued: BTreeSet<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("a {kind} event (stream sequence {seq}) has an unreadable payload: {reason}")]
    BadPayload {
        kind: String,
        seq: u64,
        reason: String,
    },
}

/// The subjects the ledger folds, for all orgs or one.
pub fn filters(org: Option<&str>) -> Vec<String> {
    let org = org.unwrap_or("*");
    [
        hub_kind::BILL_CREATED,
        hub_kind::BILL_CANCELLED,
        hub_kind::INVOICE_ISSUED,
    ]
    .iter()
    .map(|kind| format!("hub.{org}.{kind}"))
    .collect()
}

/// The deterministic id of the invoice of (org, period, currency).
pub fn invoice_id(org: &str, period: Period, currency: &str) -> String {
    format!("inv-{org}-{period}-{currency}")
}

impl Ledger {
    /// Fold one Hub event; kinds the ledger does not know are ignored.
    pub fn apply(&mut self, seq: u64, event: &HubEvent) -> Result<(), LedgerError> {
        let bad = |reason: String| LedgerError::BadPayload {
            kind: event.kind.clone(),
            seq,
            reason,
        };
        match event.kind.as_str() {
            hub_kind::BILL_CREATED => {
                let bill: LedgerBill =
                    serde_json::from_slice(&event.payload).map_err(|e| bad(e.to_string()))?;
                self.bills.insert(bill.id.clone(), bill);
            }
            hub_kind::BILL_CANCELLED => {
                let payload: serde_json::Value =
                    serde_json::from_slice(&event.payload).map_err(|e| bad(e.to_string()))?;
                let id = payload["id"].as_str().ok_or_else(|| bad("no id".into()))?;
                self.cancelled.insert(id.to_owned());
            }
            hub_kind::INVOICE_ISSUED => {
                let invoice: Invoice =
                    serde_json::from_slice(&event.payload).map_err(|e| bad(e.to_string()))?;
                for line in &invoice.lines {
                    self.invoiced
                        .extend(line.bills.iter().map(|b| b.id.clone()));
                }
                self.issued.insert(invoice.id);
            }
            _ => {}
        }
        Ok(())
    }

    /// Bills open (neither cancelled nor invoiced) and due in `period` or before.
    fn open_due(&self, period: Period) -> impl Iterator<Item = &LedgerBill> {
        let until = period.to_string();
        self.bills.values().filter(move |b| {
            b.due_period <= until
                && !self.cancelled.contains(&b.id)
                && !self.invoiced.contains(&b.id)
        })
    }

    /// Every (org, currency) that has open bills due by `period` and no
    /// invoice for `period` yet, in a stable order.
    pub fn invoices_due(&self, period: Period) -> Vec<(String, String)> {
        let due: BTreeSet<(String, String)> = self
            .open_due(period)
            .map(|b| (b.org_id.clone(), b.currency.clone()))
            .filter(|(org, currency)| !self.issued.contains(&invoice_id(org, period, currency)))
            .collect();
        due.into_iter().collect()
    }

    /// The invoice of (org, period, currency) as of `cut_seq`: every open
    /// bill of that org and currency due by `period`, one line per app.
    ///
    /// An invoice's total must fit 64-bit minor units. When the lines would
    /// not, the apps with the largest lines are held out (their bills stay
    /// open, named in [`Invoice::held_apps`]) so that one app's bills cannot
    /// keep every other app's off the org's invoice.
    pub fn invoice(
        &self,
        org: &str,
        period: Period,
        currency: &str,
        cut_seq: u64,
    ) -> Result<Invoice, LedgerError> {
        let id = invoice_id(org, period, currency);
        let mut by_app: BTreeMap<&str, Vec<&LedgerBill>> = BTreeMap::new();
        for bill in self.open_due(period) {
            if bill.org_id == org && bill.currency == currency {
                by_app.entry(&bill.app_id).or_default().push(bill);
            }
        }
        // Each app's line total, exact (bills are at most 10^15 each).
        let line_totals: BTreeMap<&str, i128> = by_app
            .iter()
            .map(|(app, bills)| (*app, bills.iter().map(|b| i128::from(b.price_cents)).sum()))
            .collect();
        let mut smallest_first: Vec<(&str, i128)> = line_totals
            .iter()
            .map(|(app, total)| (*app, *total))
            .collect();
        smallest_first.sort_by(|a, b| (a.1, a.0).cmp(&(b.1, b.0)));
        let mut kept: BTreeSet<&str> = BTreeSet::new();
        let mut sum: i128 = 0;
        for (app, line) in smallest_first {
            if sum + line <= i128::from(i64::MAX) {
                sum += line;
                kept.insert(app);
            }
        }
        let mut lines = Vec::new();
        let mut held_apps = Vec::new();
        for (app_id, mut bills) in by_app {
            if !kept.contains(app_id) {
                held_apps.push(app_id.to_owned());
                continue;
            }
            bills.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
            lines.push(InvoiceLine {
                app_id: app_id.to_owned(),
                app_name: bills[0].app_name.clone(),
                total_cents: line_totals[app_id] as i64,
                bills: bills.into_iter().cloned().collect(),
            });
        }
        Ok(Invoice {
            id,
            org_id: org.to_owned(),
            period: period.to_string(),
            currency: currency.to_owned(),
            cut_at_seq: cut_seq,
            total_cents: sum as i64,
            lines,
            held_apps,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invoice {
    pub id: String,
    pub org_id: String,
    pub period: String,
    pub currency: String,
    /// The last sequence of stream HUB the invoice was computed from.
    pub cut_at_seq: u64,
    pub total_cents: i64,
    pub lines: Vec<InvoiceLine>,
    /// Apps whose bills were held out because the total would not fit; not
    /// part of the invoice's bytes (their bills stay open).
    #[serde(skip)]
    pub held_apps: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvoiceLine {
    pub app_id: String,
    pub app_name: String,
    pub total_cents: i64,
    pub bills: Vec<LedgerBill>,
}

impl Invoice {
    /// The invoice's bytes: canonical JSON (keys sorted, compact).
    pub fn to_bytes(&self) -> Vec<u8> {
        canonical_json(&json!(self))
    }

    pub fn bill_ids(&self) -> Vec<String> {
        self.lines
            .iter()
            .flat_map(|l| l.bills.iter().map(|b| b.id.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bill(id: &str, app: &str, currency: &str, cents: i64, due: &str) -> HubEvent {
        let bill = LedgerBill {
            id: id.into(),
            app_id: app.into(),
            app_name: format!("App {app}"),
            org_id: "org1".into(),
            price_cents: cents,
            currency: currency.into(),
            description: "seats".into(),
            units: 1,
            period_started_at: None,
            period_ended_at: None,
            third_party: false,
            due_period: due.into(),
            created_at: format!("2026-11-01T00:00:0{}Z", id.len() % 10),
        };
        HubEvent {
            kind: hub_kind::BILL_CREATED.into(),
            payload: serde_json::to_vec(&bill).unwrap(),
            ..Default::default()
        }
    }

    #[test]
    fn one_invoice_per_currency_lines_per_app_and_nothing_twice() {
        let nov = Period::parse("2026-11").unwrap();
        let mut ledger = Ledger::default();
        ledger
            .apply(1, &bill("b1", "a", "USD", 1000, "2026-11"))
            .unwrap();
        ledger
            .apply(2, &bill("b2", "b", "USD", 250, "2026-10"))
            .unwrap();
        ledger
            .apply(3, &bill("b3", "a", "EUR", 700, "2026-11"))
            .unwrap();
        ledger
            .apply(4, &bill("b4", "a", "USD", 9, "2026-12"))
            .unwrap();
        let cancel = HubEvent {
            kind: hub_kind::BILL_CANCELLED.into(),
            payload: br#"{"id":"b3"}"#.to_vec(),
            ..Default::default()
        };
        ledger.apply(5, &cancel).unwrap();
        assert_eq!(
            ledger.invoices_due(nov),
            vec![("org1".into(), "USD".into())]
        );
        let invoice = ledger.invoice("org1", nov, "USD", 5).unwrap();
        assert_eq!(invoice.total_cents, 1250);
        assert_eq!(invoice.lines.len(), 2);
        assert_eq!(invoice.bill_ids(), vec!["b1", "b2"]);
        let issued = HubEvent {
            kind: hub_kind::INVOICE_ISSUED.into(),
            payload: invoice.to_bytes(),
            ..Default::default()
        };
        ledger.apply(6, &issued).unwrap();
        assert!(ledger.invoices_due(nov).is_empty());
        // December takes what is left: the bill due then.
        let dec = nov.next();
        assert_eq!(
            ledger.invoice("org1", dec, "USD", 6).unwrap().bill_ids(),
            vec!["b4"]
        );
    }

    /// One app's bills whose sum would not fit the invoice's 64-bit total are
    /// held out; every other app's are invoiced (from an outside audit: one
    /// app blocked an org's invoice in a currency for good).
    #[test]
    fn an_app_whose_bills_would_overflow_the_total_is_held_out_not_the_others() {
        let nov = Period::parse("2026-11").unwrap();
        let mut ledger = Ledger::default();
        let huge = 5_000_000_000_000_000_000;
        ledger
            .apply(1, &bill("b1", "big", "EUR", huge, "2026-11"))
            .unwrap();
        ledger
            .apply(2, &bill("b22", "big", "EUR", huge, "2026-11"))
            .unwrap();
        ledger
            .apply(3, &bill("b333", "fair", "EUR", 1050, "2026-11"))
            .unwrap();
        let invoice = ledger.invoice("org1", nov, "EUR", 3).unwrap();
        assert_eq!(invoice.bill_ids(), vec!["b333"]);
        assert_eq!(invoice.total_cents, 1050);
        assert_eq!(invoice.held_apps, vec!["big".to_owned()]);
        let bytes = String::from_utf8(invoice.to_bytes()).unwrap();
        assert!(!bytes.contains("held"), "{bytes}");
        // Nothing overflows: every line, as before.
        ledger
            .apply(4, &bill("b4444", "other", "USD", 7, "2026-11"))
            .unwrap();
        let usd = ledger.invoice("org1", nov, "USD", 4).unwrap();
        assert!(usd.held_apps.is_empty());
        assert_eq!(usd.total_cents, 7);
    }
}
