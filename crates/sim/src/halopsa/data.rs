//! The simulated HaloPSA data: clients, client contracts, recurring invoices with their
//! lines, items and posted invoices, as the API serves them (snake_case JSON objects, the
//! reference's §3.1 sample payloads), the API application it accepts, and the ground truth
//! (its generator is `generate.rs`).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;
use serde_json::{Value, json};

use crate::connectwise::{PRODUCTS, Planted};

/// The resources the simulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Resource {
    /// `/Client` (`clients`).
    Client,
    /// `/ClientContract` (`contracts`).
    ClientContract,
    /// `/RecurringInvoice` (`invoices`; lines inside each header).
    RecurringInvoice,
    /// `/Item` (`items`).
    Item,
    /// `/Invoice` (`invoices`): posted invoices.
    Invoice,
}

impl Resource {
    /// Every resource, in route order.
    pub const ALL: [Resource; 5] = [
        Resource::Client,
        Resource::ClientContract,
        Resource::RecurringInvoice,
        Resource::Item,
        Resource::Invoice,
    ];

    /// The route name (`/api/<name>`, matched case-insensitively).
    pub const fn name(self) -> &'static str {
        match self {
            Resource::Client => "Client",
            Resource::ClientContract => "ClientContract",
            Resource::RecurringInvoice => "RecurringInvoice",
            Resource::Item => "Item",
            Resource::Invoice => "Invoice",
        }
    }

    /// The list envelope's array key (F13).
    pub const fn key(self) -> &'static str {
        match self {
            Resource::Client => "clients",
            Resource::ClientContract => "contracts",
            Resource::RecurringInvoice | Resource::Invoice => "invoices",
            Resource::Item => "items",
        }
    }

    /// The scope noun: `read:<noun>` for GET, `edit:<noun>` for POST and DELETE (§3).
    pub const fn scope_noun(self) -> &'static str {
        match self {
            Resource::Client => "customers",
            Resource::ClientContract => "contracts",
            Resource::Item => "items",
            Resource::RecurringInvoice | Resource::Invoice => "invoices",
        }
    }

    /// The resource called `name`, ignoring case (F12).
    pub fn parse(name: &str) -> Option<Resource> {
        Resource::ALL.into_iter().find(|r| r.name().eq_ignore_ascii_case(name))
    }
}

/// The API application the simulator accepts.
#[derive(Clone, PartialEq, Eq)]
pub struct HaloCredentials {
    /// The tenant hosted instances name (`None`: an on-prem install, no tenant checked).
    pub tenant: Option<String>,
    /// The application's client id.
    pub client_id: String,
    /// The application's client secret.
    pub client_secret: String,
}

impl std::fmt::Debug for HaloCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HaloCredentials")
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

/// The tenant a simulator names unless told otherwise.
pub const DEFAULT_TENANT: &str = "mpsync-sim";

/// One Halo-specific object the generator planted, for tests and the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HaloPlant {
    /// What it is: `auto_calculated_line`, `inactive_line`, `disabled_invoice`,
    /// `out_of_date_invoice`, `future_line`, `ended_line`, `second_invoice_line`,
    /// `inactive_client`, `foreign_item_line`, `inactive_item`, `negative_invoice_id`.
    pub kind: &'static str,
    /// The client it belongs to (0 for an item).
    pub client_id: i64,
    /// The recurring invoice, when it is one or holds the line.
    pub invoice_id: Option<i64>,
    /// The line, when it is one.
    pub line_id: Option<i64>,
    /// The item billed (or the item itself).
    pub item_id: Option<i64>,
}

/// Everything the simulated HaloPSA serves, and the truth about it.
#[derive(Debug, Clone, PartialEq)]
pub struct HaloData {
    /// The seed it was generated from.
    pub seed: u64,
    /// The day the dates were laid out around.
    pub today: NaiveDate,
    /// Rows per resource, each by ascending id; recurring-invoice headers hold their `lines`.
    pub rows: BTreeMap<Resource, Vec<Value>>,
    /// The quantity Halo computes for each non-manual line (by line id): what
    /// `POST /RecurringInvoice/process` and [`HaloSim::tick`](super::HaloSim::tick) reset it to.
    pub computed: BTreeMap<i64, f64>,
    /// The API application it accepts.
    pub credentials: HaloCredentials,
    /// The mapping file (TOML): Halo client ids and item ids.
    pub mapping_toml: String,
    /// Every row the reconciliation must produce, with its status (account = client id,
    /// PSA product = item id).
    pub planted: Vec<Planted>,
    /// The Halo-specific objects planted.
    pub plants: Vec<HaloPlant>,
    /// The next line id to hand out.
    pub next_line: i64,
}

/// The Halo client id of a ConnectWise company id (company 250 is client 12).
pub fn client_id(cw: u64) -> i64 {
    cw as i64 - 238
}

/// The Halo item id of a ConnectWise product identifier (`MP-CF` is item 17).
pub fn item_id(psa: &str) -> Option<i64> {
    PRODUCTS.iter().position(|p| p.1 == psa).map(|i| 17 + i as i64)
}

/// Item ids as mapping text (the mapping names PSA products by string).
pub(super) const ITEM_IDS: [&str; 8] = ["17", "18", "19", "20", "21", "22", "23", "24"];

/// Items billed that are not Mailprotector products: (id, code, name, price, cost).
pub const FOREIGN_ITEMS: [(i64, &str, &str, f64, f64); 2] = [
    (40, "M365-BP", "Microsoft 365 Business Premium", 22.0, 18.0),
    (41, "MSP-USER", "Managed user", 30.0, 0.0),
];

/// The inactive item (`status` 1) nobody bills.
pub const INACTIVE_ITEM: i64 = 42;

/// A date as Halo writes it: no offset, tenant-local (§3 Formats).
pub fn halo_date(d: NaiveDate) -> String {
    format!("{}T00:00:00", d.format("%Y-%m-%d"))
}

/// Rounds money to cents (what Halo stores).
pub fn cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Sets each line's `net_amount` and the header's `total` (active lines only).
pub fn recompute(header: &mut Value) {
    let mut total = 0.0;
    if let Some(lines) = header.get_mut("lines").and_then(Value::as_array_mut) {
        for l in lines {
            let qty = l["qty_order"].as_f64().unwrap_or(0.0);
            let price = l["unit_price"].as_f64().unwrap_or(0.0);
            l["net_amount"] = json!(cents(qty * price));
            if l["isinactive"] != true {
                total += cents(qty * price);
            }
        }
    }
    header["total"] = json!(cents(total));
}

impl HaloData {
    /// The planted rows with one status.
    pub fn planted_with(&self, status: &str) -> Vec<&Planted> {
        self.planted.iter().filter(|p| p.expected_status == status).collect()
    }

    /// The Halo-specific plants of one kind.
    pub fn plants_of(&self, kind: &str) -> Vec<&HaloPlant> {
        self.plants.iter().filter(|p| p.kind == kind).collect()
    }

    /// One row of `r` by id.
    pub fn row(&self, r: Resource, id: i64) -> Option<&Value> {
        self.rows.get(&r)?.iter().find(|v| v["id"] == id)
    }

    /// One recurring invoice line by id, with its header's id.
    pub fn line(&self, id: i64) -> Option<(i64, &Value)> {
        self.rows.get(&Resource::RecurringInvoice)?.iter().find_map(|h| {
            let l = h["lines"].as_array()?.iter().find(|l| l["id"] == id)?;
            Some((h["id"].as_i64().unwrap_or(0), l))
        })
    }
}
