//! The simulated vendor object: its profile (`GET`/`PATCH /api/vendor-api`, §5.3/§5.4) and its
//! vendor-wide service catalogue (`POST /service`, `GET`/`PATCH /service/{id}`, §5.5–§5.7,
//! §11 #3/#4/#13), validated as Gradient validates `CreateServiceRequest` (exact enum values).

use serde_json::{Map, Value, json};

use super::categories::{CATEGORIES, SUBCATEGORIES};
use super::state::{DUPLICATE, GradientState, Refusal, SimSku};

/// A field of a JSON object that must be a string when present (`null` = absent).
fn text(m: &Map<String, Value>, key: &str) -> Result<Option<String>, Refusal> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Refusal::new(400, format!("{key} must be a string"))),
    }
}

fn enum_value(
    value: Option<String>,
    allowed: &[&str],
    key: &str,
) -> Result<Option<String>, Refusal> {
    match value {
        Some(v) if !allowed.contains(&v.as_str()) => {
            Err(Refusal::new(400, format!("{key} must be one of the following values")))
        }
        other => Ok(other),
    }
}

/// Ids Gradient generates are 24-hex ObjectIds; anything else is refused before the lookup.
pub(crate) fn check_object_id(id: &str) -> Result<(), Refusal> {
    if id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(Refusal::new(400, "You have provided an invalid Id type"))
    }
}

impl GradientState {
    pub(crate) fn sku_json(s: &SimSku) -> Value {
        let mut v = json!({"_id": s.id, "id": s.id, "name": s.name, "description": s.description,
               "category": s.category, "subcategory": s.subcategory});
        if let Some(a) = &s.support_article {
            v["supportArticle"] = json!(a);
        }
        if let Some(c) = &s.support_contact {
            v["supportContact"] = json!(c);
        }
        v
    }

    /// `VendorData` with the current profile and skus.
    pub fn vendor(&self) -> Value {
        let p = &self.profile;
        let mut v = json!({
            "_id": "5f0c0ffee0c0ffee0c0ffee1", "id": "5f0c0ffee0c0ffee0c0ffee1",
            "name": p.name, "description": p.description,
            "integrationType": "custom", "isDistributor": false,
            "externalIntegrationStatus": "notIntegrated",
            "mappingResponsibilities": ["accounts", "services"],
            "modules": [{"variation": "billing"}],
            "skus": self.skus.iter().map(Self::sku_json).collect::<Vec<_>>(),
            "createdAt": "2024-01-01T00:00:00.000Z", "updatedAt": "2024-01-01T00:00:00.000Z",
        });
        if let Some(u) = &p.vendor_support_page_url {
            v["vendorSupportPageUrl"] = json!(u);
        }
        if let Some(u) = &p.integration_portal_url {
            v["integrationPortalUrl"] = json!(u);
        }
        v
    }

    /// `PATCH /api/vendor-api` (§5.4): at least one of `name`, `description`,
    /// `vendorSupportPageUrl`, `integrationPortalUrl`; answers the updated `VendorData`.
    pub fn update_vendor(&mut self, body: &Value) -> Result<Value, Refusal> {
        let Value::Object(m) = body else {
            return Err(Refusal::new(400, "body must be a vendor object"));
        };
        let name = text(m, "name")?;
        let description = text(m, "description")?;
        let support = text(m, "vendorSupportPageUrl")?;
        let portal = text(m, "integrationPortalUrl")?;
        if name.is_none() && description.is_none() && support.is_none() && portal.is_none() {
            return Err(Refusal::new(400, "Must provide at least one property value"));
        }
        if name.as_deref() == Some("") {
            return Err(Refusal::new(400, "name should not be empty"));
        }
        let p = &mut self.profile;
        p.name = name.unwrap_or_else(|| p.name.clone());
        p.description = description.unwrap_or_else(|| p.description.clone());
        p.vendor_support_page_url = support.or_else(|| p.vendor_support_page_url.clone());
        p.integration_portal_url = portal.or_else(|| p.integration_portal_url.clone());
        Ok(self.vendor())
    }

    /// `GET /service/{id}` data.
    pub fn sku(&self, id: &str) -> Result<Value, Refusal> {
        check_object_id(id)?;
        let found = self.skus.iter().find(|s| s.id == id).map(Self::sku_json);
        found.ok_or_else(|| Refusal::new(404, format!("No service found with id: {id}")))
    }

    /// `POST /service` (§5.5, §11 #3/#4): validates and creates one sku.
    pub fn create_service(&mut self, body: &Value) -> Result<Value, Refusal> {
        let Value::Object(m) = body else {
            return Err(Refusal::new(400, "body must be a service object"));
        };
        let name = text(m, "name")?.filter(|n| !n.is_empty());
        let name = name.ok_or_else(|| Refusal::new(400, "name must be a string"))?;
        let description = text(m, "description")?
            .ok_or_else(|| Refusal::new(400, "description must be a string"))?;
        let category = enum_value(text(m, "category")?, &CATEGORIES, "category")?
            .ok_or_else(|| Refusal::new(400, "category must be one of the following values"))?;
        let subcategory = enum_value(text(m, "subcategory")?, &SUBCATEGORIES, "subcategory")?
            .ok_or_else(|| Refusal::new(400, "subcategory must be one of the following values"))?;
        let (support_article, support_contact) =
            (text(m, "supportArticle")?, text(m, "supportContact")?);
        if self.skus.iter().any(|s| s.name == name) {
            return Err(Refusal::new(409, DUPLICATE));
        }
        let mapped = self.psa_products.contains(&name);
        let id = self.new_id();
        self.skus.push(SimSku {
            id,
            name,
            description,
            category,
            subcategory,
            support_article,
            support_contact,
            mapped,
        });
        Ok(self.vendor())
    }

    /// `PATCH /service/{id}` (§5.7, §11 #13): any `CreateServiceRequest` fields, validated
    /// like a create; an empty body changes nothing (the SDK sends none). Renaming keeps the
    /// service's id and mapping; a name another service has → 409. Answers the envelope with
    /// the updated `VendorSkuData`.
    pub fn update_service(&mut self, id: &str, body: &Value) -> Result<Value, Refusal> {
        check_object_id(id)?;
        let empty = Map::new();
        let m = match body {
            Value::Null => &empty,
            Value::Object(m) => m,
            _ => return Err(Refusal::new(400, "body must be a service object")),
        };
        let Some(at) = self.skus.iter().position(|s| s.id == id) else {
            return Err(Refusal::new(404, format!("No service found with id: {id}")));
        };
        let name = text(m, "name")?;
        if name.as_deref() == Some("") {
            return Err(Refusal::new(400, "name should not be empty"));
        }
        let description = text(m, "description")?;
        let category = enum_value(text(m, "category")?, &CATEGORIES, "category")?;
        let subcategory = enum_value(text(m, "subcategory")?, &SUBCATEGORIES, "subcategory")?;
        let (article, contact) = (text(m, "supportArticle")?, text(m, "supportContact")?);
        if let Some(n) = &name
            && self.skus.iter().any(|s| s.id != id && &s.name == n)
        {
            return Err(Refusal::new(409, DUPLICATE));
        }
        let s = &mut self.skus[at];
        if let Some(v) = name {
            s.name = v;
        }
        if let Some(v) = description {
            s.description = v;
        }
        if let Some(v) = category {
            s.category = v;
        }
        if let Some(v) = subcategory {
            s.subcategory = v;
        }
        if article.is_some() {
            s.support_article = article;
        }
        if contact.is_some() {
            s.support_contact = contact;
        }
        Ok(json!({"status": 200, "data": Self::sku_json(s),
                  "message": "Success - Updated Service"}))
    }
}
