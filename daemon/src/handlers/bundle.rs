//! `bundle.export` and `bundle.import` on the document owner's thread: decode, call
//! [`hearth_core::ops::bundle`], encode. The owner makes a bundle only after its batch
//! has committed, so it never carries a change that could still be rolled back.

use hearth_core::doc::Docs;
use hearth_core::model::Millis;
use hearth_core::ops::bundle::{self, BundleOpError};
use serde_json::Value;

use super::Outcome;
use hearth_api::{ApiError, ErrorCode};

pub use hearth_core::ops::bundle::ExportContext;

/// The control API's view of a bundle refusal. Every one leaves the documents as they
/// were, which the hints say.
fn bundle_error(e: BundleOpError) -> ApiError {
    let code = match e {
        _ if e.is_internal() => ErrorCode::Internal,
        BundleOpError::NoPartnerDevice => ErrorCode::NotFound,
        _ => ErrorCode::Invalid,
    };
    ApiError::new(code, e.to_string(), e.hint())
}

/// Seals the household changes the partner's devices lack (all of them with `all`).
pub fn export(
    docs: &Docs,
    ctx: &ExportContext<'_>,
    all: bool,
    now: Millis,
) -> Result<Value, ApiError> {
    let exported = bundle::export(docs, ctx, all, now).map_err(bundle_error)?;
    hearth_api::encode_answer(&exported)
}

/// Checks a bundle and merges its household changes, all or nothing.
pub fn import(
    docs: &mut Docs,
    identity: &age::x25519::Identity,
    me_device: &str,
    encoded: &str,
) -> Result<Outcome, ApiError> {
    let written = bundle::import(docs, identity, me_device, encoded).map_err(bundle_error)?;
    Outcome::of(&written.record, written.touched)
}
