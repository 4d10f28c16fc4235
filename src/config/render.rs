//! `mpsync config`: the validated [`Config`] serialized (its `Serialize` is the view: secrets
//! as `<redacted>`), written as TOML in the schema's key order (that of config/mpsync.toml),
//! optionally with each key's origin as a trailing comment.

use std::fmt::Write as _;

use super::de::Schema;
use super::layers::Provenance;
use super::raw::RawConfig;
use super::types::Config;

/// The effective config as TOML with secrets redacted.
pub fn redacted_toml(cfg: &Config) -> String {
    render(cfg, None)
}

/// The effective config as TOML with secrets redacted and each key's origin as a comment.
pub fn redacted_toml_annotated(cfg: &Config, provenance: &Provenance) -> String {
    render(cfg, Some(provenance))
}

fn render(cfg: &Config, prov: Option<&Provenance>) -> String {
    let mut out =
        String::from("# mpsync effective configuration; secrets are shown as <redacted>.\n");
    if let Some(p) = &cfg.source_path {
        out += &format!(
            "# Layers: built-in defaults < {} < MPSYNC_* environment < command-line flags.\n",
            p.display()
        );
    }
    // Every value of a validated config has a TOML form (whole numbers are bounded to i64).
    let table = toml::Table::try_from(cfg).expect("the validated config serializes as TOML");
    let w = Writer { schema: Schema::of::<RawConfig>(), prov };
    w.section(&mut out, &[], "", &table);
    out
}

/// A table's entries: (key, value).
type Entries<'t> = Vec<(&'t str, &'t toml::Value)>;

struct Writer<'p> {
    schema: Schema,
    prov: Option<&'p Provenance>,
}

/// An array whose entries are all tables: written as `[[...]]`.
fn tables_of(v: &toml::Value) -> Option<Vec<&toml::Table>> {
    let items = v.as_array().filter(|a| !a.is_empty())?;
    items.iter().map(toml::Value::as_table).collect()
}

/// A header: keys joined by dots, each bare when it can be, else quoted.
fn header(path: &[&str]) -> String {
    let key = |k: &&str| {
        let bare =
            !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || "_-".contains(c));
        if bare { k.to_string() } else { toml::Value::from(*k).to_string() }
    };
    path.iter().map(key).collect::<Vec<_>>().join(".")
}

fn join(table: &str, key: &str) -> String {
    if table.is_empty() { key.to_string() } else { format!("{table}.{key}") }
}

impl Writer<'_> {
    /// `table`'s keys in schema order (`schema_path` names it in the schema: `x[]` for the
    /// entries of an array, `x.*` for any entry of a map), split into values and tables.
    fn split<'t>(&self, schema_path: &str, table: &'t toml::Table) -> (Entries<'t>, Entries<'t>) {
        let order = self.schema.keys(schema_path);
        // A secret is shown under its key without `_file`.
        let rank =
            |k: &str| order.iter().position(|o| *o == k || o.strip_suffix("_file") == Some(k));
        let mut keys: Vec<(&str, &toml::Value)> =
            table.iter().map(|(k, v)| (k.as_str(), v)).collect();
        keys.sort_by_key(|(k, _)| rank(k).unwrap_or(usize::MAX));
        keys.into_iter().partition(|(_, v)| !v.is_table() && tables_of(v).is_none())
    }

    /// `key = value` lines, each noting the origin of the key `note_at` names.
    fn lines(
        &self,
        out: &mut String,
        values: &[(&str, &toml::Value)],
        note_at: impl Fn(&str) -> String,
    ) {
        for (k, v) in values {
            write!(out, "{k} = {v}").expect("writing to a String");
            if let Some(p) = self.prov {
                write!(out, "  # {}", p.note(&note_at(k))).expect("writing to a String");
            }
            out.push('\n');
        }
    }

    /// The table at `path`: its values under its header, then its tables.
    fn section(&self, out: &mut String, path: &[&str], schema_path: &str, table: &toml::Table) {
        let (values, tables) = self.split(schema_path, table);
        let dotted = path.join(".");
        if !values.is_empty() {
            write!(out, "\n[{}]\n", header(path)).expect("writing to a String");
            self.lines(out, &values, |k| join(&dotted, k));
        }
        for (k, v) in tables {
            let sub = [path, &[k]].concat();
            // The entries of a map of tables are all `map.*` in the schema.
            let any = join(schema_path, "*");
            let entry_of_map = !self.schema.keys(&any).is_empty();
            match (v.as_table(), tables_of(v)) {
                (Some(t), _) => {
                    let sp = if entry_of_map { any.clone() } else { join(schema_path, k) };
                    self.section(out, &sub, &sp, t);
                }
                (None, Some(entries)) => {
                    // Each entry notes where the array came from.
                    let array = join(&dotted, k);
                    for entry in entries {
                        write!(out, "\n[[{}]]\n", header(&sub)).expect("writing to a String");
                        let (values, _) = self.split(&format!("{}[]", join(schema_path, k)), entry);
                        self.lines(out, &values, |_| array.clone());
                    }
                }
                (None, None) => unreachable!("split puts only tables here"),
            }
        }
    }
}
