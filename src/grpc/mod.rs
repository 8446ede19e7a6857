//! The gRPC front end: generated code (`pb`), the `verbatim.v1.Verbatim` service, the standard
//! health and reflection services, and graceful shutdown. Handlers only validate, call the library,
//! and convert; [`status`] maps every library error to a gRPC status in one place.

mod report;
mod service;
mod status;
mod theme_segments;

use std::future::Future;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

use crate::auth::AuthMode;
use crate::ingest::Ingest;

pub use service::{AUTHORIZATION_HEADER, WORKSPACE_HEADER};

/// A request's optional time field: empty is `None`, else RFC 3339 or YYYY-MM-DD (seconds since
/// the epoch), and a bad value is an error naming `field`.
fn optional_time(field: &str, value: &str) -> Result<Option<i64>, crate::error::Error> {
    match value.trim() {
        "" => Ok(None),
        s => crate::ingest::parse_timestamp(s).map(Some).map_err(|m| crate::error::Error::invalid(field, m)),
    }
}

/// The protobuf survey type of a survey kind.
fn survey_type(kind: crate::survey::SurveyKind) -> pb::SurveyType {
    use crate::survey::SurveyKind;
    match kind {
        SurveyKind::Nps => pb::SurveyType::Nps,
        SurveyKind::Csat => pb::SurveyType::Csat,
        SurveyKind::Ces => pb::SurveyType::Ces,
    }
}

/// The survey kind of a protobuf `SurveyType` value; `None` for UNSPECIFIED and unknown values.
fn survey_kind(value: i32) -> Option<crate::survey::SurveyKind> {
    use crate::survey::SurveyKind;
    match pb::SurveyType::try_from(value).ok()? {
        pb::SurveyType::Nps => Some(SurveyKind::Nps),
        pb::SurveyType::Csat => Some(SurveyKind::Csat),
        pb::SurveyType::Ces => Some(SurveyKind::Ces),
        pb::SurveyType::Unspecified => None,
    }
}

/// Code generated from `proto/verbatim/v1/verbatim.proto` by `build.rs`.
pub mod pb {
    tonic::include_proto!("verbatim.v1");
    /// The encoded descriptors of the proto files, served by reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/verbatim_descriptor.bin"));
}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub ingest: Ingest,
    /// The workspace of calls without an `x-verbatim-workspace` header.
    pub default_workspace: String,
    /// Held while a recluster runs in this process (one at a time).
    pub recluster_lock: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// When calls need an API token (default: once the store holds one).
    pub auth: AuthMode,
    /// Every call counted and timed (served by `--metrics-listen`).
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// The report archive (`--report-dir`), whose reports an erasure must reach too.
    pub archive: Option<crate::report::archive::Archive>,
}

impl AppState {
    pub fn new(ingest: Ingest, default_workspace: String) -> Self {
        Self { ingest, default_workspace, recluster_lock: Default::default(), auth: AuthMode::default(), metrics: Default::default(), archive: None }
    }

    pub fn with_auth(self, auth: AuthMode) -> Self {
        Self { auth, ..self }
    }

    pub fn with_archive(self, archive: Option<crate::report::archive::Archive>) -> Self {
        Self { archive, ..self }
    }
}

/// Largest request accepted (a 1 MB verbatim fits; it is truncated, not refused).
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;

/// Serves until `shutdown` completes, then stops accepting calls and waits for in-flight ones.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<pb::verbatim_server::VerbatimServer<service::VerbatimService>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("the compiled descriptors are valid");
    let metrics = crate::metrics::MetricsLayer(std::sync::Arc::clone(&state.metrics));
    let verbatim = pb::verbatim_server::VerbatimServer::new(service::VerbatimService::new(state))
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
    tonic::transport::Server::builder()
        .layer(metrics)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(verbatim)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::survey::SurveyKind;

    #[test]
    fn survey_kinds_map_both_ways_and_unspecified_is_none() {
        for kind in SurveyKind::ALL {
            assert_eq!(survey_kind(survey_type(kind) as i32), Some(kind));
        }
        assert_eq!(survey_kind(pb::SurveyType::Unspecified as i32), None);
        assert_eq!(survey_kind(99), None);
    }
}
