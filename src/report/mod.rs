//! Renderings of a period's [`Document`]: JSON and CSV for other tools, Markdown for a chat or a
//! wiki, and one self-contained HTML file (inline CSS, SVG charts from plotters, no scripts, no
//! network fetches) for the CX team. Field names and units are documented in the README.

pub mod archive;
pub mod charts;
pub mod csv;
pub mod html;
pub mod json;
pub mod markdown;

use std::collections::HashMap;
use std::str::FromStr;

use crate::error::Error;
use crate::impact::alerts::AlertKind;
use crate::impact::document::{self, BreakdownBy, Document};
use crate::impact::report::{Evidence, ImpactReport, Period, RankedBy, ThemeImpact};
use crate::impact::scope::Scope;
use crate::store::{AccountRecord, Store, StoreResult, ThemeSegmentPage, ThemeSegmentQuery};

/// The bootstrap seed of every report: the same data gives the same intervals.
pub const SEED: u64 = 20_26;

/// Loads what `period` needs (with its history) from the store, narrows it to `scope` (a
/// condition the data cannot meet is an error naming `scope_field`) and assembles the document.
pub fn load(store: &dyn Store, workspace: &str, period: Period, by: &BreakdownBy, scope: &Scope, scope_field: &str) -> Result<Document, Error> {
    let input = scope.apply(&store.impact_input(workspace, document::history_start(period))?, scope_field)?;
    let doc = document::assemble(workspace, &input, period, by, SEED, chrono::Utc::now().timestamp());
    Ok(Document { scope: scope.clone(), ..doc })
}

/// The alerts of the last week of `period` (no bootstrap) among the responses in `scope`: what
/// `ListAlerts` returns.
pub fn load_alerts(store: &dyn Store, workspace: &str, period: Period, scope: &Scope, scope_field: &str) -> Result<Vec<crate::impact::alerts::Alert>, Error> {
    use crate::impact::alerts;
    let input = scope.apply(&store.impact_input(workspace, document::history_start(period))?, scope_field)?;
    let trends = alerts::trends(&input, document::last_week(period), alerts::HISTORY_PERIODS);
    let label = |id: i64| input.themes.iter().find(|t| t.id == id).map_or_else(|| format!("theme {id}"), |t| t.display_label().to_string());
    Ok(alerts::alerts(&trends, label))
}

/// Segments read from the store per step while a scope filters them.
const SCOPED_READ: usize = 200;

/// A page of one theme's segments within `scope` (what is behind a scoped report row): the
/// store's pages are read in order and filtered — the response, else its account, must be in
/// scope — until `q.limit` segments match or the theme is exhausted, so a page is full and its
/// last segment's position continues the next one exactly. Unlike a report, the scope is not
/// checked against the data: that no enterprise account wrote about this theme is an answer (an
/// empty page), and a theme's segments are too few to tell a misspelt value from an absent one.
pub fn theme_segment_page(store: &dyn Store, workspace: &str, q: &ThemeSegmentQuery, scope: &Scope) -> StoreResult<ThemeSegmentPage> {
    if scope.is_everything() {
        return store.theme_segment_page(workspace, q);
    }
    scoped_page(q, scope, |read| store.theme_segment_page(workspace, read), |id| store.get_account(workspace, id))
}

/// [`theme_segment_page`] over a page source and an account lookup.
fn scoped_page(
    q: &ThemeSegmentQuery,
    scope: &Scope,
    mut read_page: impl FnMut(&ThemeSegmentQuery) -> StoreResult<ThemeSegmentPage>,
    mut get_account: impl FnMut(&str) -> StoreResult<Option<AccountRecord>>,
) -> StoreResult<ThemeSegmentPage> {
    let mut accounts: HashMap<String, Option<AccountRecord>> = HashMap::new();
    let mut read = ThemeSegmentQuery { limit: q.limit.max(SCOPED_READ), ..q.clone() };
    let mut out = ThemeSegmentPage::default();
    loop {
        let page = read_page(&read)?;
        if read.after != q.after && page.version != out.version {
            // A recluster activated between two reads: start again on the new model.
            (read.after, out) = (q.after.clone(), ThemeSegmentPage::default());
            continue;
        }
        out.version = page.version;
        read.after = page.segments.last().map(|h| h.position());
        for hit in page.segments {
            if !accounts.contains_key(&hit.response.account_id) {
                accounts.insert(hit.response.account_id.clone(), get_account(&hit.response.account_id)?);
            }
            if !scope.matches(&hit.response, accounts[&hit.response.account_id].as_ref()) {
                continue;
            }
            if out.segments.len() == q.limit {
                out.more = true;
                return Ok(out);
            } else {
                out.segments.push(hit);
            }
        }
        if !page.more {
            break;
        }
    }
    Ok(out)
}

/// The end of a period that ends now. Periods end exclusively and times are whole seconds, so
/// this is one second past now: a response submitted this second is in a report asked for now.
pub fn until_now() -> i64 {
    chrono::Utc::now().timestamp() + 1
}

/// The period of `length` seconds that ends at `until`.
pub fn period_ending(until: i64, length: i64) -> Period {
    Period { from: until - length, to: until }
}

/// An output format of `verbatim report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Html,
    Markdown,
    Csv,
    Json,
}

impl FromStr for Format {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "html" => Ok(Format::Html),
            "md" | "markdown" => Ok(Format::Markdown),
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            _ => Err(Error::invalid("format", format!("unknown format {s:?}; expected html, md, csv or json"))),
        }
    }
}

/// Renders `doc` in `format`.
pub fn render(doc: &Document, format: Format) -> String {
    match format {
        Format::Html => html::render(doc),
        Format::Markdown => markdown::render(doc),
        Format::Csv => csv::render(doc),
        Format::Json => serde_json::to_string_pretty(&json::document(doc)).expect("JSON values serialise") + "\n",
    }
}

/// RFC 3339 in UTC, to the second.
pub fn timestamp(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map_or_else(|| t.to_string(), |d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// A period as people read it: "2026-11-16 – 2026-11-22" (the end is exclusive, so the last day
/// shown is the day before `to`).
pub fn period_label(p: Period) -> String {
    format!("{} – {}", day(p.from), day(p.to - 1))
}

/// After the response count: how many responses were set aside as not English, if any.
pub fn not_english_note(n: usize) -> String {
    match n {
        0 => String::new(),
        1 => " · 1 response not in English (not themed or ranked; theme −1)".into(),
        n => format!(" · {n} responses not in English (not themed or ranked; theme −1)"),
    }
}

/// The UTC day of `t`: "2026-11-22".
pub fn day(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map_or_else(|| t.to_string(), |d| d.format("%Y-%m-%d").to_string())
}

/// Money in the workspace's currency, short: 950, 12.3k, 4.56M.
pub fn money(v: f64) -> String {
    let a = v.abs();
    let sign = if v < 0.0 { "−" } else { "" };
    match a {
        _ if a >= 1e6 => format!("{sign}{:.2}M", a / 1e6),
        _ if a >= 1e3 => format!("{sign}{:.1}k", a / 1e3),
        _ => format!("{sign}{a:.0}"),
    }
}

/// A fraction as a percentage: 0.123 → "12.3%".
pub fn percent(v: f64) -> String {
    format!("{:.1}%", 100.0 * v)
}

pub fn evidence_name(e: Evidence) -> &'static str {
    match e {
        Evidence::Clear => "clear",
        Evidence::Uncertain => "uncertain",
        Evidence::TooLittleData => "too_little_data",
    }
}

/// A theme's evidence as people read it; a theme demoted because its churn is that of a
/// co-occurring clear cost names that theme.
pub fn theme_evidence_text(report: &ImpactReport, t: &ThemeImpact) -> String {
    match t.explained_by.and_then(|id| report.themes.iter().find(|o| o.theme_id == id)) {
        Some(other) => format!("uncertain (churn shared with “{}”)", other.label),
        // Not "too little data": a theme of a thousand mentions has plenty, only no money to weigh.
        None if report.ranked_by == RankedBy::ScoreImpact => "no revenue data".into(),
        None => evidence_text(t.evidence).to_string(),
    }
}

/// How people read the evidence level.
pub fn evidence_text(e: Evidence) -> &'static str {
    match e {
        Evidence::Clear => "clear",
        Evidence::Uncertain => "uncertain (could be chance)",
        Evidence::TooLittleData => "too little data",
    }
}

pub fn ranked_by_name(r: RankedBy) -> &'static str {
    match r {
        RankedBy::ExcessChurnedArr => "excess_churned_arr",
        RankedBy::ArrWeightedScoreImpact => "arr_weighted_score_impact",
        RankedBy::ScoreImpact => "score_impact",
    }
}

/// One sentence on what the ranking is by.
pub fn ranked_by_text(r: RankedBy) -> &'static str {
    match r {
        RankedBy::ExcessChurnedArr => "Ranked by revenue-weighted impact: churned ARR in excess of the baseline churn of accounts that did not raise the theme.",
        RankedBy::ArrWeightedScoreImpact => {
            "No churn outcomes recorded for these respondents yet: ranked by ARR-weighted score impact (ARR of the theme's accounts × its impact on the survey most of its answers came from / 100; a CSAT or CES impact counts as NPS points, 2 CSAT points or 0.05 CES as 3) instead."
        }
        RankedBy::ScoreImpact => {
            "No account revenue (ARR) recorded for these respondents: ranked by score impact on the survey most of the theme's answers came from (CSAT or CES counted as NPS points: 2 CSAT points or 0.05 CES as 3), most points lost first. Import accounts with their ARR to rank by revenue."
        }
    }
}

pub fn alert_kind_name(k: &AlertKind) -> &'static str {
    match k {
        AlertKind::VolumeSpike { .. } => "volume_spike",
        AlertKind::ImpactMove { .. } => "impact_move",
    }
}

/// The "how to read this" section, shared by the HTML and Markdown reports: every figure and the
/// formula behind it, as cited in `impact::stats`.
pub const HOW_TO_READ: &[(&str, &str)] = &[
    ("Mentions", "Responses in the period with at least one sentence assigned to the theme; share = mentions / all responses in the period; the trend compares with the same share in the previous period of equal length."),
    ("Score impact", "Thematic's definition: score(all responses) − score(all responses except those mentioning the theme). NPS in points (% promoters 9–10 − % detractors 0–6), CSAT in points of % top-two-box, CES on its mean (higher = easier). −6 means the score would be 6 points higher without the people who raise the theme. A theme's headline score (the one beside its label and in its ranking) is the survey most of its answers of the period came from, NPS then CSAT on a tie, and its trend's the one most of its answers of the nine weeks came from; its figures in every survey are in the JSON and CSV."),
    ("Sentiment", "Mean probability of negative / neutral / positive over the theme's sentences, from Verbatim's sentence-level sentiment model."),
    ("Churn risk ratio", "Share of mentioning accounts that churned ÷ share of other responding accounts that churned, with a 95% Katz log interval; a 0.5 correction is added to every cell when one is zero. Outcomes count from an account's first response in the period."),
    ("q-value", "The churn risk ratio's p-value (the chance of a ratio this far from 1 if the theme made no difference) adjusted for the number of themes tested in this report (Benjamini–Hochberg, over every theme with at least 5 accounts). A report tests many themes, and one at a time about 1 in 20 themes with no effect would look significant; themes whose q-value is at most 0.05 hold, on average, no more than 5% such chance findings among them. The evidence label below is per theme and does not yet use it."),
    ("Adjusted risk ratio", "Themes travel together: the accounts that find the dashboard cluttered may be the ones billed twice, sometimes in one verbatim, and a theme that rides along with a costly one shows its churn. So a clear theme's risk ratio is measured again within the accounts that raise another clear cost and within those that raise none, and the two are pooled (Mantel–Haenszel, with the Greenland–Robins interval): shown as \"adj.\" in the churn column. A theme whose adjusted interval includes 1 is uncertain, and names the clear cost it shares the most accounts with."),
    ("Revenue-weighted impact", "ARR(mentioning accounts) × (their revenue churn rate − the revenue churn rate of the other responding accounts), where revenue churn rate = churned ARR / ARR. It is the churned ARR in excess of the baseline, with a 95% interval from 1,000 seeded bootstrap resamples of accounts. It measures association, not proof of cause."),
    ("ARR at risk", "ARR of mentioning accounts not yet churned × the excess revenue churn rate (when positive): what the theme will cost if it keeps acting as it has."),
    ("Evidence", "clear: at least 5 mentioning accounts, a 95% interval of the revenue-weighted impact that excludes zero and a churn risk ratio whose interval excludes 1, also after adjustment for the other clear costs; uncertain: an interval spans no effect; too little data: fewer than 5 mentioning accounts or no comparison group; no revenue data: no respondent's account has an ARR, so no churn cost can be measured. Clear costs rank first, then uncertain themes, then themes clearly linked to less churn, and themes with too little data come last, whatever their point estimate."),
    ("Alerts", "Week over week, on the period's last 7 days: a volume spike is a mention count above the mean + 2 standard deviations of the 8 weeks before (a standard deviation of at least 1); a score-impact move is a change since the week before of 3 points or more for NPS, 2 for CSAT or 0.05 for CES (equal news: the same answers move about 1.5 times less as CSAT, 50 times less as CES). The trend charts show the same weekly shares."),
    ("At-risk accounts", "Active accounts with a negative sentence in the period on a theme whose revenue-weighted impact is clearly positive, ordered by ARR × the revenue churn rate of the accounts that raised that theme."),
];

/// Escapes text for HTML and XML.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::impact::scope::Condition;
    use crate::store::{ResponseRecord, ThemeSegmentHit};
    use crate::survey::SurveyKind;

    /// Segment `i` of a theme: response `r{i}` of account `a{i % 3}` (accounts a0 and a2 are
    /// enterprise, a1 is not), submitted at `i`.
    fn hit(i: usize) -> ThemeSegmentHit {
        let response = ResponseRecord {
            response_id: format!("r{i:03}"),
            account_id: format!("a{}", i % 3),
            survey: SurveyKind::Nps,
            scale: SurveyKind::Nps.default_scale(),
            score: 3.0,
            verbatim: "Slow support.".into(),
            submitted_at: i as i64,
            attributes: Default::default(),
        };
        ThemeSegmentHit { response, index: 0, text: "Slow support.".into(), sentiment: None, similarity: 0.9 }
    }

    /// Pages of `q.limit` segments after `q.after` from `n` segments, tagged `version`.
    fn page(n: usize, version: i64, q: &ThemeSegmentQuery) -> ThemeSegmentPage {
        let start = q.after.as_ref().map_or(0, |p| p.submitted_at as usize + 1);
        let segments: Vec<_> = (start..n).take(q.limit).map(hit).collect();
        ThemeSegmentPage { version, more: start + segments.len() < n, segments }
    }

    fn account(id: &str) -> StoreResult<Option<AccountRecord>> {
        let plan = if id == "a1" { "growth" } else { "enterprise" };
        Ok(Some(AccountRecord { account_id: id.into(), arr: 1.0, churned_at: None, attributes: [("plan".to_string(), plan.to_string())].into_iter().collect() }))
    }

    fn enterprise() -> Scope {
        Scope::new([], [Condition::parse("plan=enterprise", "filters").unwrap()])
    }

    #[test]
    fn a_scoped_page_is_full_and_continues_where_the_last_one_stopped() {
        // 700 segments: 467 enterprise (i % 3 != 1), read 300 at a time from the store.
        let q = ThemeSegmentQuery { theme_id: 1, since: None, until: None, sentiment: None, after: None, limit: 300 };
        let first = scoped_page(&q, &enterprise(), |r| Ok(page(700, 4, r)), account).unwrap();
        assert_eq!((first.version, first.segments.len(), first.more), (4, 300, true));
        assert!(first.segments.iter().all(|h| h.response.account_id != "a1"));
        let q2 = ThemeSegmentQuery { after: first.segments.last().map(|h| h.position()), ..q.clone() };
        let second = scoped_page(&q2, &enterprise(), |r| Ok(page(700, 4, r)), account).unwrap();
        assert_eq!((second.segments.len(), second.more), (167, false));
        let all: Vec<usize> = first.segments.iter().chain(&second.segments).map(|h| h.response.submitted_at as usize).collect();
        assert_eq!(all, (0..700).filter(|i| i % 3 != 1).collect::<Vec<_>>(), "every enterprise segment once, in order");
    }

    #[test]
    fn a_recluster_between_two_reads_restarts_the_page_on_the_new_model() {
        // The first store read comes from model 4; every later one from model 5, which holds
        // 500 segments: the page must be model 5's first 250 enterprise segments, not a splice.
        let q = ThemeSegmentQuery { theme_id: 1, since: None, until: None, sentiment: None, after: None, limit: 250 };
        let mut reads = Vec::new();
        let out = scoped_page(
            &q,
            &enterprise(),
            |r| {
                reads.push(r.after.as_ref().map(|p| p.submitted_at));
                Ok(if reads.len() == 1 { page(700, 4, r) } else { page(500, 5, r) })
            },
            account,
        )
        .unwrap();
        assert_eq!(reads, [None, Some(249), None, Some(249)], "read model 4, then model 5 from the request's own start");
        assert_eq!((out.version, out.segments.len(), out.more), (5, 250, true));
        let got: Vec<usize> = out.segments.iter().map(|h| h.response.submitted_at as usize).collect();
        assert_eq!(got, (0..500).filter(|i| i % 3 != 1).take(250).collect::<Vec<_>>());
    }

    #[test]
    fn numbers_and_times_read_well() {
        assert_eq!(money(950.0), "950");
        assert_eq!(money(12_345.0), "12.3k");
        assert_eq!(money(-4_560_000.0), "−4.56M");
        assert_eq!(percent(0.1234), "12.3%");
        assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(period_label(Period { from: 0, to: 7 * 86_400 }), "1970-01-01 – 1970-01-07");
        assert_eq!(escape("<a href=\"x\">Tom & 'Jerry'</a>"), "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;");
        assert_eq!("MD".parse::<Format>().unwrap(), Format::Markdown);
        assert!("pdf".parse::<Format>().unwrap_err().to_string().contains("html, md, csv or json"));
    }
}
