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
        let reverse = self
            .rates
            .get(&(self.target.clone(), currency.to_owned()))
            .filter(|rate| !rate.rate.is_zero());
        // The pair's latest loaded rate, in either direction (the direct one on a tie):
        // converting there and back uses one rate, not two.
        let (rate, inverse) = match (direct, reverse) {
            (Some(direct), Some(reverse)) if reverse.as_of > direct.as_of => (reverse, true),
            (Some(direct), _) => (direct, false),
            (None, Some(reverse)) => (reverse, true),
            (None, None) => {
                return Err(MissingRate {
                    from: currency.to_owned(),
                    to: self.target.clone(),
                })
            }
        };
        // The note gives the multiplier applied; a loaded rate of the other
        // direction is named beside it, so that the figure can be checked.
        let note = if inverse {
            let applied = (Decimal::ONE / rate.rate).round_dp(10).normalize();
            json!({"from": currency, "to": self.target, "rate": applied.to_string(),
                   "inverse_of": {"from": self.target, "to": currency, "rate": rate.rate.to_string()},
                   "as_of": rate.as_of, "source": rate.source})
        } else {
            json!({"from": currency, "to": self.target, "rate": rate.rate.to_string(), "as_of": rate.as_of, "source": rate.source})
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn eur_to_usd() -> HashMap<(String, String), Rate> {
        let rate = Rate {
            rate: Decimal::from_str("1.0825").unwrap(),
            as_of: "2026-11-01".into(),
            source: "ECB".into(),
        };
        HashMap::from([(("EUR".to_owned(), "USD".to_owned()), rate)])
    }

    #[test]
    fn a_direct_rate_multiplies_and_is_named_as_loaded() {
        let to_usd = Converter::new("USD", eur_to_usd());
        let usd = to_usd.convert(Decimal::from(1000), "EUR").unwrap();
        assert_eq!(usd, Decimal::from_str("1082.5").unwrap());
        let used = to_usd.used.borrow();
        assert_eq!(used[0]["rate"], "1.0825");
        assert!(used[0].get("inverse_of").is_none());
    }

    #[test]
    fn a_rate_of_the_other_direction_divides_and_the_note_names_the_multiplier_applied() {
        let to_eur = Converter::new("EUR", eur_to_usd());
        let eur = to_eur
            .convert(Decimal::from_str("1082.5").unwrap(), "USD")
            .unwrap();
        assert_eq!(eur, Decimal::from(1000));
        let used = to_eur.used.borrow();
        assert_eq!(used[0]["from"], "USD");
        assert_eq!(used[0]["to"], "EUR");
        assert_eq!(used[0]["rate"], "0.9237875289", "1 / 1.0825: {}", used[0]);
        assert_eq!(
            used[0]["inverse_of"],
            json!({"from": "EUR", "to": "USD", "rate": "1.0825"})
        );
    }

    #[test]
    fn the_latest_rate_of_the_pair_counts_whichever_direction_it_was_loaded_in() {
        let mut rates = eur_to_usd();
        let usd_to_eur = |rate: &str, as_of: &str| Rate {
            rate: Decimal::from_str(rate).unwrap(),
            as_of: as_of.into(),
            source: "bank".into(),
        };
        rates.insert(
            ("USD".to_owned(), "EUR".to_owned()),
            usd_to_eur("0.8", "2026-11-15"),
        );
        let to_usd = Converter::new("USD", rates.clone());
        let usd = to_usd.convert(Decimal::from(1000), "EUR").unwrap();
        assert_eq!(
            usd,
            Decimal::from(1250),
            "1 / 0.8, loaded later than 1.0825"
        );
        let to_eur = Converter::new("EUR", rates.clone());
        assert_eq!(to_eur.convert(usd, "USD").unwrap(), Decimal::from(1000));

        // On the same day, the rate loaded in the asked direction counts.
        rates.insert(
            ("USD".to_owned(), "EUR".to_owned()),
            usd_to_eur("0.8", "2026-11-01"),
        );
        let to_usd = Converter::new("USD", rates);
        let usd = to_usd.convert(Decimal::from(1000), "EUR").unwrap();
        assert_eq!(usd, Decimal::from_str("1082.5").unwrap());
    }

    #[test]
    fn no_rate_either_way_names_the_pair_to_load() {
        let to_gbp = Converter::new("GBP", eur_to_usd());
        let missing = to_gbp.convert(Decimal::ONE, "EUR").unwrap_err();
        assert_eq!((missing.from.as_str(), missing.to.as_str()), ("EUR", "GBP"));
        assert!(missing.to_string().contains("load one"));
    }
}
