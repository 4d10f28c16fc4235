//! `mpsync config`: the validated [`Config`] serialized as TOML (its `Serialize` is the view:
//! file key names, secrets as `<redacted>`), optionally with each key's origin noted after its
//! value. The notes go where toml's own parser says each value ends, so any value (a
//! multi-line description included) stays valid TOML.

use toml::de::{DeTable, DeValue};

use super::layers::Provenance;
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
    let mut body = toml::to_string(cfg).expect("the validated config serializes as TOML");
    if let Some(prov) = prov {
        let doc = DeTable::parse(&body).expect("toml parses what it wrote");
        let mut notes = Vec::new();
        note(doc.get_ref(), "", None, prov, &mut notes);
        // From the end, so the positions before each insertion stay valid.
        notes.sort_by_key(|n| std::cmp::Reverse(n.0));
        for (at, text) in notes {
            body.insert_str(at, &format!("  # {text}"));
        }
    }
    out.push('\n');
    out + &body
}

/// Collects (where the value ends, note) for every value under `table` at `path`. The
/// entries of an array of tables note where the array (`array`) came from.
fn note(
    table: &DeTable<'_>,
    path: &str,
    array: Option<&str>,
    prov: &Provenance,
    notes: &mut Vec<(usize, String)>,
) {
    for (key, value) in table {
        let key = key.get_ref();
        let path = if path.is_empty() { key.to_string() } else { format!("{path}.{key}") };
        let tables: Option<Vec<&DeTable<'_>>> = match value.get_ref() {
            DeValue::Array(a) if !a.is_empty() => {
                a.iter().map(|e| e.get_ref().as_table()).collect()
            }
            _ => None,
        };
        match (value.get_ref(), tables) {
            (DeValue::Table(t), _) => note(t, &path, array, prov, notes),
            (_, Some(entries)) => {
                for entry in entries {
                    note(entry, &path, Some(&path), prov, notes);
                }
            }
            _ => notes.push((value.span().end, prov.note(array.unwrap_or(&path)))),
        }
    }
}
