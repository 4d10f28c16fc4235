//! Mapping file tests: the documented example parses; a table of bad files gives every
//! problem with its exact line and key.

use std::path::Path;

use chrono::NaiveDate;

use super::*;

fn parse(text: &str) -> Result<Mapping, MappingError> {
    Mapping::parse(Path::new("/etc/mpsync/mapping.toml"), text)
}

/// The problems as `line N: key: message` strings.
fn problems(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(m) => panic!("expected problems, parsed {m:?}"),
        Err(MappingError::Invalid { problems, .. }) => {
            problems.iter().map(|p| p.to_string()).collect()
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

const GOOD: &str = r#"
[customers]                 # Mailprotector customer id = "PSA account id" (string)
329 = "250"
330 = "250"
[products.CloudFilter]
psa_product = "MP-CF"
tolerance = 1
tolerance_percent = 2.0
debounce_runs = 2
write_back = "review"
min_quantity = 10
max_decrease_percent = 30
[products."Email Security Total"]
psa_product = "MP-EST"
[exclude]
customers = [7114]
products = ["ForceEncrypt"]
[[suppress]]
customer = 329
product = "SafeSend"
reason = "Trial until year end"
until = 2026-12-31
[[suppress]]
account = "250"
reason = "disputed"
until = "2027-01-15"
[[line]]
account = "250"
psa_product = "MP-CF"
line = "cw:12/345"
"#;

#[test]
fn the_documented_format_parses_into_the_mapping() {
    let m = parse(GOOD).unwrap();
    assert_eq!(m.account_of(329), Some("250"));
    assert_eq!(m.account_of(330), Some("250"));
    let cf = &m.products["CloudFilter"];
    assert_eq!((cf.psa_product.as_str(), cf.tolerance, cf.tolerance_percent), ("MP-CF", 1.0, 2.0));
    assert_eq!(cf.debounce_runs, Some(2));
    assert_eq!(m.products["Email Security Total"].tolerance, 0.0);
    assert!(m.exclude_customers.contains(&7114) && m.exclude_products.contains("ForceEncrypt"));
    assert_eq!(m.suppressions.len(), 2);
    let s = &m.suppressions[0];
    assert_eq!((s.customer, s.product.as_deref(), s.line), (Some(329), Some("SafeSend"), 18));
    assert_eq!(s.until, NaiveDate::from_ymd_opt(2026, 12, 31).unwrap());
    assert_eq!(m.suppressions[1].until, NaiveDate::from_ymd_opt(2027, 1, 15).unwrap());
    let expired = m.expired_suppressions(NaiveDate::from_ymd_opt(2027, 1, 1).unwrap());
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].scope(), "customer 329, product SafeSend");
    // Write-back: CloudFilter opted in with its guard rails; everything else stays off.
    let cf = m.policy_for("MP-CF");
    assert_eq!(cf.mode, crate::writeback::WriteBackMode::Review);
    assert_eq!((cf.min_quantity, cf.max_decrease_percent), (Some(10.0), 30.0));
    assert_eq!(m.policy_for("MP-EST"), crate::writeback::Policy::default());
    assert_eq!(m.policy_for("not mapped").mode, crate::writeback::WriteBackMode::Off);
    let pref = m.line_for("250", "MP-CF").expect("the [[line]] preference");
    assert_eq!(pref.line, crate::model::LineRef::Connectwise { agreement: 12, addition: 345 });
    assert_eq!(pref.source_line, 27);
    assert_eq!(m.line_for("250", "MP-EST"), None);
}

#[test]
fn a_line_stanza_parses_back_to_the_same_preference() {
    let line = crate::model::LineRef::Connectwise { agreement: 7, addition: 9 };
    let text = format!(
        "[customers]\n1 = \"A\"\n[products.CloudFilter]\npsa_product = \"MP-CF\"\n{}",
        LinePreference::stanza("A", "MP-CF", &line)
    );
    assert_eq!(parse(&text).unwrap().line_for("A", "MP-CF").map(|p| &p.line), Some(&line));
}

#[test]
fn products_billed_as_one_psa_product_may_share_a_policy() {
    let text = "[products.CloudFilter]\npsa_product = \"MP-CF\"\nwrite_back = \"auto\"\n\
                [products.Bracket]\npsa_product = \"MP-CF\"\nwrite_back = \"auto\"\n";
    assert_eq!(
        parse(text).unwrap().policy_for("MP-CF").mode,
        crate::writeback::WriteBackMode::Auto
    );
}

#[test]
fn an_empty_file_maps_nothing() {
    assert_eq!(parse("# nothing yet\n").unwrap().customers.len(), 0);
}

#[test]
fn the_shipped_example_is_valid() {
    let text = include_str!("../../../config/mapping.toml");
    let m = parse(text).unwrap();
    assert!(!m.customers.is_empty() && !m.products.is_empty());
}

#[test]
fn each_bad_file_reports_its_problems_with_exact_lines_and_keys() {
    let table: &[(&str, &[&str])] = &[
        (
            "[customers]\n329 = \"250\"\nabc = \"251\"\n",
            &["line 3: customers.\"abc\": a Mailprotector customer id must be a number"],
        ),
        (
            "[customers]\n329 = 250\n",
            &[
                "line 2: customers.\"329\": the PSA account id must be a string: write 329 = \"250\"",
            ],
        ),
        (
            "[customers]\n329 = \"250\"\n0329 = \"251\"\n",
            &["line 3: customers.\"0329\": customer 329 is already mapped on line 2"],
        ),
        ("[customers]\n1 = \"\"\n", &["line 2: customers.\"1\": the PSA account id is empty"]),
        (
            "[costumers]\n1 = \"2\"\n",
            &[
                "line 1: \"costumers\": unknown key; the mapping file has only [customers], [products.NAME], [exclude], [[suppress]] and [[line]]",
            ],
        ),
        (
            "[products.CloudFilter]\npsa_product = \"CF\"\ntolerence = 1\n",
            &[
                "line 3: products.\"CloudFilter\".tolerence: unknown key \"tolerence\"; expected psa_product, tolerance, tolerance_percent, debounce_runs, write_back, min_quantity or max_decrease_percent",
            ],
        ),
        (
            "\n[products.CloudFilter]\ntolerance = 1\n",
            &[
                "line 2: products.\"CloudFilter\": psa_product is required: the PSA product id this product is billed as",
            ],
        ),
        (
            "[products.SafeSend]\npsa_product = \"SS\"\ntolerance = -1\ntolerance_percent = \"2\"\ndebounce_runs = 0\n",
            &[
                "line 3: products.\"SafeSend\".tolerance: must be a number of users, 0 or more",
                "line 4: products.\"SafeSend\".tolerance_percent: must be a number of percent of the billed quantity, 0 or more",
                "line 5: products.\"SafeSend\".debounce_runs: must be a whole number of vendor runs from 1 to 1000 (1 raises a discrepancy at once)",
            ],
        ),
        (
            "[customers]\n7114 = \"9\"\n[products.X]\npsa_product = \"X\"\n[exclude]\ncustomers = [7114, 5, 5]\nproducts = [\"X\", \"\"]\nfoo = 1\n",
            &[
                "line 6: exclude.customers[0]: customer 7114 is excluded but also mapped on line 2; remove one of the two",
                "line 6: exclude.customers[2]: customer 5 is listed twice",
                "line 7: exclude.products[0]: product \"X\" is excluded but also mapped on line 3; remove one of the two",
                "line 7: exclude.products[1]: a product name is empty",
                "line 8: exclude.foo: unknown key \"foo\"; expected customers or products",
            ],
        ),
        (
            "[[suppress]]\nproduct = \"SafeSend\"\n",
            &[
                "line 1: suppress[0]: give customer = <id> or account = \"<PSA id>\" (or both)",
                "line 1: suppress[0]: reason is required: say why this is suppressed",
                "line 1: suppress[0]: until is required: the last day it applies, e.g. until = 2026-12-31",
            ],
        ),
        (
            "# header\n[[suppress]]\ncustomer = 1\nreason = \"x\"\nuntil = \"31/12/2026\"\n\n[[suppress]]\ncustomer = 1\nreason = \"y\"\nuntil = 2026-12-31\nwhy = 1\n",
            &[
                "line 5: suppress[0].until: must be a date like 2026-12-31 (the last day, UTC, inclusive)",
                "line 11: suppress[1].why: unknown key \"why\"; expected customer, account, product, reason or until",
            ],
        ),
        (
            "[[suppress]]\ncustomer = 1\nreason = \"x\"\nuntil = 2026-12-31\n[[suppress]]\ncustomer = 1\nreason = \"again\"\nuntil = 2027-01-01\n",
            &[
                "line 5: suppress[1]: suppresses the same rows as the [[suppress]] on line 1; keep one",
            ],
        ),
        (
            "[customers]\n1 = \"A\"\n[[suppress]]\ncustomer = 1\naccount = \"B\"\nreason = \"x\"\nuntil = 2026-12-31\n",
            &[
                "line 3: suppress[0]: customer 1 is mapped to account \"A\", not \"B\"; fix one of them",
            ],
        ),
        (
            "[products.CloudFilter]\npsa_product = \"MP-CF\"\nwrite_back = \"on\"\nmin_quantity = -1\nmax_decrease_percent = 120\n\
             [products.SafeSend]\npsa_product = \"MP-SS\"\nwrite_back = true\nmax_decrease_percent = \"20\"\n",
            &[
                "line 3: products.\"CloudFilter\".write_back: \"on\" is not a write-back mode; use \"off\" (never planned), \"review\" (planned, applied by `mpsync apply`) or \"auto\"",
                "line 4: products.\"CloudFilter\".min_quantity: must be a number of units the plan never goes below, 0 or more",
                "line 5: products.\"CloudFilter\".max_decrease_percent: must be a percent from 0 to 100: a larger drop of the billed quantity waits for review (default 20)",
                "line 8: products.\"SafeSend\".write_back: must be \"off\", \"review\" or \"auto\" in quotes, not a boolean",
                "line 9: products.\"SafeSend\".max_decrease_percent: must be a percent from 0 to 100: a larger drop of the billed quantity waits for review (default 20)",
            ],
        ),
        (
            "[products.CloudFilter]\npsa_product = \"MP-CF\"\nwrite_back = \"review\"\nmin_quantity = 5\n\
             [products.SafeSend]\npsa_product = \"MP-SS\"\n\
             [products.Bracket]\npsa_product = \"MP-CF\"\n",
            &[
                "line 7: products.\"Bracket\": products \"CloudFilter\" (line 1) and \"Bracket\" (line 7) are both billed as PSA product \"MP-CF\" but their write-back policies differ (write_back \"review\", min_quantity 5, max_decrease_percent 20 vs write_back \"off\", min_quantity none, max_decrease_percent 20); give both the same write_back, min_quantity and max_decrease_percent",
            ],
        ),
        (
            "[customers]\n1 = \"250\"\n[products.CloudFilter]\npsa_product = \"MP-CF\"\n\
             [[line]]\naccount = \"250\"\npsa_product = \"MP-CF\"\nline = \"cw:12\"\n\
             [[line]]\naccount = \"250\"\nline = 7\nwhy = 1\n\
             [[line]]\naccount = \"250\"\npsa_product = \"MP-CF\"\nline = \"cw:12/345\"\n\
             [[line]]\naccount = \"250\"\npsa_product = \"MP-CF\"\nline = \"cw:12/346\"\n",
            &[
                "line 8: line[0].line: \"cw:12\" is not a PSA line; write it as `mpsync plan` lists it, e.g. \"cw:12/345\" (ConnectWise agreement 12, addition 345) or \"csv:7\" (line 7 of the CSV export)",
                "line 9: line[1]: psa_product is required: a [[line]] names the account, the PSA product and the line to change, e.g. account = \"250\", psa_product = \"MP-CF\", line = \"cw:12/345\"",
                "line 11: line[1].line: the PSA line must be a string: write \"7\"",
                "line 12: line[1].why: unknown key \"why\"; expected account, psa_product or line",
                "line 17: line[3]: the [[line]] on line 13 already names the line of account \"250\" and PSA product \"MP-CF\"; keep one",
            ],
        ),
        (
            "[[line]]\naccount = \"999\"\npsa_product = \"MP-XX\"\nline = \"csv:7\"\n\
             [customers]\n1 = \"250\"\n[products.CloudFilter]\npsa_product = \"MP-CF\"\n",
            &[
                "line 1: line[0]: account \"999\" is not the account of any customer under [customers]; check the id (a [[line]] only applies to a mapped account)",
                "line 1: line[0]: no [products.NAME] is billed as PSA product \"MP-XX\"; check the id (a [[line]] only applies to a mapped PSA product)",
            ],
        ),
        (
            "[line]\naccount = \"1\"\n",
            &[
                "line 1: line: must be a list of tables: write each line preference under its own [[line]] header",
            ],
        ),
        (
            "[suppress]\ncustomer = 1\n",
            &[
                "line 1: suppress: must be a list of tables: write each suppression under its own [[suppress]] header",
            ],
        ),
    ];
    for (text, expected) in table {
        let got = problems(text);
        let expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        assert_eq!(got, expected, "for file:\n{text}");
    }
}

#[test]
fn toml_syntax_errors_and_duplicate_keys_are_reported_with_their_line() {
    let got = problems("[customers]\n329 = \"250\"\n329 = \"251\"\n");
    assert_eq!(got.len(), 1);
    assert!(got[0].starts_with("line 3: ") && got[0].contains("duplicate"), "{got:?}");
    let got = problems("[customers]\n\n329 = \"250\n");
    assert!(got[0].starts_with("line 3: "), "{got:?}");
}

#[test]
fn the_error_names_the_file_and_every_problem_and_exits_78() {
    let err = parse("[customers]\nabc = \"1\"\nxyz = \"2\"\n").unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("/etc/mpsync/mapping.toml has 2 problems"), "{msg}");
    assert!(msg.contains("\n  mapping.toml line 2: customers.\"abc\": a Mailprotector customer id must be a number"), "{msg}");
    assert!(msg.contains("\n  mapping.toml line 3: customers.\"xyz\""), "{msg}");
    assert_eq!(err.exit(), Exit::Config);
}

#[test]
fn a_missing_file_says_how_to_create_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mapping.toml");
    let err = Mapping::load(&path).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()) && msg.contains("config/mapping.toml"),
        "{msg}"
    );
    assert_eq!(err.exit(), Exit::Config);
    std::fs::write(&path, GOOD).unwrap();
    assert_eq!(Mapping::load(&path).unwrap().path, path);
}

#[test]
fn line_col_counts_lines_and_characters() {
    let src = "ab\nçd\nef";
    assert_eq!(parse::line_col(src, 0), (1, 1));
    assert_eq!(parse::line_col(src, 3), (2, 1));
    assert_eq!(parse::line_col(src, 5), (2, 2));
    assert_eq!(parse::line_col(src, 999), (3, 3));
}
