//! A secret value read from a file or a systemd credential, never shown.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::config::Invalid;
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

/// The credentials directory of the config file `config`: `NAME.credentials` beside
/// `NAME.toml` (`/etc/mpsync/mpsync.credentials` for the default config, one per instance of
/// the template unit). The shipped units load it with `LoadCredential=`; outside systemd
/// (`sudo mpsync check`) mpsync reads the secrets there itself.
pub fn credentials_dir_for(config: &Path) -> PathBuf {
    let stem = config.file_stem().map(|s| s.to_string_lossy()).unwrap_or_default();
    let stem = if stem.is_empty() { "mpsync".into() } else { stem };
    config.with_file_name(format!("{stem}.credentials"))
}

/// Largest secret file accepted; API keys are short, a big file is a wrong path.
const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// Where a secret is looked for: the `*_file` key, else the systemd credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SecretSource {
    /// The path given by the `*_file` key; must not be readable by group or others.
    File(PathBuf),
    /// `$CREDENTIALS_DIRECTORY/<name>`. systemd makes that directory private to the unit
    /// and may expose the file through an ACL (which shows up as group bits in the mode), so
    /// the mode check is not applied here.
    Credential(PathBuf),
}

/// Reads a secret for the config key `key` (e.g. `mailprotector.api_key_file`), or returns
/// a message that names the path and says how to fix it. The message never holds the value.
pub(crate) fn read_secret(key: &str, source: &SecretSource) -> Result<Secret, Invalid> {
    let (path, check_mode) = match source {
        SecretSource::File(p) => (p.as_path(), true),
        SecretSource::Credential(p) => (p.as_path(), false),
    };
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| match (e.kind(), source) {
        (std::io::ErrorKind::NotFound, SecretSource::Credential(_)) => {
            let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
            format!(
                "{key} is not set and the systemd credential {shown} does not exist; add \
                 LoadCredential={name}:/path/to/file to the unit, or set {key}"
            )
        }
        (std::io::ErrorKind::NotFound, _) => format!(
            "the secret file {shown} does not exist; create it holding only the key \
             (chmod 600, owned by the service user), or point {key} at the right file"
        ),
        _ => format!("cannot read the secret file {shown} ({e}); check its permissions and owner"),
    })?;
    if !meta.is_file() {
        return Err(Invalid(format!(
            "{shown} is not a regular file; point {key} at the file holding the key"
        )));
    }
    let mode = meta.permissions().mode() & 0o777;
    if check_mode && mode & 0o077 != 0 {
        return Err(Invalid(format!(
            "the secret file {shown} is readable by group or others (mode {mode:04o}); \
             run `chmod 600 {shown}` and chown it to the user mpsync runs as"
        )));
    }
    if meta.len() > MAX_SECRET_BYTES {
        return Err(Invalid(format!(
            "the secret file {shown} is {} bytes, too large for an API key; check {key}",
            meta.len()
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| {
        format!("cannot read the secret file {shown} ({e}); check its permissions and owner")
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        format!("the secret file {shown} is not UTF-8 text; it should hold only the key")
    })?;
    let value = text.trim();
    if value.is_empty() {
        return Err(Invalid(format!("the secret file {shown} is empty; write the key into it")));
    }
    Ok(Secret::new(value, shown.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write(dir: &std::path::Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let p = dir.join(name);
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn value_is_trimmed_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "k", "  sekrit-value-42\n", 0o600);
        let s = read_secret("x.key_file", &SecretSource::File(p.clone())).unwrap();
        assert_eq!(s.expose(), "sekrit-value-42");
        assert_eq!(s.origin(), p.display().to_string());
        let debug = format!("{s:?}");
        assert!(!debug.contains("sekrit"), "{debug}");
        assert!(debug.contains("<redacted>"));
    }

    #[test]
    fn group_or_world_readable_files_are_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o640, 0o604, 0o660] {
            let p = write(dir.path(), "k", "sekrit", mode);
            let e = read_secret("x.key_file", &SecretSource::File(p.clone())).unwrap_err();
            assert!(e.contains(&format!("chmod 600 {}", p.display())), "{e}");
            assert!(!e.contains("sekrit"), "{e}");
        }
    }

    #[test]
    fn credentials_skip_the_mode_check() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "k", "v", 0o440);
        assert!(read_secret("x.key_file", &SecretSource::Credential(p)).is_ok());
    }

    #[test]
    fn missing_and_empty_files_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let e = read_secret("x.key_file", &SecretSource::File(missing.clone())).unwrap_err();
        assert!(e.contains(&missing.display().to_string()) && e.contains("does not exist"), "{e}");
        let empty = write(dir.path(), "e", " \n", 0o600);
        let e = read_secret("x.key_file", &SecretSource::File(empty)).unwrap_err();
        assert!(e.contains("is empty"), "{e}");
    }
}
