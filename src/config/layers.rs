//! The layers: read the TOML file, then merge it with the `MPSYNC_*` environment and the CLI
//! overrides (the `config` crate) into one untyped tree, remembering which layer set each key
//! so problems and `mpsync config` can say where a value came from. Defaults are not a layer
//! here: they are applied by `validate`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use config::{Environment, File, FileFormat, Map, Value};

use super::error::ConfigProblem;

/// The default config file path.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/mpsync/mpsync.toml";

/// Where config comes from besides the file.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The TOML file.
    pub path: PathBuf,
    /// The process environment (a snapshot; tests pass their own). Supplies `MPSYNC_*`
    /// overrides, `RUST_LOG`, `STATE_DIRECTORY` and `CREDENTIALS_DIRECTORY`.
    pub env: HashMap<String, String>,
    /// CLI flag overrides as (dotted key, value), e.g. ("daemon.listen", "127.0.0.1:9900").
    pub overrides: Vec<(String, String)>,
}

impl LoadOptions {
    /// Options for `path` with the real process environment and the given CLI overrides.
    pub fn from_process(path: PathBuf, overrides: Vec<(String, String)>) -> LoadOptions {
        LoadOptions { path, env: std::env::vars().collect(), overrides }
    }
}

/// Prefix of the environment variables that override config keys.
const ENV_PREFIX: &str = "MPSYNC";

/// Where a key's effective value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The built-in default.
    Default,
    /// The TOML file.
    File,
    /// An `MPSYNC_*` variable (its name).
    Env(String),
    /// A command-line flag.
    Cli,
    /// Taken from another environment variable: `STATE_DIRECTORY` (only a default) or
    /// `RUST_LOG` (wins over the file and `MPSYNC_DAEMON__LOG`, not over `--log`).
    DerivedEnv(&'static str),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File => f.write_str("from the file"),
            Origin::Env(var) => write!(f, "from {var}"),
            Origin::Cli => f.write_str("from the command line"),
            Origin::DerivedEnv(var) => write!(f, "from ${var}"),
        }
    }
}

/// Which layer set which key (dotted paths). Safe to show: holds names, never values.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    /// The config file that was read.
    pub file: PathBuf,
    file_keys: BTreeSet<String>,
    env_keys: BTreeMap<String, String>,
    cli_keys: BTreeSet<String>,
    /// Keys whose value came from a non-`MPSYNC_` variable that wins over file and env.
    derived_overrides: BTreeMap<String, &'static str>,
    /// Keys whose default came from a non-`MPSYNC_` variable.
    derived_defaults: BTreeMap<String, &'static str>,
    /// Secrets read (by the key they are shown under, e.g. `mailprotector.api_key`) → the
    /// file they were read from.
    secrets: BTreeMap<String, String>,
}

impl Provenance {
    /// Where the effective value of `key` (a dotted path) came from.
    pub fn origin(&self, key: &str) -> Origin {
        if self.cli_keys.contains(key) {
            Origin::Cli
        } else if let Some(var) = self.derived_overrides.get(key) {
            Origin::DerivedEnv(var)
        } else if let Some(var) = self.env_keys.get(key) {
            Origin::Env(var.clone())
        } else if self.file_keys.contains(key) {
            Origin::File
        } else if let Some(var) = self.derived_defaults.get(key) {
            Origin::DerivedEnv(var)
        } else {
            Origin::Default
        }
    }

    /// The note `mpsync config` writes beside `key`: where its value came from, or for a
    /// secret, the file it was read from.
    pub fn note(&self, key: &str) -> String {
        match self.secrets.get(key) {
            Some(file) => format!("read from {file}"),
            None => self.origin(key).to_string(),
        }
    }

    /// Records that the secret shown as `key` was read from `file`.
    pub(crate) fn secret_read(&mut self, key: &str, file: &str) {
        self.secrets.insert(key.to_string(), file.to_string());
    }

    /// Records that `var` (e.g. `RUST_LOG`) set `key`, winning over the file and `MPSYNC_*`.
    pub(crate) fn derive_override(&mut self, key: &str, var: &'static str) {
        self.derived_overrides.insert(key.to_string(), var);
    }

    /// Records that `var` (e.g. `STATE_DIRECTORY`) supplied the default of `key`.
    pub(crate) fn derive_default(&mut self, key: &str, var: &'static str) {
        self.derived_defaults.insert(key.to_string(), var);
    }

    /// Describes which layers set `key` or anything under it, for unknown-key messages.
    pub(crate) fn setters(&self, key: &str) -> String {
        // A layer set `key` if it set the key itself, something under it, or the array it
        // sits in (`mailprotector.counts` for `mailprotector.counts[0].name`).
        let related =
            |a: &str, b: &str| b.starts_with(&format!("{a}.")) || b.starts_with(&format!("{a}["));
        let under = |k: &str| k == key || related(key, k) || related(k, key);
        let mut who: Vec<String> = self
            .env_keys
            .iter()
            .filter(|(k, _)| under(k))
            .map(|(_, var)| format!("environment variable {var}"))
            .collect();
        if self.cli_keys.iter().any(|k| under(k)) {
            who.push("the command line".into());
        }
        if self.file_keys.iter().any(|k| under(k)) {
            who.push(format!("{}", self.file.display()));
        }
        if who.is_empty() {
            // Not traceable to one layer (e.g. an override the config crate expanded).
            return "the configuration".into();
        }
        who.join(" and ")
    }
}

/// The merged, untyped tree (top-level sections and keys) and where each key came from.
pub(crate) type Merged = (Map<String, Value>, Provenance);

/// Reads the file and merges every layer. Problems here (missing file, TOML syntax) stop
/// loading: without the file nothing else can be judged.
pub(crate) fn merge(opts: &LoadOptions) -> Result<Merged, Vec<ConfigProblem>> {
    let text = read_file(&opts.path)?;
    merge_text(opts, &text)
}

/// Like [`merge`] for file contents already read; `opts.path` only names the file.
pub(crate) fn merge_text(opts: &LoadOptions, text: &str) -> Result<Merged, Vec<ConfigProblem>> {
    let table: toml::Table =
        toml::from_str(text).map_err(|e| vec![syntax_problem(&opts.path, text, &e)])?;

    let mut provenance = Provenance { file: opts.path.clone(), ..Provenance::default() };
    collect_leaves(&table, "", &mut provenance.file_keys);
    provenance.env_keys = env_keys(&opts.env);

    let env: Map<String, String> = opts.env.clone().into_iter().collect();
    let mut builder =
        config::Config::builder().add_source(File::from_str(text, FileFormat::Toml)).add_source(
            Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("_")
                .separator("__")
                .source(Some(env)),
        );
    for (key, value) in &opts.overrides {
        provenance.cli_keys.insert(key.clone());
        builder = builder.set_override(key.as_str(), value.as_str()).map_err(|e| {
            vec![ConfigProblem {
                key: key.clone(),
                message: format!("cannot apply the command-line value: {e}"),
            }]
        })?;
    }
    let merged = builder.build().map_err(|e| {
        vec![ConfigProblem {
            key: opts.path.display().to_string(),
            message: format!("cannot merge the file with the MPSYNC_* environment: {e}"),
        }]
    })?;
    let root = merged.cache.into_table().map_err(|e| {
        vec![ConfigProblem { key: opts.path.display().to_string(), message: format!("{e}") }]
    })?;
    Ok((root, provenance))
}

/// Reads the config file, or says how to provide one.
fn read_file(path: &Path) -> Result<String, Vec<ConfigProblem>> {
    let key = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && path == Path::new(DEFAULT_CONFIG_PATH) =>
        {
            Err(vec![ConfigProblem {
                key,
                message:
                    "the config file does not exist; create it (copy config/mpsync.toml from the \
                          mpsync source and set mailprotector.reseller_id) or pass -c PATH"
                        .into(),
            }])
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(vec![ConfigProblem {
            key,
            message: "the config file given with -c does not exist; check the path".into(),
        }]),
        Err(e) => Err(vec![ConfigProblem {
            key,
            message: format!("cannot read the config file ({e}); check its permissions"),
        }]),
    }
}

/// One problem naming the file, line and column of a TOML syntax error.
fn syntax_problem(path: &Path, text: &str, e: &toml::de::Error) -> ConfigProblem {
    let at = e.span().map(|span| {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        format!("line {line}, column {column}: ")
    });
    ConfigProblem {
        key: path.display().to_string(),
        message: format!(
            "{}{}; fix the TOML syntax (text values need double quotes, e.g. log = \"info\")",
            at.unwrap_or_default(),
            e.message().trim_end()
        ),
    }
}

/// Dotted paths of every leaf (arrays count as leaves).
fn collect_leaves(table: &toml::Table, prefix: &str, out: &mut BTreeSet<String>) {
    for (k, v) in table {
        let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            toml::Value::Table(t) => collect_leaves(t, &path, out),
            _ => {
                out.insert(path);
            }
        }
    }
}

/// Dotted key path → variable name for every `MPSYNC_*` variable, mapped the way the
/// `config` crate maps them (prefix and `_` stripped, lower-cased, `__` → `.`).
fn env_keys(env: &HashMap<String, String>) -> BTreeMap<String, String> {
    let prefix = format!("{}_", ENV_PREFIX.to_lowercase());
    env.keys()
        .filter_map(|var| {
            let lower = var.to_lowercase();
            let rest = lower.strip_prefix(&prefix)?;
            Some((rest.replace("__", "."), var.clone()))
        })
        .collect()
}
