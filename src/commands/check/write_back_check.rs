//! `mpsync check`'s write-back line: per mapped product what the plan will do with its
//! discrepancies (the policy comes with the mapping, so a bad one already failed the mapping
//! check), the `[[line]]` preferences, the per-apply cap, and warnings for a policy the
//! billing source cannot honour. Never fails: it describes a valid configuration.

use std::collections::BTreeMap;

use serde_json::json;

use super::CheckResult;
use crate::config::{Config, Mapping};
use crate::model::LineRef;
use crate::writeback::WriteBackMode;

/// What each mapped product will do, in text (`detail`) and JSON (`data`).
pub fn write_back_check(cfg: &Config, mapping: &Mapping) -> CheckResult {
    let billing = cfg.billing.source.name();
    let writable = crate::billing::has_write_path(&cfg.billing);
    let opted: Vec<(&String, WriteBackMode)> = mapping
        .products
        .iter()
        .filter(|(_, p)| p.policy.mode != WriteBackMode::Off)
        .map(|(n, p)| (n, p.policy.mode))
        .collect();
    let mut detail = if opted.is_empty() {
        "no product opts in (write_back in the mapping file): nothing is planned".to_string()
    } else {
        let mut d = format!(
            "{} of {} products opt in; at most {} changes per apply",
            opted.len(),
            mapping.products.len(),
            cfg.write_back.max_changes_per_apply
        );
        if !writable {
            d.push_str(&format!(
                "; billing source {billing} has no write path: `mpsync plan --csv` lists the \
                 changes to enter by hand"
            ));
        }
        d
    };
    let mut products = Vec::new();
    for (name, p) in &mapping.products {
        detail.push_str(&format!("\n  {name} → {}: {}", p.psa_product, p.policy.describe()));
        products.push(json!({
            "product": name,
            "psa_product": p.psa_product,
            "write_back": p.policy.mode,
            "min_quantity": p.policy.min_quantity,
            "max_decrease_percent": p.policy.max_decrease_percent,
        }));
    }
    for l in &mapping.lines {
        detail.push_str(&format!(
            "\n  [[line]] on line {}: account {} {} changes {}",
            l.source_line,
            l.account,
            l.psa_product,
            l.line.key()
        ));
    }
    let mut warnings = Vec::new();
    let auto: Vec<&str> =
        opted.iter().filter(|(_, m)| *m == WriteBackMode::Auto).map(|(n, _)| n.as_str()).collect();
    if !auto.is_empty() && !writable {
        warnings.push(format!(
            "{} set write_back = \"auto\", but billing source {billing} has no write path: \
             nothing is applied automatically; enter the changes of `mpsync plan --csv` by hand",
            auto.join(", ")
        ));
    }
    let foreign: BTreeMap<usize, String> = mapping
        .lines
        .iter()
        .filter(|l| {
            !matches!(
                (&l.line, billing),
                (LineRef::Connectwise { .. }, "connectwise")
                    | (LineRef::Autotask { .. }, "autotask")
                    | (LineRef::Halopsa { .. }, "halopsa")
                    | (LineRef::Csv { .. }, "csv")
            )
        })
        .map(|l| (l.source_line, l.line.key()))
        .collect();
    for (line, key) in foreign {
        warnings.push(format!(
            "the [[line]] on line {line} names {key}, which is not a line of billing source \
             {billing}: it never matches; name a line as `mpsync plan` lists it"
        ));
    }
    let lines: Vec<_> = mapping
        .lines
        .iter()
        .map(|l| json!({"account": l.account, "psa_product": l.psa_product, "line": l.line.key(), "mapping_line": l.source_line}))
        .collect();
    let data = json!({
        "billing": billing,
        "writable": writable,
        "max_changes_per_apply": cfg.write_back.max_changes_per_apply,
        "products": products,
        "lines": lines,
    });
    CheckResult::pass("write_back", detail).with_warnings(warnings).with_data(data)
}
