//! The mapping file the generator writes for its dataset, in the format the reconciliation
//! reads (`[customers]`, `[products.<name>]`, `[exclude]`, `[[suppress]]`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One `[products.<name>]` table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ProductMap {
    pub(crate) product: &'static str,
    pub(crate) psa: &'static str,
    pub(crate) tolerance: u64,
    pub(crate) percent: f64,
}

/// What the mapping says, before it is rendered.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct MappingText {
    /// Customer id → account (company) id.
    pub(crate) customers: BTreeMap<u64, u64>,
    pub(crate) products: Vec<ProductMap>,
    pub(crate) excluded: Vec<u64>,
    /// (customer, product) suppressed until 2099-12-31.
    pub(crate) suppress: Vec<(u64, &'static str)>,
    /// The product left out of `[products]` on purpose (named in the header comment).
    pub(crate) unmapped_product: String,
}

impl MappingText {
    /// The TOML text. Products not listed (e.g. `ForceEncrypt`) stay unmapped on purpose.
    pub(crate) fn render(&self, seed: u64) -> String {
        let mut s = format!(
            "# Mapping for the simulator's dataset (seed {seed}), written by mpsync sim.\n\
             # Left unmapped on purpose: one customer with usage and the product {}.\n\
             [customers]\n",
            self.unmapped_product
        );
        for (c, a) in &self.customers {
            let _ = writeln!(s, "{c} = \"{a}\"");
        }
        for p in &self.products {
            let _ = write!(
                s,
                "\n[products.{}]\npsa_product = \"{}\"\ntolerance = {}\ntolerance_percent = {:.1}\n",
                p.product, p.psa, p.tolerance, p.percent
            );
        }
        let excluded: Vec<String> = self.excluded.iter().map(u64::to_string).collect();
        let _ = write!(s, "\n[exclude]\ncustomers = [{}]\nproducts = []\n", excluded.join(", "));
        for (c, p) in &self.suppress {
            let _ = write!(
                s,
                "\n[[suppress]]\ncustomer = {c}\nproduct = \"{p}\"\nreason = \"Trial until year end\"\n\
                 until = \"2099-12-31\"\n"
            );
        }
        s
    }
}
