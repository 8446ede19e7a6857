//! JSON-lines batch files for the command line: each input line is an object with a `text` field;
//! each output line is that object with fields added. Bad lines are reported and skipped.

use std::io::{BufRead, Write};

use serde_json::{json, Map, Value};

use crate::model::{Encoder, ModelError};
use crate::analyze::analyze_with;
use crate::sentiment::Sentiment;

/// Lines read and embedded together.
const CHUNK_LINES: usize = 256;

/// What happened to an input file.
#[derive(Debug, Default)]
pub struct JsonlSummary {
    pub written: usize,
    /// (1-based line number, reason) for each skipped line.
    pub rejected: Vec<(usize, String)>,
}

/// Adds `"embedding": [384 floats]` (the whole text, not split) to each line.
pub fn embed_jsonl(encoder: &Encoder, input: impl BufRead, output: impl Write) -> Result<JsonlSummary, JsonlError> {
    annotate_jsonl(input, output, |chunk| {
        let texts: Vec<&str> = chunk.iter().map(|(_, t)| t.as_str()).collect();
        let embeddings = encoder.embed(&texts)?;
        for ((object, _), embedding) in chunk.iter_mut().zip(embeddings) {
            object.insert("embedding".into(), Value::from(embedding.vector));
        }
        Ok(())
    })
}

/// Adds `"sentiment": {label, score, probabilities, mixed}` (the verbatim's) and `"segments":
/// [{text, label, score, probabilities}]` (each sentence's) to each line; an empty text gets
/// `"sentiment": null` and no segments. A segment in another language gets `"language"` (its ISO
/// 639-3 code) and null sentiment fields, and does not count towards the verbatim's.
pub fn sentiment_jsonl(encoder: &Encoder, input: impl BufRead, output: impl Write) -> Result<JsonlSummary, JsonlError> {
    if !encoder.has_sentiment() {
        return Err(JsonlError::NoSentiment);
    }
    annotate_jsonl(input, output, |chunk| {
        let texts: Vec<&str> = chunk.iter().map(|(_, t)| t.as_str()).collect();
        let read = analyze_with(encoder, &texts)?;
        for ((object, _), v) in chunk.iter_mut().zip(read) {
            let out: Vec<Value> = v
                .segments
                .iter()
                .map(|seg| match (seg.sentiment, seg.language) {
                    (Some(s), _) => json!({"text": seg.text, "label": s.label().as_str(), "score": s.score(), "probabilities": probabilities(&s)}),
                    // Not English: the branch cannot read it, so no sentiment rather than noise.
                    (None, language) => json!({"text": seg.text, "language": language, "label": null, "score": null, "probabilities": null}),
                })
                .collect();
            let overall = v.sentiment.map(|o| {
                json!({"label": o.sentiment.label().as_str(), "score": o.sentiment.score(), "probabilities": probabilities(&o.sentiment), "mixed": o.mixed})
            });
            object.insert("sentiment".into(), overall.unwrap_or(Value::Null));
            object.insert("segments".into(), Value::Array(out));
        }
        Ok(())
    })
}

fn probabilities(s: &Sentiment) -> Value {
    let [negative, neutral, positive] = s.probabilities;
    json!({"negative": negative, "neutral": neutral, "positive": positive})
}

/// Reads `input` in chunks of lines, lets `annotate` add fields to each chunk's objects, writes
/// them; bad lines are counted and skipped.
fn annotate_jsonl(
    input: impl BufRead,
    mut output: impl Write,
    mut annotate: impl FnMut(&mut [(Map<String, Value>, String)]) -> Result<(), JsonlError>,
) -> Result<JsonlSummary, JsonlError> {
    let mut summary = JsonlSummary::default();
    let mut chunk: Vec<(Map<String, Value>, String)> = Vec::with_capacity(CHUNK_LINES);
    let mut flush = |chunk: &mut Vec<(Map<String, Value>, String)>, summary: &mut JsonlSummary| -> Result<(), JsonlError> {
        annotate(chunk)?;
        for (object, _) in chunk.drain(..) {
            serde_json::to_writer(&mut output, &object).map_err(std::io::Error::from)?;
            output.write_all(b"\n")?;
            summary.written += 1;
        }
        Ok(())
    };
    for (number, line) in read_lines(input) {
        match line.and_then(|l| parse_line(&l)) {
            Ok(Some(parsed)) => chunk.push(parsed),
            Ok(None) => {}
            Err(reason) => summary.rejected.push((number, reason)),
        }
        if chunk.len() >= CHUNK_LINES {
            flush(&mut chunk, &mut summary)?;
        }
    }
    flush(&mut chunk, &mut summary)?;
    output.flush()?;
    Ok(summary)
}

#[derive(Debug, thiserror::Error)]
pub enum JsonlError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("no sentiment branch loaded: pass --sentiment-dir (default models/sentiment) pointing at a trained branch")]
    NoSentiment,
}

/// Raw lines with their 1-based numbers; a line that is not UTF-8 becomes an `Err` naming that,
/// so one bad byte costs one line, not the file.
pub fn read_lines(mut input: impl BufRead) -> impl Iterator<Item = (usize, Result<String, String>)> {
    let mut number = 0;
    std::iter::from_fn(move || {
        let mut buf = Vec::new();
        match input.read_until(b'\n', &mut buf) {
            Ok(0) => None,
            Ok(_) => {
                number += 1;
                let line = String::from_utf8(buf).map_err(|e| format!("not valid UTF-8 (byte {})", e.utf8_error().valid_up_to()));
                Some((number, line))
            }
            Err(e) => {
                number += 1;
                Some((number, Err(format!("cannot read: {e}"))))
            }
        }
    })
}

/// Parses one line into its object and its `text`; blank lines give `None`.
pub fn parse_line(line: &str) -> Result<Option<(Map<String, Value>, String)>, String> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(None);
    }
    let value: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(object) = value else {
        return Err("not a JSON object".into());
    };
    let text = match object.get("text") {
        Some(Value::String(t)) => t.clone(),
        Some(_) => return Err("field `text` is not a string".into()),
        None => return Err("missing field `text`".into()),
    };
    Ok(Some((object, text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_lines_are_named_and_do_not_stop_the_rest() {
        let input: &[u8] = b"{\"text\":\"ok\",\"id\":1}\n\xff\xfe\n\n[1]\n{\"id\":2}\n{\"text\":3}\nnot json\n";
        let lines: Vec<_> = read_lines(input).map(|(n, l)| (n, l.and_then(|l| parse_line(&l)))).collect();
        assert_eq!(lines.len(), 7);
        let (object, text) = lines[0].1.clone().unwrap().unwrap();
        assert_eq!((object["id"].as_i64(), text.as_str()), (Some(1), "ok"));
        assert!(lines[1].1.as_ref().unwrap_err().contains("UTF-8"));
        assert!(lines[2].1.as_ref().unwrap().is_none());
        assert!(lines[3].1.as_ref().unwrap_err().contains("object"));
        assert!(lines[4].1.as_ref().unwrap_err().contains("missing field `text`"));
        assert!(lines[5].1.as_ref().unwrap_err().contains("not a string"));
        assert!(lines[6].1.as_ref().unwrap_err().contains("not JSON"));
    }
}
