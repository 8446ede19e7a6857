//! The ranked themes as CSV, one row per theme (the columns are listed in [`COLUMNS`] and in the
//! README). Empty cells mean "not defined" (no responses of that survey, no comparison group).

use super::evidence_name;
use crate::impact::document::Document;
use crate::impact::report::ThemeImpact;
use crate::survey::SurveyKind;

pub const COLUMNS: &[&str] = &[
    "rank", "theme_id", "label", "evidence", "responses", "accounts", "segments", "share", "previous_share",
    "nps", "nps_impact", "csat", "csat_impact", "ces", "ces_impact",
    "sentiment_negative", "sentiment_neutral", "sentiment_positive",
    "churn_risk_ratio", "churn_risk_ratio_low", "churn_risk_ratio_high",
    "revenue_churn_mentioning", "revenue_churn_others",
    "excess_churned_arr", "excess_churned_arr_low", "excess_churned_arr_high",
    "arr_at_risk", "arr_weighted_score_impact",
    "churn_p_value", "churn_q_value",
    "churn_risk_ratio_adjusted", "churn_risk_ratio_adjusted_low", "churn_risk_ratio_adjusted_high", "explained_by_theme_id",
];

fn cell(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.6}").trim_end_matches('0').trim_end_matches('.').to_string()).unwrap_or_default()
}

fn row(rank: usize, t: &ThemeImpact) -> Vec<String> {
    let survey = |k: SurveyKind| t.scores.iter().find(|s| s.survey == k);
    let mut out = vec![
        rank.to_string(),
        t.theme_id.to_string(),
        t.label.clone(),
        evidence_name(t.evidence).to_string(),
        t.responses.to_string(),
        t.accounts.to_string(),
        t.segments.to_string(),
        cell(Some(t.share)),
        cell(t.previous_share),
    ];
    for k in SurveyKind::ALL {
        out.push(cell(survey(k).and_then(|s| s.metric)));
        out.push(cell(survey(k).and_then(|s| s.impact)));
    }
    out.extend((0..3).map(|c| cell(t.sentiment_mix.map(|m| m[c]))));
    out.extend([t.churn_risk.map(|r| r.ratio), t.churn_risk.map(|r| r.low), t.churn_risk.map(|r| r.high)].map(cell));
    out.extend([t.revenue_churn.map(|r| r.0), t.revenue_churn.map(|r| r.1)].map(cell));
    let e = t.excess_churned_arr;
    out.extend([e.map(|e| e.value), e.map(|e| e.low), e.map(|e| e.high), t.arr_at_risk, t.arr_weighted_score_impact].map(cell));
    out.extend([t.churn_risk.map(|r| r.p_value), t.churn_q_value].map(cell));
    let adjusted = t.churn_risk_adjusted;
    out.extend([adjusted.map(|r| r.ratio), adjusted.map(|r| r.low), adjusted.map(|r| r.high)].map(cell));
    out.push(t.explained_by.map(|id| id.to_string()).unwrap_or_default());
    out
}

pub fn render(doc: &Document) -> String {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.write_record(COLUMNS).expect("write to memory");
    for (i, t) in doc.impact.themes.iter().enumerate() {
        w.write_record(row(i + 1, t)).expect("write to memory");
    }
    String::from_utf8(w.into_inner().expect("flush to memory")).expect("UTF-8 in, UTF-8 out")
}
