//! Which segments are set aside as not English, measured on real English text (`../shared`) and
//! on the foreign feedback fixture. Run with `-- --nocapture` to read the figures.

use std::path::Path;

use verbatim::language::of_segments;
use verbatim::text::split_verbatim;

use crate::common::shared_dir;

/// Segments of `text` as the service cuts them, and how many of them are judged not English.
fn judged(text: &str) -> (usize, usize) {
    let split = split_verbatim(text);
    let segments: Vec<&str> = split.segment_texts().collect();
    (segments.len(), of_segments(&segments).iter().filter(|l| l.is_some()).count())
}

fn column(path: &Path, index: usize) -> Vec<String> {
    csv::Reader::from_path(path).unwrap().records().map(|r| r.unwrap()[index].to_string()).collect()
}

fn tally(texts: &[String]) -> (usize, usize) {
    texts.iter().map(|t| judged(t)).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

#[test]
fn foreign_feedback_is_set_aside_and_english_customer_text_almost_never() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/languages.csv");
    let foreign = column(&fixture, 4);
    let whole = foreign.iter().filter(|t| judged(t).0 == judged(t).1).count();
    let (segments, aside) = tally(&foreign);
    eprintln!("languages.csv: {whole} of {} verbatims set aside whole, {aside} of {segments} segments", foreign.len());
    assert!(whole * 10 >= foreign.len() * 8, "only {whole} of {} foreign verbatims set aside", foreign.len());

    // Every English fixture: the sentiment sets (text first) and the themes set (verbatim fifth).
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let index = match name.as_str() {
            "themes.csv" => 4,
            n if n.starts_with("sentiment") && n.ends_with(".csv") => 0,
            _ => continue,
        };
        let (segments, aside) = tally(&column(&dir.join(&name), index));
        assert_eq!(aside, 0, "{name}: {aside} of {segments} English segments set aside");
    }

    let Some(shared) = shared_dir() else {
        eprintln!("SKIPPED the English corpora: ../shared is absent");
        return;
    };
    let (segments, aside) = tally(&column(&shared.join("data/banking77/train.csv"), 0));
    eprintln!("Banking77: {aside} of {segments} segments set aside");
    assert_eq!(aside, 0, "Banking77 is English");
    let (segments, aside) = tally(&column(&shared.join("data/clothing_reviews/reviews.csv"), 4));
    eprintln!("clothing reviews: {aside} of {segments} segments set aside");
    assert!(aside * 10_000 <= segments, "{aside} of {segments} English review segments set aside (at most 1 in 10,000)");
}
