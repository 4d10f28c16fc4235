//! The billing CSV parser on arbitrary and damaged bytes, and its round trip.

use std::collections::BTreeMap;

use super::harness::{check_csv, csv_bytes};
use mpsync::billing::csv::MAX_QUANTITY;
use proptest::prelude::*;

use super::mutate::{apply, damage};

/// One generated billed row.
#[derive(Debug, Clone)]
struct Row {
    account_id: String,
    account_name: String,
    product_id: String,
    quantity: f64,
    unit_price: Option<f64>,
}

fn row() -> impl Strategy<Value = Row> {
    (
        "[0-9]{1,6}|[A-Z]{1,3}-[0-9]{1,4}",
        // Names may hold commas, quotes, line breaks and any script; never edge whitespace
        // (the parser trims fields).
        "([A-Za-zé€𝄞,\"'][A-Za-z ,\"\n'é]{0,14}[A-Za-z.\"])?",
        "[A-Z]{2}-[A-Z0-9]{1,6}",
        // Up to the largest quantity a billed line may carry (1,000,000 units).
        prop_oneof![(0u32..100_000).prop_map(f64::from), 0.0f64..=MAX_QUANTITY],
        proptest::option::of(0.0f64..1e6),
    )
        .prop_map(|(account_id, account_name, product_id, quantity, unit_price)| Row {
            account_id,
            account_name,
            product_id,
            quantity,
            unit_price,
        })
}

/// Writes the rows under a header in `order` (a permutation of the five columns, plus an
/// extra `notes` column), with an optional byte-order mark and blank trailing rows.
fn render(rows: &[Row], order: &[usize], bom: bool, trailing_commas: bool) -> Vec<u8> {
    const NAMES: [&str; 6] =
        ["account_id", "Account_Name", "PRODUCT_ID", "quantity", "unit_price", "notes"];
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.write_record(order.iter().map(|i| NAMES[*i])).unwrap();
    for r in rows {
        let fields: [String; 6] = [
            r.account_id.clone(),
            r.account_name.clone(),
            r.product_id.clone(),
            r.quantity.to_string(),
            r.unit_price.map(|p| p.to_string()).unwrap_or_default(),
            "x, y".into(),
        ];
        w.write_record(order.iter().map(|i| &fields[*i])).unwrap();
    }
    if trailing_commas {
        w.write_record(order.iter().map(|_| "")).unwrap();
    }
    let mut out = if bom { b"\xEF\xBB\xBF".to_vec() } else { Vec::new() };
    out.extend(w.into_inner().unwrap());
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn arbitrary_bytes_are_refused_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        check_csv(&bytes);
    }

    #[test]
    fn csv_like_bytes_never_panic(text in "(account_id,account_name,product_id,quantity\n)?[a-z0-9,\"\r\n .eE+-]{0,200}") {
        check_csv(text.as_bytes());
    }

    #[test]
    fn a_generated_csv_parses_to_the_rows_generated(
        rows in proptest::collection::vec(row(), 0..12),
        order in Just((0..6).collect::<Vec<usize>>()).prop_shuffle(),
        bom in any::<bool>(),
        trailing_commas in any::<bool>(),
        damages in proptest::collection::vec(damage(), 1..3),
    ) {
        let bytes = render(&rows, &order, bom, trailing_commas);
        let billed = csv_bytes(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(billed.lines.len(), rows.len());
        for (line, r) in billed.lines.iter().zip(&rows) {
            prop_assert_eq!(&line.account_id, &r.account_id);
            prop_assert_eq!(&line.product_id, &r.product_id);
            prop_assert_eq!(line.quantity, r.quantity);
            prop_assert_eq!(line.unit_price, r.unit_price);
            prop_assert!(line.counted);
        }
        // Accounts: one per id, named by the first non-empty name (else the id), sorted.
        let mut want: BTreeMap<&str, &str> = BTreeMap::new();
        for r in &rows {
            let e = want.entry(&r.account_id).or_insert("");
            if e.is_empty() {
                *e = &r.account_name;
            }
        }
        let got: Vec<(&str, &str)> = billed.accounts.iter().map(|a| (a.id.as_str(), a.name.as_str())).collect();
        let want: Vec<(&str, &str)> = want.into_iter().map(|(id, n)| (id, if n.is_empty() { id } else { n })).collect();
        prop_assert_eq!(got, want);
        let text = String::from_utf8_lossy(&bytes);
        check_csv(apply(&text, &damages).as_bytes());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// An unterminated quote in row `k` is named at its line and hides nothing after it: a
    /// bad quantity planted in a later row `j` is reported too, and nothing else.
    #[test]
    fn an_unterminated_quote_hides_no_later_problem(
        (n, k, j) in (3usize..20).prop_flat_map(|n| (Just(n), 0..n - 1)).prop_flat_map(|(n, k)| (Just(n), Just(k), k + 1..n)),
        crlf in any::<bool>(),
        too_big in prop_oneof![Just("1e23".to_owned()), (1_000_001u64..u64::MAX).prop_map(|q| q.to_string())],
    ) {
        let end = if crlf { "\r\n" } else { "\n" };
        let mut text = format!("account_id,account_name,product_id,quantity{end}");
        for i in 0..n {
            let quantity = if i == j { too_big.clone() } else { i.to_string() };
            let name = if i == k { format!("\"Name {i}") } else { format!("Name {i}") };
            text.push_str(&format!("{i},{name},P-{i},{quantity}{end}"));
        }
        let err = csv_bytes(text.as_bytes()).expect_err("refused");
        let got: Vec<(u64, Option<&str>)> =
            err.problems.iter().map(|p| (p.line, p.column.as_deref())).collect();
        // The header is line 1, row i is line i + 2.
        prop_assert_eq!(got, vec![(k as u64 + 2, None), (j as u64 + 2, Some("quantity"))], "{}", err);
        prop_assert!(err.problems[0].message.contains("never closed"), "{}", err);
        prop_assert!(err.problems[1].message.contains("at most 1000000"), "{}", err);
    }
}

#[test]
fn a_bad_number_names_its_line_and_column() {
    let err = csv_bytes(b"account_id,account_name,product_id,quantity\n1,A,P,2\n1,A,Q,1e999\n")
        .unwrap_err();
    assert_eq!(err.problems.len(), 1, "{err}");
    assert_eq!((err.problems[0].line, err.problems[0].column.as_deref()), (3, Some("quantity")));
}
