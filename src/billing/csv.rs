//! The CSV billing source: a file any PSA can export, one billed line per row.
//!
//! Columns (header row required, names case-insensitive, any order, extra columns ignored):
//! `account_id,account_name,product_id,quantity,unit_price` — `unit_price` may be left out
//! or empty. Quoted fields may hold commas; a UTF-8 byte-order mark is tolerated. Every row
//! is checked and every problem is reported with its line and column; one bad row rejects
//! the whole file (the previous billed snapshot stays in use).
//!
//! A quote that is never closed (or closed lines later) is reported at the line that opened
//! it, and the rows after it are still read and checked (see `csv_quotes`), so the operator
//! sees every problem at once and never silently gets fewer rows. A quantity must be a
//! finite number from 0 up to [`MAX_QUANTITY`]: `1e23` seats is a typo, not a bill.

#[path = "csv_quotes.rs"]
mod quotes;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::{Billed, BilledSource, BillingError, CsvReadError, FetchReport};
use crate::model::{Account, BilledLine, LineRef};

/// The documented columns, in their documented order.
pub const COLUMNS: [&str; 5] =
    ["account_id", "account_name", "product_id", "quantity", "unit_price"];

/// Columns every file must have (`unit_price` is optional).
const REQUIRED: [&str; 4] = ["account_id", "account_name", "product_id", "quantity"];

/// The largest quantity a billed line may carry (units, e.g. seats). Far above any real
/// reseller's count, far below where a typo like `1e23` would skew totals and money.
pub const MAX_QUANTITY: f64 = 1_000_000.0;

/// One problem in a CSV file: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvProblem {
    /// The file's name as shown in messages (e.g. `billed.csv`).
    pub file: String,
    /// 1-based line number where the row starts.
    pub line: u64,
    /// The column concerned, when one is.
    pub column: Option<String>,
    /// What is wrong and, where useful, what is expected.
    pub message: String,
}

impl std::fmt::Display for CsvProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.column {
            Some(c) => write!(f, "{} line {}, column {c}: {}", self.file, self.line, self.message),
            None => write!(f, "{} line {}: {}", self.file, self.line, self.message),
        }
    }
}

/// A CSV file with bad rows: every problem found, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvError {
    /// The file (path as configured).
    pub path: String,
    /// Every problem, in file order.
    pub problems: Vec<CsvProblem>,
}

impl std::fmt::Display for CsvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "the billing CSV {} has {n} problem{}; the file was not used and the previous billed \
             snapshot stays in use. Fix {} and the next billing run reads it (columns: {}):",
            self.path,
            if n == 1 { "" } else { "s" },
            if n == 1 { "it" } else { "each one" },
            COLUMNS.join(",")
        )?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CsvError {}

/// Reads billed lines from a CSV file on every run.
#[derive(Debug, Clone)]
pub struct CsvSource {
    path: PathBuf,
}

impl CsvSource {
    /// A source reading `path`.
    pub fn new(path: PathBuf) -> CsvSource {
        CsvSource { path }
    }
}

impl BilledSource for CsvSource {
    fn name(&self) -> &'static str {
        "csv"
    }

    fn fetch<'a>(
        &'a self,
        now: DateTime<Utc>,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, FetchReport> {
        Box::pin(async move {
            let path = self.path.clone();
            let read = tokio::task::spawn_blocking(move || read_file(&path, now));
            let outcome = tokio::select! {
                biased;
                _ = cancel.cancelled() => Err(BillingError::Cancelled),
                r = read => r.unwrap_or_else(|e| Err(BillingError::CsvIo {
                    path: self.path.display().to_string(),
                    source: CsvReadError::Task(e),
                })),
            };
            FetchReport { outcome, stats: Vec::new() }
        })
    }
}

/// Reads and parses `path` (BLOCKING). `_now` is unused: CSV rows carry no dates.
pub fn read_file(path: &Path, _now: DateTime<Utc>) -> Result<Billed, BillingError> {
    let bytes = std::fs::read(path).map_err(|e| BillingError::CsvIo {
        path: path.display().to_string(),
        source: CsvReadError::Io(e),
    })?;
    let name = path
        .file_name()
        .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    parse_csv(&name, &bytes).map_err(|mut e| {
        e.path = path.display().to_string();
        BillingError::Csv(e)
    })
}

/// Parses CSV `bytes`; `file` names the file in messages and in each line's `source_ref`
/// (`"billed.csv line 7"`). Every line is counted. Accounts are de-duplicated by id (the
/// first non-empty name wins) and sorted.
pub fn parse_csv(file: &str, bytes: &[u8]) -> Result<Billed, CsvError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let problem = |line: u64, column: Option<&str>, message: String| CsvProblem {
        file: file.to_owned(),
        line,
        column: column.map(str::to_owned),
        message,
    };
    // Badly quoted rows are reported and blanked first, so they cannot swallow later rows.
    let (bytes, quoting) = quotes::check_quotes(bytes);
    let first_bad_row = quoting.iter().map(|q| q.row_line).min();
    let mut problems: Vec<CsvProblem> =
        quoting.into_iter().map(|q| problem(q.line, None, q.message)).collect();
    let quote_problems = |problems: Vec<CsvProblem>| CsvError { path: file.to_owned(), problems };
    let line_of = Lines::new(&bytes);
    let mut reader =
        ::csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(&bytes[..]);
    let mut records = reader.byte_records();
    let header = match records.next() {
        // The header itself was badly quoted: without it no row can be read.
        None if first_bad_row.is_some() => return Err(quote_problems(problems)),
        Some(Ok(h)) if first_bad_row.is_some_and(|l| line_of.of(h.position()) > l) => {
            return Err(quote_problems(problems));
        }
        None => {
            return Err(CsvError {
                path: file.to_owned(),
                problems: vec![problem(
                    1,
                    None,
                    format!(
                        "the file is empty; the first line must be the header {}",
                        COLUMNS.join(",")
                    ),
                )],
            });
        }
        Some(Err(e)) => {
            let line = line_of.of(e.position());
            return Err(CsvError {
                path: file.to_owned(),
                problems: vec![problem(line, None, e.to_string())],
            });
        }
        Some(Ok(h)) => h,
    };
    let columns = match header_columns(&header) {
        Ok(c) => c,
        Err(msgs) => {
            return Err(CsvError {
                path: file.to_owned(),
                problems: msgs.into_iter().map(|m| problem(1, None, m)).collect(),
            });
        }
    };
    let mut accounts: BTreeMap<String, String> = BTreeMap::new();
    let mut lines = Vec::new();
    for rec in records {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = line_of.of(e.position());
                problems.push(problem(line, None, e.to_string()));
                continue;
            }
        };
        let line = line_of.of(rec.position());
        if rec.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
            // Spreadsheets often end exports with rows of bare commas.
            continue;
        }
        let before = problems.len();
        let mut field = |name: &str| -> Option<String> {
            let idx = *columns.get(name)?;
            match rec.get(idx) {
                // A short row may leave out the optional trailing unit price.
                None if name == "unit_price" => None,
                None => {
                    problems.push(problem(
                        line,
                        Some(name),
                        format!(
                            "missing (the row has {} fields, the header {})",
                            rec.len(),
                            header.len()
                        ),
                    ));
                    None
                }
                Some(raw) => match std::str::from_utf8(raw) {
                    Ok(s) => Some(s.trim().to_owned()),
                    Err(_) => {
                        problems.push(problem(
                            line,
                            Some(name),
                            "is not valid UTF-8; save the file as UTF-8".into(),
                        ));
                        None
                    }
                },
            }
        };
        let account_id = field("account_id");
        let account_name = field("account_name");
        let product_id = field("product_id");
        let quantity = field("quantity");
        let unit_price = field("unit_price");
        let required =
            |v: &Option<String>, name: &str, what: &str, problems: &mut Vec<CsvProblem>| {
                if v.as_deref() == Some("") {
                    problems.push(problem(
                        line,
                        Some(name),
                        format!("is empty; every row needs {what}"),
                    ));
                }
            };
        required(&account_id, "account_id", "the billing account's id", &mut problems);
        required(&product_id, "product_id", "the PSA product id", &mut problems);
        for (v, name) in [(&account_id, "account_id"), (&product_id, "product_id")] {
            // Ids never span lines: a quote closed in the wrong place glued rows together.
            if v.as_deref().is_some_and(|v| v.contains('\n')) {
                problems.push(problem(
                    line,
                    Some(name),
                    "holds a line break, so a quote in this row is closed in the wrong place and \
                     the lines after it were read into this field; fix the quotes in this row"
                        .into(),
                ));
            }
        }
        let quantity = quantity.and_then(|q| match quantity_of(&q) {
            Ok(n) => Some(n),
            Err(m) => {
                problems.push(problem(line, Some("quantity"), m.to_string()));
                None
            }
        });
        let unit_price = match unit_price.as_deref() {
            None | Some("") => None,
            Some(p) => match number(p) {
                Ok(n) => Some(n),
                Err(m) => {
                    problems.push(problem(line, Some("unit_price"), m.to_string()));
                    None
                }
            },
        };
        if problems.len() > before {
            continue;
        }
        let (Some(account_id), Some(product_id), Some(quantity)) =
            (account_id, product_id, quantity)
        else {
            continue;
        };
        let name = account_name.unwrap_or_default();
        let entry = accounts.entry(account_id.clone()).or_default();
        if entry.is_empty() {
            *entry = name;
        }
        lines.push(BilledLine {
            account_id,
            product_id,
            quantity,
            unit_price,
            counted: true,
            note: None,
            source_ref: format!("{file} line {line}"),
            line: Some(LineRef::Csv { line }),
        });
    }
    if !problems.is_empty() {
        // Quote problems were found first; list everything in file order (stable per line).
        problems.sort_by_key(|p| p.line);
        return Err(CsvError { path: file.to_owned(), problems });
    }
    let accounts = accounts
        .into_iter()
        .map(|(id, name)| Account { name: if name.is_empty() { id.clone() } else { name }, id })
        .collect();
    Ok(Billed { accounts, lines })
}

/// Line numbers of records, from their byte offsets. The csv crate's own line count lags
/// after blank lines and CRLF line ends; its byte offset points at (or just before the line
/// ends preceding) the record, so the record starts at the first byte that is not a line end.
struct Lines<'a> {
    bytes: &'a [u8],
    /// Offsets of every `\n`.
    breaks: Vec<usize>,
}

impl<'a> Lines<'a> {
    fn new(bytes: &'a [u8]) -> Lines<'a> {
        let breaks = bytes.iter().enumerate().filter(|(_, b)| **b == b'\n').map(|(i, _)| i);
        Lines { bytes, breaks: breaks.collect() }
    }

    /// The 1-based line the record at `pos` starts on (1 when unknown).
    fn of(&self, pos: Option<&::csv::Position>) -> u64 {
        let Some(pos) = pos else { return 1 };
        let mut at = usize::try_from(pos.byte()).unwrap_or(usize::MAX).min(self.bytes.len());
        while at < self.bytes.len() && matches!(self.bytes[at], b'\r' | b'\n') {
            at += 1;
        }
        // Line = 1 + the line breaks before the record's first byte.
        1 + self.breaks.partition_point(|b| *b < at) as u64
    }
}

/// Maps column names to indexes, or says what is wrong with the header.
fn header_columns(
    header: &::csv::ByteRecord,
) -> Result<BTreeMap<&'static str, usize>, Vec<String>> {
    let mut found = BTreeMap::new();
    let mut msgs = Vec::new();
    for (idx, raw) in header.iter().enumerate() {
        let name = String::from_utf8_lossy(raw).trim().to_ascii_lowercase();
        if let Some(col) = COLUMNS.iter().find(|c| **c == name)
            && found.insert(*col, idx).is_some()
        {
            msgs.push(format!("the header names column {col} twice"));
        }
    }
    let missing: Vec<&str> = REQUIRED.iter().filter(|c| !found.contains_key(*c)).copied().collect();
    if !missing.is_empty() {
        msgs.push(format!(
            "the header lacks column{} {}; the first line must name the columns {} (found {:?})",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", "),
            COLUMNS.join(","),
            header
                .iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect::<Vec<_>>()
                .join(",")
        ));
    }
    if msgs.is_empty() { Ok(found) } else { Err(msgs) }
}

/// Why a quantity or unit price cell was refused (the problem's message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum BadNumber {
    #[error("{value:?} is not a number")]
    NotANumber { value: String },
    #[error("{value:?} is negative; it must be 0 or more")]
    Negative { value: String },
    #[error(
        "{value:?} is too large; a quantity must be at most {} (1,000,000 units), so this is \
         probably a typo or a column mix-up",
        MAX_QUANTITY
    )]
    TooLarge { value: String },
}

/// A quantity: a [`number`] no larger than [`MAX_QUANTITY`].
fn quantity_of(s: &str) -> Result<f64, BadNumber> {
    let n = number(s)?;
    if n > MAX_QUANTITY {
        return Err(BadNumber::TooLarge { value: s.to_owned() });
    }
    Ok(n)
}

/// A non-negative, finite decimal number.
fn number(s: &str) -> Result<f64, BadNumber> {
    let value = || s.to_owned();
    match s.parse::<f64>() {
        Ok(n) if !n.is_finite() => Err(BadNumber::NotANumber { value: value() }),
        Ok(n) if n < 0.0 => Err(BadNumber::Negative { value: value() }),
        Ok(n) => Ok(n),
        Err(_) => Err(BadNumber::NotANumber { value: value() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_file_yields_accounts_and_counted_lines() {
        let text = "\u{feff}Account_ID,account_name,product_id,quantity,unit_price,notes\n\
                    250,\"Acme, Inc.\",MP-CF,56,3.5,x\n\
                    250,Acme,MP-SS,10,,\n\
                    ,,,,,\n\
                    7,Beta LLC,MP-CF,2.5,0,\n";
        let b = parse_csv("billed.csv", text.as_bytes()).unwrap();
        assert_eq!(
            b.accounts,
            vec![
                Account { id: "250".into(), name: "Acme, Inc.".into() },
                Account { id: "7".into(), name: "Beta LLC".into() }
            ]
        );
        assert_eq!(b.lines.len(), 3);
        assert_eq!(b.lines[0].quantity, 56.0);
        assert_eq!(b.lines[0].unit_price, Some(3.5));
        assert_eq!(b.lines[1].unit_price, None);
        assert_eq!(b.lines[2].source_ref, "billed.csv line 5");
        assert!(b.lines.iter().all(|l| l.counted && l.note.is_none()));
    }

    #[test]
    fn unit_price_column_is_optional() {
        let b =
            parse_csv("b.csv", b"quantity,product_id,account_name,account_id\n3,P,N,1\n").unwrap();
        assert_eq!(b.lines[0].quantity, 3.0);
        assert_eq!(b.lines[0].product_id, "P");
        assert_eq!(b.lines[0].unit_price, None);
    }
}
