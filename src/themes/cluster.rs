//! Clustering segment embeddings into themes: linfa k-means in the spectral embedding of the
//! segments' neighbour graph ([`super::spectral`]), fitted on a seeded sample, with k chosen by
//! silhouette when not given, and warm-started from the previous theme model so that a weekly
//! re-run lands in the same solution unless the data moved.
//!
//! Segments outside the sample are assigned to the nearest theme centroid by one matrix product
//! (centroids are unit-length means of the members' embeddings, so nearest in L2 = most
//! cosine-similar). The sample bounds the cost whatever the window holds: the neighbour graph is
//! quadratic in the sample, everything else linear in the data.

use linfa::prelude::*;
use linfa::DatasetBase;
use linfa_clustering::{KMeans, KMeansInit};
use ndarray::{Array2, ArrayView1, ArrayView2, Axis};
use rand_xoshiro::rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256Plus;

use super::labels::dot;
use super::spectral;

/// Most segments the graph is built on; the rest are assigned to the nearest centroid.
pub const FIT_SAMPLE: usize = 16_000;
/// Most rows the silhouette of a candidate k is computed on.
const SCORE_SAMPLE: usize = 2_000;
/// A candidate k within this fraction of the best silhouette counts as good as the best; the
/// smallest such k wins, and the previous model's k is kept when it qualifies (ids stay put unless
/// the data clearly asks for another k). On sentence embeddings the silhouette keeps creeping up
/// with k after the themes stop getting better (Banking77: 0.090 at k = 72, 0.100 at 93, 0.104 at
/// 120, while NMI is flat at 0.80–0.82 from 60 to 150), so "within 5% of the best" picks where the
/// gain flattens; fewer themes are also easier to read.
const SCORE_TOLERANCE: f32 = 0.05;
/// Greedy k-means++ starts of a fit without a previous model; the lowest inertia wins.
const FIT_STARTS: u64 = 4;
/// k-means iterations when scoring a candidate k (the final fit runs to convergence).
const SCORE_ITERATIONS: u64 = 30;

/// How many themes to look for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KChoice {
    Fixed(usize),
    /// Chosen by silhouette among candidates in this inclusive range.
    Auto { min: usize, max: usize },
}

impl Default for KChoice {
    fn default() -> Self {
        KChoice::Auto { min: 10, max: 150 }
    }
}

#[derive(Debug, Clone, Default)]
pub struct FitOptions {
    pub k: KChoice,
    pub seed: u64,
    /// Centroids of the previous model (unit vectors), to warm-start from; may be empty.
    pub warm_start: Vec<Vec<f32>>,
    /// Per row of the data, its cluster in the previous model (an index into `warm_start`), where
    /// known; other rows start at their nearest previous centroid. Empty: none known.
    pub warm_labels: Vec<Option<usize>>,
}

/// A clustering: unit-length centroids and each vector's cluster and similarity to it.
#[derive(Debug, Clone, Default)]
pub struct Clustering {
    pub centroids: Vec<Vec<f32>>,
    pub labels: Vec<usize>,
    pub similarity: Vec<f32>,
    /// The silhouette of each candidate k tried (empty when k was fixed).
    pub k_scores: Vec<(usize, f32)>,
}

/// Clusters the unit-length rows of `x`, deterministically for given options.
pub fn fit(x: ArrayView2<f32>, opts: &FitOptions) -> Result<Clustering, String> {
    let n = x.nrows();
    if n == 0 {
        return Ok(Clustering::default());
    }
    let sample = seeded_sample(n, FIT_SAMPLE, opts.seed);
    let xs = x.select(Axis(0), &sample);
    let started = std::time::Instant::now();
    let graph = spectral::normalized_adjacency(&spectral::nearest_neighbours(xs.view(), spectral::NEIGHBOURS));
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "neighbour graph");
    let embedding = spectral::diffusion_embedding(&graph, opts.seed);
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "diffusion embedding");

    let (k, k_scores) = match opts.k {
        KChoice::Fixed(k) => (k.clamp(1, sample.len()), Vec::new()),
        KChoice::Auto { min, max } => choose_k(&embedding, xs.view(), min, max, opts)?,
    };
    let prior: Vec<Option<usize>> = sample.iter().map(|&i| opts.warm_labels.get(i).copied().flatten()).collect();
    let init = warm_start_centroids(xs.view(), embedding.view(), &opts.warm_start, &prior, k);
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), k, "k chosen");
    let sample_labels = kmeans(embedding, k, opts.seed, init, 300, FIT_STARTS)?;
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "k-means");

    // Theme centroids live in the embedding space of the segments, not the spectral one.
    let mut centroids = vec![vec![0f32; x.ncols()]; k];
    let mut counts = vec![0usize; k];
    for (row, &l) in xs.outer_iter().zip(&sample_labels) {
        counts[l] += 1;
        centroids[l].iter_mut().zip(row.iter()).for_each(|(c, v)| *c += v);
    }
    let keep: Vec<usize> = (0..k).filter(|&c| counts[c] > 0).collect();
    let mut renumber = vec![usize::MAX; k];
    keep.iter().enumerate().for_each(|(new, &old)| renumber[old] = new);
    let centroids: Vec<Vec<f32>> = keep.iter().map(|&c| normalized(std::mem::take(&mut centroids[c]))).collect();

    let mut clustering = assign(x, &centroids);
    for (&i, &l) in sample.iter().zip(&sample_labels) {
        let l = renumber[l];
        clustering.labels[i] = l;
        clustering.similarity[i] = x.row(i).dot(&ArrayView1::from(&centroids[l]));
    }
    clustering.k_scores = k_scores;
    Ok(clustering)
}

/// Candidate k values in `min..=max`: about ten, spaced geometrically.
fn candidates(min: usize, max: usize) -> Vec<usize> {
    let (min, max) = (min.max(2), max.max(min.max(2)));
    let mut out = Vec::new();
    let mut k = min as f64;
    while (k.round() as usize) < max {
        out.push(k.round() as usize);
        k *= (max as f64 / min as f64).powf(1.0 / 9.0).max(1.05);
    }
    out.push(max);
    out.dedup();
    out
}

/// For each candidate k: k-means in the spectral embedding on a sample, scored by the silhouette
/// of that partition in the segments' own embedding space (`xs`), where "well separated" means
/// what a reader would call distinct themes.
fn choose_k(embedding: &Array2<f32>, xs: ArrayView2<f32>, min: usize, max: usize, opts: &FitOptions) -> Result<(usize, Vec<(usize, f32)>), String> {
    let n = embedding.nrows();
    let rows = seeded_sample(n, SCORE_SAMPLE, opts.seed ^ 0x51);
    let e = embedding.select(Axis(0), &rows);
    let original = xs.select(Axis(0), &rows);
    let max = max.min(n / 2).max(1);
    let min = min.min(max);
    let mut ks = candidates(min, max);
    let previous_k = opts.warm_start.len();
    if (min..=max).contains(&previous_k) && !ks.contains(&previous_k) {
        ks.push(previous_k);
        ks.sort_unstable();
    }
    let mut scores = Vec::with_capacity(ks.len());
    for &k in &ks {
        let labels = kmeans(e.clone(), k, opts.seed, None, SCORE_ITERATIONS, 1)?;
        scores.push((k, silhouette(original.view(), &labels, k)));
    }
    let best = scores.iter().map(|s| s.1).fold(f32::MIN, f32::max);
    let good = |s: f32| s >= best - SCORE_TOLERANCE * best.abs();
    let k = scores
        .iter()
        .find(|(k, s)| *k == previous_k && good(*s))
        .or_else(|| scores.iter().find(|(_, s)| good(*s)))
        .map_or(max, |s| s.0);
    Ok((k, scores))
}

/// Mean silhouette (Rousseeuw 1987) of `labels` on the unit rows of `e`, Euclidean distance.
pub fn silhouette(e: ArrayView2<f32>, labels: &[usize], k: usize) -> f32 {
    let n = e.nrows();
    let gram = e.dot(&e.t());
    let mut counts = vec![0usize; k];
    labels.iter().for_each(|&l| counts[l] += 1);
    let mut total = 0.0f64;
    for i in 0..n {
        let mut sums = vec![0f64; k];
        for j in 0..n {
            if i != j {
                sums[labels[j]] += f64::from((2.0 - 2.0 * gram[[i, j]]).max(0.0).sqrt());
            }
        }
        let own = labels[i];
        if counts[own] <= 1 {
            continue; // a singleton's silhouette is 0 by convention
        }
        let a = sums[own] / (counts[own] - 1) as f64;
        let b = (0..k).filter(|&c| c != own && counts[c] > 0).map(|c| sums[c] / counts[c] as f64).fold(f64::INFINITY, f64::min);
        if b.is_finite() {
            total += (b - a) / a.max(b).max(1e-12);
        }
    }
    (total / n as f64) as f32
}

/// Initial spectral centroids from the previous model: the sample is split by its previous cluster
/// (`prior`, else its nearest previous centroid) and each part's mean embedding seeds one cluster
/// (the largest parts when there are more than `k`); the remaining seeds are the rows farthest
/// from every seed so far. Re-running on unchanged data thus starts at — and stays at — the
/// previous partition.
fn warm_start_centroids(xs: ArrayView2<f32>, embedding: ArrayView2<f32>, previous: &[Vec<f32>], prior: &[Option<usize>], k: usize) -> Option<Array2<f32>> {
    if previous.is_empty() {
        return None;
    }
    let mut nearest = assign(xs, previous);
    for (label, known) in nearest.labels.iter_mut().zip(prior) {
        if let Some(&p) = known.as_ref().filter(|&&p| p < previous.len()) {
            *label = p;
        }
    }
    let prior = nearest;
    let dim = embedding.ncols();
    let mut sums = vec![(0usize, vec![0f32; dim]); previous.len()];
    for (row, &l) in embedding.outer_iter().zip(&prior.labels) {
        sums[l].0 += 1;
        sums[l].1.iter_mut().zip(row.iter()).for_each(|(s, v)| *s += v);
    }
    let mut parts: Vec<(usize, Vec<f32>)> = sums.into_iter().filter(|p| p.0 > 0).collect();
    parts.sort_by_key(|p| std::cmp::Reverse(p.0));
    parts.truncate(k);
    let mut seeds: Vec<Vec<f32>> = parts.into_iter().map(|(_, s)| normalized(s)).collect();
    while seeds.len() < k {
        let far = embedding
            .outer_iter()
            .enumerate()
            .map(|(i, row)| (i, seeds.iter().map(|c| row.dot(&ArrayView1::from(c))).fold(f32::MIN, f32::max)))
            .min_by(|a, b| a.1.total_cmp(&b.1))?
            .0;
        seeds.push(embedding.row(far).to_vec());
    }
    Array2::from_shape_vec((k, dim), seeds.concat()).ok()
}

/// Greedy k-means++ (Arthur & Vassilvitskii 2007, with scikit-learn's 2 + ln k local trials): each
/// new centre is the best of a few D²-sampled candidates by the potential it leaves. Plain
/// k-means++ (linfa's) lands in visibly worse optima on theme data (Banking77 NMI −0.003 on
/// average over seeds, with a wider spread).
fn greedy_kmeans_plus_plus(x: &Array2<f32>, k: usize, seed: u64) -> Array2<f32> {
    use rand_xoshiro::rand_core::RngCore;
    let n = x.nrows();
    let mut rng = Xoshiro256Plus::seed_from_u64(seed ^ 0x6b2b);
    let mut uniform = move || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    let trials = 2 + (k as f64).ln() as usize;
    let norms: Vec<f32> = x.outer_iter().map(|r| r.dot(&r)).collect();
    let dist_to = |c: usize| -> Vec<f32> {
        let dots = x.dot(&x.row(c));
        (0..n).map(|i| (norms[i] + norms[c] - 2.0 * dots[i]).max(0.0)).collect()
    };
    let mut centres = vec![((uniform() * n as f64) as usize).min(n - 1)];
    let mut closest = dist_to(centres[0]);
    while centres.len() < k.min(n) {
        let total: f64 = closest.iter().map(|&d| f64::from(d)).sum();
        let mut best: Option<(f64, usize, Vec<f32>)> = None;
        for _ in 0..trials {
            let mut target = uniform() * total;
            let candidate = closest.iter().position(|&d| {
                target -= f64::from(d);
                target <= 0.0
            });
            let candidate = candidate.unwrap_or(n - 1);
            let merged: Vec<f32> = dist_to(candidate).into_iter().zip(&closest).map(|(a, &b)| a.min(b)).collect();
            let potential: f64 = merged.iter().map(|&d| f64::from(d)).sum();
            if best.as_ref().is_none_or(|b| potential < b.0) {
                best = Some((potential, candidate, merged));
            }
        }
        let (_, chosen, merged) = best.expect("at least one trial");
        centres.push(chosen);
        closest = merged;
    }
    x.select(Axis(0), &centres)
}

/// linfa k-means on the rows of `records`, from the given centroids, or else from `starts`
/// greedy k-means++ seedings (seeds `seed`, `seed + 1`, …), keeping the run with the lowest
/// inertia.
fn kmeans(records: Array2<f32>, k: usize, seed: u64, init: Option<Array2<f32>>, max_iterations: u64, starts: u64) -> Result<Vec<usize>, String> {
    let starts = if init.is_some() { 1 } else { starts.max(1) };
    let dataset = DatasetBase::from(records);
    let mut init = init;
    let mut best: Option<(f64, Vec<usize>)> = None;
    for start in 0..starts {
        let centroids = init.take().unwrap_or_else(|| greedy_kmeans_plus_plus(dataset.records(), k, seed.wrapping_add(start)));
        let model = KMeans::params_with_rng(centroids.nrows(), Xoshiro256Plus::seed_from_u64(seed))
            .n_runs(1)
            .max_n_iterations(max_iterations)
            .tolerance(if max_iterations > SCORE_ITERATIONS { 1e-7 } else { 1e-4 })
            .init_method(KMeansInit::Precomputed(centroids))
            .fit(&dataset)
            .map_err(|e| format!("k-means failed: {e}"))?;
        let labels = model.predict(dataset.records()).to_vec();
        let inertia = inertia(dataset.records(), model.centroids(), &labels);
        if best.as_ref().is_none_or(|b| inertia < b.0) {
            best = Some((inertia, labels));
        }
    }
    Ok(best.expect("at least one start").1)
}

/// Sum of squared distances from each row to its centroid.
fn inertia(records: &Array2<f32>, centroids: &Array2<f32>, labels: &[usize]) -> f64 {
    records.outer_iter().zip(labels).map(|(row, &l)| row.iter().zip(centroids.row(l)).map(|(a, b)| f64::from(a - b).powi(2)).sum::<f64>()).sum()
}

/// Each vector's most similar centroid.
pub fn assign(x: ArrayView2<f32>, centroids: &[Vec<f32>]) -> Clustering {
    let mut labels = Vec::with_capacity(x.nrows());
    let mut similarity = Vec::with_capacity(x.nrows());
    if centroids.is_empty() {
        return Clustering { labels: vec![0; x.nrows()], similarity: vec![-1.0; x.nrows()], ..Clustering::default() };
    }
    let c = Array2::from_shape_vec((centroids.len(), x.ncols()), centroids.concat()).expect("centroids match the data's width");
    for block in x.axis_chunks_iter(Axis(0), 4096) {
        let sims = block.dot(&c.t());
        for row in sims.outer_iter() {
            let (best, sim) = row.iter().enumerate().fold((0, f32::MIN), |acc, (i, &s)| if s > acc.1 { (i, s) } else { acc });
            labels.push(best);
            similarity.push(sim);
        }
    }
    Clustering { centroids: centroids.to_vec(), labels, similarity, k_scores: Vec::new() }
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
                let mut v: Vec<f32> = (0..8).map(|d| 0.05 * (((i * 31 + d * 17 + g * 7) % 23) as f32 / 11.0 - 1.0)).collect();
                v[g] = 1.0;
                vectors.push(normalized(v));
            }
        }
        let x = Array2::from_shape_vec((150, 8), vectors.concat()).unwrap();
        let opts = FitOptions { k: KChoice::Fixed(3), seed: 7, ..FitOptions::default() };
        let a = fit(x.view(), &opts).unwrap();
        let b = fit(x.view(), &opts).unwrap();
        assert_eq!(a.labels, b.labels);
        for g in 0..3 {
            let first = a.labels[g * 50];
            assert!(a.labels[g * 50..(g + 1) * 50].iter().all(|&l| l == first), "group {g} split");
        }
        let distinct: std::collections::HashSet<_> = a.labels.iter().collect();
        assert_eq!(distinct.len(), 3);
        assert!(a.similarity.iter().all(|&s| s > 0.9));
    }

    /// Unstructured data has many local optima: of four greedy k-means++ starts the fit keeps the
    /// one with the lowest inertia, which is never worse than the first start alone (the whole
    /// fit with one start) and here strictly better.
    #[test]
    fn several_starts_keep_the_lowest_inertia() {
        use rand_xoshiro::rand_core::RngCore;
        let mut rng = Xoshiro256Plus::seed_from_u64(11);
        let x = Array2::from_shape_fn((600, 6), |_| rng.next_u32() as f32 / u32::MAX as f32);
        let inertia_of = |labels: &[usize]| {
            let mut centroids = Array2::<f32>::zeros((12, 6));
            let mut counts = [0f32; 12];
            for (row, &l) in x.outer_iter().zip(labels) {
                counts[l] += 1.0;
                centroids.row_mut(l).zip_mut_with(&row, |c, v| *c += v);
            }
            centroids.outer_iter_mut().zip(counts).for_each(|(mut c, n)| c.mapv_inplace(|v| v / n.max(1.0)));
            inertia(&x, &centroids, labels)
        };
        let one = inertia_of(&kmeans(x.clone(), 12, 5, None, 300, 1).unwrap());
        let four = inertia_of(&kmeans(x.clone(), 12, 5, None, 300, 4).unwrap());
        assert!(four < one, "four starts {four} vs one {one}");
        assert_eq!(kmeans(x.clone(), 12, 5, None, 300, 4).unwrap(), kmeans(x.clone(), 12, 5, None, 300, 4).unwrap(), "deterministic");
    }

    fn planted(groups: usize, per: usize) -> Array2<f32> {
        let mut vectors = Vec::new();
        for g in 0..groups {
            for i in 0..per {
                let mut v: Vec<f32> = (0..8).map(|d| 0.05 * (((i * 31 + d * 17 + g * 7) % 23) as f32 / 11.0 - 1.0)).collect();
                v[g] = 1.0;
                vectors.push(normalized(v));
            }
        }
        Array2::from_shape_vec((groups * per, 8), vectors.concat()).unwrap()
    }

    #[test]
    fn automatic_k_finds_the_planted_number_of_groups() {
        let x = planted(4, 40);
        let fit = fit(x.view(), &FitOptions { k: KChoice::Auto { min: 2, max: 8 }, seed: 3, ..FitOptions::default() }).unwrap();
        assert_eq!(fit.centroids.len(), 4, "scores {:?}", fit.k_scores);
        assert!(fit.k_scores.iter().any(|&(k, _)| k == 2) && fit.k_scores.iter().any(|&(k, _)| k == 8));
    }

    #[test]
    fn a_warm_start_from_the_previous_centroids_reproduces_the_clustering() {
        let x = planted(3, 50);
        let first = fit(x.view(), &FitOptions { k: KChoice::Fixed(3), seed: 1, ..FitOptions::default() }).unwrap();
        let warm = FitOptions { k: KChoice::Fixed(3), seed: 99, warm_start: first.centroids.clone(), warm_labels: Vec::new() };
        let again = fit(x.view(), &warm).unwrap();
        let same_partition = (0..x.nrows()).all(|i| (0..x.nrows()).all(|j| (first.labels[i] == first.labels[j]) == (again.labels[i] == again.labels[j])));
        assert!(same_partition);
    }

    #[test]
    fn silhouette_is_high_for_separated_groups_and_low_for_a_random_split() {
        let x = planted(2, 30);
        let truth: Vec<usize> = (0..60).map(|i| i / 30).collect();
        let alternating: Vec<usize> = (0..60).map(|i| i % 2).collect();
        assert!(silhouette(x.view(), &truth, 2) > 0.9);
        assert!(silhouette(x.view(), &alternating, 2) < 0.1);
    }

    #[test]
    fn sample_is_distinct_and_bounded() {
        let s = seeded_sample(1000, 100, 1);
        assert_eq!(s.len(), 100);
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(seeded_sample(10, 100, 1), (0..10).collect::<Vec<_>>());
    }
}
