//! Encoder throughput (sentences/s) on a fixed corpus, at several batch sizes.
//!
//! Corpus: the file named by `VERBATIM_BENCH_CORPUS` (one text per line; `benches/compare_embed.sh`
//! writes it from ../shared and runs sentence-transformers on the same file), else the 176 texts of
//! ../shared/reference, else the fixture sample in tests/fixtures. A second group measures what the
//! sentiment branch adds to a pass.

use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use verbatim::model::{BatchOptions, Encoder};

fn corpus() -> Vec<String> {
    if let Some(path) = std::env::var_os("VERBATIM_BENCH_CORPUS") {
        return std::fs::read_to_string(path).expect("corpus file").lines().map(str::to_string).collect();
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let reference = root.join("../shared/reference/minilm_reference.jsonl");
    let path = if reference.is_file() { reference } else { root.join("tests/fixtures/minilm_reference_sample.jsonl") };
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["text"].as_str().unwrap().to_string())
        .collect()
}

fn model_dir() -> PathBuf {
    std::env::var_os("VERBATIM_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(verbatim::model::DEFAULT_MODEL_DIR))
}

fn bench_embed(c: &mut Criterion) {
    let texts = corpus();
    let mut encoder = Some(Encoder::load_or_fetch(&model_dir()).expect("model"));
    let mut group = c.benchmark_group("embed");
    group.sample_size(10).throughput(Throughput::Elements(texts.len() as u64));
    let batches: Vec<usize> = std::env::var("VERBATIM_BENCH_BATCHES")
        .map(|s| s.split(',').map(|b| b.trim().parse().expect("batch size")).collect())
        .unwrap_or_else(|_| vec![8, 32, 64]);
    for max_batch in batches {
        let e = encoder.take().unwrap().with_batch_options(BatchOptions { max_batch, ..BatchOptions::default() });
        group.bench_with_input(BenchmarkId::new("batch", max_batch), &texts, |b, texts| b.iter(|| e.embed(texts).unwrap()));
        encoder = Some(e);
    }
    group.finish();
}

/// What the sentiment branch costs: the same corpus embedded at batch 32 without and with it. The
/// branch re-runs its k top layers on the shared lower layers' output, so the ratio should be about
/// (6 + k) / 6, not 2 (a second full pass). Compare `embed_sentiment/plain` and `…/with_sentiment`.
fn bench_sentiment_cost(c: &mut Criterion) {
    let branch = Path::new(env!("CARGO_MANIFEST_DIR")).join(verbatim::model::sentiment::DEFAULT_DIR);
    if !branch.join(verbatim::model::sentiment::CONFIG_FILE).exists() {
        eprintln!("SKIPPED embed_sentiment: no branch in {}", branch.display());
        return;
    }
    let texts = corpus();
    let plain = Encoder::load_or_fetch(&model_dir()).expect("model");
    let with = Encoder::load_or_fetch(&model_dir()).expect("model").with_sentiment(&branch).expect("branch");
    let mut group = c.benchmark_group("embed_sentiment");
    group.sample_size(10).throughput(Throughput::Elements(texts.len() as u64));
    group.bench_with_input(BenchmarkId::new("plain", 32), &texts, |b, texts| b.iter(|| plain.embed(texts).unwrap()));
    group.bench_with_input(BenchmarkId::new("with_sentiment", 32), &texts, |b, texts| b.iter(|| with.embed(texts).unwrap()));
    group.finish();
}

criterion_group!(benches, bench_embed, bench_sentiment_cost);
criterion_main!(benches);
