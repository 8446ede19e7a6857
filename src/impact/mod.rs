//! Revenue-weighted impact: which themes cost the most, from scores, sentiment, accounts' ARR and
//! churn outcomes. Here: the statistics ([`stats`]), pure functions over plain numbers.

pub mod stats;
