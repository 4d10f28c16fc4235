//! Paging rules (reference §12 #2–#5): read `X-Pagination` when it is usable (any of the
//! known key spellings, numbers or numeric strings); otherwise stop on an empty page or on a
//! page shorter than the largest seen. A short page alone (below the requested `per_page`)
//! never ends a listing, because the server may cap `per_page` lower than asked.

use serde_json::Value;

/// The `per_page` every list request sends.
pub const PER_PAGE: u32 = 100;

/// The name of the pagination header.
pub const HEADER: &str = "x-pagination";

/// What an `X-Pagination` header said. Every field is optional.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageInfo {
    /// The page this answer is (1-based).
    pub page: Option<u64>,
    /// The effective page size.
    pub per_page: Option<u64>,
    /// Items in the whole listing.
    pub total: Option<u64>,
    /// Pages in the whole listing.
    pub total_pages: Option<u64>,
}

impl PageInfo {
    /// Parses the header value; `None` when it is not a JSON object with any usable number.
    pub fn parse(value: &str) -> Option<PageInfo> {
        let v: Value = serde_json::from_str(value.trim()).ok()?;
        let obj = v.as_object()?;
        let num = |keys: &[&str]| keys.iter().find_map(|k| obj.get(*k).and_then(as_count));
        let info = PageInfo {
            page: num(&["page", "current_page", "current"]),
            per_page: num(&["per_page", "page_size", "limit", "per"]),
            total: num(&["total", "total_count", "total_entries", "count", "total_items"]),
            total_pages: num(&["total_pages", "pages", "page_count", "last_page"]),
        };
        (info != PageInfo::default()).then_some(info)
    }

    /// Pages in the listing, from `total_pages` or from `total` and `per_page`.
    pub fn pages(&self) -> Option<u64> {
        self.total_pages.or_else(|| match (self.total, self.per_page) {
            (Some(0), _) => Some(0),
            (Some(t), Some(p)) if p > 0 => Some(t.div_ceil(p)),
            _ => None,
        })
    }
}

/// A non-negative integer from a JSON number or numeric string.
fn as_count(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Decides, page by page, whether a listing goes on.
#[derive(Debug, Default)]
pub struct Pager {
    largest: usize,
}

impl Pager {
    /// A pager before the first page.
    pub fn new() -> Pager {
        Pager::default()
    }

    /// After receiving `page` (1-based) with `len` items and its parsed header: whether to
    /// fetch `page + 1`.
    pub fn more_after(&mut self, page: u64, len: usize, info: Option<PageInfo>) -> bool {
        let largest_before = self.largest;
        self.largest = self.largest.max(len);
        if len == 0 {
            return false;
        }
        if let Some(pages) = info.and_then(|i| i.pages()) {
            return page < pages;
        }
        len >= largest_before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn convention_header_parses() {
        let i = PageInfo::parse(r#"{"page":1,"per_page":25,"total":123,"total_pages":5}"#).unwrap();
        assert_eq!(
            i,
            PageInfo { page: Some(1), per_page: Some(25), total: Some(123), total_pages: Some(5) }
        );
        assert_eq!(i.pages(), Some(5));
    }

    #[test]
    fn alternative_keys_and_string_numbers_parse() {
        let i =
            PageInfo::parse(r#"{"current_page":"2","per_page":"50","total_count":"101"}"#).unwrap();
        assert_eq!(i.page, Some(2));
        assert_eq!(i.pages(), Some(3));
        let empty = PageInfo::parse(r#"{"total":0,"per_page":100}"#).unwrap();
        assert_eq!(empty.pages(), Some(0));
        let no_total = PageInfo::parse(r#"{"page":1}"#).unwrap();
        assert_eq!(no_total.pages(), None);
    }

    #[test]
    fn garbage_headers_are_ignored() {
        for bad in ["", "nope", "[1,2]", r#"{"page":"x"}"#, r#"{"other":1}"#, "{", "42"] {
            assert_eq!(PageInfo::parse(bad), None, "{bad:?}");
        }
    }

    fn header(pages: u64) -> Option<PageInfo> {
        Some(PageInfo { total_pages: Some(pages), ..PageInfo::default() })
    }

    #[test]
    fn with_a_header_stop_after_total_pages() {
        let mut p = Pager::new();
        assert!(p.more_after(1, 100, header(3)));
        assert!(p.more_after(2, 100, header(3)));
        assert!(!p.more_after(3, 100, header(3)));
        let mut p = Pager::new();
        assert!(!p.more_after(1, 0, header(0)));
        let mut p = Pager::new();
        assert!(!p.more_after(1, 0, header(4)), "an empty page always ends the listing");
    }

    #[test]
    fn without_a_header_stop_on_empty_or_shorter_than_largest() {
        let mut p = Pager::new();
        assert!(p.more_after(1, 100, None));
        assert!(p.more_after(2, 100, None));
        assert!(!p.more_after(3, 37, None));
        let mut p = Pager::new();
        assert!(p.more_after(1, 100, None));
        assert!(!p.more_after(2, 0, None));
    }

    #[test]
    fn a_page_below_the_requested_size_alone_does_not_stop() {
        // The server caps per_page at 50: full pages of 50 must not end the walk.
        let mut p = Pager::new();
        assert!(p.more_after(1, 50, None));
        assert!(p.more_after(2, 50, None));
        assert!(!p.more_after(3, 12, None));
        // A single short first page is followed by one more request to be sure.
        let mut p = Pager::new();
        assert!(p.more_after(1, 7, None));
        assert!(!p.more_after(2, 0, None));
    }

    proptest::proptest! {
        /// Whatever the server's page-size cap and the listing's length, the header-less rule
        /// reads every item and makes at most one request beyond the pages the data needs.
        #[test]
        fn the_headerless_rule_reads_everything(total in 0usize..2_000, cap in 1usize..=100) {
            let mut pager = Pager::new();
            let (mut page, mut read) = (0u64, 0usize);
            loop {
                page += 1;
                let len = cap.min(total.saturating_sub(read));
                read += len;
                if !pager.more_after(page, len, None) {
                    break;
                }
                proptest::prop_assert!(page < 10_000, "runaway listing");
            }
            proptest::prop_assert_eq!(read, total);
            let needed = total.div_ceil(cap).max(1) as u64;
            proptest::prop_assert!(page == needed || page == needed + 1, "{} pages for {}", page, needed);
        }
    }

    #[test]
    fn header_may_come_and_go() {
        let mut p = Pager::new();
        assert!(p.more_after(1, 100, None));
        assert!(p.more_after(2, 100, header(3)));
        assert!(!p.more_after(3, 40, PageInfo::parse("garbage")));
    }
}
