//! Layering, provenance and whole-config validation, driven through `load` with explicit
//! environment maps (never the process environment).

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::*;
use crate::config::layers::{DEFAULT_CONFIG_PATH, Origin};
use crate::config::types::BillingSource;

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture { dir: tempfile::tempdir().unwrap() }
    }

    fn secret(&self, name: &str, value: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        fs::write(&p, value).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        p
    }

    /// A config with the Mailprotector key and reseller id plus `extra` TOML.
    fn config(&self, extra: &str) -> PathBuf {
        let key = self.secret("mp-key", "mp-secret-value\n");
        let text = format!(
            "[mailprotector]\napi_key_file = \"{}\"\nreseller_id = 188\n{extra}",
            key.display()
        );
        let p = self.dir.path().join("mpsync.toml");
        fs::write(&p, text).unwrap();
        p
    }
}

fn opts(path: &Path, env: &[(&str, &str)], overrides: &[(&str, &str)]) -> LoadOptions {
    LoadOptions {
        path: path.to_path_buf(),
        env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<HashMap<_, _>>(),
        overrides: overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }
}

fn problems(o: &LoadOptions) -> Vec<ConfigProblem> {
    load(o).expect_err("config should be invalid").problems
}

#[test]
fn an_env_override_really_lands() {
    let fx = Fixture::new();
    let path = fx.config("[daemon]\nlisten = \"127.0.0.1:1111\"\n");
    let cfg = load(&opts(&path, &[("MPSYNC_DAEMON__LISTEN", "127.0.0.1:2222")], &[])).unwrap();
    assert_eq!(cfg.daemon.listen.to_string(), "127.0.0.1:2222");
    // Numbers arrive as strings from the environment and still parse.
    let cfg = load(&opts(&path, &[("MPSYNC_MAILPROTECTOR__BURST", "9")], &[])).unwrap();
    assert_eq!(cfg.mailprotector.limits.burst, 9);
}

#[test]
fn nested_env_overrides_reach_subsections() {
    let fx = Fixture::new();
    let public = fx.secret("cw-public", "pub");
    let private = fx.secret("cw-private", "priv");
    let path = fx.config(&format!(
        "[billing]\nsource = \"connectwise\"\n[billing.connectwise]\ncompany_id = \"acme\"\n\
         client_id = \"c1\"\npublic_key_file = \"{}\"\nprivate_key_file = \"{}\"\n",
        public.display(),
        private.display()
    ));
    let env = [("MPSYNC_BILLING__CONNECTWISE__BASE_URL", "http://127.0.0.1:9/")];
    let cfg = load(&opts(&path, &env, &[])).unwrap();
    let BillingSource::Connectwise(cw) = &cfg.billing.source else { panic!("not connectwise") };
    assert_eq!(cw.base_url.as_str(), "http://127.0.0.1:9/");
    assert_eq!(cw.private_key.expose(), "priv");
}

#[test]
fn cli_beats_env_beats_file() {
    let fx = Fixture::new();
    let path = fx.config("[daemon]\nlog = \"warn\"\nlisten = \"127.0.0.1:1111\"\n");
    let env = [("MPSYNC_DAEMON__LOG", "debug"), ("MPSYNC_DAEMON__LISTEN", "127.0.0.1:2222")];
    let cli = [("daemon.log", "trace")];
    let (cfg, prov) = load_with_provenance(&opts(&path, &env, &cli)).unwrap();
    assert_eq!(cfg.daemon.log, "trace");
    assert_eq!(prov.origin("daemon.log"), Origin::Cli);
    assert_eq!(cfg.daemon.listen.to_string(), "127.0.0.1:2222");
    assert_eq!(prov.origin("daemon.listen"), Origin::Env("MPSYNC_DAEMON__LISTEN".into()));
    let (cfg, prov) = load_with_provenance(&opts(&path, &env, &[])).unwrap();
    assert_eq!(cfg.daemon.log, "debug");
    let (cfg, _) = load_with_provenance(&opts(&path, &[], &[])).unwrap();
    assert_eq!(cfg.daemon.log, "warn");
    assert_eq!(prov.origin("mailprotector.reseller_id"), Origin::File);
    assert_eq!(prov.origin("daemon.shutdown_grace"), Origin::Default);
}

#[test]
fn rust_log_wins_over_daemon_log_but_not_over_the_flag() {
    let fx = Fixture::new();
    let path = fx.config("[daemon]\nlog = \"warn\"\n");
    let cfg = load(&opts(&path, &[("RUST_LOG", "mpsync=debug")], &[])).unwrap();
    assert_eq!(cfg.daemon.log, "mpsync=debug");
    let cfg =
        load(&opts(&path, &[("RUST_LOG", "mpsync=debug")], &[("daemon.log", "error")])).unwrap();
    assert_eq!(cfg.daemon.log, "error");
    let p = problems(&opts(&path, &[("RUST_LOG", "mpsync=loud")], &[]));
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].key, "RUST_LOG");
}

#[test]
fn unknown_env_keys_name_the_variable() {
    let fx = Fixture::new();
    let path = fx.config("");
    let p = problems(&opts(&path, &[("MPSYNC_DAEMON__LISTNE", "127.0.0.1:1")], &[]));
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].key, "daemon.listne");
    assert!(p[0].message.contains("MPSYNC_DAEMON__LISTNE"), "{}", p[0].message);
    assert!(p[0].message.contains("did you mean daemon.listen?"), "{}", p[0].message);
}

#[test]
fn every_problem_is_reported_at_once_with_its_key() {
    let fx = Fixture::new();
    let path = fx.config(
        "timeout = \"30\"\n[daemon]\nlisten = \"nowhere\"\nlog = \"x=loud\"\n[reconcile]\nmax_age = 5\n\
         [gradient]\nenabled = true\n[bogus]\nx = 1\n",
    );
    let keys: Vec<String> = problems(&opts(&path, &[], &[])).into_iter().map(|p| p.key).collect();
    for k in [
        "bogus",
        "daemon.listen",
        "daemon.log",
        "gradient.partner_key_file",
        "gradient.vendor_key_file",
        "mailprotector.timeout",
        "reconcile.max_age",
    ] {
        assert!(keys.contains(&k.to_string()), "{k} missing from {keys:?}");
    }
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "problems come in key order");
}

#[test]
fn state_dir_defaults_to_state_directory_but_the_file_wins() {
    let fx = Fixture::new();
    let path = fx.config("");
    let env = [("STATE_DIRECTORY", "/run/x/state:/run/x/other")];
    let (cfg, prov) = load_with_provenance(&opts(&path, &env, &[])).unwrap();
    assert_eq!(cfg.daemon.state_dir, PathBuf::from("/run/x/state"));
    assert_eq!(prov.origin("daemon.state_dir"), Origin::DerivedEnv("STATE_DIRECTORY"));
    let cfg = load(&opts(&path, &[], &[])).unwrap();
    assert_eq!(cfg.daemon.state_dir, PathBuf::from("/var/lib/mpsync"));
    let path = fx.config("[daemon]\nstate_dir = \"/srv/mpsync\"\n");
    let cfg = load(&opts(&path, &env, &[])).unwrap();
    assert_eq!(cfg.daemon.state_dir, PathBuf::from("/srv/mpsync"));
}

#[test]
fn secrets_fall_back_to_the_credentials_directory() {
    let fx = Fixture::new();
    let creds = fx.dir.path().join("creds");
    fs::create_dir(&creds).unwrap();
    fs::write(creds.join("mailprotector-api-key"), "from-credential\n").unwrap();
    let path = fx.dir.path().join("c.toml");
    fs::write(&path, "[mailprotector]\nreseller_id = 7\n").unwrap();
    let env = [("CREDENTIALS_DIRECTORY", creds.to_str().unwrap())];
    let cfg = load(&opts(&path, &env, &[])).unwrap();
    assert_eq!(cfg.mailprotector.api_key.expose(), "from-credential");
    let p = problems(&opts(&path, &[], &[]));
    assert_eq!(p[0].key, "mailprotector.api_key_file");
    let beside = fx.dir.path().join("c.credentials/mailprotector-api-key");
    assert!(
        p[0].message.contains(&format!("write it to {}", beside.display())),
        "{}",
        p[0].message
    );
}

#[test]
fn a_credentials_directory_loaded_by_the_unit_is_read_under_its_prefix() {
    // LoadCredential=mpsync:/etc/mpsync/NAME.credentials exposes each file F as mpsync_F.
    let fx = Fixture::new();
    let creds = fx.dir.path().join("creds");
    fs::create_dir(&creds).unwrap();
    fs::write(creds.join("mpsync_mailprotector-api-key"), "from-the-directory\n").unwrap();
    let path = fx.dir.path().join("c.toml");
    fs::write(&path, "[mailprotector]\nreseller_id = 7\n").unwrap();
    let env = [("CREDENTIALS_DIRECTORY", creds.to_str().unwrap())];
    let cfg = load(&opts(&path, &env, &[])).unwrap();
    assert_eq!(cfg.mailprotector.api_key.expose(), "from-the-directory");
    // A credential under its own name (a unit with LoadCredential=NAME:PATH) still wins.
    fs::write(creds.join("mailprotector-api-key"), "from-its-own-line\n").unwrap();
    let cfg = load(&opts(&path, &env, &[])).unwrap();
    assert_eq!(cfg.mailprotector.api_key.expose(), "from-its-own-line");
    // Neither: the problem names the file to write, in the directory the unit loads.
    let empty = fx.dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let p = problems(&opts(&path, &[("CREDENTIALS_DIRECTORY", empty.to_str().unwrap())], &[]));
    let beside = fx.dir.path().join("c.credentials/mailprotector-api-key");
    assert_eq!(p[0].key, "mailprotector.api_key_file");
    assert!(p[0].message.contains(&beside.display().to_string()), "{}", p[0].message);
}

#[test]
fn outside_systemd_secrets_are_read_from_the_credentials_directory_beside_the_config() {
    use std::os::unix::fs::PermissionsExt;
    let fx = Fixture::new();
    let path = fx.dir.path().join("work.toml");
    fs::write(&path, "[mailprotector]\nreseller_id = 7\n").unwrap();
    let dir = fx.dir.path().join("work.credentials");
    fs::create_dir(&dir).unwrap();
    let key = dir.join("mailprotector-api-key");
    fs::write(&key, "beside-the-config\n").unwrap();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    // Read as a file: a key others may read is refused, as for a *_file key.
    let p = problems(&opts(&path, &[], &[]));
    assert!(p[0].message.contains("chmod 600"), "{}", p[0].message);
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    let cfg = load(&opts(&path, &[], &[])).unwrap();
    assert_eq!(cfg.mailprotector.api_key.expose(), "beside-the-config");
}

#[test]
fn sources_only_need_their_own_settings() {
    let fx = Fixture::new();
    let p = problems(&opts(&fx.config("[billing]\nsource = \"connectwise\"\n"), &[], &[]));
    let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "billing.connectwise.client_id",
            "billing.connectwise.company_id",
            "billing.connectwise.private_key_file",
            "billing.connectwise.public_key_file"
        ]
    );
    let p = problems(&opts(&fx.config("[billing]\nsource = \"csv\"\n"), &[], &[]));
    assert_eq!(p[0].key, "billing.csv.path");
    let p = problems(&opts(&fx.config("[billing]\nsource = \"quickbooks\"\n"), &[], &[]));
    assert!(
        p[0].message.contains("\"connectwise\", \"autotask\", \"halopsa\", \"csv\" or \"none\""),
        "{p:?}"
    );
    let p = problems(&opts(&fx.config("[billing]\nsource = \"autotask\"\n"), &[], &[]));
    let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "billing.autotask.integration_code_file",
            "billing.autotask.secret_file",
            "billing.autotask.username"
        ]
    );
    assert!(p[0].message.contains(".credentials/autotask-integration-code"), "{p:?}");
    let p = problems(&opts(&fx.config("[billing]\nsource = \"halopsa\"\n"), &[], &[]));
    let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "billing.halopsa.base_url",
            "billing.halopsa.client_id",
            "billing.halopsa.client_secret_file"
        ]
    );
    assert!(p[0].message.contains("https://acme.halopsa.com"), "{p:?}");
    assert!(p[2].message.contains(".credentials/halopsa-client-secret"), "{p:?}");
}

#[test]
fn toml_syntax_errors_name_the_file_and_line() {
    let fx = Fixture::new();
    let path = fx.dir.path().join("bad.toml");
    fs::write(&path, "[daemon]\nlisten = \"127.0.0.1:1\"\nlog = info\n").unwrap();
    let p = problems(&opts(&path, &[], &[]));
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].key, path.display().to_string());
    assert!(p[0].message.starts_with("line 3, column"), "{}", p[0].message);
}

#[test]
fn a_missing_default_file_says_how_to_create_it() {
    let p = problems(&opts(Path::new(DEFAULT_CONFIG_PATH), &[], &[]));
    assert_eq!(p.len(), 1);
    assert!(p[0].message.contains("config/mpsync.toml") && p[0].message.contains("-c"), "{p:?}");
    let p = problems(&opts(Path::new("/nonexistent/x.toml"), &[], &[]));
    assert_eq!(p[0].key, "/nonexistent/x.toml");
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/mpsync.toml")
}

#[test]
fn the_example_file_has_only_missing_secret_problems() {
    let p = problems(&opts(&example(), &[], &[]));
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].key, "mailprotector.api_key_file");
    assert!(p[0].message.contains("does not exist"), "{p:?}");
}

#[test]
fn the_example_file_shows_the_built_in_defaults() {
    let fx = Fixture::new();
    let key = fx.secret("k", "v");
    let env = [("MPSYNC_MAILPROTECTOR__API_KEY_FILE", key.to_str().unwrap())];
    let from_example = load(&opts(&example(), &env, &[])).unwrap();
    let from_defaults = load(&opts(&fx.config(""), &[], &[])).unwrap();
    let body = |c: &Config| {
        redacted_toml(c).lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>().join("\n")
    };
    assert_eq!(body(&from_example), body(&from_defaults));
}

#[test]
fn every_key_in_the_example_is_known_and_every_known_key_is_in_the_example() {
    let text = fs::read_to_string(example()).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap();
    let mut in_file = Vec::new();
    fn walk(t: &toml::Table, prefix: &str, out: &mut Vec<String>) {
        for (k, v) in t {
            let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
            match v {
                toml::Value::Table(t) => walk(t, &p, out),
                _ => out.push(p),
            }
        }
    }
    walk(&table, "", &mut in_file);
    let mut known = crate::config::de::known_keys::<crate::config::raw::RawConfig>();
    // Named counts are shown commented out in the example (there are none by default).
    assert!(text.contains("# [[mailprotector.counts]]"));
    known.retain(|k| k != "mailprotector.counts");
    // So are the per-service Gradient categories (built-in defaults apply).
    assert!(text.contains("# [gradient.services.CloudFilter]"));
    known.retain(|k| k != "gradient.services");
    // Autotask's base_url is discovered unless given, so the example leaves it commented.
    assert!(text.contains("# base_url = \"https://webservices5.autotask.net"));
    known.retain(|k| k != "billing.autotask.base_url");
    // Notification channels are shown commented out (there are none by default).
    assert!(text.contains("# [[notify]]"));
    known.retain(|k| k != "notify");
    // HaloPSA's scope is derived (reads, plus edit:invoices for a write-back) unless given.
    assert!(text.contains("# scope = \"read:customers"));
    known.retain(|k| k != "billing.halopsa.scope");
    in_file.sort();
    known.sort();
    assert_eq!(in_file, known);
}

#[test]
fn redacted_toml_is_valid_toml_without_secret_values() {
    let fx = Fixture::new();
    let path = fx.config(
        "[[mailprotector.counts]]\nname = \"Total\"\nany_of = [\"CloudFilter\", \"Bracket\"]\n",
    );
    let (cfg, prov) = load_with_provenance(&opts(&path, &[], &[])).unwrap();
    for text in [redacted_toml(&cfg), redacted_toml_annotated(&cfg, &prov)] {
        assert!(!text.contains("mp-secret-value"), "{text}");
        assert!(text.contains("api_key = \"<redacted>\""), "{text}");
        let parsed: toml::Table = toml::from_str(&text).expect("valid TOML");
        assert_eq!(parsed["mailprotector"]["counts"][0]["any_of"][1].as_str(), Some("Bracket"));
    }
    assert!(!format!("{cfg:?}").contains("mp-secret-value"));
}

#[test]
fn config_error_lists_problems_only_in_alternate_form() {
    let e = ConfigError {
        path: "/x.toml".into(),
        problems: vec![ConfigProblem { key: "daemon.listen".into(), message: "bad".into() }],
    };
    assert!(!e.to_string().contains("daemon.listen"));
    assert!(format!("{e:#}").contains("\n  - daemon.listen: bad"));
    assert_eq!(crate::exit::ExitStatus::exit(&e), crate::exit::Exit::Config);
}

#[test]
fn a_bad_value_from_the_environment_names_the_variable() {
    let fx = Fixture::new();
    let path = fx.config("");
    let p = problems(&opts(&path, &[("MPSYNC_MAILPROTECTOR__BURST", "lots")], &[]));
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].key, "mailprotector.burst");
    assert!(p[0].message.contains("\"lots\""), "{}", p[0].message);
    assert!(p[0].message.contains("MPSYNC_MAILPROTECTOR__BURST"), "{}", p[0].message);
}

#[test]
fn a_key_outside_any_section_is_pointed_to_its_section() {
    let fx = Fixture::new();
    let key = fx.secret("mp-key", "v");
    let path = fx.dir.path().join("c.toml");
    fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:1\"\n[mailprotector]\napi_key_file = \"{}\"\nreseller_id = 1\n",
            key.display()
        ),
    )
    .unwrap();
    let p = problems(&opts(&path, &[], &[]));
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].key, "listen");
    assert!(p[0].message.contains("put it under [daemon]"), "{}", p[0].message);
}

#[test]
fn an_env_variable_that_replaces_a_section_is_named() {
    let fx = Fixture::new();
    let path = fx.config("");
    let p = problems(&opts(&path, &[("MPSYNC_DAEMON", "x")], &[]));
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].key, "daemon");
    assert!(p[0].message.contains("MPSYNC_DAEMON") && p[0].message.contains("daemon.KEY"), "{p:?}");
}

#[test]
fn a_secret_pasted_into_a_file_key_is_not_echoed() {
    let fx = Fixture::new();
    let path = fx.config("");
    let env = [("MPSYNC_MAILPROTECTOR__API_KEY_FILE", "sk-pasted-secret-99")];
    let e = load(&opts(&path, &env, &[])).unwrap_err();
    assert_eq!(e.problems[0].key, "mailprotector.api_key_file");
    assert!(!format!("{e:#} {e:?}").contains("sk-pasted"), "{e:#}");
}

#[test]
fn named_counts_are_checked_entry_by_entry() {
    let fx = Fixture::new();
    let path = fx.config(
        "[[mailprotector.counts]]\nname = \"Total\"\nany_of = [\"CloudFilter\"]\ncolour = \"red\"\n\
         [[mailprotector.counts]]\nname = \"Total\"\nany_of = []\n",
    );
    let p = problems(&opts(&path, &[], &[]));
    let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "mailprotector.counts[0].colour",
            "mailprotector.counts[1].any_of",
            "mailprotector.counts[1].name"
        ]
    );
    assert!(p[0].message.contains(&format!("set by {}", path.display())), "{}", p[0].message);
    assert!(p[2].message.contains("unique"), "{}", p[2].message);
}

#[test]
fn limits_are_bounded_so_the_limiter_can_be_built() {
    let fx = Fixture::new();
    let path = fx.config("max_in_flight = 100000\nrate_limit = 0.0000001\nburst = 0\n");
    let keys: Vec<String> = problems(&opts(&path, &[], &[])).into_iter().map(|p| p.key).collect();
    assert_eq!(
        keys,
        ["mailprotector.burst", "mailprotector.max_in_flight", "mailprotector.rate_limit"]
    );
}

#[test]
fn gradient_services_file_products_and_counts_under_the_configured_category() {
    let fx = Fixture::new();
    let path = fx.config(
        "[[mailprotector.counts]]\nname = \"Email Protection\"\nany_of = [\"CloudFilter\"]\n\
         [gradient.services.CloudFilter]\ncategory = \"security\"\nsubcategory = \"DNS filtering\"\n\
         [gradient.services.\"Email Protection\"]\ncategory = \"other\"\nsubcategory = \"other\"\n\
         description = \"Protected mailboxes\"\n",
    );
    let cfg = load(&opts(&path, &[], &[])).unwrap();
    let cf = &cfg.gradient.services["CloudFilter"];
    assert_eq!((cf.category.as_str(), cf.subcategory.as_str()), ("security", "DNS filtering"));
    assert_eq!(cf.description, None);
    let count = &cfg.gradient.services["Email Protection"];
    assert_eq!(count.description.as_deref(), Some("Protected mailboxes"));
    // `mpsync config` shows them, as TOML that loads back to the same services.
    let text = redacted_toml(&cfg);
    let back: toml::Table = toml::from_str(&text).expect("valid TOML");
    let shown = &back["gradient"]["services"];
    assert_eq!(shown["CloudFilter"]["subcategory"].as_str(), Some("DNS filtering"));
    assert_eq!(shown["Email Protection"]["description"].as_str(), Some("Protected mailboxes"));
}

#[test]
fn a_gradient_service_with_a_wrong_enum_or_product_case_names_the_key_and_the_fix() {
    let fx = Fixture::new();
    let path = fx.config(
        "[gradient.services.CloudFilter]\ncategory = \"Security\"\nsubcategory = \"emial security\"\n\
         [gradient.services.cloudmail]\ncategory = \"productivity\"\nsubcategory = \"hosted email\"\n\
         [gradient.services.SafeSend]\ncategory = \"security\"\n",
    );
    let p = problems(&opts(&path, &[], &[]));
    let find = |key: &str| {
        p.iter()
            .find(|x| x.key == key)
            .unwrap_or_else(|| panic!("no problem for {key}: {p:?}"))
            .message
            .clone()
    };
    assert!(find("gradient.services.CloudFilter.category").contains("did you mean \"security\""));
    assert!(
        find("gradient.services.CloudFilter.subcategory")
            .contains("did you mean \"email security\"")
    );
    assert!(find("gradient.services.cloudmail").contains("[gradient.services.CloudMail]"));
    assert!(find("gradient.services.SafeSend.subcategory").starts_with("required"));
    assert_eq!(p.len(), 4, "{p:?}");
}

#[test]
fn count_user_types_takes_names_or_ids_and_refuses_the_rest() {
    let fx = Fixture::new();
    let cfg = load(&opts(&fx.config(""), &[], &[])).unwrap();
    assert_eq!(cfg.mailprotector.count_user_types.ids(), vec![1], "User only by default");

    let path = fx.config("count_user_types = [\"user\", \"Mailing List\", 11, \"7\"]\n");
    let cfg = load(&opts(&path, &[], &[])).unwrap();
    assert_eq!(cfg.mailprotector.count_user_types.ids(), vec![1, 3, 7, 11]);
    let shown = redacted_toml(&cfg);
    assert!(
        shown.contains(
            "count_user_types = [\"user\", \"mailing_list\", \"7\", \"unlicensed_user\"]"
        ),
        "{shown}"
    );

    for (value, says) in [
        ("[\"users\"]", "\"users\" is not a Mailprotector user type"),
        ("[]", "is empty; list at least one user type"),
        ("\"user\"", "expected a list of user types"),
    ] {
        let path = fx.config(&format!("count_user_types = {value}\n"));
        let p = problems(&opts(&path, &[], &[]));
        assert_eq!(p.len(), 1, "{value}: {p:?}");
        assert_eq!(p[0].key, "mailprotector.count_user_types");
        assert!(p[0].message.contains(says), "{value}: {}", p[0].message);
    }
}

/// Each `key = value` line of TOML `text` as `table.key` (a secret's `*_file` key as the
/// key `mpsync config` shows it under), in order.
fn keys_in(text: &str) -> Vec<String> {
    let mut table = String::new();
    let mut keys = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        if let Some(header) = line.strip_prefix('[') {
            table = header.trim_matches(['[', ']']).to_string();
        } else if let Some((key, _)) = line.split_once(" = ") {
            let secret =
                key.strip_suffix("_file").filter(|k| k.ends_with("_key") || k.ends_with("_token"));
            keys.push(format!("{table}.{}", secret.unwrap_or(key)));
        }
    }
    keys
}

#[test]
fn config_shows_the_keys_in_the_order_of_the_example_file() {
    let fx = Fixture::new();
    let key = fx.secret("k", "v");
    let env = [("MPSYNC_MAILPROTECTOR__API_KEY_FILE", key.to_str().unwrap())];
    let shown = keys_in(&redacted_toml(&load(&opts(&example(), &env, &[])).unwrap()));
    assert!(shown.len() > 30 && shown.contains(&"mailprotector.api_key".to_string()), "{shown:?}");
    let example = keys_in(&fs::read_to_string(example()).unwrap());
    let in_example: Vec<String> = example.into_iter().filter(|k| shown.contains(k)).collect();
    assert_eq!(shown, in_example);
}

#[test]
fn a_multi_line_value_is_noted_after_it_ends_and_the_output_loads_back() {
    let fx = Fixture::new();
    let path = fx.config(
        "[gradient.services.CloudFilter]\ncategory = \"security\"\nsubcategory = \"email security\"\n\
         description = \"\"\"\nfirst line\nsecond \"line\"\"\"\"\n",
    );
    let (cfg, prov) = load_with_provenance(&opts(&path, &[], &[])).unwrap();
    let text = redacted_toml_annotated(&cfg, &prov);
    assert!(text.contains("second \"line\"\"\"\"  # from the file\n"), "{text}");
    let back: toml::Table = toml::from_str(&text).expect("valid TOML");
    let description = back["gradient"]["services"]["CloudFilter"]["description"].as_str();
    assert_eq!(description, Some("first line\nsecond \"line\""));
}

#[test]
fn an_entry_of_counts_that_is_not_a_table_is_named_and_the_others_are_still_checked() {
    let fx = Fixture::new();
    let path = fx.config("counts = [1, { name = \"Total\", any_of = [] }]\n");
    let p = problems(&opts(&path, &[], &[]));
    let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "mailprotector.counts[0]",
            "mailprotector.counts[0].any_of",
            "mailprotector.counts[0].name",
            "mailprotector.counts[1].any_of"
        ]
    );
    assert!(p[0].message.starts_with("expected a table [mailprotector.counts[0]]"), "{p:?}");
}

#[test]
fn a_key_outside_any_section_lists_its_sections_in_schema_order() {
    let fx = Fixture::new();
    let key = fx.secret("mp-key", "v");
    let path = fx.dir.path().join("c.toml");
    let text = format!(
        "rate_limit = 2.0\n[gradient]\nenabled = false\n[mailprotector]\napi_key_file = \"{}\"\n\
         reseller_id = 1\n",
        key.display()
    );
    fs::write(&path, text).unwrap();
    let p = problems(&opts(&path, &[], &[]));
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].message
            .ends_with("put it under [mailprotector] or [billing.connectwise] or [billing.autotask] or [billing.halopsa] or [gradient]"),
        "{}",
        p[0].message
    );
}

#[test]
fn max_changes_per_apply_defaults_to_25_and_is_bounded_from_file_and_environment() {
    let fx = Fixture::new();
    let cfg = load(&opts(&fx.config(""), &[], &[])).unwrap();
    assert_eq!(cfg.write_back.max_changes_per_apply, 25);
    let path = fx.config("[write_back]\nmax_changes_per_apply = 3\n");
    let from_file = load(&opts(&path, &[], &[])).unwrap();
    assert_eq!(from_file.write_back.max_changes_per_apply, 3);
    // `mpsync config` shows it in its section.
    let shown = redacted_toml(&from_file);
    assert!(shown.contains("\n[write_back]\nmax_changes_per_apply = 3\n"), "{shown}");
    let env = [("MPSYNC_WRITE_BACK__MAX_CHANGES_PER_APPLY", "7")];
    assert_eq!(load(&opts(&path, &env, &[])).unwrap().write_back.max_changes_per_apply, 7);
    for (bad, why) in [("0", "is not a whole number ≥ 1"), ("10001", "10001 is too many")] {
        let path = fx.config(&format!("[write_back]\nmax_changes_per_apply = {bad}\n"));
        let p = problems(&opts(&path, &[], &[]));
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].key, "write_back.max_changes_per_apply");
        assert!(p[0].message.contains(why), "{p:?}");
    }
    let path = fx.config("[write_back]\nmax_changes = 3\n");
    let p = problems(&opts(&path, &[], &[]));
    assert!(p[0].message.contains("max_changes_per_apply"), "the near miss is suggested: {p:?}");
}

#[test]
fn halopsa_settings_derive_the_auth_url_token_url_and_scopes() {
    let fx = Fixture::new();
    let secret = fx.secret("halo", "halo-client-secret\n");
    let text = |extra: &str| {
        format!(
            "[billing]\nsource = \"halopsa\"\n[billing.halopsa]\nbase_url = \
             \"https://acme.halopsa.com\"\nclient_id = \"app-1\"\nclient_secret_file = \"{}\"\n{extra}",
            secret.display()
        )
    };
    let cfg = load(&opts(&fx.config(&text("tenant = \"acme\"\n")), &[], &[])).unwrap();
    let BillingSource::Halopsa(h) = &cfg.billing.source else { panic!("{:?}", cfg.billing) };
    assert_eq!(h.auth_url.as_str(), "https://acme.halopsa.com/auth");
    assert_eq!(h.token_url().as_str(), "https://acme.halopsa.com/auth/token?tenant=acme");
    assert_eq!(h.api_url().as_str(), "https://acme.halopsa.com/api");
    assert_eq!(h.client_secret.expose(), "halo-client-secret");
    assert_eq!(h.scope_for(false), "read:customers read:contracts read:items read:invoices");
    assert_eq!(
        h.scope_for(true),
        "read:customers read:contracts read:items read:invoices edit:invoices"
    );
    // The default budget: burst + 300 s × rate stays under 300 requests per 5 minutes.
    assert!(f64::from(h.limits.burst) + 300.0 * h.limits.rate_limit <= 300.0, "{:?}", h.limits);
    let shown = crate::config::redacted_toml(&cfg);
    assert!(
        shown.contains("[billing.halopsa]") && !shown.contains("halo-client-secret"),
        "{shown}"
    );

    let given = "auth_url = \"https://login.example/auth/\"\nscope = \"  all   \"\n";
    let cfg = load(&opts(&fx.config(&text(given)), &[], &[])).unwrap();
    let BillingSource::Halopsa(h) = &cfg.billing.source else { panic!() };
    assert_eq!(h.token_url().as_str(), "https://login.example/auth/token", "no tenant on premises");
    assert_eq!((h.scope_for(false), h.scope_for(true)), ("all".into(), "all".into()));
}

#[test]
fn bad_halopsa_values_and_unknown_keys_name_their_key() {
    let fx = Fixture::new();
    let secret = fx.secret("halo", "halo-client-secret\n");
    let text = format!(
        "[billing]\nsource = \"halopsa\"\n[billing.halopsa]\nbase_url = \"ftp://acme\"\n\
         client_id = \"app-1\"\nclient_secret_file = \"{}\"\nscope = \"read:items, edit\"\n\
         tenent = \"acme\"\nrate_limit = 0\n",
        secret.display()
    );
    let p = problems(&opts(&fx.config(&text), &[], &[]));
    let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "billing.halopsa.base_url",
            "billing.halopsa.rate_limit",
            "billing.halopsa.scope",
            "billing.halopsa.tenent"
        ],
        "{p:?}"
    );
    assert!(p[0].message.contains("https://"), "{p:?}");
    assert!(p[2].message.contains("\"read:items,\" is not a scope name"), "{p:?}");
    assert!(p[3].message.contains("tenant"), "a near miss is suggested: {p:?}");
}
