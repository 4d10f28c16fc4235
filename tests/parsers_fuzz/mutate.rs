//! Damage for valid documents: delete, duplicate or swap lines, replace a value with one of
//! the wrong type, a huge number or odd unicode, or truncate the text.

use proptest::prelude::*;

/// Values that break a typed key in different ways.
pub const ODD_VALUES: &[&str] = &[
    "\"\"",
    "\"text\"",
    "-1",
    "0",
    "18446744073709551616",
    "9223372036854775807",
    "1e309",
    "nan",
    "-inf",
    "1.5",
    "true",
    "[]",
    "[1, \"a\"]",
    "{ a = 1 }",
    "2026-02-30",
    "\"\u{202e}\u{0301}ü€𝄞\"",
    "\"\\u0000\"",
    "'''multi\nline'''",
];

/// One way to damage a text.
#[derive(Debug, Clone)]
pub enum Damage {
    /// Remove the line at (index mod lines).
    DeleteLine(usize),
    /// Repeat the line at (index mod lines) right after itself.
    DuplicateLine(usize),
    /// Swap two lines.
    SwapLines(usize, usize),
    /// Replace what follows the first `=` on a line with an odd value.
    ReplaceValue(usize, usize),
    /// Keep only the first (n mod len) characters.
    Truncate(usize),
    /// Insert a character at a character position.
    Insert(usize, char),
}

/// Any damage, with indexes reduced modulo the text's size when applied.
pub fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        any::<usize>().prop_map(Damage::DeleteLine),
        any::<usize>().prop_map(Damage::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Damage::SwapLines(a, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Damage::ReplaceValue(a, b)),
        any::<usize>().prop_map(Damage::Truncate),
        (any::<usize>(), any::<char>()).prop_map(|(a, c)| Damage::Insert(a, c)),
    ]
}

/// Applies every damage in turn.
pub fn apply(text: &str, damages: &[Damage]) -> String {
    let mut text = text.to_string();
    for d in damages {
        text = apply_one(&text, d);
    }
    text
}

fn apply_one(text: &str, d: &Damage) -> String {
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    let n = lines.len();
    match *d {
        Damage::DeleteLine(i) => {
            lines.remove(i % n);
        }
        Damage::DuplicateLine(i) => {
            let l = lines[i % n].clone();
            lines.insert(i % n, l);
        }
        Damage::SwapLines(a, b) => lines.swap(a % n, b % n),
        Damage::ReplaceValue(i, v) => {
            let line = &mut lines[i % n];
            if let Some(eq) = line.find('=') {
                *line = format!("{}= {}", &line[..eq], ODD_VALUES[v % ODD_VALUES.len()]);
            }
        }
        Damage::Truncate(k) => {
            let chars = text.chars().count().max(1);
            return text.chars().take(k % chars).collect();
        }
        Damage::Insert(k, c) => {
            let mut chars: Vec<char> = text.chars().collect();
            chars.insert(k % (chars.len() + 1), c);
            return chars.into_iter().collect();
        }
    }
    lines.join("\n")
}
