//! The BERT encoder of all-MiniLM-L6-v2, layer by layer, so callers can run a range of layers
//! (the sentiment branch re-runs only the top ones on the shared lower layers' output).
//!
//! Same maths as `candle_transformers::models::bert` (whose `Config` reads the model's own
//! `config.json`), with the query/key/value projections fused into one matmul.

use candle_core::{DType, Module, Result, Tensor, D};
use candle_nn::{embedding, layer_norm, linear, Embedding, LayerNorm, Linear, VarBuilder};
pub use candle_transformers::models::bert::Config;
use candle_transformers::models::bert::HiddenAct;

use super::kernels;

/// Token, position and token-type embeddings, summed and normalised.
struct Embeddings {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    norm: LayerNorm,
}

impl Embeddings {
    fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        Ok(Self {
            word: embedding(cfg.vocab_size, cfg.hidden_size, vb.pp("word_embeddings"))?,
            position: embedding(cfg.max_position_embeddings, cfg.hidden_size, vb.pp("position_embeddings"))?,
            token_type: embedding(cfg.type_vocab_size, cfg.hidden_size, vb.pp("token_type_embeddings"))?,
            norm: layer_norm(cfg.hidden_size, cfg.layer_norm_eps, vb.pp("LayerNorm"))?,
        })
    }

    fn forward(&self, input_ids: &Tensor) -> Result<Tensor> {
        let (_, seq_len) = input_ids.dims2()?;
        let positions = Tensor::arange(0u32, seq_len as u32, input_ids.device())?;
        // Single-sentence inputs: every token type is 0, so add row 0 of the table once.
        let token_type = self.token_type.embeddings().get(0)?;
        let xs = self
            .word
            .forward(input_ids)?
            .broadcast_add(&self.position.forward(&positions)?)?
            .broadcast_add(&token_type)?;
        self.norm.forward(&xs)
    }
}

/// One transformer layer: self-attention and a feed-forward block, each with a residual and
/// post-LayerNorm, as in BERT.
pub struct Layer {
    qkv: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    /// The intermediate bias as a plain slice, for the fused bias + GELU kernel.
    intermediate_bias: Option<Vec<f32>>,
    output: Linear,
    output_norm: LayerNorm,
    heads: usize,
    head_dim: usize,
    act: HiddenAct,
}

impl Layer {
    pub fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let h = cfg.hidden_size;
        let att = vb.pp("attention");
        let this = att.pp("self");
        // Verbatim's own (trained) layers store the fused projection; the published model has
        // three, fused here once.
        let qkv = if this.contains_tensor("qkv.weight") {
            linear(h, 3 * h, this.pp("qkv"))?
        } else {
            let weights = ["query", "key", "value"].iter().map(|name| this.pp(name).get((h, h), "weight")).collect::<Result<Vec<_>>>()?;
            let biases = ["query", "key", "value"].iter().map(|name| this.pp(name).get(h, "bias")).collect::<Result<Vec<_>>>()?;
            Linear::new(Tensor::cat(&weights, 0)?, Some(Tensor::cat(&biases, 0)?))
        };
        let intermediate = linear(h, cfg.intermediate_size, vb.pp("intermediate").pp("dense"))?;
        let intermediate_bias = intermediate.bias().map(|b| b.to_vec1::<f32>()).transpose()?;
        Ok(Self {
            qkv,
            attention_out: linear(h, h, att.pp("output").pp("dense"))?,
            attention_norm: layer_norm(h, cfg.layer_norm_eps, att.pp("output").pp("LayerNorm"))?,
            intermediate,
            intermediate_bias,
            output: linear(cfg.intermediate_size, h, vb.pp("output").pp("dense"))?,
            output_norm: layer_norm(h, cfg.layer_norm_eps, vb.pp("output").pp("LayerNorm"))?,
            heads: cfg.num_attention_heads,
            head_dim: h / cfg.num_attention_heads,
            act: cfg.hidden_act,
        })
    }

    /// `xs`: (batch, seq, hidden); `mask_bias`: (batch, 1, 1, seq), 0 for tokens, −∞-like for padding.
    pub fn forward(&self, xs: &Tensor, mask_bias: &Tensor) -> Result<Tensor> {
        let (b, s, h) = xs.dims3()?;
        let qkv = self.qkv.forward(xs)?.reshape((b, s, 3, self.heads, self.head_dim))?;
        let qkv = qkv.permute((2, 0, 3, 1, 4))?; // (3, b, heads, s, head_dim)
        let q = (qkv.get(0)?.contiguous()? * (1.0 / (self.head_dim as f64).sqrt()))?;
        let k = qkv.get(1)?;
        let v = qkv.get(2)?.contiguous()?;
        let key_bias = mask_bias.flatten_all()?.to_vec1::<f32>()?;
        let context = kernels::attention(&q, &k.t()?.contiguous()?, &v, &key_bias)?.transpose(1, 2)?.reshape((b, s, h))?;
        let attended = self.attention_norm.forward(&(self.attention_out.forward(&context)? + xs)?)?;
        let hidden = match (self.act, &self.intermediate_bias) {
            // The fused kernel: one pass for bias + exact GELU instead of two plus a scalar erf.
            (HiddenAct::Gelu, Some(bias)) => {
                let flat = attended.reshape((b * s, h))?.matmul(&self.intermediate.weight().t()?)?;
                kernels::bias_gelu(&flat, bias)?.reshape((b, s, ()))?
            }
            (HiddenAct::Gelu, None) => self.intermediate.forward(&attended)?.gelu_erf()?,
            (HiddenAct::GeluApproximate, _) => self.intermediate.forward(&attended)?.gelu()?,
            (HiddenAct::Relu, _) => self.intermediate.forward(&attended)?.relu()?,
        };
        self.output_norm.forward(&(self.output.forward(&hidden)? + attended)?)
    }
}

impl Layer {
    /// The layer's weights under the names [`Layer::load`] reads (with the fused `qkv`): to
    /// initialise a trainable copy, or to save one.
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        let mut linear = |name: &str, l: &Linear| {
            out.push((format!("{name}.weight"), l.weight().clone()));
            if let Some(b) = l.bias() {
                out.push((format!("{name}.bias"), b.clone()));
            }
        };
        linear("attention.self.qkv", &self.qkv);
        linear("attention.output.dense", &self.attention_out);
        linear("intermediate.dense", &self.intermediate);
        linear("output.dense", &self.output);
        for (name, norm) in [("attention.output.LayerNorm", &self.attention_norm), ("output.LayerNorm", &self.output_norm)] {
            out.push((format!("{name}.weight"), norm.weight().clone()));
            if let Some(b) = norm.bias() {
                out.push((format!("{name}.bias"), b.clone()));
            }
        }
        out
    }

    /// The same maths as [`Layer::forward`] from differentiable candle ops only (generic softmax,
    /// LayerNorm from primitives, unfused GELU), so gradients reach the weights when they are
    /// `Var`s: the path the sentiment branch is trained on. Slower; inference uses `forward`.
    pub fn forward_train(&self, xs: &Tensor, mask_bias: &Tensor) -> Result<Tensor> {
        let (b, s, h) = xs.dims3()?;
        let qkv = self.qkv.forward(xs)?.reshape((b, s, 3, self.heads, self.head_dim))?;
        let qkv = qkv.permute((2, 0, 3, 1, 4))?;
        let q = (qkv.get(0)?.contiguous()? * (1.0 / (self.head_dim as f64).sqrt()))?;
        let k = qkv.get(1)?.contiguous()?;
        let v = qkv.get(2)?.contiguous()?;
        let scores = q.matmul(&k.t()?)?.broadcast_add(mask_bias)?;
        let probs = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let context = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, s, h))?;
        let attended = layer_norm_train(&(self.attention_out.forward(&context)? + xs)?, &self.attention_norm)?;
        let hidden = match self.act {
            HiddenAct::GeluApproximate => self.intermediate.forward(&attended)?.gelu()?,
            HiddenAct::Relu => self.intermediate.forward(&attended)?.relu()?,
            HiddenAct::Gelu => self.intermediate.forward(&attended)?.gelu_erf()?,
        };
        layer_norm_train(&(self.output.forward(&hidden)? + attended)?, &self.output_norm)
    }
}

/// LayerNorm over the last dimension from primitive (differentiable) ops.
fn layer_norm_train(x: &Tensor, norm: &LayerNorm) -> Result<Tensor> {
    let eps = norm.eps();
    let h = x.dim(D::Minus1)? as f64;
    let mean = (x.sum_keepdim(D::Minus1)? / h)?;
    let centred = x.broadcast_sub(&mean)?;
    let var = (centred.sqr()?.sum_keepdim(D::Minus1)? / h)?;
    let normed = centred.broadcast_div(&(var + eps)?.sqrt()?)?;
    let out = normed.broadcast_mul(norm.weight())?;
    match norm.bias() {
        Some(bias) => out.broadcast_add(bias),
        None => Ok(out),
    }
}

/// The whole encoder: embeddings and `num_hidden_layers` layers.
pub struct Bert {
    embeddings: Embeddings,
    pub layers: Vec<Layer>,
}

impl Bert {
    pub fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") { vb.pp("bert") } else { vb };
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| Layer::load(vb.pp(format!("encoder.layer.{i}")), cfg))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { embeddings: Embeddings::load(vb.pp("embeddings"), cfg)?, layers })
    }

    /// Token embeddings, the input of layer 0.
    pub fn embed_tokens(&self, input_ids: &Tensor) -> Result<Tensor> {
        self.embeddings.forward(input_ids)
    }

    /// Runs layers `range` on `xs`.
    pub fn run_layers(&self, xs: &Tensor, mask_bias: &Tensor, range: std::ops::Range<usize>) -> Result<Tensor> {
        let mut xs = xs.clone();
        for layer in &self.layers[range] {
            xs = layer.forward(&xs, mask_bias)?;
        }
        Ok(xs)
    }
}

/// Turns a (batch, seq) 0/1 attention mask into the additive bias attention expects.
pub fn mask_bias(mask: &Tensor, dtype: DType) -> Result<Tensor> {
    let (b, s) = mask.dims2()?;
    let mask = mask.to_dtype(dtype)?;
    // (1 − mask) × most-negative: padded keys get no attention weight, as in Hugging Face BERT.
    (mask.ones_like()? - mask)?.affine(f32::MIN as f64, 0.0)?.reshape((b, 1, 1, s))
}

/// Attention-mask-weighted mean of the token vectors, then L2 normalisation: sentence-transformers'
/// `Pooling(mean)` + `Normalize`. `hidden`: (batch, seq, hidden); `mask`: (batch, seq) as f32.
pub fn mean_pool_normalized(hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let mask = mask.unsqueeze(D::Minus1)?;
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
    let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
    let mean = summed.broadcast_div(&counts)?;
    let norm = mean.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
    mean.broadcast_div(&norm)
}

/// A tiny model for unit tests: a config and random layers in the published model's layout.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use candle_core::Device;

    pub(crate) fn tiny_config() -> Config {
        serde_json::from_value(serde_json::json!({
            "vocab_size": 50, "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2,
            "intermediate_size": 16, "hidden_act": "gelu", "max_position_embeddings": 16,
            "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_dropout_prob": 0.1,
            "initializer_range": 0.02, "pad_token_id": 0
        }))
        .unwrap()
    }

    /// A layer as the published model stores it (separate query/key/value), random weights.
    pub(crate) fn published_layer(cfg: &Config) -> Layer {
        let h = cfg.hidden_size;
        let i = cfg.intermediate_size;
        let mut tensors = std::collections::HashMap::new();
        let mut put = |name: &str, shape: &[usize]| {
            tensors.insert(name.to_string(), Tensor::randn(0f32, 0.5, shape, &Device::Cpu).unwrap());
        };
        for p in ["query", "key", "value"] {
            put(&format!("attention.self.{p}.weight"), &[h, h]);
            put(&format!("attention.self.{p}.bias"), &[h]);
        }
        put("attention.output.dense.weight", &[h, h]);
        put("attention.output.dense.bias", &[h]);
        put("intermediate.dense.weight", &[i, h]);
        put("intermediate.dense.bias", &[i]);
        put("output.dense.weight", &[h, i]);
        put("output.dense.bias", &[h]);
        for n in ["attention.output.LayerNorm", "output.LayerNorm"] {
            put(&format!("{n}.weight"), &[h]);
            put(&format!("{n}.bias"), &[h]);
        }
        Layer::load(VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu), cfg).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{published_layer, tiny_config};
    use super::*;
    use candle_core::{Device, Var};
    use candle_nn::{Optimizer, VarMap};

    /// A trainable copy: every weight a `Var` initialised from `layer`.
    fn trainable_copy(layer: &Layer, cfg: &Config, varmap: &VarMap) -> Layer {
        {
            let mut data = varmap.data().lock().unwrap();
            for (name, t) in layer.named_tensors() {
                data.insert(format!("layer.{name}"), Var::from_tensor(&t).unwrap());
            }
        }
        Layer::load(VarBuilder::from_varmap(varmap, DType::F32, &Device::Cpu).pp("layer"), cfg).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap()
    }

    #[test]
    fn the_training_path_computes_what_inference_computes() {
        let cfg = tiny_config();
        let layer = published_layer(&cfg);
        let varmap = VarMap::new();
        let copy = trainable_copy(&layer, &cfg, &varmap);
        let xs = Tensor::randn(0f32, 1.0, (3, 5, 8), &Device::Cpu).unwrap();
        let mask = Tensor::new(&[[1f32, 1., 1., 1., 1.], [1., 1., 1., 0., 0.], [1., 0., 0., 0., 0.]], &Device::Cpu).unwrap();
        let bias = mask_bias(&mask, DType::F32).unwrap();
        let fast = layer.forward(&xs, &bias).unwrap();
        assert!(fast.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap() > 0.1, "a non-trivial output");
        assert!(max_diff(&fast, &copy.forward_train(&xs, &bias).unwrap()) < 1e-4);
        assert!(max_diff(&fast, &copy.forward(&xs, &bias).unwrap()) < 1e-5, "the fused-name copy loads the same layer");
    }

    #[test]
    fn training_updates_the_layer_weights_and_lowers_the_loss() {
        let cfg = tiny_config();
        let varmap = VarMap::new();
        let layer = trainable_copy(&published_layer(&cfg), &cfg, &varmap);
        let head = candle_nn::linear(8, 2, VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu).pp("head")).unwrap();
        // Two classes that differ in their first token's vector.
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for i in 0..16u32 {
            let class = i % 2;
            for t in 0..4u32 {
                for d in 0..8u32 {
                    let signal = if t == 0 && d == 0 { if class == 0 { 2.0 } else { -2.0 } } else { 0.0 };
                    rows.push(signal + 0.1 * ((i * 7 + t * 3 + d) % 5) as f32);
                }
            }
            labels.push(class);
        }
        let xs = Tensor::from_vec(rows, (16, 4, 8), &Device::Cpu).unwrap();
        let labels = Tensor::new(labels.as_slice(), &Device::Cpu).unwrap();
        let bias = mask_bias(&Tensor::ones((16, 4), DType::F32, &Device::Cpu).unwrap(), DType::F32).unwrap();
        let qkv_before = layer.qkv.weight().copy().unwrap();
        let mut opt = candle_nn::AdamW::new(varmap.all_vars(), candle_nn::ParamsAdamW { lr: 1e-2, ..Default::default() }).unwrap();
        let loss_of = || {
            let hidden = layer.forward_train(&xs, &bias).unwrap().mean(1).unwrap();
            candle_nn::loss::cross_entropy(&head.forward(&hidden).unwrap(), &labels).unwrap()
        };
        let first = loss_of().to_scalar::<f32>().unwrap();
        for _ in 0..60 {
            opt.backward_step(&loss_of()).unwrap();
        }
        let last = loss_of().to_scalar::<f32>().unwrap();
        assert!(last < 0.5 * first, "loss {first} → {last}");
        assert!(max_diff(&qkv_before, layer.qkv.weight()) > 1e-3, "the attention projection was trained");
    }
}
