//! The sentiment branch and its training: tuned copies of the encoder's top `k` layers plus a linear head
//! over their masked mean, trained with candle's autograd and AdamW on hidden states of the
//! shared lower layers, computed once per text (the expensive part of the encoder never runs in
//! the training loop).

use candle_core::{DType, Device, Module, Tensor, Var, D};
use candle_nn::{Linear, Optimizer, VarBuilder, VarMap};
use rand_xoshiro::rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256Plus;

use super::bert::{self, Layer};
use super::{Encoder, ModelError};
use crate::sentiment::data::{Example, Label};

#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Top encoder layers tuned for sentiment.
    pub layers: usize,
    pub epochs: usize,
    pub learning_rate: f64,
    pub batch: usize,
    /// Tokens read per text ([CLS] and [SEP] included).
    pub max_tokens: usize,
    pub seed: u64,
    /// Weight each class by the inverse of its share of the training set (the reviews are 77%
    /// positive; unweighted, the head learns to say "positive").
    pub balance: bool,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self { layers: 2, epochs: 2, learning_rate: 5e-5, batch: 32, max_tokens: 96, seed: 42, balance: true }
    }
}

/// Class weights n / (3 · count) for the labels present (1 when a class is absent).
pub fn class_weights(labels: &[u32]) -> [f32; 3] {
    let mut counts = [0usize; 3];
    labels.iter().for_each(|&l| counts[l as usize] += 1);
    counts.map(|c| if c == 0 { 1.0 } else { labels.len() as f32 / (3.0 * c as f32) })
}

/// Mean cross-entropy with per-class weights: −Σ w_y log p_y / Σ w_y.
fn weighted_cross_entropy(logits: &Tensor, labels: &Tensor, weights: &Tensor) -> candle_core::Result<Tensor> {
    let log_p = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let picked = log_p.gather(&labels.unsqueeze(1)?, 1)?.squeeze(1)?;
    let w = weights.index_select(labels, 0)?;
    (picked * &w)?.sum_all()?.neg()? / w.sum_all()?.to_scalar::<f32>()? as f64
}

/// Lower-layer hidden states of a set of examples.
pub struct Cached {
    /// Per example: token count and `tokens × hidden` values.
    pub states: Vec<(usize, Vec<f32>)>,
    pub labels: Vec<u32>,
    pub hidden: usize,
}

/// Runs the shared lower layers once over `examples`.
pub fn cache(encoder: &Encoder, examples: &[Example], opts: &TrainOptions) -> Result<Cached, ModelError> {
    let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    let shared = encoder.num_layers() - opts.layers.min(encoder.num_layers());
    let states = encoder.hidden_states(&texts, shared, opts.max_tokens)?;
    let hidden = states.iter().find(|s| s.0 > 0).map_or(0, |s| s.1.len() / s.0);
    Ok(Cached { states, labels: examples.iter().map(|e| e.label as u32).collect(), hidden })
}

/// The trainable branch: tuned layers and the head, all weights in one `VarMap`.
pub struct Branch {
    pub layers: Vec<Layer>,
    pub head: Linear,
    pub varmap: VarMap,
}

impl Branch {
    /// Copies of the encoder's top `k` layers and a fresh head (seeded).
    pub fn from_encoder(encoder: &Encoder, k: usize, seed: u64) -> candle_core::Result<Self> {
        let config = encoder.config();
        let varmap = VarMap::new();
        let top = encoder.top_layers(k);
        {
            let mut data = varmap.data().lock().expect("not poisoned");
            for (i, layer) in top.iter().enumerate() {
                for (name, t) in layer.named_tensors() {
                    data.insert(format!("layer.{i}.{name}"), Var::from_tensor(&t.copy()?)?);
                }
            }
            let h = config.hidden_size;
            let mut rng = Xoshiro256Plus::seed_from_u64(seed);
            let bound = (1.0 / h as f32).sqrt();
            let w: Vec<f32> = (0..3 * h).map(|_| (rng.next_u32() as f32 / u32::MAX as f32 * 2.0 - 1.0) * bound).collect();
            data.insert("head.weight".into(), Var::from_tensor(&Tensor::from_vec(w, (3, h), &Device::Cpu)?)?);
            data.insert("head.bias".into(), Var::from_tensor(&Tensor::zeros(3, DType::F32, &Device::Cpu)?)?);
        }
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let layers = (0..top.len()).map(|i| Layer::load(vb.pp(format!("layer.{i}")), config)).collect::<candle_core::Result<Vec<_>>>()?;
        let head = candle_nn::linear(config.hidden_size, 3, vb.pp("head"))?;
        Ok(Self { layers, head, varmap })
    }

    /// Class logits for a padded batch: tuned layers, masked mean of the tokens, the head.
    pub fn logits(&self, xs: &Tensor, mask: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let bias = bert::mask_bias(mask, DType::F32)?;
        let mut h = xs.clone();
        for layer in &self.layers {
            h = if train { layer.forward_train(&h, &bias)? } else { layer.forward(&h, &bias)? };
        }
        let m = mask.unsqueeze(D::Minus1)?;
        let pooled = h.broadcast_mul(&m)?.sum(1)?.broadcast_div(&m.sum(1)?)?;
        self.head.forward(&pooled)
    }
}

/// A padded batch of cached states: `(batch, longest, hidden)` and its mask.
fn batch(cached: &Cached, rows: &[usize]) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
    let longest = rows.iter().map(|&i| cached.states[i].0).max().unwrap_or(1).max(1);
    let h = cached.hidden;
    let mut xs = vec![0f32; rows.len() * longest * h];
    let mut mask = vec![0f32; rows.len() * longest];
    for (r, &i) in rows.iter().enumerate() {
        let (n, values) = &cached.states[i];
        xs[r * longest * h..r * longest * h + n * h].copy_from_slice(values);
        mask[r * longest..r * longest + n].iter_mut().for_each(|m| *m = 1.0);
    }
    let labels: Vec<u32> = rows.iter().map(|&i| cached.labels[i]).collect();
    Ok((
        Tensor::from_vec(xs, (rows.len(), longest, h), &Device::Cpu)?,
        Tensor::from_vec(mask, (rows.len(), longest), &Device::Cpu)?,
        Tensor::new(labels.as_slice(), &Device::Cpu)?,
    ))
}

/// Trains `branch` on `train`; `progress(epoch, step, steps, loss)` after each step.
pub fn train(branch: &Branch, train: &Cached, opts: &TrainOptions, progress: &mut dyn FnMut(usize, usize, usize, f32)) -> candle_core::Result<()> {
    let mut opt = candle_nn::AdamW::new(
        branch.varmap.all_vars(),
        candle_nn::ParamsAdamW { lr: opts.learning_rate, weight_decay: 0.01, ..Default::default() },
    )?;
    let weights = if opts.balance { class_weights(&train.labels) } else { [1.0; 3] };
    let weights = Tensor::new(&weights, &Device::Cpu)?;
    let mut rng = Xoshiro256Plus::seed_from_u64(opts.seed);
    let n = train.states.len();
    let steps = n.div_ceil(opts.batch);
    for epoch in 0..opts.epochs {
        // Shuffle, then sort within chunks of 50 batches by length so a batch pads little.
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
        }
        for chunk in order.chunks_mut(opts.batch * 50) {
            chunk.sort_by_key(|&i| train.states[i].0);
        }
        let mut batches: Vec<&[usize]> = order.chunks(opts.batch).collect();
        for i in (1..batches.len()).rev() {
            batches.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
        }
        for (step, rows) in batches.iter().enumerate() {
            let (xs, mask, labels) = batch(train, rows)?;
            let loss = weighted_cross_entropy(&branch.logits(&xs, &mask, true)?, &labels, &weights)?;
            opt.backward_step(&loss)?;
            progress(epoch, step + 1, steps, loss.to_scalar::<f32>()?);
        }
    }
    Ok(())
}

/// Class probabilities for every cached example.
pub fn predict(branch: &Branch, cached: &Cached) -> candle_core::Result<Vec<[f32; 3]>> {
    let mut order: Vec<usize> = (0..cached.states.len()).collect();
    order.sort_by_key(|&i| cached.states[i].0);
    let mut out = vec![[0f32; 3]; order.len()];
    for rows in order.chunks(64) {
        let (xs, mask, _) = batch(cached, rows)?;
        let probs = candle_nn::ops::softmax_last_dim(&branch.logits(&xs, &mask, false)?)?.to_vec2::<f32>()?;
        for (&i, p) in rows.iter().zip(probs) {
            out[i] = [p[0], p[1], p[2]];
        }
    }
    Ok(out)
}

/// Accuracy, macro-F1 over the classes present in the truth, and the confusion matrix
/// (`confusion[truth][predicted]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    pub accuracy: f64,
    pub macro_f1: f64,
    pub confusion: [[u32; 3]; 3],
}

pub fn score(truth: &[u32], predicted: &[u32]) -> Scores {
    let mut confusion = [[0u32; 3]; 3];
    for (&t, &p) in truth.iter().zip(predicted) {
        confusion[t as usize][p as usize] += 1;
    }
    let correct: u32 = (0..3).map(|c| confusion[c][c]).sum();
    let present: Vec<usize> = (0..3).filter(|&c| confusion[c].iter().sum::<u32>() > 0).collect();
    let f1 = |c: usize| {
        let tp = f64::from(confusion[c][c]);
        let predicted: f64 = (0..3).map(|t| f64::from(confusion[t][c])).sum();
        let actual: f64 = confusion[c].iter().map(|&x| f64::from(x)).sum();
        if tp == 0.0 {
            0.0
        } else {
            2.0 * tp / (predicted + actual)
        }
    };
    Scores {
        accuracy: f64::from(correct) / truth.len().max(1) as f64,
        macro_f1: present.iter().map(|&c| f1(c)).sum::<f64>() / present.len().max(1) as f64,
        confusion,
    }
}

/// Predicted classes: the most probable of three, or for a binary set the larger of negative
/// and positive.
pub fn decide(probs: &[[f32; 3]], binary: bool) -> Vec<u32> {
    probs
        .iter()
        .map(|p| {
            if binary {
                if p[2] >= p[0] { Label::Positive as u32 } else { Label::Negative as u32 }
            } else {
                (0..3).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap_or(1) as u32
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_match_a_hand_computed_case() {
        // truth: 2 neg, 2 neu, 2 pos; one neutral called positive, one negative called neutral.
        let truth = [0, 0, 1, 1, 2, 2];
        let predicted = [0, 1, 1, 2, 2, 2];
        let s = score(&truth, &predicted);
        assert!((s.accuracy - 4.0 / 6.0).abs() < 1e-12);
        // F1: neg 2·1/(1+2) = 0.667, neu 2·1/(2+2) = 0.5, pos 2·2/(3+2) = 0.8.
        assert!((s.macro_f1 - (2.0 / 3.0 + 0.5 + 0.8) / 3.0).abs() < 1e-12, "{}", s.macro_f1);
        assert_eq!(s.confusion, [[1, 1, 0], [0, 1, 1], [0, 0, 2]]);
    }

    #[test]
    fn class_weights_balance_the_classes_and_the_loss_uses_them() {
        assert_eq!(class_weights(&[2, 2, 2, 0]), [4.0 / 3.0, 1.0, 4.0 / 9.0]);
        let logits = Tensor::new(&[[2f32, 0.0, 0.0], [0.0, 0.0, 2.0]], &Device::Cpu).unwrap();
        let labels = Tensor::new(&[0u32, 1], &Device::Cpu).unwrap();
        let even = weighted_cross_entropy(&logits, &labels, &Tensor::new(&[1f32, 1.0, 1.0], &Device::Cpu).unwrap()).unwrap();
        let plain = candle_nn::loss::cross_entropy(&logits, &labels).unwrap();
        assert!((even.to_scalar::<f32>().unwrap() - plain.to_scalar::<f32>().unwrap()).abs() < 1e-6);
        // Weighting the (badly predicted) second example up raises the loss.
        let skewed = weighted_cross_entropy(&logits, &labels, &Tensor::new(&[1f32, 3.0, 1.0], &Device::Cpu).unwrap()).unwrap();
        assert!(skewed.to_scalar::<f32>().unwrap() > plain.to_scalar::<f32>().unwrap());
    }

    #[test]
    fn binary_decisions_ignore_neutral() {
        assert_eq!(decide(&[[0.3, 0.5, 0.2], [0.1, 0.8, 0.1001]], true), [0, 2]);
        assert_eq!(decide(&[[0.3, 0.5, 0.2]], false), [1]);
    }
}
