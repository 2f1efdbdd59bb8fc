//! Field checks shared by every input: lengths counted in characters (Korean counts per
//! character), no control characters, trimmed.

use crate::{CommerceError, Result};

/// A trimmed single-line text of `min..=max` characters with no control characters.
pub fn line(field: &'static str, value: &str, min: usize, max: usize) -> Result<String> {
    let value = value.trim();
    let len = value.chars().count();
    if len < min || len > max {
        return Err(CommerceError::invalid(field, format!("must be {min} to {max} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(CommerceError::invalid(field, "must not contain control characters"));
    }
    Ok(value.to_owned())
}

/// Multi-line text: like [`line`] but newlines and tabs are allowed.
pub fn text(field: &'static str, value: &str, max: usize) -> Result<String> {
    let value = value.trim();
    if value.chars().count() > max {
        return Err(CommerceError::invalid(field, format!("must be at most {max} characters")));
    }
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r') {
        return Err(CommerceError::invalid(field, "must not contain control characters"));
    }
    Ok(value.to_owned())
}

/// An integer within `min..=max`.
pub fn range(field: &'static str, value: i64, min: i64, max: i64) -> Result<i64> {
    if value < min || value > max {
        return Err(CommerceError::invalid(field, format!("must be between {min} and {max}")));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_characters_not_bytes() {
        assert_eq!(line("name", "  선크림  ", 1, 3).unwrap(), "선크림");
        assert!(line("name", "선크림입니다", 1, 3).is_err());
    }

    #[test]
    fn refuses_control_characters_and_blank() {
        assert!(line("name", "a\u{0}b", 1, 10).is_err());
        assert!(line("name", "a\nb", 1, 10).is_err());
        assert!(line("name", "   ", 1, 10).is_err());
        assert_eq!(text("d", "a\nb", 10).unwrap(), "a\nb");
        assert!(text("d", "a\u{7}b", 10).is_err());
    }

    #[test]
    fn ranges_are_inclusive() {
        assert_eq!(range("q", 1, 1, 5).unwrap(), 1);
        assert_eq!(range("q", 5, 1, 5).unwrap(), 5);
        assert!(range("q", 0, 1, 5).is_err());
        assert!(range("q", 6, 1, 5).is_err());
    }
}
