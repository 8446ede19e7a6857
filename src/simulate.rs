//! A realistic synthetic workspace, so the whole path (import → recluster → report) can be tried
//! and tested without private data: accounts with log-normal ARR across plans, survey responses
//! whose verbatims carry known themes, and churn raised by chosen themes.
//!
//! The generating model, per response: each planted theme appears with its own probability; a
//! latent satisfaction (0–1) starts at 0.78, moves by each present theme's `score_shift`, gets
//! Gaussian noise (sd 0.1), and becomes a score on the response's scale. Per account: a churn
//! probability of 6% × the `churn_multiplier` of every theme it raised (at most 90%); a churning
//! account churns 1–21 days after its last response, and is still active when that date is past
//! the end of the simulation (those are the accounts a report should flag).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use rand_xoshiro::rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::error::{Error, Result};

const DAY: i64 = 86_400;
/// Churn probability of an account that raised no churn-driving theme.
pub const BASE_CHURN: f64 = 0.06;

/// A theme the simulation plants in verbatims.
#[derive(Debug, Clone, Copy)]
pub struct PlantedTheme {
    pub name: &'static str,
    /// Probability that a response raises it.
    pub frequency: f64,
    /// Change of the latent satisfaction (0–1) when raised.
    pub score_shift: f64,
    /// Multiplies the account's churn probability when raised.
    pub churn_multiplier: f64,
    pub sentences: &'static [&'static str],
}

/// The planted themes: two drive churn (billing errors, broken integrations), one is the most
/// frequent and drags scores a little but does not change churn (dashboard design), and the rest
/// are everyday praise and friction.
pub const THEMES: &[PlantedTheme] = &[
    PlantedTheme {
        name: "billing errors",
        frequency: 0.11,
        score_shift: -0.35,
        churn_multiplier: 7.0,
        sentences: &[
            "We were charged twice for the same invoice.",
            "The invoice amount was wrong again this month.",
            "Billing keeps charging us for seats we removed months ago.",
            "I am still waiting for the refund of a duplicate charge.",
        ],
    },
    PlantedTheme {
        name: "integration sync failures",
        frequency: 0.09,
        score_shift: -0.3,
        churn_multiplier: 6.0,
        sentences: &[
            "The Salesforce integration stopped syncing contacts again.",
            "Our HubSpot sync silently fails and we lose data.",
            "Records from the CRM integration are duplicated after every sync.",
            "The API integration breaks every time you release an update.",
        ],
    },
    PlantedTheme {
        name: "dashboard design",
        frequency: 0.3,
        score_shift: -0.05,
        churn_multiplier: 1.0,
        sentences: &[
            "The new dashboard looks cluttered.",
            "Please add a dark mode to the dashboard.",
            "The charts on the dashboard are hard to read.",
            "I would like to customise the colours of the dashboard widgets.",
        ],
    },
    PlantedTheme {
        name: "helpful support",
        frequency: 0.22,
        score_shift: 0.12,
        churn_multiplier: 0.8,
        sentences: &[
            "Your support team answered within minutes.",
            "The support agent solved my problem on the first call.",
            "Support is friendly and knows the product well.",
            "Thanks to Maria from support for the quick help.",
        ],
    },
    PlantedTheme {
        name: "slow mobile app",
        frequency: 0.12,
        score_shift: -0.1,
        churn_multiplier: 1.0,
        sentences: &[
            "The mobile app takes ages to load.",
            "The iPhone app freezes when I open a report.",
            "The Android app is much slower than the website.",
            "The mobile app logs me out every day.",
        ],
    },
    PlantedTheme {
        name: "onboarding",
        frequency: 0.1,
        score_shift: -0.04,
        churn_multiplier: 1.0,
        sentences: &[
            "Onboarding took longer than we expected.",
            "The setup guide skipped the steps we needed.",
            "Our onboarding specialist walked us through the setup.",
            "Getting the team started with the training videos was easy.",
        ],
    },
];

/// How big a workspace to simulate.
#[derive(Debug, Clone)]
pub struct SimulateOptions {
    pub accounts: usize,
    pub weeks: usize,
    pub responses_per_week: usize,
    /// Seconds since the epoch: the simulation ends here (responses before it).
    pub end: i64,
    /// Multiplies the second churn theme's frequency in the last week, for a volume alert.
    pub last_week_spike: f64,
    pub seed: u64,
}

impl Default for SimulateOptions {
    fn default() -> Self {
        Self { accounts: 2000, weeks: 8, responses_per_week: 500, end: chrono::Utc::now().timestamp(), last_week_spike: 2.5, seed: 7 }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SimAccount {
    pub account_id: String,
    pub plan: &'static str,
    pub region: &'static str,
    pub arr: f64,
    pub churned_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SimResponse {
    pub response_id: String,
    pub account_id: String,
    pub survey: &'static str,
    pub scale: (i32, i32),
    pub score: i32,
    pub verbatim: String,
    pub submitted_at: i64,
    pub channel: &'static str,
    /// Names of the planted themes in the verbatim.
    pub themes: Vec<&'static str>,
}

#[derive(Debug, Clone, Default)]
pub struct Simulation {
    pub accounts: Vec<SimAccount>,
    pub responses: Vec<SimResponse>,
}

struct Rng(Xoshiro256PlusPlus);

impl Rng {
    fn uniform(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize % n.max(1)
    }

    /// Box–Muller.
    fn normal(&mut self) -> f64 {
        let u = self.uniform().max(1e-12);
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * self.uniform()).cos()
    }
}

/// (plan, share of accounts, median ARR, log-sd).
const PLANS: &[(&str, f64, f64, f64)] = &[("starter", 0.6, 4_000.0, 0.5), ("growth", 0.3, 25_000.0, 0.5), ("enterprise", 0.1, 150_000.0, 0.6)];
const REGIONS: &[&str] = &["EMEA", "North America", "APAC"];
/// Openers that vary a sentence without changing its topic.
const OPENERS: &[&str] = &["", "", "", "", "Honestly, "];

/// Generates a workspace; the same options give the same data.
pub fn simulate(opts: &SimulateOptions) -> Simulation {
    let mut rng = Rng(Xoshiro256PlusPlus::seed_from_u64(opts.seed));
    let mut sim = Simulation::default();
    for i in 0..opts.accounts {
        let pick = rng.uniform();
        let mut cumulative = 0.0;
        let &(plan, _, median, sd) = PLANS.iter().find(|p| {
            cumulative += p.1;
            pick < cumulative
        }).unwrap_or(&PLANS[0]);
        let arr = (median * (sd * rng.normal()).exp()).round();
        let region = REGIONS[rng.below(REGIONS.len())];
        sim.accounts.push(SimAccount { account_id: format!("acct-{i:04}"), plan, region, arr, churned_at: None });
    }

    let start = opts.end - opts.weeks as i64 * 7 * DAY;
    let mut raised: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); opts.accounts];
    let mut last_response: Vec<Option<i64>> = vec![None; opts.accounts];
    for week in 0..opts.weeks {
        for _ in 0..opts.responses_per_week {
            let a = rng.below(opts.accounts);
            let at = start + week as i64 * 7 * DAY + (rng.uniform() * 7.0 * DAY as f64) as i64;
            let mut present: Vec<usize> = (0..THEMES.len())
                .filter(|&t| {
                    let spike = if t == 1 && week + 1 == opts.weeks { opts.last_week_spike } else { 1.0 };
                    rng.uniform() < THEMES[t].frequency * spike
                })
                .collect();
            if present.is_empty() {
                present.push(rng.below(THEMES.len()));
            }
            let mut satisfaction = 0.78 + 0.1 * rng.normal();
            let mut sentences = Vec::new();
            for &t in &present {
                satisfaction += THEMES[t].score_shift;
                let s = THEMES[t].sentences[rng.below(THEMES[t].sentences.len())];
                let opener = OPENERS[rng.below(OPENERS.len())];
                let keep_capital = opener.is_empty() || s.starts_with("I ");
                sentences.push(if keep_capital { format!("{opener}{s}") } else { format!("{opener}{}{}", s[..1].to_lowercase(), &s[1..]) });
                raised[a].insert(t);
            }
            let satisfaction = satisfaction.clamp(0.0, 1.0);
            let pick = rng.uniform();
            let (survey, scale) = if pick < 0.75 { ("NPS", (0, 10)) } else if pick < 0.9 { ("CSAT", (1, 5)) } else { ("CES", (1, 7)) };
            let score = scale.0 + (satisfaction * f64::from(scale.1 - scale.0)).round() as i32;
            let channel = if rng.uniform() < 0.6 { "email" } else { "in-app" };
            last_response[a] = Some(last_response[a].map_or(at, |t: i64| t.max(at)));
            sim.responses.push(SimResponse {
                response_id: format!("resp-{:05}", sim.responses.len()),
                account_id: sim.accounts[a].account_id.clone(),
                survey,
                scale,
                score,
                verbatim: sentences.join(" "),
                submitted_at: at,
                channel,
                themes: present.iter().map(|&t| THEMES[t].name).collect(),
            });
        }
    }
    for (a, account) in sim.accounts.iter_mut().enumerate() {
        let Some(last) = last_response[a] else { continue };
        let p = (BASE_CHURN * raised[a].iter().map(|&t| THEMES[t].churn_multiplier).product::<f64>()).min(0.9);
        if rng.uniform() < p {
            let at = last + DAY + (rng.uniform() * 20.0 * DAY as f64) as i64;
            account.churned_at = (at < opts.end).then_some(at);
        }
    }
    sim.responses.sort_by_key(|r| r.submitted_at);
    sim
}

/// The files [`write`] produces.
#[derive(Debug, Clone)]
pub struct SimulationFiles {
    pub accounts: PathBuf,
    pub responses: PathBuf,
    /// Every response's planted themes: response_id, themes (";"-separated).
    pub truth: PathBuf,
}

/// Writes `accounts.csv`, `responses.csv` (both in `verbatim import` / `import-accounts` format)
/// and `truth.csv` into `dir`.
pub fn write(sim: &Simulation, dir: &Path) -> Result<SimulationFiles> {
    std::fs::create_dir_all(dir).map_err(|e| Error::invalid("--out", format!("cannot create {}: {e}", dir.display())))?;
    let files = SimulationFiles { accounts: dir.join("accounts.csv"), responses: dir.join("responses.csv"), truth: dir.join("truth.csv") };
    let csv_error = |path: &Path, e: &dyn std::fmt::Display| Error::invalid("--out", format!("cannot write {}: {e}", path.display()));
    let time = |t: i64| crate::report::timestamp(t);

    let mut w = csv::Writer::from_path(&files.accounts).map_err(|e| csv_error(&files.accounts, &e))?;
    w.write_record(["account_id", "arr", "churned_at", "plan", "region"]).map_err(|e| csv_error(&files.accounts, &e))?;
    for a in &sim.accounts {
        let churned = a.churned_at.map(time).unwrap_or_default();
        w.write_record([a.account_id.as_str(), &format!("{:.0}", a.arr), &churned, a.plan, a.region]).map_err(|e| csv_error(&files.accounts, &e))?;
    }
    w.flush().map_err(|e| csv_error(&files.accounts, &e))?;

    let mut w = csv::Writer::from_path(&files.responses).map_err(|e| csv_error(&files.responses, &e))?;
    w.write_record(["response_id", "account_id", "survey", "score", "scale_min", "scale_max", "verbatim", "submitted_at", "channel"])
        .map_err(|e| csv_error(&files.responses, &e))?;
    for r in &sim.responses {
        w.write_record([
            r.response_id.as_str(),
            &r.account_id,
            r.survey,
            &r.score.to_string(),
            &r.scale.0.to_string(),
            &r.scale.1.to_string(),
            &r.verbatim,
            &time(r.submitted_at),
            r.channel,
        ])
        .map_err(|e| csv_error(&files.responses, &e))?;
    }
    w.flush().map_err(|e| csv_error(&files.responses, &e))?;

    let mut f = std::fs::File::create(&files.truth).map_err(|e| csv_error(&files.truth, &e))?;
    let mut text = String::from("response_id,themes\n");
    for r in &sim.responses {
        text.push_str(&format!("{},{}\n", r.response_id, r.themes.join(";")));
    }
    f.write_all(text.as_bytes()).map_err(|e| csv_error(&files.truth, &e))?;
    Ok(files)
}

/// The planted theme a sentence came from (openers like "Honestly, " ignored).
pub fn planted_theme_of(sentence: &str) -> Option<&'static str> {
    let s = sentence.trim().to_lowercase();
    THEMES.iter().find(|t| t.sentences.iter().any(|x| s.ends_with(&x.to_lowercase()))).map(|t| t.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SimulateOptions {
        SimulateOptions { accounts: 300, weeks: 8, responses_per_week: 150, end: 1_790_000_000, last_week_spike: 2.5, seed: 3 }
    }

    #[test]
    fn the_same_seed_gives_the_same_workspace() {
        let (a, b) = (simulate(&small()), simulate(&small()));
        assert_eq!(a.accounts, b.accounts);
        assert_eq!(a.responses, b.responses);
        let c = simulate(&SimulateOptions { seed: 4, ..small() });
        assert_ne!(a.responses, c.responses);
    }

    #[test]
    fn planted_themes_drive_churn_and_scores_as_designed() {
        let sim = simulate(&small());
        assert_eq!(sim.responses.len(), 8 * 150);
        assert!(sim.responses.iter().all(|r| r.submitted_at < 1_790_000_000 && r.score >= r.scale.0 && r.score <= r.scale.1));
        // ARR is log-normal by plan: enterprise medians far above starter.
        let median = |plan: &str| {
            let mut v: Vec<f64> = sim.accounts.iter().filter(|a| a.plan == plan).map(|a| a.arr).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        assert!(median("enterprise") > 10.0 * median("starter"));
        // Accounts that raised billing churn far more often than those that raised only dashboard design.
        let raised = |account: &str, theme: &str| sim.responses.iter().any(|r| r.account_id == account && r.themes.contains(&theme));
        let churn_rate = |pred: &dyn Fn(&SimAccount) -> bool| {
            let group: Vec<&SimAccount> = sim.accounts.iter().filter(|a| pred(a)).collect();
            group.iter().filter(|a| a.churned_at.is_some()).count() as f64 / group.len() as f64
        };
        let billing = churn_rate(&|a| raised(&a.account_id, "billing errors"));
        let calm = churn_rate(&|a| !raised(&a.account_id, "billing errors") && !raised(&a.account_id, "integration sync failures"));
        assert!(billing > 2.5 * calm, "{billing} vs {calm}");
        // Every verbatim sentence maps back to its planted theme.
        for r in sim.responses.iter().take(50) {
            for t in &r.themes {
                assert!(crate::text::split_verbatim(&r.verbatim).segment_texts().any(|s| planted_theme_of(s) == Some(t)), "{r:?}");
            }
        }
    }

    #[test]
    fn files_import_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let files = write(&simulate(&small()), dir.path()).unwrap();
        let responses = std::fs::read_to_string(&files.responses).unwrap();
        assert!(responses.starts_with("response_id,account_id,survey,score,scale_min,scale_max,verbatim,submitted_at,channel\n"));
        assert_eq!(responses.lines().count(), 1 + 8 * 150);
        let accounts = std::fs::read_to_string(&files.accounts).unwrap();
        assert_eq!(accounts.lines().count(), 301);
        assert!(std::fs::read_to_string(&files.truth).unwrap().contains("billing errors"));
    }
}
