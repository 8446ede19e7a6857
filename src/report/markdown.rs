//! The report as Markdown: the ranked table, alerts, at-risk accounts and how to read it, for a
//! chat message or a wiki page (charts are in the HTML report).

use std::fmt::Write;

use super::{theme_evidence_text, money, percent, period_label, ranked_by_text, HOW_TO_READ};
use crate::impact::document::Document;
use crate::impact::report::ThemeImpact;
use crate::survey::impact_text;

/// "NPS 12.0 (−4.1)": the theme's headline survey (the one most of its answers came from) and its impact.
pub fn headline_score(t: &ThemeImpact) -> String {
    t.headline().map_or("–".into(), survey_score)
}

/// Every survey's figures: "NPS 12.0 (−4.1), CSAT 80.0 (+1.2)".
pub fn all_scores(t: &ThemeImpact) -> String {
    t.scores.iter().map(survey_score).collect::<Vec<_>>().join(", ")
}

fn survey_score(s: &crate::impact::report::SurveyImpact) -> String {
    let metric = s.metric.map_or("–".into(), |m| format!("{m:.1}"));
    let impact = s.impact.map_or(String::new(), |i| format!(" ({})", impact_text(s.survey, i)));
    format!("{} {metric}{impact}", s.survey)
}

/// "2.25 [1.10, 4.60], q 0.031; adj. 1.90 [1.05, 3.40]": the churn risk ratio, its interval, its
/// q-value (adjusted for every theme tested) and, for a clear theme beside other clear costs, the
/// ratio within strata of those (Mantel–Haenszel), or "–".
pub fn risk_ratio_text(t: &ThemeImpact) -> String {
    let (ratio, q, adjusted) = risk_ratio_parts(t);
    let q = q.map_or(String::new(), |q| format!(", {q}"));
    let adjusted = adjusted.map_or(String::new(), |a| format!("; {a}"));
    format!("{ratio}{q}{adjusted}")
}

/// The figures of [`risk_ratio_text`] apart: "2.25 [1.10, 4.60]", "q 0.031", "adj. 1.90 [1.05, 3.40]".
pub fn risk_ratio_parts(t: &ThemeImpact) -> (String, Option<String>, Option<String>) {
    let Some(x) = t.churn_risk else { return ("–".into(), None, None) };
    let q = t.churn_q_value.map(|q| if q < 0.001 { "q < 0.001".to_string() } else { format!("q {q:.3}") });
    let adjusted = t.churn_risk_adjusted.map(|a| format!("adj. {:.2} [{:.2}, {:.2}]", a.ratio, a.low, a.high));
    (format!("{:.2} [{:.2}, {:.2}]", x.ratio, x.low, x.high), q, adjusted)
}

/// "−12.3k [−20.1k, −4.0k]" or "–".
pub fn excess_text(t: &ThemeImpact) -> String {
    excess_parts(t).map_or("–".into(), |(value, interval)| format!("{value} {interval}"))
}

/// The excess churned ARR and its interval apart: "−12.3k", "[−20.1k, −4.0k]".
pub fn excess_parts(t: &ThemeImpact) -> Option<(String, String)> {
    t.excess_churned_arr.map(|e| (money(e.value), format!("[{}, {}]", money(e.low), money(e.high))))
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub fn render(doc: &Document) -> String {
    let r = &doc.impact;
    let mut out = String::new();
    let _ = writeln!(out, "# Verbatim report — {} ({})\n", doc.workspace, period_label(r.period));
    if !doc.scope.is_everything() {
        let _ = writeln!(out, "Scope: {}.\n", doc.scope.describe());
    }
    let _ = writeln!(out, "{} responses from {} accounts{}. {}\n", r.responses, r.accounts, super::not_english_note(r.not_english), ranked_by_text(r.ranked_by));
    let _ = writeln!(out, "| # | theme | evidence | mentions | share (prev.) | score (impact) | churn RR [95% CI], q | excess churned ARR [95% CI] | ARR at risk |");
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    for (i, t) in r.themes.iter().enumerate() {
        let prev = t.previous_share.map_or(String::new(), |p| format!(" ({})", percent(p)));
        let rr = risk_ratio_text(t);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {}{} | {} | {} | {} | {} |",
            i + 1,
            cell(&t.label),
            cell(&theme_evidence_text(r, t)),
            t.responses,
            percent(t.share),
            prev,
            all_scores(t),
            rr,
            excess_text(t),
            t.arr_at_risk.map_or("–".into(), money)
        );
    }
    let _ = writeln!(out, "\n## Alerts\n");
    if doc.alerts.is_empty() {
        let _ = writeln!(out, "None this period.");
    }
    for a in &doc.alerts {
        let _ = writeln!(out, "- **{}**: {}", cell(&a.label), a.message);
    }
    let _ = writeln!(out, "\n## Accounts to call\n");
    if doc.at_risk.is_empty() {
        let _ = writeln!(out, "None: no active account raised a theme that clearly drives churn in a negative sentence.");
    } else {
        let _ = writeln!(out, "| account | ARR | risk | ARR × risk | theme | what they said |");
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for a in &doc.at_risk {
            let _ = writeln!(out, "| {} | {} | {} | {} | {} | “{}” |", cell(&a.account_id), money(a.arr), percent(a.risk), money(a.expected_loss), cell(&a.label), cell(&a.quote));
        }
    }
    let _ = writeln!(out, "\n## Quotes\n");
    for t in &r.themes {
        let quotes = doc.quotes.get(&t.theme_id).map(Vec::as_slice).unwrap_or_default();
        let _ = writeln!(out, "**{}**", cell(&t.label));
        for q in quotes {
            let _ = writeln!(out, "> {}", cell(q));
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "## How to read this\n");
    for (term, text) in HOW_TO_READ {
        let _ = writeln!(out, "- **{term}**: {text}");
    }
    out
}
