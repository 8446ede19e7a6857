//! The join behind the ranked report: for one period, every theme's mentions, scores, score
//! impact, sentiment mix, churn risk and revenue-weighted impact, from data the store loaded.
//! Pure: the same input gives the same report (the bootstrap is seeded).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rayon::prelude::*;

use super::alerts::impact_move_threshold;
use super::stats::{self, AccountRevenue, Estimate, RiskRatio, ScoredResponse};
use crate::sentiment::Sentiment;
use crate::store::{AccountRecord, OutcomeKind, OutcomeRecord, ResponseRecord};
use crate::survey::SurveyKind;
use crate::themes::{is_reserved, Theme, OTHER_LANGUAGE};

/// Fewer mentioning accounts than this: the theme's churn figures are shown but not ranked.
pub const MIN_ACCOUNTS: usize = 5;
/// Bootstrap resamples for the interval of the revenue-weighted impact.
pub const BOOTSTRAP_REPLICATES: usize = 1000;

/// One segment's theme and sentiment, pointing at its response in [`ImpactInput::responses`].
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentTheme {
    pub response: usize,
    pub theme_id: i64,
    pub text: String,
    pub sentiment: Option<Sentiment>,
    /// Cosine to the theme's centroid when the segment was assigned (how typical of the theme it is).
    pub similarity: Option<f32>,
}

/// Everything a report reads, as the store loads it.
#[derive(Debug, Clone, Default)]
pub struct ImpactInput {
    pub responses: Vec<ResponseRecord>,
    pub segments: Vec<SegmentTheme>,
    pub accounts: Vec<AccountRecord>,
    pub outcomes: Vec<OutcomeRecord>,
    pub themes: Vec<Theme>,
}

/// The period reported on, and the one before it for trends: `[from, to)`, seconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Period {
    pub from: i64,
    pub to: i64,
}

impl Period {
    pub fn previous(self) -> Period {
        Period { from: 2 * self.from - self.to, to: self.from }
    }

    pub fn contains(self, t: i64) -> bool {
        (self.from..self.to).contains(&t)
    }
}

/// How a theme's revenue figure may be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// Enough accounts, a 95% interval of the excess that excludes zero and a churn risk ratio
    /// whose interval excludes 1, also within strata of the other clear costs
    /// ([`ThemeImpact::churn_risk_adjusted`]). Clear costs rank first; clearly protective themes (negative
    /// excess) rank after the uncertain ones.
    Clear,
    /// Enough accounts, but an interval spans "no effect": ranked after every clear cost.
    Uncertain,
    /// Fewer than [`MIN_ACCOUNTS`] mentioning accounts, or no comparison group: listed last.
    TooLittleData,
}

/// One theme's row of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct ThemeImpact {
    pub theme_id: i64,
    pub label: String,
    pub segments: usize,
    pub responses: usize,
    pub accounts: usize,
    /// Share of the period's responses that mention the theme (0–1).
    pub share: f64,
    /// The same share in the previous period (`None` when it had no responses).
    pub previous_share: Option<f64>,
    /// Per survey: the metric among mentioning responses and the theme's impact on it
    /// (metric(all) − metric(all but mentioning)).
    pub scores: Vec<SurveyImpact>,
    /// Mean class probabilities of the theme's segments (negative, neutral, positive).
    pub sentiment_mix: Option<[f64; 3]>,
    /// Churned accounts among mentioning vs non-mentioning respondents.
    pub churn_risk: Option<RiskRatio>,
    /// The risk ratio's p-value adjusted for the number of themes tested in this report
    /// (Benjamini–Hochberg over every theme with enough accounts; `None` for the others).
    pub churn_q_value: Option<f64>,
    /// For a theme whose churn figures alone are clear: its risk ratio within the accounts that
    /// raise another clear cost and within those that raise none (Mantel–Haenszel), so that churn
    /// it merely shares verbatims or accounts with does not count as its own. `None` when no other
    /// theme is a clear cost, or for a theme that is not clear.
    pub churn_risk_adjusted: Option<RiskRatio>,
    /// A theme demoted from clear because its adjusted risk ratio's interval includes 1: the clear
    /// cost it shares the most accounts with, whose churn it was showing.
    pub explained_by: Option<i64>,
    /// Revenue churn rate (churned ARR / ARR) of mentioning and of non-mentioning accounts.
    pub revenue_churn: Option<(f64, f64)>,
    /// Churned ARR in excess of the baseline, with its bootstrap interval.
    pub excess_churned_arr: Option<Estimate>,
    pub arr_at_risk: Option<f64>,
    /// ARR of mentioning accounts × the headline survey's score impact / 100: the fallback
    /// ranking before any churn outcome exists.
    pub arr_weighted_score_impact: Option<f64>,
    pub evidence: Evidence,
}

impl ThemeImpact {
    /// The figures of the survey most of the theme's mentioning responses answered ([`most_answered`]:
    /// `scores` is in [`SurveyKind::ALL`] order): a theme raised in 200 CES answers and one NPS
    /// answer is a CES theme, not an NPS one of one answer.
    pub fn headline(&self) -> Option<&SurveyImpact> {
        most_answered(self.scores.iter(), |s| s.responses)
    }

    /// The headline survey's score impact: the figure the fallback rankings weigh. Negative: the
    /// score would be higher without the theme.
    pub fn headline_impact(&self) -> Option<f64> {
        self.headline().and_then(|s| s.impact)
    }

    /// A figure in the headline survey's points as NPS points, for ranking themes whose headline
    /// surveys differ on one scale (a CES impact of −0.1 is a larger drag than an NPS one of −2).
    pub fn in_nps_points(&self, points: f64) -> f64 {
        self.headline().map_or(points, |s| as_nps_points(s.survey, points))
    }
}

/// `points` of `survey` counted as NPS points: over the move that is news in that survey (the
/// alerts' thresholds, measured on the same answers read as each survey: 3 NPS points, 2 CSAT
/// points, 0.05 CES), times NPS's.
pub fn as_nps_points(survey: SurveyKind, points: f64) -> f64 {
    points * impact_move_threshold(SurveyKind::Nps) / impact_move_threshold(survey)
}

/// The headline survey of a theme's answers, one survey per answer (as [`ThemeImpact::headline`]).
pub fn headline_survey(answered: impl IntoIterator<Item = SurveyKind>) -> Option<SurveyKind> {
    let answered: Vec<SurveyKind> = answered.into_iter().collect();
    most_answered(SurveyKind::ALL.into_iter(), |&k| answered.iter().filter(|&&a| a == k).count())
}

/// The headline rule: of `surveys` (in [`SurveyKind::ALL`] order), the one with the most answers,
/// NPS then CSAT on a tie (`min_by_key` keeps the first of equals); none without answers.
fn most_answered<T>(surveys: impl Iterator<Item = T>, answers: impl Fn(&T) -> usize) -> Option<T> {
    surveys.filter(|s| answers(s) > 0).min_by_key(|s| std::cmp::Reverse(answers(s)))
}

/// One survey's figures for a theme.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SurveyImpact {
    pub survey: SurveyKind,
    pub responses: usize,
    pub metric: Option<f64>,
    pub impact: Option<f64>,
}

/// What the ranking is by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RankedBy {
    /// Churned ARR in excess of the baseline (outcomes exist).
    ExcessChurnedArr,
    /// No churn outcome yet: ARR-weighted score impact.
    ArrWeightedScoreImpact,
    /// No respondent's account has an ARR (survey data alone): the headline score impact.
    ScoreImpact,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ImpactReport {
    pub period: Period,
    pub responses: usize,
    /// Responses of the period with a segment in another language: not themed, not scored for
    /// sentiment (the reserved theme [`crate::themes::OTHER_LANGUAGE`]), so not in the ranking.
    pub not_english: usize,
    pub accounts: usize,
    pub ranked_by: RankedBy,
    /// Ranked: most costly first.
    pub themes: Vec<ThemeImpact>,
}

/// Lost ARR per account from churn and contraction outcomes at or after `since` (a churn without
/// an amount, or a `churned_at` on the account without an outcome, loses the whole ARR).
fn churned_arr(accounts: &[AccountRecord], outcomes: &[OutcomeRecord], since: &HashMap<&str, i64>) -> HashMap<String, f64> {
    let arr: HashMap<&str, f64> = accounts.iter().map(|a| (a.account_id.as_str(), a.arr)).collect();
    let mut lost: HashMap<String, f64> = HashMap::new();
    for o in outcomes {
        let Some(&first) = since.get(o.account_id.as_str()) else { continue };
        if o.occurred_at < first {
            continue;
        }
        let whole = arr.get(o.account_id.as_str()).copied().unwrap_or(0.0);
        let amount = match o.kind {
            OutcomeKind::Churn => o.arr_change.unwrap_or(whole),
            OutcomeKind::Contraction => o.arr_change.unwrap_or(0.0),
            OutcomeKind::Expansion => 0.0,
        };
        *lost.entry(o.account_id.clone()).or_default() += amount;
    }
    for a in accounts {
        if let (Some(churned), Some(&first)) = (a.churned_at, since.get(a.account_id.as_str())) {
            if churned >= first && !lost.contains_key(&a.account_id) {
                lost.insert(a.account_id.clone(), a.arr);
            }
        }
    }
    lost
}

/// Themes are not independent causes: "the dashboard is cluttered" and "I was billed twice" are
/// often written by the same accounts, even in one verbatim, and a theme that travels with a
/// costly one shows its churn. So every clear theme's churn risk ratio is measured again within
/// two strata — accounts raising some *other* clear cost, and accounts raising none — and pooled
/// (Mantel–Haenszel). A theme whose adjusted interval includes 1 is demoted to uncertain and names
/// the clear cost it shares the most accounts with (one still clear if any). One pass: the clear
/// costs before adjustment define the strata (a theme that truly drives churn keeps its effect within them; one that only
/// rides along loses it). Two themes nearly always raised together cannot be told apart, and
/// both are demoted.
fn adjust_for_co_occurring_costs(themes: &mut [ThemeImpact], accounts: &[BTreeSet<&str>], revenue: &BTreeMap<&str, AccountRevenue>) {
    let costs: Vec<usize> = (0..themes.len()).filter(|&i| themes[i].evidence == Evidence::Clear && themes[i].excess_churned_arr.is_some_and(|e| e.value > 0.0)).collect();
    let clear: Vec<usize> = (0..themes.len()).filter(|&i| themes[i].evidence == Evidence::Clear).collect();
    let mut demoted = Vec::new();
    for i in clear {
        let others: Vec<usize> = costs.iter().copied().filter(|&j| j != i).collect();
        if others.is_empty() {
            continue;
        }
        // strata[0]: accounts raising another clear cost; strata[1]: the rest.
        let mut strata = [stats::Stratum { a: 0, n1: 0, c: 0, n0: 0 }; 2];
        for (id, account) in revenue {
            let stratum = &mut strata[usize::from(!others.iter().any(|&j| accounts[j].contains(id)))];
            let churned = u64::from(account.churned_arr > 0.0);
            if accounts[i].contains(id) {
                (stratum.a, stratum.n1) = (stratum.a + churned, stratum.n1 + 1);
            } else {
                (stratum.c, stratum.n0) = (stratum.c + churned, stratum.n0 + 1);
            }
        }
        let adjusted = stats::mantel_haenszel_risk_ratio(&strata);
        themes[i].churn_risk_adjusted = adjusted;
        // Still clear only on the same side of 1 as before adjustment.
        let same_side = |r: RiskRatio| if themes[i].churn_risk.is_some_and(|crude| crude.ratio > 1.0) { r.low > 1.0 } else { r.high < 1.0 };
        if !adjusted.is_some_and(same_side) {
            demoted.push((i, others));
        }
    }
    for (i, _) in &demoted {
        themes[*i].evidence = Evidence::Uncertain;
    }
    // Name the clear cost a demoted theme shares the most accounts with, preferring one that is
    // still clear.
    for (i, others) in demoted {
        let still_clear: Vec<usize> = others.iter().copied().filter(|&j| themes[j].evidence == Evidence::Clear).collect();
        let candidates = if still_clear.is_empty() { others } else { still_clear };
        let shared = |j: usize| (accounts[i].intersection(&accounts[j]).count(), std::cmp::Reverse(themes[j].theme_id));
        themes[i].explained_by = candidates.into_iter().max_by_key(|&j| shared(j)).map(|j| themes[j].theme_id);
    }
}

/// Builds the report for `period`; `seed` fixes the bootstrap.
pub fn build(input: &ImpactInput, period: Period, seed: u64) -> ImpactReport {
    let in_period: Vec<bool> = input.responses.iter().map(|r| period.contains(r.submitted_at)).collect();
    let in_previous: Vec<bool> = input.responses.iter().map(|r| period.previous().contains(r.submitted_at)).collect();
    let scored: Vec<ScoredResponse> = input.responses.iter().map(|r| ScoredResponse { survey: r.survey, score: r.score, scale: r.scale }).collect();
    let current: Vec<usize> = (0..input.responses.len()).filter(|&i| in_period[i]).collect();
    let previous_total = in_previous.iter().filter(|&&b| b).count();

    // Each respondent account's first response in the period: outcomes count from then on.
    let mut first_response: HashMap<&str, i64> = HashMap::new();
    for &i in &current {
        let r = &input.responses[i];
        let e = first_response.entry(r.account_id.as_str()).or_insert(r.submitted_at);
        *e = (*e).min(r.submitted_at);
    }
    let lost = churned_arr(&input.accounts, &input.outcomes, &first_response);
    let has_outcomes = !lost.is_empty();
    // Ordered by account id, so the seeded bootstrap resamples the same accounts every run.
    let revenue: BTreeMap<&str, AccountRevenue> = input
        .accounts
        .iter()
        .filter(|a| first_response.contains_key(a.account_id.as_str()))
        .map(|a| (a.account_id.as_str(), AccountRevenue { arr: a.arr, churned_arr: lost.get(&a.account_id).copied().unwrap_or(0.0).min(a.arr) }))
        .collect();

    let mut by_theme: BTreeMap<i64, Vec<&SegmentTheme>> = BTreeMap::new();
    for s in input.segments.iter().filter(|s| !is_reserved(s.theme_id)) {
        by_theme.entry(s.theme_id).or_default().push(s);
    }
    let label_of: HashMap<i64, &Theme> = input.themes.iter().map(|t| (t.id, t)).collect();
    let current_scored: Vec<ScoredResponse> = current.iter().map(|&i| scored[i]).collect();

    // Each theme on its own (its bootstrap, 1,000 resamples of its accounts and of the others, is
    // the report's cost), side by side; seeded per theme, so the same report whatever the threads.
    let (mut themes, theme_accounts): (Vec<ThemeImpact>, Vec<BTreeSet<&str>>) = by_theme
        .par_iter()
        .filter_map(|(&theme_id, segs)| {
            let now: Vec<&&SegmentTheme> = segs.iter().filter(|s| in_period[s.response]).collect();
            if now.is_empty() {
                return None;
            }
            let mentioning: BTreeSet<usize> = now.iter().map(|s| s.response).collect();
            let before: BTreeSet<usize> = segs.iter().filter(|s| in_previous[s.response]).map(|s| s.response).collect();
            let mentions: Vec<bool> = current.iter().map(|i| mentioning.contains(i)).collect();
            let scores: Vec<SurveyImpact> = SurveyKind::ALL
                .iter()
                .filter_map(|&survey| {
                    let theirs: Vec<ScoredResponse> = mentioning.iter().map(|&i| scored[i]).filter(|r| r.survey == survey).collect();
                    (!theirs.is_empty()).then(|| SurveyImpact {
                        survey,
                        responses: theirs.len(),
                        metric: stats::metric(survey, &theirs),
                        impact: stats::score_impact(survey, &current_scored, &mentions),
                    })
                })
                .collect();
            let sentiments: Vec<Sentiment> = now.iter().filter_map(|s| s.sentiment).collect();
            let sentiment_mix = (!sentiments.is_empty()).then(|| {
                let n = sentiments.len() as f64;
                [0, 1, 2].map(|c| sentiments.iter().map(|s| f64::from(s.probabilities[c])).sum::<f64>() / n)
            });

            let accounts: BTreeSet<&str> = mentioning.iter().map(|&i| input.responses[i].account_id.as_str()).collect();
            // Both in account id order: one walk splits the respondents into the theme's and the others.
            let (mut theirs, mut others) = (Vec::new(), Vec::new());
            let mut mentioned = accounts.iter().peekable();
            for (id, &r) in &revenue {
                while mentioned.next_if(|m| *m < id).is_some() {}
                if mentioned.next_if(|m| *m == id).is_some() {
                    theirs.push(r);
                } else {
                    others.push(r);
                }
            }
            let churned = |group: &[AccountRevenue]| group.iter().filter(|a| a.churned_arr > 0.0).count() as u64;
            let churn_risk = stats::risk_ratio(churned(&theirs), theirs.len() as u64, churned(&others), others.len() as u64);
            let revenue_churn = stats::revenue_churn_rate(&theirs).zip(stats::revenue_churn_rate(&others));
            let excess = stats::excess_churned_arr_interval(&theirs, &others, BOOTSTRAP_REPLICATES, seed ^ theme_id as u64);
            let arr: f64 = theirs.iter().map(|a| a.arr).sum();
            // Clear needs both the bootstrap interval of the excess and the Katz interval of the
            // risk ratio to exclude "no effect": with no (or only) churned accounts among the
            // mentioning ones every resample is alike and the bootstrap interval is degenerate.
            let evidence = match excess {
                _ if theirs.len() < MIN_ACCOUNTS || others.is_empty() => Evidence::TooLittleData,
                Some(e) if e.is_clear() && churn_risk.is_some_and(|r| r.is_significant()) => Evidence::Clear,
                _ => Evidence::Uncertain,
            };
            let mut theme = ThemeImpact {
                theme_id,
                label: label_of.get(&theme_id).map_or_else(|| format!("theme {theme_id}"), |t| t.display_label().to_string()),
                segments: now.len(),
                responses: mentioning.len(),
                accounts: accounts.len(),
                share: mentioning.len() as f64 / current.len().max(1) as f64,
                previous_share: (previous_total > 0).then(|| before.len() as f64 / previous_total as f64),
                scores,
                sentiment_mix,
                churn_risk,
                churn_q_value: None,
                churn_risk_adjusted: None,
                explained_by: None,
                revenue_churn,
                excess_churned_arr: excess,
                arr_at_risk: stats::arr_at_risk(&theirs, &others),
                arr_weighted_score_impact: None,
                evidence,
            };
            // `+ 0.0`: no ARR weighs a plain zero, not −0 (which sorted and printed as a value).
            theme.arr_weighted_score_impact = theme.headline_impact().map(|impact| arr * impact / 100.0 + 0.0);
            Some((theme, accounts))
        })
        .unzip();
    adjust_for_co_occurring_costs(&mut themes, &theme_accounts, &revenue);

    // The family of churn tests: every theme with enough accounts and a comparison group.
    let tested: Vec<usize> = (0..themes.len()).filter(|&i| themes[i].evidence != Evidence::TooLittleData && themes[i].churn_risk.is_some()).collect();
    let p: Vec<f64> = tested.iter().filter_map(|&i| themes[i].churn_risk.map(|r| r.p_value)).collect();
    for (&i, q) in tested.iter().zip(stats::benjamini_hochberg(&p)) {
        themes[i].churn_q_value = Some(q);
    }

    // Without any ARR (a survey export alone) every revenue figure is zero: rank by the score.
    let ranked_by = match (has_outcomes, revenue.values().any(|a| a.arr > 0.0)) {
        (_, false) => RankedBy::ScoreImpact,
        (true, true) => RankedBy::ExcessChurnedArr,
        (false, true) => RankedBy::ArrWeightedScoreImpact,
    };
    // Clear costs first, then uncertain themes, then themes clearly associated with *less*
    // churn (they cost nothing), then themes with too little data.
    let rank = |t: &ThemeImpact| match t.evidence {
        Evidence::Clear if t.excess_churned_arr.is_some_and(|e| e.value > 0.0) => 0,
        Evidence::Uncertain => 1,
        Evidence::Clear => 2,
        Evidence::TooLittleData => 3,
    };
    // A more negative score impact costs more; equal weighted drags (themes of accounts without
    // ARR weigh 0, whatever the sign of their impact) go by the score impact itself.
    // Themes whose headline is CSAT or CES (most of their answers came from it) rank in NPS points.
    let drag = |t: &ThemeImpact| t.headline_impact().map_or(f64::MAX, |v| t.in_nps_points(v));
    themes.sort_by(|a, b| {
        let key = |t: &ThemeImpact| match ranked_by {
            RankedBy::ExcessChurnedArr => (rank(t), -t.excess_churned_arr.map_or(f64::MIN, |e| e.value)),
            RankedBy::ArrWeightedScoreImpact => (i32::from(t.evidence == Evidence::TooLittleData), t.arr_weighted_score_impact.map_or(f64::MAX, |v| t.in_nps_points(v))),
            // Churn evidence needs revenue: without it, only the score speaks.
            RankedBy::ScoreImpact => (0, drag(t)),
        };
        let (ka, kb) = (key(a), key(b));
        let by_value = ka.1.partial_cmp(&kb.1).unwrap_or(std::cmp::Ordering::Equal); // −0 = +0
        ka.0.cmp(&kb.0).then(by_value).then(drag(a).total_cmp(&drag(b))).then(a.theme_id.cmp(&b.theme_id))
    });
    let not_english = input.segments.iter().filter(|s| s.theme_id == OTHER_LANGUAGE && in_period[s.response]).map(|s| s.response).collect::<BTreeSet<_>>().len();
    ImpactReport { period, responses: current.len(), not_english, accounts: first_response.len(), ranked_by, themes }
}

/// One value of an attribute (plan = "enterprise") for one theme: is the blended number hiding
/// a segment that bleeds?
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentBreakdown {
    pub value: String,
    /// The period's responses with this value, and those of them that mention the theme.
    pub responses: usize,
    pub mentioning: usize,
    pub share: f64,
    /// The theme's impact on its headline survey ([`ThemeImpact::headline`]) within this value's
    /// responses only.
    pub impact: Option<f64>,
}

/// `theme` of the report of `period`, broken down by `attribute`, read from the response's
/// attributes, else its account's (responses with neither are "(none)"). Largest groups first.
pub fn breakdown(input: &ImpactInput, period: Period, theme: &ThemeImpact, attribute: &str) -> Vec<SegmentBreakdown> {
    let theme_id = theme.theme_id;
    let accounts = super::scope::accounts_by_id(&input.accounts);
    let value_of = |r: &ResponseRecord| -> String { super::scope::attribute_value(r, accounts.get(r.account_id.as_str()).copied(), attribute).unwrap_or("(none)").to_string() };
    let mentioning: BTreeSet<usize> = input.segments.iter().filter(|s| s.theme_id == theme_id).map(|s| s.response).collect();
    // Every value's impact in the theme's headline survey, so that the rows compare with each other
    // and with the theme's own figure.
    let headline = theme.headline().map(|s| s.survey);
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, r) in input.responses.iter().enumerate().filter(|(_, r)| period.contains(r.submitted_at)) {
        groups.entry(value_of(r)).or_default().push(i);
    }
    let mut out: Vec<SegmentBreakdown> = groups
        .into_iter()
        .map(|(value, members)| {
            let scored: Vec<ScoredResponse> = members.iter().map(|&i| &input.responses[i]).map(|r| ScoredResponse { survey: r.survey, score: r.score, scale: r.scale }).collect();
            let mentions: Vec<bool> = members.iter().map(|i| mentioning.contains(i)).collect();
            let n = mentions.iter().filter(|&&m| m).count();
            SegmentBreakdown {
                value,
                responses: members.len(),
                mentioning: n,
                share: n as f64 / members.len() as f64,
                impact: headline.and_then(|k| stats::score_impact(k, &scored, &mentions)),
            }
        })
        .collect();
    out.sort_by(|a, b| b.responses.cmp(&a.responses).then(a.value.cmp(&b.value)));
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::survey::Scale;
    use crate::themes::{NO_CONTENT, OTHER_LANGUAGE};

    const DAY: i64 = 86_400;

    /// An NPS response `r{i}` of `account` (shared by the impact modules' tests).
    pub(crate) fn response(i: usize, account: &str, score: f64, at: i64) -> ResponseRecord {
        ResponseRecord {
            response_id: format!("r{i}"),
            account_id: account.into(),
            survey: SurveyKind::Nps,
            scale: Scale { min: 0, max: 10 },
            score,
            verbatim: String::new(),
            submitted_at: at,
            attributes: Default::default(),
        }
    }

    fn account(i: usize, arr: f64) -> AccountRecord {
        AccountRecord { account_id: format!("a{i}"), arr, churned_at: None, attributes: Default::default() }
    }

    /// 20 accounts, one response each in the period. Theme 1 ("billing"): accounts 0–5, big ARR,
    /// 4 of them churn. Theme 2 ("app"): accounts 4–17, many mentions, small ARR, no extra churn
    /// (accounts 4 and 5 mention both). Theme 3: two accounts only.
    pub(crate) fn input(with_outcomes: bool) -> ImpactInput {
        let mut inp = ImpactInput::default();
        for i in 0..20 {
            let score = if i < 6 { 2.0 } else if i < 18 { 8.0 } else { 10.0 };
            inp.responses.push(response(i, &format!("a{i}"), score, 10 * DAY + i as i64));
            inp.accounts.push(account(i, if i < 6 { 100_000.0 } else { 10_000.0 }));
        }
        let seg = |response: usize, theme_id: i64| SegmentTheme { response, theme_id, text: String::new(), sentiment: Some(Sentiment::new([0.8, 0.1, 0.1])), similarity: None };
        inp.segments.extend((0..6).map(|i| seg(i, 1)));
        inp.segments.extend((4..18).map(|i| seg(i, 2)));
        inp.segments.extend([seg(18, 3), seg(19, 3), seg(19, NO_CONTENT), seg(0, OTHER_LANGUAGE)]);
        if with_outcomes {
            for i in [0, 1, 2, 3, 12] {
                inp.outcomes.push(OutcomeRecord { account_id: format!("a{i}"), kind: OutcomeKind::Churn, occurred_at: 20 * DAY, arr_change: None });
            }
        }
        inp
    }

    #[test]
    fn churn_driving_theme_ranks_first_and_volume_does_not_win() {
        let r = build(&input(true), Period { from: 7 * DAY, to: 14 * DAY }, 1);
        assert_eq!(r.ranked_by, RankedBy::ExcessChurnedArr);
        assert_eq!((r.responses, r.not_english, r.accounts), (20, 1, 20), "response 0 has a segment in another language");
        let ids: Vec<i64> = r.themes.iter().map(|t| t.theme_id).collect();
        assert_eq!(ids[0], 1, "{:#?}", r.themes);
        let billing = &r.themes[0];
        // Mentioning: 600k ARR, 400k churned → 2/3. Others: 14 × 10k = 140k, 10k churned → 1/14.
        let (m, o) = billing.revenue_churn.unwrap();
        assert!((m - 2.0 / 3.0).abs() < 1e-12 && (o - 1.0 / 14.0).abs() < 1e-12);
        let excess = billing.excess_churned_arr.unwrap();
        assert!((excess.value - 600e3 * (2.0 / 3.0 - 1.0 / 14.0)).abs() < 1e-6);
        // 200k still active × the excess rate.
        assert!((billing.arr_at_risk.unwrap() - 200e3 * (2.0 / 3.0 - 1.0 / 14.0)).abs() < 1e-6);
        assert_eq!((billing.segments, billing.responses, billing.accounts), (6, 6, 6));
        assert!((billing.share - 0.3).abs() < 1e-12);
        // NPS of all: 2 promoters − 6 detractors of 20 = −20; without billing's 6: 2/14 → 14.29.
        let nps = billing.scores[0];
        assert_eq!((nps.survey, nps.responses, nps.metric), (SurveyKind::Nps, 6, Some(-100.0)));
        assert!((nps.impact.unwrap() - (-20.0 - 200.0 / 14.0)).abs() < 1e-9);
        let app = r.themes.iter().find(|t| t.theme_id == 2).unwrap();
        assert!(app.responses > billing.responses, "the high-volume theme");
        assert!(app.excess_churned_arr.unwrap().value < excess.value);
        let small = r.themes.iter().find(|t| t.theme_id == 3).unwrap();
        assert_eq!(small.evidence, Evidence::TooLittleData);
        assert_eq!(ids.last(), Some(&3), "too little data is never ranked first");
        // Two themes are tested (3 has too few accounts): Benjamini–Hochberg with m = 2 keeps the
        // larger p-value and doubles the smaller one, at most to the larger; theme 3 gets none.
        let (p1, p2) = (billing.churn_risk.unwrap().p_value, app.churn_risk.unwrap().p_value);
        let (low, high) = (p1.min(p2), p1.max(p2));
        let q = |p: f64| if p == high { high } else { (2.0 * low).min(high) };
        assert_eq!((billing.churn_q_value, app.churn_q_value), (Some(q(p1)), Some(q(p2))));
        assert_eq!(small.churn_q_value, None);
        assert!(!ids.contains(&NO_CONTENT) && !ids.contains(&OTHER_LANGUAGE), "reserved themes are not ranked: {ids:?}");
    }

    #[test]
    fn a_theme_that_rides_along_with_a_churn_theme_is_not_a_clear_cost() {
        // 300 accounts, one response each. Billing (theme 1): accounts 0–59, half of them churn;
        // 4% of the rest churn. Dashboard (theme 2): written beside billing in 40 of billing's
        // verbatims (accounts 0–39) and alone by 60 accounts (240–299) whose churn is the
        // baseline's. Dashboard's accounts churn more than the rest only through billing.
        let mut inp = ImpactInput::default();
        let churned = |i: usize| if i < 60 { i.is_multiple_of(2) } else { i.is_multiple_of(25) };
        for i in 0..300 {
            inp.responses.push(response(i, &format!("a{i}"), 5.0, 10 * DAY + i as i64));
            inp.accounts.push(account(i, 10_000.0));
            if churned(i) {
                inp.outcomes.push(OutcomeRecord { account_id: format!("a{i}"), kind: OutcomeKind::Churn, occurred_at: 20 * DAY, arr_change: None });
            }
        }
        let seg = |response: usize, theme_id: i64| SegmentTheme { response, theme_id, text: String::new(), sentiment: None, similarity: None };
        inp.segments.extend((0..60).map(|i| seg(i, 1)));
        inp.segments.extend((0..40).chain(240..300).map(|i| seg(i, 2)));
        let r = build(&inp, Period { from: 7 * DAY, to: 14 * DAY }, 1);
        let theme = |id: i64| r.themes.iter().find(|t| t.theme_id == id).unwrap();
        let (billing, dashboard) = (theme(1), theme(2));
        // Alone, dashboard looks like a cost: 20 + 2 of 100 churned against 10 + 7 of 200.
        let crude = dashboard.churn_risk.unwrap();
        assert!(crude.low > 1.0, "{crude:?}");
        assert!(dashboard.excess_churned_arr.unwrap().is_clear());
        // Within accounts that raise billing (20/40 vs 10/20) and within the rest (2/60 vs 7/180):
        // no effect, so it is uncertain and names billing.
        let adjusted = dashboard.churn_risk_adjusted.unwrap();
        assert!(adjusted.low < 1.0 && adjusted.high > 1.0, "{adjusted:?}");
        assert_eq!((dashboard.evidence, dashboard.explained_by), (Evidence::Uncertain, Some(1)));
        // The reports say so in words, and show both ratios.
        assert_eq!(crate::report::theme_evidence_text(&r, dashboard), "uncertain (churn shared with “theme 1”)");
        let shown = crate::report::markdown::risk_ratio_text(dashboard);
        assert!(shown.starts_with(&format!("{:.2} [", crude.ratio)) && shown.contains(&format!("; adj. {:.2} [", adjusted.ratio)), "{shown}");
        // Billing keeps its effect within dashboard's strata and stays a clear cost, ranked first.
        assert!(billing.churn_risk_adjusted.unwrap().low > 1.0, "{billing:?}");
        assert_eq!((billing.evidence, billing.explained_by), (Evidence::Clear, None));
        assert_eq!(r.themes[0].theme_id, 1);
        // With billing alone clear, nothing is adjusted.
        inp.segments.retain(|s| s.theme_id == 1);
        let alone = build(&inp, Period { from: 7 * DAY, to: 14 * DAY }, 1);
        assert_eq!((alone.themes[0].evidence, alone.themes[0].churn_risk_adjusted), (Evidence::Clear, None));
    }

    #[test]
    fn q_values_tell_one_real_effect_from_chance_among_many_themes() {
        // 400 accounts, one response each; every tenth account churns (40 of them, 10%). Sixty
        // themes with no effect, each raised by 40 accounts of which 1 to 8 churned (4.5 on
        // average, as chance spreads the expected 4); theme 100 by 20 churned and 20 retained
        // accounts (50% churn against 5.6% for the rest).
        let mut inp = ImpactInput::default();
        for i in 0..400 {
            inp.responses.push(response(i, &format!("a{i}"), 7.0, 10 * DAY + i as i64));
            inp.accounts.push(account(i, 10_000.0));
            if i % 10 == 0 {
                inp.outcomes.push(OutcomeRecord { account_id: format!("a{i}"), kind: OutcomeKind::Churn, occurred_at: 20 * DAY, arr_change: None });
            }
        }
        let retained: Vec<usize> = (0..400).filter(|i| i % 10 != 0).collect();
        let seg = |response: usize, theme_id: i64| SegmentTheme { response, theme_id, text: String::new(), sentiment: None, similarity: None };
        for theme in 1..=60usize {
            let churned = 1 + theme % 8;
            inp.segments.extend((0..churned).map(|t| seg(10 * ((7 * theme + t) % 40), theme as i64)));
            inp.segments.extend((0..40 - churned).map(|t| seg(retained[(37 * theme + 13 * t) % 360], theme as i64)));
        }
        inp.segments.extend((0..20).map(|j| seg(10 * j, 100)).chain((0..20).map(|j| seg(10 * j + 1, 100))));
        let r = build(&inp, Period { from: 7 * DAY, to: 14 * DAY }, 1);
        let real = r.themes.iter().find(|t| t.theme_id == 100).unwrap();
        assert!(real.churn_q_value.unwrap() < 0.001 && real.evidence == Evidence::Clear, "{real:#?}");
        let null: Vec<&ThemeImpact> = r.themes.iter().filter(|t| t.theme_id != 100).collect();
        assert!(null.len() == 60 && null.iter().all(|t| t.accounts == 40));
        // Read one at a time, the themes with 8 churned of 40 (20% against 9%) look like findings
        // (p ≈ 0.02); adjusted for the 61 themes tested, none of them does.
        let by_chance = null.iter().filter(|t| t.churn_risk.unwrap().p_value < 0.05).count();
        assert_eq!(by_chance, 7, "{null:#?}");
        assert!(null.iter().all(|t| t.churn_q_value.unwrap() > 0.05 && t.churn_q_value.unwrap() >= t.churn_risk.unwrap().p_value), "{null:#?}");
    }

    #[test]
    fn no_churn_among_few_mentioners_is_uncertain_not_a_clear_finding() {
        // Theme 4: six accounts (6–11), none churned. Every bootstrap resample of them has a rate
        // of 0, so the excess interval alone would look clear (and negative); the risk ratio's
        // interval spans 1, so it is uncertain and ranks after the clear cost, before nothing clear.
        let mut inp = input(true);
        inp.segments.extend((6..12).map(|response| SegmentTheme { response, theme_id: 4, text: String::new(), sentiment: None, similarity: None }));
        let r = build(&inp, Period { from: 7 * DAY, to: 14 * DAY }, 1);
        let quiet = r.themes.iter().find(|t| t.theme_id == 4).unwrap();
        let e = quiet.excess_churned_arr.unwrap();
        assert!(e.value < 0.0 && e.is_clear(), "the degenerate bootstrap: {e:?}");
        assert_eq!(quiet.evidence, Evidence::Uncertain, "{quiet:#?}");
        assert_eq!(r.themes[0].theme_id, 1);
    }

    #[test]
    fn a_breakdown_shows_the_segment_a_blend_hides() {
        let mut inp = input(true);
        // Accounts 0–5 (the billing theme) are on "enterprise", the rest on "starter"; one
        // starter response overrides its plan on the response itself.
        for (i, a) in inp.accounts.iter_mut().enumerate() {
            a.attributes.insert("plan".into(), if i < 6 { "enterprise" } else { "starter" }.into());
        }
        inp.responses[19].attributes.insert("plan".into(), "trial".into());
        let billing = build(&inp, Period { from: 7 * DAY, to: 14 * DAY }, 1).themes.into_iter().find(|t| t.theme_id == 1).unwrap();
        let rows = breakdown(&inp, Period { from: 7 * DAY, to: 14 * DAY }, &billing, "plan");
        let values: Vec<(&str, usize, usize)> = rows.iter().map(|r| (r.value.as_str(), r.responses, r.mentioning)).collect();
        assert_eq!(values, [("starter", 13, 0), ("enterprise", 6, 6), ("trial", 1, 0)]);
        assert_eq!(rows[1].share, 1.0);
        assert_eq!(rows[1].impact, None, "everyone in the segment mentions it: nothing to compare with");
        assert!(breakdown(&inp, Period { from: 7 * DAY, to: 14 * DAY }, &billing, "region").iter().all(|r| r.value == "(none)"));
    }

    #[test]
    fn without_outcomes_the_ranking_is_by_arr_weighted_score_impact() {
        let r = build(&input(false), Period { from: 7 * DAY, to: 14 * DAY }, 1);
        assert_eq!(r.ranked_by, RankedBy::ArrWeightedScoreImpact);
        assert_eq!(r.themes[0].theme_id, 1, "detractors with 600k ARR drag the most");
        assert!(r.themes[0].arr_weighted_score_impact.unwrap() < 0.0);
        assert_eq!(r.themes.last().unwrap().theme_id, 3);
    }

    #[test]
    fn without_any_arr_the_ranking_is_by_score_impact_most_points_lost_first() {
        for with_outcomes in [false, true] {
            let mut inp = input(with_outcomes);
            inp.accounts.clear(); // a survey export alone: no account, no ARR
            let r = build(&inp, Period { from: 7 * DAY, to: 14 * DAY }, 1);
            assert_eq!(r.ranked_by, RankedBy::ScoreImpact);
            assert!(r.themes.iter().all(|t| t.arr_weighted_score_impact.is_some_and(|v| v == 0.0 && v.is_sign_positive())), "a plain zero, never −0");
            let ranked: Vec<(i64, f64)> = r.themes.iter().map(|t| (t.theme_id, t.headline_impact().unwrap())).collect();
            // Billing's six detractors cost the NPS 34 points; theme 2 (two detractors, twelve
            // passives) and theme 3 (two promoters) each raise it by 13.
            assert_eq!(ranked.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 2, 3], "{ranked:?}");
            assert!(ranked[0].1 < 0.0 && ranked.windows(2).all(|w| w[0].1 <= w[1].1), "{ranked:?}");
        }
    }

    /// 20 NPS answers: 10 promoters, 9 passives, and 1 detractor who raises theme 1 (NPS 45
    /// against 52.6 without it: −7.6 points). 20 CES 1–7 answers: 16 sixes, and 4 twos who raise
    /// theme 2 (mean effort 5.2 against 6.0: −0.8, a severe effort problem for a fifth of the CES
    /// respondents). In raw points theme 1 would rank first. Every account has 10k ARR.
    pub(crate) fn nps_and_ces_input() -> ImpactInput {
        let mut inp = ImpactInput::default();
        for i in 0..40 {
            let (survey, score) = match i {
                0..10 => (SurveyKind::Nps, 10.0),
                10..19 => (SurveyKind::Nps, 8.0),
                19 => (SurveyKind::Nps, 3.0),
                20..36 => (SurveyKind::Ces, 6.0),
                _ => (SurveyKind::Ces, 2.0),
            };
            inp.responses.push(ResponseRecord { survey, scale: survey.default_scale(), ..response(i, &format!("a{i}"), score, 10 * DAY + i as i64) });
            inp.accounts.push(account(i, 10_000.0));
            let theme_id = match i {
                19 => 1,
                36.. => 2,
                _ => continue,
            };
            inp.segments.push(SegmentTheme { response: i, theme_id, text: String::new(), sentiment: None, similarity: None });
        }
        inp
    }

    #[test]
    fn themes_whose_headline_is_ces_rank_in_nps_points() {
        let inp = nps_and_ces_input();
        let no_arr = ImpactInput { accounts: Vec::new(), ..inp.clone() };
        for (inp, by) in [(no_arr, RankedBy::ScoreImpact), (inp, RankedBy::ArrWeightedScoreImpact)] {
            let r = build(&inp, Period { from: 7 * DAY, to: 14 * DAY }, 1);
            assert_eq!(r.ranked_by, by);
            let ranked: Vec<(i64, Option<SurveyKind>, f64)> = r.themes.iter().map(|t| (t.theme_id, t.headline().map(|s| s.survey), t.headline_impact().unwrap())).collect();
            assert_eq!(ranked.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(), [(2, Some(SurveyKind::Ces)), (1, Some(SurveyKind::Nps))], "{ranked:?}");
            assert!((ranked[0].2 + 0.8).abs() < 1e-9 && (ranked[1].2 - (45.0 - 1000.0 / 19.0)).abs() < 1e-9, "displayed in their own points: {ranked:?}");
        }
        assert!((as_nps_points(SurveyKind::Ces, -0.8) + 48.0).abs() < 1e-9 && (as_nps_points(SurveyKind::Csat, -2.0) + 3.0).abs() < 1e-9);
    }

    #[test]
    fn headline_is_the_most_answered_survey_nps_first_on_a_tie() {
        use SurveyKind::*;
        assert_eq!(headline_survey([Csat, Nps]), Some(Nps));
        assert_eq!(headline_survey([Csat, Ces, Nps, Ces]), Some(Ces));
        assert_eq!(headline_survey([Ces, Csat]), Some(Csat));
        assert_eq!(headline_survey([]), None);
    }

    #[test]
    fn a_theme_headlines_the_survey_most_of_its_answers_came_from() {
        // Theme 2 is also raised by one NPS promoter: as an NPS theme it would raise the NPS by
        // 2.9 points and rank last, hiding the severe effort problem of its four CES answers.
        let mut inp = nps_and_ces_input();
        inp.segments.push(SegmentTheme { response: 0, theme_id: 2, text: String::new(), sentiment: None, similarity: None });
        let r = build(&inp, Period { from: 7 * DAY, to: 14 * DAY }, 1);
        let ranked: Vec<(i64, Option<SurveyKind>)> = r.themes.iter().map(|t| (t.theme_id, t.headline().map(|s| s.survey))).collect();
        assert_eq!(ranked, [(2, Some(SurveyKind::Ces)), (1, Some(SurveyKind::Nps))]);
        assert_eq!(r.themes[0].scores.len(), 2, "its NPS figures are still reported");
        let rows = breakdown(&inp, Period { from: 7 * DAY, to: 14 * DAY }, &r.themes[0], "plan");
        assert!(matches!(rows[..], [SegmentBreakdown { impact: Some(v), .. }] if (v + 0.8).abs() < 1e-9), "its breakdown reads the CES too: {rows:?}");
        // On a tie the NPS figures headline.
        inp.segments.push(SegmentTheme { response: 1, theme_id: 2, text: String::new(), sentiment: None, similarity: None });
        inp.segments.retain(|s| !(s.theme_id == 2 && s.response >= 38));
        let r = build(&inp, Period { from: 7 * DAY, to: 14 * DAY }, 1);
        let theme2 = r.themes.iter().find(|t| t.theme_id == 2).unwrap();
        assert_eq!(theme2.scores.iter().map(|s| (s.survey, s.responses)).collect::<Vec<_>>(), [(SurveyKind::Nps, 2), (SurveyKind::Ces, 2)]);
        assert_eq!(theme2.headline().map(|s| s.survey), Some(SurveyKind::Nps));
    }

    #[test]
    fn themes_of_accounts_without_arr_weigh_the_same_and_go_by_their_score_impact() {
        // Only theme 2's accounts have an ARR: billing (impact −34) and theme 3 (positive) both
        // weigh zero, and the one that loses points ranks first.
        let mut inp = input(false);
        inp.accounts.retain(|a| (6..18).any(|i| a.account_id == format!("a{i}")));
        let r = build(&inp, Period { from: 7 * DAY, to: 14 * DAY }, 1);
        assert_eq!(r.ranked_by, RankedBy::ArrWeightedScoreImpact);
        let weighted: Vec<(i64, f64)> = r.themes.iter().map(|t| (t.theme_id, t.arr_weighted_score_impact.unwrap())).collect();
        assert_eq!(weighted.iter().map(|w| w.0).collect::<Vec<_>>(), [1, 3, 2], "{weighted:?}");
        assert!(weighted[0].1 == 0.0 && weighted[1].1 == 0.0 && weighted[2].1 > 0.0, "{weighted:?}");
    }

    #[test]
    fn trend_uses_the_previous_period_and_outcomes_before_a_response_do_not_count() {
        let mut inp = input(true);
        // Last week: 4 responses, 2 of them billing.
        for i in 0..4 {
            inp.responses.push(response(100 + i, "a0", 5.0, 2 * DAY));
        }
        let n = inp.responses.len();
        inp.segments.push(SegmentTheme { response: n - 1, theme_id: 1, text: String::new(), sentiment: None, similarity: None });
        inp.segments.push(SegmentTheme { response: n - 2, theme_id: 1, text: String::new(), sentiment: None, similarity: None });
        // An old churn of a19, before its response: not caused by anything it said.
        inp.outcomes.push(OutcomeRecord { account_id: "a19".into(), kind: OutcomeKind::Churn, occurred_at: DAY, arr_change: None });
        let r = build(&inp, Period { from: 7 * DAY, to: 14 * DAY }, 1);
        let billing = r.themes.iter().find(|t| t.theme_id == 1).unwrap();
        assert_eq!(billing.previous_share, Some(0.5));
        let small = r.themes.iter().find(|t| t.theme_id == 3).unwrap();
        assert_eq!(small.revenue_churn.unwrap().0, 0.0);
    }
}
