//! The mapping file parser on arbitrary and damaged text, and its round trip.

use std::collections::{BTreeMap, BTreeSet};

use super::harness::{check_mapping, mapping_text};
use mpsync::config::MappingError;
use proptest::prelude::*;

use super::mutate::{apply, damage};

const EXAMPLE: &str = include_str!("../../config/mapping.toml");

/// What a generated mapping file says.
#[derive(Debug, Clone)]
struct Generated {
    customers: BTreeMap<u64, String>,
    /// Product name → (PSA product, tolerance, tolerance percent, debounce runs).
    products: BTreeMap<String, (String, u32, f64, Option<u32>)>,
    exclude_customers: BTreeSet<u64>,
    exclude_products: BTreeSet<String>,
}

fn generated() -> impl Strategy<Value = Generated> {
    (
        proptest::collection::btree_map(any::<u64>(), "[A-Za-z0-9 _.é€-]{1,12}", 0..8),
        proptest::collection::btree_map(
            "[A-Za-z][A-Za-z0-9 _-]{0,12}",
            (
                "[A-Z]{1,4}-[A-Z0-9]{1,6}",
                0u32..100,
                0.0f64..100.0,
                proptest::option::of(1u32..=1000),
            ),
            0..5,
        ),
        proptest::collection::btree_set(0..=i64::MAX as u64, 0..4),
        proptest::collection::btree_set("[a-z]{1,8}", 0..3),
    )
        .prop_map(|(customers, products, ex_c, ex_p)| Generated {
            exclude_customers: ex_c.into_iter().filter(|c| !customers.contains_key(c)).collect(),
            exclude_products: ex_p.into_iter().filter(|p| !products.contains_key(p)).collect(),
            customers,
            products,
        })
        .prop_filter("account ids are trimmed by the parser", |g| {
            g.customers.values().all(|a| a.trim() == a && !a.is_empty())
        })
}

fn render(g: &Generated) -> String {
    let mut t = String::from("# generated\n[customers]\n");
    for (id, account) in &g.customers {
        t.push_str(&format!("{id} = {account:?}\n"));
    }
    for (name, (psa, tol, pct, debounce)) in &g.products {
        t.push_str(&format!("\n[products.{name:?}]\npsa_product = {psa:?}\ntolerance = {tol}\ntolerance_percent = {pct:?}\n"));
        if let Some(d) = debounce {
            t.push_str(&format!("debounce_runs = {d}\n"));
        }
    }
    t.push_str(&format!(
        "\n[exclude]\ncustomers = {:?}\nproducts = {:?}\n",
        g.exclude_customers.iter().collect::<Vec<_>>(),
        g.exclude_products.iter().collect::<Vec<_>>()
    ));
    t
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn arbitrary_bytes_are_refused_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        check_mapping(&bytes);
    }

    #[test]
    fn toml_like_text_never_panics(text in "[\\[\\]a-z_.=\"'0-9 \n#{},:-]{0,300}") {
        check_mapping(text.as_bytes());
    }

    #[test]
    fn a_damaged_example_puts_every_problem_on_a_line(damages in proptest::collection::vec(damage(), 1..4)) {
        check_mapping(apply(EXAMPLE, &damages).as_bytes());
    }

    #[test]
    fn a_generated_mapping_parses_to_what_was_generated(g in generated(), damages in proptest::collection::vec(damage(), 1..3)) {
        let text = render(&g);
        let (m, _) = mapping_text(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(&m.customers, &g.customers);
        prop_assert_eq!(&m.exclude_customers, &g.exclude_customers);
        prop_assert_eq!(&m.exclude_products, &g.exclude_products);
        prop_assert_eq!(m.products.len(), g.products.len());
        for (name, (psa, tol, pct, debounce)) in &g.products {
            let p = &m.products[name];
            prop_assert_eq!(&p.psa_product, psa);
            prop_assert_eq!(p.tolerance, f64::from(*tol));
            prop_assert_eq!(p.tolerance_percent, *pct);
            prop_assert_eq!(p.debounce_runs, *debounce);
        }
        check_mapping(apply(&text, &damages).as_bytes());
    }
}

#[test]
fn a_customer_mapped_twice_is_reported_on_the_second_line() {
    let err = mapping_text("[customers]\n329 = \"250\"\n\" 329\" = \"251\"\n").unwrap_err();
    let MappingError::Invalid { problems, .. } = err else { panic!("{err}") };
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].line, 3);
    assert_eq!(problems[0].key, "customers.\" 329\"");
}
