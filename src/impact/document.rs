//! Everything the CX team reads for one period, in one value: the ranked themes, their trends,
//! quotes and segment breakdowns, the alerts and the accounts to call. The renderers
//! (`crate::render`) and the `GetThemeReport` RPC read this; nothing here formats text.

use std::collections::{BTreeMap, BTreeSet};

use super::alerts::{self, Alert, TrendPoint, HISTORY_PERIODS};
use super::at_risk::{at_risk_accounts, AtRiskAccount};
use super::report::{self, breakdown, ImpactInput, ImpactReport, Period, SegmentBreakdown};
use super::scope::Scope;
use crate::sentiment::Label;

const WEEK: i64 = 7 * 86_400;

/// Quotes shown per theme.
pub const QUOTES: usize = 3;
/// An attribute is broken down automatically when it has between 2 and this many values.
pub const MAX_AUTO_VALUES: usize = 12;

/// One theme broken down by one attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct Breakdown {
    pub theme_id: i64,
    pub attribute: String,
    pub rows: Vec<SegmentBreakdown>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub workspace: String,
    /// The responses the document was computed from (the whole workspace by default).
    pub scope: Scope,
    /// Seconds since the epoch.
    pub generated_at: i64,
    pub impact: ImpactReport,
    /// Per theme, weekly: [`HISTORY_PERIODS`] earlier weeks and the period's last week, oldest first.
    pub trends: BTreeMap<i64, Vec<TrendPoint>>,
    pub alerts: Vec<Alert>,
    pub at_risk: Vec<AtRiskAccount>,
    /// Per theme, up to [`QUOTES`] sentences of the period, the most typical of those in the theme's
    /// prevailing tone first.
    pub quotes: BTreeMap<i64, Vec<String>>,
    pub breakdowns: Vec<Breakdown>,
}

/// What to break the themes down by.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum BreakdownBy {
    /// Every response or account attribute with 2 to [`MAX_AUTO_VALUES`] distinct values (and at
    /// most half as many values as responses).
    #[default]
    Auto,
    List(Vec<String>),
}

/// Assembles the document for `period`; `input` must reach back [`HISTORY_PERIODS`] periods
/// (see [`history_start`]) for trends and alerts.
pub fn assemble(workspace: &str, input: &ImpactInput, period: Period, by: &BreakdownBy, seed: u64, generated_at: i64) -> Document {
    let impact = report::build(input, period, seed);
    let trends = alerts::trends(input, last_week(period), HISTORY_PERIODS);
    let label = |id: i64| impact.themes.iter().find(|t| t.theme_id == id).map_or_else(|| format!("theme {id}"), |t| t.label.clone());
    let alerts = alerts::alerts(&trends, label);
    let at_risk = at_risk_accounts(input, period, &impact);
    let attributes = match by {
        BreakdownBy::Auto => auto_attributes(input, period),
        BreakdownBy::List(list) => list.clone(),
    };
    let breakdowns = impact
        .themes
        .iter()
        .flat_map(|t| attributes.iter().map(move |a| (t, a)))
        .map(|(t, attribute)| Breakdown { theme_id: t.theme_id, attribute: attribute.clone(), rows: breakdown(input, period, t, attribute) })
        .collect();
    let quotes = impact.themes.iter().map(|t| (t.theme_id, quotes(input, period, t.theme_id))).collect();
    Document { workspace: workspace.to_string(), scope: Scope::default(), generated_at, impact, trends, alerts, at_risk, quotes, breakdowns }
}

/// Trends and alerts are week over week, whatever the report's period: its last seven days.
pub fn last_week(period: Period) -> Period {
    Period { from: period.to - WEEK, to: period.to }
}

/// The earliest submission time `assemble` reads for `period`: the previous period (for the
/// share trend) and [`HISTORY_PERIODS`] weeks before its last week (for trends and alerts).
pub fn history_start(period: Period) -> i64 {
    period.previous().from.min(last_week(period).from - HISTORY_PERIODS as i64 * WEEK)
}

/// Attributes of the period's responses and their accounts with 2 to [`MAX_AUTO_VALUES`] values,
/// and no more values than half the responses (an id-like attribute groups nothing).
fn auto_attributes(input: &ImpactInput, period: Period) -> Vec<String> {
    let mut values: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let accounts: BTreeMap<&str, _> = input.accounts.iter().map(|a| (a.account_id.as_str(), a)).collect();
    let responses: Vec<_> = input.responses.iter().filter(|r| period.contains(r.submitted_at)).collect();
    let most = MAX_AUTO_VALUES.min(responses.len() / 2);
    for r in responses {
        let account = accounts.get(r.account_id.as_str()).map(|a| &a.attributes);
        for (k, v) in r.attributes.iter().chain(account.into_iter().flatten()) {
            values.entry(k).or_default().insert(v);
        }
    }
    values.into_iter().filter(|(_, v)| (2..=most).contains(&v.len())).map(|(k, _)| k.to_string()).collect()
}

/// Distinct sentences of the theme in the period that say what it is about in its prevailing tone:
/// those whose sentiment leans the theme's way (negative when its sentences add up to zero or less)
/// first, each group the most typical of the theme first (closest to its centroid), then in
/// submission order. The most typical, not the most extreme: a theme's most negative sentences are
/// often ones that joined it only through their response ("a huge disappointment." in a theme about
/// returns).
fn quotes(input: &ImpactInput, period: Period, theme_id: i64) -> Vec<String> {
    let mut theirs: Vec<_> = input
        .segments
        .iter()
        .filter(|s| s.theme_id == theme_id && period.contains(input.responses[s.response].submitted_at))
        .collect();
    let lean: f32 = theirs.iter().filter_map(|s| s.sentiment).map(|s| s.score()).sum();
    let tone = if lean <= 0.0 { Label::Negative } else { Label::Positive };
    let off_tone = |s: &report::SegmentTheme| s.sentiment.is_some_and(|x| x.label() != tone);
    theirs.sort_by(|a, b| off_tone(a).cmp(&off_tone(b)).then(b.similarity.unwrap_or(f32::MIN).total_cmp(&a.similarity.unwrap_or(f32::MIN))));
    let mut out: Vec<String> = Vec::new();
    for s in theirs {
        if out.len() == QUOTES {
            break;
        }
        if !out.iter().any(|q| q.eq_ignore_ascii_case(&s.text)) {
            out.push(s.text.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::impact::report::SegmentTheme;
    use crate::sentiment::Sentiment;
    use crate::store::{AccountRecord, ResponseRecord};
    use crate::survey::{Scale, SurveyKind};

    fn input() -> ImpactInput {
        let mut inp = ImpactInput::default();
        for i in 0..6 {
            let mut attributes = crate::store::Attributes::new();
            attributes.insert("channel".into(), if i % 2 == 0 { "email" } else { "in-app" }.into());
            attributes.insert("respondent".into(), format!("person {i}"));
            inp.responses.push(ResponseRecord {
                response_id: format!("r{i}"),
                account_id: format!("a{i}"),
                survey: SurveyKind::Nps,
                scale: Scale { min: 0, max: 10 },
                score: 5.0,
                verbatim: String::new(),
                submitted_at: 100 + i as i64,
                attributes,
            });
            let mut account = AccountRecord { account_id: format!("a{i}"), arr: 1e4, churned_at: None, attributes: Default::default() };
            account.attributes.insert("plan".into(), "pro".into());
            inp.accounts.push(account);
        }
        let texts = [("Billing is fine.", 0.1, 0.9), ("Billing is a mess.", -0.8, 0.5), ("billing is a mess.", -0.8, 0.6), ("Invoices are wrong.", -0.6, 0.8), ("I like billing.", 0.6, 0.7)];
        for (i, (text, score, similarity)) in texts.into_iter().enumerate() {
            let p = if score < 0.0 { [-score, 1.0 + score, 0.0] } else { [0.0, 1.0 - score, score] };
            inp.segments.push(SegmentTheme { response: i, theme_id: 1, text: text.into(), sentiment: Some(Sentiment::new(p)), similarity: Some(similarity) });
        }
        inp
    }

    #[test]
    fn quotes_are_the_most_typical_in_the_themes_tone_without_repeats() {
        let inp = input();
        let q = quotes(&inp, Period { from: 0, to: 1000 }, 1);
        assert_eq!(q, ["Invoices are wrong.", "billing is a mess.", "Billing is fine."], "typical before extreme, the theme's tone before a more typical neutral sentence");
    }

    #[test]
    fn automatic_breakdowns_skip_constant_and_unique_attributes() {
        let inp = input();
        assert_eq!(auto_attributes(&inp, Period { from: 0, to: 1000 }), ["channel"], "plan has one value, respondent six");
        let mut six = inp.clone();
        for (i, a) in six.accounts.iter_mut().enumerate() {
            a.attributes.insert("plan".into(), ["pro", "team"][i % 2].into());
        }
        assert_eq!(auto_attributes(&six, Period { from: 0, to: 1000 }), ["channel", "plan"]);
        let doc = assemble("w", &six, Period { from: 0, to: 1000 }, &BreakdownBy::List(vec!["plan".into()]), 1, 0);
        assert_eq!(doc.breakdowns.len(), 1);
        assert_eq!((doc.breakdowns[0].theme_id, doc.breakdowns[0].attribute.as_str()), (1, "plan"));
        assert_eq!(doc.quotes[&1].len(), QUOTES);
    }
}
