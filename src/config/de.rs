//! Reading the merged tree into the serde schema (`raw`) with a `serde::Deserializer` that
//! knows each value's key path and layer. It applies the one typing rule (text from the
//! environment or a flag is read as the number or boolean asked for; a quoted number or
//! boolean in the file is refused with the fix), reports unknown keys with a suggestion
//! instead of stopping, and tags every error with its key path.
//!
//! serde stops at the first error, so [`read`] records it, clears the bad value and reads
//! again, until the tree reads: every problem is reported at once, and the schema's own field
//! lists decide what is unknown. [`Schema`] lists those fields for the whole tree.

use std::cell::RefCell;
use std::fmt::Write as _;

use config::{Map, Value, ValueKind};
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};

use super::error::ConfigProblem;
use super::layers::{Origin, Provenance};

/// Reads `root` into `T`: the value with every bad leaf left out, and every problem found
/// (unknown keys, values of the wrong kind), each with its key path.
pub(crate) fn read<T: DeserializeOwned + Default>(
    root: Map<String, Value>,
    prov: &Provenance,
) -> (T, Vec<ConfigProblem>) {
    let schema = Schema::of::<T>();
    let mut root = Value::new(None, ValueKind::Table(root));
    let mut problems = Vec::new();
    loop {
        let ctx = Ctx { prov, schema: &schema, unknown: RefCell::default() };
        let err = match T::deserialize(Node { value: root.clone(), path: Vec::new(), ctx: &ctx }) {
            Ok(t) => {
                problems.extend(ctx.unknown.into_inner());
                return (t, problems);
            }
            Err(e) => e,
        };
        let key = match &err.at {
            Some(at) => dotted(at),
            None => prov.file.display().to_string(),
        };
        let by = match (err.names_layer, prov.origin(&key)) {
            (false, Origin::Env(var)) => format!(" (set by environment variable {var})"),
            (false, Origin::Cli) => " (set on the command line)".to_string(),
            _ => String::new(),
        };
        problems.push(ConfigProblem { key, message: format!("{}{by}", err.message) });
        // Without the bad value the next read gets further; each round clears one value.
        if !err.at.is_some_and(|at| clear(&mut root, &at)) {
            return (T::default(), problems);
        }
    }
}

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

/// `daemon.listen`, `mailprotector.counts[1].name`.
fn dotted(path: &[Step]) -> String {
    let mut s = String::new();
    for step in path {
        match step {
            Step::Key(k) if s.is_empty() => s.push_str(k),
            Step::Key(k) => write!(s, ".{k}").expect("writing to a String"),
            Step::Index(i) => write!(s, "[{i}]").expect("writing to a String"),
        }
    }
    s
}

fn child(path: &[Step], step: Step) -> Vec<Step> {
    let mut p = path.to_vec();
    p.push(step);
    p
}

/// Leaves the value at `at` out of `root`: a key is removed, an array entry becomes an empty
/// table (so later entries keep their index). False when there is nothing left to clear.
fn clear(root: &mut Value, at: &[Step]) -> bool {
    let Some((last, parents)) = at.split_last() else { return false };
    let mut v = root;
    for step in parents {
        v = match (&mut v.kind, step) {
            (ValueKind::Table(t), Step::Key(k)) => match t.get_mut(k) {
                Some(v) => v,
                None => return false,
            },
            (ValueKind::Array(a), Step::Index(i)) => match a.get_mut(*i) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    match (&mut v.kind, last) {
        (ValueKind::Table(t), Step::Key(k)) => t.remove(k).is_some(),
        (ValueKind::Array(a), Step::Index(i)) => match a.get_mut(*i) {
            Some(item) if !matches!(&item.kind, ValueKind::Table(t) if t.is_empty()) => {
                *item = Value::new(None, ValueKind::Table(Map::new()));
                true
            }
            _ => false,
        },
        _ => false,
    }
}

/// An error while reading: what is wrong and, once known, the path of the value.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct DeError {
    at: Option<Vec<Step>>,
    message: String,
    /// The message already says which layer set the value.
    names_layer: bool,
}

impl de::Error for DeError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        DeError { at: None, message: msg.to_string(), names_layer: false }
    }
}

impl DeError {
    /// Tags the error with `path` unless a value deeper down already did.
    fn at(mut self, path: Vec<Step>) -> Self {
        self.at.get_or_insert(path);
        self
    }
}

/// Shared while reading: where keys came from, the schema, the unknown keys found so far.
struct Ctx<'a> {
    prov: &'a Provenance,
    schema: &'a Schema,
    unknown: RefCell<Vec<ConfigProblem>>,
}

impl Ctx<'_> {
    /// Records `key` (with `value`) in the table at `path` as unknown, with a suggestion.
    fn unknown(&self, path: &[Step], key: &str, value: &Value, known: &[&str]) {
        let table = dotted(path);
        let full = dotted(&child(path, Step::Key(key.to_string())));
        let what = match value.kind {
            ValueKind::Table(_) => "unknown section",
            _ => "unknown key",
        };
        let message = format!(
            "{what} (set by {}); {}",
            self.prov.setters(&full),
            self.suggest(&table, key, known)
        );
        self.unknown.borrow_mut().push(ConfigProblem { key: full, message });
    }

    fn suggest(&self, table: &str, key: &str, known: &[&str]) -> String {
        let at = |k: &str| if table.is_empty() { k.to_string() } else { format!("{table}.{k}") };
        let file_key = format!("{key}_file");
        if known.contains(&file_key.as_str()) {
            return format!(
                "secrets are never written in the config: put it in a file (chmod 600) and set \
                 {} to its path, or use the systemd credential",
                at(&file_key)
            );
        }
        // A near miss by edit distance, else a known key the typo starts with ("listen_addr").
        let distance = |k: &&&str| strsim::levenshtein(key, k);
        let near = known
            .iter()
            .filter(|k| distance(k) <= 2)
            .min_by_key(distance)
            .or_else(|| known.iter().filter(|k| key.starts_with(*k)).max_by_key(|k| k.len()));
        if let Some(k) = near {
            return format!("did you mean {}?", at(k));
        }
        if !table.is_empty() {
            return format!("known keys in [{table}]: {}", known.join(", "));
        }
        let homes: Vec<String> = self.schema.homes(key).map(|t| format!("[{t}]")).collect();
        if homes.is_empty() {
            format!("known sections: {}", known.join(", "))
        } else {
            format!("keys go inside a section: put it under {}", homes.join(" or "))
        }
    }
}

/// One value of the tree, at its path.
struct Node<'a> {
    value: Value,
    path: Vec<Step>,
    ctx: &'a Ctx<'a>,
}

/// A number or boolean read from text.
enum Scalar {
    Bool(bool),
    U64(u64),
    F64(f64),
}

impl Node<'_> {
    /// Whether the value came from the environment or a flag, which only give text.
    fn is_text(&self) -> bool {
        let origin = self.ctx.prov.origin(&dotted(&self.path));
        matches!(origin, Origin::Env(_) | Origin::Cli | Origin::DerivedEnv(_))
    }

    /// The typing rule for a number or boolean that arrives as text (see the module doc).
    fn typed<'de, V: Visitor<'de>>(
        self,
        visitor: V,
        parse: fn(&str) -> Option<Scalar>,
    ) -> Result<V::Value, DeError> {
        let ValueKind::String(text) = &self.value.kind else { return self.any(visitor) };
        let Some(scalar) = parse(text.trim()) else { return self.any(visitor) };
        if self.is_text() {
            return match scalar {
                Scalar::Bool(b) => visitor.visit_bool(b),
                Scalar::U64(n) => visitor.visit_u64(n),
                Scalar::F64(f) => visitor.visit_f64(f),
            };
        }
        // The text would be a fine value, but the file says it is a string: name the fix.
        let fix = match self.path.last() {
            Some(Step::Key(k)) => format!("{k} = {}", text.trim()),
            _ => text.trim().to_string(),
        };
        Err(de::Error::custom(format!(
            "{text:?} is in quotes, so the file gives it as text; write it without quotes: {fix}"
        )))
    }

    fn any<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let (path, ctx) = (self.path, self.ctx);
        match self.value.kind {
            ValueKind::Nil => visitor.visit_unit(),
            ValueKind::Boolean(b) => visitor.visit_bool(b),
            ValueKind::I64(n) => visitor.visit_i64(n),
            ValueKind::I128(n) => visitor.visit_i128(n),
            ValueKind::U64(n) => visitor.visit_u64(n),
            ValueKind::U128(n) => visitor.visit_u128(n),
            ValueKind::Float(f) => visitor.visit_f64(f),
            ValueKind::String(s) => visitor.visit_string(s),
            ValueKind::Table(t) => visitor.visit_map(Entries::new(t, path, ctx, None)),
            ValueKind::Array(items) => visitor.visit_seq(Items::new(items, path, ctx)),
        }
    }

    /// A value of the wrong shape for a table or list: the message names who set it.
    fn shape_error(&self, message: impl Fn(&str) -> String) -> DeError {
        let key = dotted(&self.path);
        let by = self.ctx.prov.setters(&key);
        DeError { at: None, message: format!("{} (set by {by})", message(&key)), names_layer: true }
    }
}

impl<'de> de::Deserializer<'de> for Node<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.any(visitor)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.typed(visitor, |t| match t.to_ascii_lowercase().as_str() {
            "true" => Some(Scalar::Bool(true)),
            "false" => Some(Scalar::Bool(false)),
            _ => None,
        })
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.typed(visitor, |t| t.parse().ok().map(Scalar::U64))
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.typed(visitor, |t| t.parse::<f64>().ok().filter(|f| f.is_finite()).map(Scalar::F64))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        // A key that is present is `Some`, whatever its value; the leaf judges the value.
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.value.kind {
            ValueKind::Table(t) => {
                visitor.visit_map(Entries::new(t, self.path, self.ctx, Some(fields)))
            }
            _ => Err(self.shape_error(|k| format!("expected a table [{k}]")).with_fix(&self.path)),
        }
    }

    /// Only `[[...]]` arrays of tables are read as sequences; lists of values are leaves.
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value.kind {
            ValueKind::Array(items) => visitor.visit_seq(Items::new(items, self.path, self.ctx)),
            _ => {
                Err(self.shape_error(|k| format!("expected tables written as [[{k}]] in the file")))
            }
        }
    }

    /// Only tables under names the operator chooses (`[section.key.<name>]`) are maps.
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value.kind {
            ValueKind::Table(t) => visitor.visit_map(Entries::new(t, self.path, self.ctx, None)),
            _ => {
                Err(self
                    .shape_error(|k| format!("expected tables written as [{k}.NAME] in the file")))
            }
        }
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u32 u128 f32 char str string bytes byte_buf unit unit_struct
        tuple tuple_struct enum identifier ignored_any
    }
}

impl DeError {
    /// Ends a "not a table" message with how to set the table's keys.
    fn with_fix(mut self, path: &[Step]) -> Self {
        write!(self.message, "; set its keys as {}.KEY", dotted(path))
            .expect("writing to a String");
        self
    }
}

/// The entries of a table. With `fields` (a struct of the schema), keys not among them are
/// recorded as unknown and skipped.
struct Entries<'a> {
    entries: std::vec::IntoIter<(String, Value)>,
    fields: Option<&'static [&'static str]>,
    path: Vec<Step>,
    ctx: &'a Ctx<'a>,
    value: Option<(String, Value)>,
}

impl<'a> Entries<'a> {
    fn new(
        table: Map<String, Value>,
        path: Vec<Step>,
        ctx: &'a Ctx<'a>,
        fields: Option<&'static [&'static str]>,
    ) -> Self {
        let mut entries: Vec<_> = table.into_iter().collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Entries { entries: entries.into_iter(), fields, path, ctx, value: None }
    }
}

impl<'de> MapAccess<'de> for Entries<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        for (key, value) in self.entries.by_ref() {
            match self.fields {
                Some(fields) if !fields.contains(&key.as_str()) => {
                    self.ctx.unknown(&self.path, &key, &value, fields);
                }
                _ => {
                    let k = seed.deserialize(key.clone().into_deserializer())?;
                    self.value = Some((key, value));
                    return Ok(Some(k));
                }
            }
        }
        Ok(None)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, DeError> {
        let (key, value) =
            self.value.take().ok_or_else(|| de::Error::custom("a value without a key"))?;
        let path = child(&self.path, Step::Key(key));
        seed.deserialize(Node { value, path: path.clone(), ctx: self.ctx }).map_err(|e| e.at(path))
    }
}

/// The entries of an array.
struct Items<'a> {
    items: std::iter::Enumerate<std::vec::IntoIter<Value>>,
    path: Vec<Step>,
    ctx: &'a Ctx<'a>,
}

impl<'a> Items<'a> {
    fn new(items: Vec<Value>, path: Vec<Step>, ctx: &'a Ctx<'a>) -> Self {
        Items { items: items.into_iter().enumerate(), path, ctx }
    }
}

impl<'de> SeqAccess<'de> for Items<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some((i, value)) = self.items.next() else { return Ok(None) };
        let path = child(&self.path, Step::Index(i));
        let node = Node { value, path: path.clone(), ctx: self.ctx };
        seed.deserialize(node).map(Some).map_err(|e| e.at(path))
    }
}

/// The tables of a schema type and their keys in declaration order, found by reading the
/// type from a probe that answers "absent" to every leaf.
#[derive(Debug)]
pub(crate) struct Schema {
    tables: Vec<Table>,
}

#[derive(Debug)]
struct Table {
    /// Dotted path; `[]` stands for any entry of an array, `*` for any name of a map.
    path: String,
    keys: &'static [&'static str],
    /// Inside an array or a map: not a section of its own.
    repeated: bool,
}

impl Schema {
    /// The schema of `T`, whose leaves must all be `Option`s read through
    /// `deserialize_option` (see `leaf`).
    pub(crate) fn of<T: DeserializeOwned>() -> Schema {
        let tables = RefCell::new(Vec::new());
        let probe = Probe { path: String::new(), repeated: false, tables: &tables };
        T::deserialize(probe).expect("every leaf of the config schema is optional");
        Schema { tables: tables.into_inner() }
    }

    /// The keys of the table at `path` (`mailprotector.counts[]` for the entries of
    /// `[[mailprotector.counts]]`, `gradient.services.*` for any service).
    pub(crate) fn keys(&self, path: &str) -> &'static [&'static str] {
        self.tables.iter().find(|t| t.path == path).map_or(&[], |t| t.keys)
    }

    /// The sections (not the entries of arrays or maps) that have `key`.
    fn homes<'s>(&'s self, key: &'s str) -> impl Iterator<Item = &'s str> {
        self.tables
            .iter()
            .filter(move |t| !t.repeated && !t.path.is_empty() && t.keys.contains(&key))
            .map(|t| t.path.as_str())
    }

    /// Every key that is not a section, as a dotted path (`[[...]]` arrays and maps of
    /// tables count as one key).
    #[cfg(test)]
    pub(crate) fn leaves(&self) -> Vec<String> {
        let sections: Vec<&str> =
            self.tables.iter().filter(|t| !t.repeated).map(|t| t.path.as_str()).collect();
        let join = |t: &str, k: &str| if t.is_empty() { k.to_string() } else { format!("{t}.{k}") };
        self.tables
            .iter()
            .filter(|t| !t.repeated)
            .flat_map(|t| t.keys.iter().map(|k| join(&t.path, k)))
            .filter(|k| !sections.contains(&k.as_str()))
            .collect()
    }
}

/// Answers every leaf with "absent" and every struct with all of its fields, recording each.
struct Probe<'a> {
    path: String,
    repeated: bool,
    tables: &'a RefCell<Vec<Table>>,
}

impl Probe<'_> {
    fn at(&self, suffix: &str, repeated: bool) -> Self {
        let path = if self.path.is_empty() || suffix.starts_with('[') {
            format!("{}{suffix}", self.path)
        } else {
            format!("{}.{suffix}", self.path)
        };
        Probe { path, repeated: self.repeated || repeated, tables: self.tables }
    }
}

impl<'de> de::Deserializer<'de> for Probe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, DeError> {
        Err(de::Error::custom(format!("{} is neither optional nor a table", self.path)))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_none()
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let table = Table { path: self.path.clone(), keys: fields, repeated: self.repeated };
        self.tables.borrow_mut().push(table);
        visitor.visit_map(ProbeEntries { keys: fields.iter(), probe: self, value: None })
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_seq(ProbeEntry(Some(self.at("[]", true))))
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_map(ProbeEntries { keys: ["*"].iter(), probe: self, value: None })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct newtype_struct tuple tuple_struct enum identifier ignored_any
    }
}

/// The fields of a struct (or the one name `*` of a map), each answered by a probe.
struct ProbeEntries<'a> {
    keys: std::slice::Iter<'static, &'static str>,
    probe: Probe<'a>,
    value: Option<&'static str>,
}

impl<'de> MapAccess<'de> for ProbeEntries<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some(key) = self.keys.next() else { return Ok(None) };
        self.value = Some(key);
        seed.deserialize((*key).into_deserializer()).map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, DeError> {
        let key = self.value.take().unwrap_or_default();
        seed.deserialize(self.probe.at(key, key == "*"))
    }
}

/// The one entry of an array, answered by a probe; an array of values (whose entry is no
/// table) is one leaf, and reads as empty.
struct ProbeEntry<'a>(Option<Probe<'a>>);

impl<'de> SeqAccess<'de> for ProbeEntry<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        Ok(self.0.take().and_then(|probe| seed.deserialize(probe).ok()))
    }
}
