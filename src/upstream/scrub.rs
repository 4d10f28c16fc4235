//! [`Scrubber`]: replaces every configured secret — and each form an upstream could echo it
//! back in (Base64, percent-encoding, JSON and HTML escaping, any ASCII case) — with
//! `<redacted>`.
//!
//! Built once per upstream client from its credentials ([`super::UpstreamClient::scrubber`]):
//! the client cuts them out of every error it makes and every body it hands out, capture
//! bundles go through it, and the log cuts the union of every configured secret out of each
//! line. Matching is on bytes (one Aho-Corasick pass), so it also works on bodies that are
//! not UTF-8 and costs little on megabyte pages.

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, MatchKind};
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
    /// All of `needles` at once, ASCII case-insensitive, reporting overlapping matches.
    /// `None` when empty (or, in theory, when the automaton cannot be built: then the slow
    /// search below is used, never no search).
    matcher: Option<AhoCorasick>,
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
            s.push_forms(secret.as_ref());
        }
        s.rebuild();
        s
    }

    /// Adds one secret: the value itself (and trimmed), its standard and URL-safe Base64
    /// (padded or not), its percent-encoded forms (form encoding, `%20` for spaces, RFC 3986),
    /// its JSON-escaped forms (as serde writes it, with `/` escaped as PHP does, ASCII-only
    /// with `<>&'` escaped as Python, Go and Rails do, and escaped twice for a JSON document
    /// nested in a string) and its HTML-escaped forms. Pass
    /// composite values (a `company+public:private` pair, a `vendor:partner` token source) as
    /// their own secrets: the Base64 of a whole is not found by looking for the Base64 of its
    /// parts.
    pub fn add(&mut self, secret: &str) {
        self.push_forms(secret);
        self.rebuild();
    }

    /// Adds every form `other` holds.
    pub fn extend(&mut self, other: &Scrubber) {
        for n in &other.needles {
            if !self.needles.contains(n) {
                self.needles.push(n.clone());
            }
        }
        self.rebuild();
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
        match &self.matcher {
            Some(ac) => ac.is_match(bytes),
            None => !self.cuts(bytes).is_empty(),
        }
    }

    fn push_forms(&mut self, secret: &str) {
        for value in [secret, secret.trim()] {
            // Blank "secrets" would cut every space out of a bundle; they cannot be keys.
            if value.trim().is_empty() {
                continue;
            }
            for form in forms(value) {
                let lower = form.into_bytes().to_ascii_lowercase();
                if !lower.is_empty() && !self.needles.contains(&lower) {
                    self.needles.push(lower);
                }
            }
        }
    }

    fn rebuild(&mut self) {
        // Longest first: a deterministic order (and the slow search's preference).
        self.needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        self.matcher = if self.needles.is_empty() {
            None
        } else {
            // Standard semantics report overlapping matches, so two secrets that overlap in a
            // text are both cut (the ranges are merged below).
            AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .build(&self.needles)
                .ok()
        };
    }

    /// The byte ranges to cut, sorted and merged.
    fn cuts(&self, bytes: &[u8]) -> Vec<(usize, usize)> {
        if self.needles.is_empty() || bytes.is_empty() {
            return Vec::new();
        }
        let mut ranges: Vec<(usize, usize)> = match &self.matcher {
            Some(ac) => ac.find_overlapping_iter(bytes).map(|m| (m.start(), m.end())).collect(),
            None => {
                let lower = bytes.to_ascii_lowercase();
                let mut found = Vec::new();
                for needle in &self.needles {
                    let mut from = 0;
                    while let Some(at) = find(&lower, needle, from) {
                        found.push((at, at + needle.len()));
                        from = at + 1;
                    }
                }
                found
            }
        };
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

/// Every form of `value` an upstream could echo it in.
fn forms(value: &str) -> Vec<String> {
    let bytes = value.as_bytes();
    let mut out = vec![value.to_owned()];
    for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
        out.push(engine.encode(bytes));
    }
    let form: String = url::form_urlencoded::byte_serialize(bytes).collect();
    out.push(form.replace('+', "%20"));
    out.push(form);
    out.push(percent_rfc3986(bytes));
    let json = json_escape(value);
    let json_slash = json.replace('/', "\\/");
    // Escaped twice: an error body that carries another JSON document as a string.
    out.push(json_escape(&json_slash));
    out.push(json_escape(&json));
    out.push(json_slash);
    out.push(json);
    out.push(json_ascii(value));
    out.push(html(value, "&#39;"));
    out.push(html(value, "&#x27;"));
    out
}

/// `value` as the inside of a JSON string (serde's escaping).
fn json_escape(value: &str) -> String {
    let json = serde_json::to_string(value).unwrap_or_default();
    json.get(1..json.len().saturating_sub(1)).unwrap_or_default().to_owned()
}

/// Percent-encoding that keeps only RFC 3986's unreserved characters (JavaScript's
/// `encodeURIComponent` and most URL libraries).
fn percent_rfc3986(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A JSON string body (without quotes) as an ASCII-only, HTML-safe encoder writes it.
fn json_ascii(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\'' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
    }
    out
}

/// `value` as an HTML page would quote it, with `apostrophe` for `'`.
fn html(value: &str, apostrophe: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str(apostrophe),
            c => out.push(c),
        }
    }
    out
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
    fn the_forms_other_encoders_write_are_cut_too() {
        let key = "k3y/\"Quote\"+<é>~'s";
        let s = Scrubber::new([key]);
        let forms = [
            // PHP's json_encode escapes slashes.
            "k3y\\/\\\"Quote\\\"+<é>~'s",
            // Python's ensure_ascii, Go's and Rails' HTML-safe JSON.
            "k3y/\\\"Quote\\\"+\\u003c\\u00e9\\u003e~\\u0027s",
            // encodeURIComponent keeps `~`; form encoding does not.
            "k3y%2F%22Quote%22%2B%3C%C3%A9%3E~%27s",
            "k3y%2F%22Quote%22%2B%3C%C3%A9%3E%7E%27s",
            // An HTML error page.
            "k3y/&quot;Quote&quot;+&lt;é&gt;~&#39;s",
            "k3y/&quot;Quote&quot;+&lt;é&gt;~&#x27;s",
        ];
        for form in forms {
            let text = format!("[{form}]");
            assert_eq!(s.scrub(&text), "[<redacted>]", "{form}");
        }
        // A serde error quotes a value with Rust's Debug escaping, which is JSON's here.
        let quoted = format!("invalid type: string {key:?}, expected u64");
        assert_eq!(s.scrub(&quoted), "invalid type: string \"<redacted>\", expected u64");
    }

    #[test]
    fn overlapping_secrets_are_cut_whole_and_found_anywhere_in_big_bodies() {
        let s = Scrubber::new(["abcd1234", "1234wxyz"]);
        assert_eq!(s.scrub("<abcd1234wxyz>"), "<<redacted>>");
        let mut body = "x".repeat(1 << 20);
        body.push_str("ABCD1234");
        let out = s.scrub(&body);
        assert!(out.ends_with("x<redacted>") && out.len() == (1 << 20) + REDACTED.len());
        let mut grown = Scrubber::new(["first-secret"]);
        grown.extend(&Scrubber::new(["second-secret"]));
        assert_eq!(grown.scrub("first-secret second-secret"), "<redacted> <redacted>");
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
