//! `mpsync init`: a starter config and its secret files, then `mpsync check`.
//!
//! The config goes to `-c PATH`; each secret to `NAME.credentials/<credential>` beside it
//! (directory 0700, files 0600), the directory the shipped units load with `LoadCredential=`
//! and the one mpsync reads itself outside systemd. Values come from the flags; what they
//! leave out is asked on a terminal (secrets without echo) and is a usage error (64)
//! otherwise. Nothing is ever overwritten (73): the only file replaced is the unconfigured
//! example the Debian package ships as the config, byte for byte.

use std::fmt::Write as _;
use std::fs::{DirBuilder, OpenOptions};
use std::io::{self, BufRead, IsTerminal, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::{CommandError, Globals, InitError};
use crate::cli::{CheckArgs, InitArgs, InitBilling};
use crate::config::credentials_dir_for;

/// The unconfigured config the Debian package installs as `/etc/mpsync/mpsync.toml`: `init`
/// may replace it (and only it).
pub const SHIPPED_EXAMPLE: &str = include_str!("../../packaging/mpsync.toml");

/// Reads values: flags first, then the terminal, else an error naming the flag.
struct Asker {
    tty: bool,
    stdin: io::StdinLock<'static>,
}

impl Asker {
    fn line(&mut self, flag: &'static str, prompt: &str) -> Result<String, InitError> {
        if !self.tty {
            return Err(InitError::Missing(flag));
        }
        eprint!("{prompt}: ");
        let _ = io::stderr().flush();
        let mut s = String::new();
        self.stdin.read_line(&mut s).map_err(|source| InitError::Io {
            action: "read",
            path: "standard input".into(),
            source,
        })?;
        Ok(s.trim().to_owned())
    }

    fn line_or(
        &mut self,
        flag: &'static str,
        prompt: &str,
        default: &str,
    ) -> Result<String, InitError> {
        if !self.tty {
            return Ok(default.to_owned());
        }
        let got = self.line(flag, &format!("{prompt} [{default}]"))?;
        Ok(if got.is_empty() { default.to_owned() } else { got })
    }

    /// A secret: from `file` (a path, or `-` for one line of standard input), else asked
    /// for without echo.
    fn secret(
        &mut self,
        flag: &'static str,
        file: Option<&Path>,
        prompt: &str,
    ) -> Result<String, InitError> {
        let value = match file {
            Some(p) if p == Path::new("-") => {
                let mut s = String::new();
                self.stdin.read_line(&mut s).map_err(|source| InitError::Io {
                    action: "read",
                    path: "standard input".into(),
                    source,
                })?;
                s
            }
            Some(p) => std::fs::read_to_string(p).map_err(|source| InitError::Io {
                action: "read the secret file",
                path: p.to_path_buf(),
                source,
            })?,
            None if self.tty => {
                rpassword::prompt_password(format!("{prompt} (not shown): ")).map_err(|source| {
                    InitError::Io { action: "read", path: "the terminal".into(), source }
                })?
            }
            None => return Err(InitError::Missing(flag)),
        };
        let value = value.trim().to_owned();
        if value.is_empty() || value.contains(['\n', '\r']) {
            let reason = "expected one non-empty line holding only the key".into();
            return Err(InitError::Bad { flag, reason });
        }
        Ok(value)
    }
}

/// What `init` writes.
struct Plan {
    config: String,
    secrets: Vec<(&'static str, String)>,
}

/// Writes the config and secrets `args` and the terminal give, then runs `check`.
pub async fn run(g: &Globals, args: InitArgs) -> Result<(), CommandError> {
    let config_path = g.config_path.clone();
    let creds = credentials_dir_for(&config_path);
    let no_check = args.no_check;
    let written = tokio::task::spawn_blocking(move || {
        let tty = io::stdin().is_terminal();
        let mut asker = Asker { tty, stdin: io::stdin().lock() };
        let plan = gather(&mut asker, &args, &config_path, &creds)?;
        write(&config_path, &creds, &plan)?;
        Ok::<_, InitError>((config_path, creds, plan.secrets.len()))
    })
    .await
    .map_err(CommandError::StoreTask)?;
    let (config_path, creds, n) = written.map_err(CommandError::Init)?;
    println!(
        "wrote {} and {n} secret file{} in {} (mode 0600)",
        config_path.display(),
        if n == 1 { "" } else { "s" },
        creds.display()
    );
    if no_check {
        println!("next: mpsync -c {} check", config_path.display());
        return Ok(());
    }
    println!("running mpsync check:");
    super::check::check(g, CheckArgs { json: false }).await
}

/// Collects every value, refusing early (before any secret is asked) when a file exists.
fn gather(
    ask: &mut Asker,
    args: &InitArgs,
    config_path: &Path,
    creds: &Path,
) -> Result<Plan, InitError> {
    let mut existing = Vec::new();
    if let Ok(text) = std::fs::read(config_path) {
        if text != SHIPPED_EXAMPLE.as_bytes() {
            existing.push(config_path.to_path_buf());
        }
    } else if config_path.symlink_metadata().is_ok() {
        existing.push(config_path.to_path_buf());
    }
    if !existing.is_empty() {
        return Err(InitError::Exists(existing));
    }
    let reseller_id = match args.reseller_id {
        Some(id) => id,
        None => {
            let text = ask.line(
                "--reseller-id",
                "Mailprotector reseller id (the number in the console URL)",
            )?;
            text.parse().map_err(|_| InitError::Bad {
                flag: "--reseller-id",
                reason: format!("{text:?} is not a number"),
            })?
        }
    };
    let billing = match args.billing {
        Some(b) => b,
        None => match ask
            .line_or(
                "--billing",
                "Billing source: connectwise, autotask, halopsa, csv or none",
                "none",
            )?
            .as_str()
        {
            "connectwise" => InitBilling::Connectwise,
            "autotask" => InitBilling::Autotask,
            "halopsa" => InitBilling::Halopsa,
            "csv" => InitBilling::Csv,
            "none" => InitBilling::None,
            other => {
                let reason =
                    format!("{other:?} is none of connectwise, autotask, halopsa, csv, none");
                return Err(InitError::Bad { flag: "--billing", reason });
            }
        },
    };
    let mut names = vec!["mailprotector-api-key"];
    match billing {
        InitBilling::Connectwise => {
            names.extend(["connectwise-public-key", "connectwise-private-key"]);
        }
        InitBilling::Autotask => names.extend(["autotask-integration-code", "autotask-secret"]),
        InitBilling::Halopsa => names.push("halopsa-client-secret"),
        InitBilling::Csv | InitBilling::None => {}
    }
    let existing: Vec<PathBuf> =
        names.iter().map(|n| creds.join(n)).filter(|p| p.symlink_metadata().is_ok()).collect();
    if !existing.is_empty() {
        return Err(InitError::Exists(existing));
    }
    let listen = match args.listen {
        Some(a) => a.to_string(),
        None => ask.line_or("--listen", "HTTP endpoint address", "127.0.0.1:9847")?,
    };
    if listen.parse::<std::net::SocketAddr>().is_err() {
        let reason = format!("{listen:?} is not an address such as 127.0.0.1:9847");
        return Err(InitError::Bad { flag: "--listen", reason });
    }

    let mut config = format!(
        "# mpsync configuration, written by `mpsync init`. Every key, with its default and what \
         it is\n# for: config/mpsync.toml in the source, /usr/share/doc/mpsync/examples/mpsync.toml \
         in the\n# package. After a change: mpsync -c {path} check\n# Secrets are not in this \
         file: each is a file in {creds} (mode 0600),\n# which the systemd unit hands to the \
         service as a credential.\n\n[daemon]\nlisten = \"{listen}\"\n",
        path = config_path.display(),
        creds = creds.display(),
    );
    if let Some(dir) = &args.state_dir {
        let _ = writeln!(config, "state_dir = {}", toml_str(&dir.display().to_string()));
    }
    config.push_str("\n[mailprotector]\n");
    if let Some(url) = &args.mailprotector_url {
        let _ = writeln!(config, "base_url = {}", toml_str(url));
    }
    let _ = writeln!(config, "reseller_id = {reseller_id}");

    let mut secrets = vec![(
        "mailprotector-api-key",
        ask.secret("--api-key-file", args.api_key_file.as_deref(), "Mailprotector API key")?,
    )];
    match billing {
        InitBilling::None => config.push_str("\n[billing]\nsource = \"none\"\n"),
        InitBilling::Csv => {
            let path = match &args.csv_path {
                Some(p) => p.display().to_string(),
                None => ask.line("--csv-path", "The CSV export of billed lines (a path)")?,
            };
            let _ = write!(
                config,
                "\n[billing]\nsource = \"csv\"\n\n[billing.csv]\npath = {}\n",
                toml_str(&path)
            );
        }
        InitBilling::Autotask => {
            let user = match &args.at_username {
                Some(u) => u.clone(),
                None => ask.line("--at-username", "Autotask API-only user name")?,
            };
            let _ = write!(
                config,
                "\n[billing]\nsource = \"autotask\"\n\n[billing.autotask]\nusername = {}\n",
                toml_str(&user)
            );
            secrets.push((
                "autotask-integration-code",
                ask.secret(
                    "--at-integration-code-file",
                    args.at_integration_code_file.as_deref(),
                    "Autotask integration code",
                )?,
            ));
            secrets.push((
                "autotask-secret",
                ask.secret(
                    "--at-secret-file",
                    args.at_secret_file.as_deref(),
                    "Autotask API user's secret",
                )?,
            ));
        }
        InitBilling::Halopsa => {
            let url = match &args.halo_url {
                Some(u) => u.clone(),
                None => ask.line(
                    "--halo-url",
                    "HaloPSA address (the resource server without /api, e.g. https://acme.halopsa.com)",
                )?,
            };
            let url = url.trim().trim_end_matches('/').trim_end_matches("/api").to_owned();
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                let reason = format!("{url:?} is not an address such as https://acme.halopsa.com");
                return Err(InitError::Bad { flag: "--halo-url", reason });
            }
            let tenant = match &args.halo_tenant {
                Some(t) => t.clone(),
                None => ask.line_or(
                    "--halo-tenant",
                    "HaloPSA tenant (Configuration > Integrations > HaloPSA API; - on premises)",
                    "-",
                )?,
            };
            let client_id = match &args.halo_client_id {
                Some(c) => c.clone(),
                None => ask.line("--halo-client-id", "HaloPSA API application's Client ID")?,
            };
            let _ = write!(
                config,
                "\n[billing]\nsource = \"halopsa\"\n\n[billing.halopsa]\nbase_url = {}\nclient_id = {}\n",
                toml_str(&url),
                toml_str(&client_id)
            );
            let tenant = tenant.trim();
            if !tenant.is_empty() && tenant != "-" {
                let _ = writeln!(config, "tenant = {}", toml_str(tenant));
            }
            secrets.push((
                "halopsa-client-secret",
                ask.secret(
                    "--halo-client-secret-file",
                    args.halo_client_secret_file.as_deref(),
                    "HaloPSA client secret",
                )?,
            ));
        }
        InitBilling::Connectwise => {
            let company = match &args.cw_company_id {
                Some(c) => c.clone(),
                None => ask.line("--cw-company-id", "ConnectWise company (login) id")?,
            };
            let client = match &args.cw_client_id {
                Some(c) => c.clone(),
                None => ask.line("--cw-client-id", "ConnectWise integration clientId")?,
            };
            let _ = write!(
                config,
                "\n[billing]\nsource = \"connectwise\"\n\n[billing.connectwise]\ncompany_id = \
                 {}\nclient_id = {}\n",
                toml_str(&company),
                toml_str(&client)
            );
            if let Some(url) = &args.cw_url {
                let _ = writeln!(config, "base_url = {}", toml_str(url));
            }
            secrets.push((
                "connectwise-public-key",
                ask.secret(
                    "--cw-public-key-file",
                    args.cw_public_key_file.as_deref(),
                    "ConnectWise public key",
                )?,
            ));
            secrets.push((
                "connectwise-private-key",
                ask.secret(
                    "--cw-private-key-file",
                    args.cw_private_key_file.as_deref(),
                    "ConnectWise private key",
                )?,
            ));
        }
    }
    if billing != InitBilling::None {
        let stem = config_path.file_stem().map(|s| s.to_string_lossy()).unwrap_or_default();
        let name =
            if stem == "mpsync" { "mapping.toml".into() } else { format!("{stem}.mapping.toml") };
        let mapping = config_path.with_file_name(name);
        let _ = write!(
            config,
            "\n[reconcile]\n# Customer → account and product → PSA product (an example: \
             config/mapping.toml in the\n# source, /usr/share/doc/mpsync/examples/mapping.toml in \
             the package).\nmapping_file = {}\n",
            toml_str(&mapping.display().to_string())
        );
    }
    Ok(Plan { config, secrets })
}

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// Writes the secrets (each a new file) and then the config (a new file, or in place of the
/// shipped example, through a rename). A failure removes what this run wrote.
fn write(config: &Path, creds: &Path, plan: &Plan) -> Result<(), InitError> {
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| InitError::Io { action, path, source }
    };
    if let Some(dir) = config.parent().filter(|d| !d.as_os_str().is_empty()) {
        DirBuilder::new().recursive(true).mode(0o755).create(dir).map_err(io("create", dir))?;
    }
    DirBuilder::new().recursive(true).mode(0o700).create(creds).map_err(io("create", creds))?;
    let mut written = Vec::new();
    let result = (|| {
        for (name, value) in &plan.secrets {
            let path = creds.join(name);
            new_file(&path, &format!("{value}\n"), 0o600).map_err(io("write", &path))?;
            written.push(path);
        }
        let tmp = config.with_extension("toml.init-new");
        let _ = std::fs::remove_file(&tmp);
        new_file(&tmp, &plan.config, 0o644).map_err(io("write", &tmp))?;
        // The shipped example (or nothing) is there: checked before anything was asked.
        std::fs::rename(&tmp, config).map_err(io("write", config))
    })();
    if result.is_err() {
        for p in written {
            let _ = std::fs::remove_file(p);
        }
    }
    result
}

fn new_file(path: &Path, text: &str, mode: u32) -> io::Result<()> {
    let mut f = OpenOptions::new().write(true).create_new(true).mode(mode).open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_example_fails_check_naming_what_to_fill_in() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mpsync.toml");
        std::fs::write(&path, SHIPPED_EXAMPLE).unwrap();
        let opts =
            crate::config::LoadOptions { path, env: Default::default(), overrides: Vec::new() };
        let e = crate::config::load(&opts).unwrap_err();
        let keys: Vec<&str> = e.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["mailprotector.api_key_file", "mailprotector.reseller_id"], "{e:#}");
        let text = format!("{e:#}");
        assert!(text.contains("mpsync.credentials/mailprotector-api-key"), "{text}");
    }
}
