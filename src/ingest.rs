//! Responses in: validate a submitted survey response, analyse its verbatim (segments, embeddings,
//! themes), and store it idempotently. Shared by the gRPC `SubmitResponse(s)` handlers and the CSV
//! importer.
//!
//! Idempotency: a response is keyed by the caller's `response_id` within a workspace. Its content
//! (everything but the id) is hashed; resubmitting the same content writes nothing and returns the
//! stored result without running the encoder; different content replaces the stored row and its
//! segments in one transaction and says "updated". A response is never stored twice. The bulk
//! paths write many responses at once ([`OrderedWrites`]), but two of one id in the order they came.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::analyze::{analyze_unchecked, AnalyzedSegment};
use crate::error::{Error, Result};
use crate::infer::{Infer, InferError};
use crate::sentiment::{self, Sentiment};
use crate::store::{Attributes, ResponseRecord, SegmentRecord, Store, StoredResponse, WriteOutcome, ThemeStamp};
use crate::survey::{Category, Scale, Score, SurveyKind};
use crate::themes::{Assignment, ThemeModel, NO_CONTENT, OTHER_LANGUAGE};

/// Longest accepted `response_id` / `account_id`.
pub const MAX_ID_CHARS: usize = 256;
/// Most attributes on one response or account, and the longest key and value.
pub const MAX_ATTRIBUTES: usize = 64;
pub const MAX_ATTRIBUTE_KEY_CHARS: usize = 64;
pub const MAX_ATTRIBUTE_VALUE_CHARS: usize = 1024;

/// A response as a caller submits it, before validation.
#[derive(Debug, Clone, Default)]
pub struct Submission {
    pub response_id: String,
    pub account_id: String,
    /// "NPS", "CSAT" or "CES" (any case).
    pub survey: String,
    pub score: f64,
    /// `(scale_min, scale_max)`; `None` for the survey's default.
    pub scale: Option<(i32, i32)>,
    pub verbatim: String,
    /// RFC 3339, "YYYY-MM-DD HH:MM:SS" (UTC), "YYYY-MM-DD" or Unix seconds; `None` for now.
    pub submitted_at: Option<String>,
    pub attributes: Attributes,
}

impl Submission {
    /// The submission time the caller sent, if any (otherwise Verbatim uses the receipt time).
    pub fn time(&self) -> Option<&str> {
        self.submitted_at.as_deref().filter(|t| !t.trim().is_empty())
    }
}

/// What ingesting one response produced.
#[derive(Debug, Clone)]
pub struct IngestResult {
    pub write: WriteOutcome,
    pub stored: StoredResponse,
    pub category: Category,
    pub needs_follow_up: bool,
    /// The workspace's active theme model when the result was made: names the segments' themes.
    pub themes: Option<Arc<ThemeModel>>,
}

/// Checks every field; the error names the field and the allowed values.
pub fn validate(s: &Submission) -> Result<ResponseRecord> {
    let response_id = required_id("response_id", &s.response_id)?;
    let account_id = required_id("account_id", &s.account_id)?;
    if s.survey.trim().is_empty() {
        return Err(Error::invalid("survey", "required; one of NPS, CSAT, CES"));
    }
    let survey: SurveyKind = s.survey.parse()?;
    let scale = s.scale.map(|(min, max)| Scale { min, max });
    let score = Score::new(survey, s.score, scale)?;
    let submitted_at = match s.time() {
        Some(t) => parse_timestamp(t).map_err(|m| Error::invalid("submitted_at", m))?,
        None => chrono::Utc::now().timestamp(),
    };
    validate_attributes("attributes", &s.attributes)?;
    Ok(ResponseRecord {
        response_id,
        account_id,
        survey,
        scale: score.scale,
        score: score.value,
        verbatim: s.verbatim.clone(),
        submitted_at,
        attributes: s.attributes.clone(),
    })
}

fn required_id(field: &str, value: &str) -> Result<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(Error::invalid(field, "required (a non-empty id)"));
    }
    if v.chars().count() > MAX_ID_CHARS {
        return Err(Error::invalid(field, format!("at most {MAX_ID_CHARS} characters")));
    }
    Ok(v.to_string())
}

/// Checks attribute counts and sizes; `field` names the map in errors.
pub fn validate_attributes(field: &str, attributes: &Attributes) -> Result<()> {
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(Error::invalid(field, format!("{} attributes; at most {MAX_ATTRIBUTES}", attributes.len())));
    }
    for (k, v) in attributes {
        if k.trim().is_empty() || k.chars().count() > MAX_ATTRIBUTE_KEY_CHARS {
            return Err(Error::invalid(field, format!("attribute name {k:?} must be 1–{MAX_ATTRIBUTE_KEY_CHARS} characters")));
        }
        if v.chars().count() > MAX_ATTRIBUTE_VALUE_CHARS {
            return Err(Error::invalid(format!("{field}.{k}"), format!("at most {MAX_ATTRIBUTE_VALUE_CHARS} characters")));
        }
    }
    Ok(())
}

/// Parses the timestamp formats survey exports use, as UTC seconds.
pub fn parse_timestamp(s: &str) -> std::result::Result<i64, String> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp());
    }
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Ok(t.and_utc().timestamp());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc().timestamp());
    }
    if !s.is_empty() && s.len() <= 12 && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map_err(|e| format!("{e}"));
    }
    Err(format!(
        "cannot parse {s:?} as a time; use RFC 3339 (2024-05-01T12:00:00Z), \"2024-05-01 12:00:00\" (UTC), \"2024-05-01\" or Unix seconds"
    ))
}

/// sha256 over every field but the id, in a fixed order. `time_given` is whether the caller sent
/// `submitted_at`: a time Verbatim filled in (the receipt time) is left out, so resending the same
/// response later is `Unchanged`, not an update.
pub fn content_hash(r: &ResponseRecord, time_given: bool) -> String {
    let canonical = serde_json::json!([
        r.account_id,
        r.survey.as_str(),
        r.scale.min,
        r.scale.max,
        r.score,
        r.verbatim,
        time_given.then_some(r.submitted_at),
        r.attributes
    ]);
    format!("{:x}", Sha256::digest(canonical.to_string().as_bytes()))
}

/// Whether a CX team should follow up: an unhappy score (detractor, bottom-two-box CSAT, high
/// effort) whose verbatim is not positive overall.
pub fn needs_follow_up(category: Category, segments: &[SegmentRecord]) -> bool {
    if !category.is_unhappy() {
        return false;
    }
    overall_sentiment(segments).is_none_or(|o| o.sentiment.score() < 0.25)
}

/// The verbatim's sentiment from its segments' (see [`sentiment::aggregate`]); `None` without
/// scored segments.
pub fn overall_sentiment(segments: &[SegmentRecord]) -> Option<sentiment::Overall> {
    let scored: Vec<(Sentiment, usize)> = segments.iter().filter_map(|s| s.sentiment.map(|x| (x, s.tokens as usize))).collect();
    sentiment::aggregate(&scored)
}

/// The ingest path, shared by every front end.
#[derive(Clone)]
pub struct Ingest {
    pub infer: Infer,
    pub store: Arc<dyn Store>,
    pub themes: ThemeCache,
}

/// Each workspace's active theme model, reloaded when its [`ThemeStamp`] changes: a recluster
/// (a new version) or a curation or erasure (a new revision), in this process or another replica.
/// Every submit asks the store for the stamp.
#[derive(Clone, Default)]
pub struct ThemeCache(Arc<std::sync::Mutex<std::collections::HashMap<String, CachedModel>>>);

/// A model and the stamp it was current at.
type CachedModel = (ThemeStamp, Arc<ThemeModel>);

impl ThemeCache {
    fn get(&self, workspace: &str, stamp: ThemeStamp) -> Option<Arc<ThemeModel>> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(workspace).filter(|(s, _)| *s == stamp).map(|(_, m)| Arc::clone(m))
    }

    fn put(&self, workspace: &str, stamp: ThemeStamp, model: Arc<ThemeModel>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(workspace.to_string(), (stamp, model));
    }
}

/// Gives each segment of one response its theme under `model` (see [`ThemeModel::assign`]),
/// using the same in-context vectors as the recluster; `languages[i]` is segment i's language as
/// the analysis judged it ([`crate::analyze::AnalyzedSegment::language`]).
pub fn assign_themes(model: &ThemeModel, segments: &mut [SegmentRecord], languages: &[Option<&'static str>]) {
    if segments.is_empty() {
        return;
    }
    let vectors: Vec<&[f32]> = segments.iter().map(|s| s.embedding.as_slice()).collect();
    let Ok(x) = crate::themes::recluster::stack(&vectors) else { return };
    let x = crate::themes::recluster::in_context(x.view(), &vec![0; segments.len()]);
    for ((s, row), &language) in segments.iter_mut().zip(x.outer_iter()).zip(languages) {
        let (id, similarity) = match model.assign(&s.text, language, &row.to_vec()) {
            Assignment::Theme { id, similarity } => (Some(id), Some(similarity)),
            Assignment::NoContent => (Some(NO_CONTENT), None),
            Assignment::OtherLanguage => (Some(OTHER_LANGUAGE), None),
            Assignment::Emerging { similarity } => (None, Some(similarity)),
        };
        s.theme_id = id;
        s.theme_similarity = similarity;
        s.theme_version = Some(model.version);
    }
}

impl Ingest {
    pub fn new(infer: Infer, store: Arc<dyn Store>) -> Self {
        Self { infer, store, themes: ThemeCache::default() }
    }

    /// The workspace's active theme model, if any (cached by version).
    pub async fn theme_model(&self, workspace: &str) -> Result<Option<Arc<ThemeModel>>> {
        let ws = workspace.to_string();
        let Some(stamp) = self.blocking(move |store| store.active_theme_stamp(&ws)).await? else {
            return Ok(None);
        };
        if let Some(model) = self.themes.get(workspace, stamp) {
            return Ok(Some(model));
        }
        let ws = workspace.to_string();
        let Some(model) = self.blocking(move |store| store.active_theme_model(&ws)).await? else {
            return Ok(None);
        };
        let model = Arc::new(model);
        // Read after the stamp: at worst newer than it, which costs one more load, never a stale hit.
        self.themes.put(workspace, stamp, Arc::clone(&model));
        Ok(Some(model))
    }

    /// Validates, analyses and stores one response.
    pub async fn submit(&self, workspace: &str, submission: &Submission) -> Result<IngestResult> {
        let (record, hash, stored_hash) = check(&self.store, workspace, submission).await?;
        let themes = self.theme_model(workspace).await?;
        if stored_hash.as_deref() == Some(hash.as_str()) {
            return self.result_with(workspace, &record.response_id, WriteOutcome::Unchanged, themes).await;
        }
        let analysis = analyze_unchecked(&self.infer, std::slice::from_ref(&record.verbatim)).await?.remove(0);
        let truncated = analysis.truncated;
        let languages: Vec<Option<&'static str>> = analysis.segments.iter().map(|s| s.language).collect();
        let mut segments: Vec<SegmentRecord> = analysis.segments.into_iter().enumerate().map(|(i, s)| segment_record(i, s)).collect();
        if let Some(model) = &themes {
            assign_themes(model, &mut segments, &languages);
        }
        let write = self
            .blocking({
                let ws = workspace.to_string();
                let mut record = record.clone();
                // Keep what Verbatim read, not an unbounded blob: the hash still covers the original.
                if truncated {
                    record.verbatim = truncate_chars(&record.verbatim, crate::text::MAX_TEXT_BYTES);
                }
                move |store| store.upsert_response(&ws, &record, &hash, truncated, &segments)
            })
            .await?;
        self.result_with(workspace, &record.response_id, write, themes).await
    }

    /// Like [`Ingest::submit`], but waits and retries while the encoder queue is full (for bulk
    /// paths, where patience beats refusal).
    pub async fn submit_patiently(&self, workspace: &str, submission: &Submission) -> Result<IngestResult> {
        let mut delay = std::time::Duration::from_millis(5);
        loop {
            match self.submit(workspace, submission).await {
                Err(Error::Infer(InferError::Overloaded { .. })) => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(std::time::Duration::from_millis(500));
                }
                other => return other,
            }
        }
    }

    /// The stored response `response_id`, as an ingest result (`NotFound` when absent).
    pub async fn stored_result(&self, workspace: &str, response_id: &str, write: WriteOutcome) -> Result<IngestResult> {
        let themes = self.theme_model(workspace).await?;
        self.result_with(workspace, response_id, write, themes).await
    }

    async fn result_with(&self, workspace: &str, response_id: &str, write: WriteOutcome, themes: Option<Arc<ThemeModel>>) -> Result<IngestResult> {
        let stored = self
            .blocking({
                let (ws, id) = (workspace.to_string(), response_id.to_string());
                move |store| store.get_response(&ws, &id)
            })
            .await?
            .ok_or_else(|| Error::NotFound(format!("response_id {response_id:?} is not stored in workspace {workspace:?}")))?;
        let category = Score { kind: stored.record.survey, scale: stored.record.scale, value: stored.record.score }.category();
        let needs_follow_up = needs_follow_up(category, &stored.segments);
        Ok(IngestResult { write, stored, category, needs_follow_up, themes })
    }

    /// Runs a store call on a blocking thread (see [`run_blocking`]).
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> crate::store::StoreResult<T> + Send + 'static,
    ) -> Result<T> {
        run_blocking(&self.store, f).await
    }
}

/// What [`Ingest::submit`] compares before it reads the text: the validated response, its
/// content hash and the hash stored for its id. All a [`DryRun`] reads: it needs the store, not
/// the model, and writes nothing.
async fn check(store: &Arc<dyn Store>, workspace: &str, submission: &Submission) -> Result<(ResponseRecord, String, Option<String>)> {
    let record = validate(submission)?;
    let hash = content_hash(&record, submission.time().is_some());
    let stored_hash = run_blocking(store, {
        let (ws, id) = (workspace.to_string(), record.response_id.clone());
        move |store| store.response_hash(&ws, &id)
    })
    .await?;
    Ok((record, hash, stored_hash))
}

/// A dry run of a batch of submissions, one by one: what each would write, writing nothing. A
/// response id repeated in the batch is compared with its earlier submission, as the later one is
/// the one stored.
#[derive(Default)]
pub struct DryRun {
    /// Content hashes by response id, of the batch so far.
    hashes: HashMap<String, String>,
}

impl DryRun {
    pub async fn check(&mut self, store: &Arc<dyn Store>, workspace: &str, submission: &Submission) -> Result<WriteOutcome> {
        let (record, hash, stored) = check(store, workspace, submission).await?;
        Ok(match self.hashes.insert(record.response_id, hash.clone()).or(stored) {
            None => WriteOutcome::Inserted,
            Some(before) if before == hash => WriteOutcome::Unchanged,
            Some(_) => WriteOutcome::Updated,
        })
    }
}

/// Writes run many at once, as the bulk paths (the CSV import, the gRPC stream) run them so that
/// their texts share encoder batches, except that a write of a response id waits for the one of
/// that id before it: the later of two submissions is the one stored, as one at a time.
pub struct OrderedWrites<T> {
    tasks: tokio::task::JoinSet<(String, T)>,
    /// The response ids being written (trimmed, as [`validate`] reads them).
    writing: HashSet<String>,
    at_once: usize,
}

impl<T: Send + 'static> OrderedWrites<T> {
    pub fn new(at_once: usize) -> Self {
        Self { tasks: Default::default(), writing: HashSet::new(), at_once: at_once.max(1) }
    }

    /// Makes way for a write of `response_id`: while one of that id, or `at_once` writes, are
    /// running, waits for the next to finish and returns its output; `None` once it may start.
    pub async fn make_way(&mut self, response_id: &str) -> Option<Result<T>> {
        if !self.writing.contains(response_id.trim()) && self.tasks.len() < self.at_once {
            return None;
        }
        self.next().await
    }

    /// Starts `write`, the write of `response_id` (after [`OrderedWrites::make_way`]).
    pub fn spawn(&mut self, response_id: String, write: impl Future<Output = T> + Send + 'static) {
        let id = response_id.trim().to_string();
        self.writing.insert(id.clone());
        self.tasks.spawn(async move { (id, write.await) });
    }

    /// The output of the next write to finish; `None` when none is running.
    pub async fn next(&mut self) -> Option<Result<T>> {
        let done = self.tasks.join_next().await?;
        Some(match done {
            Ok((id, output)) => {
                self.writing.remove(&id);
                Ok(output)
            }
            Err(e) => Err(Error::Internal(format!("a write failed: {e}"))),
        })
    }

    /// How many writes are running.
    pub fn running(&self) -> usize {
        self.tasks.len()
    }
}

/// Runs a store call on a blocking thread: SQLite must not stall the async runtime.
pub async fn run_blocking<T: Send + 'static>(
    store: &Arc<dyn Store>,
    f: impl FnOnce(&dyn Store) -> crate::store::StoreResult<T> + Send + 'static,
) -> Result<T> {
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .map_err(|e| Error::Internal(format!("store task failed: {e}")))?
        .map_err(Error::from)
}

fn segment_record(index: usize, s: AnalyzedSegment) -> SegmentRecord {
    SegmentRecord {
        index: index as u32,
        text: s.text,
        start: s.start as u32,
        end: s.end as u32,
        tokens: s.tokens as u32,
        embedding: s.embedding,
        sentiment: s.sentiment,
        theme_id: None,
        theme_similarity: None,
        theme_version: None,
    }
}

fn truncate_chars(s: &str, max_bytes: usize) -> String {
    let mut end = max_bytes.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_writes_hold_a_repeated_id_until_its_earlier_write_is_done() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        runtime.block_on(async {
            let mut writes = OrderedWrites::new(8);
            let (release, released) = tokio::sync::oneshot::channel::<()>();
            writes.spawn("r1".into(), async move {
                released.await.unwrap();
                "r1, first"
            });
            writes.spawn("r2".into(), async { "r2" });
            assert!(writes.make_way("r3").await.is_none(), "another id starts at once");
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                release.send(()).unwrap();
            });
            // A repeat of r1 (padded as a CSV cell may be) waits for r1's write, passing r2's.
            let mut before = Vec::new();
            while let Some(done) = writes.make_way(" r1 ").await {
                before.push(done.unwrap());
            }
            assert_eq!(before, ["r2", "r1, first"]);
            writes.spawn("r1".into(), async { "r1, second" });
            assert_eq!(writes.next().await.unwrap().unwrap(), "r1, second");
            assert!(writes.next().await.is_none());

            // At most `at_once` run: a new id waits for a running write at the limit.
            let mut one = OrderedWrites::new(1);
            one.spawn("a".into(), async { "a" });
            assert_eq!(one.make_way("b").await.unwrap().unwrap(), "a");
            assert!(one.make_way("b").await.is_none());
        });
    }

    fn submission() -> Submission {
        Submission {
            response_id: "r1".into(),
            account_id: "acme".into(),
            survey: "NPS".into(),
            score: 3.0,
            verbatim: "Slow support.".into(),
            submitted_at: Some("2024-05-01T12:00:00Z".into()),
            ..Default::default()
        }
    }

    fn field_of(e: Error) -> String {
        match e {
            Error::InvalidArgument { field, .. } => field,
            other => panic!("not an invalid-argument error: {other}"),
        }
    }

    #[test]
    fn each_bad_field_is_named() {
        let bad = |f: &dyn Fn(&mut Submission)| {
            let mut s = submission();
            f(&mut s);
            field_of(validate(&s).unwrap_err())
        };
        assert_eq!(bad(&|s| s.score = 11.0), "score");
        assert_eq!(bad(&|s| s.survey = "XYZ".into()), "survey");
        assert_eq!(bad(&|s| s.survey = "".into()), "survey");
        assert_eq!(bad(&|s| s.response_id = " ".into()), "response_id");
        assert_eq!(bad(&|s| s.account_id = "".into()), "account_id");
        assert_eq!(bad(&|s| { s.survey = "CSAT".into(); s.scale = Some((5, 1)) }), "scale_min");
        assert_eq!(bad(&|s| s.submitted_at = Some("last tuesday".into())), "submitted_at");
        assert_eq!(bad(&|s| { s.attributes.insert("".into(), "x".into()); }), "attributes");
    }

    #[test]
    fn timestamps_in_export_formats() {
        assert_eq!(parse_timestamp("2024-05-01T12:00:00Z"), Ok(1_714_564_800));
        assert_eq!(parse_timestamp("2024-05-01T14:00:00+02:00"), Ok(1_714_564_800));
        assert_eq!(parse_timestamp("2024-05-01 12:00:00"), Ok(1_714_564_800));
        assert_eq!(parse_timestamp("2024-05-01"), Ok(1_714_521_600));
        assert_eq!(parse_timestamp("1714564800"), Ok(1_714_564_800));
        assert!(parse_timestamp("2024-13-01").unwrap_err().contains("RFC 3339"));
    }

    #[test]
    fn hash_covers_every_field_but_the_id_and_a_filled_in_time() {
        let a = validate(&submission()).unwrap();
        let mut b = a.clone();
        b.response_id = "other".into();
        assert_eq!(content_hash(&a, true), content_hash(&b, true));
        b.submitted_at += 1;
        assert_ne!(content_hash(&a, true), content_hash(&b, true));
        assert_eq!(content_hash(&a, false), content_hash(&b, false), "a filled-in receipt time is not content");
        b.score = 4.0;
        assert_ne!(content_hash(&a, false), content_hash(&b, false));
    }

    #[test]
    fn follow_up_needs_an_unhappy_score_and_a_verbatim_that_is_not_positive() {
        let seg = |score: Option<f32>| SegmentRecord {
            index: 0,
            text: String::new(),
            start: 0,
            end: 0,
            tokens: 0,
            embedding: vec![],
            sentiment: score.map(|s| Sentiment::new([(1.0 - s) / 2.0, 0.0, (1.0 + s) / 2.0])),
            theme_id: None,
            theme_similarity: None,
            theme_version: None,
        };
        assert!(needs_follow_up(Category::Detractor, &[]));
        assert!(needs_follow_up(Category::Detractor, &[seg(Some(-0.9))]));
        assert!(!needs_follow_up(Category::Detractor, &[seg(Some(0.9))]));
        assert!(!needs_follow_up(Category::Promoter, &[seg(Some(-0.9))]));
        assert!(needs_follow_up(Category::HighEffort, &[seg(None)]));
    }
}

/// An account as a caller submits it, before validation.
#[derive(Debug, Clone, Default)]
pub struct AccountSubmission {
    pub account_id: String,
    pub arr: f64,
    pub churned_at: Option<String>,
    pub attributes: Attributes,
}

/// Checks an account; errors name the field.
pub fn validate_account(a: &AccountSubmission) -> Result<crate::store::AccountRecord> {
    let account_id = required_id("account_id", &a.account_id)?;
    if !a.arr.is_finite() || a.arr < 0.0 {
        return Err(Error::invalid("arr", format!("arr {} must be a number ≥ 0", a.arr)));
    }
    let churned_at = match &a.churned_at {
        Some(t) if !t.trim().is_empty() => Some(parse_timestamp(t).map_err(|m| Error::invalid("churned_at", m))?),
        _ => None,
    };
    validate_attributes("attributes", &a.attributes)?;
    Ok(crate::store::AccountRecord { account_id, arr: a.arr, churned_at, attributes: a.attributes.clone() })
}

/// Checks an outcome event; errors name the field.
pub fn validate_outcome(
    account_id: &str,
    kind: Option<crate::store::OutcomeKind>,
    occurred_at: &str,
    arr_change: Option<f64>,
) -> Result<crate::store::OutcomeRecord> {
    let account_id = required_id("account_id", account_id)?;
    let kind = kind.ok_or_else(|| Error::invalid("type", "required; one of CHURN, CONTRACTION, EXPANSION"))?;
    if occurred_at.trim().is_empty() {
        return Err(Error::invalid("occurred_at", "required"));
    }
    let occurred_at = parse_timestamp(occurred_at).map_err(|m| Error::invalid("occurred_at", m))?;
    if let Some(x) = arr_change {
        if !x.is_finite() || x < 0.0 {
            return Err(Error::invalid("arr_change", format!("arr_change {x} must be a number ≥ 0")));
        }
    }
    Ok(crate::store::OutcomeRecord { account_id, kind, occurred_at, arr_change })
}

/// Checks a workspace name: 1–64 characters of letters, digits, `-`, `_` and `.`.
pub fn validate_workspace(name: &str) -> Result<String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(name.to_string())
    } else {
        Err(Error::invalid("workspace", format!("{name:?} is not a workspace name (1–64 of A–Z a–z 0–9 - _ .)")))
    }
}
