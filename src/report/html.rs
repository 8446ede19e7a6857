//! The report as one self-contained HTML file: inline CSS, inline SVG charts, no scripts and no
//! external resources, so it can be mailed, archived or opened offline.

use std::fmt::Write;

use super::markdown::{all_scores, excess_parts, headline_score, risk_ratio_parts};
use crate::survey::impact_text;
use super::{charts, escape, theme_evidence_text, money, percent, period_label, ranked_by_text, timestamp, HOW_TO_READ};
use crate::impact::document::Document;
use crate::impact::report::{Evidence, ThemeImpact};

/// Themes that get a detail section (trend chart, quotes, breakdowns).
pub const DETAILED_THEMES: usize = 10;

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#222;background:#f6f6f4}
main{max-width:1320px;margin:0 auto;padding:24px}
h1{font-size:1.6em;margin:0 0 4px} h2{margin-top:36px;border-bottom:2px solid #ddd;padding-bottom:4px}
.sub{color:#666} .card{background:#fff;border-radius:8px;padding:16px;margin:12px 0;box-shadow:0 1px 3px #0002}
table{border-collapse:collapse;width:100%;font-size:.92em} th,td{padding:6px 8px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
th{background:#fafafa} td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.fig{white-space:nowrap;font-variant-numeric:tabular-nums} td.label{min-width:12em} .card{overflow-x:auto}
.clear{color:#b3261e;font-weight:600} .uncertain{color:#777} .too_little_data{color:#999;font-style:italic}
.alert{border-left:4px solid #d97706;background:#fffbeb;padding:8px 12px;margin:6px 0}
blockquote{margin:6px 0;padding:4px 12px;border-left:3px solid #ccc;color:#444}
.theme{display:grid;grid-template-columns:430px 1fr;gap:16px} .chart svg{max-width:100%;height:auto}
.bar{display:inline-block;height:10px} .neg{background:#c8372d} .neu{background:#bbb} .pos{background:#3c8c5a}
dt{font-weight:600;margin-top:8px} dd{margin-left:0}
";

/// Figures that each stay whole, one per line: the ranking's interval and q-value cells would
/// otherwise run to one line wider than the page.
fn figures(parts: impl IntoIterator<Item = String>) -> String {
    parts.into_iter().map(|p| format!("<span class=\"fig\">{}</span>", escape(&p))).collect::<Vec<_>>().join("<br>")
}

fn sentiment_bar(t: &ThemeImpact) -> String {
    match t.sentiment_mix {
        Some([n, u, p]) => format!(
            "<span class=\"bar neg\" style=\"width:{:.0}px\" title=\"negative {}\"></span><span class=\"bar neu\" style=\"width:{:.0}px\" title=\"neutral {}\"></span><span class=\"bar pos\" style=\"width:{:.0}px\" title=\"positive {}\"></span>",
            80.0 * n, percent(n), 80.0 * u, percent(u), 80.0 * p, percent(p)
        ),
        None => "–".into(),
    }
}

fn evidence_class(e: Evidence) -> &'static str {
    super::evidence_name(e)
}

pub fn render(doc: &Document) -> String {
    let r = &doc.impact;
    let mut h = String::new();
    let title = format!("Verbatim report — {} — {}", doc.workspace, period_label(r.period));
    let _ = write!(h, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{}</title><style>{STYLE}</style></head><body><main>", escape(&title));
    let _ = write!(
        h,
        "<h1>{}</h1><p class=\"sub\">Period {}{} · {} responses from {} accounts{} · generated {}</p><p>{}</p>",
        escape(&format!("What your customers' comments cost — {}", doc.workspace)),
        escape(&period_label(r.period)),
        if doc.scope.is_everything() { String::new() } else { escape(&format!(" · scope: {}", doc.scope.describe())) },
        r.responses,
        r.accounts,
        escape(&super::not_english_note(r.not_english)),
        timestamp(doc.generated_at),
        escape(ranked_by_text(r.ranked_by))
    );

    let _ = write!(h, "<h2>Alerts</h2>");
    if doc.alerts.is_empty() {
        let _ = write!(h, "<p class=\"sub\">No volume spike or score-impact move this period.</p>");
    }
    for a in &doc.alerts {
        let _ = write!(h, "<div class=\"alert\"><strong>{}</strong>: {}</div>", escape(&a.label), escape(&a.message));
    }

    let _ = write!(h, "<h2>Ranked themes</h2><div class=\"card chart\" id=\"impact-chart\">{}</div>", charts::impact_bars(r));
    let _ = write!(h, "<div class=\"card\"><table id=\"ranking\"><thead><tr><th>#</th><th>theme</th><th>evidence</th><th>mentions</th><th>share (prev.)</th><th>score (impact)</th><th>sentiment</th><th>churn RR [95% CI], q</th><th>excess churned ARR [95% CI]</th><th>ARR at risk</th></tr></thead><tbody>");
    for (i, t) in r.themes.iter().enumerate() {
        let prev = t.previous_share.map_or(String::new(), |p| format!(" ({})", percent(p)));
        let (ratio, q, adjusted) = risk_ratio_parts(t);
        let rr = figures([Some(ratio), q, adjusted].into_iter().flatten());
        let excess = excess_parts(t).map_or("–".into(), |(value, interval)| figures([value, interval]));
        let _ = write!(
            h,
            "<tr><td class=\"num\">{}</td><td class=\"label\"><a href=\"#theme-{}\">{}</a></td><td class=\"{}\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}{}</td><td class=\"fig\" title=\"{}\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            i + 1,
            t.theme_id,
            escape(&t.label),
            evidence_class(t.evidence),
            escape(&theme_evidence_text(r, t)),
            t.responses,
            percent(t.share),
            prev,
            escape(&all_scores(t)),
            escape(&headline_score(t)),
            sentiment_bar(t),
            rr,
            excess,
            t.arr_at_risk.map_or("–".into(), money)
        );
    }
    let _ = write!(h, "</tbody></table></div>");

    let _ = write!(h, "<h2>Accounts to call this week</h2>");
    if doc.at_risk.is_empty() {
        let _ = write!(h, "<p class=\"sub\">None: no active account raised a theme that clearly drives churn in a negative sentence.</p>");
    } else {
        let _ = write!(h, "<div class=\"card\"><table id=\"at-risk\"><thead><tr><th>account</th><th>ARR</th><th>risk</th><th>ARR × risk</th><th>theme</th><th>what they said</th></tr></thead><tbody>");
        for a in &doc.at_risk {
            let _ = write!(
                h,
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>“{}”</td></tr>",
                escape(&a.account_id),
                money(a.arr),
                percent(a.risk),
                money(a.expected_loss),
                escape(&a.label),
                escape(&a.quote)
            );
        }
        let _ = write!(h, "</tbody></table></div>");
    }

    let _ = write!(h, "<h2>Themes in detail</h2>");
    for t in r.themes.iter().take(DETAILED_THEMES) {
        let _ = write!(h, "<section class=\"card\" id=\"theme-{}\"><h3>{}</h3><div class=\"theme\"><div class=\"chart trend\">", t.theme_id, escape(&t.label));
        if let Some(points) = doc.trends.get(&t.theme_id) {
            h.push_str(&charts::trend(&t.label, points));
        }
        let _ = write!(h, "</div><div>");
        for q in doc.quotes.get(&t.theme_id).into_iter().flatten() {
            let _ = write!(h, "<blockquote>“{}”</blockquote>", escape(q));
        }
        for b in doc.breakdowns.iter().filter(|b| b.theme_id == t.theme_id) {
            let _ = write!(h, "<p><strong>by {}</strong></p><table><thead><tr><th>{}</th><th>responses</th><th>mentioning</th><th>share</th><th>score impact</th></tr></thead><tbody>", escape(&b.attribute), escape(&b.attribute));
            for row in &b.rows {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                    escape(&row.value),
                    row.responses,
                    row.mentioning,
                    percent(row.share),
                    row.impact.zip(t.headline()).map_or("–".into(), |(v, h)| impact_text(h.survey, v))
                );
            }
            let _ = write!(h, "</tbody></table>");
        }
        let _ = write!(h, "</div></div></section>");
    }

    let _ = write!(h, "<h2>How to read this</h2><dl class=\"card\">");
    for (term, text) in HOW_TO_READ {
        let _ = write!(h, "<dt>{}</dt><dd>{}</dd>", escape(term), escape(text));
    }
    let _ = writeln!(h, "</dl></main></body></html>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::impact::document::{assemble, BreakdownBy};
    use crate::impact::report::Period;

    #[test]
    fn ranking_figures_break_between_figures_not_within_them() {
        // A risk ratio with its q-value (and an adjusted ratio) and an excess with its interval
        // ran to one unbreakable line each, wider than the page: the last columns, excess churned
        // ARR among them, fell off the card.
        let day = 86_400;
        let doc = assemble("w", &crate::impact::report::tests::input(true), Period { from: 7 * day, to: 14 * day }, &BreakdownBy::Auto, 1, 0);
        let billing = doc.impact.themes.iter().find(|t| t.theme_id == 1).expect("billing");
        let (ratio, q, _) = risk_ratio_parts(billing);
        let (value, interval) = excess_parts(billing).expect("an excess");
        let html = render(&doc);
        let ranking = &html[html.find("id=\"ranking\"").unwrap()..];
        let row = &ranking[ranking.find("#theme-1\"").unwrap()..];
        let row = &row[..row.find("</tr>").unwrap()];
        for figure in [ratio, q.expect("a q-value"), value, interval] {
            assert!(row.contains(&format!("<span class=\"fig\">{}</span>", escape(&figure))), "{figure} is not a figure of its own: {row}");
        }
        assert!(!row.contains(", q "), "{row}");
        assert!(html.contains(".fig{white-space:nowrap"));
    }
}
