//! The Automerge documents and the typed API over them.
//!
//! A device holds two documents: the household document, which every device on the
//! roster shares, and the private document of the person who owns the device, which only
//! that person's devices share. Both have the same layout:
//!
//! ```text
//! ROOT { schema: 1, people: {uuid: {..}}, devices: {id: {..}}, checkins: {uuid: {..}},
//!        reflections, ledger, done, acks, handoffs, moments }
//! ```
//!
//! Records live in maps keyed by UUID, so concurrent inserts never collide. Each record is
//! a map of fields written one by one, so concurrent edits to different fields of the same
//! record both survive, and edits to the same field resolve by Automerge's deterministic
//! rule. Text that both partners edit (`title`, `good_enough`) is an Automerge text object
//! and merges character by character.
//!
//! **Why a genesis change:** the collection maps must exist before anything is written,
//! but if two devices each created `checkins` on their own, Automerge would keep one of the
//! two maps and hide the other's records. So every document starts with the same
//! deterministic change (fixed actor, fixed time), which has the same hash everywhere and
//! merges as one.
//!
//! Writes touch only the record they change. Reads go record by record: a query filters on
//! one or two scalar fields read in place and builds only the records it returns.
//!
//! This module does no IO and reads no clock: commit times come in as arguments.

mod admit;
mod codec;
mod docs;
mod reveal;
pub use codec::*;
pub use docs::*;
pub(crate) use reveal::{key_opens, split_sealed};
pub use reveal::{
    Sealable, SealedEntry, WaitingForTheirs, KEY_TAG, SEALED_TAG, WAITING_NOTICE_AFTER,
};

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests;
