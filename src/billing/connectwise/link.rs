//! The `Link` response header (RFC 8288) as ConnectWise uses it for navigation (§2):
//! `<https://…?page=2&pageSize=25>; rel="next", <…?page=9>; rel="last"`.

use std::collections::BTreeMap;

/// The link targets of a `Link` header by relation (`next`, `last`, `first`, `prev`).
/// Malformed parts are skipped; an unusable header yields an empty map.
pub fn parse_link(header: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = header;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('>') else { break };
        let url = after[..end].trim().to_owned();
        let tail = &after[end + 1..];
        // Parameters run until the next link ("<" after a comma) or the end.
        let params_end = tail.find('<').unwrap_or(tail.len());
        for param in tail[..params_end].split(';') {
            let Some((k, v)) = param.split_once('=') else { continue };
            if !k.trim().eq_ignore_ascii_case("rel") {
                continue;
            }
            let v = v.trim().trim_end_matches(',').trim().trim_matches('"');
            for rel in v.split_whitespace() {
                out.entry(rel.to_ascii_lowercase()).or_insert_with(|| url.clone());
            }
        }
        rest = &tail[params_end..];
    }
    out
}

/// The `page` query parameter of a link target, if it has a usable one.
pub fn page_of(url: &str) -> Option<u64> {
    let parsed = url::Url::parse(url)
        .or_else(|_| url::Url::parse("http://relative.invalid/").and_then(|b| b.join(url)))
        .ok()?;
    parsed
        .query_pairs()
        .find(|(k, _)| k.eq_ignore_ascii_case("page"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .filter(|p| *p >= 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relations_and_pages_are_read() {
        let h = "<https://x/v4_6_release/apis/3.0/company/companies?page=2&pageSize=25>; rel=\"next\", \
                 <https://x/v4_6_release/apis/3.0/company/companies?pageSize=25&page=9>; rel=\"last\"";
        let links = parse_link(h);
        assert_eq!(links.len(), 2);
        assert_eq!(page_of(&links["next"]), Some(2));
        assert_eq!(page_of(&links["last"]), Some(9));
    }

    #[test]
    fn odd_headers_do_not_break_parsing() {
        assert!(parse_link("").is_empty());
        assert!(parse_link("garbage").is_empty());
        let l = parse_link("</a?page=3>;rel=next,</b?page=1>; REL=\"first prev\"");
        assert_eq!(page_of(&l["next"]), Some(3));
        assert_eq!(l["first"], "/b?page=1");
        assert_eq!(l["prev"], "/b?page=1");
        assert_eq!(page_of("/x?page=abc"), None);
        assert_eq!(page_of("/x?page=0"), None);
        // A comma inside a (not encoded) conditions value does not split the link.
        let l = parse_link("<https://x/a?conditions=a%3D1,b&page=4>; rel=\"next\"");
        assert_eq!(page_of(&l["next"]), Some(4));
    }
}
