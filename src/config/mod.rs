//! Configuration: layered settings (defaults < TOML file < `MPSYNC_*` environment < CLI
//! flags) read into one serde schema and validated into a [`Config`] that the rest of the
//! program trusts.
//!
//! Validation collects every problem at once, each with its key path and, when not the file,
//! the variable or flag that set it; secrets are read from files or systemd credentials and
//! never shown.
//!
//! # Layout
//! `layers` (file + environment + flags, and where each key came from) → `de` (a serde
//! deserializer over that tree: key paths, unknown keys, the typing rule) into `raw` (the
//! schema, with `leaf` readers) → `validate` (defaults, cross-key rules, secrets) → `types`
//! (the validated [`Config`], whose `Serialize` is `render`'s `mpsync config` view). Nothing
//! here imports this file: it only declares and re-exports.

mod check;
mod de;
mod error;
pub mod hosts;
mod layers;
mod leaf;
mod load;
pub mod mapping;
mod notify;
mod raw;
mod render;
mod schedule;
mod secret;
mod types;
mod validate;

pub use check::credential_names;
pub use error::{ConfigError, ConfigProblem, Invalid};
pub use layers::{DEFAULT_CONFIG_PATH, LoadOptions, Origin, Provenance};
pub use load::{load, load_text, load_with_provenance};
pub use mapping::{Mapping, MappingError, MappingProblem, ProductMapping, Suppression};
pub use render::{redacted_toml, redacted_toml_annotated};
pub use schedule::Schedule;
pub use secret::{Secret, credentials_dir_for};
pub use types::*;

pub use crate::model::user_types::CountedTypes;
