//! Scoring a clustering against known labels: normalised mutual information (arithmetic-mean
//! normalisation, as scikit-learn's default) and the adjusted Rand index (Hubert & Arabie 1985).

use std::collections::HashMap;

use super::recluster::Outcome;
use super::{is_reserved, NO_CONTENT};

/// A recluster scored against known categories of the responses its segments came from.
#[derive(Debug, Clone)]
pub struct ThemeEval {
    pub responses: usize,
    pub segments: usize,
    pub categories: usize,
    pub k: usize,
    /// Each response's primary theme (of its longest segment with content) against its category.
    pub nmi: f64,
    pub ari: f64,
    /// Each segment's theme against its response's category.
    pub segment_nmi: f64,
    /// Share of themes whose top-3 keywords share a word with the name of their dominant category.
    pub keyword_hits: f64,
}

/// Scores `outcome` (over segments `texts`, which came from response `response_of[i]`) against
/// `categories[response]` (indices into `names`, whose words the keyword check looks for).
pub fn score_outcome(outcome: &Outcome, texts: &[&str], response_of: &[usize], categories: &[usize], names: &[String]) -> ThemeEval {
    let themes: Vec<i64> = outcome.assignments.iter().map(|a| a.0).collect();
    let segment_truth: Vec<usize> = response_of.iter().map(|&r| categories[r]).collect();
    // Reserved themes (no content −1 + 1, not English) are labels like any other here.
    let segment_pred: Vec<usize> = themes.iter().map(|&t| (t + 1) as usize).collect();
    // Primary theme: the longest segment with content decides; a response with none is no_content.
    let mut primary: Vec<(usize, i64)> = vec![(0, NO_CONTENT); categories.len()];
    for (i, &r) in response_of.iter().enumerate() {
        let len = texts[i].chars().count();
        if !is_reserved(themes[i]) && len > primary[r].0 {
            primary[r] = (len, themes[i]);
        }
    }
    let response_pred: Vec<usize> = primary.iter().map(|p| (p.1 + 1) as usize).collect();
    let mut dominant: HashMap<i64, HashMap<usize, usize>> = HashMap::new();
    for (&t, &c) in themes.iter().zip(&segment_truth) {
        *dominant.entry(t).or_default().entry(c).or_default() += 1;
    }
    let real: Vec<_> = outcome.model.themes.iter().filter(|t| !is_reserved(t.id)).collect();
    let hits = real
        .iter()
        .filter(|t| {
            let Some(top) = dominant.get(&t.id).and_then(|c| c.iter().max_by_key(|(c, n)| (**n, std::cmp::Reverse(**c)))) else {
                return false;
            };
            let wanted = super::labels::words(&names[*top.0].replace('_', " "));
            t.keywords.iter().take(3).flat_map(|k| super::labels::words(k)).any(|w| wanted.iter().any(|x| stem_eq(x, &w)))
        })
        .count();
    ThemeEval {
        responses: categories.len(),
        segments: texts.len(),
        categories: names.len(),
        k: outcome.model.k,
        nmi: nmi(categories, &response_pred),
        ari: ari(categories, &response_pred),
        segment_nmi: nmi(&segment_truth, &segment_pred),
        keyword_hits: hits as f64 / real.len().max(1) as f64,
    }
}

/// Same word up to a plural or verb ending ("card" ~ "cards", "charge" ~ "charged").
fn stem_eq(a: &str, b: &str) -> bool {
    let stem = |w: &str| w.trim_end_matches("ing").trim_end_matches("ed").trim_end_matches('s').trim_end_matches('e').to_string();
    a == b || (a.len() > 3 && b.len() > 3 && stem(a) == stem(b))
}

/// NMI = I(X; Y) / ((H(X) + H(Y)) / 2), in [0, 1].
pub fn nmi(truth: &[usize], predicted: &[usize]) -> f64 {
    let n = truth.len() as f64;
    if truth.is_empty() {
        return 0.0;
    }
    let (joint, a, b) = contingency(truth, predicted);
    let entropy = |counts: &HashMap<usize, f64>| -counts.values().map(|&c| (c / n) * (c / n).ln()).sum::<f64>();
    let (ha, hb) = (entropy(&a), entropy(&b));
    let mi: f64 = joint.iter().map(|(&(i, j), &c)| (c / n) * ((c * n) / (a[&i] * b[&j])).ln()).sum();
    if ha + hb == 0.0 {
        1.0
    } else {
        (mi / ((ha + hb) / 2.0)).clamp(0.0, 1.0)
    }
}

/// ARI: the Rand index corrected for chance; 1 for identical partitions, ≈0 for random ones.
pub fn ari(truth: &[usize], predicted: &[usize]) -> f64 {
    let pairs = |x: f64| x * (x - 1.0) / 2.0;
    let (joint, a, b) = contingency(truth, predicted);
    let index: f64 = joint.values().map(|&c| pairs(c)).sum();
    let sum_a: f64 = a.values().map(|&c| pairs(c)).sum();
    let sum_b: f64 = b.values().map(|&c| pairs(c)).sum();
    let expected = sum_a * sum_b / pairs(truth.len() as f64);
    let max = (sum_a + sum_b) / 2.0;
    if max == expected {
        1.0
    } else {
        (index - expected) / (max - expected)
    }
}

type Counts = HashMap<usize, f64>;

fn contingency(truth: &[usize], predicted: &[usize]) -> (HashMap<(usize, usize), f64>, Counts, Counts) {
    let mut joint = HashMap::new();
    let (mut a, mut b) = (HashMap::new(), HashMap::new());
    for (&t, &p) in truth.iter().zip(predicted) {
        *joint.entry((t, p)).or_insert(0.0) += 1.0;
        *a.entry(t).or_insert(0.0) += 1.0;
        *b.entry(p).or_insert(0.0) += 1.0;
    }
    (joint, a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_and_relabelled_partitions_score_one() {
        let t = [0, 0, 1, 1, 2, 2];
        assert!((nmi(&t, &[5, 5, 3, 3, 9, 9]) - 1.0).abs() < 1e-12);
        assert!((ari(&t, &[5, 5, 3, 3, 9, 9]) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn hand_computed_case() {
        // scikit-learn: normalized_mutual_info_score([0,0,0,1,1,1],[0,0,1,1,2,2]) = 0.5158,
        // adjusted_rand_score(...) = 0.2424.
        let (t, p) = ([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 2, 2]);
        assert!((nmi(&t, &p) - 0.515_803).abs() < 1e-5, "{}", nmi(&t, &p));
        assert!((ari(&t, &p) - 0.242_424).abs() < 1e-5, "{}", ari(&t, &p));
    }
}
