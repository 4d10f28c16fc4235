//! Reading the merged tree into the serde schema (`raw`) with a `serde::Deserializer` that
//! knows each value's key path and layer. It applies the one typing rule (text from the
//! environment or a flag is read as the number or boolean asked for; a quoted number or
//! boolean in the file is refused with the fix), reports keys the schema's structs do not
//! list as unknown (with a suggestion) instead of stopping, and tags every error with its path.
//!
//! serde stops at the first error, so [`read`] records it, clears the bad value and reads
//! again until the tree reads: every problem is reported at once. Absent keys are visited too
//! (as absent), so each read sees every section of the schema and its keys.

use std::cell::RefCell;

use config::{Map, Value, ValueKind};
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess};
use serde::de::{Deserializer, Visitor};

use super::error::ConfigProblem;
use super::layers::{Origin, Provenance};

type Result<T> = std::result::Result<T, DeError>;

/// Reads `root` into `T`: the value with every bad leaf left out, and every problem found
/// (unknown keys, bad values), each with its key path.
pub(crate) fn read<T: DeserializeOwned + Default>(
    root: Map<String, Value>,
    prov: &Provenance,
) -> (T, Vec<ConfigProblem>) {
    let mut root = Value::new(None, ValueKind::Table(root));
    let mut problems = Vec::new();
    loop {
        let ctx = Ctx { prov, sections: RefCell::default(), unknown: RefCell::default() };
        let err = match T::deserialize(Node::root(Some(root.clone()), &ctx)) {
            Ok(t) => {
                problems.extend(ctx.unknown_keys());
                return (t, problems);
            }
            Err(err) => err,
        };
        let key = err.at.as_deref().map_or_else(|| prov.file.display().to_string(), dotted);
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

/// Every key of `T` that is not a section, as a dotted path (an array or a map of tables
/// counts as one key).
#[cfg(test)]
pub(crate) fn known_keys<T: DeserializeOwned>() -> Vec<String> {
    let prov = Provenance::default();
    let ctx = Ctx { prov: &prov, sections: RefCell::default(), unknown: RefCell::default() };
    T::deserialize(Node::root(None, &ctx)).expect("every key of the schema may be absent");
    let sections = ctx.sections.into_inner();
    let paths: Vec<&str> = sections.iter().map(|(p, _)| p.as_str()).collect();
    let join = |t: &str, k: &str| if t.is_empty() { k.to_string() } else { format!("{t}.{k}") };
    let keys = sections.iter().flat_map(|(t, keys)| keys.iter().map(|k| join(t, k)));
    keys.filter(|k| !paths.contains(&k.as_str())).collect()
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
            Step::Key(k) => s += &format!(".{k}"),
            Step::Index(i) => s += &format!("[{i}]"),
        }
    }
    s
}

/// Leaves the value at `at` out of `root`: a key is removed, an array entry becomes an empty
/// table (so later entries keep their index). False when there is nothing left to clear.
fn clear(root: &mut Value, at: &[Step]) -> bool {
    let Some((last, parents)) = at.split_last() else { return false };
    let mut v = root;
    for step in parents {
        let next = match (&mut v.kind, step) {
            (ValueKind::Table(t), Step::Key(k)) => t.get_mut(k),
            (ValueKind::Array(a), Step::Index(i)) => a.get_mut(*i),
            _ => None,
        };
        let Some(next) = next else { return false };
        v = next;
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

/// A key the schema does not list, found in the table at `table`.
struct Unknown {
    table: Vec<Step>,
    key: String,
    is_table: bool,
    known: &'static [&'static str],
}

/// Shared while reading: where keys came from, the sections seen, the unknown keys found.
struct Ctx<'a> {
    prov: &'a Provenance,
    /// Each section of the schema (not the entries of arrays or maps) and its keys.
    sections: RefCell<Vec<(String, &'static [&'static str])>>,
    unknown: RefCell<Vec<Unknown>>,
}

impl Ctx<'_> {
    /// One problem per unknown key, with a suggestion (once every section is known).
    fn unknown_keys(&self) -> Vec<ConfigProblem> {
        let unknown = self.unknown.borrow();
        let problem = |u: &Unknown| {
            let table = dotted(&u.table);
            let key = if table.is_empty() { u.key.clone() } else { format!("{table}.{}", u.key) };
            let what = if u.is_table { "unknown section" } else { "unknown key" };
            let hint = self.suggest(&table, &u.key, u.known);
            let message = format!("{what} (set by {}); {hint}", self.prov.setters(&key));
            ConfigProblem { key, message }
        };
        unknown.iter().map(problem).collect()
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
        let near = (known.iter().filter(|k| distance(k) <= 2).min_by_key(distance))
            .or_else(|| known.iter().filter(|k| key.starts_with(*k)).max_by_key(|k| k.len()));
        if let Some(k) = near {
            return format!("did you mean {}?", at(k));
        }
        if !table.is_empty() {
            return format!("known keys in [{table}]: {}", known.join(", "));
        }
        let sections = self.sections.borrow();
        let homes: Vec<String> = (sections.iter())
            .filter(|(path, keys)| !path.is_empty() && keys.contains(&key))
            .map(|(path, _)| format!("[{path}]"))
            .collect();
        if homes.is_empty() {
            format!("known sections: {}", known.join(", "))
        } else {
            format!("keys go inside a section: put it under {}", homes.join(" or "))
        }
    }
}

/// One value of the tree (`None`: the key is absent), at its path.
struct Node<'a> {
    value: Option<Value>,
    path: Vec<Step>,
    /// A section of the schema rather than an entry of an array or a map.
    section: bool,
    ctx: &'a Ctx<'a>,
}

impl<'a> Node<'a> {
    fn root(value: Option<Value>, ctx: &'a Ctx<'a>) -> Self {
        Node { value, path: Vec::new(), section: true, ctx }
    }

    /// Whether the value came from the environment or a flag, which only give text.
    fn is_text(&self) -> bool {
        let origin = self.ctx.prov.origin(&dotted(&self.path));
        matches!(origin, Origin::Env(_) | Origin::Cli | Origin::DerivedEnv(_))
    }

    /// The typing rule for a number or boolean given as text (see the module doc).
    fn typed<'de, V: Visitor<'de>>(
        self,
        visitor: V,
        parse: fn(&str) -> Option<Scalar>,
    ) -> Result<V::Value> {
        let Some(ValueKind::String(text)) = self.value.as_ref().map(|v| &v.kind) else {
            return self.deserialize_any(visitor);
        };
        let Some(scalar) = parse(text.trim()) else { return self.deserialize_any(visitor) };
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

    /// A value of the wrong shape for a table or a list: `what` and `fix` with `{k}` standing
    /// for the key, and between them who set it.
    fn shape(&self, what: &str, fix: &str) -> DeError {
        let key = dotted(&self.path);
        let by = self.ctx.prov.setters(&key);
        let message =
            format!("{} (set by {by}){}", what.replace("{k}", &key), fix.replace("{k}", &key));
        DeError { at: None, message, names_layer: true }
    }

    /// The table this node holds (empty when absent); `None` when it holds something else.
    fn take_table(&mut self) -> Option<Map<String, Value>> {
        match self.value.take().map(|v| v.kind) {
            None => Some(Map::new()),
            Some(ValueKind::Table(t)) => Some(t),
            Some(_) => None,
        }
    }

    /// Reads `table`. For a struct of the schema (`fields`), its keys in declaration order,
    /// absent ones too; keys it does not list are recorded as unknown and skipped.
    fn entries(
        self,
        mut table: Map<String, Value>,
        fields: Option<&'static [&'static str]>,
    ) -> Entries<'a> {
        let mut items: Vec<(Step, Option<Value>)> = Vec::new();
        for field in fields.unwrap_or_default() {
            items.push((Step::Key(field.to_string()), table.remove(*field)));
        }
        let mut rest: Vec<_> = table.into_iter().collect();
        rest.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, value) in rest {
            match fields {
                Some(known) => self.ctx.unknown.borrow_mut().push(Unknown {
                    table: self.path.clone(),
                    key,
                    is_table: matches!(value.kind, ValueKind::Table(_)),
                    known,
                }),
                None => items.push((Step::Key(key), Some(value))),
            }
        }
        let section = self.section && fields.is_some();
        Entries { items: items.into_iter(), path: self.path, section, ctx: self.ctx, next: None }
    }
}

/// A number or boolean read from text.
enum Scalar {
    Bool(bool),
    U64(u64),
    F64(f64),
}

impl<'de> Deserializer<'de> for Node<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value> {
        // An absent key: a leaf reads it as `None` (see `leaf`).
        let Some(value) = self.value.take() else { return visitor.visit_none() };
        match value.kind {
            ValueKind::Nil => visitor.visit_unit(),
            ValueKind::Boolean(b) => visitor.visit_bool(b),
            ValueKind::I64(n) => visitor.visit_i64(n),
            ValueKind::I128(n) => visitor.visit_i128(n),
            ValueKind::U64(n) => visitor.visit_u64(n),
            ValueKind::U128(n) => visitor.visit_u128(n),
            ValueKind::Float(f) => visitor.visit_f64(f),
            ValueKind::String(s) => visitor.visit_string(s),
            ValueKind::Table(t) => visitor.visit_map(self.entries(t, None)),
            ValueKind::Array(a) => visitor.visit_seq(Entries::array(a, self.path, self.ctx)),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.typed(visitor, |t| match t.to_ascii_lowercase().as_str() {
            "true" => Some(Scalar::Bool(true)),
            "false" => Some(Scalar::Bool(false)),
            _ => None,
        })
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.typed(visitor, |t| t.parse().ok().map(Scalar::U64))
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.typed(visitor, |t| t.parse::<f64>().ok().filter(|f| f.is_finite()).map(Scalar::F64))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        // A key that is present is `Some`, whatever its value; the leaf judges the value.
        if self.value.is_some() { visitor.visit_some(self) } else { visitor.visit_none() }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        mut self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        if self.section {
            self.ctx.sections.borrow_mut().push((dotted(&self.path), fields));
        }
        match self.take_table() {
            Some(table) => visitor.visit_map(self.entries(table, Some(fields))),
            None => Err(self.shape("expected a table [{k}]", "; set its keys as {k}.KEY")),
        }
    }

    /// Only `[[...]]` arrays of tables are read as sequences; lists of values are leaves.
    fn deserialize_seq<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value> {
        match self.value.take().map(|v| v.kind) {
            None => visitor.visit_seq(Entries::array(Vec::new(), self.path, self.ctx)),
            Some(ValueKind::Array(a)) => visitor.visit_seq(Entries::array(a, self.path, self.ctx)),
            Some(_) => Err(self.shape("expected tables written as [[{k}]] in the file", "")),
        }
    }

    /// Only tables under names the operator chooses (`[section.key.<name>]`) are maps.
    fn deserialize_map<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value> {
        match self.take_table() {
            Some(table) => visitor.visit_map(self.entries(table, None)),
            None => Err(self.shape("expected tables written as [{k}.NAME] in the file", "")),
        }
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u32 u128 f32 char str string bytes byte_buf unit unit_struct
        newtype_struct tuple tuple_struct enum identifier ignored_any
    }
}

/// The entries of a table (see [`Node::entries`]; `None` for an absent key) or an array.
struct Entries<'a> {
    items: std::vec::IntoIter<(Step, Option<Value>)>,
    path: Vec<Step>,
    /// Whether the entries are sections (fields of a section).
    section: bool,
    ctx: &'a Ctx<'a>,
    next: Option<(Step, Option<Value>)>,
}

impl<'a> Entries<'a> {
    fn array(items: Vec<Value>, path: Vec<Step>, ctx: &'a Ctx<'a>) -> Self {
        let items: Vec<_> =
            items.into_iter().enumerate().map(|(i, v)| (Step::Index(i), Some(v))).collect();
        Entries { items: items.into_iter(), path, section: false, ctx, next: None }
    }

    /// Reads the entry at `step` with `seed`, tagging an error with its path.
    fn read<'de, S: DeserializeSeed<'de>>(
        &self,
        step: Step,
        value: Option<Value>,
        seed: S,
    ) -> Result<S::Value> {
        let mut path = self.path.clone();
        path.push(step);
        let node = Node { value, path: path.clone(), section: self.section, ctx: self.ctx };
        seed.deserialize(node).map_err(|e| DeError { at: e.at.or(Some(path)), ..e })
    }
}

impl<'de> MapAccess<'de> for Entries<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        let Some((step, value)) = self.items.next() else { return Ok(None) };
        let Step::Key(key) = &step else {
            return Err(de::Error::custom("an array read as a table"));
        };
        let k = seed.deserialize(key.as_str().into_deserializer())?;
        self.next = Some((step, value));
        Ok(Some(k))
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value> {
        let (step, value) =
            self.next.take().ok_or_else(|| de::Error::custom("a value without a key"))?;
        self.read(step, value, seed)
    }
}

impl<'de> SeqAccess<'de> for Entries<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        let Some((step, value)) = self.items.next() else { return Ok(None) };
        self.read(step, value, seed).map(Some)
    }
}
