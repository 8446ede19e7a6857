//! Conversions for `GetThemeReport` and `ListAlerts`: the request's period, and the document into
//! its protobuf shape.

use super::pb;
use crate::error::Error;
use crate::impact::alerts::{Alert, AlertKind, TrendPoint};
use crate::impact::document::Document;
use crate::impact::report::{Period, ThemeImpact};
use crate::impact::scope::{Condition, Scope, MAX_CONDITIONS};
use crate::report::{alert_kind_name, evidence_name, period_ending, ranked_by_name, timestamp};

/// Longest period a report may cover, in days (ten years).
pub const MAX_PERIOD_DAYS: u32 = 3660;

/// A request's scope from its `filters` and `surveys` fields, each checked.
pub fn scope(filters: &[pb::AttributeFilter], surveys: &[i32]) -> Result<Scope, Error> {
    if filters.len() > MAX_CONDITIONS {
        return Err(Error::invalid("filters", format!("{} filters; at most {MAX_CONDITIONS}", filters.len())));
    }
    let conditions = filters.iter().map(|f| Condition::new(&f.attribute, f.values.clone(), "filters")).collect::<Result<Vec<_>, _>>()?;
    let surveys = surveys
        .iter()
        .map(|&s| super::survey_kind(s).ok_or_else(|| Error::invalid("surveys", format!("{s} is not a survey type; allowed NPS (1), CSAT (2), CES (3)"))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Scope::new(surveys, conditions))
}

fn filters(scope: &Scope) -> Vec<pb::AttributeFilter> {
    scope.conditions.iter().map(|c| pb::AttributeFilter { attribute: c.attribute.clone(), values: c.values.clone() }).collect()
}

/// The period of `days` (0 = 7) ending at `until` (empty = now).
pub fn period(days: u32, until: &str) -> Result<Period, Error> {
    if days > MAX_PERIOD_DAYS {
        return Err(Error::invalid("period_days", format!("{days} is out of range; allowed 1–{MAX_PERIOD_DAYS}, or 0 for 7")));
    }
    let days = if days == 0 { 7 } else { days };
    let until = super::optional_time("until", until)?.unwrap_or_else(crate::report::until_now);
    Ok(period_ending(until, i64::from(days) * 86_400))
}

pub fn alert(a: &Alert) -> pb::Alert {
    let (current, baseline, sd, survey) = match a.kind {
        AlertKind::VolumeSpike { mentions, mean, sd } => (mentions as f64, mean, sd, ""),
        AlertKind::ImpactMove { survey, previous, current } => (current, previous, 0.0, survey.as_str()),
    };
    pb::Alert {
        theme_id: a.theme_id,
        label: a.label.clone(),
        kind: alert_kind_name(&a.kind).into(),
        message: a.message.clone(),
        current,
        baseline,
        sd,
        survey: survey.into(),
    }
}

fn interval(value: f64, low: f64, high: f64) -> pb::Interval {
    pb::Interval { value, low, high }
}

fn trend_point(p: &TrendPoint) -> pb::TrendPoint {
    pb::TrendPoint {
        period_from: timestamp(p.period.from),
        period_to: timestamp(p.period.to),
        responses: p.responses as u32,
        mentions: p.mentions as u32,
        share: p.share,
        impact: p.impact,
        survey: p.survey.map_or("", |s| s.as_str()).into(),
    }
}

fn theme(doc: &Document, rank: usize, t: &ThemeImpact) -> pb::ThemeImpact {
    pb::ThemeImpact {
        rank: rank as u32,
        theme_id: t.theme_id,
        label: t.label.clone(),
        evidence: evidence_name(t.evidence).into(),
        segments: t.segments as u32,
        responses: t.responses as u32,
        accounts: t.accounts as u32,
        share: t.share,
        previous_share: t.previous_share,
        scores: t
            .scores
            .iter()
            .map(|s| pb::SurveyScore { survey: s.survey.as_str().into(), responses: s.responses as u32, metric: s.metric, impact: s.impact })
            .collect(),
        sentiment: t.sentiment_mix.map(|[negative, neutral, positive]| pb::SentimentMix { negative, neutral, positive }),
        churn_risk_ratio: t.churn_risk.map(|r| interval(r.ratio, r.low, r.high)),
        churn_p_value: t.churn_risk.map(|r| r.p_value),
        churn_q_value: t.churn_q_value,
        churn_risk_ratio_adjusted: t.churn_risk_adjusted.map(|r| interval(r.ratio, r.low, r.high)),
        explained_by_theme_id: t.explained_by,
        revenue_churn_mentioning: t.revenue_churn.map(|r| r.0),
        revenue_churn_others: t.revenue_churn.map(|r| r.1),
        excess_churned_arr: t.excess_churned_arr.map(|e| interval(e.value, e.low, e.high)),
        arr_at_risk: t.arr_at_risk,
        arr_weighted_score_impact: t.arr_weighted_score_impact,
        quotes: doc.quotes.get(&t.theme_id).cloned().unwrap_or_default(),
        trend: doc.trends.get(&t.theme_id).map(|p| p.iter().map(trend_point).collect()).unwrap_or_default(),
        breakdowns: doc
            .breakdowns
            .iter()
            .filter(|b| b.theme_id == t.theme_id)
            .map(|b| pb::Breakdown {
                attribute: b.attribute.clone(),
                rows: b
                    .rows
                    .iter()
                    .map(|r| pb::BreakdownRow { value: r.value.clone(), responses: r.responses as u32, mentioning: r.mentioning as u32, share: r.share, impact: r.impact })
                    .collect(),
            })
            .collect(),
    }
}

/// The document as a reply; `only` keeps one theme's row (its rank stays the overall rank).
pub fn theme_report(doc: &Document, only: Option<i64>) -> pb::ThemeReport {
    let r = &doc.impact;
    pb::ThemeReport {
        workspace: doc.workspace.clone(),
        period_from: timestamp(r.period.from),
        period_to: timestamp(r.period.to),
        responses: r.responses as u32,
        responses_not_english: r.not_english as u32,
        accounts: r.accounts as u32,
        ranked_by: ranked_by_name(r.ranked_by).into(),
        filters: filters(&doc.scope),
        surveys: doc.scope.surveys.iter().map(|&s| super::survey_type(s) as i32).collect(),
        themes: r
            .themes
            .iter()
            .enumerate()
            .filter(|(_, t)| only.is_none_or(|id| id == t.theme_id))
            .map(|(i, t)| theme(doc, i + 1, t))
            .collect(),
        alerts: doc.alerts.iter().filter(|a| only.is_none_or(|id| id == a.theme_id)).map(alert).collect(),
        at_risk_accounts: doc
            .at_risk
            .iter()
            .filter(|a| only.is_none_or(|id| id == a.theme_id))
            .map(|a| pb::AtRiskAccount {
                account_id: a.account_id.clone(),
                arr: a.arr,
                risk: a.risk,
                expected_loss: a.expected_loss,
                theme_id: a.theme_id,
                label: a.label.clone(),
                quote: a.quote.clone(),
                response_id: a.response_id.clone(),
                submitted_at: timestamp(a.submitted_at),
            })
            .collect(),
    }
}
