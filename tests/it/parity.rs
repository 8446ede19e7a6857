//! The encoder against sentence-transformers' reference vectors: cosine ≥ 0.9999 for every text,
//! one at a time and in mixed batches.

use std::path::Path;

use serde::Deserialize;
use verbatim::model::Embedding;

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

/// Bit for bit, not only close: a text gets the same vector and sentiment alone, in one call with
/// 160 others, and in shuffled calls of 7 beside a long text that pads the whole batch, so a
/// re-import reproduces its recluster and an answer does not depend on the traffic around it.
#[test]
fn a_vector_does_not_depend_on_its_batch_mates() {
    let encoder = encoder();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let texts: Vec<String> = ["sentiment.csv", "sentiment_holdout.csv", "sentiment_blind.csv"]
        .iter()
        .flat_map(|f| csv::Reader::from_path(fixtures.join(f)).unwrap().into_records().map(|r| r.unwrap()[0].to_string()))
        .take(160)
        .collect();
    assert_eq!(texts.len(), 160);
    let bits = |e: &Embedding| {
        let vector: Vec<u32> = e.vector.iter().map(|x| x.to_bits()).collect();
        (vector, e.sentiment.as_ref().map(|s| s.probabilities.map(f32::to_bits)))
    };
    let alone: Vec<_> = texts.iter().map(|t| bits(&encoder.embed(&[t]).unwrap()[0])).collect();
    assert!(alone.iter().all(|(_, sentiment)| sentiment.is_some()), "the test encoder carries the sentiment branch");

    let together: Vec<_> = encoder.embed(&texts).unwrap().iter().map(bits).collect();
    let long = "the delivery was late and nobody answered the phone ".repeat(20);
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| (i * 7919) % texts.len());
    let mut shuffled = vec![None; texts.len()];
    for chunk in order.chunks(7) {
        let mut call: Vec<&str> = chunk.iter().map(|&i| texts[i].as_str()).collect();
        call.insert(call.len() / 2, &long);
        let got = encoder.embed(&call).unwrap();
        let got: Vec<&Embedding> = got.iter().enumerate().filter(|&(j, _)| j != chunk.len() / 2).map(|(_, e)| e).collect();
        for (&i, e) in chunk.iter().zip(got) {
            shuffled[i] = Some(bits(e));
        }
    }
    for (i, text) in texts.iter().enumerate() {
        assert!(together[i] == alone[i], "{text:?}: embedded with 159 others, not the bits it gets alone");
        assert!(shuffled[i].as_ref() == Some(&alone[i]), "{text:?}: embedded beside a long text, not the bits it gets alone");
    }
}
