//! What validation carries along (`Check`: the problems found so far, where each key came
//! from, the environment) and how it reads secrets: each `*_file` key, else its systemd
//! credential, else the file of that name in the credentials directory beside the config.
//! `validate` and `notify` (whose channels' credentials are named after them) both use it.

use std::collections::HashMap;
use std::path::PathBuf;

use super::error::ConfigProblem;
use super::layers::Provenance;
use super::secret::{Secret, SecretSource, read_secret};

/// The problems found so far (starting with those found while reading), where keys came
/// from, and the process environment.
pub(crate) struct Check<'e> {
    pub problems: Vec<ConfigProblem>,
    pub prov: Provenance,
    pub env: &'e HashMap<String, String>,
    /// The credentials directory beside the config file ([`super::credentials_dir_for`]):
    /// where secrets are read from outside systemd when no `*_file` key names them.
    pub credentials_dir: PathBuf,
}

impl<'e> Check<'e> {
    pub(crate) fn problem(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(ConfigProblem { key: key.into(), message: message.into() });
    }

    /// A non-empty environment variable.
    pub(crate) fn env_var(&self, name: &str) -> Option<&'e str> {
        self.env.get(name).map(String::as_str).filter(|v| !v.trim().is_empty())
    }

    /// Whether `key` was given with a bad value (already reported while reading).
    pub(crate) fn reported(&self, key: &str) -> bool {
        self.problems.iter().any(|p| p.key == key)
    }

    /// A required value: reports `missing` unless the key was given with a bad value.
    pub(crate) fn required<T>(&mut self, key: &str, value: Option<T>, missing: &str) -> Option<T> {
        if value.is_none() && !self.reported(key) {
            self.problem(key, missing);
        }
        value
    }
}

/// Every secret: its `*_file` key, its systemd credential, and what it is (for "not set").
const SECRETS: [(&str, &str, &str); 9] = [
    ("daemon.access_token_file", "mpsync-access-token", ACCESS_TOKEN),
    ("mailprotector.api_key_file", "mailprotector-api-key", "the Mailprotector API key"),
    (
        "billing.connectwise.public_key_file",
        "connectwise-public-key",
        "the API member's public key",
    ),
    (
        "billing.connectwise.private_key_file",
        "connectwise-private-key",
        "the API member's private key",
    ),
    (
        "billing.autotask.integration_code_file",
        "autotask-integration-code",
        "the Autotask API tracking identifier (integration code)",
    ),
    ("billing.autotask.secret_file", "autotask-secret", "the Autotask API user's secret"),
    (
        "billing.halopsa.client_secret_file",
        "halopsa-client-secret",
        "the HaloPSA API application's client secret",
    ),
    ("gradient.vendor_key_file", "gradient-vendor-key", "the Gradient vendor API key"),
    ("gradient.partner_key_file", "gradient-partner-key", "the Gradient partner API key"),
];
pub(crate) const ACCESS_TOKEN: &str =
    "with daemon.allow_remote = true, the access token of the HTTP endpoint";

/// When `needed`, reads the secret `key` names (`file`); else, under systemd, its credential
/// (`$CREDENTIALS_DIRECTORY/<name>`, or `mpsync_<name>` as a credentials directory loaded with
/// `LoadCredential=mpsync:DIR` names it); else the file `<name>` in the credentials directory
/// beside the config, which is what that unit line loads.
pub(crate) fn secret(
    c: &mut Check<'_>,
    key: &str,
    file: Option<PathBuf>,
    needed: bool,
) -> Option<Secret> {
    if !needed || c.reported(key) {
        return None;
    }
    let (_, credential, what) = *SECRETS.iter().find(|s| s.0 == key).expect("a listed secret");
    secret_named(c, key, credential, what, file)
}

/// [`secret`] for a secret not in [`SECRETS`] (a `[[notify]]` channel's, whose credential
/// name has the channel's name in it): `key`'s file, else the credential `credential`.
pub(crate) fn secret_named(
    c: &mut Check<'_>,
    key: &str,
    credential: &str,
    what: &str,
    file: Option<PathBuf>,
) -> Option<Secret> {
    if c.reported(key) {
        return None;
    }
    let source = match (file, c.env_var("CREDENTIALS_DIRECTORY")) {
        (Some(p), _) => SecretSource::File(p),
        (None, Some(dir)) => {
            let dir = PathBuf::from(dir);
            let plain = dir.join(credential);
            let from_dir = dir.join(format!("{CREDENTIAL_PREFIX}{credential}"));
            if plain.exists() {
                SecretSource::Credential(plain)
            } else if from_dir.exists() {
                SecretSource::Credential(from_dir)
            } else {
                let beside = c.credentials_dir.join(credential);
                c.problem(
                    key,
                    format!(
                        "not set: {what} is needed, and the service has no credential \
                         {credential}; write it to {} (chmod 600; `mpsync init` does) and \
                         restart the service, or set {key}",
                        beside.display()
                    ),
                );
                return None;
            }
        }
        (None, None) => {
            let beside = c.credentials_dir.join(credential);
            if !beside.exists() {
                c.problem(
                    key,
                    format!(
                        "not set: {what} is needed; write it to {} (chmod 600; `mpsync init` \
                         does), or set {key} to a file holding it",
                        beside.display()
                    ),
                );
                return None;
            }
            SecretSource::File(beside)
        }
    };
    match read_secret(key, &source) {
        Ok(secret) => {
            // `mpsync config` shows it as `api_key = "<redacted>"  # read from FILE`.
            let shown = key.strip_suffix("_file").unwrap_or(key);
            c.prov.secret_read(shown, secret.origin());
            Some(secret)
        }
        Err(msg) => {
            c.problem(key, msg);
            None
        }
    }
}

/// The credential id the shipped units load the credentials directory under:
/// `LoadCredential=mpsync:/etc/mpsync/NAME.credentials` exposes each file `F` in it as
/// `$CREDENTIALS_DIRECTORY/mpsync_F`.
pub(crate) const CREDENTIAL_PREFIX: &str = "mpsync_";

/// Every secret's credential name (the file name in a credentials directory) and its
/// `*_file` key, in the order `mpsync check` and `mpsync init` name them.
pub fn credential_names() -> impl Iterator<Item = (&'static str, &'static str)> {
    SECRETS.iter().map(|(key, name, _)| (*name, *key))
}
