//! Revenue-weighted impact: which themes cost the most, from scores, sentiment, accounts' ARR and
//! churn outcomes. The statistics ([`stats`]) are pure functions over plain numbers; [`report`]
//! joins responses, segments' themes, accounts and outcomes for a period and ranks the themes.

pub mod report;
pub mod stats;
