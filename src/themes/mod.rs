//! Themes: groups of segments that mean one thing, with stable ids across weekly reclusters.
//!
//! - [`recluster`]: one run, from segments to a theme model (pure; no storage).
//! - [`cluster`] and [`spectral`]: linfa k-means in the spectral embedding of the neighbour graph.
//! - [`labels`]: c-TF-IDF keywords, labels, representative quotes, the content-free test.
//! - [`matching`]: Hungarian assignment of new centroids to the previous model's themes.
//! - [`eval`]: NMI and ARI against known categories.
//!
//! Storing models, activating them atomically and running on a schedule live in
//! [`crate::store`] and [`crate::recluster`].

pub mod cluster;
pub mod eval;
pub mod labels;
pub mod matching;
pub mod recluster;
pub mod spectral;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// The reserved theme of content-free segments ("ok", "n/a", "👍"). Real themes start at 1.
pub const NO_CONTENT: i64 = 0;
pub const NO_CONTENT_LABEL: &str = "no content";
/// The reserved theme of segments in a language other than English, which the encoder does not
/// place among the English segments about the same thing (see [`crate::language`]).
pub const OTHER_LANGUAGE: i64 = -1;
pub const OTHER_LANGUAGE_LABEL: &str = "not English";

/// Whether `id` is a reserved theme ([`NO_CONTENT`], [`OTHER_LANGUAGE`]) rather than a topic:
/// reserved themes are never ranked, alerted on, merged or matched across reclusters.
pub fn is_reserved(id: i64) -> bool {
    id == NO_CONTENT || id == OTHER_LANGUAGE
}

/// The label of a reserved theme.
pub fn reserved_label(id: i64) -> Option<&'static str> {
    match id {
        NO_CONTENT => Some(NO_CONTENT_LABEL),
        OTHER_LANGUAGE => Some(OTHER_LANGUAGE_LABEL),
        _ => None,
    }
}
/// Alike themes listed per theme (ListThemes, `verbatim themes`): see [`ThemeModel::alike`].
pub const ALIKE_LISTED: usize = 3;

/// One theme of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Theme {
    /// Stable across reclusters while the theme persists; never reused after it is retired.
    pub id: i64,
    /// Built from the keywords.
    pub label: String,
    /// Given by a person (RenameTheme); survives reclusters.
    pub name: Option<String>,
    pub keywords: Vec<String>,
    pub quotes: Vec<String>,
    /// Unit-length mean of the members' embeddings (empty for [`NO_CONTENT`]).
    pub centroid: Vec<f32>,
    /// Segments assigned at the recluster.
    pub size: u64,
    /// Kept by reclusters even when the data no longer forms it.
    pub pinned: bool,
}

impl Theme {
    /// What a person should see: the given name, else the keyword label.
    pub fn display_label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.label)
    }
}

/// A versioned set of themes; one per workspace is active at a time.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ThemeModel {
    pub version: i64,
    pub created_at: String,
    /// Themes excluding the reserved ones ([`is_reserved`]).
    pub k: usize,
    /// Online assignment: below this cosine to the nearest centroid a segment is "emerging".
    pub assign_threshold: f32,
    /// Segments the model was built from.
    pub segments: u64,
    pub themes: Vec<Theme>,
}

/// The theme a new segment gets from a model.
#[derive(Debug, Clone, PartialEq)]
pub enum Assignment {
    Theme { id: i64, similarity: f32 },
    /// Content-free segment.
    NoContent,
    /// A segment in another language.
    OtherLanguage,
    /// Farther than the model's threshold from every theme: a possible new theme.
    Emerging { similarity: f32 },
}

impl ThemeModel {
    pub fn theme(&self, id: i64) -> Option<&Theme> {
        self.themes.iter().find(|t| t.id == id)
    }

    /// For each theme, the `n` other themes whose centroids are most alike (cosine, largest
    /// first): merge candidates for a person curating the model to check, not merges to make
    /// blindly (README, Themes: on simulated data the most alike theme shares the theme's main
    /// topic for 43–75% of themes). The no-content theme has no centroid and takes no part.
    pub fn alike(&self, n: usize) -> HashMap<i64, Vec<(i64, f32)>> {
        let with_centroid: Vec<&Theme> = self.themes.iter().filter(|t| !t.centroid.is_empty()).collect();
        with_centroid
            .iter()
            .map(|t| {
                let mut others: Vec<(i64, f32)> = with_centroid
                    .iter()
                    .filter(|o| o.id != t.id && o.centroid.len() == t.centroid.len())
                    .map(|o| (o.id, labels::dot(&t.centroid, &o.centroid)))
                    .collect();
                others.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                others.truncate(n);
                (t.id, others)
            })
            .collect()
    }

    /// The nearest theme for a segment, applying the content-free test, its language (from
    /// [`crate::language::of_segments`]: `Some` when not English) and the threshold.
    pub fn assign(&self, text: &str, language: Option<&str>, embedding: &[f32]) -> Assignment {
        if labels::is_content_free(text) {
            return Assignment::NoContent;
        }
        if language.is_some() {
            return Assignment::OtherLanguage;
        }
        let best = self
            .themes
            .iter()
            .filter(|t| t.centroid.len() == embedding.len())
            .map(|t| (t.id, labels::dot(&t.centroid, embedding)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        match best {
            Some((id, similarity)) if similarity >= self.assign_threshold => Assignment::Theme { id, similarity },
            Some((_, similarity)) => Assignment::Emerging { similarity },
            None => Assignment::Emerging { similarity: -1.0 },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> ThemeModel {
        let theme = |id: i64, centroid: Vec<f32>| Theme {
            id,
            label: format!("t{id}"),
            name: None,
            keywords: vec![],
            quotes: vec![],
            centroid,
            size: 10,
            pinned: false,
        };
        ThemeModel { version: 3, assign_threshold: 0.5, k: 2, themes: vec![theme(1, vec![1.0, 0.0]), theme(2, vec![0.0, 1.0])], ..Default::default() }
    }

    #[test]
    fn alike_themes_are_the_nearest_centroids_without_the_theme_itself_or_no_content() {
        let mut m = model();
        let theme = |id: i64, centroid: Vec<f32>| Theme { id, centroid, ..m.themes[0].clone() };
        let extra = [theme(3, vec![0.8, 0.6]), theme(NO_CONTENT, vec![])];
        m.themes.extend(extra);
        let alike = m.alike(2);
        assert_eq!(alike.len(), 3, "no entry for the no-content theme");
        assert_eq!(alike[&1], [(3, 0.8), (2, 0.0)]);
        assert_eq!(alike[&2], [(3, 0.6), (1, 0.0)]);
        assert_eq!(m.alike(1)[&3], [(1, 0.8)]);
    }

    #[test]
    fn assignment_is_nearest_theme_emerging_below_threshold_no_content_or_other_language() {
        let m = model();
        assert_eq!(m.assign("slow refunds", None, &[0.6, 0.8]), Assignment::Theme { id: 2, similarity: 0.8 });
        let far = m.assign("parking is flooded", None, &[0.42, 0.3]);
        assert!(matches!(far, Assignment::Emerging { similarity } if (similarity - 0.42).abs() < 1e-6), "{far:?}");
        assert_eq!(m.assign("ok thanks", None, &[1.0, 0.0]), Assignment::NoContent);
        assert_eq!(m.assign("El reembolso no ha llegado.", Some("spa"), &[1.0, 0.0]), Assignment::OtherLanguage, "however near a theme");
        assert!(matches!(m.assign("other width", None, &[1.0, 0.0, 0.0]), Assignment::Emerging { .. }));
    }
}
