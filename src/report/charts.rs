//! The report's charts as SVG strings, drawn by plotters: the impact bar chart and a theme's trend.

use std::collections::BTreeSet;

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

use super::money;
use crate::impact::alerts::TrendPoint;
use crate::impact::report::{Evidence, ImpactReport, RankedBy, ThemeImpact};
use crate::survey::SurveyKind;

/// Themes shown in the impact chart.
pub const IMPACT_BARS: usize = 12;
/// Most ticks on the impact chart's value axis.
const VALUE_TICKS: usize = 10;

const RED: RGBColor = RGBColor(200, 55, 45);
const GREY: RGBColor = RGBColor(160, 160, 160);
const GREEN: RGBColor = RGBColor(60, 140, 90);
const BLUE: RGBColor = RGBColor(45, 100, 180);
const FONT: &str = "sans-serif";

type ChartResult = Result<(), Box<dyn std::error::Error>>;

fn short(label: &str, max: usize) -> String {
    if label.chars().count() <= max {
        label.to_string()
    } else {
        label.chars().take(max - 1).collect::<String>() + "…"
    }
}

/// Horizontal bars, most costly on top: the revenue-weighted impact with its 95% interval as a
/// whisker (or, without outcomes, the ARR-weighted score impact). Uncertain themes are grey.
pub fn impact_bars(report: &ImpactReport) -> String {
    let mut svg = String::new();
    let shown = &report.themes[..report.themes.len().min(IMPACT_BARS)];
    // The score rankings compare themes in NPS points when their headline surveys differ; the
    // bars do the same, else they read in the one survey's own points.
    let surveys: BTreeSet<SurveyKind> = shown.iter().filter_map(|t| t.headline().map(|s| s.survey)).collect();
    let one_survey = (surveys.len() == 1).then(|| *surveys.first().expect("one"));
    let points = |t: &ThemeImpact, v: f64| if one_survey.is_some() { v } else { t.in_nps_points(v) };
    let rows: Vec<(String, f64, Option<(f64, f64)>, Evidence)> = shown
        .iter()
        .map(|t| match report.ranked_by {
            RankedBy::ExcessChurnedArr => {
                let e = t.excess_churned_arr;
                (t.label.clone(), e.map_or(0.0, |e| e.value), e.map(|e| (e.low, e.high)), t.evidence)
            }
            // Shown as a cost: a negative score impact is a positive drag.
            RankedBy::ArrWeightedScoreImpact => (t.label.clone(), -points(t, t.arr_weighted_score_impact.unwrap_or(0.0)), None, t.evidence),
            RankedBy::ScoreImpact => (t.label.clone(), -points(t, t.headline_impact().unwrap_or(0.0)), None, t.evidence),
        })
        .collect();
    let survey = one_survey.map_or("NPS", SurveyKind::as_str);
    let caption = match report.ranked_by {
        RankedBy::ExcessChurnedArr => "Churned ARR in excess of baseline (95% interval)".to_string(),
        RankedBy::ArrWeightedScoreImpact => format!("ARR-weighted score drag (ARR × −{survey} impact / 100)"),
        RankedBy::ScoreImpact => format!("Score drag ({survey} points the theme takes off the score)"),
    };
    let caption = if one_survey.is_none() && report.ranked_by != RankedBy::ExcessChurnedArr { caption + ", CSAT and CES as NPS points" } else { caption };
    let height = 70 + 34 * rows.len().max(1) as u32;
    if let Err(e) = draw_impact_bars(&mut svg, &rows, report.ranked_by, &caption, height) {
        tracing::warn!(error = %e, "impact chart failed");
    }
    svg
}

fn draw_impact_bars(svg: &mut String, rows: &[(String, f64, Option<(f64, f64)>, Evidence)], by: RankedBy, caption: &str, height: u32) -> ChartResult {
    let root = SVGBackend::with_string(svg, (860, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let lo = rows.iter().map(|r| r.2.map_or(r.1, |(l, _)| l).min(r.1)).fold(0.0, f64::min);
    let hi = rows.iter().map(|r| r.2.map_or(r.1, |(_, h)| h).max(r.1)).fold(0.0, f64::max);
    // The axis always holds zero; an empty or all-zero chart still gets a unit-wide axis.
    let span = if hi > lo { hi - lo } else { 1.0 };
    let pad = 0.05 * span;
    let decimals = tick_decimals(span + 2.0 * pad);
    let n = rows.len().max(1) as i32;
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, (FONT, 17))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(250)
        .build_cartesian_2d((lo - pad)..(hi + pad), (0..n).into_segmented())?;
    // A period without themes still draws its (empty) axes: one unlabelled row.
    let label_of = |v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(i) if (0..n).contains(i) => rows.get((n - 1 - i) as usize).map_or_else(String::new, |r| short(&r.0, 34)),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(rows.len().max(1))
        .y_label_formatter(&label_of)
        .x_labels(VALUE_TICKS)
        .x_label_formatter(&|v| match by {
            // Points: tens for NPS, hundredths for a CES mean; money holds zero, so its units suffice.
            RankedBy::ScoreImpact => format!("{v:.decimals$}"),
            _ => round_money(*v),
        })
        .label_style((FONT, 13))
        .draw()?;
    chart.draw_series(rows.iter().enumerate().map(|(rank, (_, value, _, evidence))| {
        let i = n - 1 - rank as i32;
        let color = match evidence {
            Evidence::Clear if *value >= 0.0 => RED,
            Evidence::Clear => GREEN,
            _ => GREY,
        };
        let mut bar = Rectangle::new([(0.0, SegmentValue::Exact(i)), (*value, SegmentValue::Exact(i + 1))], color.mix(0.85).filled());
        bar.set_margin(4, 4, 0, 0); // a gap between rows, or bars of one colour merge into a staircase
        bar
    }))?;
    chart.draw_series(rows.iter().enumerate().filter_map(|(rank, (_, _, interval, _))| {
        let (low, high) = (*interval)?;
        let i = n - 1 - rank as i32;
        Some(PathElement::new(vec![(low, SegmentValue::CenterOf(i)), (high, SegmentValue::CenterOf(i))], BLACK.stroke_width(2)))
    }))?;
    root.present()?;
    Ok(())
}

/// Decimals that tell an axis's ticks apart: plotters steps by 1, 2 or 5 × 10^k with at most
/// `VALUE_TICKS` ticks, so the step is at least span / VALUE_TICKS and needs no more decimals than it.
fn tick_decimals(span: f64) -> usize {
    (-(span / VALUE_TICKS as f64).log10().floor()).max(0.0) as usize
}

/// A money tick without the zeros a round step leaves: "200k", "1.5M" (not "200.0k", "1.50M").
fn round_money(v: f64) -> String {
    let text = money(v);
    match text.find(['k', 'M']) {
        Some(unit) if text[..unit].contains('.') => text[..unit].trim_end_matches('0').trim_end_matches('.').to_string() + &text[unit..],
        _ => text,
    }
}

/// The share of responses that mention a theme, period by period, with its mention counts. A week
/// without any response has no share: it is left out of the line, not drawn as 0%.
pub fn trend(label: &str, points: &[TrendPoint]) -> String {
    let mut svg = String::new();
    if let Err(e) = draw_trend(&mut svg, label, points) {
        tracing::warn!(error = %e, "trend chart failed");
    }
    svg
}

fn draw_trend(svg: &mut String, label: &str, points: &[TrendPoint]) -> ChartResult {
    let root = SVGBackend::with_string(svg, (420, 200)).into_drawing_area();
    root.fill(&WHITE)?;
    let top = points.iter().map(|p| 100.0 * p.share).fold(1.0, f64::max) * 1.15;
    let decimals = tick_decimals(top);
    let n = points.len().max(2);
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{} — share of responses by week", short(label, 30)), (FONT, 13))
        .margin(8)
        .margin_right(20) // the last week's date is centred on the edge of the plot
        .x_label_area_size(26)
        .y_label_area_size(40)
        .build_cartesian_2d(0..(n - 1), 0.0..top)?;
    let day = |i: &usize| {
        points
            .get(*i)
            .and_then(|p| chrono::DateTime::from_timestamp(p.period.from, 0))
            .map_or(String::new(), |d| d.format("%m-%d").to_string())
    };
    chart
        .configure_mesh()
        .x_labels(n.min(9))
        .x_label_formatter(&day)
        .y_labels(VALUE_TICKS)
        .y_label_formatter(&|v| format!("{v:.decimals$}%"))
        .label_style((FONT, 11))
        .draw()?;
    let answered: Vec<(usize, f64)> = points.iter().enumerate().filter(|(_, p)| p.responses > 0).map(|(i, p)| (i, 100.0 * p.share)).collect();
    // One line per run of consecutive answered weeks.
    for run in answered.chunk_by(|a, b| b.0 == a.0 + 1) {
        chart.draw_series(LineSeries::new(run.iter().copied(), BLUE.stroke_width(2)))?;
    }
    chart.draw_series(answered.iter().map(|&(i, v)| Circle::new((i, v), 3, BLUE.filled())))?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::impact::report::{ImpactInput, Period};

    #[test]
    fn charts_are_svg_with_labels() {
        let points: Vec<TrendPoint> = (0..9)
            .map(|i| TrendPoint { period: Period { from: i * 604_800, to: (i + 1) * 604_800 }, responses: 10, mentions: i as usize, share: i as f64 / 10.0, survey: None, impact: None })
            .collect();
        let svg = trend("billing & invoices", &points);
        assert!(svg.starts_with("<svg") && svg.contains("</svg>"), "{svg}");
        assert!(svg.contains("billing &amp; invoices"), "labels are escaped: {svg}");
        assert!(svg.contains("<polyline") || svg.contains("<path"), "the line is drawn");
    }

    #[test]
    fn a_trend_reads_its_scale_and_skips_weeks_without_responses() {
        // Shares of about 1%: whole-percent ticks read "0% 0% 0% 1% 1% 1%".
        let points: Vec<TrendPoint> = (0..9)
            .map(|i| {
                let responses = if i < 2 { 0 } else { 100 };
                let mentions = [0, 0, 1, 2, 1, 0, 1, 2, 1][i];
                let share = if responses == 0 { 0.0 } else { mentions as f64 / responses as f64 };
                TrendPoint { period: Period { from: i as i64 * 604_800, to: (i as i64 + 1) * 604_800 }, responses, mentions, share, survey: None, impact: None }
            })
            .collect();
        let svg = trend("billing", &points);
        let ticks: Vec<&str> = svg.split("</text>").filter_map(|t| t.rsplit('>').next()).map(str::trim).filter(|t| t.ends_with('%')).collect();
        assert!(ticks.len() >= 3, "{svg}");
        let distinct: std::collections::BTreeSet<&&str> = ticks.iter().collect();
        assert_eq!(distinct.len(), ticks.len(), "every tick reads differently: {ticks:?}");
        // Seven answered weeks: seven dots, and none for the two weeks before the first response.
        assert_eq!(svg.matches("<circle").count(), 7, "{svg}");
    }

    /// The numbers the SVG prints, in order (the value axis's ticks, for a bar chart).
    fn numeric_texts(svg: &str) -> Vec<String> {
        svg.split("</text>").filter_map(|t| t.rsplit('>').next()).filter(|t| t.trim().parse::<f64>().is_ok()).map(|t| t.trim().to_string()).collect()
    }

    #[test]
    fn score_ticks_read_at_the_scale_of_the_impacts() {
        let row = |label: &str, v: f64| (label.to_string(), v, None, Evidence::Clear);
        // A CES-only workspace: impacts are hundredths of a mean effort.
        let ces = [row("slow support", 0.031), row("billing", 0.018), row("login", -0.007)];
        // An NPS workspace: points.
        let nps = [row("slow support", 8.4), row("billing", 3.1), row("login", -1.2)];
        for (rows, finest) in [(&ces[..], 0.01), (&nps[..], 2.0)] {
            let mut svg = String::new();
            draw_impact_bars(&mut svg, rows, RankedBy::ScoreImpact, "drag", 200).unwrap();
            let ticks = numeric_texts(&svg);
            assert!(ticks.len() >= 3, "{ticks:?}");
            let distinct: std::collections::BTreeSet<&String> = ticks.iter().collect();
            assert_eq!(distinct.len(), ticks.len(), "every tick reads differently: {ticks:?}");
            let step = ticks[1].parse::<f64>().unwrap() - ticks[0].parse::<f64>().unwrap();
            assert!(step > 0.0 && step <= finest, "ticks step at the impacts' scale: {ticks:?}");
            assert_eq!(ticks.iter().any(|t| t.contains('.')), finest < 1.0, "whole points read whole: {ticks:?}");
        }
        assert_eq!(tick_decimals(0.05), 3);
        assert_eq!(tick_decimals(12.0), 0);
    }

    #[test]
    fn bars_of_themes_whose_headlines_differ_read_in_nps_points() {
        use crate::impact::report::{build, tests::nps_and_ces_input};
        let period = Period { from: 7 * 86_400, to: 14 * 86_400 };
        let mixed = build(&ImpactInput { accounts: Vec::new(), ..nps_and_ces_input() }, period, 1);
        let svg = impact_bars(&mixed);
        assert!(svg.contains("Score drag (NPS points the theme takes off the score), CSAT and CES as NPS points"), "{svg}");
        // The CES theme's −0.8 is 48 NPS points: the axis reaches it.
        let top = numeric_texts(&svg).iter().map(|t| t.parse::<f64>().unwrap()).fold(f64::MIN, f64::max);
        assert!(top >= 40.0, "{top}");
        // One survey: its own points, named.
        let mut ces_only = nps_and_ces_input();
        ces_only.responses.retain(|r| r.survey == SurveyKind::Ces);
        ces_only.segments.retain(|s| s.theme_id == 2);
        for s in &mut ces_only.segments {
            s.response -= 20;
        }
        let svg = impact_bars(&build(&ImpactInput { accounts: Vec::new(), ..ces_only }, period, 1));
        assert!(svg.contains("Score drag (CES points the theme takes off the score)\n"), "{svg}");
    }

    #[test]
    fn money_ticks_drop_the_zeros_of_a_round_step() {
        let ticks: Vec<String> = [-200_000.0, 0.0, 250_000.0, 1_500_000.0, 2_000_000.0, 1_250.0, 500.0].map(round_money).to_vec();
        assert_eq!(ticks, ["−200k", "0", "250k", "1.5M", "2M", "1.2k", "500"]);
    }

    #[test]
    fn a_period_without_themes_draws_empty_axes() {
        let report = crate::impact::report::build(&Default::default(), Period { from: 0, to: 604_800 }, 7);
        assert!(report.themes.is_empty());
        let svg = impact_bars(&report);
        assert!(svg.starts_with("<svg") && svg.contains("</svg>"), "{svg}");
    }
}
