//! The encoder against sentence-transformers' reference vectors: cosine ≥ 0.9999 for every text,
//! one at a time and in mixed batches.

use std::path::Path;

use serde::Deserialize;

use crate::common::{cosine, encoder, shared_dir};

#[derive(Deserialize)]
struct Reference {
    text: String,
    tokens_untruncated: usize,
    embedding: Vec<f32>,
}

fn load(path: &Path) -> Vec<Reference> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const MIN_COSINE: f32 = 0.9999;

fn check_one_at_a_time(refs: &[Reference]) {
    let encoder = encoder();
    for r in refs {
        let got = encoder.embed(&[r.text.as_str()]).unwrap().remove(0);
        assert_eq!(got.tokens, r.tokens_untruncated.min(256), "token count of {:?}", r.text);
        assert_eq!(got.vector.len(), 384);
        let c = cosine(&got.vector, &r.embedding);
        assert!(c >= MIN_COSINE, "cosine {c} < {MIN_COSINE} for {:?}", r.text);
    }
}

/// Batches of 32 that mix short and long texts (interleaving both ends of the file), so padding
/// and sorting are exercised.
fn check_mixed_batches(refs: &[Reference]) {
    let encoder = encoder();
    let n = refs.len();
    let order: Vec<usize> = (0..n).map(|i| if i % 2 == 0 { i / 2 } else { n - 1 - i / 2 }).collect();
    for chunk in order.chunks(32) {
        let texts: Vec<&str> = chunk.iter().map(|&i| refs[i].text.as_str()).collect();
        let got = encoder.embed(&texts).unwrap();
        for (&i, e) in chunk.iter().zip(&got) {
            let c = cosine(&e.vector, &refs[i].embedding);
            assert!(c >= MIN_COSINE, "batched cosine {c} < {MIN_COSINE} for {:?}", refs[i].text);
        }
    }
}

#[test]
fn fixture_sample_matches_reference_alone_and_batched() {
    let refs = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/minilm_reference_sample.jsonl"));
    assert!(refs.len() >= 8);
    check_one_at_a_time(&refs);
    check_mixed_batches(&refs);
}

#[test]
fn shared_reference_matches_alone_and_in_batches_of_32() {
    let Some(shared) = shared_dir() else {
        eprintln!("SKIPPED shared_reference_matches_alone_and_in_batches_of_32: ../shared is absent (it holds the 176 reference vectors)");
        return;
    };
    let refs = load(&shared.join("reference/minilm_reference.jsonl"));
    assert_eq!(refs.len(), 176);
    check_one_at_a_time(&refs);
    check_mixed_batches(&refs);
}

#[test]
fn a_vector_does_not_depend_on_its_batch_mates() {
    let encoder = encoder();
    let alone = encoder.embed(&["the invoice was wrong twice"]).unwrap().remove(0).vector;
    let long = "the delivery was late and nobody answered the phone ".repeat(20);
    let batched = encoder.embed(&[long.as_str(), "the invoice was wrong twice", "ok"]).unwrap().remove(1).vector;
    assert!(cosine(&alone, &batched) >= 0.99999, "{}", cosine(&alone, &batched));
}
