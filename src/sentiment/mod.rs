//! Sentence-level sentiment (negative / neutral / positive), trained here on the encoder Verbatim
//! runs. Here: what a sentiment is and how a verbatim's segments add up to one ([`aggregate`]);
//! the training data ([`data`], [`sentences`]) and the train / eval commands ([`train`]). The branch itself lives
//! with the encoder in [`crate::model::sentiment`] (only `model` knows candle).

pub mod data;
pub mod feedback;
pub mod labelled;
pub mod sentences;
pub mod train;

pub use data::Label;

use crate::survey::{Scale, SurveyKind};

/// A segment's probability that it reads as clearly positive or clearly negative, for the mixed
/// flag: "love the product" (p ≈ 0.95) and "support is slow" (p ≈ 0.9) in one verbatim.
pub const CLEAR: f32 = 0.6;

/// Calibrated class probabilities of one text, in [`Label`] order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sentiment {
    pub probabilities: [f32; 3],
}

impl Sentiment {
    pub fn new(probabilities: [f32; 3]) -> Self {
        Self { probabilities }
    }

    /// The most probable class.
    pub fn label(&self) -> Label {
        let p = self.probabilities;
        Label::ALL[(0..3).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap_or(1)]
    }

    /// P(positive) − P(negative), in [−1, 1].
    pub fn score(&self) -> f32 {
        self.probabilities[Label::Positive as usize] - self.probabilities[Label::Negative as usize]
    }

    fn clearly(&self, label: Label) -> bool {
        self.probabilities[label as usize] >= CLEAR
    }
}

/// A verbatim's sentiment from its segments'.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Overall {
    /// The segments' probabilities averaged, each weighted by its length in tokens (a long
    /// complaint outweighs a trailing "thanks").
    pub sentiment: Sentiment,
    /// At least one clearly positive and one clearly negative segment ("love the product, support
    /// is slow"): the overall label hides a split the themes should see.
    pub mixed: bool,
}

/// Aggregates `(sentiment, tokens)` per segment; `None` without segments.
pub fn aggregate(segments: &[(Sentiment, usize)]) -> Option<Overall> {
    if segments.is_empty() {
        return None;
    }
    let mut sum = [0f32; 3];
    let mut total = 0f32;
    for (s, tokens) in segments {
        let w = (*tokens).max(1) as f32;
        sum.iter_mut().zip(s.probabilities).for_each(|(acc, p)| *acc += w * p);
        total += w;
    }
    let mixed = segments.iter().any(|(s, _)| s.clearly(Label::Positive)) && segments.iter().any(|(s, _)| s.clearly(Label::Negative));
    Some(Overall { sentiment: Sentiment::new(sum.map(|x| x / total)), mixed })
}

/// The sentiment a score states without doubt, for adapting the branch to a workspace's own
/// language: NPS 0–4 negative and 9–10 positive; CSAT and CES bottom box negative and top box
/// positive (CES: higher = easier). Everything in between says too little and gives `None`.
pub fn label_from_score(survey: SurveyKind, scale: Scale, score: f64) -> Option<Label> {
    let (min, max) = (f64::from(scale.min), f64::from(scale.max));
    match survey {
        SurveyKind::Nps if score <= min + 0.4 * (max - min) => Some(Label::Negative),
        SurveyKind::Nps if score >= min + 0.9 * (max - min) => Some(Label::Positive),
        SurveyKind::Csat | SurveyKind::Ces if score <= min => Some(Label::Negative),
        SurveyKind::Csat | SurveyKind::Ces if score >= max => Some(Label::Positive),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unambiguous_scores_become_labels() {
        let nps = Scale { min: 0, max: 10 };
        let labels: Vec<Option<Label>> = (0..=10).map(|s| label_from_score(SurveyKind::Nps, nps, f64::from(s))).collect();
        let (n, p) = (Some(Label::Negative), Some(Label::Positive));
        assert_eq!(labels, [n, n, n, n, n, None, None, None, None, p, p]);
        let csat = Scale { min: 1, max: 5 };
        let labels: Vec<Option<Label>> = (1..=5).map(|s| label_from_score(SurveyKind::Csat, csat, f64::from(s))).collect();
        assert_eq!(labels, [n, None, None, None, p]);
        assert_eq!(label_from_score(SurveyKind::Csat, Scale { min: 1, max: 10 }, 10.0), p);
        assert_eq!(label_from_score(SurveyKind::Ces, Scale { min: 1, max: 7 }, 1.0), n);
        assert_eq!(label_from_score(SurveyKind::Ces, Scale { min: 1, max: 7 }, 4.0), None);
    }

    const POS: Sentiment = Sentiment { probabilities: [0.05, 0.05, 0.9] };
    const NEG: Sentiment = Sentiment { probabilities: [0.85, 0.1, 0.05] };
    const NEU: Sentiment = Sentiment { probabilities: [0.2, 0.6, 0.2] };
    const LEAN_NEG: Sentiment = Sentiment { probabilities: [0.5, 0.3, 0.2] };

    #[test]
    fn label_and_score_follow_the_probabilities() {
        assert_eq!((POS.label(), NEG.label(), NEU.label()), (Label::Positive, Label::Negative, Label::Neutral));
        assert!((POS.score() - 0.85).abs() < 1e-6 && (NEG.score() + 0.8).abs() < 1e-6 && NEU.score().abs() < 1e-6);
    }

    #[test]
    fn aggregate_weights_segments_by_tokens() {
        assert_eq!(aggregate(&[]), None);
        let one = aggregate(&[(NEG, 12)]).unwrap();
        assert!(!one.mixed);
        for c in 0..3 {
            assert!((one.sentiment.probabilities[c] - NEG.probabilities[c]).abs() < 1e-6, "{one:?}");
        }
        // A long complaint and a short thanks: negative overall, and mixed.
        let o = aggregate(&[(NEG, 30), (POS, 10)]).unwrap();
        assert_eq!(o.sentiment.label(), Label::Negative);
        assert!((o.sentiment.probabilities[0] - (0.85 * 30.0 + 0.05 * 10.0) / 40.0).abs() < 1e-6);
        assert!((o.sentiment.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(o.mixed);
    }

    #[test]
    fn mixed_needs_a_clear_positive_and_a_clear_negative() {
        assert!(aggregate(&[(POS, 8), (NEG, 8)]).unwrap().mixed);
        assert!(aggregate(&[(NEU, 8), (NEG, 8), (POS, 3)]).unwrap().mixed);
        assert!(!aggregate(&[(POS, 8), (NEU, 8)]).unwrap().mixed, "positive and neutral is not mixed");
        assert!(!aggregate(&[(POS, 8), (LEAN_NEG, 8)]).unwrap().mixed, "a lean is not clear");
        assert!(!aggregate(&[(NEG, 8), (NEG, 8)]).unwrap().mixed);
    }
}
