//! Sentence-level sentiment (negative / neutral / positive), trained here on the encoder Verbatim
//! runs. So far: the training data ([`data`]). The branch itself (tuned copies of the top encoder
//! layers plus a head, sharing the lower layers with the embedding pass) builds on
//! [`crate::model::bert::Layer::forward_train`].

pub mod data;
pub mod train;
