//! `verbatim.v1.Verbatim`: convert the request, call the library, convert the reply.

use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use super::pb;
use super::report;
use super::AppState;
use crate::impact::document::BreakdownBy;
use crate::analyze::analyze_texts;
use crate::auth::{self, AuthMode, Need, Scope};
use crate::curation;
use crate::error::Error;
use crate::ingest::{self, overall_sentiment, AccountSubmission, IngestResult, OrderedWrites, Submission};
use crate::model::MODEL_NAME;
use crate::recluster::{ReclusterJob, DEFAULT_SEED};
use crate::sentiment::Sentiment;
use crate::store::{Erasure, OutcomeKind, WriteCounts, WriteOutcome};
use crate::themes::{Theme, ThemeModel};

/// Metadata header naming the workspace (tenant) of a call.
pub const WORKSPACE_HEADER: &str = "x-verbatim-workspace";

/// Metadata header carrying the call's API token: `Bearer vbt_…`.
pub const AUTHORIZATION_HEADER: &str = "authorization";

/// Responses of one `SubmitResponses` stream processed at once (they share encoder batches).
const STREAM_CONCURRENCY: usize = 32;

pub struct VerbatimService {
    state: AppState,
}

impl VerbatimService {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }

    /// Decides whether the call may run (its token, see [`crate::auth`]) and returns its workspace.
    async fn authorize<T>(&self, request: &Request<T>, need: Need) -> Result<String, Status> {
        let header = |name: &str| -> Result<Option<String>, Status> {
            match request.metadata().get(name) {
                None => Ok(None),
                Some(v) => Ok(Some(v.to_str().map_err(|_| Error::invalid(name, "header is not ASCII"))?.to_string())),
            }
        };
        let requested = header(WORKSPACE_HEADER)?.map(|w| ingest::validate_workspace(&w)).transpose()?;
        let presented = header(AUTHORIZATION_HEADER)?;
        let (store, mode, default) = (self.state.ingest.store.clone(), self.state.auth, self.state.default_workspace.clone());
        if mode == AuthMode::Off {
            return Ok(requested.unwrap_or(default));
        }
        let decision = tokio::task::spawn_blocking(move || {
            auth::authorize(store.as_ref(), mode, presented.as_deref(), requested.as_deref(), &default, need)
        })
        .await
        .map_err(|e| Error::Internal(format!("authorization task: {e}")))?;
        Ok(decision.map_err(Error::from)?)
    }
}

/// The reply to a stream of responses, as its items are counted.
#[derive(Default)]
struct StreamTally {
    reply: pb::SubmitResponsesReply,
    counts: WriteCounts,
}

impl StreamTally {
    /// Counts `item` as received and gives its index in the stream.
    fn receive<T>(&mut self, item: T) -> (u64, T) {
        self.reply.received += 1;
        (self.reply.received - 1, item)
    }

    /// Counts one item's result: a bad item is named and skipped; any other failure (storage,
    /// model) ends the call, as skipping would lose the item silently.
    fn add(&mut self, index: u64, id: String, result: Result<WriteOutcome, Error>) -> Result<(), Status> {
        match result {
            Ok(write) => self.counts.add(write),
            Err(e @ Error::InvalidArgument { .. }) => self.reply.rejected.push(pb::RejectedItem { index, id, reason: e.to_string() }),
            Err(e) => return Err(Status::from(e)),
        }
        Ok(())
    }

    /// The reply, with the rejections in stream order.
    fn reply(mut self) -> pb::SubmitResponsesReply {
        self.reply.rejected.sort_by_key(|r| r.index);
        self.reply.inserted = self.counts.inserted;
        self.reply.unchanged = self.counts.unchanged;
        self.reply.updated = self.counts.updated;
        self.reply
    }
}

fn submission(r: pb::SurveyResponse) -> Submission {
    // UNSPECIFIED stays empty and an unknown value stays visible, for the ingest check to name.
    let survey = match super::survey_kind(r.survey) {
        Some(kind) => kind.as_str().to_string(),
        None if r.survey == pb::SurveyType::Unspecified as i32 => String::new(),
        None => format!("survey type {}", r.survey),
    };
    Submission {
        response_id: r.response_id,
        account_id: r.account_id,
        survey,
        score: r.score,
        scale: r.scale.map(|s| (s.min, s.max)),
        verbatim: r.verbatim,
        submitted_at: Some(r.submitted_at),
        attributes: r.attributes.into_iter().collect(),
    }
}

/// Most response ids one erase call takes.
const MAX_ERASE_IDS: usize = 1000;

/// What an erase request names: exactly one of ids, account, time.
fn erasure(r: &pb::EraseResponsesRequest) -> Result<Erasure, Error> {
    let given = [!r.response_ids.is_empty(), !r.account_id.is_empty(), !r.submitted_before.is_empty()];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(Error::invalid("response_ids", "give exactly one of response_ids (1–1000 ids), account_id or submitted_before"));
    }
    if !r.response_ids.is_empty() {
        if r.response_ids.len() > MAX_ERASE_IDS {
            return Err(Error::invalid("response_ids", format!("{} ids; at most {MAX_ERASE_IDS} per call", r.response_ids.len())));
        }
        if let Some(i) = r.response_ids.iter().position(|id| id.trim().is_empty()) {
            return Err(Error::invalid(format!("response_ids[{i}]"), "empty id"));
        }
        return Ok(Erasure::Responses(r.response_ids.clone()));
    }
    if !r.account_id.is_empty() {
        return Ok(Erasure::Account(r.account_id.clone()));
    }
    let before = ingest::parse_timestamp(&r.submitted_before).map_err(|m| Error::invalid("submitted_before", m))?;
    Ok(Erasure::SubmittedBefore(before))
}

fn write_result(w: WriteOutcome) -> pb::WriteResult {
    match w {
        WriteOutcome::Inserted => pb::WriteResult::Inserted,
        WriteOutcome::Unchanged => pb::WriteResult::Unchanged,
        WriteOutcome::Updated => pb::WriteResult::Updated,
    }
}

/// How themes were assigned, as told to callers.
fn themes_status(model: Option<&ThemeModel>) -> String {
    match model {
        None => "no theme model yet: run `verbatim recluster` (or the Recluster RPC) to create one; segments are stored and will be assigned".into(),
        Some(m) => format!(
            "theme model v{} ({} themes, built {}); segments below cosine {:.2} to every theme are emerging",
            m.version, m.k, m.created_at, m.assign_threshold
        ),
    }
}

fn theme_info(t: &Theme) -> pb::ThemeInfo {
    pb::ThemeInfo {
        theme_id: t.id,
        label: t.label.clone(),
        name: t.name.clone().unwrap_or_default(),
        display_label: t.display_label().to_string(),
        keywords: t.keywords.clone(),
        quotes: t.quotes.clone(),
        size: t.size,
        pinned: t.pinned,
        alike: Vec::new(),
    }
}

pub(super) fn sentiment(s: Sentiment, mixed: bool) -> pb::Sentiment {
    let [negative, neutral, positive] = s.probabilities;
    pb::Sentiment { label: s.label().as_str().to_string(), score: s.score(), negative, neutral, positive, mixed }
}

fn reply(result: IngestResult) -> pb::SubmitResponseReply {
    let model = result.themes.as_deref();
    let themes_status = themes_status(model);
    // Judged as the theme assignment judged them: each segment with its verbatim as context.
    let languages = crate::language::of_segments(&result.stored.segments.iter().map(|s| s.text.as_str()).collect::<Vec<_>>());
    pb::SubmitResponseReply {
        sentiment: overall_sentiment(&result.stored.segments).map(|o| sentiment(o.sentiment, o.mixed)),
        response_id: result.stored.record.response_id.clone(),
        write: write_result(result.write) as i32,
        category: result.category.as_str().to_string(),
        needs_follow_up: result.needs_follow_up,
        truncated: result.stored.truncated,
        themes_status,
        segments: result
            .stored
            .segments
            .into_iter()
            .zip(languages)
            .map(|(s, language)| pb::ResponseSegment {
                language: language.unwrap_or_default().to_string(),
                index: s.index,
                text: s.text,
                sentiment: s.sentiment.map(|x| sentiment(x, false)),
                emerging: s.theme_id.is_none() && s.theme_version.is_some(),
                theme: s.theme_id.map(|id| pb::Theme {
                    theme_id: id,
                    label: model
                        .filter(|m| Some(m.version) == s.theme_version)
                        .and_then(|m| m.theme(id))
                        .map_or_else(|| crate::themes::reserved_label(id).unwrap_or_default().to_string(), |t| t.display_label().to_string()),
                    similarity: s.theme_similarity.unwrap_or_default(),
                }),
            })
            .collect(),
    }
}

#[tonic::async_trait]
impl pb::verbatim_server::Verbatim for VerbatimService {
    async fn analyze_text(&self, request: Request<pb::AnalyzeTextRequest>) -> Result<Response<pb::AnalyzeTextResponse>, Status> {
        self.authorize(&request, Need::AnyScope).await?;
        let request = request.into_inner();
        let analyses = analyze_texts(&self.state.ingest.infer, &request.texts).await?;
        let results = analyses
            .into_iter()
            .map(|a| pb::TextAnalysis {
                truncated: a.truncated,
                sentiment: a.sentiment.map(|o| sentiment(o.sentiment, o.mixed)),
                segments: a
                    .segments
                    .into_iter()
                    .enumerate()
                    .map(|(index, s)| pb::Segment {
                        index: index as u32,
                        text: s.text,
                        start: s.start as u32,
                        end: s.end as u32,
                        tokens: s.tokens as u32,
                        embedding: if request.include_embeddings { s.embedding } else { Vec::new() },
                        sentiment: s.sentiment.map(|x| sentiment(x, false)),
                        language: s.language.unwrap_or_default().to_string(),
                    })
                    .collect(),
            })
            .collect();
        Ok(Response::new(pb::AnalyzeTextResponse { results, model: MODEL_NAME.to_string() }))
    }

    async fn submit_response(&self, request: Request<pb::SurveyResponse>) -> Result<Response<pb::SubmitResponseReply>, Status> {
        let workspace = self.authorize(&request, Need::Scope(Scope::Ingest)).await?;
        let result = self.state.ingest.submit(&workspace, &submission(request.into_inner())).await?;
        Ok(Response::new(reply(result)))
    }

    async fn submit_responses(
        &self,
        request: Request<Streaming<pb::SurveyResponse>>,
    ) -> Result<Response<pb::SubmitResponsesReply>, Status> {
        let workspace = self.authorize(&request, Need::Scope(Scope::Ingest)).await?;
        let mut stream = request.into_inner();
        let mut tally = StreamTally::default();
        // Of two items of one response id, the later one is stored.
        let mut writes: OrderedWrites<(u64, String, Result<IngestResult, Error>)> = OrderedWrites::new(STREAM_CONCURRENCY);
        while let Some(item) = stream.next().await {
            let (index, item) = tally.receive(item?);
            while let Some(done) = writes.make_way(&item.response_id).await {
                let (index, id, result) = done?;
                tally.add(index, id, result.map(|r| r.write))?;
            }
            let ingest = self.state.ingest.clone();
            let workspace = workspace.clone();
            let id = item.response_id.clone();
            writes.spawn(id.clone(), async move {
                let result = ingest.submit_patiently(&workspace, &submission(item)).await;
                (index, id, result)
            });
        }
        while let Some(done) = writes.next().await {
            let (index, id, result) = done?;
            tally.add(index, id, result.map(|r| r.write))?;
        }
        Ok(Response::new(tally.reply()))
    }

    async fn validate_responses(
        &self,
        request: Request<Streaming<pb::SurveyResponse>>,
    ) -> Result<Response<pb::SubmitResponsesReply>, Status> {
        let workspace = self.authorize(&request, Need::Scope(Scope::Ingest)).await?;
        let mut stream = request.into_inner();
        let mut tally = StreamTally::default();
        let mut dry_run = ingest::DryRun::default();
        while let Some(item) = stream.next().await {
            let (index, item) = tally.receive(item?);
            let id = item.response_id.clone();
            let result = dry_run.check(&self.state.ingest.store, &workspace, &submission(item)).await;
            tally.add(index, id, result)?;
        }
        Ok(Response::new(tally.reply()))
    }

    async fn get_response(&self, request: Request<pb::GetResponseRequest>) -> Result<Response<pb::SubmitResponseReply>, Status> {
        let workspace = self.authorize(&request, Need::AnyScope).await?;
        let id = request.into_inner().response_id;
        let result = self
            .state
            .ingest
            .stored_result(&workspace, &id, WriteOutcome::Unchanged)
            .await
            .map_err(|e| match e {
                Error::NotFound(_) => Status::not_found(format!("response_id {id:?} is not stored in workspace {workspace:?}")),
                other => other.into(),
            })?;
        Ok(Response::new(reply(result)))
    }

    async fn upsert_accounts(&self, request: Request<pb::UpsertAccountsRequest>) -> Result<Response<pb::UpsertAccountsReply>, Status> {
        let workspace = self.authorize(&request, Need::Scope(Scope::Ingest)).await?;
        let request = request.into_inner();
        let validate_only = request.validate_only;
        let accounts = request
            .accounts
            .into_iter()
            .enumerate()
            .map(|(i, a)| {
                ingest::validate_account(&AccountSubmission {
                    account_id: a.account_id,
                    arr: a.arr,
                    churned_at: Some(a.churned_at),
                    attributes: a.attributes.into_iter().collect(),
                })
                .map_err(|e| Error::invalid(format!("accounts[{i}]"), e.to_string()))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let written = if validate_only {
            self.state.ingest.blocking(move |s| s.check_accounts(&workspace, &accounts)).await?
        } else {
            self.state.ingest.blocking(move |s| s.upsert_accounts(&workspace, &accounts)).await?
        };
        let counts: WriteCounts = written.into_iter().collect();
        Ok(Response::new(pb::UpsertAccountsReply { inserted: counts.inserted, unchanged: counts.unchanged, updated: counts.updated }))
    }

    async fn record_outcomes(&self, request: Request<pb::RecordOutcomesRequest>) -> Result<Response<pb::RecordOutcomesReply>, Status> {
        let workspace = self.authorize(&request, Need::Scope(Scope::Ingest)).await?;
        let request = request.into_inner();
        let validate_only = request.validate_only;
        let outcomes = request
            .outcomes
            .into_iter()
            .enumerate()
            .map(|(i, o)| {
                let kind = match pb::OutcomeType::try_from(o.r#type) {
                    Ok(pb::OutcomeType::Churn) => Some(OutcomeKind::Churn),
                    Ok(pb::OutcomeType::Contraction) => Some(OutcomeKind::Contraction),
                    Ok(pb::OutcomeType::Expansion) => Some(OutcomeKind::Expansion),
                    _ => None,
                };
                ingest::validate_outcome(&o.account_id, kind, &o.occurred_at, o.arr_change)
                    .map_err(|e| Error::invalid(format!("outcomes[{i}]"), e.to_string()))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let written = if validate_only {
            self.state.ingest.blocking(move |s| s.check_outcomes(&workspace, &outcomes)).await?
        } else {
            self.state.ingest.blocking(move |s| s.record_outcomes(&workspace, &outcomes)).await?
        };
        let counts: WriteCounts = written.into_iter().collect();
        Ok(Response::new(pb::RecordOutcomesReply { inserted: counts.inserted, unchanged: counts.unchanged, updated: counts.updated }))
    }

    async fn erase_responses(&self, request: Request<pb::EraseResponsesRequest>) -> Result<Response<pb::EraseResponsesReply>, Status> {
        // Authorized before the request is validated, as every call is: an unauthorized caller
        // learns nothing about it. Erasing by id needs ingest; by account or age, admin.
        let broad = !request.get_ref().account_id.is_empty() || !request.get_ref().submitted_before.is_empty();
        let workspace = self.authorize(&request, Need::Scope(if broad { Scope::Admin } else { Scope::Ingest })).await?;
        let what = erasure(request.get_ref())?;
        let ws = workspace.clone();
        let s = self.state.ingest.blocking(move |s| s.erase(&ws, &what)).await?;
        tracing::info!(responses = s.responses, segments = s.segments, quotes = s.quotes, "erased on request");
        let mut reply = pb::EraseResponsesReply { responses: s.responses, segments: s.segments, quotes: s.quotes, accounts: s.accounts, outcomes: s.outcomes, archived_reports: 0 };
        // The archive's reports quote responses too: those that may quote an erased one go.
        if let Some(archive) = self.state.archive.clone() {
            let removed = tokio::task::spawn_blocking(move || archive.drop_erased_responses(&workspace, &s))
                .await
                .map_err(|e| Status::internal(format!("pruning the report archive failed: {e}")))?
                .map_err(|e| Status::internal(format!("the responses are erased, but archived reports that may quote them could not be deleted: {e}")))?;
            removed.iter().for_each(|p| tracing::info!(path = %p.display(), "archived report deleted: it may quote an erased response"));
            reply.archived_reports = removed.len() as u64;
        }
        Ok(Response::new(reply))
    }

    async fn recluster(&self, request: Request<pb::ReclusterRequest>) -> Result<Response<pb::ReclusterReply>, Status> {
        let workspace = self.authorize(&request, Need::Scope(Scope::Admin)).await?;
        let r = request.into_inner();
        let since = super::optional_time("since", &r.since)?;
        let job = ReclusterJob {
            since,
            k: (r.k > 0).then_some(r.k as usize),
            k_range: None,
            seed: if r.seed == 0 { DEFAULT_SEED } else { r.seed },
        };
        let Ok(_running) = self.state.recluster_lock.try_lock() else {
            return Err(Status::aborted("a recluster is already running on this server; try again when it finishes"));
        };
        let store = self.state.ingest.store.clone();
        let summary = tokio::task::spawn_blocking(move || crate::recluster::run(store.as_ref(), &workspace, &job, &mut |_| {}))
            .await
            .map_err(|e| Status::internal(format!("recluster task failed: {e}")))??;
        Ok(Response::new(pb::ReclusterReply {
            version: summary.version,
            k: summary.k as u32,
            segments: summary.segments as u64,
            matched: summary.matched as u32,
            new: summary.new as u32,
            retired: summary.retired,
            themes: summary.themes.iter().map(theme_info).collect(),
        }))
    }

    async fn list_themes(&self, request: Request<pb::ListThemesRequest>) -> Result<Response<pb::ListThemesReply>, Status> {
        let workspace = self.authorize(&request, Need::Scope(Scope::Read)).await?;
        let model = self.state.ingest.theme_model(&workspace).await?;
        Ok(Response::new(match model {
            None => pb::ListThemesReply::default(),
            Some(m) => pb::ListThemesReply {
                version: m.version,
                created_at: m.created_at.clone(),
                assign_threshold: m.assign_threshold,
                themes: {
                    let alike = m.alike(crate::themes::ALIKE_LISTED);
                    let mut themes: Vec<pb::ThemeInfo> = m.themes.iter().map(theme_info).collect();
                    for t in &mut themes {
                        let near = alike.get(&t.theme_id).map(Vec::as_slice).unwrap_or_default();
                        t.alike = near.iter().map(|&(theme_id, similarity)| pb::AlikeTheme { theme_id, similarity }).collect();
                    }
                    themes
                },
            },
        }))
    }

    async fn rename_theme(&self, request: Request<pb::RenameThemeRequest>) -> Result<Response<pb::ThemeInfo>, Status> {
        let workspace = self.authorize(&request, Need::Scope(Scope::Admin)).await?;
        let r = request.into_inner();
        let theme = self.state.ingest.blocking(move |s| Ok(curation::rename(s, &workspace, r.theme_id, "theme_id", Some(&r.name), "name"))).await??;
        Ok(Response::new(theme_info(&theme)))
    }

    async fn merge_themes(&self, request: Request<pb::MergeThemesRequest>) -> Result<Response<pb::ThemeInfo>, Status> {
        let workspace = self.authorize(&request, Need::Scope(Scope::Admin)).await?;
        let r = request.into_inner();
        let (source, target) = (r.source_theme_id, r.target_theme_id);
        let theme = self.state.ingest.blocking(move |s| Ok(curation::merge(s, &workspace, source, target, "source_theme_id", "target_theme_id"))).await??;
        Ok(Response::new(theme_info(&theme)))
    }

    async fn pin_theme(&self, request: Request<pb::PinThemeRequest>) -> Result<Response<pb::ThemeInfo>, Status> {
        let workspace = self.authorize(&request, Need::Scope(Scope::Admin)).await?;
        let r = request.into_inner();
        let theme = self.state.ingest.blocking(move |s| Ok(curation::pin(s, &workspace, r.theme_id, "theme_id", r.pinned))).await??;
        Ok(Response::new(theme_info(&theme)))
    }

    async fn list_theme_segments(&self, request: Request<pb::ListThemeSegmentsRequest>) -> Result<Response<pb::ListThemeSegmentsReply>, Status> {
        let workspace = self.authorize(&request, Need::Scope(Scope::Read)).await?;
        let query = super::theme_segments::query(request.get_ref())?;
        let scope = report::scope(&request.get_ref().filters, &request.get_ref().surveys)?;
        let Some(model) = self.state.ingest.theme_model(&workspace).await? else {
            return Err(Status::failed_precondition(format!("workspace {workspace:?} has no theme model yet: run `verbatim recluster` or the Recluster call")));
        };
        if !model.themes.iter().any(|t| t.id == query.theme_id) {
            return Err(curation::unknown_theme(query.theme_id, &workspace).into());
        }
        let page = self.state.ingest.blocking(move |s| crate::report::theme_segment_page(s, &workspace, &query, &scope)).await?;
        Ok(Response::new(super::theme_segments::reply(&page)))
    }

    async fn get_theme_report(&self, request: Request<pb::ThemeReportRequest>) -> Result<Response<pb::ThemeReport>, Status> {
        let workspace = self.authorize(&request, Need::Scope(Scope::Read)).await?;
        let r = request.into_inner();
        let period = report::period(r.period_days, &r.until)?;
        if let Some(bad) = r.breakdown_by.iter().find(|a| a.trim().is_empty() || a.chars().count() > ingest::MAX_ATTRIBUTE_KEY_CHARS) {
            return Err(Error::invalid("breakdown_by", format!("attribute name {bad:?} must be 1–{} characters", ingest::MAX_ATTRIBUTE_KEY_CHARS)).into());
        }
        let by = BreakdownBy::List(r.breakdown_by);
        let scope = report::scope(&r.filters, &r.surveys)?;
        let ws = workspace.clone();
        let doc = self.state.ingest.blocking(move |s| Ok(crate::report::load(s, &ws, period, &by, &scope, "filters"))).await??;
        let only = (r.theme_id != 0).then_some(r.theme_id);
        if let Some(id) = only {
            if !doc.impact.themes.iter().any(|t| t.theme_id == id) {
                return Err(Status::not_found(format!("theme_id {id} has no mentions in workspace {workspace:?} in this period")));
            }
        }
        Ok(Response::new(report::theme_report(&doc, only)))
    }

    async fn list_alerts(&self, request: Request<pb::ListAlertsRequest>) -> Result<Response<pb::ListAlertsReply>, Status> {
        let workspace = self.authorize(&request, Need::Scope(Scope::Read)).await?;
        let r = request.into_inner();
        let period = report::period(r.period_days, &r.until)?;
        let scope = report::scope(&r.filters, &r.surveys)?;
        let alerts = self.state.ingest.blocking(move |s| Ok(crate::report::load_alerts(s, &workspace, period, &scope, "filters"))).await??;
        Ok(Response::new(pb::ListAlertsReply {
            period_from: crate::report::timestamp(period.from),
            period_to: crate::report::timestamp(period.to),
            alerts: alerts.iter().map(report::alert).collect(),
        }))
    }
}

