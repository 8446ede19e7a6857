//! Analysing verbatims without storing them: normalise, split into segments, embed each segment.
//! Shared by the gRPC `AnalyzeText` handler (through the inference queue), the command line and
//! the labelled evaluation (on an encoder of their own, [`analyze_with`]).

use crate::error::{Error, Result};
use crate::infer::Infer;
use crate::model::{Embedding, Encoder, ModelError};
use crate::sentiment::{self, Overall, Sentiment};
use crate::text::{split_verbatim, SplitText};

/// Most texts in one analysis request.
pub const MAX_TEXTS_PER_REQUEST: usize = 256;

/// One analysed text.
#[derive(Debug, Clone)]
pub struct TextAnalysis {
    pub segments: Vec<AnalyzedSegment>,
    pub truncated: bool,
    /// The segments' sentiment combined; `None` without segments or without the sentiment branch.
    pub sentiment: Option<Overall>,
}

#[derive(Debug, Clone)]
pub struct AnalyzedSegment {
    pub text: String,
    /// Byte range in the normalised text.
    pub start: usize,
    pub end: usize,
    pub tokens: usize,
    pub embedding: Vec<f32>,
    /// `None` without the sentiment branch, or for a segment in another language.
    pub sentiment: Option<Sentiment>,
    /// The ISO 639-3 code of the segment's language when it is clearly not English
    /// ([`crate::language::other_than_english`]); `None` for English.
    pub language: Option<&'static str>,
}

/// Checks the request-level limits shared by every entry point.
pub fn validate_texts(texts: &[String]) -> Result<()> {
    if texts.is_empty() {
        return Err(Error::invalid("texts", format!("at least one text is required (1–{MAX_TEXTS_PER_REQUEST} per request)")));
    }
    if texts.len() > MAX_TEXTS_PER_REQUEST {
        return Err(Error::invalid(
            "texts",
            format!("{} texts sent; at most {MAX_TEXTS_PER_REQUEST} per request", texts.len()),
        ));
    }
    Ok(())
}

/// Splits and embeds every text; every segment of every text goes to the encoder in one call so
/// they share micro-batches.
pub async fn analyze_texts(infer: &Infer, texts: &[String]) -> Result<Vec<TextAnalysis>> {
    validate_texts(texts)?;
    analyze_unchecked(infer, texts).await
}

/// [`analyze_texts`] without the request-size check, for callers with their own limits.
pub async fn analyze_unchecked(infer: &Infer, texts: &[String]) -> Result<Vec<TextAnalysis>> {
    let splits: Vec<_> = texts.iter().map(|t| split_verbatim(t)).collect();
    let segment_texts: Vec<String> = splits.iter().flat_map(|s| s.segment_sentences().map(String::from)).collect();
    let embeddings = infer.embed(segment_texts).await?;
    Ok(assemble(splits, embeddings))
}

/// [`analyze_unchecked`] on an encoder of the caller's own, without the inference queue: for the
/// command line and evaluation, which run outside the service.
pub fn analyze_with(encoder: &Encoder, texts: &[&str]) -> std::result::Result<Vec<TextAnalysis>, ModelError> {
    let splits: Vec<_> = texts.iter().map(|t| split_verbatim(t)).collect();
    let segment_texts: Vec<_> = splits.iter().flat_map(|s| s.segment_sentences()).collect();
    let embeddings = encoder.embed(&segment_texts)?;
    Ok(assemble(splits, embeddings))
}

/// Walks the embeddings of every segment of every text (in order) back to their texts, and
/// aggregates each text's sentiment from its segments'.
fn assemble(splits: Vec<SplitText>, embeddings: Vec<Embedding>) -> Vec<TextAnalysis> {
    let mut embeddings = embeddings.into_iter();
    splits
        .into_iter()
        .map(|split| {
            let texts: Vec<&str> = split.segment_texts().collect();
            let languages = crate::language::of_segments(&texts);
            let segments: Vec<AnalyzedSegment> = split
                .segments
                .iter()
                .zip(texts)
                .zip(languages)
                .map(|((r, text), language)| {
                    let e = embeddings.next().expect("one embedding per segment");
                    // The sentiment branch reads English; in another language its answer is noise.
                    AnalyzedSegment {
                        text: text.to_string(),
                        start: r.start,
                        end: r.end,
                        tokens: e.tokens,
                        embedding: e.vector,
                        sentiment: e.sentiment.filter(|_| language.is_none()),
                        language,
                    }
                })
                .collect();
            let scored: Vec<(Sentiment, usize)> = segments.iter().filter_map(|s| s.sentiment.map(|x| (x, s.tokens))).collect();
            TextAnalysis { truncated: split.truncated, sentiment: sentiment::aggregate(&scored), segments }
        })
        .collect()
}
