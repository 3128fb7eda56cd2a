//! Money and calendar rules of billing: integer minor units, ISO 4217 codes,
//! billing periods (calendar months, UTC) and the input rules of bills.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use serde_json::Value;

/// The most one bill may charge, in minor units (ten trillion units of a
/// currency): invoice totals of many bills stay far from `i64::MAX`.
pub const MAX_CENTS: i64 = 1_000_000_000_000_000;
pub const MAX_UNITS: i64 = 1_000_000_000;
pub const MAX_DESCRIPTION_LEN: usize = 500;

/// Active ISO 4217 currency codes (funds and metals left out).
const ISO_4217: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD",
    "CDF", "CHF", "CLP", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD",
    "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ",
    "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD",
    "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR",
    "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR",
    "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN",
    "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR",
    "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB",
    "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS",
    "VES", "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
];

/// A known ISO 4217 code, upper-cased.
pub fn currency(value: Option<&str>) -> Result<String, String> {
    let raw = value.ok_or("currency is required: an ISO 4217 code such as USD")?;
    let code = raw.trim().to_ascii_uppercase();
    if ISO_4217.binary_search(&code.as_str()).is_ok() {
        Ok(code)
    } else {
        Err(format!(
            "currency {raw:?} is not a known ISO 4217 code; use one such as USD, EUR or AUD"
        ))
    }
}

/// An amount in minor units: a JSON integer, 0 or more (never a fraction,
/// never a string: 10.50 USD is 1050).
pub fn cents(field: &str, value: Option<&Value>) -> Result<i64, String> {
    let value = value.ok_or_else(|| {
        format!("{field} is required: an integer of minor units, e.g. 1050 for 10.50")
    })?;
    let Some(n) = value.as_i64() else {
        return Err(format!(
            "{field} must be a whole number of minor units (cents), e.g. 1050 for 10.50; got {value}"
        ));
    };
    if n < 0 {
        return Err(format!(
            "{field} is {n}; it may not be negative (a refund is not a bill)"
        ));
    }
    if n > MAX_CENTS {
        return Err(format!("{field} is {n}; at most {MAX_CENTS} per bill"));
    }
    Ok(n)
}

/// A whole number from `min` to `max`, or `default` when absent.
pub fn whole(
    field: &str,
    value: Option<&Value>,
    min: i64,
    max: i64,
    default: Option<i64>,
) -> Result<i64, String> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return default
            .ok_or_else(|| format!("{field} is required: a whole number from {min} to {max}"));
    };
    match value.as_i64() {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "{field} must be a whole number from {min} to {max}; got {value}"
        )),
    }
}

pub fn description(value: Option<&str>) -> Result<String, String> {
    let raw = value
        .ok_or("description is required: what the org is charged for")?
        .trim();
    if raw.is_empty() {
        return Err("description is blank; say what the org is charged for".into());
    }
    if raw.chars().count() > MAX_DESCRIPTION_LEN {
        return Err(format!(
            "description is longer than {MAX_DESCRIPTION_LEN} characters"
        ));
    }
    if raw.chars().any(|c| c.is_control()) {
        return Err("description contains control characters".into());
    }
    if raw.chars().any(crate::validate::is_bidi_control) {
        return Err("description contains a bidirectional control character (U+202A-U+202E, U+2066-U+2069), which makes an invoice line display in another order than it reads".into());
    }
    Ok(raw.to_owned())
}

/// An RFC 3339 time as unix milliseconds; `None` when absent.
pub fn instant(field: &str, value: Option<&str>) -> Result<Option<i64>, String> {
    let Some(raw) = value else { return Ok(None) };
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| Some(t.timestamp_millis()))
        .map_err(|_| {
            format!("{field} {raw:?} is not an RFC 3339 time; use e.g. 2026-11-01T00:00:00Z")
        })
}

/// A calendar date `YYYY-MM-DD`.
pub fn date(field: &str, value: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d")
        .map_err(|_| format!("{field} {value:?} is not a date; use YYYY-MM-DD, e.g. 2026-11-01"))
}

/// A billing period: one calendar month in UTC, written `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    pub year: i32,
    pub month: u32,
}

impl Period {
    pub fn parse(value: &str) -> Result<Period, String> {
        let bad = || format!("period {value:?} is not a month; use YYYY-MM, e.g. 2026-11");
        let (year, month) = value.trim().split_once('-').ok_or_else(bad)?;
        if year.len() != 4 || month.len() != 2 {
            return Err(bad());
        }
        let year: i32 = year.parse().map_err(|_| bad())?;
        let month: u32 = month.parse().map_err(|_| bad())?;
        if !(1..=12).contains(&month) || year < 1970 {
            return Err(bad());
        }
        Ok(Period { year, month })
    }

    pub fn of_date(date: NaiveDate) -> Period {
        Period {
            year: date.year(),
            month: date.month(),
        }
    }

    /// The month (UTC) of a unix-milliseconds instant.
    pub fn of_ms(ms: i64) -> Period {
        Self::of_date(
            DateTime::from_timestamp_millis(ms)
                .unwrap_or_default()
                .date_naive(),
        )
    }

    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("a valid month")
    }

    pub fn next(self) -> Period {
        if self.month == 12 {
            Period {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Period {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    pub fn previous(self) -> Period {
        if self.month == 1 {
            Period {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Period {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    /// The last day of the month.
    pub fn last_day(self) -> NaiveDate {
        self.next().first_day().pred_opt().expect("a valid date")
    }

    /// The month before the one `now` is in: what the scheduled run bills.
    pub fn last_complete(now: DateTime<Utc>) -> Period {
        Self::of_date(now.date_naive()).previous()
    }
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// Midnight UTC of `date` in unix milliseconds.
pub fn midnight_ms(date: NaiveDate) -> i64 {
    Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight"))
        .timestamp_millis()
}

/// How often a recurring bill charges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Every {
    Day,
    Week,
    Semimonth,
    Month,
    Year,
}

impl Every {
    pub fn parse(value: Option<&str>) -> Result<Every, String> {
        match value.map(str::trim) {
            Some("day") => Ok(Every::Day),
            Some("week") => Ok(Every::Week),
            Some("semimonth") => Ok(Every::Semimonth),
            Some("month") => Ok(Every::Month),
            Some("year") => Ok(Every::Year),
            Some(other) => Err(format!(
                "period {other:?} is unknown; use day, week, semimonth, month or year"
            )),
            None => Err("period is required: day, week, semimonth, month or year".into()),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Every::Day => "day",
            Every::Week => "week",
            Every::Semimonth => "semimonth",
            Every::Month => "month",
            Every::Year => "year",
        }
    }

    /// The start of cycle `index` (0-based) of a schedule that starts on
    /// `start` and steps `frequency` periods. Months and years are counted
    /// from the start (31 January, then 28 February, then 31 March); a
    /// semimonth schedule starts on the 1st or the 16th and alternates.
    pub fn cycle_start(self, start: NaiveDate, frequency: i64, index: i64) -> Option<NaiveDate> {
        let steps = frequency.checked_mul(index)?;
        match self {
            Every::Day => start.checked_add_days(chrono::Days::new(u64::try_from(steps).ok()?)),
            Every::Week => start.checked_add_days(chrono::Days::new(
                u64::try_from(steps.checked_mul(7)?).ok()?,
            )),
            Every::Month => {
                start.checked_add_months(chrono::Months::new(u32::try_from(steps).ok()?))
            }
            Every::Year => start.checked_add_months(chrono::Months::new(
                u32::try_from(steps.checked_mul(12)?).ok()?,
            )),
            Every::Semimonth => {
                let half = i64::from(start.day() >= 16) + steps;
                let month_start = start
                    .with_day(1)?
                    .checked_add_months(chrono::Months::new(u32::try_from(half / 2).ok()?))?;
                month_start.with_day(if half % 2 == 0 { 1 } else { 16 })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn currencies_are_known_codes() {
        assert!(
            ISO_4217.windows(2).all(|w| w[0] < w[1]),
            "sorted for binary search"
        );
        assert_eq!(currency(Some("eur")).unwrap(), "EUR");
        assert!(currency(Some("XYZ")).unwrap_err().contains("ISO 4217"));
        assert!(currency(None).is_err());
    }

    #[test]
    fn cents_are_whole_and_not_negative() {
        assert_eq!(cents("price_cents", Some(&json!(1050))).unwrap(), 1050);
        assert_eq!(cents("price_cents", Some(&json!(0))).unwrap(), 0);
        for bad in [
            json!(-1),
            json!(10.5),
            json!("1050"),
            json!(null),
            json!(MAX_CENTS + 1),
        ] {
            assert!(cents("price_cents", Some(&bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn periods() {
        let p = Period::parse("2026-11").unwrap();
        assert_eq!(p.to_string(), "2026-11");
        assert_eq!(p.next().to_string(), "2026-12");
        assert_eq!(p.next().next().to_string(), "2027-01");
        assert_eq!(p.last_day().to_string(), "2026-11-30");
        for bad in ["2026-13", "2026-1", "26-11", "2026/11", "november"] {
            assert!(Period::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cycle_starts() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let jan31 = d("2026-01-31");
        assert_eq!(Every::Month.cycle_start(jan31, 1, 1), Some(d("2026-02-28")));
        assert_eq!(Every::Month.cycle_start(jan31, 1, 2), Some(d("2026-03-31")));
        assert_eq!(Every::Month.cycle_start(jan31, 3, 1), Some(d("2026-04-30")));
        assert_eq!(
            Every::Week.cycle_start(d("2026-11-02"), 2, 1),
            Some(d("2026-11-16"))
        );
        assert_eq!(
            Every::Day.cycle_start(d("2026-11-30"), 1, 1),
            Some(d("2026-12-01"))
        );
        assert_eq!(
            Every::Year.cycle_start(d("2024-02-29"), 1, 1),
            Some(d("2025-02-28"))
        );
        let first = d("2026-11-16");
        assert_eq!(
            Every::Semimonth.cycle_start(first, 1, 1),
            Some(d("2026-12-01"))
        );
        assert_eq!(
            Every::Semimonth.cycle_start(first, 1, 2),
            Some(d("2026-12-16"))
        );
        assert_eq!(
            Every::Semimonth.cycle_start(first, 2, 1),
            Some(d("2026-12-16"))
        );
    }
}
