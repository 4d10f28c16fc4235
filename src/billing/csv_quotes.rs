//! Quote checking for the billing CSV, before the csv crate reads it.
//!
//! The csv crate is lenient: a quote that is never closed turns every row after it into one
//! field, and a quote closed lines later with text after it silently glues those lines into
//! one row. Either way the file would yield fewer rows without a word. This scan follows the
//! same quoting rules (a quote opens a field only at its start; `""` inside a quoted field is
//! one quote) and reports each such quote at the line that opened it. That row is blanked
//! (its line breaks kept, so every later line keeps its number) and the scan starts again on
//! the next line, so the rows after it are still read and checked. A quoted field that
//! spans lines and closes properly (a name with a line break) is fine.

use std::borrow::Cow;

/// A badly quoted row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct QuoteProblem {
    /// The line of the opening quote (1-based).
    pub line: u64,
    /// The line the row starts on (before `line` when an earlier field spans lines).
    pub row_line: u64,
    /// What is wrong and what to do.
    pub message: String,
}

#[derive(Clone, Copy)]
enum State {
    /// At the start of a field.
    FieldStart,
    /// Inside an unquoted field (a quote here is just a character).
    Unquoted,
    /// Inside a quoted field opened on `open_line`.
    Quoted { open_line: u64 },
    /// Just after a quote inside a quoted field: it closes the field or starts `""`.
    QuoteInQuoted { open_line: u64 },
}

/// Scans `bytes`; returns them with every badly quoted row blanked, and the problems.
pub(super) fn check_quotes(bytes: &[u8]) -> (Cow<'_, [u8]>, Vec<QuoteProblem>) {
    let mut problems = Vec::new();
    // (start, end) byte ranges to blank, end exclusive, in increasing order.
    let mut blank: Vec<(usize, usize)> = Vec::new();
    let mut state = State::FieldStart;
    let (mut pos, mut line) = (0usize, 1u64);
    let (mut row_start, mut row_line) = (0usize, 1u64);
    loop {
        while pos < bytes.len() {
            let b = bytes[pos];
            match state {
                State::FieldStart | State::Unquoted => match b {
                    b'"' if matches!(state, State::FieldStart) => {
                        state = State::Quoted { open_line: line };
                    }
                    b',' => state = State::FieldStart,
                    b'\n' | b'\r' => {
                        state = State::FieldStart;
                        (row_start, row_line) = (pos + 1, line + u64::from(b == b'\n'));
                    }
                    _ => state = State::Unquoted,
                },
                State::Quoted { open_line } => {
                    if b == b'"' {
                        state = State::QuoteInQuoted { open_line };
                    }
                }
                State::QuoteInQuoted { open_line } => match b {
                    b'"' => state = State::Quoted { open_line },
                    b',' => state = State::FieldStart,
                    b'\n' | b'\r' => {
                        state = State::FieldStart;
                        (row_start, row_line) = (pos + 1, line + u64::from(b == b'\n'));
                    }
                    // Text after a closing quote on the same line: the csv crate keeps it
                    // (`"Acme" Inc` reads as `Acme Inc`) and no row is lost: accepted.
                    _ if open_line == line => state = State::Unquoted,
                    _ => {
                        problems.push(QuoteProblem {
                            line: open_line,
                            row_line,
                            message: format!(
                                "a quote opens a field here and closes only on line {line}, with \
                                 more text after it; the lines in between would be read as part \
                                 of this field. Close the quote on this line (a quote inside a \
                                 quoted field is written twice: \"\")"
                            ),
                        });
                        (pos, line) = resync(bytes, &mut blank, row_start, row_line, open_line);
                        (row_start, row_line, state) = (pos, line, State::FieldStart);
                        continue;
                    }
                },
            }
            if b == b'\n' {
                line += 1;
            }
            pos += 1;
        }
        let State::Quoted { open_line } = state else { break };
        problems.push(QuoteProblem {
            line: open_line,
            row_line,
            message: "a quote opens a field here and is never closed, so every row after it \
                      would be read as part of this field; close it (a quote inside a quoted \
                      field is written twice: \"\") or remove it"
                .into(),
        });
        // The rows after the opening line are read again on their own.
        (pos, line) = resync(bytes, &mut blank, row_start, row_line, open_line);
        (row_start, row_line, state) = (pos, line, State::FieldStart);
    }
    if blank.is_empty() {
        (Cow::Borrowed(bytes), problems)
    } else {
        (Cow::Owned(blanked(bytes, &blank)), problems)
    }
}

/// Marks the bad row (from `row_start` on `row_line` to the end of `open_line`) for
/// blanking; returns the offset and number of the line after `open_line`, where scanning
/// starts again.
fn resync(
    bytes: &[u8],
    blank: &mut Vec<(usize, usize)>,
    row_start: usize,
    row_line: u64,
    open_line: u64,
) -> (usize, u64) {
    let (mut pos, mut line) = (row_start, row_line);
    while pos < bytes.len() && line <= open_line {
        if bytes[pos] == b'\n' {
            line += 1;
        }
        pos += 1;
    }
    blank.push((row_start, pos));
    (pos, line)
}

/// `bytes` without every byte but line breaks inside `ranges` (sorted, disjoint), so later
/// lines keep their numbers and the csv crate skips the emptied lines.
fn blanked(bytes: &[u8], ranges: &[(usize, usize)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut from = 0;
    for &(start, end) in ranges {
        out.extend_from_slice(&bytes[from..start]);
        out.extend(bytes[start..end].iter().filter(|b| **b == b'\n'));
        from = end;
    }
    out.extend_from_slice(&bytes[from..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &str) -> (String, Vec<(u64, u64)>) {
        let (out, problems) = check_quotes(text.as_bytes());
        let lines = problems.iter().map(|p| (p.line, p.row_line)).collect();
        (String::from_utf8(out.into_owned()).unwrap(), lines)
    }

    #[test]
    fn good_quoting_passes_untouched() {
        let text =
            "a,b\n1,\"x, \"\"y\"\"\"\n2,\"multi\nline\"\n3,\"Acme\" Inc\n4,plain \"quote\"\n";
        assert_eq!(scan(text), (text.to_owned(), vec![]));
        let crlf = "a,b\r\n1,\"x\"\r\n2,\"y\r\nz\"\r\n";
        assert_eq!(scan(crlf), (crlf.to_owned(), vec![]));
    }

    #[test]
    fn an_unterminated_quote_is_named_and_the_rows_after_it_are_kept() {
        let (out, problems) = scan("h\n1,\"open\n2,ok\n3,\"again\n4,ok\n");
        assert_eq!(problems, vec![(2, 2), (4, 4)]);
        assert_eq!(out, "h\n\n2,ok\n\n4,ok\n");
    }

    #[test]
    fn a_quote_closed_lines_later_with_text_after_it_is_named() {
        let (out, problems) = scan("h\n1,\"open\n2,ok\n3,\"Beta\",x\n");
        assert_eq!(problems, vec![(2, 2)]);
        assert_eq!(out, "h\n\n2,ok\n3,\"Beta\",x\n");
    }

    #[test]
    fn many_unterminated_quotes_are_each_named_without_deep_recursion() {
        let text = format!("h\n{}", "\"x\n".repeat(100_000));
        let (out, problems) = check_quotes(text.as_bytes());
        assert_eq!(problems.len(), 100_000);
        assert_eq!(problems[99_999].line, 100_001);
        assert_eq!(&out[..], format!("h\n{}", "\n".repeat(100_000)).as_bytes());
    }

    #[test]
    fn a_row_that_began_on_an_earlier_line_is_blanked_whole() {
        let (out, problems) = scan("h\n1,\"two\nlines\",\"open\n2,ok\n");
        assert_eq!(problems, vec![(3, 2)]);
        assert_eq!(out, "h\n\n\n2,ok\n");
    }
}
