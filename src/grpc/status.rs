//! The one mapping from library errors to gRPC statuses.

use crate::error::Error;
use crate::infer::InferError;

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        match &e {
            Error::InvalidArgument { .. } => tonic::Status::invalid_argument(e.to_string()),
            Error::NotFound(_) => tonic::Status::not_found(e.to_string()),
            Error::Unauthenticated(_) => tonic::Status::unauthenticated(e.to_string()),
            Error::PermissionDenied(_) => tonic::Status::permission_denied(e.to_string()),
            Error::Infer(InferError::Overloaded { .. }) => tonic::Status::resource_exhausted(e.to_string()),
            Error::Infer(InferError::Stopped) => tonic::Status::unavailable(e.to_string()),
            Error::Store(s) if s.is_unavailable() => {
                tracing::warn!(error = %e, "database unavailable");
                tonic::Status::unavailable("the database is unavailable; retry later")
            }
            Error::Infer(InferError::Encoder(_)) | Error::Model(_) | Error::Store(_) | Error::Io(_) | Error::Internal(_) => {
                // The detail is for the operator's log, not the caller.
                tracing::error!(error = %e, "internal error");
                tonic::Status::internal("internal error; see the server log")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    #[test]
    fn an_unreachable_database_is_unavailable_a_corrupt_one_internal() {
        let down = Error::Store(StoreError::Open { path: "postgres://v:***@db/v".into(), detail: "connection refused".into() });
        let status = tonic::Status::from(down);
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert!(!status.message().contains("db/v"), "the caller is not told where the database is: {}", status.message());
        assert_eq!(tonic::Status::from(Error::Store(StoreError::Corrupt("survey \"X\"".into()))).code(), tonic::Code::Internal);
    }
}
