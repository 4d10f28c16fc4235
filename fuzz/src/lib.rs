//! What the fuzz targets feed mpsync and the rules its outside-input readers must keep. Each
//! `check_*` takes raw bytes, runs them through mpsync's own public functions — the config
//! loader, the mapping and billing CSV parsers, the upstream clients' answer interpreter and
//! decoders — and panics when the outcome breaks a rule (bad input must come back as an error
//! that says where, never as a panic).
//!
//! No mpsync logic is repeated here: this only chooses the input and checks the outcome. The
//! property tests (`tests/parsers_fuzz/`) compile this same file, so `cargo test` holds the
//! parsers to the rules the fuzzers do.
#![forbid(unsafe_code)]

mod upstream;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use mpsync::billing::csv::MAX_QUANTITY;
use mpsync::billing::{Billed, CsvError, parse_csv};
use mpsync::config::{
    Config, ConfigError, LoadOptions, Mapping, MappingError, load_text_with_provenance,
    redacted_toml_annotated,
};

pub use upstream::{
    DecodeError, Decoded, FUZZ_SECRET, Target, check_upstream, decode, upstream_bytes,
};

/// The file name config text is loaded as (it appears in problems).
pub const CONFIG_PATH: &str = "/etc/mpsync/mpsync.toml";

/// The file name mapping text is parsed as.
pub const MAPPING_PATH: &str = "mapping.toml";

/// The file name CSV bytes are parsed as.
pub const CSV_FILE: &str = "billed.csv";

/// Loads config `text` as `mpsync check -c /etc/mpsync/mpsync.toml` would, with an empty
/// environment and no flags: merge, validate (secret files named in the text are looked at),
/// and on success render the redacted `mpsync config` view too.
pub fn config_text(text: &str) -> Result<(Config, String), ConfigError> {
    let opts = LoadOptions {
        path: PathBuf::from(CONFIG_PATH),
        env: HashMap::new(),
        overrides: Vec::new(),
    };
    let (cfg, provenance) = load_text_with_provenance(text, &opts)?;
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

/// Parses billing CSV `bytes` as the CSV billing source does.
pub fn csv_bytes(bytes: &[u8]) -> Result<Billed, CsvError> {
    parse_csv(CSV_FILE, bytes)
}

/// Text from arbitrary bytes the way the loaders see a file: invalid UTF-8 is a read error
/// before any parsing, so the text parsers are only fed valid UTF-8 (lossily converted).
fn text_of(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
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
/// [`MAX_QUANTITY`].
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
                assert!(l.quantity <= MAX_QUANTITY, "{l:?}");
                assert!(l.unit_price.is_none_or(|p| p.is_finite() && p >= 0.0), "{l:?}");
                assert!(!l.account_id.is_empty() && !l.product_id.is_empty(), "{l:?}");
            }
        }
    }
}
