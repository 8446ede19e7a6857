//! Each theme's trend over recent periods and the week-over-week alerts read from it: a mention
//! volume beyond two standard deviations of its recent history, or a score impact that moved by
//! [`impact_move_threshold`] or more since the previous period.

use std::collections::{BTreeMap, BTreeSet};

use super::report::{headline_survey, ImpactInput, Period};
use super::stats::{self, ScoredResponse};
use crate::survey::{impact_text, SurveyKind};
use crate::themes::is_reserved;

/// Periods before the reported one that make a theme's recent history.
pub const HISTORY_PERIODS: usize = 8;
/// An NPS score impact that moves by this many points is an alert.
pub const IMPACT_MOVE_POINTS: f64 = 3.0;
/// A CSAT score impact that moves by this many points is an alert. NPS counts detractors as well
/// as promoters, CSAT only its top two boxes: the same answers read as NPS 0–10 and as CSAT 1–5
/// move 1.32 / 1.42 / 1.71 times as far in NPS points (`benches/impact_moves.py`: the simulated
/// workspace, every week of every theme, median / 90th / 99th percentile of the moves), so 3 NPS
/// points are about 2 CSAT points.
pub const CSAT_IMPACT_MOVE: f64 = 2.0;
/// A CES score impact that moves by this much is an alert: CES is a mean effort on the 1–7 scale,
/// whose impacts are hundredths, so NPS's 3 points are never reached. The same answers read as CES
/// 1–7 move 48 / 53 / 60 times less than as NPS (the same measurement), so 3 NPS points are about
/// 0.05.
pub const CES_IMPACT_MOVE: f64 = 0.05;

/// The move of a theme's score impact in `survey` that raises an alert.
pub fn impact_move_threshold(survey: SurveyKind) -> f64 {
    match survey {
        SurveyKind::Nps => IMPACT_MOVE_POINTS,
        SurveyKind::Csat => CSAT_IMPACT_MOVE,
        SurveyKind::Ces => CES_IMPACT_MOVE,
    }
}

/// One period of a theme's trend.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrendPoint {
    pub period: Period,
    /// Responses in the period, and those of them that mention the theme.
    pub responses: usize,
    pub mentions: usize,
    pub share: f64,
    /// The theme's headline survey over the whole trend ([`headline_survey`]) and the theme's
    /// impact on it in this period (`None` when the period has no answer to it).
    pub survey: Option<SurveyKind>,
    pub impact: Option<f64>,
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
            // One survey for the whole trend, so that no two weeks' impacts are in different units.
            let survey = headline_survey(members.iter().flatten().filter(|i| theirs.contains(i)).map(|&i| scored[i].survey));
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
                        survey,
                        impact: survey.and_then(|k| stats::score_impact(k, &responses, &mentions)),
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
    /// The headline score impact moved by at least [`impact_move_threshold`] since the previous
    /// period, both periods' headline being `survey`.
    ImpactMove { survey: SurveyKind, previous: f64, current: f64 },
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
        let before = earlier.last().filter(|p| p.survey == now.survey);
        if let (Some(survey), Some(current), Some(previous)) = (now.survey, now.impact, before.and_then(|p| p.impact)) {
            if (current - previous).abs() >= impact_move_threshold(survey) {
                let direction = if current < previous { "worse" } else { "better" };
                out.push(Alert {
                    theme_id,
                    label: label(theme_id),
                    kind: AlertKind::ImpactMove { survey, previous, current },
                    message: format!(
                        "{survey} impact moved from {} to {} points week over week ({}, {direction})",
                        impact_text(survey, previous),
                        impact_text(survey, current),
                        impact_text(survey, current - previous)
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
        let AlertKind::ImpactMove { survey, previous, current } = moved.kind else { panic!("{moved:?}") };
        assert!((previous - 0.0).abs() < 1e-9 && (current - (20.0 - 50.0)).abs() < 1e-9, "{previous} {current}");
        assert_eq!(survey, SurveyKind::Nps);
        assert!(moved.message.starts_with("NPS impact moved") && moved.message.contains("worse"), "{}", moved.message);
        // A flat theme with no change raises nothing.
        let flat = trends(&input(), Period { from: 7 * WEEK, to: 8 * WEEK }, HISTORY_PERIODS);
        assert!(alerts(&flat, |id| id.to_string()).is_empty());
    }

    /// `input()` as CES 1–7 answers (NPS 9 → 6, 7 → 5, 0 → 2): theme 2's impact moves from 0 to −0.7.
    fn ces_input() -> ImpactInput {
        let mut inp = input();
        for r in &mut inp.responses {
            r.score = match r.score as i64 { 9 => 6.0, 7 => 5.0, _ => 2.0 };
            (r.survey, r.scale) = (SurveyKind::Ces, SurveyKind::Ces.default_scale());
        }
        inp
    }

    #[test]
    fn a_ces_impact_move_is_read_on_its_own_scale() {
        let t = trends(&ces_input(), Period { from: 8 * WEEK, to: 9 * WEEK }, HISTORY_PERIODS);
        let moved = alerts(&t, |id| format!("theme {id}")).into_iter().find(|a| a.theme_id == 2).expect("a CES move is an alert");
        let AlertKind::ImpactMove { survey, previous, current } = moved.kind else { panic!("{moved:?}") };
        // Week 7: mean 5.5 with and without its 2 sixes and 2 fives. Week 8: its 4 twos give a
        // mean (8·6 + 8·5 + 4·2)/20 = 4.8 against 5.5 without.
        assert!(previous.abs() < 1e-9 && (current - (4.8 - 5.5)).abs() < 1e-9, "{previous} {current}");
        assert_eq!(survey, SurveyKind::Ces);
        assert!(moved.message.starts_with("CES impact moved from 0.00 to -0.70 points"), "{}", moved.message);
        assert!(current.abs() < IMPACT_MOVE_POINTS, "NPS's threshold would never see it");
    }

    #[test]
    fn each_survey_moves_against_its_own_threshold() {
        // One theme, its impact 0 last week and −2.5 points this week, read as NPS then as CSAT.
        let point = |week: i64, survey, impact| TrendPoint { period: Period { from: week * WEEK, to: (week + 1) * WEEK }, responses: 20, mentions: 4, share: 0.2, survey: Some(survey), impact: Some(impact) };
        let moved = |survey| alerts(&BTreeMap::from([(2, vec![point(7, survey, 0.0), point(8, survey, -2.5)])]), |id| id.to_string());
        assert!(moved(SurveyKind::Nps).is_empty(), "2.5 NPS points is within a week's noise");
        let csat = moved(SurveyKind::Csat);
        assert!(matches!(csat[..], [Alert { kind: AlertKind::ImpactMove { survey: SurveyKind::Csat, .. }, .. }]), "{csat:?}");
        assert!(csat[0].message.starts_with("CSAT impact moved from 0.0 to -2.5 points"), "{}", csat[0].message);
    }

    #[test]
    fn an_impact_is_not_compared_across_surveys() {
        // Weeks 0–7 answered in CES, week 8 in NPS: theme 2's trend is a CES one (32 of its 36
        // answers), and week 8 has no CES impact to compare with week 7's.
        let mut inp = input();
        let ces = ces_input();
        for (r, c) in inp.responses.iter_mut().zip(ces.responses) {
            if r.submitted_at < 8 * WEEK {
                *r = c;
            }
        }
        let t = trends(&inp, Period { from: 8 * WEEK, to: 9 * WEEK }, HISTORY_PERIODS);
        assert!(t[&2].iter().all(|p| p.survey == Some(SurveyKind::Ces)), "{:?}", t[&2]);
        assert!(t[&2][7].impact.is_some() && t[&2][8].impact.is_none(), "{:?}", t[&2]);
        let a = alerts(&t, |id| format!("theme {id}"));
        assert!(!a.iter().any(|a| matches!(a.kind, AlertKind::ImpactMove { .. })), "{a:#?}");
    }

    #[test]
    fn a_trend_reads_the_survey_the_theme_is_raised_in() {
        // Every week has NPS answers, but theme 2 is raised only by CES respondents (accounts
        // a16–a19 of the CES a12–a19): its trend is its CES impact (with an NPS-first rule it would
        // be no NPS impact at all, and never move).
        let mut inp = input();
        let ces = ces_input();
        for (r, c) in inp.responses.iter_mut().zip(ces.responses) {
            if r.account_id.trim_start_matches('a').parse::<usize>().unwrap() >= 12 {
                *r = c;
            }
        }
        let t = trends(&inp, Period { from: 8 * WEEK, to: 9 * WEEK }, HISTORY_PERIODS);
        assert!(t[&2].iter().all(|p| p.survey == Some(SurveyKind::Ces)), "{:?}", t[&2]);
        assert_eq!(t[&1][8].survey, Some(SurveyKind::Nps));
        // Week 7: its sixes and fives leave the CES mean at 5.5. Week 8: its four twos give
        // (6 + 5 + 6 + 5 + 4·2)/8 = 3.75 against 5.5 without them.
        let moved = alerts(&t, |id| format!("theme {id}")).into_iter().find(|a| a.theme_id == 2).expect("a CES move");
        let AlertKind::ImpactMove { survey, previous, current } = moved.kind else { panic!("{moved:?}") };
        assert_eq!(survey, SurveyKind::Ces);
        assert!(previous.abs() < 1e-9 && (current + 1.75).abs() < 1e-9, "{previous} {current}");
    }
}
