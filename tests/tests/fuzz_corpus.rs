//! Replays every saved fuzz input through its entry point on stable, as part of the
//! normal `cargo test --workspace`: the corpus in `fuzz/corpus/<target>/` (hand-made
//! `seed-*` inputs plus what the fuzzers found, minimised with libFuzzer's `-merge=1`;
//! about 6 700 inputs, replayed in a few seconds) and every input that ever crashed a
//! target, kept in `fuzz/regressions/<target>/`. So a crash found once by
//! `cargo +nightly fuzz` stays fixed even where nightly is missing.
//!
//! `cargo test -p hearth-tests --test fuzz_corpus -- --ignored` (re)writes the seeds
//! from `hearth_tests::fuzzing::seed_corpus`.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use hearth_tests::fuzzing::{seed_corpus, target, TARGETS};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("fuzz")
}

/// Runs every file under `fuzz/<kind>/<target>/` and returns how many ran.
fn replay(kind: &str) -> usize {
    let root = fuzz_dir().join(kind);
    let Ok(dirs) = std::fs::read_dir(&root) else {
        return 0;
    };
    let mut ran = 0;
    for dir in dirs {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let run = target(&name).unwrap_or_else(|| {
            panic!(
                "{} is not a fuzz target; the targets are {:?}",
                dir.display(),
                TARGETS.iter().map(|(n, _)| n).collect::<Vec<_>>()
            )
        });
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for file in files {
            let bytes = std::fs::read(&file).unwrap();
            // A panic names the input, so it can be run alone under the fuzzer.
            let result = std::panic::catch_unwind(|| run(&bytes));
            if let Err(panic) = result {
                let why = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panic!("{} fails: {why}", file.display());
            }
            ran += 1;
        }
    }
    ran
}

#[test]
fn the_seed_corpus_and_every_regression_pass() {
    let corpus = replay("corpus");
    let regressions = replay("regressions");
    eprintln!("replayed {corpus} corpus inputs and {regressions} regressions");
    for (name, _) in TARGETS {
        let dir = fuzz_dir().join("corpus").join(name);
        assert!(
            dir.is_dir() && std::fs::read_dir(&dir).unwrap().next().is_some(),
            "fuzz/corpus/{name}/ is empty; run this test with --ignored to seed it"
        );
    }
}

#[test]
#[ignore = "writes the seed corpus into fuzz/corpus/"]
fn write_seed_corpus() {
    for (name, label, bytes) in seed_corpus() {
        let dir = fuzz_dir().join("corpus").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{label}")), bytes).unwrap();
    }
}
