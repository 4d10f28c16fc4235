//! [`Scrubber`]: replaces every configured secret — and each form an upstream could echo it
//! back in (Base64, percent-encoding, JSON escaping, any ASCII case) — with `<redacted>`.
//!
//! Built once per upstream client from its credentials ([`super::UpstreamClient::scrubber`]);
//! capture bundles go through it, and any text that may quote an upstream's answer can.
//! Matching is on bytes, so it also works on bodies that are not UTF-8.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

/// What a secret is replaced with.
pub const REDACTED: &str = "<redacted>";

/// A set of secrets, each with its derived forms, to cut out of text and bytes.
/// `Debug` shows only how many forms it holds.
#[derive(Clone, Default)]
pub struct Scrubber {
    /// ASCII-lowercased forms, longest first, without duplicates or empty strings.
    needles: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scrubber({} forms)", self.needles.len())
    }
}

impl Scrubber {
    /// A scrubber for `secrets`; each is added with its derived forms (see [`Scrubber::add`]).
    pub fn new<S: AsRef<str>>(secrets: impl IntoIterator<Item = S>) -> Scrubber {
        let mut s = Scrubber::default();
        for secret in secrets {
            s.add(secret.as_ref());
        }
        s
    }

    /// Adds one secret: the value itself (and trimmed), its standard and URL-safe Base64
    /// (padded or not), its percent-encoded forms and its JSON-escaped form. Pass composite
    /// values (a `company+public:private` pair, a `vendor:partner` token source) as their own
    /// secrets: the Base64 of a whole is not found by looking for the Base64 of its parts.
    pub fn add(&mut self, secret: &str) {
        for value in [secret, secret.trim()] {
            // Blank "secrets" would cut every space out of a bundle; they cannot be keys.
            if value.trim().is_empty() {
                continue;
            }
            let bytes = value.as_bytes();
            let percent: String = url::form_urlencoded::byte_serialize(bytes).collect();
            let json = serde_json::to_string(value).unwrap_or_default();
            let json = json.trim_matches('"');
            let forms = [
                value.to_owned(),
                STANDARD.encode(bytes),
                STANDARD_NO_PAD.encode(bytes),
                URL_SAFE.encode(bytes),
                URL_SAFE_NO_PAD.encode(bytes),
                percent.replace('+', "%20"),
                percent,
                json.to_owned(),
            ];
            for form in forms {
                let lower = form.into_bytes().to_ascii_lowercase();
                if !lower.is_empty() && !self.needles.contains(&lower) {
                    self.needles.push(lower);
                }
            }
        }
        // Longest first, so a form that contains a shorter one is cut out whole.
        self.needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    }

    /// Adds every form `other` holds.
    pub fn extend(&mut self, other: &Scrubber) {
        for n in &other.needles {
            if !self.needles.contains(n) {
                self.needles.push(n.clone());
            }
        }
        self.needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    }

    /// Whether no secret was added.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// `text` with every form of every secret replaced by [`REDACTED`].
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self.scrub_bytes(text.as_bytes()) {
            Cow::Borrowed(_) => Cow::Borrowed(text),
            // Forms are whole UTF-8 strings and case folding is ASCII-only, so every cut is on
            // a character boundary and the result is UTF-8.
            Cow::Owned(b) => Cow::Owned(
                String::from_utf8(b)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into()),
            ),
        }
    }

    /// `bytes` with every form of every secret replaced by [`REDACTED`].
    pub fn scrub_bytes<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        let cuts = self.cuts(bytes);
        if cuts.is_empty() {
            return Cow::Borrowed(bytes);
        }
        let mut out = Vec::with_capacity(bytes.len());
        let mut at = 0;
        for (start, end) in cuts {
            out.extend_from_slice(&bytes[at..start]);
            out.extend_from_slice(REDACTED.as_bytes());
            at = end;
        }
        out.extend_from_slice(&bytes[at..]);
        Cow::Owned(out)
    }

    /// Whether `bytes` hold any form of any secret.
    pub fn contains_secret(&self, bytes: &[u8]) -> bool {
        if self.needles.is_empty() {
            return false;
        }
        let lower = bytes.to_ascii_lowercase();
        self.needles.iter().any(|n| find(&lower, n, 0).is_some())
    }

    /// The byte ranges to cut, sorted and merged.
    fn cuts(&self, bytes: &[u8]) -> Vec<(usize, usize)> {
        if self.needles.is_empty() || bytes.is_empty() {
            return Vec::new();
        }
        let lower = bytes.to_ascii_lowercase();
        let mut ranges = Vec::new();
        for needle in &self.needles {
            let mut from = 0;
            while let Some(at) = find(&lower, needle, from) {
                ranges.push((at, at + needle.len()));
                from = at + 1;
            }
        }
        ranges.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(ranges.len());
        for (s, e) in ranges {
            match merged.last_mut() {
                Some(last) if s < last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        merged
    }
}

/// The first position at or after `from` where `needle` (non-empty) occurs in `hay`.
fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let first = *needle.first()?;
    let mut start = from;
    while start + needle.len() <= hay.len() {
        let at = start + hay[start..].iter().position(|&b| b == first)?;
        if hay[at..].starts_with(needle) {
            return Some(at);
        }
        start = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_derived_form_is_cut_in_any_ascii_case() {
        let s = Scrubber::new(["sk-Live/42+x"]);
        let forms = [
            "sk-Live/42+x".to_owned(),
            "SK-LIVE/42+X".to_owned(),
            STANDARD.encode("sk-Live/42+x"),
            URL_SAFE_NO_PAD.encode("sk-Live/42+x"),
            "sk-Live%2F42%2Bx".to_owned(),
        ];
        for form in forms {
            let text = format!("before {form} after");
            assert_eq!(s.scrub(&text), "before <redacted> after", "{form}");
            assert!(s.contains_secret(text.as_bytes()), "{form}");
        }
        assert!(!s.contains_secret(b"nothing to see"));
        assert!(matches!(s.scrub("nothing to see"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_escaped_secrets_and_overlaps_are_cut_whole() {
        let s = Scrubber::new(["a\"b\\c", "company+pub:priv", "pub"]);
        let body = serde_json::json!({"echo": "x a\"b\\c y"}).to_string();
        let out = s.scrub(&body);
        assert!(!out.contains("a\\\"b"), "{out}");
        serde_json::from_str::<serde_json::Value>(&out).expect("still JSON");
        // The longer form wins over the shorter one inside it: one cut, not two.
        assert_eq!(s.scrub("[company+pub:priv]"), "[<redacted>]");
        assert_eq!(s.scrub("pubpub"), "<redacted><redacted>");
    }

    #[test]
    fn bytes_that_are_not_utf8_are_scrubbed_too_and_debug_shows_nothing() {
        let s = Scrubber::new(["k3y-value"]);
        let mut raw = vec![0xff, 0xfe];
        raw.extend_from_slice(b"k3y-value");
        raw.push(0x80);
        let out = s.scrub_bytes(&raw);
        assert_eq!(&out[..], &[&[0xffu8, 0xfe][..], REDACTED.as_bytes(), &[0x80]].concat()[..]);
        assert!(!format!("{s:?}").contains("k3y"));
        assert!(Scrubber::new([" ", ""]).is_empty());
    }
}
