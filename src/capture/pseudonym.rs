//! Pseudonymization of a whole bundle: names, e-mail addresses and domain names become
//! "Customer 3", "user-17@domain-2.example", "domain-2.example", ... — the same original
//! always gets the same pseudonym across every upstream and file (a domain in a Domain record,
//! inside users' addresses and in service records; a customer's name in Mailprotector, in
//! the PSA and in Gradient), so mapping suggestions by name and renames still behave alike.
//!
//! Which strings are names is decided per field by [`super::rules`]. Numbers are pseudonyms
//! in order of first sight, answers taken in hierarchy order, so the same input always gives
//! the same bundle. Free text worth keeping (error messages, links) keeps its words, minus the
//! names seen elsewhere, e-mail addresses and the upstreams' hosts.

use std::collections::HashMap;

use serde_json::Value;

use super::rules::{Entity, Kind, classify, entity, rank};
use crate::sim::replay::bundle::{Body, ExchangeFile, Upstream};

/// Text longer than this is only pseudonymized by whole quoted strings and e-mail addresses
/// (a cut-off body can be large; looking for every name in it would be slow).
const FULL_SEARCH_LIMIT: usize = 4096;

/// Names shorter than this are not looked for inside free text (they would hit words).
const MIN_SEARCHED: usize = 3;

/// One family of pseudonyms: original → pseudonym, numbered in order of first sight.
#[derive(Debug, Default)]
struct Names {
    map: HashMap<String, String>,
    next: u64,
}

impl Names {
    fn get(&mut self, key: &str, make: impl FnOnce(u64) -> String) -> String {
        if let Some(p) = self.map.get(key) {
            return p.clone();
        }
        self.next += 1;
        let p = make(self.next);
        self.map.insert(key.to_owned(), p.clone());
        p
    }
}

/// Replaces names consistently across a bundle. Build one per capture.
#[derive(Debug, Default)]
pub(crate) struct Pseudonymizer {
    resellers: Names,
    orgs: Names,
    org_codes: Names,
    domains: Names,
    locals: Names,
    groups: Names,
    agreements: Names,
    firsts: Names,
    lasts: Names,
    persons: Names,
    texts: Names,
    /// Upstream origins (`https://host:port`) and what they become.
    origins: Vec<(Upstream, String, String)>,
}

impl Pseudonymizer {
    /// A pseudonymizer that also replaces each upstream's origin by its replacement in free
    /// text (the answering upstream's own origin first, should two share a host).
    pub(crate) fn new(origins: Vec<(Upstream, String, String)>) -> Pseudonymizer {
        Pseudonymizer { origins, ..Pseudonymizer::default() }
    }

    /// Pseudonymizes every body and the `link`/`location` headers of `files`.
    pub(crate) fn bundle(&mut self, files: &mut [ExchangeFile]) {
        // Names first, in hierarchy order; free text afterwards, when every name is known.
        let mut order: Vec<(usize, usize, u8)> = Vec::new();
        for (f, file) in files.iter().enumerate() {
            for (x, ex) in file.exchanges.iter().enumerate() {
                let e = entity(file.upstream, &ex.request.path, ex.response.status);
                order.push((f, x, rank(e)));
            }
        }
        order.sort_by_key(|&(f, x, r)| (f, r, x));
        for &(f, x, _) in &order {
            let upstream = files[f].upstream;
            let ex = &mut files[f].exchanges[x];
            let e = entity(upstream, &ex.request.path, ex.response.status);
            if let Body::Json(v) = &mut ex.response.body {
                self.walk(v, upstream, e, &mut Vec::new(), None);
            }
        }
        // Free text meets every name the records hold; prepared once, not per string.
        let known = self.known();
        for &(f, x, _) in &order {
            let upstream = files[f].upstream;
            let ex = &mut files[f].exchanges[x];
            let e = entity(upstream, &ex.request.path, ex.response.status);
            match &mut ex.response.body {
                Body::Json(v) => self.walk(v, upstream, e, &mut Vec::new(), Some(&known)),
                Body::Text(t) => *t = self.text_with(upstream, t, &known),
                Body::Empty | Body::Bytes(_) => {}
            }
            for (name, value) in ex.response.headers.iter_mut() {
                if name == "link" || name == "location" {
                    *value = self.text_with(upstream, value, &known);
                }
            }
        }
    }

    /// Walks `v`: names in the first pass (`messages` `None`), free text in the second.
    fn walk(
        &mut self,
        v: &mut Value,
        upstream: Upstream,
        e: Entity,
        keys: &mut Vec<String>,
        messages: Option<&Known>,
    ) {
        match v {
            Value::Object(map) => {
                for (k, child) in map.iter_mut() {
                    keys.push(k.clone());
                    self.walk(child, upstream, e, keys, messages);
                    keys.pop();
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.walk(item, upstream, e, keys, messages);
                }
            }
            Value::String(s) => {
                let path: Vec<&str> = keys.iter().map(String::as_str).collect();
                let kind = classify(upstream, e, &path);
                if let Some(known) = messages {
                    if kind == Kind::Message {
                        *s = self.text_with(upstream, s, known);
                    }
                } else if let Some(p) = self.replace(kind, s) {
                    *s = p;
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// The pseudonym for `value` read as `kind`; `None` keeps it.
    fn replace(&mut self, kind: Kind, value: &str) -> Option<String> {
        if value.trim().is_empty() || is_date(value) {
            return None;
        }
        let v = value.trim();
        Some(match kind {
            Kind::Keep | Kind::Message => return None,
            Kind::Reseller => self.resellers.get(v, |n| format!("Reseller {n}")),
            Kind::Org => self.orgs.get(v, |n| format!("Customer {n}")),
            Kind::OrgCode => self.org_codes.get(v, |n| format!("customer-{n}")),
            Kind::Group => self.groups.get(v, |n| format!("Group {n}")),
            Kind::Agreement => self.agreements.get(v, |n| format!("Agreement {n}")),
            Kind::First => self.firsts.get(v, |n| format!("First{n}")),
            Kind::Last => self.lasts.get(v, |n| format!("Last{n}")),
            Kind::Person => self.persons.get(v, |n| format!("Person {n}")),
            Kind::Email | Kind::Domain | Kind::Local | Kind::Text if is_email(v) => self.email(v),
            Kind::Email | Kind::Domain if is_domain(v) => self.domain(v),
            Kind::Local if !v.contains(char::is_whitespace) => {
                self.locals.get(&v.to_ascii_lowercase(), |n| format!("user-{n}"))
            }
            Kind::Email | Kind::Domain | Kind::Local | Kind::Text => {
                self.texts.get(v, |n| format!("text-{n}"))
            }
        })
    }

    fn domain(&mut self, d: &str) -> String {
        let key = d.trim_end_matches('.').to_ascii_lowercase();
        self.domains.get(&key, |n| format!("domain-{n}.example"))
    }

    fn email(&mut self, address: &str) -> String {
        let (local, domain) = address.rsplit_once('@').unwrap_or((address, ""));
        let local = self.locals.get(&local.to_ascii_lowercase(), |n| format!("user-{n}"));
        format!("{local}@{}", self.domain(domain))
    }

    /// Free text with upstream hosts, e-mail addresses and names seen elsewhere replaced.
    pub(crate) fn text(&mut self, upstream: Upstream, text: &str) -> String {
        let known = self.known();
        self.text_with(upstream, text, &known)
    }

    fn text_with(&mut self, upstream: Upstream, text: &str, known: &Known) -> String {
        let mut out = text.to_owned();
        let own = self.origins.iter().filter(|o| o.0 == upstream);
        for (_, origin, to) in own.chain(self.origins.iter().filter(|o| o.0 != upstream)) {
            out = replace_ci(&out, origin, to);
        }
        // Addresses first: they hold domains, and a replacement is never searched again.
        let mut hits = self.addresses(&out);
        if out.len() <= FULL_SEARCH_LIMIT {
            hits.extend(known.within(&out));
        } else {
            hits.extend(known.quoted(&out));
        }
        hits.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let mut result = String::with_capacity(out.len());
        let mut at = 0;
        for (start, end, pseudo) in hits {
            if start < at {
                continue;
            }
            result.push_str(&out[at..start]);
            result.push_str(&pseudo);
            at = end;
        }
        result.push_str(&out[at..]);
        result
    }

    /// The names known so far, prepared for searching free text.
    fn known(&self) -> Known {
        let exact = [
            &self.resellers,
            &self.orgs,
            &self.org_codes,
            &self.groups,
            &self.agreements,
            &self.persons,
            &self.texts,
            &self.firsts,
            &self.lasts,
        ];
        let mut k = Known::default();
        for (orig, pseudo) in exact.iter().flat_map(|n| n.map.iter()) {
            k.whole.insert(orig.clone(), pseudo.clone());
            if orig.len() >= MIN_SEARCHED {
                k.searched.push((orig.clone(), pseudo.clone(), false));
            }
        }
        // Domain keys are lower-case already; they match in any case.
        for (orig, pseudo) in &self.domains.map {
            k.whole.insert(orig.clone(), pseudo.clone());
            if orig.len() >= MIN_SEARCHED {
                k.searched.push((orig.clone(), pseudo.clone(), true));
            }
        }
        k
    }

    /// Every `local@domain.tld` in `text` with its pseudonym: `(start, end, pseudonym)`.
    fn addresses(&mut self, text: &str) -> Vec<(usize, usize, String)> {
        let is_part = |c: char| c.is_ascii_alphanumeric() || "._%+-".contains(c);
        let mut hits = Vec::new();
        let mut at = 0;
        let mut search = 0;
        while let Some(rel) = text[search..].find('@') {
            let pos = search + rel;
            let start = text[..pos]
                .char_indices()
                .rev()
                .find(|(_, c)| !is_part(*c))
                .map_or(0, |(i, c)| i + c.len_utf8())
                .max(at);
            let end =
                text[pos + 1..].find(|c: char| !is_part(c)).map_or(text.len(), |i| pos + 1 + i);
            let candidate = text[start..end].trim_end_matches('.');
            if start < pos && is_email(candidate) {
                at = start + candidate.len();
                hits.push((start, at, self.email(candidate)));
            }
            search = pos + 1;
        }
        hits
    }
}

/// Originals and their pseudonyms, for free text.
#[derive(Debug, Default)]
struct Known {
    /// Whole strings (quoted in long text) and their pseudonyms; domains in lower case.
    whole: HashMap<String, String>,
    /// `(original, pseudonym, any case)` to look for inside short text.
    searched: Vec<(String, String, bool)>,
}

impl Known {
    /// Whole `"..."` strings of `text` that are a known original: `(start, end, pseudonym)`.
    fn quoted(&self, text: &str) -> Vec<(usize, usize, String)> {
        let mut hits = Vec::new();
        let mut from = 0;
        while let Some(open) = text[from..].find('"').map(|i| from + i + 1) {
            let Some(close) = text[open..].find('"').map(|i| open + i) else { break };
            let inner = &text[open..close];
            let known =
                self.whole.get(inner).or_else(|| self.whole.get(&inner.to_ascii_lowercase()));
            if let Some(p) = known {
                hits.push((open, close, p.clone()));
            }
            from = close + 1;
        }
        hits
    }

    /// Known originals anywhere in `text`: `(start, end, pseudonym)`.
    fn within(&self, text: &str) -> Vec<(usize, usize, String)> {
        let lower = text.to_ascii_lowercase();
        let mut hits = Vec::new();
        for (orig, pseudo, any_case) in &self.searched {
            let hay = if *any_case { lower.as_str() } else { text };
            hits.extend(
                hay.match_indices(orig.as_str()).map(|(at, m)| (at, at + m.len(), pseudo.clone())),
            );
        }
        hits
    }
}

fn is_email(v: &str) -> bool {
    match v.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !local.contains(char::is_whitespace)
                && !local.contains('@')
                && is_domain(domain)
        }
        None => false,
    }
}

fn is_domain(v: &str) -> bool {
    let v = v.trim_end_matches('.');
    v.contains('.')
        && !v.starts_with('.')
        && v.split('.').all(|l| !l.is_empty() && l.chars().all(|c| c.is_alphanumeric() || c == '-'))
        && v.rsplit('.').next().is_some_and(|tld| tld.chars().any(char::is_alphabetic))
}

fn is_date(v: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(v).is_ok()
        || chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok()
        || chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S%.f").is_ok()
}

/// `text` with every `from` (any ASCII case) replaced by `to`.
fn replace_ci(text: &str, from: &str, to: &str) -> String {
    if from.is_empty() {
        return text.to_owned();
    }
    let lower = text.to_ascii_lowercase();
    let needle = from.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, m) in lower.match_indices(needle.as_str()) {
        out.push_str(&text[at..start]);
        out.push_str(to);
        at = start + m.len();
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
#[path = "pseudonym_tests.rs"]
mod tests;
