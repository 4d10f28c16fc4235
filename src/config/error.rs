//! What a failed load reports: every problem found, each with the key path (or file, or
//! variable) it concerns. One type for the whole loader, printed in one place (`main`).

use std::fmt;
use std::path::PathBuf;

use crate::exit::{Exit, ExitStatus};

/// One problem found in the config, with the key path it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Dotted key path, e.g. `mailprotector.timeout` (or the file, or `RUST_LOG`).
    pub key: String,
    /// What is wrong and what is expected.
    pub message: String,
}

/// Why the config could not be loaded: every problem found.
///
/// `{}` is a one-line summary; `{:#}` adds one line per problem (`  - key: message`).
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    /// The config file that was being loaded.
    pub path: PathBuf,
    /// Every problem, in key order.
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "invalid configuration from {} (with MPSYNC_* environment and flags): {n} problem{}; \
             fix each one, then check with `mpsync check`",
            self.path.display(),
            if n == 1 { "" } else { "s" }
        )?;
        if f.alternate() {
            for p in &self.problems {
                write!(f, "\n  - {}: {}", p.key, p.message)?;
            }
        }
        Ok(())
    }
}

impl ExitStatus for ConfigError {
    fn exit(&self) -> Exit {
        Exit::Config
    }
}

/// Why one configured value is not valid, with what to write instead: the message of a
/// [`ConfigProblem`] before it is given its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl From<String> for Invalid {
    fn from(message: String) -> Invalid {
        Invalid(message)
    }
}

impl From<&str> for Invalid {
    fn from(message: &str) -> Invalid {
        Invalid(message.to_owned())
    }
}

impl From<Invalid> for String {
    fn from(i: Invalid) -> String {
        i.0
    }
}

impl std::ops::Deref for Invalid {
    type Target = str;

    /// The message, so it can be read and searched like the text it is.
    fn deref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<&str> for Invalid {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}
