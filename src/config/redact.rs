//! The effective config written back as TOML, in the layout of config/mpsync.toml, with
//! secrets shown as `<redacted>` and (optionally) each key's origin as a trailing comment.

use std::path::Path;
use std::time::Duration;

use super::fields::format_duration;
use super::raw::Provenance;
use super::*;

/// Writes TOML lines, annotating each with where its value came from.
struct Out<'p> {
    text: String,
    prov: Option<&'p Provenance>,
}

impl Out<'_> {
    fn table(&mut self, header: &str) {
        self.text.push_str(&format!("\n{header}\n"));
    }

    fn line(&mut self, key: &str, value: toml::Value, comment: Option<String>) {
        self.text.push_str(&format!("{key} = {value}"));
        if let Some(c) = comment {
            self.text.push_str(&format!("  # {c}"));
        }
        self.text.push('\n');
    }

    fn kv(&mut self, section: &str, key: &str, value: impl Into<toml::Value>) {
        let origin = self.prov.map(|p| p.origin(&format!("{section}.{key}")).to_string());
        self.line(key, value.into(), origin);
    }

    fn dur(&mut self, section: &str, key: &str, d: Duration) {
        self.kv(section, key, format_duration(d));
    }

    fn path(&mut self, section: &str, key: &str, p: &Path) {
        self.kv(section, key, p.display().to_string());
    }

    fn secret(&mut self, key: &str, s: &Secret) {
        let comment = self.prov.map(|_| format!("read from {}", s.origin()));
        self.line(key, "<redacted>".into(), comment);
    }

    fn limits(&mut self, section: &str, l: &UpstreamLimits) {
        self.kv(section, "rate_limit", l.rate_limit);
        self.kv(section, "burst", i64::from(l.burst));
        self.kv(section, "max_in_flight", l.max_in_flight as i64);
        self.dur(section, "timeout", l.timeout);
        self.dur(section, "connect_timeout", l.connect_timeout);
    }
}

/// Renders `cfg`; with `prov`, every line carries a `# origin` comment.
pub(crate) fn render(cfg: &Config, prov: Option<&Provenance>) -> String {
    let mut o = Out { text: String::new(), prov };
    o.text.push_str("# mpsync effective configuration; secrets are shown as <redacted>.\n");
    if let Some(p) = &cfg.source_path {
        o.text.push_str(&format!(
            "# Layers: built-in defaults < {} < MPSYNC_* environment < command-line flags.\n",
            p.display()
        ));
    }

    let d = &cfg.daemon;
    o.table("[daemon]");
    o.kv("daemon", "listen", d.listen.to_string());
    o.kv("daemon", "allow_remote", d.allow_remote);
    let hosts: Vec<toml::Value> = d.allowed_hosts.iter().map(|h| h.as_str().into()).collect();
    o.kv("daemon", "allowed_hosts", hosts);
    if let Some(token) = &d.access_token {
        o.secret("access_token", token);
    }
    o.path("daemon", "state_dir", &d.state_dir);
    o.kv("daemon", "log", d.log.clone());
    o.kv(
        "daemon",
        "log_format",
        match d.log_format {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        },
    );
    o.dur("daemon", "shutdown_grace", d.shutdown_grace);

    o.table("[store]");
    o.dur("store", "snapshot_retention", cfg.store.snapshot_retention);
    o.dur("store", "history_retention", cfg.store.history_retention);

    let m = &cfg.mailprotector;
    o.table("[mailprotector]");
    o.kv("mailprotector", "base_url", m.base_url.to_string());
    o.secret("api_key", &m.api_key);
    o.kv("mailprotector", "reseller_id", m.reseller_id as i64);
    o.kv("mailprotector", "schedule", m.schedule.as_str());
    o.limits("mailprotector", &m.limits);
    o.dur("mailprotector", "services_refresh", m.services_refresh);
    o.kv("mailprotector", "count_each_product", m.count_each_product);
    let types: Vec<toml::Value> =
        m.count_user_types.config_names().into_iter().map(toml::Value::from).collect();
    o.kv("mailprotector", "count_user_types", types);
    let counts_origin = prov.map(|p| p.origin("mailprotector.counts").to_string());
    for c in &m.counts {
        o.table("[[mailprotector.counts]]");
        o.line("name", c.name.clone().into(), counts_origin.clone());
        let any_of: Vec<toml::Value> = c.any_of.iter().map(|p| p.clone().into()).collect();
        o.line("any_of", any_of.into(), None);
    }

    let b = &cfg.billing;
    o.table("[billing]");
    let source = match &b.source {
        BillingSource::None => "none",
        BillingSource::Connectwise(_) => "connectwise",
        BillingSource::Csv(_) => "csv",
    };
    o.kv("billing", "source", source);
    o.kv("billing", "schedule", b.schedule.as_str());
    match &b.source {
        BillingSource::None => {}
        BillingSource::Connectwise(cw) => {
            let s = "billing.connectwise";
            o.table("[billing.connectwise]");
            o.kv(s, "base_url", cw.base_url.to_string());
            o.kv(s, "company_id", cw.company_id.clone());
            o.secret("public_key", &cw.public_key);
            o.secret("private_key", &cw.private_key);
            o.kv(s, "client_id", cw.client_id.clone());
            o.limits(s, &cw.limits);
        }
        BillingSource::Csv(csv) => {
            o.table("[billing.csv]");
            o.path("billing.csv", "path", &csv.path);
        }
    }

    let g = &cfg.gradient;
    o.table("[gradient]");
    o.kv("gradient", "enabled", g.enabled);
    o.kv("gradient", "base_url", g.base_url.to_string());
    if let Some(k) = &g.vendor_key {
        o.secret("vendor_key", k);
    }
    if let Some(k) = &g.partner_key {
        o.secret("partner_key", k);
    }
    o.kv("gradient", "schedule", g.schedule.as_str());
    o.kv("gradient", "dry_run", g.dry_run);
    o.limits("gradient", &g.limits);
    for (name, svc) in &g.services {
        let bare = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let key = if bare { name.clone() } else { toml::Value::from(name.as_str()).to_string() };
        let s = format!("gradient.services.{key}");
        o.table(&format!("[{s}]"));
        o.kv(&s, "category", svc.category.clone());
        o.kv(&s, "subcategory", svc.subcategory.clone());
        if let Some(d) = &svc.description {
            o.kv(&s, "description", d.clone());
        }
    }

    let r = &cfg.reconcile;
    o.table("[reconcile]");
    o.path("reconcile", "mapping_file", &r.mapping_file);
    o.dur("reconcile", "max_age", r.max_age);
    o.kv("reconcile", "debounce_runs", i64::from(r.debounce_runs));
    o.text
}
