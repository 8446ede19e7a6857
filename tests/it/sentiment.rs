//! Sentiment: the training data as shipped in ../shared.

use verbatim::sentiment::data::{self, Label};

use crate::common::shared_dir;

#[test]
fn shared_sentiment_data_loads_with_the_documented_sizes() {
    let Some(shared) = shared_dir() else {
        eprintln!("SKIPPED shared_sentiment_data_loads_with_the_documented_sizes: ../shared is absent");
        return;
    };
    let d = data::load(&shared.join("data")).unwrap();
    // 23,486 reviews − 845 empty = 22,641: every tenth row id is dev.
    assert_eq!(d.sst2_dev.len(), 872);
    assert_eq!(d.train.len() + d.reviews_dev.len() + d.reviews_calibration.len(), 6_920 + 2_000 + 22_641);
    assert!((2_200..2_330).contains(&d.reviews_dev.len()), "{}", d.reviews_dev.len());
    assert!((1_080..1_180).contains(&d.reviews_calibration.len()), "{}", d.reviews_calibration.len());
    assert!(d.sst2_dev.iter().all(|e| e.label != Label::Neutral));
    assert!(d.train.iter().all(|e| !e.text.contains(" n't") && !e.text.contains("-lrb-")), "SST-2 is detokenised");
    for label in Label::ALL {
        assert!(d.train.iter().filter(|e| e.label == label).count() > 1_000, "{label:?}");
    }
}
