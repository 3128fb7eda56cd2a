//! Amounts as decimals, and conversion to the currency a report is asked in
//! with the rates the operator loaded.

use std::collections::HashMap;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{json, Value};

/// A decimal field of a record (a decimal string, or a number's text); zero when absent.
pub fn amount(record: &Value, field: &str) -> Decimal {
    match record.get(field) {
        Some(Value::String(s)) => Decimal::from_str(s).unwrap_or_default(),
        Some(Value::Number(n)) => Decimal::from_str(&n.to_string()).unwrap_or_default(),
        _ => Decimal::ZERO,
    }
}

#[derive(Debug, Clone)]
pub struct Rate {
    pub rate: Decimal,
    pub as_of: String,
    pub source: String,
}

/// Converts into one currency; remembers which rates it used.
pub struct Converter {
    pub target: String,
    rates: HashMap<(String, String), Rate>,
    pub used: std::cell::RefCell<Vec<Value>>,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "no exchange rate {from}->{to}; load one (POST /impac/api/v2/rates or mno impac rates load)"
)]
pub struct MissingRate {
    pub from: String,
    pub to: String,
}

impl Converter {
    pub fn new(target: &str, rates: HashMap<(String, String), Rate>) -> Self {
        Self {
            target: target.to_owned(),
            rates,
            used: Default::default(),
        }
    }

    pub fn convert(&self, amount: Decimal, currency: &str) -> Result<Decimal, MissingRate> {
        if currency.is_empty() || currency == self.target {
            return Ok(amount);
        }
        let direct = self.rates.get(&(currency.to_owned(), self.target.clone()));
        let (rate, inverse) = match direct {
            Some(rate) => (rate, false),
            None => match self.rates.get(&(self.target.clone(), currency.to_owned())) {
                Some(rate) if !rate.rate.is_zero() => (rate, true),
                _ => {
                    return Err(MissingRate {
                        from: currency.to_owned(),
                        to: self.target.clone(),
                    })
                }
            },
        };
        let note = json!({"from": currency, "to": self.target, "rate": rate.rate.to_string(), "as_of": rate.as_of, "source": rate.source});
        let mut used = self.used.borrow_mut();
        if !used.contains(&note) {
            used.push(note);
        }
        Ok(if inverse {
            amount / rate.rate
        } else {
            amount * rate.rate
        })
    }
}
