//! Sentence-level sentiment (negative / neutral / positive), trained here on the encoder Verbatim
//! runs. Here: the training data ([`data`]). The branch itself and its trainer live with the
//! encoder in [`crate::model::sentiment`] (only `model` knows candle).

pub mod data;
pub mod train;
