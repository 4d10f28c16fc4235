//! A secret value read from a file or a systemd credential, never shown.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

/// A secret string. `Debug`, `Display` and `Serialize` all print `<redacted>`.
#[derive(Clone)]
pub struct Secret {
    value: SecretString,
    /// Where it was read from (a path); safe to show.
    origin: String,
}

impl Secret {
    /// Wraps a value read from `origin` (a file path or credential name).
    pub fn new(value: impl Into<String>, origin: impl Into<String>) -> Self {
        Secret { value: SecretString::from(value.into()), origin: origin.into() }
    }

    /// The secret itself. Call only where it is put on the wire.
    pub fn expose(&self) -> &str {
        self.value.expose_secret()
    }

    /// Where the secret was read from.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted> (from {})", self.origin)
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}
