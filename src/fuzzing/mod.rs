//! Thin entry points into the parsers, for the cargo-fuzz targets in `fuzz/` and the property
//! tests in `tests/parsers_fuzz/`. Each takes raw input and runs it through the same code the
//! daemon and `mpsync check` use; bad input must come back as an error, never a panic.
//!
//! Not a supported API: hidden from the docs, and free to change with the parsers.

mod upstream;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use upstream::{
    Answer, DecodeError, Decoded, FUZZ_SECRET, decode, split_input, upstream_bytes,
};

use crate::billing::{Billed, CsvError, parse_csv};
use crate::config::{
    Config, ConfigError, LoadOptions, Mapping, MappingError, load_text, redacted_toml_annotated,
};

/// The file name the config text is loaded as (it appears in problems).
pub const CONFIG_PATH: &str = "/etc/mpsync/mpsync.toml";

/// The file name mapping text is parsed as.
pub const MAPPING_PATH: &str = "mapping.toml";

/// The file name CSV bytes are parsed as.
pub const CSV_FILE: &str = "billed.csv";

/// Loads config `text` as `mpsync check -c /etc/mpsync/mpsync.toml` would, with an empty
/// environment and no flags: merge, validate (secret files named in the text are looked
/// at), and on success render the redacted `mpsync config` view too.
pub fn config_text(text: &str) -> Result<(Config, String), ConfigError> {
    config_text_with_env(text, HashMap::new())
}

/// Like [`config_text`] with a given environment (e.g. `CREDENTIALS_DIRECTORY`).
pub fn config_text_with_env(
    text: &str,
    env: HashMap<String, String>,
) -> Result<(Config, String), ConfigError> {
    let opts = LoadOptions { path: PathBuf::from(CONFIG_PATH), env, overrides: Vec::new() };
    let (cfg, provenance) = load_text(text, &opts)?;
    let rendered = redacted_toml_annotated(&cfg, &provenance);
    Ok((cfg, rendered))
}

/// Parses mapping `text` as the daemon reads `[reconcile] mapping_file`; on success also
/// builds the one-line `mpsync check` summary.
pub fn mapping_text(text: &str) -> Result<(Mapping, String), MappingError> {
    let mapping = Mapping::parse(Path::new(MAPPING_PATH), text)?;
    let summary = mapping.describe();
    Ok((mapping, summary))
}

/// Parses billing CSV `bytes` as the CSV billing source does, and renders the error the
/// operator would see.
pub fn csv_bytes(bytes: &[u8]) -> Result<Billed, CsvError> {
    parse_csv(CSV_FILE, bytes)
}

/// Config text from arbitrary bytes the way the loader sees a file: invalid UTF-8 is a read
/// error before any parsing, so the fuzz targets only feed valid UTF-8 (lossily converted).
pub fn text_of(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// [`config_text`] on arbitrary bytes, panicking when the outcome breaks a rule: an error
/// must list at least one problem, and each must name its key and say what is wrong.
pub fn check_config(bytes: &[u8]) {
    if let Err(e) = config_text(&text_of(bytes)) {
        assert!(!e.problems.is_empty(), "a config error without problems: {e}");
        for p in &e.problems {
            assert!(!p.key.trim().is_empty(), "a config problem names no key: {p:?}");
            assert!(!p.message.trim().is_empty(), "a config problem says nothing: {p:?}");
        }
        let _ = format!("{e:#}");
    }
}

/// [`mapping_text`] on arbitrary bytes, panicking when an error lists no problem or one
/// whose line or column lies outside the text.
pub fn check_mapping(bytes: &[u8]) {
    let text = text_of(bytes);
    if let Err(e) = mapping_text(&text) {
        let MappingError::Invalid { problems, .. } = &e else {
            panic!("parsing text gave a file error: {e}");
        };
        assert!(!problems.is_empty(), "a mapping error without problems");
        let lines = text.split('\n').count();
        for p in problems {
            assert!((1..=lines).contains(&p.line), "line {} of {lines}: {p:?}", p.line);
            assert!(p.column >= 1, "column 0: {p:?}");
            assert!(!p.message.trim().is_empty(), "a mapping problem says nothing: {p:?}");
        }
        let _ = e.to_string();
    }
}

/// [`csv_bytes`] on arbitrary bytes, panicking when an error lists no problem or one outside
/// the file's lines, or when accepted lines are not finite quantities from 0 to
/// [`MAX_QUANTITY`](crate::billing::csv::MAX_QUANTITY).
pub fn check_csv(bytes: &[u8]) {
    let lines = bytes.split(|b| *b == b'\n').count() as u64;
    match csv_bytes(bytes) {
        Err(e) => {
            assert!(!e.problems.is_empty(), "a CSV error without problems");
            for p in &e.problems {
                assert!((1..=lines).contains(&p.line), "line {} of {lines}: {p:?}", p.line);
                assert!(!p.message.trim().is_empty(), "a CSV problem says nothing: {p:?}");
            }
            let _ = e.to_string();
        }
        Ok(billed) => {
            for l in &billed.lines {
                assert!(l.quantity.is_finite() && l.quantity >= 0.0, "{l:?}");
                assert!(l.quantity <= crate::billing::csv::MAX_QUANTITY, "{l:?}");
                assert!(l.unit_price.is_none_or(|p| p.is_finite() && p >= 0.0), "{l:?}");
                assert!(!l.account_id.is_empty() && !l.product_id.is_empty(), "{l:?}");
            }
        }
    }
}

/// [`upstream_bytes`] on arbitrary bytes, panicking when an error does not name the endpoint
/// or shows the client's credential anywhere.
pub fn check_upstream(bytes: &[u8]) {
    let (answer, ..) = split_input(bytes);
    match upstream_bytes(bytes) {
        Err(e) => {
            let shown = e.to_string();
            assert!(shown.contains(answer.endpoint().pattern), "no endpoint named: {shown}");
            assert!(!shown.contains(FUZZ_SECRET), "the credential leaked: {shown}");
            assert!(!format!("{e:?}").contains(FUZZ_SECRET), "the credential leaked: {e:?}");
        }
        Ok(Decoded::Transient { message }) => {
            assert!(!message.contains(FUZZ_SECRET), "the credential leaked: {message}");
        }
        Ok(_) => {}
    }
}
