//! The fuzz targets' seed corpus (`fuzz/corpus/<target>/seed-*`) stays meaningful: every
//! seed keeps the targets' rules, and the seeds that are good answers still decode.

use std::path::Path;

use super::harness::{
    Decoded, check_config, check_csv, check_mapping, check_upstream, upstream_bytes,
};

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("seed-")))
        .map(|p| {
            (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out
}

#[test]
fn every_seed_keeps_its_targets_rules() {
    for (_, b) in seeds("config") {
        check_config(&b);
    }
    for (_, b) in seeds("mapping") {
        check_mapping(&b);
    }
    for (_, b) in seeds("csv") {
        check_csv(&b);
    }
    for (_, b) in seeds("upstream") {
        check_upstream(&b);
    }
}

#[test]
fn the_good_answer_seeds_decode_and_the_error_seeds_do_not() {
    for (name, b) in seeds("upstream") {
        let got = upstream_bytes(&b);
        let error_seed = ["-401", "-404", "-429", "-500"].iter().any(|s| name.ends_with(s));
        match (error_seed, &got) {
            (false, Ok(Decoded::Page { items, .. })) => assert!(*items > 0, "{name}: {got:?}"),
            (true, Err(_) | Ok(Decoded::RateLimited { .. } | Decoded::Transient { .. })) => {}
            _ => panic!("{name}: {got:?}"),
        }
    }
    let (_, mapping) = &seeds("mapping")[0];
    super::harness::mapping_text(std::str::from_utf8(mapping).unwrap())
        .expect("the example mapping is valid");
    let (_, clean) = seeds("csv").into_iter().find(|(n, _)| n.contains("clean")).unwrap();
    assert_eq!(super::harness::csv_bytes(&clean).unwrap().lines.len(), 3);
}
