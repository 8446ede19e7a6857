//! The revenue report's computation (`impact::report::build`: per theme its scores, churn risk
//! ratios, the 1,000-resample bootstrap of its excess churned ARR, the co-occurring-cost
//! adjustment; then the accounts to call) on a synthetic workspace: `accounts` respondent accounts
//! with one response each in the period, spread over `themes` themes, 10% of them churned and a
//! half of one theme's detractors on top, so the report has clear costs and a list of accounts to call.
//!
//! `cargo bench --bench report` reports 10k and 100k respondent accounts. Without `--bench` (as
//! `cargo test --all-targets` runs it) it does a 2k smoke run.

use std::time::Instant;

use verbatim::impact::at_risk::at_risk_accounts;
use verbatim::impact::report::{build, Evidence, ImpactInput, Period, SegmentTheme};
use verbatim::sentiment::Sentiment;
use verbatim::store::{AccountRecord, OutcomeKind, OutcomeRecord, ResponseRecord};
use verbatim::survey::{Scale, SurveyKind};

const DAY: i64 = 86_400;

fn workspace(accounts: usize, themes: usize) -> ImpactInput {
    let mut input = ImpactInput::default();
    for i in 0..accounts {
        let account_id = format!("acct-{i:06}");
        let score = if i % 3 == 0 { 3.0 } else { 9.0 };
        input.responses.push(ResponseRecord {
            response_id: format!("r{i}"),
            account_id: account_id.clone(),
            survey: SurveyKind::Nps,
            scale: Scale { min: 0, max: 10 },
            score,
            verbatim: String::new(),
            submitted_at: 10 * DAY + i as i64,
            attributes: Default::default(),
        });
        let arr = 5_000.0 + (i % 97) as f64 * 1_000.0;
        input.accounts.push(AccountRecord { account_id: account_id.clone(), arr, churned_at: None, attributes: Default::default() });
        let theme_id = (i % themes) as i64 + 1;
        let sentiment = Sentiment::new(if score < 7.0 { [0.8, 0.1, 0.1] } else { [0.1, 0.2, 0.7] });
        input.segments.push(SegmentTheme { response: i, theme_id, text: format!("said by {account_id}"), sentiment: Some(sentiment), similarity: None });
        // Half of theme 1's detractors churn (the other half are the accounts to call); 10% of
        // everyone churns.
        if (theme_id == 1 && score < 7.0 && (i / themes).is_multiple_of(2)) || (i / themes) % 10 == 3 {
            input.outcomes.push(OutcomeRecord { account_id, kind: OutcomeKind::Churn, occurred_at: 20 * DAY, arr_change: None });
        }
    }
    input
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let sizes: &[(usize, usize)] = if bench { &[(10_000, 50), (100_000, 50), (100_000, 120)] } else { &[(2_000, 20)] };
    let period = Period { from: 7 * DAY, to: 14 * DAY };
    for &(accounts, themes) in sizes {
        let input = workspace(accounts, themes);
        let started = Instant::now();
        let report = build(&input, period, 3);
        let built = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let to_call = at_risk_accounts(&input, period, &report);
        let listed = started.elapsed().as_secs_f64();
        let clear = report.themes.iter().filter(|t| t.evidence == Evidence::Clear).count();
        assert!(clear > 0 && !to_call.is_empty(), "the synthetic workspace has a clear cost and accounts to call");
        println!("report {accounts} accounts, {themes} themes: build {built:.2} s ({clear} clear), accounts to call {listed:.3} s ({} listed)", to_call.len());
    }
}
