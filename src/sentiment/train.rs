//! `verbatim train sentiment` and `verbatim eval sentiment`: the data in, the branch trained on
//! cached lower-layer states, calibrated on held-out reviews, scored on the dev sets beside the
//! frozen-vector floor, saved with its `metrics.json`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::data::{self, DataMix, Example, Label, SentimentData};
use crate::error::{Error, Result};
use crate::store::Store;
use crate::themes::labels::is_content_free;
use crate::model::sentiment::{self as branch, Branch, Cached, Scores, TrainOptions};
use crate::model::{Encoder, ModelError};

pub const METRICS_FILE: &str = "metrics.json";

/// The peak learning rate for training a branch that is already trained (`--from-responses`,
/// `--init`): a nudge, not a training from the encoder's layers (1.5e-4).
pub const TRAIN_ON_LEARNING_RATE: f64 = 2e-5;

/// Dev-set figures of one model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DevMetrics {
    /// SST-2 dev: negative vs positive by the larger of the two probabilities.
    pub sst2_accuracy: f64,
    pub sst2_confusion: [[u32; 3]; 3],
    /// Clothing-reviews dev, three classes.
    pub reviews_macro_f1: f64,
    pub reviews_accuracy: f64,
    pub reviews_confusion: [[u32; 3]; 3],
    /// Expected calibration error on the reviews dev set (10 bins).
    pub reviews_ece: f64,
}

impl std::fmt::Display for DevMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SST-2 dev accuracy {:.4}; reviews dev macro-F1 {:.4}, accuracy {:.4}, ECE {:.4}",
            self.sst2_accuracy, self.reviews_macro_f1, self.reviews_accuracy, self.reviews_ece
        )
    }
}

/// What `metrics.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Metrics {
    pub layers: usize,
    pub epochs: usize,
    pub learning_rate: f64,
    pub max_tokens: usize,
    pub seed: u64,
    /// The saved weights are the mean of each epoch's (`--average-epochs`), not the last epoch's.
    #[serde(default)]
    pub average_epochs: bool,
    pub train_examples: usize,
    pub calibration_examples: usize,
    pub temperature: f32,
    /// The log-prior correction fitted after the temperature (see `branch::fit_bias`: one offset
    /// of negative and positive against neutral; branches calibrated before it, such as the
    /// oldest leaf recorded in the committed branch's `metrics.json`, carry two).
    #[serde(default)]
    pub bias: [f32; 3],
    pub seconds: f64,
    /// The saved branch.
    pub dev: DevMetrics,
    /// After each epoch (before calibration).
    pub per_epoch: Vec<DevMetrics>,
    /// The floor: logistic regression on the frozen pooled embedding, same data and class weights.
    pub frozen_floor: Option<DevMetrics>,
    /// What training took beside the shared sets (`--without-customer-data`, `--written-repeats`,
    /// `--outcome-repeats`), flat in the file.
    #[serde(flatten)]
    pub mix: DataMix,
    /// Workspace verbatims the branch was later adapted on (`--from-responses`), in all.
    #[serde(default)]
    pub adapted_on_responses: usize,
    /// For a branch averaged from trained ones (`--average`, [`average_saved`]): each one's own
    /// metrics, in order, so a retrain can repeat every one; empty for a branch trained alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingredients: Vec<Metrics>,
    /// For a branch trained on from another (`--init`): that branch's own metrics, so a retrain
    /// rebuilds it first; absent for a branch trained from the encoder's layers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<Box<Metrics>>,
}

impl Metrics {
    /// The fitted calibration, as the train commands print it.
    pub fn calibration(&self) -> String {
        let [negative, _, positive] = self.bias;
        format!("temperature {:.2}, class-prior correction negative {negative:+.1}, positive {positive:+.1}", self.temperature)
    }

    /// The `metrics.json` saved beside a branch, if it is there and readable.
    pub fn read(dir: &Path) -> Option<Self> {
        std::fs::read_to_string(dir.join(METRICS_FILE)).ok().and_then(|t| serde_json::from_str(&t).ok())
    }

    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::write(dir.join(METRICS_FILE), serde_json::to_string_pretty(self).expect("serialisable"))
    }
}

/// The dev sets, cached once.
pub struct DevSets {
    pub sst2: Cached,
    pub reviews: Cached,
}

impl DevSets {
    pub fn cache(encoder: &Encoder, sets: &SentimentData, opts: &TrainOptions) -> Result<Self> {
        Ok(Self { sst2: branch::cache(encoder, &sets.sst2_dev, opts)?, reviews: branch::cache(encoder, &sets.reviews_dev, opts)? })
    }

    pub fn score(&self, sst2: &[[f32; 3]], reviews: &[[f32; 3]]) -> DevMetrics {
        let s: Scores = branch::score(&self.sst2.labels, &branch::decide(sst2, true));
        let r: Scores = branch::score(&self.reviews.labels, &branch::decide(reviews, false));
        DevMetrics {
            sst2_accuracy: s.accuracy,
            sst2_confusion: s.confusion,
            reviews_macro_f1: r.macro_f1,
            reviews_accuracy: r.accuracy,
            reviews_confusion: r.confusion,
            reviews_ece: branch::expected_calibration_error(reviews, &self.reviews.labels),
        }
    }

    pub fn evaluate_model(&self, b: &Branch) -> std::result::Result<DevMetrics, ModelError> {
        Ok(self.score(&branch::predict(b, &self.sst2)?, &branch::predict(b, &self.reviews)?))
    }
}

/// Where the training loop reports.
pub trait Progress {
    fn step(&mut self, epoch: usize, step: usize, steps: usize, loss: f32);
    fn note(&mut self, message: &str);
}

/// A seeded sample of `limit` examples (all when `None`).
pub fn sample(mut examples: Vec<Example>, limit: Option<usize>, seed: u64) -> Vec<Example> {
    if let Some(limit) = limit {
        use rand_xoshiro::rand_core::{RngCore, SeedableRng};
        let mut rng = rand_xoshiro::Xoshiro256Plus::seed_from_u64(seed);
        for i in (1..examples.len()).rev() {
            examples.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
        }
        examples.truncate(limit);
    }
    examples
}

/// Trains a branch from the encoder's own top layers (or from the trained branch in
/// `opts.init`) on the shared data in `data_dir` and what `mix` adds, calibrates it, scores it and
/// the frozen floor, and saves it with `metrics.json` in `out`.
pub fn train_from_data(encoder: &Encoder, data_dir: &Path, mix: DataMix, out: &Path, opts: &TrainOptions, limit: Option<usize>, progress: &mut dyn Progress) -> Result<Metrics> {
    let started = std::time::Instant::now();
    // Read before anything is cached: a wrong start fails in a second, not after the caching.
    let init = match &opts.init {
        None => None,
        Some(dir) => {
            let m = Metrics::read(dir).ok_or_else(|| Error::invalid("init", format!("{} holds no readable {METRICS_FILE}: only a trained branch can be trained on", dir.display())))?;
            if (m.layers, m.max_tokens) != (opts.layers, opts.max_tokens) {
                return Err(Error::invalid(
                    "init",
                    format!("{} tunes {} layers over {} tokens, this run {} over {}: train on with the branch's own shape", dir.display(), m.layers, m.max_tokens, opts.layers, opts.max_tokens),
                ));
            }
            Some((Branch::load(dir, encoder.config(), true)?, m))
        }
    };
    let mut sets = data::load_with(data_dir, mix)?;
    sets.train = sample(std::mem::take(&mut sets.train), limit, opts.seed);
    let checkpoint = branch::Checkpoint { path: out.join(CHECKPOINT_DIR).join(CHECKPOINT_FILE), every: opts.checkpoint_every };
    let mut run = Run::resume(&checkpoint, fingerprint(opts, mix, &sets.train)?)?;
    let train = branch::cache(encoder, &sets.train, opts)?;
    let calibration = branch::cache(encoder, &sets.reviews_calibration, opts)?;
    let dev = DevSets::cache(encoder, &sets, opts)?;
    progress.note(&format!(
        "cached the shared layers for {} training, {} calibration and {} + {} dev texts in {:.0} s",
        train.states.len(),
        calibration.states.len(),
        dev.sst2.states.len(),
        dev.reviews.states.len(),
        started.elapsed().as_secs_f64()
    ));
    let floor = match run.floor.clone() {
        Some(floor) => floor,
        None => {
            let floor = branch::frozen_floor(encoder, &train, &[&dev.sst2, &dev.reviews], opts.seed)?;
            let floor = dev.score(&floor[0], &floor[1]);
            run.floor = Some(floor.clone());
            run.save(&checkpoint)?;
            floor
        }
    };
    progress.note(&format!("frozen-vector floor: {floor}"));
    if let Some((epoch, step)) = checkpoint.position()? {
        let steps = train.states.len().div_ceil(opts.batch);
        progress.note(&format!("resuming the run saved in {} at epoch {}, step {step} of {steps}", checkpoint.path.display(), epoch + 1));
    }

    let (b, init) = match init {
        Some((b, m)) => (b, Some(Box::new(m))),
        None => (Branch::from_encoder(encoder, opts.layers, opts.seed)?, None),
    };
    // Each epoch's weights, saved as a branch beside the output, when their mean is what is kept.
    let snapshots = out.join(".epochs");
    let snapshot = |epoch: usize| snapshots.join(format!("{}", epoch + 1));
    {
        // Both callbacks report through `progress`.
        let progress = std::cell::RefCell::new(&mut *progress);
        let mut end_of_epoch = |epoch: usize| -> std::result::Result<(), ModelError> {
            let m = dev.evaluate_model(&b)?;
            progress.borrow_mut().note(&format!("epoch {}: {m}", epoch + 1));
            // A resumed run may end an epoch it had ended before saving its weights.
            run.per_epoch.truncate(epoch);
            run.per_epoch.push(m);
            run.save(&checkpoint)?;
            if opts.average_epochs {
                b.save(&snapshot(epoch))?;
            }
            Ok(())
        };
        branch::train(&b, &train, opts, Some(&checkpoint), &mut |epoch, step, steps, loss| progress.borrow_mut().step(epoch, step, steps, loss), &mut end_of_epoch)?;
    }
    // Calibrated and scored as it is served: from the saved (f16) weights.
    if opts.average_epochs {
        let epochs: Vec<PathBuf> = (0..opts.epochs).map(snapshot).collect();
        Branch::average(&epochs.iter().map(PathBuf::as_path).collect::<Vec<_>>(), encoder.config())?.save(out)?;
        std::fs::remove_dir_all(&snapshots)?;
    } else {
        b.save(out)?;
    }
    let mut b = Branch::load(out, encoder.config(), false)?;
    calibrate(&mut b, &calibration)?;
    let metrics = Metrics {
        layers: opts.layers,
        epochs: opts.epochs,
        learning_rate: opts.learning_rate,
        max_tokens: opts.max_tokens,
        seed: opts.seed,
        average_epochs: opts.average_epochs,
        train_examples: train.states.len(),
        calibration_examples: calibration.states.len(),
        temperature: b.temperature,
        bias: b.bias,
        seconds: started.elapsed().as_secs_f64(),
        dev: dev.evaluate_model(&b)?,
        per_epoch: run.per_epoch,
        frozen_floor: Some(floor),
        mix,
        adapted_on_responses: 0,
        ingredients: Vec::new(),
        init,
    };
    b.save_config(out)?;
    metrics.write(out)?;
    std::fs::remove_dir_all(out.join(CHECKPOINT_DIR))?;
    Ok(metrics)
}

/// Where in `--out` a training run keeps its state until it ends ([`branch::Checkpoint`]).
pub const CHECKPOINT_DIR: &str = ".checkpoint";
const CHECKPOINT_FILE: &str = "state.safetensors";
const RUN_FILE: &str = "run.json";

/// What a run has measured so far, beside its [`branch::Checkpoint`]: the floor (computed once,
/// about 8 minutes on the full data) and each finished epoch's dev figures; and which run it is.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Run {
    fingerprint: String,
    floor: Option<DevMetrics>,
    per_epoch: Vec<DevMetrics>,
}

impl Run {
    /// The run saved beside `checkpoint` if it is this one (the same `fingerprint`), or a new
    /// run when nothing is saved. Another run's state is refused, not overwritten.
    fn resume(checkpoint: &branch::Checkpoint, fingerprint: String) -> Result<Self> {
        let dir = checkpoint.path.parent().expect("in a directory");
        let saved = match std::fs::read_to_string(dir.join(RUN_FILE)) {
            Ok(text) => serde_json::from_str::<Run>(&text).ok(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Nothing measured yet: whatever else is there is from a run that never started.
                if dir.exists() {
                    std::fs::remove_dir_all(dir)?;
                }
                return Ok(Run { fingerprint, ..Run::default() });
            }
            Err(e) => return Err(e.into()),
        };
        match saved {
            Some(run) if run.fingerprint == fingerprint => Ok(run),
            _ => Err(Error::invalid(
                "out",
                format!("{} holds the unfinished state of another training run (other data or options); remove it to start this one, or train into another --out", dir.display()),
            )),
        }
    }

    fn save(&self, checkpoint: &branch::Checkpoint) -> std::io::Result<()> {
        let dir = checkpoint.path.parent().expect("in a directory");
        std::fs::create_dir_all(dir)?;
        let partial = dir.join(format!("{RUN_FILE}.partial"));
        std::fs::write(&partial, serde_json::to_string_pretty(self).expect("serialisable"))?;
        std::fs::rename(partial, dir.join(RUN_FILE))
    }
}

/// Which run this is: its options (but how often it saves), its data mix, the weights of the
/// branch it trains on (`--init`: what that directory holds, not its name, so a branch retrained
/// in place there starts another run) and every training text with its label, hashed.
fn fingerprint(opts: &TrainOptions, mix: DataMix, train: &[Example]) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(format!("{:?}\n{:?}\n", TrainOptions { checkpoint_every: 0, init: None, ..opts.clone() }, mix));
    if let Some(dir) = &opts.init {
        hash.update(std::fs::read(dir.join(branch::WEIGHTS_FILE))?);
    }
    for e in train {
        hash.update(format!("{}\t{}\n", e.label as u32, e.text));
    }
    Ok(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Averages the trained branches saved in `dirs` ([`Branch::average`]) into `out`, then
/// calibrates the mean on the calibration reviews and scores it on the dev sets, as training does
/// (from the saved f16 weights). Its `metrics.json` lists each branch's own metrics as
/// `ingredients`; its top-level settings are the first branch's, with the largest data mix among
/// them (what `--from-responses` replays). A branch that is itself a mean keeps its own
/// ingredients inside its entry, so a retrain rebuilds the whole tree. The branches must tune the
/// same layers over the same token budget.
pub fn average_saved(encoder: &Encoder, dirs: &[&Path], data_dir: &Path, out: &Path) -> Result<Metrics> {
    let started = std::time::Instant::now();
    let ingredients = dirs
        .iter()
        .map(|d| Metrics::read(d).ok_or_else(|| Error::invalid("average", format!("{} holds no readable {METRICS_FILE}: only trained branches can be averaged", d.display()))))
        .collect::<Result<Vec<_>>>()?;
    let first = ingredients.first().ok_or_else(|| Error::invalid("average", "name at least one trained branch"))?.clone();
    if let Some((dir, m)) = dirs.iter().zip(&ingredients).find(|(_, m)| (m.layers, m.max_tokens) != (first.layers, first.max_tokens)) {
        return Err(Error::invalid(
            "average",
            format!("{} tunes {} layers over {} tokens, the first branch {} over {}: only branches of one shape can be averaged", dir.display(), m.layers, m.max_tokens, first.layers, first.max_tokens),
        ));
    }
    Branch::average(dirs, encoder.config())?.save(out)?;
    let mut b = Branch::load(out, encoder.config(), false)?;
    let (dev, calibration) = held_out(encoder, data_dir, first.layers, first.max_tokens)?;
    calibrate(&mut b, &calibration)?;
    let dev = dev.evaluate_model(&b)?;
    let metrics = Metrics {
        train_examples: ingredients.iter().map(|m| m.train_examples).max().unwrap_or(0),
        calibration_examples: calibration.states.len(),
        temperature: b.temperature,
        bias: b.bias,
        seconds: started.elapsed().as_secs_f64(),
        dev,
        per_epoch: Vec::new(),
        mix: DataMix::widest(ingredients.iter().map(|m| m.mix)),
        adapted_on_responses: 0,
        ingredients,
        init: None,
        ..first
    };
    b.save_config(out)?;
    metrics.write(out)?;
    Ok(metrics)
}

/// The dev sets and the calibration reviews in `data_dir`, through the shared layers once for a
/// branch tuning `layers` over `max_tokens`: what calibrating and scoring a saved branch read.
fn held_out(encoder: &Encoder, data_dir: &Path, layers: usize, max_tokens: usize) -> Result<(DevSets, Cached)> {
    let sets = data::load(data_dir)?;
    let opts = TrainOptions { layers, max_tokens, ..TrainOptions::default() };
    Ok((DevSets::cache(encoder, &sets, &opts)?, branch::cache(encoder, &sets.reviews_calibration, &opts)?))
}

/// Fits the temperature (minimum NLL), then the class-prior correction (macro-F1), on the
/// calibration reviews: data neither training nor dev sees. Training balances the classes, so an
/// uncorrected branch over-reads neutral on reviews (78% positive); the correction is part of
/// every training, adaptation and `--recalibrate`.
fn calibrate(b: &mut Branch, calibration: &branch::Cached) -> std::result::Result<(), ModelError> {
    let logits = branch::logits(b, calibration)?;
    b.temperature = branch::fit_temperature(&logits, &calibration.labels);
    b.bias = branch::fit_bias(&logits, &calibration.labels, b.temperature);
    Ok(())
}

/// Re-fits the calibration of the branch saved in `dir` without training it: the temperature and
/// the class-prior correction, both on the calibration reviews ([`calibrate`], as training does);
/// saves `config.json` and updates `metrics.json`. Returns the dev figures before and after. For
/// a branch saved before training fitted the correction, or after the calibration data changed.
pub fn recalibrate(encoder: &Encoder, dir: &Path, data_dir: &Path) -> Result<(DevMetrics, DevMetrics)> {
    let mut b = Branch::load(dir, encoder.config(), false)?;
    let recorded = Metrics::read(dir);
    let max_tokens = recorded.as_ref().map_or(TrainOptions::default().max_tokens, |m| m.max_tokens);
    let (dev, calibration) = held_out(encoder, data_dir, b.layers.len(), max_tokens)?;
    let before = dev.evaluate_model(&b)?;
    calibrate(&mut b, &calibration)?;
    let after = dev.evaluate_model(&b)?;
    b.save_config(dir)?;
    if let Some(mut m) = recorded {
        m.temperature = b.temperature;
        m.bias = b.bias;
        m.dev = after.clone();
        m.write(dir)?;
    }
    Ok((before, after))
}

/// Scores the saved branch in `dir` on the dev sets in `data_dir`.
pub fn evaluate_saved(encoder: &Encoder, dir: &Path, data_dir: &Path) -> Result<DevMetrics> {
    let b = Branch::load(dir, encoder.config(), false)?;
    let sets = data::load(data_dir)?;
    let recorded = Metrics::read(dir);
    let max_tokens = recorded.map_or(TrainOptions::default().max_tokens, |m| m.max_tokens);
    let opts = TrainOptions { layers: b.layers.len(), max_tokens, ..TrainOptions::default() };
    let dev = DevSets::cache(encoder, &sets, &opts)?;
    Ok(dev.evaluate_model(&b)?)
}

/// The eval command's report: per dev set the headline figure and the confusion matrix, beside
/// the frozen-vector floor and the figures recorded when the branch was trained.
pub fn report(m: &DevMetrics, dir: &Path) -> String {
    let recorded = Metrics::read(dir);
    let mut out = String::new();
    let matrix = |out: &mut String, c: &[[u32; 3]; 3], rows: &[usize]| {
        out.push_str("    truth \\ predicted   negative   neutral  positive\n");
        for &t in rows {
            out.push_str(&format!("    {:<20}{:>9}{:>10}{:>10}\n", data::Label::ALL[t].as_str(), c[t][0], c[t][1], c[t][2]));
        }
    };
    out.push_str(&format!("sentiment branch {}\n", dir.display()));
    out.push_str(&format!("SST-2 dev ({} sentences): binary accuracy {:.4}\n", m.sst2_confusion.iter().flatten().sum::<u32>(), m.sst2_accuracy));
    matrix(&mut out, &m.sst2_confusion, &[0, 2]);
    out.push_str(&format!(
        "clothing reviews dev ({} reviews): macro-F1 {:.4}, accuracy {:.4}, calibration error {:.4}\n",
        m.reviews_confusion.iter().flatten().sum::<u32>(),
        m.reviews_macro_f1,
        m.reviews_accuracy,
        m.reviews_ece
    ));
    matrix(&mut out, &m.reviews_confusion, &[0, 1, 2]);
    if let Some(r) = recorded {
        if let Some(floor) = &r.frozen_floor {
            out.push_str(&format!("floor (logistic regression on the frozen pooled embedding): {floor}\n"));
        }
        out.push_str(&format!(
            "recorded at training ({} layers, {} epochs, lr {}, {} tokens, seed {}, temperature {:.2}): {}\n",
            r.layers, r.epochs, r.learning_rate, r.max_tokens, r.seed, r.temperature, r.dev
        ));
        lineage(&mut out, &r, 1);
    }
    out
}

/// One line per branch `m` was built from (the branch it was trained on from, the branches it was
/// averaged from), indented by `depth`, and below each what that one was built from in turn.
fn lineage(out: &mut String, m: &Metrics, depth: usize) {
    let what = |m: &Metrics| match m.ingredients.len() {
        0 => format!("seed {}, {}", m.seed, m.mix),
        n => format!("itself the mean of {n}"),
    };
    let indent = "  ".repeat(depth);
    if let Some(init) = &m.init {
        out.push_str(&format!("{indent}trained on from a branch ({}), which alone scored: {}\n", what(init), init.dev));
        lineage(out, init, depth + 1);
    }
    for (i, m) in m.ingredients.iter().enumerate() {
        out.push_str(&format!("{indent}averaged from branch {} ({}), which alone scored: {}\n", i + 1, what(m), m.dev));
        lineage(out, m, depth + 1);
    }
}

/// Fewest labelled workspace verbatims worth adapting on.
pub const MIN_ADAPT_EXAMPLES: usize = 20;

/// Whether an adapted branch may replace the current one: neither dev figure may drop.
pub fn accept(current: &DevMetrics, adapted: &DevMetrics) -> std::result::Result<(), String> {
    let mut worse = Vec::new();
    if adapted.sst2_accuracy < current.sst2_accuracy {
        worse.push(format!("SST-2 dev accuracy {:.4} < {:.4}", adapted.sst2_accuracy, current.sst2_accuracy));
    }
    if adapted.reviews_macro_f1 < current.reviews_macro_f1 {
        worse.push(format!("reviews dev macro-F1 {:.4} < {:.4}", adapted.reviews_macro_f1, current.reviews_macro_f1));
    }
    if worse.is_empty() {
        Ok(())
    } else {
        Err(worse.join("; "))
    }
}

/// What `--from-responses` did.
#[derive(Debug, Clone)]
pub struct Adaptation {
    /// Workspace verbatims used (one segment, unambiguous score), and how many of each label.
    pub examples: usize,
    pub negative: usize,
    pub positive: usize,
    pub before: DevMetrics,
    pub after: DevMetrics,
    /// `None` when saved; else why the adapted branch was refused (the current one is kept).
    pub refused: Option<String>,
}

/// Adapts the branch saved in `dir` to a workspace's own language: its stored one-segment
/// verbatims whose score is unambiguous ([`super::label_from_score`]) become labels, mixed with as
/// many examples replayed from the shared training data (so the branch does not forget), one
/// epoch at a low learning rate, then recalibrated ([`calibrate`]). Saved over `dir` only if neither dev figure
/// drops ([`accept`]).
pub fn adapt_from_responses(
    encoder: &Encoder,
    store: &dyn Store,
    workspace: &str,
    data_dir: &Path,
    dir: &Path,
    learning_rate: f64,
    seed: u64,
    progress: &mut dyn Progress,
) -> Result<Adaptation> {
    let own: Vec<Example> = store
        .single_segment_verbatims(workspace)?
        .into_iter()
        .filter(|t| !is_content_free(&t.text))
        // The branch reads English: a score is no label for a sentence it cannot read.
        .filter(|t| crate::language::other_than_english(&t.text).is_none())
        .filter_map(|t| super::label_from_score(t.survey, t.scale, t.score).map(|label| Example { text: t.text, label }))
        .collect();
    if own.len() < MIN_ADAPT_EXAMPLES {
        return Err(Error::invalid(
            "from-responses",
            format!("workspace {workspace:?} has {} one-segment verbatims with an unambiguous score; at least {MIN_ADAPT_EXAMPLES} are needed", own.len()),
        ));
    }
    let count = |label: Label| own.iter().filter(|e| e.label == label).count();
    let (negative, positive) = (count(Label::Negative), count(Label::Positive));
    let mut b = Branch::load(dir, encoder.config(), true)?;
    let recorded = Metrics::read(dir);
    let max_tokens = recorded.as_ref().map_or(TrainOptions::default().max_tokens, |m| m.max_tokens);
    // Replay the data mix the branch was trained on.
    let mix = recorded.as_ref().map_or_else(DataMix::default, |m| m.mix);
    let opts = TrainOptions { layers: b.layers.len(), epochs: 1, learning_rate, max_tokens, seed, ..TrainOptions::default() };
    let sets = data::load_with(data_dir, mix)?;
    let dev = DevSets::cache(encoder, &sets, &opts)?;
    let before = dev.evaluate_model(&b)?;
    progress.note(&format!("current branch: {before}"));
    let mut examples = sample(sets.train, Some(own.len()), seed);
    examples.extend(own.iter().cloned());
    let train = branch::cache(encoder, &examples, &opts)?;
    let calibration = branch::cache(encoder, &sets.reviews_calibration, &opts)?;
    branch::train(&b, &train, &opts, None, &mut |epoch, step, steps, loss| progress.step(epoch, step, steps, loss), &mut |_| Ok(()))?;
    calibrate(&mut b, &calibration)?;
    let after = dev.evaluate_model(&b)?;
    progress.note(&format!("adapted on {} workspace verbatims: {after}", own.len()));
    let refused = accept(&before, &after).err();
    if refused.is_none() {
        b.save(dir)?;
        if let Some(mut m) = recorded {
            m.temperature = b.temperature;
            m.bias = b.bias;
            m.dev = after.clone();
            m.adapted_on_responses += own.len();
            m.write(dir)?;
        }
    }
    Ok(Adaptation { examples: own.len(), negative, positive, before, after, refused })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(sst2: f64, f1: f64) -> DevMetrics {
        DevMetrics { sst2_accuracy: sst2, sst2_confusion: [[0; 3]; 3], reviews_macro_f1: f1, reviews_accuracy: 0.0, reviews_confusion: [[0; 3]; 3], reviews_ece: 0.0 }
    }

    #[test]
    fn a_run_trained_on_a_branch_is_known_by_that_branchs_weights_not_its_directory() {
        let train = [Example { text: "Support took a week.".into(), label: Label::Negative }];
        let branch = |bytes: &[u8]| {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join(branch::WEIGHTS_FILE), bytes).unwrap();
            dir
        };
        let on = |dir: &Path| fingerprint(&TrainOptions { init: Some(dir.to_path_buf()), ..TrainOptions::default() }, DataMix::TRAINING, &train).unwrap();
        let (a, a_again, b) = (branch(b"weights a"), branch(b"weights a"), branch(b"weights b"));
        assert_eq!(on(a.path()), on(a_again.path()), "the same branch moved elsewhere is the same run");
        assert_ne!(on(a.path()), on(b.path()), "another branch in its place is another run");
        std::fs::write(a.path().join(branch::WEIGHTS_FILE), b"weights b").unwrap();
        assert_eq!(on(a.path()), on(b.path()), "a branch retrained in place is known by its new weights");
        let from_encoder = fingerprint(&TrainOptions::default(), DataMix::TRAINING, &train).unwrap();
        assert_ne!(from_encoder, on(a.path()));
        let empty = tempfile::tempdir().unwrap();
        assert!(fingerprint(&TrainOptions { init: Some(empty.path().to_path_buf()), ..TrainOptions::default() }, DataMix::TRAINING, &train).is_err(), "no weights, no run");
    }

    #[test]
    fn an_adapted_branch_is_refused_when_either_dev_figure_drops() {
        assert!(accept(&m(0.85, 0.68), &m(0.85, 0.68)).is_ok());
        assert!(accept(&m(0.85, 0.68), &m(0.86, 0.70)).is_ok());
        let why = accept(&m(0.85, 0.68), &m(0.90, 0.67)).unwrap_err();
        assert!(why.contains("macro-F1 0.6700 < 0.6800") && !why.contains("SST-2"), "{why}");
        assert!(accept(&m(0.85, 0.68), &m(0.84, 0.70)).unwrap_err().contains("SST-2"));
    }

    #[test]
    fn the_data_mix_reads_and_writes_flat_in_metrics_json_and_files_without_a_field_still_read() {
        // The committed branch: one run (T2E) with both hand-written sets ×3, the review titles and
        // SST-2 train twice, over two epochs.
        let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/sentiment");
        let m = Metrics::read(&committed).unwrap();
        let t2e = DataMix { written_repeats: 3, outcome_repeats: 3, review_titles: true, sst2_repeats: 1, ..DataMix::TRAINING };
        assert_eq!(m.mix, t2e);
        assert!(m.ingredients.is_empty(), "a single run has no ingredients");
        assert!(!m.average_epochs);

        let flat: serde_json::Value = serde_json::to_value(&m).unwrap();
        for key in ["customer_data", "written_repeats", "outcome_repeats", "negative_review_repeats", "neutral_review_repeats", "review_titles", "sst2_repeats", "labelled_sentences", "plain_repeats"] {
            assert!(flat.get(key).is_some(), "{key} is a top-level key: {flat}");
        }
        assert!(flat.get("mix").is_none());
        assert_eq!(serde_json::from_value::<Metrics>(flat.clone()).unwrap().mix, m.mix);

        // A file written before `outcome_repeats` existed (as an earlier committed branch's
        // ingredient was) reads it as 0, at every level of a tree of means.
        fn forget(v: &mut serde_json::Value) {
            if let Some(object) = v.as_object_mut() {
                object.remove("outcome_repeats");
                object.values_mut().for_each(forget);
            } else if let Some(array) = v.as_array_mut() {
                array.iter_mut().for_each(forget);
            }
        }
        let mut tree = m.clone();
        tree.ingredients = vec![m.clone(), Metrics { ingredients: vec![m.clone()], ..m.clone() }];
        let mut old = serde_json::to_value(&tree).unwrap();
        forget(&mut old);
        assert!(!old.to_string().contains("outcome_repeats"));
        let read: Metrics = serde_json::from_value(old).unwrap();
        let before = DataMix { outcome_repeats: 0, ..t2e };
        assert_eq!(read.mix, before);
        assert_eq!(read.ingredients[0].mix, before);
        assert_eq!(read.ingredients[1].ingredients[0].mix, before);
    }
}
