//! Scoring a clustering against known labels: normalised mutual information (arithmetic-mean
//! normalisation, as scikit-learn's default) and the adjusted Rand index (Hubert & Arabie 1985).

use std::collections::HashMap;

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
