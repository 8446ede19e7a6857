//! The statistics behind the impact ranking, as pure functions on plain numbers. Every formula is
//! cited where it is computed; the report's "how to read this" section says the same in words.

use rand_xoshiro::rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256Plus;

use crate::survey::{self, Scale, SurveyKind};

/// 1.96: the two-sided 95% normal quantile.
const Z95: f64 = 1.959_963_984_540_054;

/// One response as the score statistics see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoredResponse {
    pub survey: SurveyKind,
    pub score: f64,
    pub scale: Scale,
}

/// The survey's own metric over `responses` of that survey: NPS in points, CSAT in % top-two-box,
/// CES as the mean on 1–7. `None` without responses.
pub fn metric(survey: SurveyKind, responses: &[ScoredResponse]) -> Option<f64> {
    let of_kind = responses.iter().filter(|r| r.survey == survey);
    match survey {
        SurveyKind::Nps => survey::nps(of_kind.map(|r| r.score)),
        SurveyKind::Csat => survey::csat(of_kind.map(|r| (r.score, r.scale))),
        SurveyKind::Ces => survey::ces(of_kind.map(|r| (r.score, r.scale))),
    }
}

/// Impact of a theme on a score, in Thematic's sense: metric(all responses) − metric(all responses
/// except those mentioning the theme). Negative when the theme drags the score down: "without the
/// people who raise billing, NPS would be 6 points higher" is an impact of −6. `None` when either
/// side is empty.
pub fn score_impact(survey: SurveyKind, responses: &[ScoredResponse], mentions: &[bool]) -> Option<f64> {
    let all = metric(survey, responses)?;
    let rest: Vec<ScoredResponse> = responses.iter().zip(mentions).filter(|(_, &m)| !m).map(|(r, _)| *r).collect();
    Some(all - metric(survey, &rest)?)
}

/// A risk ratio with its 95% confidence interval and the two-sided p-value of "no effect" (RR = 1)
/// from the same log-scale test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RiskRatio {
    pub ratio: f64,
    pub low: f64,
    pub high: f64,
    pub p_value: f64,
}

impl RiskRatio {
    /// Whether the interval excludes 1 (no effect).
    pub fn is_significant(&self) -> bool {
        self.low > 1.0 || self.high < 1.0
    }
}

/// Risk ratio of churn, exposed (accounts mentioning a theme: `a` churned of `n1`) vs unexposed
/// (`c` of `n2`): RR = (a/n1) / (c/n2), with the Katz log interval
/// exp(ln RR ± 1.96 · √(1/a − 1/n1 + 1/c − 1/n2)) (Katz et al. 1978) and the p-value of
/// z = ln RR / that standard error, so p < 0.05 exactly when the interval excludes 1. A zero cell gets the
/// Haldane–Anscombe correction (0.5 added to every cell) so the interval stays finite. `None`
/// when either group is empty.
pub fn risk_ratio(a: u64, n1: u64, c: u64, n2: u64) -> Option<RiskRatio> {
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (a, n1, c, n2) = haldane_anscombe(a, n1, c, n2);
    let ratio = (a / n1) / (c / n2);
    let se = (1.0 / a - 1.0 / n1 + 1.0 / c - 1.0 / n2).sqrt();
    Some(on_log_scale(ratio, se))
}

/// A 2×2 table's counts as floats, with 0.5 added to each of its four cells (churned and retained,
/// both groups) when one of them is zero.
fn haldane_anscombe(a: u64, n1: u64, c: u64, n0: u64) -> (f64, f64, f64, f64) {
    let (a, n1, c, n0) = (a as f64, n1 as f64, c as f64, n0 as f64);
    if a == 0.0 || c == 0.0 || a == n1 || c == n0 {
        (a + 0.5, n1 + 1.0, c + 0.5, n0 + 1.0)
    } else {
        (a, n1, c, n0)
    }
}

/// A ratio with its 95% interval exp(ln ratio ± 1.96 · se) and the p-value of z = ln ratio / se.
fn on_log_scale(ratio: f64, se: f64) -> RiskRatio {
    RiskRatio { ratio, low: (ratio.ln() - Z95 * se).exp(), high: (ratio.ln() + Z95 * se).exp(), p_value: two_sided_p(ratio.ln() / se) }
}

/// One stratum's 2×2 table: `a` churned of `n1` exposed accounts, `c` of `n0` unexposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stratum {
    pub a: u64,
    pub n1: u64,
    pub c: u64,
    pub n0: u64,
}

/// The Mantel–Haenszel risk ratio over strata (Mantel & Haenszel 1959; for risks, Rothman,
/// Greenland & Lash, *Modern Epidemiology*, 3rd ed. 2008, ch. 15): RR = Σ aᵢn0ᵢ/Tᵢ ÷ Σ cᵢn1ᵢ/Tᵢ
/// (Tᵢ = n1ᵢ + n0ᵢ), the exposed-vs-unexposed ratio *within* strata, so that a factor that defines
/// the strata cannot create or hide it. Its 95% interval and p-value use the Greenland–Robins
/// (1985) variance of ln RR: Σ (m1ᵢn1ᵢn0ᵢ/Tᵢ² − aᵢcᵢ/Tᵢ) ÷ (Σ aᵢn0ᵢ/Tᵢ · Σ cᵢn1ᵢ/Tᵢ), m1ᵢ = aᵢ + cᵢ;
/// with one stratum both are [`risk_ratio`]'s Katz figures. A stratum with an empty group says
/// nothing and is skipped; one with a zero cell gets 0.5 in every cell, as [`risk_ratio`] does.
/// `None` when no stratum has both groups.
pub fn mantel_haenszel_risk_ratio(strata: &[Stratum]) -> Option<RiskRatio> {
    let (mut r, mut s, mut v) = (0.0, 0.0, 0.0);
    let mut informative = false;
    for t in strata.iter().filter(|t| t.n1 > 0 && t.n0 > 0) {
        informative = true;
        let (a, n1, c, n0) = haldane_anscombe(t.a, t.n1, t.c, t.n0);
        let total = n1 + n0;
        r += a * n0 / total;
        s += c * n1 / total;
        v += (a + c) * n1 * n0 / (total * total) - a * c / total;
    }
    if !informative {
        return None;
    }
    Some(on_log_scale(r / s, (v / (r * s)).sqrt()))
}

/// P(|Z| ≥ |z|) for a standard normal Z: erfc(|z| / √2) (at most 1: the fit overshoots by 1e-7 at 0).
pub fn two_sided_p(z: f64) -> f64 {
    erfc(z.abs() / std::f64::consts::SQRT_2).min(1.0)
}

/// The complementary error function by the Chebyshev fit of Press et al., *Numerical Recipes*
/// (2nd ed. 1992, §6.2, `erfcc`): fractional error below 1.2e-7 everywhere.
fn erfc(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.5 * x.abs());
    let poly = [-1.265_512_23, 1.000_023_68, 0.374_091_96, 0.096_784_18, -0.186_288_06, 0.278_868_07, -1.135_203_98, 1.488_515_87, -0.822_152_23, 0.170_872_77];
    let series = poly.iter().rev().fold(0.0, |acc, c| acc * t + c);
    let ans = t * (-x * x + series).exp();
    if x >= 0.0 {
        ans
    } else {
        2.0 - ans
    }
}

/// Benjamini–Hochberg adjusted p-values ("q-values"), in the order of `p`: with the m p-values
/// sorted ascending, q₍ᵢ₎ = min over j ≥ i of m · p₍ⱼ₎ / j, at most 1. Calling every test with
/// q ≤ α a finding keeps the expected share of false findings among them at α or below, for
/// independent or positively dependent tests (Benjamini & Hochberg 1995, Benjamini & Yekutieli
/// 2001) — where a per-test 5% level calls about 5 of 100 null tests a finding.
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut q = vec![1.0; m];
    let mut running = 1.0f64;
    for (rank, &i) in order.iter().enumerate().rev() {
        // m / rank first: for the largest p it is exactly 1, so q is never a rounding below p.
        running = running.min(p[i] * (m as f64 / (rank + 1) as f64));
        q[i] = running;
    }
    q
}

/// One account as the revenue statistics see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AccountRevenue {
    /// Annual recurring revenue before any churn in the period.
    pub arr: f64,
    /// ARR lost to churn (and contraction) in the period, 0 when retained.
    pub churned_arr: f64,
}

/// Σ ARR and Σ churned ARR (each at most its account's ARR) of a group of accounts: all that the
/// revenue figures need of it, summed in one pass.
#[derive(Debug, Clone, Copy, Default)]
struct Totals {
    arr: f64,
    churned_arr: f64,
}

impl Totals {
    fn add(self, a: AccountRevenue) -> Self {
        Self { arr: self.arr + a.arr, churned_arr: self.churned_arr + a.churned_arr.min(a.arr) }
    }

    fn of(accounts: &[AccountRevenue]) -> Self {
        accounts.iter().fold(Self::default(), |t, &a| t.add(a))
    }

    fn rate(self) -> Option<f64> {
        (self.arr > 0.0).then(|| self.churned_arr / self.arr)
    }

    /// [`excess_churned_arr`] of these accounts over `others`.
    fn excess_over(self, others: Totals) -> Option<f64> {
        Some(self.arr * (self.rate()? - others.rate()?))
    }
}

/// Revenue churn rate: Σ churned ARR / Σ ARR (`None` without ARR).
pub fn revenue_churn_rate(accounts: &[AccountRevenue]) -> Option<f64> {
    Totals::of(accounts).rate()
}

/// Revenue-weighted impact: churned ARR in excess of the baseline,
/// ARR(mentioning) × (revenue churn rate(mentioning) − revenue churn rate(not mentioning)).
/// Positive: the theme's accounts lost that much more ARR than they would have at the others'
/// rate. `None` when either group has no ARR.
pub fn excess_churned_arr(mentioning: &[AccountRevenue], others: &[AccountRevenue]) -> Option<f64> {
    Totals::of(mentioning).excess_over(Totals::of(others))
}

/// A value with a 95% interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

impl Estimate {
    /// Whether the interval excludes zero.
    pub fn is_clear(&self) -> bool {
        self.low > 0.0 || self.high < 0.0
    }
}

/// A group of more accounts than this is resampled through the normal approximation of its
/// resampled totals (see [`Resample`]), in constant time per resample instead of one draw per
/// account: a theme's accounts are resampled one by one up to here, and the "others" of a large
/// workspace (all the other respondents, resampled once per replicate per theme) are not.
pub const RESAMPLE_EXACTLY_UP_TO: usize = 5_000;

/// [`excess_churned_arr`] with a 95% percentile-bootstrap interval: `replicates` resamples of the
/// accounts, with replacement, within each group (seeded, so a report is reproducible; a group of
/// more than [`RESAMPLE_EXACTLY_UP_TO`] accounts through its totals' normal law). `None` when the
/// point estimate is undefined.
pub fn excess_churned_arr_interval(mentioning: &[AccountRevenue], others: &[AccountRevenue], replicates: usize, seed: u64) -> Option<Estimate> {
    bootstrap_excess(mentioning, others, replicates, seed, RESAMPLE_EXACTLY_UP_TO)
}

fn bootstrap_excess(mentioning: &[AccountRevenue], others: &[AccountRevenue], replicates: usize, seed: u64, exactly_up_to: usize) -> Option<Estimate> {
    let value = excess_churned_arr(mentioning, others)?;
    let mut rng = Xoshiro256Plus::seed_from_u64(seed);
    let (mentioning, others) = (Resample::of(mentioning, exactly_up_to), Resample::of(others, exactly_up_to));
    let mut draws: Vec<f64> = (0..replicates).filter_map(|_| mentioning.draw(&mut rng).excess_over(others.draw(&mut rng))).collect();
    if draws.is_empty() {
        return Some(Estimate { value, low: value, high: value });
    }
    draws.sort_by(f64::total_cmp);
    let at = |q: f64| draws[((q * (draws.len() - 1) as f64).round() as usize).min(draws.len() - 1)];
    Some(Estimate { value, low: at(0.025), high: at(0.975) })
}

/// How one group's bootstrap totals are drawn.
enum Resample<'a> {
    /// Account by account, with replacement, summed as they are drawn.
    Exactly(&'a [AccountRevenue]),
    /// From the normal distribution the resampled totals tend to: a resample's (Σ ARR, Σ churned
    /// ARR) is a sum of n independent draws from the group, so by the central limit theorem it is
    /// close to normal, with n times the group's mean and n times its (population) covariance,
    /// the first two moments of the exact resample. Drawn as mean + L·z, with L the covariance's
    /// Cholesky factor and z two standard normals.
    Normally { mean: Totals, l11: f64, l21: f64, l22: f64 },
}

impl<'a> Resample<'a> {
    fn of(group: &'a [AccountRevenue], exactly_up_to: usize) -> Self {
        if group.len() <= exactly_up_to {
            return Resample::Exactly(group);
        }
        let n = group.len() as f64;
        let mean = Totals::of(group);
        let (ma, mc) = (mean.arr / n, mean.churned_arr / n);
        let (mut vaa, mut vac, mut vcc) = (0.0, 0.0, 0.0);
        for a in group {
            let (da, dc) = (a.arr - ma, a.churned_arr.min(a.arr) - mc);
            vaa += da * da;
            vac += da * dc;
            vcc += dc * dc;
        }
        // n × the population covariance is the sum of squares itself.
        let l11 = vaa.sqrt();
        let l21 = if l11 > 0.0 { vac / l11 } else { 0.0 };
        let l22 = (vcc - l21 * l21).max(0.0).sqrt();
        Resample::Normally { mean, l11, l21, l22 }
    }

    fn draw(&self, rng: &mut Xoshiro256Plus) -> Totals {
        match *self {
            Resample::Exactly(group) => {
                let n = group.len() as u64;
                (0..n).fold(Totals::default(), |t, _| t.add(group[(rng.next_u64() % n) as usize]))
            }
            Resample::Normally { mean, l11, l21, l22 } => {
                let (z1, z2) = standard_normals(rng);
                Totals { arr: mean.arr + l11 * z1, churned_arr: mean.churned_arr + l21 * z1 + l22 * z2 }
            }
        }
    }
}

/// Two independent standard normal draws (Box–Muller).
fn standard_normals(rng: &mut Xoshiro256Plus) -> (f64, f64) {
    // A uniform in (0, 1] from the top 53 bits, so its logarithm is finite.
    let uniform = |rng: &mut Xoshiro256Plus| ((rng.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64;
    let (u1, u2) = (uniform(rng), uniform(rng));
    let r = (-2.0 * u1.ln()).sqrt();
    let angle = std::f64::consts::TAU * u2;
    (r * angle.cos(), r * angle.sin())
}

/// ARR at risk: ARR of the mentioning accounts not yet churned × the excess revenue churn rate,
/// when that excess is positive (else 0): what the theme will cost if it keeps acting as it has.
pub fn arr_at_risk(mentioning: &[AccountRevenue], others: &[AccountRevenue]) -> Option<f64> {
    let excess = revenue_churn_rate(mentioning)? - revenue_churn_rate(others)?;
    let active: f64 = mentioning.iter().filter(|a| a.churned_arr < a.arr).map(|a| a.arr - a.churned_arr).sum();
    Some(active * excess.max(0.0))
}

/// Mean and (sample) standard deviation; `None` for fewer than two values.
pub fn mean_sd(values: &[f64]) -> Option<(f64, f64)> {
    if values.len() < 2 {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    Some((mean, var.sqrt()))
}

/// A volume spike: `current` beyond mean + 2 standard deviations of `history` (at least three
/// earlier periods; a flat history uses a standard deviation of 1 so one extra mention is no spike).
pub fn is_volume_spike(history: &[f64], current: f64) -> bool {
    if history.len() < 3 {
        return false;
    }
    let (mean, sd) = mean_sd(history).expect("three values");
    current > mean + 2.0 * sd.max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nps(score: f64) -> ScoredResponse {
        ScoredResponse { survey: SurveyKind::Nps, score, scale: Scale { min: 0, max: 10 } }
    }

    #[test]
    fn nps_impact_is_the_score_with_minus_the_score_without() {
        // 10 responses: 4 promoters, 3 passives, 3 detractors → NPS 10. The theme is mentioned by
        // the 3 detractors; without them: 4 promoters / 7 → 57.14. Impact 10 − 57.14 = −47.14.
        let r: Vec<ScoredResponse> = [10., 9., 9., 10., 7., 8., 7., 2., 3., 0.].map(nps).to_vec();
        let m = [false, false, false, false, false, false, false, true, true, true];
        assert!((metric(SurveyKind::Nps, &r).unwrap() - 10.0).abs() < 1e-9);
        assert!((score_impact(SurveyKind::Nps, &r, &m).unwrap() - (10.0 - 400.0 / 7.0)).abs() < 1e-9);
        // Mentioned by promoters only: positive impact.
        let m2 = [true, true, false, false, false, false, false, false, false, false];
        assert!(score_impact(SurveyKind::Nps, &r, &m2).unwrap() > 0.0);
        // Everyone mentions it: nothing is left to compare with.
        assert_eq!(score_impact(SurveyKind::Nps, &r, &[true; 10]), None);
    }

    #[test]
    fn csat_and_ces_impact_on_their_own_metrics() {
        let csat = |s: f64| ScoredResponse { survey: SurveyKind::Csat, score: s, scale: Scale { min: 1, max: 5 } };
        // 5, 4, 4, 2, 1: CSAT 60%; without the two low ones (the theme): 100%. Impact −40.
        let r: Vec<ScoredResponse> = [5., 4., 4., 2., 1.].map(csat).to_vec();
        assert!((score_impact(SurveyKind::Csat, &r, &[false, false, false, true, true]).unwrap() + 40.0).abs() < 1e-9);
        let ces = |s: f64| ScoredResponse { survey: SurveyKind::Ces, score: s, scale: Scale { min: 1, max: 7 } };
        // 7, 6, 2: mean 5; without the 2: 6.5. Impact −1.5.
        let r: Vec<ScoredResponse> = [7., 6., 2.].map(ces).to_vec();
        assert!((score_impact(SurveyKind::Ces, &r, &[false, false, true]).unwrap() + 1.5).abs() < 1e-9);
        // Other surveys' responses are not counted in a metric.
        let mixed = vec![nps(0.0), ces(7.0)];
        assert_eq!(metric(SurveyKind::Ces, &mixed), Some(7.0));
    }

    #[test]
    fn risk_ratio_and_its_katz_interval() {
        // 20 of 100 vs 10 of 200: RR = 0.2 / 0.05 = 4; se = √(1/20 − 1/100 + 1/10 − 1/200) = √0.135.
        let rr = risk_ratio(20, 100, 10, 200).unwrap();
        assert!((rr.ratio - 4.0).abs() < 1e-12);
        let se = 0.135f64.sqrt();
        assert!((rr.low - (4f64.ln() - Z95 * se).exp()).abs() < 1e-9 && (rr.high - (4f64.ln() + Z95 * se).exp()).abs() < 1e-9);
        // By hand: ln 4 = 1.386294, 1.96 · 0.367423 = 0.720136 → e^0.666158 = 1.9467, e^2.106430 = 8.2189.
        assert!((rr.low - 1.9467).abs() < 1e-3 && (rr.high - 8.2189).abs() < 1e-3, "{rr:?}");
        assert!(rr.is_significant());
        // z = ln 4 / 0.367423 = 3.773015; P(|Z| ≥ 3.773015) = erfc(3.773015 / √2) = 1.61286e-4.
        assert!((rr.p_value - 1.61286e-4).abs() < 1e-8, "{rr:?}");
        // Equal rates: RR 1, not significant, p = 1.
        let even = risk_ratio(5, 50, 10, 100).unwrap();
        assert!((even.ratio - 1.0).abs() < 1e-12 && !even.is_significant() && (even.p_value - 1.0).abs() < 1e-6);
        // p < 0.05 exactly when the interval excludes 1, either way.
        for (a, n1, c, n2) in [(9, 40, 20, 200), (8, 40, 20, 200), (1, 60, 30, 200), (3, 60, 30, 200), (0, 30, 10, 300)] {
            let rr = risk_ratio(a, n1, c, n2).unwrap();
            assert_eq!(rr.p_value < 0.05, rr.is_significant(), "{rr:?}");
        }
    }

    #[test]
    fn normal_tail_probabilities() {
        for (z, p) in [(0.0, 1.0), (1.0, 0.317_310_507_9), (Z95, 0.05), (2.575_829_303_5, 0.01), (3.290_526_731_5, 0.001), (5.0, 5.733_031_4e-7)] {
            assert!(((two_sided_p(z) - p) / p).abs() < 2e-7, "z {z}: {} vs {p}", two_sided_p(z));
            assert_eq!(two_sided_p(-z), two_sided_p(z));
        }
    }

    #[test]
    fn benjamini_hochberg_on_the_papers_example() {
        // Benjamini & Hochberg (1995), §4: 15 p-values; at q = 0.05 the step-up procedure rejects
        // the four smallest (Bonferroni: three).
        let p = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240, 0.4262, 0.5719, 0.6528, 0.7590, 1.0000];
        let q = benjamini_hochberg(&p);
        assert_eq!(q.iter().filter(|&&q| q <= 0.05).count(), 4, "{q:?}");
        // By hand: 0.0095 · 15 / 4 = 0.035625; rank 5: min(0.0201 · 3, 0.0278 · 15/6, 0.0298 · 15/7, …)
        // = 0.0603; rank 6 takes rank 7's 0.0298 · 15/7 (step-up: never above a larger p's q).
        assert!((q[3] - 0.035625).abs() < 1e-12 && (q[4] - 0.0603).abs() < 1e-12 && (q[5] - 0.0298 * 15.0 / 7.0).abs() < 1e-12, "{q:?}");
        assert_eq!(q[14], 1.0);
        // Input order is kept, and a q-value is never below its p-value.
        let shuffled = [0.3240, 0.0001, 0.0459];
        let qs = benjamini_hochberg(&shuffled);
        assert!((qs[1] - 0.0003).abs() < 1e-12 && (qs[0] - 0.3240).abs() < 1e-12 && (qs[2] - 0.06885).abs() < 1e-12, "{qs:?}");
        assert!(benjamini_hochberg(&[]).is_empty());
        // Not even by a rounding: p · m / m came out one unit in the last place below p for a
        // report whose largest p-value was 0.9908305016880362 (of 75 tested themes).
        for m in 1..200 {
            let mut p: Vec<f64> = (1..m).map(|i| 0.5 * i as f64 / m as f64).collect();
            p.push(0.9908305016880362);
            assert!(benjamini_hochberg(&p).iter().zip(&p).all(|(q, p)| q >= p), "m = {m}");
        }
    }

    #[test]
    fn mantel_haenszel_with_one_stratum_is_the_katz_risk_ratio() {
        for (a, n1, c, n0) in [(20, 100, 10, 200), (3, 10, 0, 20), (7, 40, 30, 900)] {
            let mh = mantel_haenszel_risk_ratio(&[Stratum { a, n1, c, n0 }]).unwrap();
            let katz = risk_ratio(a, n1, c, n0).unwrap();
            for (x, y) in [(mh.ratio, katz.ratio), (mh.low, katz.low), (mh.high, katz.high), (mh.p_value, katz.p_value)] {
                assert!((x - y).abs() < 1e-9 * y.max(1.0), "{mh:?} vs {katz:?}");
            }
        }
        assert_eq!(mantel_haenszel_risk_ratio(&[Stratum { a: 1, n1: 5, c: 0, n0: 0 }]), None);
        assert_eq!(mantel_haenszel_risk_ratio(&[]), None);
    }

    #[test]
    fn mantel_haenszel_removes_a_confounder_and_keeps_a_common_effect() {
        // A theme raised mostly by accounts that also raise billing (which churns 40% vs 5%), and
        // no different within either group: crude RR far above 1, adjusted RR exactly 1.
        let with_billing = Stratum { a: 32, n1: 80, c: 16, n0: 40 };
        let without = Stratum { a: 1, n1: 20, c: 43, n0: 860 };
        let crude = risk_ratio(33, 100, 59, 900).unwrap();
        assert!(crude.ratio > 4.0 && crude.is_significant(), "{crude:?}");
        let adjusted = mantel_haenszel_risk_ratio(&[with_billing, without]).unwrap();
        assert!((adjusted.ratio - 1.0).abs() < 1e-9, "{adjusted:?}");
        assert!(!adjusted.is_significant() && adjusted.p_value > 0.9);
        // The same RR of 3 in both strata (30% vs 10%, 15% vs 5%): MH gives 3, and a narrower
        // interval than either stratum alone.
        let strata = [Stratum { a: 30, n1: 100, c: 20, n0: 200 }, Stratum { a: 15, n1: 100, c: 20, n0: 400 }];
        let mh = mantel_haenszel_risk_ratio(&strata).unwrap();
        assert!((mh.ratio - 3.0).abs() < 1e-9 && mh.is_significant());
        for t in strata {
            let one = risk_ratio(t.a, t.n1, t.c, t.n0).unwrap();
            assert!(mh.high / mh.low < one.high / one.low);
        }
        // A stratum without an unexposed group adds nothing.
        let plus_empty = mantel_haenszel_risk_ratio(&[strata[0], strata[1], Stratum { a: 9, n1: 10, c: 0, n0: 0 }]).unwrap();
        assert_eq!(plus_empty, mh);
    }

    #[test]
    fn risk_ratio_zero_cells_and_empty_groups() {
        assert_eq!(risk_ratio(1, 0, 3, 10), None);
        assert_eq!(risk_ratio(1, 10, 0, 0), None);
        // No churn among the non-mentioning: Haldane: (3.5/11) / (0.5/21).
        let rr = risk_ratio(3, 10, 0, 20).unwrap();
        assert!((rr.ratio - (3.5 / 11.0) / (0.5 / 21.0)).abs() < 1e-9);
        assert!(rr.low.is_finite() && rr.high.is_finite() && rr.low < rr.ratio && rr.ratio < rr.high);
        // A single account that churned: corrected, finite, and wider than with more accounts (the
        // report also marks themes with fewer than MIN_ACCOUNTS as too little data).
        let one = risk_ratio(1, 1, 10, 100).unwrap();
        let many = risk_ratio(10, 10, 100, 1000).unwrap();
        assert!(one.low.is_finite() && one.high.is_finite(), "{one:?}");
        assert!(one.high / one.low > 2.0 * (many.high / many.low), "{one:?} vs {many:?}");
    }

    #[test]
    fn excess_churned_arr_and_arr_at_risk_by_hand() {
        let acct = |arr: f64, churned: f64| AccountRevenue { arr, churned_arr: churned };
        // Mentioning: ARR 100k + 50k + 50k = 200k, 50k churned → rate 0.25.
        // Others: 400k + 100k = 500k, 25k churned → rate 0.05. Excess = 200k × 0.20 = 40k.
        let m = [acct(100e3, 0.0), acct(50e3, 50e3), acct(50e3, 0.0)];
        let o = [acct(400e3, 0.0), acct(100e3, 25e3)];
        assert!((revenue_churn_rate(&m).unwrap() - 0.25).abs() < 1e-12);
        assert!((excess_churned_arr(&m, &o).unwrap() - 40e3).abs() < 1e-6);
        // At risk: the 150k still active × 0.20 = 30k.
        assert!((arr_at_risk(&m, &o).unwrap() - 30e3).abs() < 1e-6);
        // Lower churn than baseline: negative excess, nothing at risk.
        assert!(excess_churned_arr(&o, &m).unwrap() < 0.0);
        assert_eq!(arr_at_risk(&o, &m), Some(0.0));
        // No ARR on a side: undefined, not zero.
        assert_eq!(excess_churned_arr(&[], &o), None);
        assert_eq!(excess_churned_arr(&m, &[acct(0.0, 0.0)]), None);
        // A single account: its own rate.
        assert!((excess_churned_arr(&[acct(10e3, 10e3)], &o).unwrap() - 10e3 * 0.95).abs() < 1e-6);
    }

    #[test]
    fn bootstrap_interval_brackets_the_estimate_and_is_seeded() {
        let acct = |arr: f64, churned: f64| AccountRevenue { arr, churned_arr: churned };
        let m: Vec<AccountRevenue> = (0..40).map(|i| acct(10e3 + 1e3 * i as f64, if i % 3 == 0 { 10e3 } else { 0.0 })).collect();
        let o: Vec<AccountRevenue> = (0..200).map(|i| acct(12e3, if i % 20 == 0 { 12e3 } else { 0.0 })).collect();
        let e = excess_churned_arr_interval(&m, &o, 1000, 7).unwrap();
        assert!(e.low < e.value && e.value < e.high && e.is_clear(), "{e:?}");
        assert_eq!(Some(e), excess_churned_arr_interval(&m, &o, 1000, 7), "same seed, same interval");
        // One mentioning account: only the baseline varies; the interval still holds the estimate.
        let single = excess_churned_arr_interval(&m[..1], &o, 1000, 7).unwrap();
        assert!(single.low <= single.value && single.value <= single.high, "{single:?}");
        // Identical accounts on both sides: nothing to resample, a point interval.
        let flat = excess_churned_arr_interval(&[acct(5e3, 5e3)], &[acct(5e3, 0.0)], 200, 7).unwrap();
        assert_eq!((flat.value, flat.low, flat.high), (5e3, 5e3, 5e3));
    }

    #[test]
    fn a_large_group_resampled_normally_gives_the_interval_of_resampling_it_exactly() {
        // Skewed ARR (a few large accounts) and rare churn, as in a real book of business.
        let acct = |i: usize, churn_every: usize| {
            let arr = if i.is_multiple_of(50) { 400e3 } else { 5e3 + (i % 37) as f64 * 1e3 };
            AccountRevenue { arr, churned_arr: if i.is_multiple_of(churn_every) { arr } else { 0.0 } }
        };
        let m: Vec<AccountRevenue> = (0..200).map(|i| acct(i, 5)).collect();
        let o: Vec<AccountRevenue> = (0..6_000).map(|i| acct(i, 13)).collect();
        let exact = bootstrap_excess(&m, &o, 8000, 11, usize::MAX).unwrap();
        let normal = bootstrap_excess(&m, &o, 8000, 11, 1_000).unwrap();
        assert_eq!(exact.value, normal.value);
        let width = exact.high - exact.low;
        assert!(width > 0.0 && exact.is_clear(), "{exact:?}");
        // Two Monte-Carlo estimates of the same quantiles (each within ~1% of the width at 8,000
        // resamples): the same interval to a few % of its width.
        for (a, b) in [(exact.low, normal.low), (exact.high, normal.high)] {
            assert!((a - b).abs() < 0.05 * width, "exact {exact:?} vs normal {normal:?}");
        }
        // The normal draws give the group's revenue churn rate the mean and spread that drawing
        // its accounts gives it (so ARR, churned ARR and how they go together are all right).
        let rates = |resample: Resample| {
            let mut rng = Xoshiro256Plus::seed_from_u64(3);
            let rates: Vec<f64> = (0..4000).map(|_| resample.draw(&mut rng).rate().unwrap()).collect();
            mean_sd(&rates).unwrap()
        };
        let ((mean, sd), (normal_mean, normal_sd)) = (rates(Resample::of(&o, usize::MAX)), rates(Resample::of(&o, 0)));
        assert!((normal_mean - mean).abs() < 0.1 * sd && (normal_sd / sd - 1.0).abs() < 0.08, "exact {mean} ± {sd}, normal {normal_mean} ± {normal_sd}");
    }

    #[test]
    fn volume_spikes_need_history_and_two_sigmas() {
        assert!(!is_volume_spike(&[10.0, 12.0], 100.0), "too little history");
        assert!(is_volume_spike(&[10.0, 12.0, 11.0, 9.0], 20.0));
        assert!(!is_volume_spike(&[10.0, 12.0, 11.0, 9.0], 13.0));
        assert!(!is_volume_spike(&[5.0, 5.0, 5.0], 6.0), "a flat history is not broken by one mention");
        assert!(is_volume_spike(&[5.0, 5.0, 5.0], 8.0));
        let (mean, sd) = mean_sd(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        assert!((mean - 5.0).abs() < 1e-12 && (sd - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
    }
}
