//! k-means over segment embeddings: linfa-clustering fits the centroids on a seeded sample, then
//! every segment is assigned by dot product (the vectors are unit length, so the nearest centroid
//! in L2 is the most cosine-similar one) and the centroids are refined on all segments.
//!
//! Fitting on a sample keeps linfa's cost bounded whatever the window holds; the full-data Lloyd
//! steps recover what the sample missed.

use linfa::prelude::*;
use linfa::DatasetBase;
use linfa_clustering::{KMeans, KMeansInit};
use ndarray::Array2;
use rand_xoshiro::rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256Plus;

use super::labels::dot;

/// Most segments linfa fits on; the rest are assigned.
pub const FIT_SAMPLE: usize = 6000;
/// Lloyd iterations on all segments after the sample fit.
const FULL_DATA_STEPS: usize = 3;

/// A clustering: unit-length centroids and each vector's cluster and similarity to it.
#[derive(Debug, Clone)]
pub struct Clustering {
    pub centroids: Vec<Vec<f32>>,
    pub labels: Vec<usize>,
    pub similarity: Vec<f32>,
}

/// Clusters unit vectors into `k` groups, deterministically for a given `seed`.
pub fn kmeans(vectors: &[&[f32]], k: usize, seed: u64) -> Result<Clustering, String> {
    let n = vectors.len();
    if n == 0 {
        return Ok(Clustering { centroids: Vec::new(), labels: Vec::new(), similarity: Vec::new() });
    }
    let k = k.clamp(1, n);
    let dim = vectors[0].len();
    let sample = seeded_sample(n, FIT_SAMPLE.max(k), seed);
    let mut records = Array2::<f32>::zeros((sample.len(), dim));
    for (row, &i) in sample.iter().enumerate() {
        records.row_mut(row).assign(&ndarray::ArrayView1::from(vectors[i]));
    }
    let dataset = DatasetBase::from(records);
    let model = KMeans::params_with_rng(k, Xoshiro256Plus::seed_from_u64(seed))
        .n_runs(1)
        .max_n_iterations(100)
        .tolerance(1e-4)
        .init_method(KMeansInit::KMeansPlusPlus)
        .fit(&dataset)
        .map_err(|e| format!("k-means failed: {e}"))?;
    let mut centroids: Vec<Vec<f32>> = model.centroids().rows().into_iter().map(|r| normalized(r.to_vec())).collect();
    let mut clustering = assign(vectors, &centroids);
    for _ in 0..FULL_DATA_STEPS {
        centroids = means(vectors, &clustering.labels, &centroids);
        clustering = assign(vectors, &centroids);
    }
    Ok(clustering)
}

/// Each vector's most similar centroid.
pub fn assign(vectors: &[&[f32]], centroids: &[Vec<f32>]) -> Clustering {
    let mut labels = Vec::with_capacity(vectors.len());
    let mut similarity = Vec::with_capacity(vectors.len());
    for v in vectors {
        let (best, sim) = nearest(v, centroids);
        labels.push(best);
        similarity.push(sim);
    }
    Clustering { centroids: centroids.to_vec(), labels, similarity }
}

/// The index and cosine similarity of the centroid nearest to `v` (`(0, −1)` with no centroids).
pub fn nearest(v: &[f32], centroids: &[Vec<f32>]) -> (usize, f32) {
    let mut best = (0, -1.0f32);
    for (c, centroid) in centroids.iter().enumerate() {
        let s = dot(v, centroid);
        if s > best.1 {
            best = (c, s);
        }
    }
    best
}

/// Unit-length means of each cluster; an emptied cluster keeps its previous centroid.
fn means(vectors: &[&[f32]], labels: &[usize], previous: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let dim = previous.first().map_or(0, Vec::len);
    let mut sums = vec![vec![0f32; dim]; previous.len()];
    let mut counts = vec![0usize; previous.len()];
    for (v, &l) in vectors.iter().zip(labels) {
        counts[l] += 1;
        for (s, x) in sums[l].iter_mut().zip(v.iter()) {
            *s += x;
        }
    }
    sums.into_iter()
        .zip(counts)
        .zip(previous)
        .map(|((sum, count), prev)| if count == 0 { prev.clone() } else { normalized(sum) })
        .collect()
}

pub fn normalized(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

/// `count` distinct indices of `0..n` (all of them when `count ≥ n`), in increasing order.
fn seeded_sample(n: usize, count: usize, seed: u64) -> Vec<usize> {
    if count >= n {
        return (0..n).collect();
    }
    use rand_xoshiro::rand_core::RngCore;
    let mut rng = Xoshiro256Plus::seed_from_u64(seed ^ 0x5eed);
    // Partial Fisher–Yates shuffle.
    let mut idx: Vec<usize> = (0..n).collect();
    for i in 0..count {
        let j = i + (rng.next_u64() % (n - i) as u64) as usize;
        idx.swap(i, j);
    }
    let mut out = idx[..count].to_vec();
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three tight groups around three axes: k-means must find them, and the same seed must give
    /// the same answer.
    #[test]
    fn finds_planted_groups_deterministically() {
        let mut vectors = Vec::new();
        for g in 0..3 {
            for i in 0..50 {
                let mut v = vec![0.02 * ((i % 7) as f32 - 3.0); 8];
                v[g] = 1.0;
                vectors.push(normalized(v));
            }
        }
        let refs: Vec<&[f32]> = vectors.iter().map(Vec::as_slice).collect();
        let a = kmeans(&refs, 3, 7).unwrap();
        let b = kmeans(&refs, 3, 7).unwrap();
        assert_eq!(a.labels, b.labels);
        for g in 0..3 {
            let first = a.labels[g * 50];
            assert!(a.labels[g * 50..(g + 1) * 50].iter().all(|&l| l == first), "group {g} split");
        }
        let distinct: std::collections::HashSet<_> = a.labels.iter().collect();
        assert_eq!(distinct.len(), 3);
        assert!(a.similarity.iter().all(|&s| s > 0.9));
    }

    #[test]
    fn sample_is_distinct_and_bounded() {
        let s = seeded_sample(1000, 100, 1);
        assert_eq!(s.len(), 100);
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(seeded_sample(10, 100, 1), (0..10).collect::<Vec<_>>());
    }
}
