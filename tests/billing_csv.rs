//! The CSV billing source: every bad row is reported with its line and column, all problems
//! at once, and one bad row rejects the file: the billing run fails (exit 65) and the previous
//! billed snapshot stays in use.

use std::sync::Arc;

use mpsync::billing::{BilledSource, BillingError, CsvSource, parse_csv};
use mpsync::exit::Exit;
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
    match &err {
        JobError::Failed { reason, exit } => {
            assert_eq!(*exit, Exit::DataErr, "sync --once exits 65");
            assert!(
                reason.contains(r#"billed.csv line 3, column quantity: "four" is not a number"#),
                "{reason}"
            );
        }
        other => panic!("expected a failure, got {other:?}"),
    }
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
