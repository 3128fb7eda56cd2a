//! Money in minor units, as billing stores it and every client shows it:
//! how many decimals a currency's minor unit stands for (ISO 4217 exponent)
//! and an amount written in them.

/// Currencies whose minor unit is the unit itself (ISO 4217 exponent 0).
const NO_DECIMALS: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
];
/// Currencies with a thousandth as minor unit (ISO 4217 exponent 3).
const THREE_DECIMALS: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];

/// How many decimals the minor unit of `currency` stands for: 2 for USD
/// (cents), 0 for JPY (yen), 3 for KWD (fils).
pub fn exponent(currency: &str) -> u32 {
    if NO_DECIMALS.contains(&currency) {
        0
    } else if THREE_DECIMALS.contains(&currency) {
        3
    } else {
        2
    }
}

/// Minor units as a decimal amount in the currency's own decimals, with its
/// code: 123456 USD -> "1234.56 USD", 1500 JPY -> "1500 JPY", 1500 KWD -> "1.500 KWD".
pub fn amount(minor: i64, currency: &str) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    let decimals = exponent(currency);
    if decimals == 0 {
        return format!("{sign}{abs} {currency}");
    }
    let scale = 10u64.pow(decimals);
    format!(
        "{sign}{}.{:0width$} {currency}",
        abs / scale,
        abs % scale,
        width = decimals as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_use_each_currencys_decimals() {
        assert_eq!(amount(123456, "USD"), "1234.56 USD");
        assert_eq!(amount(5, "EUR"), "0.05 EUR");
        assert_eq!(amount(-5, "EUR"), "-0.05 EUR");
        assert_eq!(amount(1500, "JPY"), "1500 JPY");
        assert_eq!(amount(1500, "KWD"), "1.500 KWD");
    }
}
