//! Money is an integer count of a currency's minor unit (the won has none below itself, so
//! 1 KRW is 1 minor unit). Floating point never touches a price.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// ISO 4217 currencies Olive prices in. KRW is the default (the original retailer is Korean).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Currency {
    #[default]
    Krw,
    Usd,
}

impl Currency {
    pub fn code(self) -> &'static str {
        match self {
            Currency::Krw => "KRW",
            Currency::Usd => "USD",
        }
    }

    /// How many minor units make one major unit (0 decimals for KRW, 2 for USD).
    pub fn decimals(self) -> u32 {
        match self {
            Currency::Krw => 0,
            Currency::Usd => 2,
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown currency {0:?} (expected KRW or USD)")]
pub struct UnknownCurrency(pub String);

impl FromStr for Currency {
    type Err = UnknownCurrency;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "KRW" => Ok(Currency::Krw),
            "USD" => Ok(Currency::Usd),
            other => Err(UnknownCurrency(other.to_owned())),
        }
    }
}

/// An amount in a currency's minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Self {
        Money { minor, currency }
    }

    /// `self × quantity`, or `None` on overflow.
    pub fn times(self, quantity: i64) -> Option<Money> {
        self.minor.checked_mul(quantity).map(|minor| Money { minor, ..self })
    }
}

impl fmt::Display for Money {
    /// `₩12,000` / `$12.50`: grouping by thousands, the currency's own decimals.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let symbol = match self.currency {
            Currency::Krw => "₩",
            Currency::Usd => "$",
        };
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        let scale = 10u64.pow(self.currency.decimals());
        let (major, minor) = (abs / scale, abs % scale);
        let digits = major.to_string();
        let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        write!(f, "{sign}{symbol}{grouped}")?;
        if self.currency.decimals() > 0 {
            write!(f, ".{minor:0width$}", width = self.currency.decimals() as usize)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_won_with_grouping_and_no_decimals() {
        assert_eq!(Money::new(12_000, Currency::Krw).to_string(), "₩12,000");
        assert_eq!(Money::new(1_234_567, Currency::Krw).to_string(), "₩1,234,567");
        assert_eq!(Money::new(999, Currency::Krw).to_string(), "₩999");
        assert_eq!(Money::new(-5_000, Currency::Krw).to_string(), "-₩5,000");
    }

    #[test]
    fn formats_dollars_with_cents() {
        assert_eq!(Money::new(1_250, Currency::Usd).to_string(), "$12.50");
        assert_eq!(Money::new(5, Currency::Usd).to_string(), "$0.05");
    }

    #[test]
    fn multiplication_reports_overflow() {
        assert_eq!(Money::new(i64::MAX, Currency::Krw).times(2), None);
        assert_eq!(Money::new(3, Currency::Krw).times(4), Some(Money::new(12, Currency::Krw)));
    }

    #[test]
    fn currency_round_trips() {
        for c in [Currency::Krw, Currency::Usd] {
            assert_eq!(c.code().parse::<Currency>().unwrap(), c);
        }
        assert!("krw".parse::<Currency>().is_err());
    }
}
