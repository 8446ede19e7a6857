//! The accounts to call this week: active accounts whose verbatims in the period raise a theme that
//! clearly drives churn, in a negative sentence, ordered by what they stand to cost.

use std::collections::{HashMap, HashSet};

use super::report::{Evidence, ImpactInput, ImpactReport, Period};
use crate::sentiment::{label_from_score, Label};
use crate::store::{Attributes, OutcomeKind};

/// One account to call.
#[derive(Debug, Clone, PartialEq)]
pub struct AtRiskAccount {
    pub account_id: String,
    pub arr: f64,
    /// The revenue churn rate of the accounts that raised the same theme in the period (0–1): how
    /// often what this account said was followed by lost revenue.
    pub risk: f64,
    /// ARR × risk: the ordering key.
    pub expected_loss: f64,
    pub theme_id: i64,
    pub label: String,
    /// The negative sentence that flagged the account, and its response.
    pub quote: String,
    pub response_id: String,
    pub submitted_at: i64,
    pub attributes: Attributes,
}

/// Active accounts (no churn recorded) with a negative segment in the period on a theme whose
/// excess churned ARR is clearly positive ([`Evidence::Clear`]). A segment is negative by its
/// sentiment, or, when it has none, by its response's score (NPS 0–4, bottom box). An account
/// flagged by several themes is listed once, under the riskiest. Highest ARR × risk first.
pub fn at_risk_accounts(input: &ImpactInput, period: Period, report: &ImpactReport) -> Vec<AtRiskAccount> {
    let drivers: HashMap<i64, (&str, f64)> = report
        .themes
        .iter()
        .filter(|t| t.evidence == Evidence::Clear && t.excess_churned_arr.is_some_and(|e| e.value > 0.0))
        .filter_map(|t| Some((t.theme_id, (t.label.as_str(), t.revenue_churn?.0))))
        .collect();
    let churned: HashSet<&str> = input
        .outcomes
        .iter()
        .filter(|o| o.kind == OutcomeKind::Churn)
        .map(|o| o.account_id.as_str())
        .chain(input.accounts.iter().filter(|a| a.churned_at.is_some()).map(|a| a.account_id.as_str()))
        .collect();
    let accounts: HashMap<&str, _> = input
        .accounts
        .iter()
        .filter(|a| !churned.contains(&a.account_id.as_str()))
        .map(|a| (a.account_id.as_str(), a))
        .collect();

    let mut best: HashMap<&str, AtRiskAccount> = HashMap::new();
    for s in &input.segments {
        let Some(&(label, risk)) = drivers.get(&s.theme_id) else { continue };
        let r = &input.responses[s.response];
        if !period.contains(r.submitted_at) {
            continue;
        }
        let negative = match s.sentiment {
            Some(sentiment) => sentiment.label() == Label::Negative,
            None => label_from_score(r.survey, r.scale, r.score) == Some(Label::Negative),
        };
        let Some(account) = accounts.get(r.account_id.as_str()).filter(|_| negative) else { continue };
        let candidate = AtRiskAccount {
            account_id: account.account_id.clone(),
            arr: account.arr,
            risk,
            expected_loss: account.arr * risk,
            theme_id: s.theme_id,
            label: label.to_string(),
            quote: s.text.clone(),
            response_id: r.response_id.clone(),
            submitted_at: r.submitted_at,
            attributes: account.attributes.clone(),
        };
        let slot = best.entry(account.account_id.as_str()).or_insert_with(|| candidate.clone());
        if candidate.risk > slot.risk || (candidate.risk == slot.risk && candidate.submitted_at > slot.submitted_at) {
            *slot = candidate;
        }
    }
    let mut out: Vec<AtRiskAccount> = best.into_values().collect();
    out.sort_by(|a, b| b.expected_loss.total_cmp(&a.expected_loss).then_with(|| a.account_id.cmp(&b.account_id)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::impact::report::{build, SegmentTheme};
    use crate::sentiment::Sentiment;
    use crate::impact::report::tests::response;
    use crate::store::{AccountRecord, OutcomeRecord};

    const DAY: i64 = 86_400;
    const NEGATIVE: [f32; 3] = [0.9, 0.05, 0.05];
    const POSITIVE: [f32; 3] = [0.05, 0.05, 0.9];

    /// 24 accounts. Theme 1 ("billing") is raised negatively by accounts 0–9, 6 of which churn;
    /// theme 2 by 10–23, 1 churn. Account 8 raised billing positively; account 9 has no sentiment
    /// but scored 2 (a detractor); account 7 has the biggest ARR.
    fn input() -> ImpactInput {
        let mut inp = ImpactInput::default();
        for i in 0..24 {
            let score = if i < 10 { 2.0 } else { 8.0 };
            inp.responses.push(response(i, &format!("a{i}"), score, 10 * DAY));
            let arr = if i == 7 { 90_000.0 } else { 10_000.0 + 1_000.0 * i as f64 };
            inp.accounts.push(AccountRecord { account_id: format!("a{i}"), arr, churned_at: None, attributes: Default::default() });
            let (theme_id, sentiment) = match i {
                8 => (1, Some(Sentiment::new(POSITIVE))),
                9 => (1, None),
                _ if i < 10 => (1, Some(Sentiment::new(NEGATIVE))),
                _ => (2, Some(Sentiment::new(NEGATIVE))),
            };
            inp.segments.push(SegmentTheme { response: i, theme_id, text: format!("said by a{i}"), sentiment, similarity: None });
        }
        for i in [0, 1, 2, 3, 4, 5, 15] {
            inp.outcomes.push(OutcomeRecord { account_id: format!("a{i}"), kind: OutcomeKind::Churn, occurred_at: 20 * DAY, arr_change: None });
        }
        inp
    }

    #[test]
    fn active_accounts_on_churn_themes_with_negative_words_ordered_by_arr_times_risk() {
        let inp = input();
        let period = Period { from: 7 * DAY, to: 14 * DAY };
        let report = build(&inp, period, 3);
        let billing = report.themes.iter().find(|t| t.theme_id == 1).unwrap();
        assert_eq!(billing.evidence, Evidence::Clear, "{billing:#?}");
        let list = at_risk_accounts(&inp, period, &report);
        let ids: Vec<&str> = list.iter().map(|a| a.account_id.as_str()).collect();
        // Churned a0–a5 are gone, a8 was positive, theme 2 is not a clear driver.
        assert_eq!(ids, ["a7", "a9", "a6"], "{list:#?}");
        let rate = billing.revenue_churn.unwrap().0;
        assert!((list[0].risk - rate).abs() < 1e-12 && (list[0].expected_loss - 90_000.0 * rate).abs() < 1e-6);
        assert_eq!((list[0].quote.as_str(), list[0].response_id.as_str(), list[0].label.as_str()), ("said by a7", "r7", billing.label.as_str()));
    }

    #[test]
    fn nothing_to_call_without_a_clear_churn_theme() {
        let mut inp = input();
        inp.outcomes.clear();
        let period = Period { from: 7 * DAY, to: 14 * DAY };
        let report = build(&inp, period, 3);
        assert!(at_risk_accounts(&inp, period, &report).is_empty());
    }
}
