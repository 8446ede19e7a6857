//! The crate's error type: each module's errors fold into it, and `grpc` maps it to a status once.

use crate::infer::InferError;
use crate::model::ModelError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller sent something Verbatim cannot accept; `field` names it.
    #[error("{field}: {message}")]
    InvalidArgument { field: String, message: String },
    /// Something the caller named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The call carries no valid API token; the message names the header.
    #[error("{0}")]
    Unauthenticated(String),
    /// The call's token may not do this (another workspace, a missing scope).
    #[error("{0}")]
    PermissionDenied(String),
    #[error(transparent)]
    Infer(#[from] InferError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidArgument { field: field.into(), message: message.into() }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
