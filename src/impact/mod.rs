//! Revenue-weighted impact: which themes cost the most, from scores, sentiment, accounts' ARR and
//! churn outcomes. The statistics ([`stats`]) are pure functions over plain numbers; [`report`]
//! joins responses, segments' themes, accounts and outcomes for a period and ranks the themes;
//! [`alerts`] reads each theme's recent trend; [`at_risk`] lists the accounts to call; [`scope`] narrows the input to
//! some responses (a plan, a survey); [`document`] puts all of it together for one period.

pub mod alerts;
pub mod at_risk;
pub mod document;
pub mod report;
pub mod scope;
pub mod stats;
