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
    json!({ "from": timestamp(p.period.from), "to": timestamp(p.period.to), "responses": p.responses, "mentions": p.mentions, "share": p.share, "impact": p.impact })
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
        AlertKind::ImpactMove { previous, current } => {
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
