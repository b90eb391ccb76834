//! The pages' languages: Fluent catalogues (`services/gateway/locales/*.ftl`) for English,
//! Russian, Turkish, Azerbaijani and Kazakh, chosen by `?lang=`, the `tamga_lang` cookie,
//! then `Accept-Language`.

use std::collections::BTreeMap;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource};

/// The languages, in the order of the switch on the page.
pub const LANGUAGES: [&str; 5] = ["en", "ru", "tr", "az", "kk"];

const CATALOGUES: [(&str, &str); 5] = [
    ("en", include_str!("../../locales/en.ftl")),
    ("ru", include_str!("../../locales/ru.ftl")),
    ("tr", include_str!("../../locales/tr.ftl")),
    ("az", include_str!("../../locales/az.ftl")),
    ("kk", include_str!("../../locales/kk.ftl")),
];

/// Every catalogue, parsed once.
pub struct I18n {
    bundles: Vec<(&'static str, FluentBundle<FluentResource>)>,
}

impl std::fmt::Debug for I18n {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("I18n").finish_non_exhaustive()
    }
}

impl I18n {
    /// Parses the embedded catalogues; an error names the first broken one (a build-time
    /// mistake, caught by the tests).
    pub fn new() -> Result<Self, String> {
        let mut bundles = Vec::new();
        for (lang, text) in CATALOGUES {
            let resource = FluentResource::try_new(text.to_owned())
                .map_err(|(_, errors)| format!("locales/{lang}.ftl: {errors:?}"))?;
            let id: unic_langid::LanguageIdentifier =
                lang.parse().map_err(|e| format!("{lang}: {e}"))?;
            let mut bundle = FluentBundle::new_concurrent(vec![id]);
            // Isolation marks around arguments confuse copy-paste of ids and dates.
            bundle.set_use_isolating(false);
            bundle
                .add_resource(resource)
                .map_err(|e| format!("locales/{lang}.ftl: {e:?}"))?;
            bundles.push((lang, bundle));
        }
        Ok(Self { bundles })
    }

    fn bundle(&self, lang: &str) -> Option<&FluentBundle<FluentResource>> {
        self.bundles
            .iter()
            .find(|(l, _)| *l == lang)
            .map(|(_, b)| b)
    }

    /// One message in `lang` (falling back to English, then to the key itself).
    pub fn get(&self, lang: &str, key: &str, args: &[(&str, &str)]) -> String {
        let mut fa = FluentArgs::new();
        for (k, v) in args {
            fa.set(*k, (*v).to_owned());
        }
        for l in [lang, "en"] {
            if let Some(b) = self.bundle(l) {
                if let Some(pattern) = b.get_message(key).and_then(|m| m.value()) {
                    let mut errors = Vec::new();
                    return b
                        .format_pattern(pattern, Some(&fa), &mut errors)
                        .into_owned();
                }
            }
        }
        key.to_owned()
    }

    /// True when `lang` (or English) has `key`.
    pub fn has(&self, lang: &str, key: &str) -> bool {
        [lang, "en"]
            .iter()
            .any(|l| self.bundle(l).is_some_and(|b| b.has_message(key)))
    }

    /// Every message of `lang` without arguments, for the templates (`msg["key"]`).
    pub fn all(&self, lang: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for l in ["en", lang] {
            let Some(b) = self.bundle(l) else { continue };
            for (_, text) in CATALOGUES.iter().filter(|(c, _)| *c == l) {
                for line in text.lines() {
                    if let Some((key, _)) = line.split_once(" = ") {
                        let key = key.trim();
                        if let Some(pattern) = b.get_message(key).and_then(|m| m.value()) {
                            let mut errors = Vec::new();
                            let v = b.format_pattern(pattern, None, &mut errors);
                            out.insert(key.to_owned(), v.into_owned());
                        }
                    }
                }
            }
        }
        out
    }
}

/// The language of a request: `?lang=`, then the cookie, then the best `Accept-Language`
/// match (by q-value, primary subtag), then English.
pub fn negotiate(
    query_lang: Option<&str>,
    cookie: Option<&str>,
    accept: Option<&str>,
) -> &'static str {
    let known = |s: &str| {
        let primary = s
            .split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        LANGUAGES.iter().copied().find(|l| *l == primary)
    };
    if let Some(l) = query_lang
        .and_then(known)
        .or_else(|| cookie.and_then(known))
    {
        return l;
    }
    let mut best: Option<(f32, &'static str)> = None;
    for item in accept.unwrap_or("").split(',') {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or("").trim();
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        if let Some(l) = known(tag) {
            if best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, l));
            }
        }
    }
    best.map_or("en", |(_, l)| l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogue_parses_and_has_every_english_key() {
        let i = I18n::new().unwrap();
        let en = i.all("en");
        for lang in LANGUAGES {
            let b = i.bundle(lang).unwrap();
            for key in en.keys() {
                assert!(b.has_message(key), "{lang} lacks {key}");
            }
        }
        assert_eq!(
            i.get("ru", "checked-against", &[("date", "2026-12-05")]),
            "Проверено по списку доверия от 2026-12-05."
        );
        assert_eq!(i.get("kk", "no-such-key", &[]), "no-such-key");
    }

    #[test]
    fn negotiation() {
        assert_eq!(negotiate(None, None, None), "en");
        assert_eq!(negotiate(None, None, Some("ru-RU,ru;q=0.9,en;q=0.8")), "ru");
        assert_eq!(negotiate(None, None, Some("de, kk;q=0.5, tr;q=0.7")), "tr");
        assert_eq!(negotiate(None, Some("az"), Some("ru")), "az");
        assert_eq!(negotiate(Some("kk"), Some("az"), Some("ru")), "kk");
        assert_eq!(negotiate(Some("xx"), None, Some("fr")), "en");
    }
}
