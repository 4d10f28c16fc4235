//! A tiny HTML writer: everything that is not a literal of this module's callers goes through
//! [`Html::text`] or [`Html::attr`], which escape it. Customer and account names come from
//! upstream APIs and are attacker-controlled, so there is no way to write them unescaped.

use std::fmt::Write as _;

/// An HTML document being written. Literal markup goes in with [`Html::raw`], which only
/// accepts `&'static str`, so dynamic text cannot reach the page without escaping.
#[derive(Debug, Default)]
pub struct Html {
    out: String,
}

impl Html {
    /// An empty document.
    pub fn new() -> Html {
        Html { out: String::with_capacity(64 * 1024) }
    }

    /// Appends literal markup written in this module tree.
    pub fn raw(&mut self, markup: &'static str) -> &mut Html {
        self.out.push_str(markup);
        self
    }

    /// Appends text content, escaped.
    pub fn text(&mut self, s: impl AsRef<str>) -> &mut Html {
        escape_into(&mut self.out, s.as_ref());
        self
    }

    /// Appends a formatted value (numbers, dates) as escaped text.
    pub fn display(&mut self, v: impl std::fmt::Display) -> &mut Html {
        let mut s = String::new();
        let _ = write!(s, "{v}");
        self.text(s)
    }

    /// Appends ` name="value"` with the value escaped (names are literals).
    pub fn attr(&mut self, name: &'static str, value: impl AsRef<str>) -> &mut Html {
        self.out.push(' ');
        self.out.push_str(name);
        self.out.push_str("=\"");
        escape_into(&mut self.out, value.as_ref());
        self.out.push('"');
        self
    }

    /// Appends markup another writer produced (itself built through this type).
    pub fn append(&mut self, other: Html) -> &mut Html {
        self.out.push_str(&other.out);
        self
    }

    /// The finished document.
    pub fn finish(self) -> String {
        self.out
    }
}

/// Escapes the five characters that matter in text and double- or single-quoted attributes.
/// Control characters other than tab and newline are dropped: they have no business in a
/// name and some confuse terminals that people paste the TOML stanzas into.
pub fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
}

/// Percent-encodes a query-string value (everything but unreserved characters), so links
/// such as `?status=under_billed&account=…` survive any account name.
pub fn query_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A time for people, in UTC: how every time on the page is written.
pub fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_attributes_cannot_break_out() {
        let mut h = Html::new();
        h.raw("<td").attr("title", "\"><script>alert(1)</script>").raw(">");
        h.text("<img src=x onerror=alert('x')> & \u{0}");
        h.raw("</td>");
        let s = h.finish();
        assert_eq!(
            s,
            "<td title=\"&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;\">\
             &lt;img src=x onerror=alert(&#39;x&#39;)&gt; &amp; </td>"
        );
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(query_value("Leak & Co/\"x\""), "Leak%20%26%20Co%2F%22x%22");
        assert_eq!(query_value("under_billed"), "under_billed");
        assert_eq!(query_value("Müller"), "M%C3%BCller");
    }
}
