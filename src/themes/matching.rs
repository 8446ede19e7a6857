//! Keeping theme ids stable across reclusters: each new centroid is matched to at most one theme of
//! the previous model by the Hungarian algorithm (Kuhn 1955; the O(n³) potentials form), maximising
//! total cosine similarity. A match counts only above a similarity threshold; unmatched new
//! centroids become new themes and unmatched old themes are retired.

/// Optimal assignment maximising `similarity[row][col]`; returns for each row its column, if any
/// (rows > cols leaves some rows without one).
pub fn hungarian_max(similarity: &[Vec<f32>]) -> Vec<Option<usize>> {
    let rows = similarity.len();
    let cols = similarity.first().map_or(0, Vec::len);
    if rows == 0 || cols == 0 {
        return vec![None; rows];
    }
    // Square cost matrix (minimisation); padding cells cost 0, i.e. "no match".
    let n = rows.max(cols);
    let cost = |i: usize, j: usize| -> f64 {
        if i < rows && j < cols {
            -(similarity[i][j] as f64)
        } else {
            0.0
        }
    };
    // e-maxx formulation with 1-based arrays: u, v potentials, p[j] = row matched to column j.
    let inf = f64::INFINITY;
    let (mut u, mut v) = (vec![0.0; n + 1], vec![0.0; n + 1]);
    let (mut p, mut way) = (vec![0usize; n + 1], vec![0usize; n + 1]);
    for i in 1..=n {
        p[0] = i;
        let mut j0 = 0;
        let mut minv = vec![inf; n + 1];
        let mut used = vec![false; n + 1];
        loop {
            used[j0] = true;
            let i0 = p[j0];
            let mut delta = inf;
            let mut j1 = 0;
            for j in 1..=n {
                if !used[j] {
                    let cur = cost(i0 - 1, j - 1) - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=n {
                if used[j] {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if p[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut out = vec![None; rows];
    for j in 1..=n {
        let i = p[j];
        if i >= 1 && i <= rows && j <= cols {
            out[i - 1] = Some(j - 1);
        }
    }
    out
}

/// Matches new centroids (rows) to old ones (columns): the optimal assignment, keeping only pairs
/// with similarity ≥ `threshold`.
pub fn match_centroids(similarity: &[Vec<f32>], threshold: f32) -> Vec<Option<usize>> {
    hungarian_max(similarity)
        .into_iter()
        .enumerate()
        .map(|(i, m)| m.filter(|&j| similarity[i][j] >= threshold))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute_force_best(sim: &[Vec<f32>]) -> f32 {
        fn go(sim: &[Vec<f32>], row: usize, used: &mut Vec<bool>) -> f32 {
            if row == sim.len() {
                return 0.0;
            }
            let mut best = go(sim, row + 1, used); // leave this row unmatched
            for j in 0..used.len() {
                if !used[j] {
                    used[j] = true;
                    best = best.max(sim[row][j] + go(sim, row + 1, used));
                    used[j] = false;
                }
            }
            best
        }
        go(sim, 0, &mut vec![false; sim[0].len()])
    }

    #[test]
    fn finds_the_optimal_assignment_not_the_greedy_one() {
        // Greedy takes (0,0)=0.9 and leaves row 1 with 0.1; optimal is 0.8 + 0.85.
        let sim = vec![vec![0.9, 0.8], vec![0.85, 0.1]];
        assert_eq!(hungarian_max(&sim), [Some(1), Some(0)]);
    }

    #[test]
    fn matches_brute_force_on_rectangular_matrices() {
        let mut seed = 7u64;
        let mut rnd = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 33) as f32) / (1u64 << 31) as f32
        };
        for (rows, cols) in [(3, 3), (4, 2), (2, 5), (5, 5)] {
            let sim: Vec<Vec<f32>> = (0..rows).map(|_| (0..cols).map(|_| rnd()).collect()).collect();
            let got = hungarian_max(&sim);
            let total: f32 = got.iter().enumerate().filter_map(|(i, m)| m.map(|j| sim[i][j])).sum();
            assert!((total - brute_force_best(&sim)).abs() < 1e-5, "{rows}x{cols}: {total}");
            let mut cols_used: Vec<usize> = got.iter().flatten().copied().collect();
            cols_used.sort();
            cols_used.dedup();
            assert_eq!(cols_used.len(), got.iter().flatten().count(), "a column is used once");
        }
    }

    #[test]
    fn threshold_turns_weak_matches_into_new_themes() {
        let sim = vec![vec![0.95, 0.1], vec![0.2, 0.4]];
        assert_eq!(match_centroids(&sim, 0.7), [Some(0), None]);
        assert_eq!(match_centroids(&[], 0.7), Vec::<Option<usize>>::new());
    }
}
