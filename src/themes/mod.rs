//! Themes: groups of segments that mean one thing, with stable ids across weekly reclusters.
//!
//! So far: naming a theme ([`labels`]: c-TF-IDF keywords, labels, representative quotes, the
//! content-free test) and keeping ids stable ([`matching`]: Hungarian assignment of new centroids
//! to the previous model's). The linfa k-means recluster, theme-model storage and online
//! assignment build on these.

pub mod cluster;
pub mod eval;
pub mod labels;
pub mod matching;
