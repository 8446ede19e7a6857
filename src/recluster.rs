//! The weekly recluster as a job: read the window's segments from the store, run
//! [`themes::recluster`](crate::themes::recluster), and store + activate the new model in one
//! transaction. Shared by `verbatim recluster`, the `Recluster` RPC and `serve --recluster-every`.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::store::{NewThemeModel, Store};
use crate::themes::recluster::{in_context, recluster, response_groups, stack, ReclusterOptions};
use crate::themes::Theme;

/// The default window: responses submitted in the last 90 days.
pub const DEFAULT_WINDOW_DAYS: i64 = 90;
pub const DEFAULT_SEED: u64 = 42;

#[derive(Debug, Clone)]
pub struct ReclusterJob {
    /// Unix seconds; responses submitted before are left out. `None`: [`DEFAULT_WINDOW_DAYS`].
    pub since: Option<i64>,
    pub k: Option<usize>,
    pub k_range: Option<(usize, usize)>,
    pub seed: u64,
}

impl Default for ReclusterJob {
    fn default() -> Self {
        Self { since: None, k: None, k_range: None, seed: DEFAULT_SEED }
    }
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct ReclusterSummary {
    pub version: i64,
    pub k: usize,
    pub segments: usize,
    pub matched: usize,
    pub new: usize,
    pub retired: Vec<i64>,
    pub themes: Vec<Theme>,
    pub k_scores: Vec<(usize, f32)>,
    pub seconds: f64,
}

impl std::fmt::Display for ReclusterSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "theme model v{}: {} themes from {} segments in {:.1} s — {} matched, {} new, {} retired",
            self.version,
            self.k,
            self.segments,
            self.seconds,
            self.matched,
            self.new,
            self.retired.len()
        )?;
        if !self.k_scores.is_empty() {
            let scores: Vec<String> = self.k_scores.iter().map(|(k, s)| format!("{k}:{s:.3}")).collect();
            writeln!(f, "k chosen by silhouette: {}", scores.join(" "))?;
        }
        for t in &self.themes {
            writeln!(f, "{:>6} {:>6}  {}{}", t.id, t.size, t.display_label(), if t.pinned { "  (pinned)" } else { "" })?;
        }
        Ok(())
    }
}

/// Reclusters `workspace` and activates the result. `progress` hears each stage's name.
pub fn run(store: &dyn Store, workspace: &str, job: &ReclusterJob, progress: &mut dyn FnMut(&str)) -> Result<ReclusterSummary> {
    if job.k == Some(0) {
        return Err(Error::invalid("k", "must be at least 1 (omit it to choose k automatically)"));
    }
    let started = Instant::now();
    let since = job.since.unwrap_or_else(|| chrono::Utc::now().timestamp() - DEFAULT_WINDOW_DAYS * 86_400);
    progress("reading segments");
    let segments = store.theme_segments(workspace, Some(since))?;
    if segments.is_empty() {
        return Err(Error::NotFound(format!(
            "workspace {workspace:?} has no segments submitted since {}: nothing to cluster",
            chrono::DateTime::from_timestamp(since, 0).map(|t| t.to_rfc3339()).unwrap_or_default()
        )));
    }
    let mut history = store.theme_history(workspace)?;
    history.prior = segments.iter().map(|s| s.theme_id).collect();
    let embeddings: Vec<&[f32]> = segments.iter().map(|s| s.embedding.as_slice()).collect();
    let x = stack(&embeddings).map_err(Error::Internal)?;
    let groups = response_groups(segments.iter().map(|s| s.response_id.as_str()));
    let x = in_context(x.view(), &groups);
    let texts: Vec<&str> = segments.iter().map(|s| s.text.as_str()).collect();
    let opts = ReclusterOptions { k: job.k, k_range: job.k_range, seed: job.seed };
    let outcome = recluster(&texts, x.view(), &groups, &history, &opts, progress).map_err(Error::Internal)?;

    progress("activating the new model");
    let params = serde_json::json!({
        "since": since,
        "k": job.k,
        "k_range": job.k_range,
        "seed": job.seed,
        "k_scores": outcome.k_scores,
        "matched": outcome.matched,
        "new": outcome.new,
        "retired": outcome.retired,
    })
    .to_string();
    let assignments = segments.iter().zip(&outcome.assignments).map(|(s, &(theme, sim))| (s.response_id.as_str(), s.index, theme, sim)).collect();
    let new = NewThemeModel { model: &outcome.model, assignments, next_theme_id: outcome.next_id, params };
    let version = store.activate_theme_model(workspace, &new)?;
    tracing::info!(workspace, version, k = outcome.model.k, segments = segments.len(), "theme model activated");
    Ok(ReclusterSummary {
        version,
        k: outcome.model.k,
        segments: segments.len(),
        matched: outcome.matched,
        new: outcome.new,
        retired: outcome.retired,
        themes: outcome.model.themes,
        k_scores: outcome.k_scores,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// How long a claimed scheduled recluster that did not finish (failed, or its server died) waits
/// before another try: a period of the schedule, at most six hours.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(6 * 3600);

/// One pass of the scheduled recluster (`serve --recluster-every`): every workspace that holds
/// responses and whose active model is older than `every` (or that has none) is reclustered with
/// the default job, by whichever server claims it first (see [`Store::claim_recluster`]). So
/// replicas sharing a store recluster each workspace once per period between them, and a restart
/// neither delays nor repeats a run. Returns what each run this pass took did.
pub fn run_due(store: &dyn Store, every: Duration, now: i64) -> Result<Vec<(String, Result<ReclusterSummary>)>> {
    let period = every.as_secs().max(1) as i64;
    let retry = every.min(MAX_RETRY_AFTER).as_secs().max(1) as i64;
    let mut ran = Vec::new();
    for workspace in store.workspaces()? {
        if store.claim_recluster(&workspace, now, now - period, now - retry)? {
            let outcome = run(store, &workspace, &ReclusterJob::default(), &mut |_| {});
            ran.push((workspace, outcome));
        }
    }
    Ok(ran)
}
