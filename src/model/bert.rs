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
        let weights = ["query", "key", "value"]
            .iter()
            .map(|name| this.pp(name).get((h, h), "weight"))
            .collect::<Result<Vec<_>>>()?;
        let biases = ["query", "key", "value"]
            .iter()
            .map(|name| this.pp(name).get(h, "bias"))
            .collect::<Result<Vec<_>>>()?;
        let qkv = Linear::new(Tensor::cat(&weights, 0)?, Some(Tensor::cat(&biases, 0)?));
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
        let k = qkv.get(1)?.contiguous()?;
        let v = qkv.get(2)?.contiguous()?;
        let scores = q.matmul(&k.t()?)?.broadcast_add(mask_bias)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let context = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, s, h))?;
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
