//! Device identity: the [`DeviceId`] derived from a device's Ed25519 public key.
//!
//! This module owns how a device id is computed, written and read back. It does not
//! generate or store keys (the daemon does), and it never sees private key material:
//! a device id is a hash of the *public* key only, so it can be shown and logged.
//!
//! A device id is the SHA-256 of the 32-byte public key, written in RFC 4648 base32
//! without padding (52 characters). People compare ids by eye, so [`fmt::Display`]
//! splits the full id into dash-separated groups of four, and [`DeviceId::short`]
//! gives the first few groups for lists. Parsing accepts either the grouped or the
//! unbroken form, in any case; serde always uses the unbroken canonical form.

use std::fmt;
use std::str::FromStr;

use data_encoding::BASE32_NOPAD;
use ring::digest;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Number of base32 characters in a canonical device id (256 bits / 5, rounded up).
const ENCODED_LEN: usize = 52;
/// Characters per group in the human-readable form.
const GROUP_LEN: usize = 4;
/// Groups shown by [`DeviceId::short`]: 60 bits, enough to tell a household's devices
/// apart at a glance while the full form stays available for careful comparison.
const SHORT_GROUPS: usize = 3;

/// The stable identifier of one device: SHA-256 of its Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceId([u8; 32]);

impl DeviceId {
    /// Derives the id of the device whose Ed25519 public key is `public_key`.
    pub fn from_public_key(public_key: &[u8; 32]) -> Self {
        let hash = digest::digest(&digest::SHA256, public_key);
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(hash.as_ref());
        Self(bytes)
    }

    /// The raw 32-byte hash.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The canonical unbroken form: 52 upper-case base32 characters.
    ///
    /// This is the form used on the wire (as a sync peer id), in files and in JSON.
    pub fn to_canonical(&self) -> String {
        BASE32_NOPAD.encode(&self.0)
    }

    /// The first groups of the human-readable form, e.g. `ABCD-EFGH-IJKL`, for lists
    /// where the full id would be noise.
    pub fn short(&self) -> String {
        grouped(&self.to_canonical(), SHORT_GROUPS)
    }
}

/// Splits `canonical` into dash-separated groups, keeping at most `max_groups`.
fn grouped(canonical: &str, max_groups: usize) -> String {
    canonical
        .as_bytes()
        .chunks(GROUP_LEN)
        .take(max_groups)
        // Base32 output is ASCII, so every chunk is valid UTF-8.
        .map(|chunk| String::from_utf8_lossy(chunk))
        .collect::<Vec<_>>()
        .join("-")
}

impl fmt::Display for DeviceId {
    /// Writes the full id in groups of four: `ABCD-EFGH-...-WXYZ`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&grouped(&self.to_canonical(), usize::MAX))
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId({})", self.short())
    }
}

/// Why a string could not be read as a [`DeviceId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The id has the wrong number of characters once dashes and spaces are removed.
    #[error(
        "a device id has {ENCODED_LEN} letters and digits (dashes optional), but this one has \
         {found}; copy the full id from `hearth devices` on the device itself"
    )]
    WrongLength {
        /// How many base32 characters were found.
        found: usize,
    },
    /// The id contains characters outside the base32 alphabet, or its last character
    /// carries bits that a real id never has.
    #[error(
        "this is not a device id: only the letters A-Z and digits 2-7 can appear; check for \
         a mistyped 0/O or 1/I and copy it again from `hearth devices`"
    )]
    InvalidCharacters,
}

impl FromStr for DeviceId {
    type Err = IdentityError;

    /// Parses the grouped or unbroken form, ignoring case, dashes and whitespace.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let cleaned: String = input
            .chars()
            .filter(|c| *c != '-' && !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let found = cleaned.chars().count();
        if found != ENCODED_LEN {
            return Err(IdentityError::WrongLength { found });
        }
        let decoded = BASE32_NOPAD
            .decode(cleaned.as_bytes())
            .map_err(|_| IdentityError::InvalidCharacters)?;
        let bytes: [u8; 32] = decoded
            .try_into()
            .map_err(|_| IdentityError::InvalidCharacters)?;
        Ok(Self(bytes))
    }
}

impl Serialize for DeviceId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_canonical())
    }
}

impl<'de> Deserialize<'de> for DeviceId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn id_is_base32_sha256_of_public_key() {
        let key = [7u8; 32];
        let id = DeviceId::from_public_key(&key);
        let expected = BASE32_NOPAD.encode(digest::digest(&digest::SHA256, &key).as_ref());
        assert_eq!(id.to_canonical(), expected);
        assert_eq!(id.to_canonical().len(), ENCODED_LEN);
    }

    #[test]
    fn different_keys_give_different_ids() {
        assert_ne!(
            DeviceId::from_public_key(&[1u8; 32]),
            DeviceId::from_public_key(&[2u8; 32])
        );
    }

    #[test]
    fn display_groups_the_full_id() {
        let id = DeviceId::from_public_key(&[3u8; 32]);
        let shown = id.to_string();
        let groups: Vec<&str> = shown.split('-').collect();
        assert_eq!(groups.len(), 13);
        assert!(groups[..12].iter().all(|g| g.len() == 4));
        assert_eq!(shown.replace('-', ""), id.to_canonical());
        assert!(shown.starts_with(&id.short()));
        assert_eq!(id.short().len(), 14);
    }

    #[test]
    fn parses_grouped_canonical_and_sloppy_forms() {
        let id = DeviceId::from_public_key(&[9u8; 32]);
        assert_eq!(id.to_string().parse::<DeviceId>().unwrap(), id);
        assert_eq!(id.to_canonical().parse::<DeviceId>().unwrap(), id);
        let sloppy = format!("  {} ", id.to_string().to_lowercase().replace('-', " - "));
        assert_eq!(sloppy.parse::<DeviceId>().unwrap(), id);
    }

    #[test]
    fn rejects_short_form_and_garbage() {
        let id = DeviceId::from_public_key(&[9u8; 32]);
        assert_eq!(
            id.short().parse::<DeviceId>(),
            Err(IdentityError::WrongLength { found: 12 })
        );
        let bad = "0".repeat(ENCODED_LEN);
        assert_eq!(
            bad.parse::<DeviceId>(),
            Err(IdentityError::InvalidCharacters)
        );
        // The last character of a 52-character id carries 4 unused bits; a non-zero
        // value there would give two spellings for one id.
        let mut canonical = id.to_canonical();
        canonical.pop();
        canonical.push('7');
        assert_eq!(
            canonical.parse::<DeviceId>(),
            Err(IdentityError::InvalidCharacters)
        );
    }

    #[test]
    fn serde_uses_canonical_string() {
        let id = DeviceId::from_public_key(&[5u8; 32]);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{}\"", id.to_canonical()));
        let back: DeviceId = serde_json::from_str(&json).unwrap();
        assert_eq!(back, id);
    }

    proptest! {
        #[test]
        fn parse_never_panics(input in ".{0,80}") {
            let _ = input.parse::<DeviceId>();
        }

        #[test]
        fn round_trips_every_key(key in any::<[u8; 32]>()) {
            let id = DeviceId::from_public_key(&key);
            prop_assert_eq!(id.to_string().parse::<DeviceId>().unwrap(), id);
            prop_assert_eq!(id.to_canonical().parse::<DeviceId>().unwrap(), id);
        }
    }
}
