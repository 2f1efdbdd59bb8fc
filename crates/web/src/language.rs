//! Which language a page is shown in: the visitor's own choice (the `olive_lang` cookie the
//! language switch sets) when there is one, else the best match in `Accept-Language`
//! (RFC 9110 §12.5.4), else English.

/// The languages the web app is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    English,
    Korean,
}

/// Longest `Accept-Language` value looked at; the rest is ignored.
const MAX_HEADER: usize = 1024;

impl Language {
    /// The BCP 47 tag the page is marked with.
    pub fn tag(self) -> &'static str {
        match self {
            Language::English => "en",
            Language::Korean => "ko",
        }
    }

    fn from_tag(tag: &str) -> Option<Language> {
        let primary = tag.split(['-', '_']).next().unwrap_or_default();
        if primary.eq_ignore_ascii_case("ko") {
            Some(Language::Korean)
        } else if primary.eq_ignore_ascii_case("en") {
            Some(Language::English)
        } else {
            None
        }
    }

    /// The language for a visitor with this cookie choice and `Accept-Language` header.
    pub fn choose(choice: Option<&str>, accept_language: Option<&str>) -> Language {
        if let Some(language) = choice.and_then(Language::from_tag) {
            return language;
        }
        accept_language.and_then(best_accepted).unwrap_or(Language::English)
    }
}

/// The supported language with the highest weight; the earlier one on a tie.
fn best_accepted(header: &str) -> Option<Language> {
    let header = &header[..floor_char_boundary(header, MAX_HEADER)];
    let mut best: Option<(Language, u16)> = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let Some(language) = Language::from_tag(parts.next().unwrap_or_default().trim()) else { continue };
        let weight = parts.find_map(|p| p.trim().strip_prefix("q=").map(quality)).unwrap_or(Some(1000));
        let Some(weight) = weight else { continue };
        if weight > 0 && best.is_none_or(|(_, w)| weight > w) {
            best = Some((language, weight));
        }
    }
    best.map(|(language, _)| language)
}

/// A quality value in thousandths (`q=0.8` is 800); `None` when it is not one.
fn quality(text: &str) -> Option<u16> {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths: u16 = format!("{fraction:0<3}").parse().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

fn floor_char_boundary(text: &str, at: usize) -> usize {
    if at >= text.len() {
        return text.len();
    }
    (0..=at).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::Language::{English, Korean};
    use super::*;

    #[test]
    fn the_visitors_choice_wins() {
        assert_eq!(Language::choose(Some("ko"), Some("en-US,en;q=0.9")), Korean);
        assert_eq!(Language::choose(Some("en"), Some("ko-KR")), English);
    }

    #[test]
    fn an_unknown_choice_falls_back_to_the_header() {
        assert_eq!(Language::choose(Some("fr"), Some("ko-KR")), Korean);
        assert_eq!(Language::choose(Some(""), None), English);
    }

    #[test]
    fn the_header_is_read_by_weight() {
        assert_eq!(Language::choose(None, Some("ko-KR,ko;q=0.9,en-US;q=0.8,en;q=0.7")), Korean);
        assert_eq!(Language::choose(None, Some("en;q=0.5, ko;q=0.6")), Korean);
        assert_eq!(Language::choose(None, Some("fr-CH, fr;q=0.9, en;q=0.8, ko;q=0.7")), English);
        assert_eq!(Language::choose(None, Some("ko;q=0, en;q=0.1")), English);
        assert_eq!(Language::choose(None, Some("ko_KR")), Korean);
        assert_eq!(Language::choose(None, Some("KO")), Korean);
    }

    #[test]
    fn nothing_usable_means_english() {
        for header in ["", "*", "fr, de", "ko;q=0", "ko;q=2", "ko;q=0.0001", "ko;q=abc", ";;;,,,", "ko;q=1.5"] {
            assert_eq!(Language::choose(None, Some(header)), English, "{header:?}");
        }
        assert_eq!(Language::choose(None, None), English);
    }

    #[test]
    fn hostile_headers_are_cut_short_safely() {
        let long = format!("{}ko", "x,".repeat(10_000));
        assert_eq!(Language::choose(None, Some(&long)), English, "only the first KiB is read");
        let korean = "가".repeat(1000);
        assert_eq!(Language::choose(None, Some(&korean)), English);
        assert_eq!(Language::choose(None, Some(&format!("ko,{korean}"))), Korean);
    }
}
