//! `GET /organization/clients` (§5.8, §11 #14): the partner's PSA companies as Gradient lists
//! them to vendors — `{clients: [{id, name}], meta: {total, hasMore}}`, 100 per page, the next
//! page asked with `previousId` = the last id of the previous one, `search` filtering names
//! (case-insensitive substring). mpsync does not use it (the deprecated `clientOId` flow);
//! public clients call it, so the simulator answers it.

use serde_json::{Value, json};

use super::state::{GradientState, Refusal};
use super::vendor::check_object_id;

/// Clients per page (§11 #14).
pub const CLIENTS_PAGE: usize = 100;

impl GradientState {
    /// Every PSA client as (id, name), in id order. Ids are 24-hex, stable for a seed, and
    /// follow the names' order so pages read alphabetically.
    pub fn clients(&self) -> Vec<(String, String)> {
        self.psa_companies
            .iter()
            .enumerate()
            .map(|(i, name)| (format!("{:08x}c1{:014x}", self.seed as u32, i + 1), name.clone()))
            .collect()
    }

    /// One page of `GET /organization/clients`.
    pub fn list_clients(
        &self,
        search: Option<&str>,
        previous_id: Option<&str>,
    ) -> Result<Value, Refusal> {
        if let Some(prev) = previous_id {
            check_object_id(prev)?;
        }
        let needle = search.map(str::to_lowercase).filter(|s| !s.is_empty());
        let matching: Vec<(String, String)> = self
            .clients()
            .into_iter()
            .filter(|(_, name)| needle.as_ref().is_none_or(|n| name.to_lowercase().contains(n)))
            .collect();
        let total = matching.len();
        let rest: Vec<&(String, String)> =
            matching.iter().filter(|(id, _)| previous_id.is_none_or(|p| id.as_str() > p)).collect();
        let page: Vec<Value> = rest
            .iter()
            .take(CLIENTS_PAGE)
            .map(|(id, name)| json!({"id": id, "name": name}))
            .collect();
        let has_more = rest.len() > CLIENTS_PAGE;
        Ok(json!({"clients": page, "meta": {"total": total, "hasMore": has_more}}))
    }
}
