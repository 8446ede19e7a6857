//! `verbatim.v1.Verbatim`: convert the request, call the library, convert the reply.

use tonic::{Request, Response, Status};

use super::pb;
use super::AppState;
use crate::analyze::analyze_texts;
use crate::model::MODEL_NAME;

pub struct VerbatimService {
    state: AppState,
}

impl VerbatimService {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl pb::verbatim_server::Verbatim for VerbatimService {
    async fn analyze_text(&self, request: Request<pb::AnalyzeTextRequest>) -> Result<Response<pb::AnalyzeTextResponse>, Status> {
        let request = request.into_inner();
        let analyses = analyze_texts(&self.state.infer, &request.texts).await?;
        let results = analyses
            .into_iter()
            .map(|a| pb::TextAnalysis {
                truncated: a.truncated,
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
                    })
                    .collect(),
            })
            .collect();
        Ok(Response::new(pb::AnalyzeTextResponse { results, model: MODEL_NAME.to_string() }))
    }
}
