//! One recluster run, from segments to a new theme model: the pure part, with no storage.
//!
//! 1. Content-free segments ("ok", "n/a", "👍") go to the reserved [`NO_CONTENT`] theme, segments
//!    in another language to [`OTHER_LANGUAGE`]; nothing else is set aside — every other segment
//!    gets a theme.
//! 2. The rest are clustered ([`cluster::fit`]), warm-started from the previous model.
//! 3. New clusters are matched to the previous model's themes (Hungarian, cosine ≥
//!    [`MATCH_THRESHOLD`]): a match keeps the theme's id, human name and pin. A cluster that matches
//!    a theme someone merged away is folded into the merge target. Pinned themes that found no
//!    match stay, with their previous centroid. Unmatched clusters get new ids (never reused);
//!    unmatched old themes are retired.
//! 4. Each theme gets c-TF-IDF keywords, a label and representative quotes.

use std::collections::HashMap;

use ndarray::{Array2, ArrayView1, ArrayView2, Axis};

use super::cluster::{self, FitOptions, KChoice};
use super::labels;
use super::matching::match_centroids;
use super::{is_reserved, Theme, ThemeModel, NO_CONTENT, OTHER_LANGUAGE};

/// Centroids at least this cosine-similar are the same theme across runs.
pub const MATCH_THRESHOLD: f32 = 0.6;
/// Keywords and quotes kept per theme.
pub const KEYWORDS: usize = 8;
pub const QUOTES: usize = 5;
/// Quotes more similar than this to a chosen one are near-duplicates and skipped.
const QUOTE_MAX_SIMILARITY: f32 = 0.92;
/// A new segment is "emerging" (no theme) when its similarity to the nearest centroid is below
/// this percentile of the similarities of the model's own members (floored at [`MIN_THRESHOLD`]).
const THRESHOLD_PERCENTILE: f32 = 0.02;
const MIN_THRESHOLD: f32 = 0.2;

#[derive(Debug, Clone, Default)]
pub struct ReclusterOptions {
    pub k: Option<usize>,
    /// Range for the automatic choice of k.
    pub k_range: Option<(usize, usize)>,
    pub seed: u64,
}

/// What the previous runs leave to this one.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// The active model, if any.
    pub active: Option<ThemeModel>,
    /// Centroids of themes merged away, and the id they were merged into.
    pub merged: Vec<(Vec<f32>, i64)>,
    /// The next unused theme id (ids are never reused).
    pub next_id: i64,
    /// Per input segment, its theme under the active model where it has one (may be empty).
    pub prior: Vec<Option<i64>>,
}

/// The result of a run: the model, each input segment's theme and similarity, and what changed.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub model: ThemeModel,
    pub assignments: Vec<(i64, f32)>,
    pub matched: usize,
    pub new: usize,
    pub retired: Vec<i64>,
    pub k_scores: Vec<(usize, f32)>,
    pub next_id: i64,
}

/// Reclusters segments (`texts[i]` with unit embedding `x.row(i)`, of the verbatim `groups[i]`,
/// as [`response_groups`] numbers them).
pub fn recluster(texts: &[&str], x: ArrayView2<f32>, groups: &[usize], history: &History, opts: &ReclusterOptions, progress: &mut dyn FnMut(&str)) -> Result<Outcome, String> {
    assert_eq!(texts.len(), x.nrows());
    // Content-free segments and segments in another language go to their reserved themes.
    let languages = crate::language::of_rows(texts, groups);
    let reserved: Vec<Option<i64>> = texts
        .iter()
        .zip(&languages)
        .map(|(t, language)| {
            if labels::is_content_free(t) {
                Some(NO_CONTENT)
            } else {
                language.map(|_| OTHER_LANGUAGE)
            }
        })
        .collect();
    let content: Vec<usize> = (0..texts.len()).filter(|&i| reserved[i].is_none()).collect();
    let xc = x.select(Axis(0), &content);
    let previous: Vec<&Theme> = history.active.iter().flat_map(|m| &m.themes).filter(|t| !is_reserved(t.id)).collect();

    progress("clustering");
    let k = match (opts.k, opts.k_range) {
        (Some(k), _) => KChoice::Fixed(k),
        (None, Some((min, max))) => KChoice::Auto { min, max },
        (None, None) => default_k_range(content.len()),
    };
    let index_of: HashMap<i64, usize> = previous.iter().enumerate().map(|(i, t)| (t.id, i)).collect();
    let warm_labels = content.iter().map(|&i| history.prior.get(i).copied().flatten().and_then(|id| index_of.get(&id).copied())).collect();
    let fit_opts = FitOptions { k, seed: opts.seed, warm_start: previous.iter().map(|t| t.centroid.clone()).collect(), warm_labels };
    let fit = cluster::fit(xc.view(), &fit_opts)?;

    progress("matching themes");
    let mut centroids = fit.centroids.clone();
    let mut labels_c = fit.labels.clone();
    let similarity: Vec<Vec<f32>> = centroids.iter().map(|c| previous.iter().map(|p| cos(c, &p.centroid)).collect()).collect();
    let matches = match_centroids(&similarity, MATCH_THRESHOLD);
    let mut next_id = history.next_id.max(1);
    // Per cluster: the id, name and pin it inherits.
    let mut identity: Vec<(i64, Option<String>, bool)> = Vec::with_capacity(centroids.len());
    let mut fold: HashMap<usize, i64> = HashMap::new();
    for (c, m) in matches.iter().enumerate() {
        if let Some(&p) = m.as_ref() {
            identity.push((previous[p].id, previous[p].name.clone(), previous[p].pinned));
            continue;
        }
        let merged_into = history
            .merged
            .iter()
            .filter(|(centroid, _)| cos(&centroids[c], centroid) >= MATCH_THRESHOLD)
            .max_by(|a, b| cos(&centroids[c], &a.0).total_cmp(&cos(&centroids[c], &b.0)))
            .map(|m| m.1);
        if let Some(target) = merged_into {
            fold.insert(c, target);
        }
        identity.push((next_id, None, false));
        next_id += 1;
    }
    let matched_ids: Vec<i64> = matches.iter().zip(&identity).filter(|(m, _)| m.is_some()).map(|(_, id)| id.0).collect();
    // Pinned themes the data no longer formed stay, at their previous centroid.
    for p in previous.iter().filter(|p| p.pinned && !matched_ids.contains(&p.id)) {
        identity.push((p.id, p.name.clone(), true));
        centroids.push(p.centroid.clone());
    }
    if centroids.len() > fit.centroids.len() {
        let pinned_from = fit.centroids.len();
        let reassigned = cluster::assign(xc.view(), &centroids);
        for (l, &best) in labels_c.iter_mut().zip(&reassigned.labels) {
            if best >= pinned_from {
                *l = best;
            }
        }
    }
    // A cluster matching a merged-away theme joins the merge target when that target exists.
    let id_index: HashMap<i64, usize> = identity.iter().enumerate().map(|(c, id)| (id.0, c)).collect();
    let mut redirect: Vec<usize> = (0..centroids.len()).collect();
    for (&c, target) in &fold {
        if let Some(&t) = id_index.get(target) {
            if !fold.contains_key(&t) {
                redirect[c] = t;
            }
        }
    }
    labels_c.iter_mut().for_each(|l| *l = redirect[*l]);

    progress("labelling themes");
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); centroids.len()];
    for (row, &l) in labels_c.iter().enumerate() {
        members[l].push(row);
    }
    let mut assignments: Vec<(i64, f32)> = reserved.iter().map(|r| (r.unwrap_or(NO_CONTENT), 0.0)).collect();
    let mut themes = Vec::new();
    let kept: Vec<usize> = (0..centroids.len()).filter(|&c| !members[c].is_empty() || identity[c].2).collect();
    let docs: Vec<Vec<&str>> = kept.iter().map(|&c| members[c].iter().map(|&r| texts[content[r]]).collect()).collect();
    let keywords = labels::class_keywords(&docs, KEYWORDS);
    let mut distinct = labels::distinct_labels(&keywords, &docs.iter().map(Vec::len).collect::<Vec<_>>()).into_iter();
    let mut member_similarities = Vec::with_capacity(content.len());
    for (&c, keywords) in kept.iter().zip(keywords) {
        let centroid = if members[c].is_empty() { centroids[c].clone() } else { mean_direction(xc.view(), &members[c]) };
        let cv = ArrayView1::from(&centroid);
        let mut by_closeness: Vec<(usize, f32)> = members[c].iter().map(|&r| (r, xc.row(r).dot(&cv))).collect();
        by_closeness.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        for &(r, s) in &by_closeness {
            assignments[content[r]] = (identity[c].0, s);
            member_similarities.push(s);
        }
        let order: Vec<usize> = by_closeness.iter().map(|&(r, _)| content[r]).collect();
        let quotes = quotes_for(&order, texts, x);
        themes.push(Theme {
            id: identity[c].0,
            label: distinct.next().expect("a label per kept theme"),
            name: identity[c].1.clone(),
            keywords,
            quotes,
            centroid,
            size: members[c].len() as u64,
            pinned: identity[c].2,
        });
    }
    for id in [NO_CONTENT, OTHER_LANGUAGE] {
        let order: Vec<usize> = (0..texts.len()).filter(|&i| reserved[i] == Some(id)).collect();
        if !order.is_empty() {
            themes.push(Theme {
                id,
                label: super::reserved_label(id).unwrap_or_default().into(),
                name: None,
                keywords: Vec::new(),
                quotes: quotes_for(&order, texts, x),
                centroid: Vec::new(),
                size: order.len() as u64,
                pinned: false,
            });
        }
    }
    themes.sort_by(|a, b| b.size.cmp(&a.size).then(a.id.cmp(&b.id)));

    let current: Vec<i64> = themes.iter().map(|t| t.id).collect();
    let retired = previous.iter().map(|p| p.id).filter(|id| !current.contains(id)).collect();
    let matched = themes.iter().filter(|t| previous.iter().any(|p| p.id == t.id)).count();
    let new = themes.iter().filter(|t| !is_reserved(t.id) && !previous.iter().any(|p| p.id == t.id)).count();
    let model = ThemeModel {
        version: 0,
        created_at: String::new(),
        k: themes.iter().filter(|t| !is_reserved(t.id)).count(),
        assign_threshold: threshold(member_similarities),
        segments: texts.len() as u64,
        themes,
    };
    Ok(Outcome { model, assignments, matched, new, retired, k_scores: fit.k_scores, next_id })
}

/// The automatic k range for `n` segments: at least one theme per 1,000 segments and at most one
/// per 20, within 5–120 (a report with more than ~120 themes is not read).
pub fn default_k_range(n: usize) -> KChoice {
    let max = (n / 20).clamp(5, 120);
    let min = (n / 1000).clamp(5, max);
    KChoice::Auto { min, max }
}

fn threshold(mut similarities: Vec<f32>) -> f32 {
    if similarities.is_empty() {
        return MIN_THRESHOLD;
    }
    similarities.sort_by(f32::total_cmp);
    let at = ((similarities.len() as f32 * THRESHOLD_PERCENTILE) as usize).min(similarities.len() - 1);
    similarities[at].max(MIN_THRESHOLD)
}

fn quotes_for(order: &[usize], texts: &[&str], x: ArrayView2<f32>) -> Vec<String> {
    let head: Vec<usize> = order.iter().copied().take(200).collect();
    let vectors: Vec<Vec<f32>> = head.iter().map(|&i| x.row(i).to_vec()).collect();
    let refs: Vec<&[f32]> = vectors.iter().map(Vec::as_slice).collect();
    let head_texts: Vec<&str> = head.iter().map(|&i| texts[i]).collect();
    let positions: Vec<usize> = (0..head.len()).collect();
    labels::representative_quotes(&positions, &head_texts, &refs, QUOTES, QUOTE_MAX_SIMILARITY)
        .into_iter()
        .map(|p| head_texts[p].to_string())
        .collect()
}

fn mean_direction(x: ArrayView2<f32>, rows: &[usize]) -> Vec<f32> {
    let mut sum = vec![0f32; x.ncols()];
    for &r in rows {
        sum.iter_mut().zip(x.row(r).iter()).for_each(|(s, v)| *s += v);
    }
    cluster::normalized(sum)
}

fn cos(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return -1.0;
    }
    labels::dot(a, b)
}

/// How much of the rest of its response a segment's clustering vector carries (see [`in_context`]).
pub const CONTEXT_WEIGHT: f32 = 1.0;

/// Clustering vectors: each segment's embedding plus [`CONTEXT_WEIGHT`] times the unit mean of the
/// other segments of its response, renormalised. A fragment like "I have been waiting over a week"
/// is about a card, a transfer or a refund depending on what the respondent said next to it.
/// Known limit: at weight 1 the two segments of a two-segment verbatim get the same vector (each is
/// the sum of both), so "love the product. Support is slow." lands in one theme; see the README's
/// Themes section for the measurements and why a gated context has not replaced it yet.
/// `response[i]` identifies the response of row i; rows of one response are adjacent.
pub fn in_context(x: ArrayView2<f32>, response: &[usize]) -> Array2<f32> {
    let weight = CONTEXT_WEIGHT;
    let mut out = x.to_owned();
    let mut start = 0;
    while start < response.len() {
        let end = (start..response.len()).find(|&i| response[i] != response[start]).unwrap_or(response.len());
        if end - start > 1 {
            let total = x.slice(ndarray::s![start..end, ..]).sum_axis(Axis(0));
            for i in start..end {
                let others = cluster::normalized((&total - &x.row(i)).to_vec());
                let mut row = out.row_mut(i);
                row.scaled_add(weight, &ArrayView1::from(&others));
                let norm = row.dot(&row).sqrt().max(1e-12);
                row /= norm;
            }
        }
        start = end;
    }
    out
}

/// Stacks embeddings into one matrix (rows of unequal width are an error).
pub fn stack<V: AsRef<[f32]>>(vectors: &[V]) -> Result<Array2<f32>, String> {
    let dim = vectors.first().map_or(0, |v| v.as_ref().len());
    if vectors.iter().any(|v| v.as_ref().len() != dim) {
        return Err("embeddings of different widths cannot be clustered together".into());
    }
    let values: Vec<f32> = vectors.iter().flat_map(|v| v.as_ref().iter().copied()).collect();
    Array2::from_shape_vec((vectors.len(), dim), values).map_err(|e| e.to_string())
}

/// For rows grouped by response (a response's rows adjacent), each row's group: the index of its
/// response's first row, as [`in_context`] takes it.
pub fn response_groups<'a>(response_ids: impl IntoIterator<Item = &'a str>) -> Vec<usize> {
    let mut groups = Vec::new();
    let mut previous: Option<&str> = None;
    for (i, id) in response_ids.into_iter().enumerate() {
        let group = if previous == Some(id) { groups[i - 1] } else { i };
        groups.push(group);
        previous = Some(id);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_one_response_share_the_index_of_its_first_row() {
        assert_eq!(response_groups(["a", "a", "b", "c", "c", "c"]), [0, 0, 2, 3, 3, 3]);
        assert!(response_groups(std::iter::empty()).is_empty());
    }
}
