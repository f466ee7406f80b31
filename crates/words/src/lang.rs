//! The reader's language and how it is negotiated.

use std::fmt;

/// A language yuanlu speaks. Adding one means a folder under `locales/` and a variant here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    /// Simplified Chinese (`zh-CN`).
    Zh,
    /// English (`en`).
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Zh, Lang::En];

    /// The BCP 47 tag used in `lang=` attributes, cookies and `Content-Language`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// Parses one tag as a person or browser writes it (`zh`, `zh-CN`, `zh-Hans-CN`, `en-US`,
    /// `EN`); `None` for languages yuanlu does not speak.
    pub fn parse(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The best language in an `Accept-Language` header, by q-value (ties keep header order).
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut best: Option<(Lang, u16)> = None;
        for item in header.split(',') {
            let mut parts = item.split(';');
            let Some(lang) = parts.next().and_then(Lang::parse) else {
                continue;
            };
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(1000, parse_q_millis);
            if q > 0 && best.is_none_or(|(_, bq)| q > bq) {
                best = Some((lang, q));
            }
        }
        best.map(|(lang, _)| lang)
    }

    /// `?lang=` wins, then a remembered choice (a cookie), then `Accept-Language`, then
    /// `default`.
    pub fn negotiate(
        query: Option<&str>,
        remembered: Option<&str>,
        accept_language: Option<&str>,
        default: Lang,
    ) -> Lang {
        query
            .and_then(Lang::parse)
            .or_else(|| remembered.and_then(Lang::parse))
            .or_else(|| accept_language.and_then(Lang::from_accept_language))
            .unwrap_or(default)
    }
}

/// q-values are at most three decimals (RFC 9110 §12.4.2); malformed ones count as 0.
fn parse_q_millis(q: &str) -> u16 {
    let q = q.trim();
    let (int, frac) = q.split_once('.').unwrap_or((q, ""));
    let int: u16 = match int {
        "0" => 0,
        "1" => 1,
        _ => return 0,
    };
    let mut millis = int * 1000;
    for (i, c) in frac.chars().take(3).enumerate() {
        let Some(d) = c.to_digit(10) else { return 0 };
        millis += d as u16 * [100, 10, 1][i];
    }
    millis.min(1000)
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_tags_browsers_send() {
        assert_eq!(Lang::parse("zh-Hans-CN"), Some(Lang::Zh));
        assert_eq!(Lang::parse("EN_us"), Some(Lang::En));
        assert_eq!(Lang::parse("fr"), None);
        assert_eq!(Lang::parse(""), None);
    }

    #[test]
    fn accept_language_takes_the_highest_q() {
        assert_eq!(
            Lang::from_accept_language("en;q=0.5, zh-CN;q=0.9"),
            Some(Lang::Zh)
        );
        assert_eq!(
            Lang::from_accept_language("fr, en-GB;q=0.8"),
            Some(Lang::En)
        );
        assert_eq!(
            Lang::from_accept_language("zh;q=0, en;q=0.1"),
            Some(Lang::En)
        );
        assert_eq!(Lang::from_accept_language("de, fr"), None);
        assert_eq!(Lang::from_accept_language("en;q=bogus"), None);
    }

    #[test]
    fn query_beats_cookie_beats_header_beats_default() {
        assert_eq!(
            Lang::negotiate(Some("en"), Some("zh"), Some("zh"), Lang::Zh),
            Lang::En
        );
        assert_eq!(
            Lang::negotiate(Some("xx"), Some("zh"), Some("en"), Lang::En),
            Lang::Zh
        );
        assert_eq!(
            Lang::negotiate(None, None, Some("zh-TW"), Lang::En),
            Lang::Zh
        );
        assert_eq!(Lang::negotiate(None, None, None, Lang::En), Lang::En);
    }
}
