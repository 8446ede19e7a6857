//! Each theme's trend over recent periods and the week-over-week alerts read from it: a mention
//! volume beyond two standard deviations of its recent history, or a score impact that moved by
//! [`IMPACT_MOVE_POINTS`] or more since the previous period.

use std::collections::{BTreeMap, BTreeSet};

use super::report::{ImpactInput, Period};
use super::stats::{self, ScoredResponse};
use crate::survey::SurveyKind;
use crate::themes::is_reserved;

/// Periods before the reported one that make a theme's recent history.
pub const HISTORY_PERIODS: usize = 8;
/// A score impact that moves by this many points (NPS points, CSAT points, CES hundredths of
/// the 1–7 mean × 100 are not comparable, so CES moves are read on its own metric) is an alert.
pub const IMPACT_MOVE_POINTS: f64 = 3.0;

/// One period of a theme's trend.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrendPoint {
    pub period: Period,
    /// Responses in the period, and those of them that mention the theme.
    pub responses: usize,
    pub mentions: usize,
    pub share: f64,
    /// The theme's impact on the headline metric in that period (see [`headline_survey`]).
    pub impact: Option<f64>,
}

/// The headline survey of a set of responses: NPS when any is NPS, else the most answered one.
pub fn headline_survey(responses: &[ScoredResponse]) -> Option<SurveyKind> {
    let count = |k: SurveyKind| responses.iter().filter(|r| r.survey == k).count();
    if count(SurveyKind::Nps) > 0 {
        return Some(SurveyKind::Nps);
    }
    SurveyKind::ALL.into_iter().filter(|&k| count(k) > 0).max_by_key(|&k| count(k))
}

/// Every theme's trend over `history` periods before `period` and `period` itself (oldest first,
/// all the same length as `period`). Themes never mentioned in any of them are left out.
pub fn trends(input: &ImpactInput, period: Period, history: usize) -> BTreeMap<i64, Vec<TrendPoint>> {
    let mut periods = vec![period];
    for _ in 0..history {
        let earlier = periods.last().expect("one period").previous();
        periods.push(earlier);
    }
    periods.reverse();

    let mut mentioning: BTreeMap<i64, BTreeSet<usize>> = BTreeMap::new();
    for s in input.segments.iter().filter(|s| !is_reserved(s.theme_id)) {
        mentioning.entry(s.theme_id).or_default().insert(s.response);
    }
    let scored: Vec<ScoredResponse> =
        input.responses.iter().map(|r| ScoredResponse { survey: r.survey, score: r.score, scale: r.scale }).collect();
    let members: Vec<Vec<usize>> = periods
        .iter()
        .map(|p| (0..input.responses.len()).filter(|&i| p.contains(input.responses[i].submitted_at)).collect())
        .collect();

    mentioning
        .iter()
        .map(|(&theme, theirs)| {
            let points = periods
                .iter()
                .zip(&members)
                .map(|(&period, members)| {
                    let responses: Vec<ScoredResponse> = members.iter().map(|&i| scored[i]).collect();
                    let mentions: Vec<bool> = members.iter().map(|i| theirs.contains(i)).collect();
                    let n = mentions.iter().filter(|&&m| m).count();
                    TrendPoint {
                        period,
                        responses: members.len(),
                        mentions: n,
                        share: if members.is_empty() { 0.0 } else { n as f64 / members.len() as f64 },
                        impact: headline_survey(&responses).and_then(|k| stats::score_impact(k, &responses, &mentions)),
                    }
                })
                .collect();
            (theme, points)
        })
        .filter(|(_, points): &(i64, Vec<TrendPoint>)| points.iter().any(|p| p.mentions > 0))
        .collect()
}

/// Why a theme is flagged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AlertKind {
    /// Mentions this period beyond mean + 2 sd of the earlier periods (which had responses).
    VolumeSpike { mentions: usize, mean: f64, sd: f64 },
    /// The headline score impact moved by at least [`IMPACT_MOVE_POINTS`].
    ImpactMove { previous: f64, current: f64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub theme_id: i64,
    pub label: String,
    pub kind: AlertKind,
    /// One sentence a person can act on.
    pub message: String,
}

/// The alerts of the last point of each trend; `label` names a theme.
pub fn alerts(trends: &BTreeMap<i64, Vec<TrendPoint>>, label: impl Fn(i64) -> String) -> Vec<Alert> {
    let mut out = Vec::new();
    for (&theme_id, points) in trends {
        let Some((now, earlier)) = points.split_last() else { continue };
        let history: Vec<f64> = earlier.iter().filter(|p| p.responses > 0).map(|p| p.mentions as f64).collect();
        if now.responses > 0 && stats::is_volume_spike(&history, now.mentions as f64) {
            let (mean, sd) = stats::mean_sd(&history).expect("a spike needs history");
            out.push(Alert {
                theme_id,
                label: label(theme_id),
                kind: AlertKind::VolumeSpike { mentions: now.mentions, mean, sd },
                message: format!(
                    "{} mentions in the last 7 days against {mean:.1} ± {sd:.1} a week over the {} weeks before",
                    now.mentions,
                    history.len()
                ),
            });
        }
        if let (Some(current), Some(previous)) = (now.impact, earlier.last().and_then(|p| p.impact)) {
            if (current - previous).abs() >= IMPACT_MOVE_POINTS {
                let direction = if current < previous { "worse" } else { "better" };
                out.push(Alert {
                    theme_id,
                    label: label(theme_id),
                    kind: AlertKind::ImpactMove { previous, current },
                    message: format!(
                        "score impact moved from {previous:+.1} to {current:+.1} points week over week ({:+.1}, {direction})",
                        current - previous
                    ),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::impact::report::tests::response;
    use crate::impact::report::SegmentTheme;

    const WEEK: i64 = 7 * 86_400;

    /// Nine weeks of 20 NPS responses (week 8 is reported). Theme 1 gets 2 mentions a week, 9 in
    /// week 8; theme 2 a steady 4 a week, mentioned by promoters until week 7 and by detractors
    /// in week 8.
    fn input() -> ImpactInput {
        let mut inp = ImpactInput::default();
        for week in 0..9 {
            for j in 0..20 {
                let i = inp.responses.len();
                let theme2 = j >= 16;
                let score = if theme2 && week == 8 { 0.0 } else if j % 2 == 0 { 9.0 } else { 7.0 };
                inp.responses.push(response(i, &format!("a{j}"), score, week * WEEK + j as i64));
                let spike = if week == 8 { 9 } else { 2 };
                if j < spike {
                    inp.segments.push(SegmentTheme { response: i, theme_id: 1, text: String::new(), sentiment: None, similarity: None });
                }
                if theme2 {
                    inp.segments.push(SegmentTheme { response: i, theme_id: 2, text: String::new(), sentiment: None, similarity: None });
                }
            }
        }
        inp
    }

    #[test]
    fn trends_cover_the_history_and_the_period() {
        let t = trends(&input(), Period { from: 8 * WEEK, to: 9 * WEEK }, HISTORY_PERIODS);
        assert_eq!(t.keys().copied().collect::<Vec<_>>(), [1, 2]);
        let one = &t[&1];
        assert_eq!(one.len(), 9);
        assert_eq!(one[0].period, Period { from: 0, to: WEEK });
        assert_eq!(one.iter().map(|p| p.mentions).collect::<Vec<_>>(), [2, 2, 2, 2, 2, 2, 2, 2, 9]);
        assert!((one[8].share - 0.45).abs() < 1e-12);
    }

    #[test]
    fn a_volume_spike_and_an_impact_move_are_alerts_and_steady_themes_are_not() {
        let t = trends(&input(), Period { from: 8 * WEEK, to: 9 * WEEK }, HISTORY_PERIODS);
        let a = alerts(&t, |id| format!("theme {id}"));
        let spikes: Vec<i64> = a.iter().filter(|a| matches!(a.kind, AlertKind::VolumeSpike { .. })).map(|a| a.theme_id).collect();
        assert_eq!(spikes, [1], "{a:#?}");
        // Theme 2, week 7: NPS 50 (10 promoters of 20), 50 without its 2 promoters of 4 → impact 0.
        // Week 8: its 4 detractors: NPS (8 − 4)/20 = 20 against 8/16 = 50 without → impact −30.
        let moved = a.iter().find(|a| a.theme_id == 2).expect("theme 2 alert");
        let AlertKind::ImpactMove { previous, current } = moved.kind else { panic!("{moved:?}") };
        assert!((previous - 0.0).abs() < 1e-9 && (current - (20.0 - 50.0)).abs() < 1e-9, "{previous} {current}");
        assert!(moved.message.contains("worse"));
        // A flat theme with no change raises nothing.
        let flat = trends(&input(), Period { from: 7 * WEEK, to: 8 * WEEK }, HISTORY_PERIODS);
        assert!(alerts(&flat, |id| id.to_string()).is_empty());
    }

    #[test]
    fn headline_is_nps_else_the_most_answered_survey() {
        let r = |survey| ScoredResponse { survey, score: 3.0, scale: survey.default_scale() };
        assert_eq!(headline_survey(&[r(SurveyKind::Csat), r(SurveyKind::Nps)]), Some(SurveyKind::Nps));
        assert_eq!(headline_survey(&[r(SurveyKind::Csat), r(SurveyKind::Ces), r(SurveyKind::Ces)]), Some(SurveyKind::Ces));
        assert_eq!(headline_survey(&[]), None);
    }
}
