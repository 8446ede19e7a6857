//! A report's scope: which responses it reads. "What costs us among enterprise accounts?", "in the
//! NPS programme only?" — the same ranking, trends, alerts and accounts to call, computed as if the
//! workspace held only the responses in scope. Every figure downstream compares within the scope:
//! a theme's churn is measured against the other responding accounts *of the scope*.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::report::{ImpactInput, SegmentTheme};
use crate::error::Error;
use crate::store::{AccountRecord, ResponseRecord};
use crate::survey::SurveyKind;

/// Most values listed in an error that names what an attribute does hold.
const LISTED_VALUES: usize = 20;

/// One condition: the response's attribute (else its account's) is one of `values`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Condition {
    pub attribute: String,
    pub values: Vec<String>,
}

/// The responses a report reads: every condition holds and the survey is one of `surveys`.
/// The default scope is the whole workspace.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope {
    /// Survey types kept, sorted; empty = every survey.
    pub surveys: Vec<SurveyKind>,
    /// Sorted by attribute, one per attribute (conditions on one attribute are merged: its values
    /// are alternatives), values sorted.
    pub conditions: Vec<Condition>,
}

impl Scope {
    pub fn new(surveys: impl IntoIterator<Item = SurveyKind>, conditions: impl IntoIterator<Item = Condition>) -> Scope {
        let surveys: BTreeSet<SurveyKind> = surveys.into_iter().collect();
        let mut merged: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for c in conditions {
            merged.entry(c.attribute).or_default().extend(c.values);
        }
        Scope {
            surveys: surveys.into_iter().collect(),
            conditions: merged.into_iter().map(|(attribute, values)| Condition { attribute, values: values.into_iter().collect() }).collect(),
        }
    }

    /// The whole workspace: no condition, every survey.
    pub fn is_everything(&self) -> bool {
        self.surveys.is_empty() && self.conditions.is_empty()
    }

    /// "NPS · plan = enterprise or growth · region = EU", or "all responses".
    pub fn describe(&self) -> String {
        if self.is_everything() {
            return "all responses".into();
        }
        let surveys = (!self.surveys.is_empty()).then(|| self.surveys.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" or "));
        let conditions = self.conditions.iter().map(|c| format!("{} = {}", c.attribute, c.values.join(" or ")));
        surveys.into_iter().chain(conditions).collect::<Vec<_>>().join(" · ")
    }

    /// The responses of `input` in scope, with their segments (renumbered); accounts, outcomes
    /// and themes are kept whole (the report reads them through the responses). A condition on an
    /// attribute that no response or account of `input` holds, or on a value it never takes, is
    /// refused, naming `field` and what does exist: a misspelt filter must not read as "nothing
    /// to report".
    pub fn apply(&self, input: &ImpactInput, field: &str) -> Result<ImpactInput, Error> {
        if self.is_everything() {
            return Ok(input.clone());
        }
        let accounts = accounts_by_id(&input.accounts);
        self.check(input, &accounts, field)?;
        let mut renumber = vec![None; input.responses.len()];
        let mut responses = Vec::new();
        for (i, r) in input.responses.iter().enumerate().filter(|(_, r)| self.matches(r, accounts.get(r.account_id.as_str()).copied())) {
            renumber[i] = Some(responses.len());
            responses.push(r.clone());
        }
        let segments = input
            .segments
            .iter()
            .filter_map(|s| renumber[s.response].map(|response| SegmentTheme { response, ..s.clone() }))
            .collect();
        Ok(ImpactInput { responses, segments, accounts: input.accounts.clone(), outcomes: input.outcomes.clone(), themes: input.themes.clone() })
    }

    /// Whether response `r` (of `account`, if known) is in scope.
    pub fn matches(&self, r: &ResponseRecord, account: Option<&AccountRecord>) -> bool {
        (self.surveys.is_empty() || self.surveys.contains(&r.survey))
            && self.conditions.iter().all(|c| attribute_value(r, account, &c.attribute).is_some_and(|v| c.values.iter().any(|x| x == v)))
    }

    /// What is known: the loaded responses (with their accounts' attributes) and every account.
    fn check(&self, input: &ImpactInput, accounts: &HashMap<&str, &AccountRecord>, field: &str) -> Result<(), Error> {
        let mut seen = Seen::default();
        for r in &input.responses {
            self.observe(&mut seen, r, accounts.get(r.account_id.as_str()).copied());
        }
        for a in &input.accounts {
            seen.names.extend(a.attributes.keys().cloned());
            for c in &self.conditions {
                if let Some(v) = a.attributes.get(&c.attribute) {
                    seen.held.entry(c.attribute.clone()).or_default().insert(v.clone());
                }
            }
        }
        self.check_seen(&seen, field)
    }

    /// Notes which attribute names, and which values of the scope's attributes, `r` (of
    /// `account`) holds.
    fn observe(&self, seen: &mut Seen, r: &ResponseRecord, account: Option<&AccountRecord>) {
        seen.names.extend(r.attributes.keys().chain(account.iter().flat_map(|a| a.attributes.keys())).cloned());
        for c in &self.conditions {
            if let Some(v) = attribute_value(r, account, &c.attribute) {
                seen.held.entry(c.attribute.clone()).or_default().insert(v.to_string());
            }
        }
    }

    /// Refuses a condition whose attribute or value nothing `seen` holds, naming `field` and what
    /// does exist.
    fn check_seen(&self, seen: &Seen, field: &str) -> Result<(), Error> {
        for c in &self.conditions {
            let Some(held) = seen.held.get(&c.attribute) else {
                let names = if seen.names.is_empty() { "none".to_string() } else { seen.names.iter().cloned().collect::<Vec<_>>().join(", ") };
                return Err(Error::invalid(field, format!("no account, and no response of the report's weeks, holds an attribute named {:?}; attributes: {names}", c.attribute)));
            };
            if let Some(missing) = c.values.iter().find(|v| !held.contains(*v)) {
                let mut listed: Vec<&str> = held.iter().map(String::as_str).take(LISTED_VALUES).collect();
                if held.len() > LISTED_VALUES {
                    listed.push("…");
                }
                return Err(Error::invalid(field, format!("{} never takes the value {missing:?} (accounts, and responses of the report's weeks); its values: {}", c.attribute, listed.join(", "))));
            }
        }
        Ok(())
    }
}

/// What responses were seen to hold, for [`Scope::check_seen`].
#[derive(Debug, Default)]
struct Seen {
    names: BTreeSet<String>,
    held: BTreeMap<String, BTreeSet<String>>,
}

impl Condition {
    /// "plan=enterprise,growth": the attribute, then its accepted values (comma-separated).
    pub fn parse(s: &str, field: &str) -> Result<Condition, Error> {
        let (attribute, values) = s.split_once('=').ok_or_else(|| Error::invalid(field, format!("{s:?} is not ATTRIBUTE=VALUE[,VALUE…]")))?;
        let values: Vec<String> = values.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect();
        Condition::new(attribute.trim(), values, field)
    }

    /// A condition with its name and values checked: a name of 1–64 characters, 1–100 values,
    /// each at most as long as an attribute value may be.
    pub fn new(attribute: &str, values: Vec<String>, field: &str) -> Result<Condition, Error> {
        use crate::ingest::{MAX_ATTRIBUTE_KEY_CHARS, MAX_ATTRIBUTE_VALUE_CHARS};
        if attribute.trim().is_empty() || attribute.chars().count() > MAX_ATTRIBUTE_KEY_CHARS {
            return Err(Error::invalid(field, format!("attribute name {attribute:?} must be 1–{MAX_ATTRIBUTE_KEY_CHARS} characters")));
        }
        if values.is_empty() || values.len() > MAX_VALUES {
            return Err(Error::invalid(field, format!("{attribute}: {} values; allowed 1–{MAX_VALUES}", values.len())));
        }
        if let Some(v) = values.iter().find(|v| v.is_empty() || v.chars().count() > MAX_ATTRIBUTE_VALUE_CHARS) {
            return Err(Error::invalid(field, format!("{attribute}: value {v:?} must be 1–{MAX_ATTRIBUTE_VALUE_CHARS} characters")));
        }
        Ok(Condition { attribute: attribute.to_string(), values })
    }
}

/// Most values one condition may accept.
pub const MAX_VALUES: usize = 100;
/// Most conditions one scope may hold.
pub const MAX_CONDITIONS: usize = 20;

pub fn accounts_by_id(accounts: &[AccountRecord]) -> HashMap<&str, &AccountRecord> {
    accounts.iter().map(|a| (a.account_id.as_str(), a)).collect()
}

/// A response's attribute, else its account's: how scopes and breakdowns read "plan" or "region".
pub fn attribute_value<'a>(r: &'a ResponseRecord, account: Option<&'a AccountRecord>, name: &str) -> Option<&'a str> {
    r.attributes.get(name).or_else(|| account?.attributes.get(name)).map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::impact::report::{self, tests::response, Period};
    use crate::store::{OutcomeKind, OutcomeRecord};

    const DAY: i64 = 86_400;
    const PERIOD: Period = Period { from: 7 * DAY, to: 14 * DAY };

    /// 20 enterprise accounts (100k each) and 20 starter accounts (10k), one NPS response each in
    /// the period, and a CSAT response from enterprise accounts 0–4. Theme 1 is raised by
    /// enterprise accounts 0–5 (a0–a2 churn) and starter accounts 20–29 (none churns); a10 and
    /// every starter account 30–39 churn without raising it. Each segment's text is its response's id.
    fn input() -> ImpactInput {
        let mut inp = ImpactInput::default();
        for i in 0..40 {
            let plan = if i < 20 { "enterprise" } else { "starter" };
            let mut a = AccountRecord { account_id: format!("a{i}"), arr: if i < 20 { 100e3 } else { 10e3 }, churned_at: None, attributes: Default::default() };
            a.attributes.insert("plan".into(), plan.into());
            inp.accounts.push(a);
            inp.responses.push(response(i, &format!("a{i}"), 5.0, PERIOD.from + i as i64));
        }
        for i in 0..5 {
            let mut r = response(40 + i, &format!("a{i}"), 2.0, PERIOD.from + 100 + i as i64);
            r.survey = SurveyKind::Csat;
            r.scale = crate::survey::Scale { min: 1, max: 5 };
            inp.responses.push(r);
        }
        for i in (0..6).chain(20..30) {
            inp.segments.push(SegmentTheme { response: i, theme_id: 1, text: format!("r{i}"), sentiment: None, similarity: None });
        }
        for i in [0, 1, 2, 10].into_iter().chain(30..40) {
            inp.outcomes.push(OutcomeRecord { account_id: format!("a{i}"), kind: OutcomeKind::Churn, occurred_at: 20 * DAY, arr_change: None });
        }
        inp
    }

    fn enterprise() -> Scope {
        Scope::new([], [Condition { attribute: "plan".into(), values: vec!["enterprise".into()] }])
    }

    #[test]
    fn a_scope_keeps_its_responses_and_their_segments() {
        let inp = input();
        let scoped = enterprise().apply(&inp, "--where").unwrap();
        assert_eq!(scoped.responses.len(), 25, "20 NPS + 5 CSAT responses of enterprise accounts");
        assert!(scoped.responses.iter().all(|r| r.account_id[1..].parse::<usize>().unwrap() < 20));
        assert_eq!(scoped.segments.len(), 6);
        for s in &scoped.segments {
            assert_eq!(s.text, scoped.responses[s.response].response_id, "a segment still points at its own response");
        }
        assert_eq!((scoped.accounts.len(), scoped.outcomes.len()), (inp.accounts.len(), inp.outcomes.len()));

        let nps = Scope::new([SurveyKind::Nps], enterprise().conditions).apply(&inp, "--where").unwrap();
        assert_eq!(nps.responses.len(), 20);
        let csat = Scope::new([SurveyKind::Csat], []).apply(&inp, "--where").unwrap();
        assert_eq!(csat.responses.len(), 5);
        assert!(csat.segments.is_empty());
        assert_eq!(Scope::default().apply(&inp, "--where").unwrap().responses, inp.responses);
    }

    /// The churn comparison runs within the scope: theme 1 costs enterprise revenue (3 of its 6
    /// accounts churn against 1 of the other 14), which the whole workspace hides behind the
    /// starter accounts that churn without raising it.
    #[test]
    fn a_scoped_report_compares_within_the_scope() {
        let inp = input();
        let whole = report::build(&inp, PERIOD, 1);
        let scoped = report::build(&enterprise().apply(&inp, "--where").unwrap(), PERIOD, 1);
        assert_eq!((scoped.responses, scoped.accounts), (25, 20));
        let (w, s) = (&whole.themes[0], &scoped.themes[0]);
        assert_eq!((w.theme_id, s.theme_id), (1, 1));
        assert_eq!((w.accounts, s.accounts), (16, 6));
        let (m, o) = s.revenue_churn.unwrap();
        assert!((m - 0.5).abs() < 1e-12 && (o - 1.0 / 14.0).abs() < 1e-12, "{m} {o}");
        let (wm, wo) = w.revenue_churn.unwrap();
        assert!((wm - 300e3 / 700e3).abs() < 1e-12 && (wo - 200e3 / 1_500e3).abs() < 1e-12, "{wm} {wo}");
        assert!((s.excess_churned_arr.unwrap().value - 600e3 * (0.5 - 1.0 / 14.0)).abs() < 1e-6);
    }

    #[test]
    fn a_response_attribute_comes_before_its_accounts() {
        let mut inp = input();
        inp.responses[0].attributes.insert("plan".into(), "trial".into());
        let trial = Scope::new([], [Condition { attribute: "plan".into(), values: vec!["trial".into()] }]).apply(&inp, "f").unwrap();
        assert_eq!(trial.responses.iter().map(|r| r.response_id.as_str()).collect::<Vec<_>>(), ["r0"]);
        assert_eq!(enterprise().apply(&inp, "f").unwrap().responses.len(), 24);
    }

    #[test]
    fn conditions_on_one_attribute_are_alternatives_and_on_two_must_all_hold() {
        let mut inp = input();
        for r in inp.responses.iter_mut().filter(|r| r.account_id == "a3" || r.account_id == "a25") {
            r.attributes.insert("region".into(), "EU".into());
        }
        let c = |a: &str, v: &str| Condition { attribute: a.into(), values: vec![v.into()] };
        let both = Scope::new([], [c("plan", "starter"), c("plan", "enterprise")]);
        assert_eq!(both.conditions, [Condition { attribute: "plan".into(), values: vec!["enterprise".into(), "starter".into()] }]);
        assert_eq!(both.apply(&inp, "f").unwrap().responses.len(), inp.responses.len());
        let eu_enterprise = Scope::new([], [c("region", "EU"), c("plan", "enterprise")]).apply(&inp, "f").unwrap();
        let ids: Vec<&str> = eu_enterprise.responses.iter().map(|r| r.response_id.as_str()).collect();
        assert_eq!(ids, ["r3", "r43"], "a3's NPS and CSAT responses; a25 is a starter account");
        assert_eq!(Scope::new([SurveyKind::Ces, SurveyKind::Nps], both.conditions.clone()).describe(), "NPS or CES · plan = enterprise or starter");
        assert_eq!(Scope::default().describe(), "all responses");
    }

    #[test]
    fn a_condition_the_data_cannot_meet_is_refused_naming_what_exists() {
        let mut inp = input();
        let mut silent = AccountRecord { account_id: "quiet".into(), arr: 1.0, churned_at: None, attributes: Default::default() };
        silent.attributes.insert("plan".into(), "trial".into());
        inp.accounts.push(silent);
        let trial = Scope::new([], [Condition { attribute: "plan".into(), values: vec!["trial".into()] }]).apply(&inp, "f").unwrap();
        assert!(trial.responses.is_empty(), "a plan held only by an account that did not answer: an empty scope, not an error");
        let c = |a: &str, v: &str| Scope::new([], [Condition { attribute: a.into(), values: vec![v.into()] }]);
        let e = c("plna", "enterprise").apply(&inp, "filters").unwrap_err().to_string();
        assert!(e.starts_with("filters:") && e.contains("\"plna\"") && e.contains("attributes: plan"), "{e}");
        let e = c("plan", "enterprize").apply(&inp, "--where").unwrap_err().to_string();
        assert!(e.starts_with("--where:") && e.contains("\"enterprize\"") && e.contains("its values: enterprise, starter, trial"), "{e}");
    }

    #[test]
    fn a_condition_is_parsed_and_checked() {
        let c = Condition::parse("plan = enterprise, growth", "--where").unwrap();
        assert_eq!(c, Condition { attribute: "plan".into(), values: vec!["enterprise".into(), "growth".into()] });
        for bad in ["plan", "=enterprise", "plan=", "plan= , "] {
            let e = Condition::parse(bad, "--where").unwrap_err().to_string();
            assert!(e.starts_with("--where:"), "{bad:?}: {e}");
        }
        let e = Condition::new("plan", vec!["x".into(); MAX_VALUES + 1], "filters").unwrap_err().to_string();
        assert!(e.contains("allowed 1–100"), "{e}");
        let e = Condition::new(&"a".repeat(65), vec!["x".into()], "filters").unwrap_err().to_string();
        assert!(e.contains("1–64 characters"), "{e}");
    }
}
