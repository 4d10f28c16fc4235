//! Reading one table of the merged tree: typed getters that record a problem (with the dotted
//! key path) instead of failing, and a `finish` that reports every key nobody asked for as
//! unknown, naming the environment variable when one set it.

use std::cell::RefCell;
use std::collections::HashMap;

use config::{Map, Value, ValueKind};

use super::fields::edit_distance;
use super::load::ConfigProblem;
use super::raw::{Origin, Provenance};

/// Shared state while validating: the problems found so far and where keys came from.
pub(crate) struct Ctx<'e> {
    problems: RefCell<Vec<ConfigProblem>>,
    /// Which layer set which key.
    pub prov: RefCell<Provenance>,
    /// The process environment snapshot (for `RUST_LOG`, `STATE_DIRECTORY`, credentials).
    pub env: &'e HashMap<String, String>,
}

impl<'e> Ctx<'e> {
    /// A context with no problems yet.
    pub fn new(prov: Provenance, env: &'e HashMap<String, String>) -> Self {
        Ctx { problems: RefCell::new(Vec::new()), prov: RefCell::new(prov), env }
    }

    /// Records a problem with `key`.
    pub fn problem(&self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.borrow_mut().push(ConfigProblem { key: key.into(), message: message.into() });
    }

    /// A non-empty environment variable.
    pub fn env_var(&self, name: &str) -> Option<&'e str> {
        self.env.get(name).map(String::as_str).filter(|v| !v.trim().is_empty())
    }

    /// Every problem, sorted by key (stable, so one key's problems keep their order).
    pub fn into_parts(self) -> (Vec<ConfigProblem>, Provenance) {
        let mut problems = self.problems.into_inner();
        problems.sort_by(|a, b| a.key.cmp(&b.key));
        (problems, self.prov.into_inner())
    }
}

/// One table being read; keys are removed as they are read.
pub(crate) struct Section<'c, 'e> {
    path: String,
    table: Map<String, Value>,
    known: &'static [&'static str],
    ctx: &'c Ctx<'e>,
    /// Extra suggestion for an unknown key (the root uses it to say which section a stray
    /// key belongs in).
    hint: Option<fn(&str) -> Option<String>>,
}

impl<'c, 'e> Section<'c, 'e> {
    /// Wraps `value` (the table at `path`, or nothing when the section is absent).
    pub fn new(
        ctx: &'c Ctx<'e>,
        path: &str,
        value: Option<Value>,
        known: &'static [&'static str],
    ) -> Self {
        let table = match value.map(|v| v.kind) {
            None => Map::new(),
            Some(ValueKind::Table(t)) => t,
            Some(_) => {
                let by = ctx.prov.borrow().setters(path);
                ctx.problem(
                    path,
                    format!("expected a table [{path}] (set by {by}); set its keys as {path}.KEY"),
                );
                Map::new()
            }
        };
        Section { path: path.to_string(), table, known, ctx, hint: None }
    }

    /// Adds a suggestion source for unknown keys, tried after the near-miss search.
    pub fn with_hint(mut self, hint: fn(&str) -> Option<String>) -> Self {
        self.hint = Some(hint);
        self
    }

    /// The dotted path of `key` in this section.
    pub fn key(&self, key: &str) -> String {
        if self.path.is_empty() { key.to_string() } else { format!("{}.{key}", self.path) }
    }

    /// The shared context.
    pub fn ctx(&self) -> &'c Ctx<'e> {
        self.ctx
    }

    /// Whether `key` is present (and not yet read).
    pub fn table_has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    /// Removes and returns the raw value of `key`.
    pub fn take(&mut self, key: &str) -> Option<Value> {
        debug_assert!(self.known.contains(&key), "{key} is not listed as known in [{}]", self.path);
        self.table.remove(key)
    }

    /// `key` parsed, or `None` when absent or invalid (invalid records a problem).
    pub fn opt<T>(
        &mut self,
        key: &str,
        parse: impl FnOnce(&Value) -> Result<T, String>,
    ) -> Option<T> {
        let full = self.key(key);
        let origin = self.ctx.prov.borrow().origin(&full);
        // Environment variables and flags are always text; the file writes types (fields).
        let as_text = matches!(origin, Origin::Env(_) | Origin::Cli | Origin::DerivedEnv(_));
        let v = super::fields::tag_source(self.take(key)?, key, as_text);
        match parse(&v) {
            Ok(t) => Some(t),
            Err(msg) => {
                // Say which layer set a bad value when it was not the file.
                let by = match origin {
                    Origin::Env(var) => format!(" (set by environment variable {var})"),
                    Origin::Cli => " (set on the command line)".to_string(),
                    _ => String::new(),
                };
                self.ctx.problem(full, format!("{msg}{by}"));
                None
            }
        }
    }

    /// `key` parsed, `default` when absent; an invalid value records a problem and yields the
    /// default so validation can go on and find the other problems.
    pub fn or<T>(
        &mut self,
        key: &str,
        default: T,
        parse: impl FnOnce(&Value) -> Result<T, String>,
    ) -> T {
        self.opt(key, parse).unwrap_or(default)
    }

    /// A required `key`: when absent, records `missing` as the problem and yields `placeholder`.
    pub fn req<T>(
        &mut self,
        key: &str,
        placeholder: T,
        missing: &str,
        parse: impl FnOnce(&Value) -> Result<T, String>,
    ) -> T {
        if !self.table.contains_key(key) {
            self.ctx.problem(self.key(key), missing);
            return placeholder;
        }
        self.opt(key, parse).unwrap_or(placeholder)
    }

    /// The nested table `key` as its own section.
    pub fn sub(&mut self, key: &str, known: &'static [&'static str]) -> Section<'c, 'e> {
        let v = self.take(key);
        Section::new(self.ctx, &self.key(key), v, known)
    }

    /// The table `key` whose entries are tables under names the operator chooses
    /// (`[section.key.<name>]`), each as a section named `key.<name>`, in name order.
    pub fn named_tables(
        &mut self,
        key: &str,
        known: &'static [&'static str],
    ) -> Vec<(String, Section<'c, 'e>)> {
        let path = self.key(key);
        match self.take(key).map(|v| v.kind) {
            None => Vec::new(),
            Some(ValueKind::Table(entries)) => {
                let mut entries: Vec<_> = entries.into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                entries
                    .into_iter()
                    .map(|(name, item)| {
                        let section =
                            Section::new(self.ctx, &format!("{path}.{name}"), Some(item), known);
                        (name, section)
                    })
                    .collect()
            }
            Some(_) => {
                let by = self.ctx.prov.borrow().setters(&path);
                self.ctx.problem(
                    &path,
                    format!("expected tables written as [{path}.NAME] in the file (set by {by})"),
                );
                Vec::new()
            }
        }
    }

    /// The array of tables `key` (`[[section.key]]`), each as a section named `key[i]`.
    pub fn tables(&mut self, key: &str, known: &'static [&'static str]) -> Vec<Section<'c, 'e>> {
        let path = self.key(key);
        match self.take(key).map(|v| v.kind) {
            None => Vec::new(),
            Some(ValueKind::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| Section::new(self.ctx, &format!("{path}[{i}]"), Some(item), known))
                .collect(),
            Some(_) => {
                let by = self.ctx.prov.borrow().setters(&path);
                self.ctx.problem(
                    &path,
                    format!("expected tables written as [[{path}]] in the file (set by {by})"),
                );
                Vec::new()
            }
        }
    }

    /// Reports every key not read as unknown, with a suggestion.
    pub fn finish(self) {
        let prov = self.ctx.prov.borrow();
        for (k, v) in &self.table {
            let full = self.key(k);
            let by = prov.setters(&full);
            let what = if matches!(v.kind, ValueKind::Table(_)) {
                "unknown section"
            } else {
                "unknown key"
            };
            let hint = self.suggest(k);
            self.ctx.problem(&full, format!("{what} (set by {by}); {hint}"));
        }
    }

    fn suggest(&self, k: &str) -> String {
        let file_key = format!("{k}_file");
        if self.known.contains(&file_key.as_str()) {
            return format!(
                "secrets are never written in the config: put it in a file (chmod 600) and set \
                 {} to its path, or use the systemd credential",
                self.key(&file_key)
            );
        }
        // A near miss by edit distance, else a known key the typo starts with ("listen_addr").
        let near = self
            .known
            .iter()
            .filter(|c| edit_distance(k, c) <= 2)
            .min_by_key(|c| edit_distance(k, c))
            .or_else(|| self.known.iter().filter(|c| k.starts_with(*c)).max_by_key(|c| c.len()));
        if let (None, Some(h)) = (near, self.hint.and_then(|h| h(k))) {
            return h;
        }
        match near {
            Some(c) => format!("did you mean {}?", self.key(c)),
            None if self.path.is_empty() => format!("known sections: {}", self.known.join(", ")),
            None => format!("known keys in [{}]: {}", self.path, self.known.join(", ")),
        }
    }
}
