//! The one mapping from library errors to gRPC statuses.

use crate::error::Error;
use crate::infer::InferError;

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        match &e {
            Error::InvalidArgument { .. } => tonic::Status::invalid_argument(e.to_string()),
            Error::NotFound(_) => tonic::Status::not_found(e.to_string()),
            Error::Infer(InferError::Overloaded { .. }) => tonic::Status::resource_exhausted(e.to_string()),
            Error::Infer(InferError::Stopped) => tonic::Status::unavailable(e.to_string()),
            Error::Infer(InferError::Encoder(_)) | Error::Model(_) | Error::Store(_) | Error::Io(_) | Error::Internal(_) => {
                // The detail is for the operator's log, not the caller.
                tracing::error!(error = %e, "internal error");
                tonic::Status::internal("internal error; see the server log")
            }
        }
    }
}
