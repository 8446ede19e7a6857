//! What every [`Store`] must do, written once and run against each implementation: SQLite in
//! `sqlite::tests`, PostgreSQL in `postgres::tests` (where a server is configured). Each check
//! takes a fresh, empty store.

use super::*;
use crate::themes::Theme;

/// `#[test]`s running every check below on the stores `$open()` makes (`None`: skip).
macro_rules! tests {
    ($open:path) => {
        $crate::store::contract::tests!(@each $open,
            upsert_is_idempotent_and_updates_replace_segments,
            impact_input_reads_the_window_with_the_active_models_themes,
            workspaces_do_not_see_each_other,
            a_failed_write_leaves_nothing_behind,
            accounts_and_outcomes,
            themes_are_renamed_pinned_merged_and_versioned,
            segments_to_cluster_read_back_in_the_same_order_however_they_arrived,
            single_segment_verbatims_carry_their_score,
            api_tokens_are_hashed_scoped_and_revocable,
            erasure_removes_responses_and_every_quote_of_them,
            a_scheduled_recluster_is_claimed_once_per_period,
            a_themes_segments_are_read_newest_first_a_page_at_a_time);
    };
    (@each $open:path, $($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                if let Some((_guard, store)) = $open() {
                    $crate::store::contract::$name(&store);
                }
            }
        )*
    };
}
pub(crate) use tests;

pub fn response(id: &str, verbatim: &str) -> ResponseRecord {
    ResponseRecord {
        response_id: id.into(),
        account_id: "acme".into(),
        survey: SurveyKind::Nps,
        scale: SurveyKind::Nps.default_scale(),
        score: 3.0,
        verbatim: verbatim.into(),
        submitted_at: 1_700_000_000,
        attributes: [("plan".to_string(), "pro".to_string())].into(),
    }
}

pub fn segment(index: u32, text: &str) -> SegmentRecord {
    SegmentRecord {
        index,
        text: text.into(),
        start: 0,
        end: text.len() as u32,
        tokens: 5,
        embedding: vec![0.25, -1.5, 3.0],
        sentiment: Some(Sentiment::new([0.85, 0.1, 0.05])),
        theme_id: Some(7),
        theme_similarity: Some(0.6),
        theme_version: Some(1),
    }
}

fn theme(id: i64, centroid: [f32; 3], size: u64) -> Theme {
    Theme { id, label: format!("label {id}"), name: None, keywords: vec![format!("kw{id}")], quotes: vec![format!("quote {id}")], centroid: centroid.to_vec(), size, pinned: false }
}

fn model(themes: Vec<Theme>) -> ThemeModel {
    ThemeModel { version: 0, created_at: String::new(), k: themes.len(), assign_threshold: 0.2, segments: themes.iter().map(|t| t.size).sum(), themes }
}

pub fn upsert_is_idempotent_and_updates_replace_segments(store: &dyn Store) {
    let r = response("r1", "Slow. Broken.");
    let segs = [segment(0, "Slow."), segment(1, "Broken.")];
    assert_eq!(store.upsert_response("w", &r, "h1", false, &segs).unwrap(), WriteOutcome::Inserted);
    assert_eq!(store.upsert_response("w", &r, "h1", false, &segs).unwrap(), WriteOutcome::Unchanged);
    assert_eq!(store.count_responses("w").unwrap(), 1);
    let r2 = response("r1", "Fixed now.");
    assert_eq!(store.upsert_response("w", &r2, "h2", true, &segs[..1]).unwrap(), WriteOutcome::Updated);
    let got = store.get_response("w", "r1").unwrap().unwrap();
    assert_eq!(got.record, r2);
    assert!(got.truncated);
    assert_eq!(got.segments, vec![segment(0, "Slow.")]);
    assert_eq!((store.count_responses("w").unwrap(), store.count_segments("w").unwrap()), (1, 1));
    assert_eq!(store.response_hash("w", "r1").unwrap().as_deref(), Some("h2"));
}

pub fn impact_input_reads_the_window_with_the_active_models_themes(store: &dyn Store) {
    let old = ResponseRecord { submitted_at: 1_000, ..response("old", "Old.") };
    store.upsert_response("w", &old, "h0", false, &[segment(0, "Old.")]).unwrap();
    store.upsert_response("w", &response("r1", "Slow. Broken."), "h1", false, &[segment(0, "Slow."), segment(1, "Broken.")]).unwrap();
    store.upsert_response("other", &response("r9", "Elsewhere."), "h9", false, &[segment(0, "Elsewhere.")]).unwrap();
    store.upsert_accounts("w", &[AccountRecord { account_id: "acme".into(), arr: 5e4, churned_at: None, attributes: Default::default() }]).unwrap();
    // Before any model: responses, no themed segments.
    let before = store.impact_input("w", 1_600_000_000).unwrap();
    assert_eq!((before.responses.len(), before.segments.len(), before.themes.len()), (1, 0, 0));
    let model = model(vec![theme(3, [1.0, 0.0, 0.0], 2)]);
    let new = NewThemeModel { model: &model, assignments: vec![("r1", 0, 3, 0.9), ("r1", 1, 3, 0.8)], next_theme_id: 4, params: "{}".into() };
    store.activate_theme_model("w", &new).unwrap();
    let input = store.impact_input("w", 1_600_000_000).unwrap();
    assert_eq!(input.responses.len(), 1, "the window leaves the old response out");
    assert_eq!(input.responses[0].attributes["plan"], "pro");
    let themed: Vec<(usize, i64, &str)> = input.segments.iter().map(|s| (s.response, s.theme_id, s.text.as_str())).collect();
    assert_eq!(themed, [(0, 3, "Slow."), (0, 3, "Broken.")]);
    assert_eq!(input.segments[0].sentiment, Some(Sentiment::new([0.85, 0.1, 0.05])));
    assert_eq!((input.accounts.len(), input.themes.len()), (1, 1));
}

pub fn workspaces_do_not_see_each_other(store: &dyn Store) {
    store.upsert_response("a", &response("r1", "x"), "h", false, &[]).unwrap();
    assert!(store.get_response("b", "r1").unwrap().is_none());
    assert_eq!(store.upsert_response("b", &response("r1", "x"), "h", false, &[]).unwrap(), WriteOutcome::Inserted);
    assert_eq!((store.count_responses("a").unwrap(), store.count_responses("b").unwrap()), (1, 1));
}

pub fn a_failed_write_leaves_nothing_behind(store: &dyn Store) {
    let mut bad = response("r1", "x");
    bad.score = 42.0; // violates the CHECK constraint after the row would be inserted
    assert!(store.upsert_response("w", &bad, "h", false, &[segment(0, "x")]).is_err());
    assert_eq!((store.count_responses("w").unwrap(), store.count_segments("w").unwrap()), (0, 0));
    // Duplicate segment index: the response insert succeeds, the second segment fails → rollback.
    let ok = response("r2", "x");
    assert!(store.upsert_response("w", &ok, "h", false, &[segment(0, "x"), segment(0, "y")]).is_err());
    assert_eq!((store.count_responses("w").unwrap(), store.count_segments("w").unwrap()), (0, 0));
    // A batch of accounts with one bad ARR writes none of them.
    let good = AccountRecord { account_id: "a".into(), arr: 10.0, churned_at: None, attributes: Attributes::new() };
    let negative = AccountRecord { account_id: "b".into(), arr: -1.0, ..good.clone() };
    assert!(store.upsert_accounts("w", &[good, negative]).is_err());
    assert!(store.get_account("w", "a").unwrap().is_none());
    // The store still works after the failures.
    assert_eq!(store.upsert_response("w", &ok, "h", false, &[segment(0, "x")]).unwrap(), WriteOutcome::Inserted);
}

/// Upserts `accounts` after checking that the dry run ([`Store::check_accounts`]) counts what
/// the upsert does.
fn upsert_accounts_checked(store: &dyn Store, accounts: &[AccountRecord]) -> Vec<WriteOutcome> {
    let checked = store.check_accounts("w", accounts).unwrap();
    let written = store.upsert_accounts("w", accounts).unwrap();
    assert_eq!(checked, written, "the dry run counts what the upsert does");
    written
}

fn record_outcomes_checked(store: &dyn Store, outcomes: &[OutcomeRecord]) -> Vec<WriteOutcome> {
    let checked = store.check_outcomes("w", outcomes).unwrap();
    let written = store.record_outcomes("w", outcomes).unwrap();
    assert_eq!(checked, written, "the dry run counts what recording does");
    written
}

pub fn accounts_and_outcomes(store: &dyn Store) {
    let acme = AccountRecord { account_id: "acme".into(), arr: 1000.0, churned_at: None, attributes: Attributes::new() };
    assert_eq!(store.check_accounts("w", std::slice::from_ref(&acme)).unwrap(), [WriteOutcome::Inserted]);
    assert!(store.get_account("w", "acme").unwrap().is_none(), "a dry run writes nothing");
    assert_eq!(upsert_accounts_checked(store, std::slice::from_ref(&acme)), [WriteOutcome::Inserted]);
    assert_eq!(upsert_accounts_checked(store, std::slice::from_ref(&acme)), [WriteOutcome::Unchanged]);
    let churn = OutcomeRecord { account_id: "acme".into(), kind: OutcomeKind::Churn, occurred_at: 2000, arr_change: None };
    assert_eq!(store.check_outcomes("w", std::slice::from_ref(&churn)).unwrap(), [WriteOutcome::Inserted]);
    assert!(store.list_outcomes("w").unwrap().is_empty(), "a dry run writes nothing");
    assert_eq!(record_outcomes_checked(store, std::slice::from_ref(&churn)), [WriteOutcome::Inserted]);
    assert_eq!(record_outcomes_checked(store, std::slice::from_ref(&churn)), [WriteOutcome::Unchanged]);
    let partial = OutcomeRecord { arr_change: Some(250.0), ..churn.clone() };
    assert_eq!(record_outcomes_checked(store, std::slice::from_ref(&partial)), [WriteOutcome::Updated]);
    let earlier = OutcomeRecord { occurred_at: 1500, arr_change: Some(400.0), ..churn.clone() };
    // A repeated event in one batch is compared with its earlier row; another kind at the same
    // time is another event.
    let contraction = OutcomeRecord { kind: OutcomeKind::Contraction, ..earlier.clone() };
    let batch = [earlier.clone(), earlier.clone(), OutcomeRecord { arr_change: Some(300.0), ..earlier.clone() }, contraction, partial];
    assert_eq!(record_outcomes_checked(store, &batch), [WriteOutcome::Inserted, WriteOutcome::Unchanged, WriteOutcome::Updated, WriteOutcome::Inserted, WriteOutcome::Unchanged]);
    store.record_outcomes("w", &[earlier]).unwrap();
    assert_eq!(store.get_account("w", "acme").unwrap().unwrap().churned_at, Some(1500));
    let listed = store.list_outcomes("w").unwrap();
    let listed: Vec<_> = listed.iter().map(|o| (o.occurred_at, o.kind, o.arr_change)).collect();
    assert_eq!(listed, [(1500, OutcomeKind::Churn, Some(400.0)), (1500, OutcomeKind::Contraction, Some(400.0)), (2000, OutcomeKind::Churn, Some(250.0))]);
    // One event is read by its key (what the dry run reads); another kind, time or workspace is another event.
    assert_eq!(store.get_outcome("w", "acme", OutcomeKind::Churn, 2000).unwrap(), Some(OutcomeRecord { arr_change: Some(250.0), ..churn.clone() }));
    assert_eq!(store.get_outcome("w", "acme", OutcomeKind::Contraction, 1500).unwrap().unwrap().arr_change, Some(400.0));
    assert_eq!(store.get_outcome("w", "acme", OutcomeKind::Expansion, 2000).unwrap(), None);
    assert_eq!(store.get_outcome("w", "acme", OutcomeKind::Churn, 2001).unwrap(), None);
    assert_eq!(store.get_outcome("other", "acme", OutcomeKind::Churn, 2000).unwrap(), None);
    assert_eq!(store.check_outcomes("other", std::slice::from_ref(&churn)).unwrap(), [WriteOutcome::Inserted]);
    // Re-upserting the account without churned_at keeps the churn, and changes nothing else.
    assert_eq!(upsert_accounts_checked(store, std::slice::from_ref(&acme)), [WriteOutcome::Unchanged]);
    let updated = AccountRecord { arr: 1200.0, ..acme.clone() };
    assert_eq!(upsert_accounts_checked(store, &[updated]), [WriteOutcome::Updated]);
    assert_eq!(store.get_account("w", "acme").unwrap().unwrap().churned_at, Some(1500));
    // A repeated id in one batch is compared with its earlier row; a later churn date is a change.
    let plan = AccountRecord { attributes: [("plan".to_string(), "pro".to_string())].into(), ..acme.clone() };
    let churned_later = AccountRecord { churned_at: Some(1800), ..plan.clone() };
    let new = AccountRecord { account_id: "initech".into(), ..acme };
    let batch = [plan.clone(), plan, new.clone(), new, churned_later];
    let outcomes = upsert_accounts_checked(store, &batch);
    use WriteOutcome::*;
    assert_eq!(outcomes, [Updated, Unchanged, Inserted, Unchanged, Updated]);
    assert_eq!(store.get_account("w", "acme").unwrap().unwrap().churned_at, Some(1800));
}

pub fn themes_are_renamed_pinned_merged_and_versioned(store: &dyn Store) {
    let segs = [segment(0, "Slow support."), segment(1, "Billing is wrong.")];
    store.upsert_response("w", &response("r1", "Slow support. Billing is wrong."), "h1", false, &segs).unwrap();
    assert_eq!(store.active_theme_stamp("w").unwrap(), None);
    let first = model(vec![theme(1, [1.0, 0.0, 0.0], 1), theme(2, [0.0, 1.0, 0.0], 1)]);
    let new = NewThemeModel { model: &first, assignments: vec![("r1", 0, 1, 0.9), ("r1", 1, 2, 0.7)], next_theme_id: 3, params: "{}".into() };
    assert_eq!(store.activate_theme_model("w", &new).unwrap(), 1);
    let prior: Vec<Option<i64>> = store.theme_segments("w", None).unwrap().iter().map(|s| s.theme_id).collect();
    assert_eq!(prior, [Some(1), Some(2)]);

    let stamp = |s: &dyn Store| s.active_theme_stamp("w").unwrap().unwrap();
    let before = stamp(store);
    assert_eq!(before.version, 1);
    assert_eq!(store.rename_theme("w", 1, Some("  Support speed ")).unwrap().unwrap().name.as_deref(), Some("Support speed"));
    let renamed = stamp(store);
    assert!(renamed.version == 1 && renamed != before, "a rename changes the model in place: caches must see it");
    assert!(store.pin_theme("w", 2, true).unwrap().unwrap().pinned);
    assert_ne!(stamp(store), renamed);
    assert!(store.rename_theme("w", 99, Some("nothing")).unwrap().is_none());
    let labels: Vec<Option<String>> = store.theme_assignments("w").unwrap().into_iter().map(|a| a.theme_label).collect();
    assert_eq!(labels, [Some("Support speed".to_string()), Some("label 2".to_string())]);

    let pinned = stamp(store);
    let merged = store.merge_themes("w", 2, 1).unwrap().unwrap();
    assert_ne!(stamp(store), pinned);
    assert_eq!((merged.id, merged.size), (1, 2));
    assert!((merged.centroid[0] - merged.centroid[1]).abs() < 1e-6, "the size-weighted mean direction");
    let history = store.theme_history("w").unwrap();
    assert_eq!(history.next_id, 3);
    assert_eq!(history.merged, [(vec![0.0, 1.0, 0.0], 1)]);
    let active = history.active.unwrap();
    assert_eq!(active.themes.iter().map(|t| t.id).collect::<Vec<_>>(), [1]);
    assert_eq!(store.theme_assignments("w").unwrap().iter().map(|a| a.theme_id).collect::<Vec<_>>(), [Some(1), Some(1)]);
    assert!(store.merge_themes("w", 2, 1).unwrap().is_none(), "a theme merged away is gone");

    // The next model gets the next version; segments it did not assign lose their theme.
    let second = model(vec![theme(3, [0.0, 0.0, 1.0], 1)]);
    let new = NewThemeModel { model: &second, assignments: vec![("r1", 1, 3, 0.8)], next_theme_id: 4, params: "{}".into() };
    assert_eq!(store.activate_theme_model("w", &new).unwrap(), 2);
    assert_eq!(store.active_theme_stamp("w").unwrap().map(|s| s.version), Some(2));
    let model = store.active_theme_model("w").unwrap().unwrap();
    assert_eq!((model.version, model.k, model.segments, model.assign_threshold), (2, 1, 1, 0.2));
    assert!(!model.created_at.is_empty());
    let prior: Vec<Option<i64>> = store.theme_segments("w", None).unwrap().iter().map(|s| s.theme_id).collect();
    assert_eq!(prior, [None, Some(3)]);
    assert!(store.theme_segments("w", Some(1_800_000_000)).unwrap().is_empty(), "the window leaves older responses out");
    assert_eq!(store.theme_history("other").unwrap().next_id, 1);
}

pub fn segments_to_cluster_read_back_in_the_same_order_however_they_arrived(store: &dyn Store) {
    // Submitted and written in the opposite order of their ids. Ids sort by their bytes in every
    // store ("R" before "a"; a PostgreSQL locale collation would put "a2" first).
    for (id, at) in [("r3", 1_700_000_300), ("r1", 1_700_000_200), ("r2", 1_700_000_100), ("a2", 1_700_000_050), ("R9", 1_700_000_040)] {
        let segs = [segment(0, "First."), segment(1, "Second.")];
        store.upsert_response("w", &ResponseRecord { submitted_at: at, ..response(id, "First. Second.") }, id, false, &segs).unwrap();
    }
    let order: Vec<(String, u32)> = store.theme_segments("w", None).unwrap().into_iter().map(|s| (s.response_id, s.index)).collect();
    let want: Vec<(String, u32)> = ["R9", "a2", "r1", "r2", "r3"].iter().flat_map(|id| [(id.to_string(), 0), (id.to_string(), 1)]).collect();
    assert_eq!(order, want);
    let windowed: Vec<String> = store.theme_segments("w", Some(1_700_000_200)).unwrap().into_iter().map(|s| s.response_id).collect();
    assert_eq!(windowed, ["r1", "r1", "r3", "r3"]);
}

pub fn single_segment_verbatims_carry_their_score(store: &dyn Store) {
    let csat = ResponseRecord { survey: SurveyKind::Csat, scale: SurveyKind::Csat.default_scale(), score: 5.0, ..response("c1", "Great.") };
    store.upsert_response("w", &csat, "h1", false, &[segment(0, "Great.")]).unwrap();
    store.upsert_response("w", &response("r2", "Slow. Broken."), "h2", false, &[segment(0, "Slow."), segment(1, "Broken.")]).unwrap();
    let texts = store.single_segment_verbatims("w").unwrap();
    assert_eq!(texts.len(), 1, "two-segment verbatims are left out");
    assert_eq!((texts[0].text.as_str(), texts[0].survey, texts[0].scale, texts[0].score), ("Great.", SurveyKind::Csat, SurveyKind::Csat.default_scale(), 5.0));
}

pub fn api_tokens_are_hashed_scoped_and_revocable(store: &dyn Store) {
    use crate::auth::{self, AuthMode, Denied, Need, Scope};
    let decide = |mode, presented: Option<&str>, requested: Option<&str>, need| auth::authorize(store, mode, presented, requested, "default", need);
    // No token yet: `auto` lets calls through to the requested (or default) workspace.
    assert!(!store.has_api_tokens().unwrap());
    assert_eq!(decide(AuthMode::Auto, None, Some("acme"), Need::Scope(Scope::Admin)).unwrap(), "acme");
    assert!(matches!(decide(AuthMode::Required, None, None, Need::AnyScope), Err(Denied::Unauthenticated(_))));

    let ingest = auth::issue(store, "acme", "survey-platform", &[Scope::Ingest], None).unwrap();
    assert!(ingest.secret.starts_with("vbt_") && ingest.secret.len() == 4 + 64);
    let again = auth::issue(store, "acme", "survey-platform", &[Scope::Read], None).unwrap_err();
    assert!(again.to_string().contains("already has an active token named \"survey-platform\""), "{again}");
    let read = auth::issue(store, "acme", "cx-team", &[Scope::Read, Scope::Read], None).unwrap();
    assert_eq!(read.token.scopes, vec![Scope::Read]);
    auth::issue(store, "other", "survey-platform", &[Scope::Admin], None).unwrap(); // names are per workspace
    assert!(store.has_api_tokens().unwrap());

    // Only the hash is stored.
    assert!(store.api_token_by_hash(&ingest.secret).unwrap().is_none());
    assert_eq!(store.api_token_by_hash(&auth::hash_secret(&ingest.secret)).unwrap().unwrap(), ingest.token);

    let bearer = |t: &auth::IssuedToken| format!("Bearer {}", t.secret);
    assert!(matches!(decide(AuthMode::Auto, None, None, Need::AnyScope), Err(Denied::Unauthenticated(_))), "tokens exist: auto asks for one");
    assert_eq!(decide(AuthMode::Auto, Some(&bearer(&ingest)), None, Need::Scope(Scope::Ingest)).unwrap(), "acme", "the token's workspace");
    assert_eq!(decide(AuthMode::Auto, Some(&bearer(&ingest)), Some("acme"), Need::AnyScope).unwrap(), "acme");
    match decide(AuthMode::Auto, Some(&bearer(&ingest)), None, Need::Scope(Scope::Read)) {
        Err(Denied::PermissionDenied(m)) => assert!(m.contains("scopes [ingest]") && m.contains("needs scope read"), "{m}"),
        other => panic!("{other:?}"),
    }
    match decide(AuthMode::Auto, Some(&bearer(&ingest)), Some("other"), Need::Scope(Scope::Ingest)) {
        Err(Denied::PermissionDenied(m)) => assert!(m.starts_with("x-verbatim-workspace: ") && m.contains("\"acme\""), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(decide(AuthMode::Auto, Some("Bearer vbt_0000"), None, Need::AnyScope), Err(Denied::Unauthenticated(_))));
    assert!(matches!(decide(AuthMode::Auto, Some("Basic dXNlcjpwYXNz"), None, Need::AnyScope), Err(Denied::Unauthenticated(_))));
    assert_eq!(decide(AuthMode::Off, None, Some("other"), Need::Scope(Scope::Admin)).unwrap(), "other");

    // Revoked: refused at once, listed with its time, and the name is free again.
    assert!(store.revoke_api_token("acme", "survey-platform").unwrap());
    assert!(!store.revoke_api_token("acme", "survey-platform").unwrap());
    assert!(!store.revoke_api_token("acme", "nobody").unwrap());
    assert!(matches!(decide(AuthMode::Auto, Some(&bearer(&ingest)), None, Need::AnyScope), Err(Denied::Unauthenticated(_))));
    let renewed = auth::issue(store, "acme", "survey-platform", &[Scope::Ingest], None).unwrap();
    let listed = store.list_api_tokens("acme").unwrap();
    let names: Vec<(&str, bool)> = listed.iter().map(|t| (t.name.as_str(), t.revoked_at.is_some())).collect();
    assert_eq!(names, [("survey-platform", true), ("cx-team", false), ("survey-platform", false)]);
    assert_eq!(listed[2], renewed.token);
    assert_eq!(store.list_api_tokens("other").unwrap().len(), 1);

    // A call records when the token was last used, at most once a minute, never backwards.
    let used = |t: &auth::IssuedToken| store.api_token_by_hash(&auth::hash_secret(&t.secret)).unwrap().unwrap().last_used_at;
    assert_eq!(used(&read), None);
    let t = now();
    decide(AuthMode::Auto, Some(&bearer(&read)), None, Need::Scope(Scope::Read)).unwrap();
    assert!(used(&read).is_some_and(|u| (t..t + 60).contains(&u)), "{:?}", used(&read));
    assert_eq!(store.list_api_tokens("acme").unwrap()[1].last_used_at, used(&read), "tokens list shows it");
    store.touch_api_token(&auth::hash_secret(&read.secret), t - 3600).unwrap();
    assert!(used(&read).is_some_and(|u| u >= t));
    assert_eq!(used(&renewed), None, "only the token presented");

    // Expiry: refused from then on, saying so; a token cannot be issued already expired.
    let past = auth::issue(store, "acme", "old", &[Scope::Read], Some(t - 1)).unwrap_err();
    assert!(past.to_string().starts_with("expires: "), "{past}");
    let soon = auth::issue(store, "acme", "contractor", &[Scope::Read], Some(t + 3600)).unwrap();
    assert_eq!(soon.token.expires_at, Some(t + 3600));
    assert_eq!(decide(AuthMode::Auto, Some(&bearer(&soon)), None, Need::Scope(Scope::Read)).unwrap(), "acme");
    store.insert_api_token("acme", "lapsed", &[Scope::Read], &auth::hash_secret("vbt_lapsed"), Some(t - 60)).unwrap().unwrap();
    match decide(AuthMode::Auto, Some("Bearer vbt_lapsed"), None, Need::Scope(Scope::Read)) {
        Err(Denied::Unauthenticated(m)) => assert!(m.contains("\"lapsed\"") && m.contains("expired at"), "{m}"),
        other => panic!("{other:?}"),
    }

    // Revoking every token does not open an `auto` server again.
    for (workspace, name) in [("acme", "cx-team"), ("acme", "survey-platform"), ("acme", "contractor"), ("acme", "lapsed"), ("other", "survey-platform")] {
        assert!(store.revoke_api_token(workspace, name).unwrap(), "{workspace}/{name}");
    }
    assert!(store.has_api_tokens().unwrap());
    assert!(matches!(decide(AuthMode::Auto, None, None, Need::AnyScope), Err(Denied::Unauthenticated(_))));
}

pub fn erasure_removes_responses_and_every_quote_of_them(store: &dyn Store) {
    let at = |id: &str, account: &str, t: i64, text: &str| ResponseRecord { account_id: account.into(), submitted_at: t, ..response(id, text) };
    store.upsert_response("w", &at("r1", "acme", 1_000, "Jane from billing was rude. Fine otherwise."), "h1", false, &[segment(0, "Jane from billing was rude."), segment(1, "Fine otherwise.")]).unwrap();
    store.upsert_response("w", &at("r2", "acme", 2_000, "Slow."), "h2", false, &[segment(0, "Slow.")]).unwrap();
    store.upsert_response("w", &at("r3", "beta", 3_000, "Slow again."), "h3", false, &[segment(0, "Slow again.")]).unwrap();
    store.upsert_response("other", &at("r1", "acme", 1_000, "Kept."), "h9", false, &[segment(0, "Kept.")]).unwrap();
    store.upsert_accounts("w", &[AccountRecord { account_id: "acme".into(), arr: 1e4, churned_at: None, attributes: Default::default() }]).unwrap();
    store.record_outcomes("w", &[OutcomeRecord { account_id: "acme".into(), kind: OutcomeKind::Churn, occurred_at: 5_000, arr_change: None }]).unwrap();
    // Two model versions quote r1; the second also quotes r2 and r3.
    let quoted = |quotes: &[&str]| Theme { quotes: quotes.iter().map(|q| q.to_string()).collect(), ..theme(1, [1.0, 0.0, 0.0], 3) };
    let first = model(vec![quoted(&["Jane from billing was rude.", "quote 1"])]);
    store.activate_theme_model("w", &NewThemeModel { model: &first, assignments: vec![], next_theme_id: 2, params: "{}".into() }).unwrap();
    let second = model(vec![quoted(&["Jane from billing was rude.", "Slow.", "Slow again."])]);
    store.activate_theme_model("w", &NewThemeModel { model: &second, assignments: vec![], next_theme_id: 2, params: "{}".into() }).unwrap();

    let summary = store.erase("w", &Erasure::Responses(vec!["r1".into(), "never-stored".into()])).unwrap();
    assert_eq!(summary, ErasureSummary { responses: 1, segments: 2, quotes: 2, accounts: 0, outcomes: 0, submitted_days: vec![0] }, "one quote in each version");
    assert!(store.get_response("w", "r1").unwrap().is_none());
    assert!(store.get_response("other", "r1").unwrap().is_some(), "another workspace's r1 stays");
    assert_eq!(store.count_segments("w").unwrap(), 2);
    let quotes = |s: &dyn Store| s.active_theme_model("w").unwrap().unwrap().themes[0].quotes.clone();
    assert_eq!(quotes(store), ["Slow.", "Slow again."], "the active model no longer quotes r1");
    let scrubbed = store.active_theme_stamp("w").unwrap().unwrap();
    assert_eq!(store.erase("w", &Erasure::Responses(vec!["never-stored".into()])).unwrap(), ErasureSummary::default());
    assert_eq!(store.active_theme_stamp("w").unwrap().unwrap(), scrubbed, "an erase that changes no quote leaves the model's stamp");

    // Retention: everything submitted before 2,500 s.
    assert_eq!(store.erase("w", &Erasure::SubmittedBefore(2_500)).unwrap(), ErasureSummary { responses: 1, segments: 1, quotes: 1, accounts: 0, outcomes: 0, submitted_days: vec![0] });
    assert_eq!(quotes(store), ["Slow again."]);

    // An account: its responses (none left), the account and its outcomes.
    // Its responses name the UTC days they were submitted on, once each, a day before 1970 too.
    const DAY: i64 = 86_400;
    for (id, t) in [("r4", 4_000), ("r5", 2 * DAY + 5), ("r6", 3 * DAY - 1), ("r7", -10)] {
        store.upsert_response("w", &at(id, "acme", t, "New."), id, false, &[segment(0, "New.")]).unwrap();
    }
    let summary = store.erase("w", &Erasure::Account("acme".into())).unwrap();
    assert_eq!(summary, ErasureSummary { responses: 4, segments: 4, quotes: 0, accounts: 1, outcomes: 1, submitted_days: vec![-DAY, 0, 2 * DAY] });
    assert!(store.get_account("w", "acme").unwrap().is_none());
    assert!(store.list_outcomes("w").unwrap().is_empty());
    assert_eq!(store.count_responses("w").unwrap(), 1, "beta's r3 stays");
    assert_eq!(store.erase("w", &Erasure::Account("acme".into())).unwrap(), ErasureSummary::default(), "erasing twice is a no-op");

    // A retention run covers every workspace.
    assert_eq!(store.workspaces().unwrap(), ["other", "w"]);
    let erased = erase_submitted_before(store, 3_500).unwrap();
    let counts: Vec<(&str, u64)> = erased.iter().map(|(w, s)| (w.as_str(), s.responses)).collect();
    assert_eq!(counts, [("other", 1), ("w", 1)]);
    assert_eq!(erased.iter().map(|(_, s)| s.submitted_days.clone()).collect::<Vec<_>>(), [vec![0], vec![0]]);
    assert_eq!((store.count_responses("w").unwrap(), store.count_responses("other").unwrap()), (0, 0));
    assert!(erase_submitted_before(store, 3_500).unwrap().is_empty());
}

pub fn a_scheduled_recluster_is_claimed_once_per_period(store: &dyn Store) {
    let t = now();
    // (now, due_before, retry_before) for a weekly schedule retried after six hours.
    let at = |now: i64| (now, now - 7 * 86_400, now - 6 * 3600);
    let claim = |workspace: &str, (now, due, retry): (i64, i64, i64)| store.claim_recluster(workspace, now, due, retry).unwrap();

    // Without a model a workspace is due; the claim holds off every other asker until the retry time.
    assert!(claim("w", at(t)));
    assert!(!claim("w", at(t + 60)), "claimed a minute ago");
    assert!(claim("other", at(t + 60)), "claims are per workspace");
    assert!(claim("w", at(t + 6 * 3600 + 1)), "an unfinished claim is taken again after the retry time");

    // Once a model is active, the workspace is due one period after the model was built.
    store.upsert_response("w", &response("r1", "Slow support."), "h1", false, &[segment(0, "Slow support.")]).unwrap();
    let m = model(vec![theme(1, [1.0, 0.0, 0.0], 1)]);
    store.activate_theme_model("w", &NewThemeModel { model: &m, assignments: vec![("r1", 0, 1, 0.9)], next_theme_id: 2, params: "{}".into() }).unwrap();
    assert!(!claim("w", at(t + 7 * 3600)), "the model is an hour old");
    assert!(!claim("w", at(t + 6 * 86_400)), "the model is six days old");
    assert!(claim("w", at(t + 7 * 86_400 + 60)), "the model is a week old");

    // Replicas asking at once: one is told to run it.
    let told = std::thread::scope(|s| {
        let askers: Vec<_> = (0..8).map(|_| s.spawn(|| claim("race", at(t)))).collect();
        askers.into_iter().map(|a| a.join().unwrap()).filter(|&told| told).count()
    });
    assert_eq!(told, 1);
}

pub fn a_themes_segments_are_read_newest_first_a_page_at_a_time(store: &dyn Store) {
    let query = |theme_id, limit| ThemeSegmentQuery { theme_id, limit, ..Default::default() };
    assert_eq!(store.theme_segment_page("w", &query(1, 10)).unwrap(), ThemeSegmentPage::default(), "no model yet");
    let positive = |index, text| SegmentRecord { sentiment: Some(Sentiment::new([0.05, 0.1, 0.85])), ..segment(index, text) };
    let at = |id: &str, t: i64, verbatim: &str| ResponseRecord { submitted_at: t, ..response(id, verbatim) };
    // r2 and r3 share a submission time: the later response id comes first.
    let responses = [
        (at("r1", 100, "Slow. Great app."), vec![segment(0, "Slow."), positive(1, "Great app.")]),
        (at("r2", 200, "Late."), vec![segment(0, "Late.")]),
        (at("r3", 200, "Lost. Still lost."), vec![segment(0, "Lost."), segment(1, "Still lost.")]),
        (at("r4", 300, "Love it."), vec![positive(0, "Love it.")]),
        (at("r5", 400, "Wrong bill."), vec![segment(0, "Wrong bill.")]),
    ];
    for (i, (r, segs)) in responses.iter().enumerate() {
        store.upsert_response("w", r, &format!("h{i}"), false, segs).unwrap();
    }
    store.upsert_response("other", &at("x1", 500, "Slow."), "hx", false, &[segment(0, "Slow.")]).unwrap();
    let m = model(vec![theme(1, [1.0, 0.0, 0.0], 6), theme(2, [0.0, 1.0, 0.0], 1)]);
    let assignments = vec![("r1", 0, 1, 0.9), ("r1", 1, 1, 0.8), ("r2", 0, 1, 0.7), ("r3", 0, 1, 0.6), ("r3", 1, 1, 0.5), ("r4", 0, 1, 0.4), ("r5", 0, 2, 0.3)];
    let version = store.activate_theme_model("w", &NewThemeModel { model: &m, assignments, next_theme_id: 3, params: "{}".into() }).unwrap();

    // Pages of two, each continuing after the last segment of the one before.
    let mut read = Vec::new();
    let mut q = query(1, 2);
    for pages in 1.. {
        assert!(pages <= 3, "six segments in pages of two: {read:?}");
        let page = store.theme_segment_page("w", &q).unwrap();
        assert_eq!(page.version, version);
        assert!(page.segments.len() <= 2);
        read.extend(page.segments.iter().map(|h| (h.response.response_id.clone(), h.index, h.text.clone())));
        if !page.more {
            break;
        }
        q.after = page.segments.last().map(ThemeSegmentHit::position);
    }
    let expected = [("r4", 0, "Love it."), ("r3", 0, "Lost."), ("r3", 1, "Still lost."), ("r2", 0, "Late."), ("r1", 0, "Slow."), ("r1", 1, "Great app.")];
    assert_eq!(read, expected.map(|(r, i, t)| (r.to_string(), i, t.to_string())));

    // A hit carries its response, sentiment and similarity.
    let first = store.theme_segment_page("w", &query(1, 1)).unwrap();
    let hit = &first.segments[0];
    assert!(first.more);
    assert_eq!((hit.response.verbatim.as_str(), hit.response.submitted_at, hit.response.account_id.as_str()), ("Love it.", 300, "acme"));
    assert_eq!((hit.sentiment.map(|s| s.label()), hit.similarity), (Some(crate::sentiment::Label::Positive), 0.4));
    assert_eq!(hit.response.attributes["plan"], "pro");

    // Filters: the submission window [since, until) and the sentiment label.
    let window = store.theme_segment_page("w", &ThemeSegmentQuery { since: Some(200), until: Some(300), ..query(1, 10) }).unwrap();
    assert_eq!(window.segments.iter().map(|h| h.text.as_str()).collect::<Vec<_>>(), ["Lost.", "Still lost.", "Late."]);
    let positive = store.theme_segment_page("w", &ThemeSegmentQuery { sentiment: Some(crate::sentiment::Label::Positive), ..query(1, 10) }).unwrap();
    assert_eq!(positive.segments.iter().map(|h| h.text.as_str()).collect::<Vec<_>>(), ["Love it.", "Great app."]);

    // A merge moves the source's segments; another workspace's are never read.
    store.merge_themes("w", 2, 1).unwrap();
    let merged = store.theme_segment_page("w", &query(1, 10)).unwrap();
    assert_eq!(merged.segments.first().map(|h| h.text.as_str()), Some("Wrong bill."));
    assert_eq!(merged.segments.len(), 7);
    assert!(store.theme_segment_page("w", &query(2, 10)).unwrap().segments.is_empty());
    assert!(store.theme_segment_page("other", &query(1, 10)).unwrap().segments.is_empty(), "no model in that workspace");
}
