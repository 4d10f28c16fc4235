//! The simulated Synthesize data and rules, free of HTTP: the integration status machine
//! (§7.2, §11 #6/#10; Gradient turns `pending` into `active` itself on the first accepted
//! count, §5.2), the partner's accounts (§11 #1/#2/#12), unit counts accepted only for mapped
//! pairs (§11 #5/#7) and the mapping seeded from the dataset (§11 #18). The vendor profile and
//! catalogue are in `vendor.rs`, the PSA clients in `clients.rs`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

pub use super::categories::{CATEGORIES, SUBCATEGORIES};

/// The five integration status values (§6.1), lower case.
pub const STATUSES: [&str; 5] = ["active", "inactive", "pending", "disabled", "error"];

/// A refusal: HTTP status and the `message` of the `{statusCode, message}` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// HTTP status.
    pub status: u16,
    /// The message.
    pub message: String,
}

impl Refusal {
    /// A refusal with `status` and `message`.
    pub(crate) fn new(status: u16, message: impl Into<String>) -> Refusal {
        Refusal { status, message: message.into() }
    }
}

/// The message of every duplicate-id or duplicate-name 409 (§11 #2, #3).
pub const DUPLICATE: &str = "A resource with this Id already exists.";

/// One vendor service ("sku").
#[derive(Debug, Clone, PartialEq)]
pub struct SimSku {
    /// 24-hex id.
    pub id: String,
    /// Name (unique, case-sensitive).
    pub name: String,
    /// Description.
    pub description: String,
    /// Category.
    pub category: String,
    /// Subcategory.
    pub subcategory: String,
    /// Support article URL, when set.
    pub support_article: Option<String>,
    /// Support contact e-mail, when set.
    pub support_contact: Option<String>,
    /// Mapped to a PSA product (by the MSP, or the seeded auto-map).
    pub mapped: bool,
}

/// One vendor account of the partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimAccount {
    /// The vendor's own id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// The PSA company it is mapped to, if any.
    pub psa_company: Option<String>,
}

/// One row of the reconciliation view (§8.6): a mapped pair and the vendor units received.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ViewRow {
    /// The vendor account id.
    pub account_id: String,
    /// The PSA company the account is mapped to.
    pub psa_company: String,
    /// The service name.
    pub service: String,
    /// The last count received.
    pub vendor_units: f64,
}

/// Everything the simulated Synthesize holds for one vendor and one partner.
#[derive(Debug, Clone)]
pub struct GradientState {
    pub(crate) vendor_key: String,
    pub(crate) partner_key: String,
    pub(crate) partner_revoked: bool,
    pub(crate) status: String,
    pub(crate) last_synced_at: String,
    pub(crate) skus: Vec<SimSku>,
    pub(crate) accounts: BTreeMap<String, SimAccount>,
    /// (account id, service id) → the last count.
    pub(crate) counts: BTreeMap<(String, String), f64>,
    pub(crate) psa_companies: BTreeSet<String>,
    pub(crate) psa_products: BTreeSet<String>,
    pub(crate) profile: VendorProfile,
    next_id: u64,
    pub(crate) seed: u64,
}

/// The vendor's editable profile (`UpdateVendorRequest`, §5.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorProfile {
    /// Vendor name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Support page URL.
    pub vendor_support_page_url: Option<String>,
    /// Integration portal URL.
    pub integration_portal_url: Option<String>,
}

impl Default for VendorProfile {
    fn default() -> VendorProfile {
        VendorProfile {
            name: "Mailprotector".into(),
            description: "Email security (simulated)".into(),
            vendor_support_page_url: None,
            integration_portal_url: None,
        }
    }
}

/// Products mapped in the seeded PSA (all canonical names but SecureStore and
/// ContinuityBundle, so a push always shows some unmapped services).
pub const SEEDED_PRODUCTS: [&str; 6] =
    ["CloudFilter", "SafeSend", "Bracket", "XtraMail", "CloudMail", "BracketBundle"];

impl GradientState {
    /// A fresh integration (`inactive`, no accounts, no skus) whose PSA knows `companies`.
    pub fn new(seed: u64, companies: impl IntoIterator<Item = String>) -> GradientState {
        GradientState {
            vendor_key: format!("gv-{:016x}", seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x6772),
            partner_key: format!("gp-{:016x}", seed.wrapping_mul(0xc2b2_ae3d_27d4_eb4f) ^ 0x7061),
            partner_revoked: false,
            status: "inactive".into(),
            last_synced_at: "1900-01-01T00:00:00.000Z".into(),
            skus: Vec::new(),
            accounts: BTreeMap::new(),
            counts: BTreeMap::new(),
            psa_companies: companies.into_iter().collect(),
            psa_products: SEEDED_PRODUCTS.iter().map(|s| (*s).to_owned()).collect(),
            profile: VendorProfile::default(),
            next_id: 1,
            seed,
        }
    }

    /// The token a client must send: base64(vendor ":" partner).
    pub fn token(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.vendor_key, self.partner_key))
    }

    /// Whether `sent` (the `GRADIENT-TOKEN` value) is valid now.
    pub fn accepts(&self, sent: &str) -> bool {
        !self.partner_revoked && sent.trim() == self.token()
    }

    pub(crate) fn new_id(&mut self) -> String {
        let id = format!("{:08x}{:016x}", self.seed as u32, self.next_id);
        self.next_id += 1;
        id
    }

    /// `GET /organization` body (`IntegrationData`).
    pub fn integration(&self) -> Value {
        json!({
            "organizationId": "5f0c0ffee0c0ffee0c0ffee0",
            "name": "Simulated MSP",
            "vendorId": "5f0c0ffee0c0ffee0c0ffee1",
            "vendorName": "Mailprotector",
            "integrationId": "5f0c0ffee0c0ffee0c0ffee2",
            "status": self.status,
            "lastSyncedAt": self.last_synced_at,
        })
    }

    /// Whether counts are taken in the current status (§11 #6). Read case-insensitively, as
    /// a Gradient that spells its statuses otherwise would still mean the same state.
    fn takes_counts(&self) -> bool {
        let s = self.status.to_ascii_lowercase();
        s == "active" || s == "pending"
    }

    /// `PATCH /organization/status/{status}` (§11 #10).
    pub fn set_status(&mut self, status: &str) -> Result<Value, Refusal> {
        if !STATUSES.contains(&status) {
            return Err(Refusal::new(
                400,
                format!("status must be one of the following values: {}", STATUSES.join(", ")),
            ));
        }
        self.status = status.to_owned();
        Ok(json!({"status": 200, "data": self.integration(),
                  "message": "Success - Updated integration status"}))
    }

    fn account_json(a: &SimAccount) -> Value {
        json!({"id": a.id, "name": a.name, "description": a.description,
               "isMapped": a.psa_company.is_some()})
    }

    /// `GET /organization/accounts` with the §11 #15 filters.
    pub fn list_accounts(&self, ids: &[String], return_unmapped: bool) -> Value {
        let rows = self
            .accounts
            .values()
            .filter(|a| ids.is_empty() || ids.contains(&a.id))
            .filter(|a| return_unmapped || a.psa_company.is_some())
            .map(Self::account_json);
        Value::Array(rows.collect())
    }

    /// `POST /organization/accounts` (§11 #1/#2): all or nothing.
    pub fn create_accounts(&mut self, body: &Value) -> Result<Value, Refusal> {
        let Value::Array(items) = body else {
            return Err(Refusal::new(400, "body must be an array of accounts"));
        };
        let mut new = Vec::with_capacity(items.len());
        let mut seen = BTreeSet::new();
        for item in items {
            let id = item.get("id").and_then(Value::as_str).filter(|s| !s.is_empty());
            let id = id.ok_or_else(|| Refusal::new(400, "id must be a string"))?;
            let name = item.get("name").and_then(Value::as_str);
            let name = name.ok_or_else(|| Refusal::new(400, "name must be a string"))?;
            let description = match item.get("description") {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(_) => return Err(Refusal::new(400, "description must be a string")),
            };
            if self.accounts.contains_key(id) || !seen.insert(id.to_owned()) {
                return Err(Refusal::new(409, DUPLICATE));
            }
            new.push(SimAccount {
                id: id.to_owned(),
                name: name.to_owned(),
                description,
                // The initial-configuration auto-map: exact, character-for-character names.
                psa_company: self.psa_companies.get(name).cloned(),
            });
        }
        let out = new
            .iter()
            .map(|a| json!({"id": a.id, "name": a.name, "description": a.description}))
            .collect();
        for a in new {
            self.accounts.insert(a.id.clone(), a);
        }
        Ok(Value::Array(out))
    }

    /// `PATCH /organization/accounts/{id}` (§5.11, §11 #12): rename keeps the mapping.
    pub fn update_account(&mut self, id: &str, body: &Value) -> Result<Value, Refusal> {
        let Value::Object(m) = body else {
            return Err(Refusal::new(400, "body must be an account object"));
        };
        if !self.accounts.contains_key(id) {
            return Err(Refusal::new(404, format!("No account found with id: {id}")));
        }
        let field = |k: &str| match m.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(Refusal::new(400, format!("{k} must be a string"))),
        };
        let (new_id, name, description) = (field("id")?, field("name")?, field("description")?);
        if let Some(n) = new_id.as_deref().filter(|n| *n != id)
            && self.accounts.contains_key(n)
        {
            return Err(Refusal::new(409, DUPLICATE));
        }
        let mut acc = self.accounts.remove(id).unwrap_or_else(|| unreachable!("checked above"));
        if let Some(n) = name {
            acc.name = n;
        }
        if let Some(d) = description {
            acc.description = d;
        }
        if let Some(n) = new_id.filter(|n| n != id) {
            let moved: Vec<_> =
                self.counts.keys().filter(|(a, _)| a == id).cloned().collect::<Vec<_>>();
            for key in moved {
                if let Some(v) = self.counts.remove(&key) {
                    self.counts.insert((n.clone(), key.1), v);
                }
            }
            acc.id = n;
        }
        let out = json!({"id": acc.id, "name": acc.name, "description": acc.description});
        self.accounts.insert(acc.id.clone(), acc);
        Ok(out)
    }

    /// `POST /service/{serviceId}/count` (§5.12, §11 #5/#6/#7). With `refuse_zero` (the
    /// `refuse_zero_counts` variant) a count of 0 is refused with 400, as a Gradient that
    /// does not take zeros would (§5.2: undocumented either way). The first accepted count
    /// turns a `pending` integration `active` (§5.2, Revised 2026-12).
    pub fn set_count(
        &mut self,
        service_id: &str,
        body: &Value,
        now: &str,
        refuse_zero: bool,
    ) -> Result<Value, Refusal> {
        if service_id.len() != 24 || !service_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Refusal::new(400, "You have provided an invalid Id type"));
        }
        let Value::Object(m) = body else {
            return Err(Refusal::new(400, "unitCount must be a number"));
        };
        let account = match (m.get("accountId"), m.get("clientOId")) {
            (Some(Value::String(a)), _) if !a.is_empty() => a.clone(),
            (None | Some(Value::Null), Some(Value::String(_))) => {
                return Err(Refusal::new(404, "No account map found with id: (clientOId)"));
            }
            _ => return Err(Refusal::new(400, "accountId must be a string")),
        };
        let units = match m.get("unitCount") {
            Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
            _ => return Err(Refusal::new(400, "unitCount must be a number")),
        };
        if !units.is_finite() {
            return Err(Refusal::new(400, "unitCount must be a number"));
        }
        if units < 0.0 {
            return Err(Refusal::new(400, "unitCount must not be less than 0"));
        }
        if refuse_zero && units == 0.0 {
            return Err(Refusal::new(400, "unitCount must be greater than 0"));
        }
        if !self.takes_counts() {
            return Err(Refusal::new(403, "Integration is not active"));
        }
        if self.accounts.get(&account).is_none_or(|a| a.psa_company.is_none()) {
            return Err(Refusal::new(404, format!("No account map found with id: {account}")));
        }
        if !self.skus.iter().any(|s| s.id == service_id && s.mapped) {
            return Err(Refusal::new(404, format!("No service map found with id: {service_id}")));
        }
        self.counts.insert((account, service_id.to_owned()), units);
        self.last_synced_at = now.to_owned();
        if self.status.eq_ignore_ascii_case("pending") {
            self.status = "active".into();
        }
        Ok(json!({"status": 201, "message": "Success - Created service unit count"}))
    }

    /// The partner disconnects and reconnects: every account (and its counts) is deleted and
    /// the new integration starts `inactive`. The vendor catalogue stays.
    pub fn disconnect_reconnect(&mut self) {
        self.accounts.clear();
        self.counts.clear();
        self.status = "inactive".into();
    }

    /// The reconciliation view (§8.6): per mapped (account, service) the vendor units held.
    pub fn view(&self) -> Vec<ViewRow> {
        let names: BTreeMap<&str, &SimSku> = self.skus.iter().map(|s| (s.id.as_str(), s)).collect();
        self.counts
            .iter()
            .filter_map(|((a, s), units)| {
                let acc = self.accounts.get(a)?;
                let sku = names.get(s.as_str()).filter(|k| k.mapped)?;
                Some(ViewRow {
                    account_id: a.clone(),
                    psa_company: acc.psa_company.clone()?,
                    service: sku.name.clone(),
                    vendor_units: *units,
                })
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
