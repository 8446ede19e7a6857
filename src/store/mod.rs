//! Durable storage behind the [`Store`] trait: responses with their segments (embedding, sentiment,
//! theme), accounts with ARR, and churn/expansion outcomes. Every row belongs to a workspace and
//! every method takes one, so no query can cross tenants.
//!
//! [`sqlite::SqliteStore`] is the embedded default (one file, WAL, migrations, transactions);
//! [`postgres::PostgresStore`] is the store several replicas share (one database, the same
//! schema, advisory locks where two replicas could race). [`open`] picks one from `--db`.

pub mod postgres;
pub mod sqlite;
#[cfg(test)]
mod contract;

use std::collections::BTreeMap;

use crate::auth::Scope;
use crate::impact::report::{ImpactInput, SegmentTheme};
use crate::sentiment::Sentiment;
use crate::survey::{Scale, SurveyKind};
use crate::themes::recluster::History;
use crate::themes::{Theme, ThemeModel};

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Opens the store `--db` names: a `postgres://` or `postgresql://` URL opens [`PostgresStore`],
/// anything else is a SQLite file path.
pub fn open(db: &std::path::Path) -> StoreResult<std::sync::Arc<dyn Store>> {
    match db.to_str().filter(|s| postgres::is_url(s)) {
        Some(url) => Ok(std::sync::Arc::new(PostgresStore::open(url)?)),
        None => Ok(std::sync::Arc::new(SqliteStore::open(db)?)),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database: {0}")]
    Postgres(#[from] ::postgres::Error),
    #[error("database {path}: {detail}")]
    Open { path: String, detail: String },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// The database cannot be reached or dropped the connection (a restart, a failover): the call
    /// may succeed if retried, and nothing is wrong with it. Not a constraint or data error.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Open { .. } => true,
            StoreError::Postgres(e) => {
                // SQLSTATE classes 08 (connection exception) and 57 (operator intervention:
                // admin_shutdown, cannot_connect_now …).
                e.is_closed()
                    || e.code().is_some_and(|c| c.code().starts_with("08") || c.code().starts_with("57"))
                    || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
            }
            StoreError::Sqlite(_) | StoreError::Corrupt(_) => false,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Free-form attributes (plan, channel, region, device …), sorted for stable hashing and output.
pub type Attributes = BTreeMap<String, String>;

/// A survey response as submitted (already validated).
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseRecord {
    pub response_id: String,
    pub account_id: String,
    pub survey: SurveyKind,
    pub scale: Scale,
    pub score: f64,
    pub verbatim: String,
    /// Seconds since the Unix epoch, UTC.
    pub submitted_at: i64,
    pub attributes: Attributes,
}

/// One analysed segment of a verbatim.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentRecord {
    pub index: u32,
    pub text: String,
    pub start: u32,
    pub end: u32,
    pub tokens: u32,
    pub embedding: Vec<f32>,
    /// From the sentiment branch; `None` when the service ran without one.
    pub sentiment: Option<Sentiment>,
    /// The theme of the active model at ingest time; `None` before the first recluster or when
    /// the segment is far from every theme ("emerging").
    pub theme_id: Option<i64>,
    /// Cosine similarity to the assigned (or nearest) theme centroid.
    pub theme_similarity: Option<f32>,
    /// The theme model version that assigned `theme_id`.
    pub theme_version: Option<i64>,
}

/// A stored segment as the recluster reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct ThemeSegment {
    pub response_id: String,
    pub index: u32,
    pub text: String,
    pub embedding: Vec<f32>,
    /// Its theme under the active model, if that model assigned one.
    pub theme_id: Option<i64>,
}

/// A new theme model and every window segment's theme, to store and activate in one transaction.
#[derive(Debug, Clone)]
pub struct NewThemeModel<'a> {
    pub model: &'a ThemeModel,
    /// `(response_id, segment index, theme id, similarity)`.
    pub assignments: Vec<(&'a str, u32, i64, f32)>,
    pub next_theme_id: i64,
    /// What produced it (window, k choice, seed, scores), as JSON.
    pub params: String,
}

/// One row of `verbatim export-assignments`.
#[derive(Debug, Clone, PartialEq)]
pub struct AssignmentRow {
    pub response_id: String,
    pub segment_index: u32,
    pub segment_text: String,
    /// `None` for a segment the active model has not assigned ("emerging" or older than it).
    pub theme_id: Option<i64>,
    pub theme_label: Option<String>,
}

/// What [`Store::theme_segment_page`] reads: one theme's segments under the active model, newest
/// first (by submission time, then response id descending, then segment index).
#[derive(Debug, Clone, Default)]
pub struct ThemeSegmentQuery {
    pub theme_id: i64,
    /// Only responses submitted in [since, until) (seconds since the epoch); `None`: unbounded.
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Only segments whose stored sentiment label is this one.
    pub sentiment: Option<crate::sentiment::Label>,
    /// Continue after this position: the last segment of the previous page.
    pub after: Option<SegmentPosition>,
    /// At most this many segments.
    pub limit: usize,
}

/// Where a segment sits in [`ThemeSegmentQuery`]'s order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentPosition {
    pub submitted_at: i64,
    pub response_id: String,
    pub index: u32,
}

/// A page of a theme's segments, each with the response it came from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ThemeSegmentPage {
    /// The active model read (0: none yet, and no segments).
    pub version: i64,
    pub segments: Vec<ThemeSegmentHit>,
    /// Whether segments follow the last one.
    pub more: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ThemeSegmentHit {
    pub response: ResponseRecord,
    pub index: u32,
    pub text: String,
    pub sentiment: Option<Sentiment>,
    /// Cosine to the theme's centroid when it was assigned.
    pub similarity: f32,
}

impl ThemeSegmentHit {
    pub fn position(&self) -> SegmentPosition {
        SegmentPosition { submitted_at: self.response.submitted_at, response_id: self.response.response_id.clone(), index: self.index }
    }
}

/// A stored response and its segments.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResponse {
    pub record: ResponseRecord,
    pub content_hash: String,
    pub truncated: bool,
    pub segments: Vec<SegmentRecord>,
    /// Seconds since the Unix epoch when first received / last changed.
    pub received_at: i64,
    pub updated_at: i64,
}

/// One stored segment with its response's survey and score.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredText {
    pub text: String,
    pub survey: SurveyKind,
    pub scale: Scale,
    pub score: f64,
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Inserted,
    /// Same id, same content: nothing written.
    Unchanged,
    /// Same id, different content: replaced.
    Updated,
}

/// How many writes of each kind a batch made.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriteCounts {
    pub inserted: u64,
    pub unchanged: u64,
    pub updated: u64,
}

impl WriteCounts {
    pub fn add(&mut self, w: WriteOutcome) {
        match w {
            WriteOutcome::Inserted => self.inserted += 1,
            WriteOutcome::Unchanged => self.unchanged += 1,
            WriteOutcome::Updated => self.updated += 1,
        }
    }
}

impl FromIterator<WriteOutcome> for WriteCounts {
    fn from_iter<I: IntoIterator<Item = WriteOutcome>>(iter: I) -> Self {
        let mut counts = Self::default();
        iter.into_iter().for_each(|w| counts.add(w));
        counts
    }
}

/// An account: who pays, how much, and whether they left.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountRecord {
    pub account_id: String,
    /// Annual recurring revenue, in the workspace's currency.
    pub arr: f64,
    /// Seconds since the Unix epoch; `None` while active.
    pub churned_at: Option<i64>,
    pub attributes: Attributes,
}

/// What happened to an account after it responded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutcomeKind {
    Churn,
    Contraction,
    Expansion,
}

impl OutcomeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Churn => "churn",
            OutcomeKind::Contraction => "contraction",
            OutcomeKind::Expansion => "expansion",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "churn" => Some(OutcomeKind::Churn),
            "contraction" => Some(OutcomeKind::Contraction),
            "expansion" => Some(OutcomeKind::Expansion),
            _ => None,
        }
    }
}

/// A churn / contraction / expansion event.
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeRecord {
    pub account_id: String,
    pub kind: OutcomeKind,
    /// Seconds since the Unix epoch.
    pub occurred_at: i64,
    /// ARR lost (churn, contraction) or gained (expansion), ≥ 0. For churn, `None` means the
    /// account's whole ARR.
    pub arr_change: Option<f64>,
}

/// Which responses to erase from a workspace (a data-subject request, a retention policy).
#[derive(Debug, Clone, PartialEq)]
pub enum Erasure {
    /// These responses, by the caller's ids (ids not stored are skipped).
    Responses(Vec<String>),
    /// Every response of an account, and the account itself with its outcomes.
    Account(String),
    /// Every response submitted before this time (seconds since the epoch).
    SubmittedBefore(i64),
}

/// What an erasure removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErasureSummary {
    pub responses: u64,
    pub segments: u64,
    /// Theme quotes (in every stored model version) that quoted an erased segment.
    pub quotes: u64,
    pub accounts: u64,
    pub outcomes: u64,
    /// The UTC days on which the erased responses were submitted (each day's start, seconds since
    /// the epoch; ascending, distinct), so that copies outside the store (archived reports) that
    /// cover one of them can go too, and only those.
    pub submitted_days: Vec<i64>,
}

impl ErasureSummary {
    /// Adds days (each day's start) to [`ErasureSummary::submitted_days`].
    pub fn add_submitted_days(&mut self, days: impl IntoIterator<Item = i64>) {
        self.submitted_days.extend(days);
        self.submitted_days.sort_unstable();
        self.submitted_days.dedup();
    }
}

/// SQL for the start of the UTC day holding `submitted_at` (floor division: right before 1970 too).
const SUBMITTED_DAY_SQL: &str = "submitted_at - ((submitted_at % 86400) + 86400) % 86400";

impl std::fmt::Display for ErasureSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "erased {} responses ({} segments), {} theme quotes, {} accounts, {} outcomes",
            self.responses, self.segments, self.quotes, self.accounts, self.outcomes
        )
    }
}

/// Identifies the active theme model as it is now: its version, and a revision that every change
/// made to it without a new version (rename, pin, merge, an erased quote) increments. A cache of
/// the model is current while its stamp is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThemeStamp {
    pub version: i64,
    pub revision: i64,
}

/// An API token as stored: never the secret, only what it may do (see [`crate::auth`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiToken {
    pub workspace: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    /// Seconds since the Unix epoch.
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    /// From then on the token is refused; `None`: until revoked.
    pub expires_at: Option<i64>,
    /// The last call that presented it (to the minute: written at most once a minute).
    pub last_used_at: Option<i64>,
}

/// Storage for one or many workspaces. Implementations are synchronous; async callers run them on
/// a blocking thread.
pub trait Store: Send + Sync {
    /// The stored content hash of a response, if any: lets ingest skip the encoder for a resubmit.
    fn response_hash(&self, workspace: &str, response_id: &str) -> StoreResult<Option<String>>;

    /// Inserts or replaces a response and its segments in one transaction. When the stored hash
    /// equals `content_hash`, writes nothing and returns `Unchanged`.
    fn upsert_response(
        &self,
        workspace: &str,
        record: &ResponseRecord,
        content_hash: &str,
        truncated: bool,
        segments: &[SegmentRecord],
    ) -> StoreResult<WriteOutcome>;

    fn get_response(&self, workspace: &str, response_id: &str) -> StoreResult<Option<StoredResponse>>;

    fn count_responses(&self, workspace: &str) -> StoreResult<u64>;

    fn count_segments(&self, workspace: &str) -> StoreResult<u64>;

    /// What the impact report reads: responses submitted since `since` (seconds since the epoch),
    /// their segments' themes under the active model (segments without one are left out) and
    /// sentiment, every account and outcome, and the active model's themes.
    fn impact_input(&self, workspace: &str, since: i64) -> StoreResult<ImpactInput>;

    /// Stored verbatims of exactly one segment, with their survey and score: free sentiment labels
    /// where the score is unambiguous (see [`crate::sentiment::label_from_score`]).
    fn single_segment_verbatims(&self, workspace: &str) -> StoreResult<Vec<ScoredText>>;

    /// Inserts or updates accounts, all or none (each as [`account_write`] says).
    fn upsert_accounts(&self, workspace: &str, accounts: &[AccountRecord]) -> StoreResult<Vec<WriteOutcome>>;

    /// What [`Store::upsert_accounts`] would return for `accounts`, writing nothing (a dry run):
    /// a repeated account id is compared with its earlier row, as the upsert compares it.
    fn check_accounts(&self, workspace: &str, accounts: &[AccountRecord]) -> StoreResult<Vec<WriteOutcome>> {
        // Each account as the batch's earlier rows would have left it.
        let mut earlier: std::collections::HashMap<&str, AccountRecord> = Default::default();
        let mut outcomes = Vec::with_capacity(accounts.len());
        for a in accounts {
            let stored = match earlier.remove(a.account_id.as_str()) {
                Some(row) => Some(row),
                None => self.get_account(workspace, &a.account_id)?,
            };
            outcomes.push(account_write(stored.as_ref(), a));
            let churned_at = a.churned_at.or(stored.and_then(|s| s.churned_at));
            earlier.insert(&a.account_id, AccountRecord { churned_at, ..a.clone() });
        }
        Ok(outcomes)
    }

    fn get_account(&self, workspace: &str, account_id: &str) -> StoreResult<Option<AccountRecord>>;

    /// Records outcomes, all or none (each as [`outcome_write`] says): an event (account, kind,
    /// time) is recorded once. A churn also marks the account churned (at the earliest churn time).
    fn record_outcomes(&self, workspace: &str, outcomes: &[OutcomeRecord]) -> StoreResult<Vec<WriteOutcome>>;

    /// What [`Store::record_outcomes`] would return for `outcomes`, writing nothing (a dry run):
    /// a repeated event in the batch is compared with its earlier row, as the upsert compares it.
    fn check_outcomes(&self, workspace: &str, outcomes: &[OutcomeRecord]) -> StoreResult<Vec<WriteOutcome>> {
        // Each event as the batch's earlier rows would have left it; the stored events are read
        // one by one, so a small batch costs little on a large workspace.
        let mut earlier: std::collections::HashMap<(&str, OutcomeKind, i64), &OutcomeRecord> = Default::default();
        let mut checked = Vec::with_capacity(outcomes.len());
        for o in outcomes {
            checked.push(match earlier.insert((&o.account_id, o.kind, o.occurred_at), o) {
                Some(row) => outcome_write(Some(row), o),
                None => outcome_write(self.get_outcome(workspace, &o.account_id, o.kind, o.occurred_at)?.as_ref(), o),
            });
        }
        Ok(checked)
    }

    /// The recorded event of `account_id`, `kind` and `occurred_at`, if there is one.
    fn get_outcome(&self, workspace: &str, account_id: &str, kind: OutcomeKind, occurred_at: i64) -> StoreResult<Option<OutcomeRecord>>;

    fn list_outcomes(&self, workspace: &str) -> StoreResult<Vec<OutcomeRecord>>;

    /// Segments of responses submitted at or after `since` (all when `None`), grouped by response
    /// in response-id order: the same responses read back in the same order however and whenever
    /// they arrived, so reclustering the same data gives the same themes.
    fn theme_segments(&self, workspace: &str, since: Option<i64>) -> StoreResult<Vec<ThemeSegment>>;

    /// The active model, merged-away themes and the next unused theme id.
    fn theme_history(&self, workspace: &str) -> StoreResult<History>;

    /// Which active theme model, as it is now: cheap, for caches.
    fn active_theme_stamp(&self, workspace: &str) -> StoreResult<Option<ThemeStamp>>;

    fn active_theme_model(&self, workspace: &str) -> StoreResult<Option<ThemeModel>>;

    /// Stores a new model version, writes its segment assignments and makes it active, all in one
    /// transaction: a failure at any point leaves the previous model active and untouched.
    fn activate_theme_model(&self, workspace: &str, new: &NewThemeModel) -> StoreResult<i64>;

    /// Sets (or with `None` clears) a theme's human name in the active model.
    fn rename_theme(&self, workspace: &str, theme_id: i64, name: Option<&str>) -> StoreResult<Option<Theme>>;

    /// Pins or unpins a theme of the active model.
    fn pin_theme(&self, workspace: &str, theme_id: i64, pinned: bool) -> StoreResult<Option<Theme>>;

    /// Merges `source` into `target` in the active model: segments move, the target's centroid and
    /// size are updated, and the source is remembered so later reclusters fold it in again.
    /// `None` when either theme is not in the active model.
    fn merge_themes(&self, workspace: &str, source: i64, target: i64) -> StoreResult<Option<Theme>>;

    /// Every segment with its theme under the active model, in submission order.
    fn theme_assignments(&self, workspace: &str) -> StoreResult<Vec<AssignmentRow>>;

    /// A page of one theme's segments under the active model (see [`ThemeSegmentQuery`]).
    fn theme_segment_page(&self, workspace: &str, query: &ThemeSegmentQuery) -> StoreResult<ThemeSegmentPage>;

    /// Deletes responses with their segments, embeddings and sentiment, and every theme quote
    /// (in every stored model version) that quotes one of their segments, in one transaction.
    /// Aggregates stay: theme sizes, keywords and centroids, which no person can be read from.
    fn erase(&self, workspace: &str, what: &Erasure) -> StoreResult<ErasureSummary>;

    /// The workspaces that hold responses, sorted.
    fn workspaces(&self) -> StoreResult<Vec<String>>;

    /// Takes `workspace`'s scheduled recluster at `now` (seconds) for the caller: true, with the
    /// claim recorded, when its active model was built before `due_before` (or it has none) and
    /// its last claim is from before `retry_before` (or it has none). Checked and recorded in one
    /// transaction, so of the replicas that ask at once, one is told true.
    fn claim_recluster(&self, workspace: &str, now: i64, due_before: i64, retry_before: i64) -> StoreResult<bool>;

    /// Stores a new API token by the hash of its secret; `None` (nothing written) when an active
    /// token of the workspace already has this name.
    fn insert_api_token(&self, workspace: &str, name: &str, scopes: &[Scope], token_hash: &str, expires_at: Option<i64>) -> StoreResult<Option<ApiToken>>;

    /// The token not revoked (expired or not) whose secret hashes to `token_hash`.
    fn api_token_by_hash(&self, token_hash: &str) -> StoreResult<Option<ApiToken>>;

    /// Whether a token was ever issued in any workspace (servers in `auto` mode then ask for one,
    /// also once every token is revoked or expired: that must not open the server again).
    fn has_api_tokens(&self) -> StoreResult<bool>;

    /// Records that the token whose secret hashes to `token_hash` was used at `at`.
    fn touch_api_token(&self, token_hash: &str, at: i64) -> StoreResult<()>;

    /// The workspace's tokens, active and revoked, oldest first.
    fn list_api_tokens(&self, workspace: &str) -> StoreResult<Vec<ApiToken>>;

    /// Revokes the workspace's active token of this name; false when there is none.
    fn revoke_api_token(&self, workspace: &str, name: &str) -> StoreResult<bool>;
}

/// A retention policy's run: in every workspace, erases the responses submitted before `cutoff`
/// (seconds since the epoch). Returns the workspaces where something went, with what went.
pub fn erase_submitted_before(store: &dyn Store, cutoff: i64) -> StoreResult<Vec<(String, ErasureSummary)>> {
    let mut erased = Vec::new();
    for workspace in store.workspaces()? {
        let summary = store.erase(&workspace, &Erasure::SubmittedBefore(cutoff))?;
        if summary != ErasureSummary::default() {
            erased.push((workspace, summary));
        }
    }
    Ok(erased)
}

// Row helpers shared by the implementations: both store the same columns the same way.

/// [`Store::claim_recluster`]'s rule, on the active model's build time and the last claim's.
fn recluster_due(model_at: Option<i64>, claimed_at: Option<i64>, due_before: i64, retry_before: i64) -> bool {
    model_at.is_none_or(|t| t < due_before) && claimed_at.is_none_or(|t| t < retry_before)
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("plain data serialises")
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// What upserting account `new` over the `stored` one does. The row is left alone when its ARR and
/// attributes are the same and `new` brings no other churn date: an account written without one
/// keeps the stored date (the upserts' `COALESCE`), so a CRM export cannot un-churn an account.
pub fn account_write(stored: Option<&AccountRecord>, new: &AccountRecord) -> WriteOutcome {
    match stored {
        None => WriteOutcome::Inserted,
        Some(s) if s.arr == new.arr && s.attributes == new.attributes && new.churned_at.is_none_or(|t| s.churned_at == Some(t)) => {
            WriteOutcome::Unchanged
        }
        Some(_) => WriteOutcome::Updated,
    }
}

/// What recording `new` does to the event stored under its account, kind and time, if any: the
/// rule the stores' upserts apply in SQL (an event is rewritten only when its ARR change differs).
pub fn outcome_write(stored: Option<&OutcomeRecord>, new: &OutcomeRecord) -> WriteOutcome {
    match stored {
        None => WriteOutcome::Inserted,
        Some(s) if s.arr_change == new.arr_change => WriteOutcome::Unchanged,
        Some(_) => WriteOutcome::Updated,
    }
}

fn attributes_json(a: &Attributes) -> String {
    serde_json::to_string(a).expect("a string map serialises")
}

fn parse_attributes(s: &str) -> StoreResult<Attributes> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("attributes {s:?}: {e}")))
}

fn parse_survey(s: &str) -> StoreResult<SurveyKind> {
    s.parse().map_err(|_| StoreError::Corrupt(format!("survey {s:?}")))
}

/// A theme's stored quotes without those in `erased`, when any was: the new column and how many
/// went.
fn scrub_quotes(quotes: &str, erased: &std::collections::HashSet<String>) -> StoreResult<Option<(String, u64)>> {
    let mut kept: Vec<String> = serde_json::from_str(quotes).map_err(|e| StoreError::Corrupt(format!("theme quotes: {e}")))?;
    let before = kept.len();
    kept.retain(|q| !erased.contains(q));
    Ok((kept.len() < before).then(|| (json(&kept), (before - kept.len()) as u64)))
}

fn new_api_token(workspace: &str, name: &str, scopes: &[Scope], created_at: i64, expires_at: Option<i64>) -> ApiToken {
    ApiToken { workspace: workspace.into(), name: name.into(), scopes: scopes.to_vec(), created_at, revoked_at: None, expires_at, last_used_at: None }
}

fn scopes_column(scopes: &[Scope]) -> String {
    scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
}

fn parse_scopes(s: &str) -> StoreResult<Vec<Scope>> {
    s.split(',').map(|p| Scope::parse(p).ok_or_else(|| StoreError::Corrupt(format!("token scope {p:?}")))).collect()
}

fn parse_outcome_kind(s: &str) -> StoreResult<OutcomeKind> {
    OutcomeKind::parse(s).ok_or_else(|| StoreError::Corrupt(format!("outcome kind {s:?}")))
}

/// A segment's sentiment from its three stored probabilities (none stored: it ran without one).
fn stored_sentiment(negative: Option<f32>, neutral: Option<f32>, positive: Option<f32>) -> Option<Sentiment> {
    match (negative, neutral, positive) {
        (Some(a), Some(b), Some(c)) => Some(Sentiment::new([a, b, c])),
        _ => None,
    }
}

/// A model's creation time, stored as seconds since the epoch, as RFC 3339.
fn rfc3339(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0).map(|t| t.to_rfc3339()).unwrap_or_default()
}

/// A theme from its stored columns (keywords and quotes as JSON arrays, the centroid as a blob).
#[allow(clippy::too_many_arguments)]
fn stored_theme(id: i64, label: String, name: Option<String>, keywords: &str, quotes: &str, centroid: &[u8], size: i64, pinned: bool) -> StoreResult<Theme> {
    let parse = |s: &str| serde_json::from_str::<Vec<String>>(s).map_err(|e| StoreError::Corrupt(format!("theme {id}: {e}")));
    Ok(Theme { id, label, name, keywords: parse(keywords)?, quotes: parse(quotes)?, centroid: blob_to_embedding(centroid)?, size: size as u64, pinned })
}

/// The centroid of `from` merged into `into`: the size-weighted mean direction of the two.
fn merged_centroid(into: &Theme, from: &Theme) -> Vec<f32> {
    crate::themes::cluster::normalized(into.centroid.iter().zip(&from.centroid).map(|(a, b)| a * into.size as f32 + b * from.size as f32).collect())
}

/// Embeddings are stored as little-endian f32 bytes (384 × 4 = 1,536 bytes a segment).
pub fn embedding_to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn blob_to_embedding(b: &[u8]) -> StoreResult<Vec<f32>> {
    if !b.len().is_multiple_of(4) {
        return Err(StoreError::Corrupt(format!("embedding blob of {} bytes", b.len())));
    }
    Ok(b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}
