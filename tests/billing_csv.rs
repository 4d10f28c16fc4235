//! The CSV billing source: every bad row is reported with its line and column, all problems
//! at once, and one bad row rejects the file: the billing run fails (exit 65) and the previous
//! billed snapshot stays in use.

use std::sync::Arc;

use mpsync::billing::{BilledSource, BillingError, CsvSource, parse_csv};
use mpsync::exit::{Exit, ExitStatus};
use mpsync::model::{RunKind, RunOutcome};
use mpsync::store::Store;
use mpsync::sync::{BillingJob, Job, JobError, RunContext, RunLedger};
use tokio_util::sync::CancellationToken;

use crate::support::store::{at, state_dir};

const HEADER: &str = "account_id,account_name,product_id,quantity,unit_price\n";

/// (what is wrong, file content, every problem expected, in order).
fn bad_files() -> Vec<(&'static str, String, Vec<&'static str>)> {
    vec![
        (
            "empty file",
            String::new(),
            vec!["billed.csv line 1: the file is empty; the first line must be the header"],
        ),
        (
            "no header",
            "250,Acme,MP-CF,5,1\n".into(),
            vec![
                "billed.csv line 1: the header lacks columns account_id, account_name, product_id, quantity",
            ],
        ),
        (
            "header lacks quantity",
            "account_id,account_name,product_id,unit_price\n250,Acme,MP-CF,1\n".into(),
            vec!["billed.csv line 1: the header lacks column quantity"],
        ),
        (
            "duplicate column",
            "account_id,account_name,product_id,quantity,quantity\n".into(),
            vec!["billed.csv line 1: the header names column quantity twice"],
        ),
        (
            "quantity not a number",
            format!("{HEADER}250,Acme,MP-CF,56,3\n250,Acme,MP-SS,ten,3\n"),
            vec![r#"billed.csv line 3, column quantity: "ten" is not a number"#],
        ),
        (
            "every problem is listed",
            format!(
                "{HEADER}250,Acme,MP-CF,56,3\n,Acme,MP-SS,1,\n7,Beta,,-2,x\n8,Gamma,MP-CF\n9,\"Delta, Inc\",MP-CF,NaN,\n"
            ),
            vec![
                "billed.csv line 3, column account_id: is empty",
                "billed.csv line 4, column product_id: is empty",
                r#"billed.csv line 4, column quantity: "-2" is negative"#,
                r#"billed.csv line 4, column unit_price: "x" is not a number"#,
                "billed.csv line 5, column quantity: missing (the row has 3 fields, the header 5)",
                r#"billed.csv line 6, column quantity: "NaN" is not a number"#,
            ],
        ),
        (
            "an unterminated quote is named at its line and hides none of the rows after it",
            format!(
                "{HEADER}250,Acme,MP-CF,5,\n251,\"Beta,MP-CF,3,\n252,Gamma,MP-CF,ten,\n\
                 253,Delta,MP-SS,1e23,\n254,Eps,MP-SS,4,\n"
            ),
            vec![
                "billed.csv line 3: a quote opens a field here and is never closed, so every row \
                 after it would be read as part of this field",
                r#"billed.csv line 4, column quantity: "ten" is not a number"#,
                r#"billed.csv line 5, column quantity: "1e23" is too large; a quantity must be at most 1000000"#,
            ],
        ),
        (
            "a quote closed lines later with text after it",
            format!("{HEADER}250,\"Acme,MP-CF,5,\n251,Beta,MP-CF,-1,\n252,\"Gamma\",MP-CF,2,\n"),
            vec![
                "billed.csv line 2: a quote opens a field here and closes only on line 4, with \
                 more text after it",
                r#"billed.csv line 3, column quantity: "-1" is negative"#,
            ],
        ),
        (
            "a quote closed in the wrong place glues rows into an id",
            format!("{HEADER}250,Acme,\"MP-CF\n251,Beta,MP\",5,\n"),
            vec![
                "billed.csv line 2, column product_id: holds a line break, so a quote in this \
                 row is closed in the wrong place",
            ],
        ),
        (
            "an unterminated quote in the header",
            "account_id,\"account_name,product_id,quantity\n250,Acme,MP-CF,5\n".into(),
            vec!["billed.csv line 1: a quote opens a field here and is never closed"],
        ),
        (
            "quantities must be finite, non-negative and at most 1,000,000",
            format!(
                "{HEADER}1,A,P,1000000,\n2,B,P,1000000.5,\n3,C,P,1e23,\n4,D,P,-0.5,\n\
                 5,E,P,inf,\n6,F,P,1e999,\n"
            ),
            vec![
                r#"billed.csv line 3, column quantity: "1000000.5" is too large; a quantity must be at most 1000000 (1,000,000 units)"#,
                r#"billed.csv line 4, column quantity: "1e23" is too large"#,
                r#"billed.csv line 5, column quantity: "-0.5" is negative"#,
                r#"billed.csv line 6, column quantity: "inf" is not a number"#,
                r#"billed.csv line 7, column quantity: "1e999" is not a number"#,
            ],
        ),
        (
            "every planted problem in one file is reported, in file order",
            format!(
                "{HEADER}250,Acme,MP-CF,56,3\n\
                 ,Acme,MP-SS,1,\n\
                 251,\"Open,MP-CF,2,\n\
                 252,Beta,MP-CF,2e9,\n\
                 253,Gamma,,4,-1\n\
                 254,\"Two\nLines\",MP-CF,NaN,\n\
                 255,Delta,MP-CF,7,\n\
                 256,\"Again,MP-SS,1,\n\
                 257,Zeta,MP-SS,x,\n"
            ),
            vec![
                "billed.csv line 3, column account_id: is empty",
                // Its quote is closed by the next quote in the file, three lines on.
                "billed.csv line 4: a quote opens a field here and closes only on line 7, with \
                 more text after it",
                r#"billed.csv line 5, column quantity: "2e9" is too large"#,
                "billed.csv line 6, column product_id: is empty",
                r#"billed.csv line 6, column unit_price: "-1" is negative"#,
                r#"billed.csv line 7, column quantity: "NaN" is not a number"#,
                "billed.csv line 10: a quote opens a field here and is never closed",
                r#"billed.csv line 11, column quantity: "x" is not a number"#,
            ],
        ),
        (
            "quoted field spanning lines keeps line numbers right",
            format!("{HEADER}250,\"Acme\nEast\",MP-CF,1,\n251,West,MP-CF,inf,\n"),
            vec![r#"billed.csv line 4, column quantity: "inf" is not a number"#],
        ),
    ]
}

#[test]
fn bad_files_name_each_line_and_column_and_list_every_problem() {
    for (what, text, expected) in bad_files() {
        let err = parse_csv("billed.csv", text.as_bytes()).expect_err(what);
        let got: Vec<String> = err.problems.iter().map(ToString::to_string).collect();
        assert_eq!(got.len(), expected.len(), "{what}: {got:#?}");
        for (g, e) in got.iter().zip(&expected) {
            assert!(g.starts_with(e), "{what}: {g:?} should start with {e:?}");
        }
        let whole = err.to_string();
        assert!(whole.contains("previous billed snapshot stays in use"), "{what}: {whole}");
        for g in &got {
            assert!(whole.contains(g.as_str()), "{what}: the message lists {g:?}");
        }
    }
}

/// The quote checks reject nothing a careful export writes: quotes around commas, doubled
/// quotes, a name over two lines, text after a closing quote on the same line, CRLF.
#[test]
fn well_quoted_files_keep_every_row() {
    let text = "account_id,account_name,product_id,quantity,unit_price\r\n\
                250,\"Acme, \"\"East\"\"\",MP-CF,56,3\r\n\
                251,\"Two\r\nLines\",MP-CF,1000000,\r\n\
                252,\"Beta\" Inc,MP-SS,0,\r\n\
                253,Gamma \"G\",MP-SS,2.5,\r\n";
    let billed = parse_csv("billed.csv", text.as_bytes()).unwrap();
    let rows: Vec<(&str, f64)> =
        billed.lines.iter().map(|l| (l.account_id.as_str(), l.quantity)).collect();
    assert_eq!(rows, [("250", 56.0), ("251", 1_000_000.0), ("252", 0.0), ("253", 2.5)]);
    let names: Vec<&str> = billed.accounts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["Acme, \"East\"", "Two\r\nLines", "Beta Inc", "Gamma \"G\""]);
    assert_eq!(billed.lines[3].source_ref, "billed.csv line 6");
}

#[test]
fn invalid_utf8_is_named_with_its_line_and_column() {
    let mut bytes = HEADER.as_bytes().to_vec();
    bytes.extend_from_slice(b"250,Caf\xe9,MP-CF,1,\n");
    let err = parse_csv("billed.csv", &bytes).unwrap_err();
    assert_eq!(
        err.problems[0].to_string(),
        "billed.csv line 2, column account_name: is not valid UTF-8; save the file as UTF-8"
    );
}

fn write(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let p = dir.join("billed.csv");
    std::fs::write(&p, text).unwrap();
    p
}

async fn run_job(
    store: &Store,
    job: &BillingJob,
    minutes: i64,
) -> Result<mpsync::model::RunRecord, JobError> {
    let id = store.begin_run(RunKind::Billing, at(minutes)).await.unwrap();
    let ctx = RunContext { run_id: id, started_at: at(minutes), cancel: CancellationToken::new() };
    let result = job.run(ctx).await;
    assert!(result.requests.is_empty(), "a file source makes no requests");
    match result.outcome {
        Ok(out) => {
            Ok(RunLedger::complete(store, id, at(minutes + 1), result.requests, out).await.unwrap())
        }
        Err(e) => {
            store.fail_run(id, at(minutes + 1), e.to_string(), result.requests).await.unwrap();
            Err(e)
        }
    }
}

#[tokio::test]
async fn one_bad_row_rejects_the_file_and_the_previous_snapshot_stays() {
    let (dir, state) = state_dir();
    let store = tokio::task::spawn_blocking(move || Store::open(&state)).await.unwrap().unwrap();
    let path = write(dir.path(), &format!("{HEADER}250,Acme,MP-CF,56,3.25\n7,Beta,MP-SS,4,\n"));
    let job = BillingJob::new(Arc::new(CsvSource::new(path.clone())));

    let good = run_job(&store, &job, 0).await.expect("clean file");
    assert_eq!(good.outcome, RunOutcome::Ok);
    let snap = store.latest_billed_snapshot().await.unwrap().unwrap();
    assert_eq!(snap.lines.len(), 2);
    assert_eq!(snap.lines.iter().map(|l| l.quantity).sum::<f64>(), 60.0);

    write(dir.path(), &format!("{HEADER}250,Acme,MP-CF,56,3.25\n7,Beta,MP-SS,four,\n"));
    let err = run_job(&store, &job, 10).await.expect_err("bad row");
    assert!(matches!(err, JobError::Billing(BillingError::Csv(_))), "a CSV failure: {err:?}");
    assert_eq!(err.exit(), Exit::DataErr, "sync --once exits 65");
    let reason = err.to_string();
    assert!(
        reason.contains(r#"billed.csv line 3, column quantity: "four" is not a number"#),
        "{reason}"
    );
    let still = store.latest_billed_snapshot().await.unwrap().unwrap();
    assert_eq!(still.run_id, good.id, "the previous billed snapshot stays in use");
    assert_eq!(still.lines, snap.lines);
}

#[tokio::test]
async fn a_missing_file_is_an_io_failure_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.csv");
    let report = CsvSource::new(path.clone()).fetch(at(0), &CancellationToken::new()).await;
    let err = report.outcome.unwrap_err();
    assert!(matches!(err, BillingError::CsvIo { .. }), "{err}");
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");
    assert_eq!(mpsync::exit::ExitStatus::exit(&err), Exit::IoErr);
}
