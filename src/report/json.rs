//! The report as JSON, for other tools: one object per theme in rank order, with the alerts and
//! the at-risk accounts. Times are RFC 3339 (UTC); shares and rates are fractions 0–1; money is in
//! the workspace's currency; score impacts are in points of each survey's own metric.

use serde_json::{json, Value};

use super::{alert_kind_name, evidence_name, ranked_by_name, timestamp};
use crate::impact::alerts::{Alert, AlertKind, TrendPoint};
use crate::impact::document::Document;
use crate::impact::report::{Period, ThemeImpact};

pub fn period(p: Period) -> Value {
    json!({ "from": timestamp(p.from), "to": timestamp(p.to) })
}

fn trend_point(p: &TrendPoint) -> Value {
    json!({ "from": timestamp(p.period.from), "to": timestamp(p.period.to), "responses": p.responses, "mentions": p.mentions, "share": p.share, "impact": p.impact, "survey": p.survey.map(|s| s.as_str()) })
}

/// One alert's object (the report's `alerts`, and the alerts webhook's).
pub fn alert(a: &Alert) -> Value {
    let mut v = json!({ "theme_id": a.theme_id, "label": a.label, "kind": alert_kind_name(&a.kind), "message": a.message });
    match a.kind {
        AlertKind::VolumeSpike { mentions, mean, sd } => {
            v["mentions"] = json!(mentions);
            v["mean"] = json!(mean);
            v["sd"] = json!(sd);
        }
        AlertKind::ImpactMove { survey, previous, current } => {
            v["survey"] = json!(survey.as_str());
            v["previous"] = json!(previous);
            v["current"] = json!(current);
        }
    }
    v
}

/// One theme's object.
pub fn theme(doc: &Document, rank: usize, t: &ThemeImpact) -> Value {
    json!({
        "rank": rank,
        "theme_id": t.theme_id,
        "label": t.label,
        "evidence": evidence_name(t.evidence),
        "segments": t.segments,
        "responses": t.responses,
        "accounts": t.accounts,
        "share": t.share,
        "previous_share": t.previous_share,
        "scores": t.scores.iter().map(|s| json!({ "survey": s.survey.as_str(), "responses": s.responses, "metric": s.metric, "impact": s.impact })).collect::<Vec<_>>(),
        "sentiment": t.sentiment_mix.map(|[n, u, p]| json!({ "negative": n, "neutral": u, "positive": p })),
        "churn_risk_ratio": t.churn_risk.map(|r| json!({ "ratio": r.ratio, "low": r.low, "high": r.high, "p_value": r.p_value, "q_value": t.churn_q_value,
            "adjusted": t.churn_risk_adjusted.map(|a| json!({ "ratio": a.ratio, "low": a.low, "high": a.high, "p_value": a.p_value })) })),
        "explained_by_theme_id": t.explained_by,
        "revenue_churn_rate": t.revenue_churn.map(|(m, o)| json!({ "mentioning": m, "others": o })),
        "excess_churned_arr": t.excess_churned_arr.map(|e| json!({ "value": e.value, "low": e.low, "high": e.high })),
        "arr_at_risk": t.arr_at_risk,
        "arr_weighted_score_impact": t.arr_weighted_score_impact,
        "quotes": doc.quotes.get(&t.theme_id).cloned().unwrap_or_default(),
        "trend": doc.trends.get(&t.theme_id).map(|points| points.iter().map(trend_point).collect::<Vec<_>>()).unwrap_or_default(),
        "breakdowns": doc.breakdowns.iter().filter(|b| b.theme_id == t.theme_id).map(|b| json!({
            "attribute": b.attribute,
            "rows": b.rows.iter().map(|r| json!({ "value": r.value, "responses": r.responses, "mentioning": r.mentioning, "share": r.share, "impact": r.impact })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// The whole document.
pub fn document(doc: &Document) -> Value {
    let r = &doc.impact;
    json!({
        "workspace": doc.workspace,
        "generated_at": timestamp(doc.generated_at),
        "period": period(r.period),
        "previous_period": period(r.period.previous()),
        "scope": {
            "surveys": doc.scope.surveys.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            "filters": doc.scope.conditions.iter().map(|c| json!({ "attribute": c.attribute, "values": c.values })).collect::<Vec<_>>(),
        },
        "responses": r.responses,
        "responses_not_english": r.not_english,
        "accounts": r.accounts,
        "ranked_by": ranked_by_name(r.ranked_by),
        "themes": r.themes.iter().enumerate().map(|(i, t)| theme(doc, i + 1, t)).collect::<Vec<_>>(),
        "alerts": doc.alerts.iter().map(alert).collect::<Vec<_>>(),
        "at_risk_accounts": doc.at_risk.iter().map(|a| json!({
            "account_id": a.account_id, "arr": a.arr, "risk": a.risk, "expected_loss": a.expected_loss,
            "theme_id": a.theme_id, "label": a.label, "quote": a.quote, "response_id": a.response_id,
            "submitted_at": timestamp(a.submitted_at), "attributes": a.attributes,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::impact::report::Period;
    use crate::survey::SurveyKind;

    #[test]
    fn an_impact_and_its_move_name_their_survey() {
        // A CES move of −0.07 and an NPS move of −7 are different news; the object says which.
        let kind = AlertKind::ImpactMove { survey: SurveyKind::Ces, previous: 0.0, current: -0.07 };
        let v = alert(&Alert { theme_id: 3, label: "slow support".into(), kind, message: String::new() });
        assert_eq!((v["kind"].as_str(), v["survey"].as_str(), v["current"].as_f64()), (Some("impact_move"), Some("CES"), Some(-0.07)));
        let point = TrendPoint { period: Period { from: 0, to: 604_800 }, responses: 4, mentions: 1, share: 0.25, survey: Some(SurveyKind::Ces), impact: Some(-0.07) };
        assert_eq!(trend_point(&point)["survey"], "CES");
        assert!(trend_point(&TrendPoint { survey: None, impact: None, ..point })["survey"].is_null());
    }
}
