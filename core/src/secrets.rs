//! Everything private a device holds, and the file format that keeps it.
//!
//! [`DeviceSecrets`] owns three secrets:
//! - the age X25519 identity that encrypts this device's store (see [`crate::envelope`]);
//! - the Ed25519 device key, as PKCS#8 bytes, from which the device id and the TLS
//!   certificate are derived;
//! - the 32-byte household secret, created at `init` or received during pairing, which
//!   keys the rotating mDNS token.
//!
//! All of it is wiped from memory when the value is dropped. This module is sans-IO: it
//! turns secrets into file bytes and back. Writing the file (mode 0600, atomically) is the
//! daemon's job. It must never log or print any of these values; [`DeviceSecrets`]'s
//! `Debug` output is redacted for that reason.
//!
//! # File format
//!
//! The plain form is a short line-based text, version 1:
//!
//! ```text
//! hearth-device-secrets v1
//! age-identity AGE-SECRET-KEY-1...
//! device-key <standard base64 of the PKCS#8 v2 document>
//! household-secret <standard base64 of 32 bytes, or "none">
//! ```
//!
//! Unprotected, those bytes are the file and the file mode is the only protection.
//! Protected, the same text is encrypted with age's scrypt passphrase recipient, so the
//! file is an ordinary binary age file (`age -d` can open it too) and
//! [`DeviceSecrets::is_protected`] recognises it by age's header line.
//!
//! # Cost of a passphrase
//!
//! [`PASSPHRASE_WORK_FACTOR`] is fixed instead of letting age time the machine at every
//! write: a fixed cost is predictable for daemon start-up and tests, and it is written
//! into each file, so raising it later stays compatible with old files.

use std::fmt;
use std::io::Read;

use age::secrecy::SecretString;
use ring::rand::SecureRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::envelope;

/// scrypt work factor (`N = 2^n`) for passphrase-protected identity files.
///
/// 2^18 (256 MiB of memory per guess) is the floor the threat model asks for: a thief
/// with the disk pays that for every passphrase tried. It is paid once per daemon start
/// (unlock) and once per `init`. Measured figures are in ARCHITECTURE.md; reproduce with
/// `cargo test -p hearth-core --release --lib secrets::tests::measure_work_factors -- --ignored --nocapture`.
pub const PASSPHRASE_WORK_FACTOR: u8 = 18;

// Never lower it for real users; tests that need speed use their own factor.
const _: () = assert!(PASSPHRASE_WORK_FACTOR >= 18);

/// The highest work factor accepted when unlocking. It leaves room for a future release
/// to raise [`PASSPHRASE_WORK_FACTOR`], while refusing a tampered file that would make
/// scrypt allocate gigabytes (memory is 1 KiB times `2^n`; 2^20 is 1 GiB).
const MAX_WORK_FACTOR: u8 = PASSPHRASE_WORK_FACTOR + 2;

const HEADER_PREFIX: &str = "hearth-device-secrets ";
const HEADER_V1: &str = "hearth-device-secrets v1";
/// The first line of every binary age file, which is what a protected file is.
const AGE_MAGIC: &[u8] = b"age-encryption.org/v1\n";
const HOUSEHOLD_SECRET_LEN: usize = 32;

/// Errors from creating, encoding or decoding device secrets.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SecretsError {
    /// The passphrase did not unlock the identity file.
    #[error(
        "the passphrase does not unlock this device's identity file; try again, and if it \
         comes from --passphrase-file (or HEARTH_PASSPHRASE_FILE), check that file: its \
         first line is the passphrase, spaces included"
    )]
    WrongPassphrase,
    /// The identity file is protected, but no passphrase was given.
    #[error(
        "this device's identity file is protected by a passphrase; enter it when asked, or \
         give it with --passphrase-file FILE (or HEARTH_PASSPHRASE_FILE)"
    )]
    PassphraseRequired,
    /// An empty passphrase was given to protect the file.
    #[error(
        "an empty passphrase protects nothing; choose a passphrase, or leave the identity \
         file unprotected (it is still readable only by your user)"
    )]
    EmptyPassphrase,
    /// The file is not an identity file, or it is damaged.
    #[error(
        "the identity file is not valid ({reason}); restore it from a backup, or move it \
         aside and run `hearth init` to start a new identity (pair again afterwards)"
    )]
    Malformed {
        /// What is wrong, without any secret content.
        reason: String,
    },
    /// The file was written by a newer version of Hearth.
    #[error(
        "the identity file has format {found:?}, which this build cannot read; upgrade \
         Hearth"
    )]
    UnsupportedVersion {
        /// The header line found in the file.
        found: String,
    },
    /// The protected file asks for more scrypt work than Hearth ever uses.
    #[error(
        "the identity file asks for scrypt work factor {required}, above the limit of \
         {MAX_WORK_FACTOR}; it was not written by this version of Hearth or has been \
         tampered with, so restore it from a backup"
    )]
    ExcessiveWorkFactor {
        /// The work factor recorded in the file.
        required: u8,
    },
    /// The operating system's random number generator failed.
    #[error(
        "the system's random number generator failed while creating keys; try again, and \
         check that /dev/urandom is available"
    )]
    Random,
    /// Encrypting the identity file failed.
    #[error("could not protect the identity file: {0}")]
    Encrypt(#[from] envelope::EnvelopeError),
}

/// The private keys of one device. Wiped from memory on drop.
pub struct DeviceSecrets {
    // x25519-dalek's StaticSecret, inside age's Identity, zeroizes itself on drop.
    age_identity: age::x25519::Identity,
    device_pkcs8: Zeroizing<Vec<u8>>,
    // Public, so it needs no wiping; kept to avoid re-parsing the PKCS#8 document.
    device_public_key: [u8; 32],
    household_secret: Option<Zeroizing<[u8; HOUSEHOLD_SECRET_LEN]>>,
}

impl fmt::Debug for DeviceSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceSecrets")
            .field("age_recipient", &self.age_identity.to_public())
            .field("device_key", &"<redacted>")
            .field(
                "household_secret",
                &self.household_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl DeviceSecrets {
    /// Creates fresh keys for a device that starts a new household (`hearth init`):
    /// a new age identity, a new device key and a new household secret. The caller
    /// brings the random source (the system's, outside tests).
    pub fn generate(rng: &dyn SecureRandom) -> Result<Self, SecretsError> {
        let mut secrets = Self::generate_unpaired(rng)?;
        let mut household = Zeroizing::new([0u8; HOUSEHOLD_SECRET_LEN]);
        rng.fill(household.as_mut())
            .map_err(|_| SecretsError::Random)?;
        secrets.household_secret = Some(household);
        Ok(secrets)
    }

    /// Creates fresh keys for a device that will join an existing household: no
    /// household secret until pairing delivers one through
    /// [`set_household_secret`](Self::set_household_secret).
    pub fn generate_unpaired(rng: &dyn SecureRandom) -> Result<Self, SecretsError> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(rng).map_err(|_| SecretsError::Random)?;
        Self::from_parts(
            age::x25519::Identity::generate(),
            Zeroizing::new(pkcs8.as_ref().to_vec()),
            None,
        )
    }

    fn from_parts(
        age_identity: age::x25519::Identity,
        device_pkcs8: Zeroizing<Vec<u8>>,
        household_secret: Option<Zeroizing<[u8; HOUSEHOLD_SECRET_LEN]>>,
    ) -> Result<Self, SecretsError> {
        let pair =
            Ed25519KeyPair::from_pkcs8(&device_pkcs8).map_err(|e| SecretsError::Malformed {
                reason: format!("the device key is not a valid Ed25519 PKCS#8 document ({e})"),
            })?;
        let mut device_public_key = [0u8; 32];
        device_public_key.copy_from_slice(pair.public_key().as_ref());
        Ok(Self {
            age_identity,
            device_pkcs8,
            device_public_key,
            household_secret,
        })
    }

    /// The identity that decrypts this device's store.
    pub fn age_identity(&self) -> &age::x25519::Identity {
        &self.age_identity
    }

    /// The recipient the store is encrypted to.
    pub fn age_recipient(&self) -> age::x25519::Recipient {
        self.age_identity.to_public()
    }

    /// The Ed25519 device key as a PKCS#8 v2 document, as `ring` and `rcgen` take it.
    pub fn device_pkcs8(&self) -> &[u8] {
        &self.device_pkcs8
    }

    /// The raw 32-byte Ed25519 public key of this device.
    pub fn device_public_key(&self) -> [u8; 32] {
        self.device_public_key
    }

    /// The household secret, if this device has one yet.
    pub fn household_secret(&self) -> Option<&[u8; HOUSEHOLD_SECRET_LEN]> {
        self.household_secret.as_deref()
    }

    /// Stores the household secret received during pairing, replacing any previous one.
    pub fn set_household_secret(&mut self, secret: [u8; HOUSEHOLD_SECRET_LEN]) {
        let mut secret = secret;
        self.household_secret = Some(Zeroizing::new(secret));
        // The argument was a copy on our stack; wipe it too.
        zeroize::Zeroize::zeroize(&mut secret);
    }

    /// Encodes the secrets as file bytes, encrypted with `passphrase` if one is given.
    pub fn to_file_bytes(
        &self,
        passphrase: Option<&str>,
    ) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
        self.to_file_bytes_with_work_factor(passphrase, PASSPHRASE_WORK_FACTOR)
    }

    fn to_file_bytes_with_work_factor(
        &self,
        passphrase: Option<&str>,
        work_factor: u8,
    ) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
        let text = self.encode_text();
        let Some(passphrase) = passphrase else {
            return Ok(Zeroizing::new(text.as_bytes().to_vec()));
        };
        if passphrase.is_empty() {
            return Err(SecretsError::EmptyPassphrase);
        }
        let mut recipient = age::scrypt::Recipient::new(SecretString::from(passphrase));
        recipient.set_work_factor(work_factor);
        let ciphertext =
            envelope::encrypt_to([&recipient as &dyn age::Recipient], text.as_bytes())?;
        Ok(Zeroizing::new(ciphertext))
    }

    fn encode_text(&self) -> Zeroizing<String> {
        use age::secrecy::ExposeSecret as _;
        use data_encoding::BASE64;
        use std::fmt::Write as _;

        let mut text = Zeroizing::new(String::with_capacity(512));
        let identity = self.age_identity.to_string();
        // Writing to a String cannot fail, so the fmt::Results are ignored on purpose.
        let _ = writeln!(text, "{HEADER_V1}");
        let _ = writeln!(text, "age-identity {}", identity.expose_secret());
        let _ = writeln!(
            text,
            "device-key {}",
            Zeroizing::new(BASE64.encode(&self.device_pkcs8)).as_str()
        );
        match &self.household_secret {
            Some(secret) => {
                let encoded = Zeroizing::new(BASE64.encode(secret.as_ref()));
                let _ = writeln!(text, "household-secret {}", encoded.as_str());
            }
            None => {
                let _ = writeln!(text, "household-secret none");
            }
        }
        text
    }

    /// True when `bytes` is a passphrase-protected identity file (an age file).
    pub fn is_protected(bytes: &[u8]) -> bool {
        bytes.starts_with(AGE_MAGIC)
    }

    /// The scrypt work factor a protected identity file was written with, read from
    /// age's header line `-> scrypt <salt> <log_n>`; `None` for an unprotected file or
    /// a header that does not say.
    pub fn work_factor(bytes: &[u8]) -> Option<u8> {
        let header = bytes.strip_prefix(AGE_MAGIC)?;
        let end = header
            .windows(4)
            .position(|w| w == b"\n---")
            .unwrap_or(header.len());
        let header = std::str::from_utf8(&header[..end]).ok()?;
        header
            .lines()
            .find_map(|line| line.strip_prefix("-> scrypt "))
            .and_then(|args| args.split(' ').nth(1))
            .and_then(|n| n.parse().ok())
    }

    /// True when a protected file was written with less scrypt work than this version
    /// uses (by an older version), so it should be written again once unlocked.
    pub fn needs_stronger_protection(bytes: &[u8]) -> bool {
        Self::work_factor(bytes).is_some_and(|n| n < PASSPHRASE_WORK_FACTOR)
    }

    /// Decodes an identity file, unlocking it with `passphrase` if it is protected.
    ///
    /// A passphrase given for an unprotected file is not needed and is ignored.
    pub fn from_file_bytes(bytes: &[u8], passphrase: Option<&str>) -> Result<Self, SecretsError> {
        if !Self::is_protected(bytes) {
            return Self::decode_text(bytes);
        }
        let Some(passphrase) = passphrase else {
            return Err(SecretsError::PassphraseRequired);
        };
        let text = unlock(bytes, passphrase)?;
        Self::decode_text(&text)
    }

    fn decode_text(bytes: &[u8]) -> Result<Self, SecretsError> {
        let malformed = |reason: &str| SecretsError::Malformed {
            reason: reason.to_owned(),
        };
        let text = std::str::from_utf8(bytes).map_err(|_| {
            malformed("it is neither a Hearth identity file nor a passphrase-protected one")
        })?;
        let mut lines = text.lines();
        let header = lines.next().unwrap_or_default();
        if header != HEADER_V1 {
            if header.starts_with(HEADER_PREFIX) {
                return Err(SecretsError::UnsupportedVersion {
                    found: header.chars().take(64).collect(),
                });
            }
            return Err(malformed(
                "it is neither a Hearth identity file nor a passphrase-protected one",
            ));
        }

        let mut identity = None;
        let mut device_key = None;
        let mut household = None;
        for line in lines {
            if line.is_empty() {
                continue;
            }
            let (field, value) = line.split_once(' ').unwrap_or((line, ""));
            let slot = match field {
                "age-identity" => &mut identity,
                "device-key" => &mut device_key,
                "household-secret" => &mut household,
                // The field name is ours and never secret; the value is not echoed.
                _ => {
                    return Err(SecretsError::Malformed {
                        reason: format!(
                            "unknown field {:?}",
                            field.chars().take(32).collect::<String>()
                        ),
                    })
                }
            };
            if slot.replace(value).is_some() {
                return Err(SecretsError::Malformed {
                    reason: format!("field {field} appears twice"),
                });
            }
        }

        let identity: age::x25519::Identity = identity
            .ok_or_else(|| malformed("the age-identity line is missing"))?
            .parse()
            .map_err(|e| SecretsError::Malformed {
                reason: format!("the age identity is invalid ({e})"),
            })?;
        let device_pkcs8 = decode_base64(
            device_key.ok_or_else(|| malformed("the device-key line is missing"))?,
            "device key",
        )?;
        let household_secret =
            match household.ok_or_else(|| malformed("the household-secret line is missing"))? {
                "none" => None,
                encoded => {
                    let raw = decode_base64(encoded, "household secret")?;
                    let mut secret = Zeroizing::new([0u8; HOUSEHOLD_SECRET_LEN]);
                    if raw.len() != HOUSEHOLD_SECRET_LEN {
                        return Err(malformed("the household secret is not 32 bytes long"));
                    }
                    secret.copy_from_slice(&raw);
                    Some(secret)
                }
            };
        Self::from_parts(identity, device_pkcs8, household_secret)
    }
}

fn decode_base64(value: &str, what: &str) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
    data_encoding::BASE64
        .decode(value.as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| SecretsError::Malformed {
            reason: format!("the {what} is not valid base64"),
        })
}

/// Decrypts a protected identity file, telling a wrong passphrase apart from damage.
fn unlock(bytes: &[u8], passphrase: &str) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
    let damaged = |e: &dyn fmt::Display| SecretsError::Malformed {
        reason: format!("the encrypted file is damaged: {e}"),
    };
    let decryptor = age::Decryptor::new_buffered(bytes).map_err(|e| damaged(&e))?;
    if !decryptor.is_scrypt() {
        return Err(SecretsError::Malformed {
            reason: "it is an age file, but not one protected by a passphrase".to_owned(),
        });
    }
    let mut identity = age::scrypt::Identity::new(SecretString::from(passphrase));
    identity.set_max_work_factor(MAX_WORK_FACTOR);
    let mut reader = match decryptor.decrypt(std::iter::once(&identity as &dyn age::Identity)) {
        Ok(reader) => reader,
        // The scrypt stanza's AEAD fails to open under a key derived from the wrong
        // passphrase; damage to the header is caught by the header MAC instead.
        Err(age::DecryptError::DecryptionFailed | age::DecryptError::KeyDecryptionFailed) => {
            return Err(SecretsError::WrongPassphrase)
        }
        Err(age::DecryptError::ExcessiveWork { required, .. }) => {
            return Err(SecretsError::ExcessiveWorkFactor { required })
        }
        Err(e) => return Err(damaged(&e)),
    };
    let mut plaintext = Zeroizing::new(Vec::with_capacity(bytes.len()));
    reader
        .read_to_end(&mut plaintext)
        .map_err(|e| damaged(&e))?;
    Ok(plaintext)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Keeps tests fast; the format is the same at any work factor.
    const TEST_WORK_FACTOR: u8 = 2;

    fn protect(secrets: &DeviceSecrets, passphrase: &str) -> Zeroizing<Vec<u8>> {
        secrets
            .to_file_bytes_with_work_factor(Some(passphrase), TEST_WORK_FACTOR)
            .unwrap()
    }

    fn assert_same(a: &DeviceSecrets, b: &DeviceSecrets) {
        use age::secrecy::ExposeSecret as _;
        assert_eq!(
            a.age_identity().to_string().expose_secret(),
            b.age_identity().to_string().expose_secret()
        );
        assert_eq!(a.device_pkcs8(), b.device_pkcs8());
        assert_eq!(a.device_public_key(), b.device_public_key());
        assert_eq!(a.household_secret(), b.household_secret());
    }

    #[test]
    fn generate_makes_a_household_secret_and_unpaired_does_not() {
        let init = DeviceSecrets::generate(&crate::test_rng()).unwrap();
        assert!(init.household_secret().is_some());
        let joiner = DeviceSecrets::generate_unpaired(&crate::test_rng()).unwrap();
        assert!(joiner.household_secret().is_none());
        assert_ne!(init.device_public_key(), joiner.device_public_key());
    }

    #[test]
    fn device_public_key_matches_the_pkcs8_document() {
        let secrets = DeviceSecrets::generate(&crate::test_rng()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(secrets.device_pkcs8()).unwrap();
        assert_eq!(pair.public_key().as_ref(), secrets.device_public_key());
    }

    #[test]
    fn unprotected_round_trip() {
        let secrets = DeviceSecrets::generate(&crate::test_rng()).unwrap();
        let bytes = secrets.to_file_bytes(None).unwrap();
        assert!(!DeviceSecrets::is_protected(&bytes));
        assert!(bytes.starts_with(b"hearth-device-secrets v1\n"));
        assert_same(
            &secrets,
            &DeviceSecrets::from_file_bytes(&bytes, None).unwrap(),
        );
        // A passphrase offered for an unprotected file is simply not needed.
        assert_same(
            &secrets,
            &DeviceSecrets::from_file_bytes(&bytes, Some("unused")).unwrap(),
        );
    }

    #[test]
    fn unpaired_round_trip_keeps_no_household_secret() {
        let secrets = DeviceSecrets::generate_unpaired(&crate::test_rng()).unwrap();
        let bytes = secrets.to_file_bytes(None).unwrap();
        let back = DeviceSecrets::from_file_bytes(&bytes, None).unwrap();
        assert!(back.household_secret().is_none());
    }

    #[test]
    fn set_household_secret_survives_a_round_trip() {
        let mut secrets = DeviceSecrets::generate_unpaired(&crate::test_rng()).unwrap();
        secrets.set_household_secret([9; 32]);
        let bytes = secrets.to_file_bytes(None).unwrap();
        let back = DeviceSecrets::from_file_bytes(&bytes, None).unwrap();
        assert_eq!(back.household_secret(), Some(&[9; 32]));
    }

    #[test]
    fn protected_round_trip() {
        let secrets = DeviceSecrets::generate(&crate::test_rng()).unwrap();
        let bytes = protect(&secrets, "correct horse");
        assert!(DeviceSecrets::is_protected(&bytes));
        let back = DeviceSecrets::from_file_bytes(&bytes, Some("correct horse")).unwrap();
        assert_same(&secrets, &back);
    }

    #[test]
    fn an_older_weaker_file_is_recognised_for_strengthening() {
        let secrets = DeviceSecrets::generate(&crate::test_rng()).unwrap();
        let weak = secrets
            .to_file_bytes_with_work_factor(Some("pw"), 5)
            .unwrap();
        assert_eq!(DeviceSecrets::work_factor(&weak), Some(5));
        assert!(DeviceSecrets::needs_stronger_protection(&weak));
        let plain = secrets.to_file_bytes(None).unwrap();
        assert_eq!(DeviceSecrets::work_factor(&plain), None);
        assert!(!DeviceSecrets::needs_stronger_protection(&plain));
        let mut current = weak.to_vec();
        let at = current
            .windows(b" 5\n".len())
            .position(|w| w == b" 5\n")
            .unwrap();
        current.splice(at..at + 2, format!(" {PASSPHRASE_WORK_FACTOR}").bytes());
        assert_eq!(
            DeviceSecrets::work_factor(&current),
            Some(PASSPHRASE_WORK_FACTOR)
        );
        assert!(!DeviceSecrets::needs_stronger_protection(&current));
    }

    #[test]
    fn protected_file_records_the_chosen_work_factor() {
        let secrets = DeviceSecrets::generate(&crate::test_rng()).unwrap();
        let bytes = secrets
            .to_file_bytes_with_work_factor(Some("pw"), 5)
            .unwrap();
        // The scrypt stanza is "-> scrypt <salt> <log_n>" on the second header line.
        let header = String::from_utf8_lossy(&bytes[..80]).into_owned();
        let stanza = header.lines().nth(1).unwrap();
        assert!(stanza.starts_with("-> scrypt "), "{stanza}");
        assert!(stanza.ends_with(" 5"), "{stanza}");
    }

    #[test]
    fn wrong_passphrase_is_reported_as_such() {
        let secrets = DeviceSecrets::generate(&crate::test_rng()).unwrap();
        let bytes = protect(&secrets, "right");
        let err = DeviceSecrets::from_file_bytes(&bytes, Some("wrong")).unwrap_err();
        assert!(matches!(err, SecretsError::WrongPassphrase), "{err:?}");
        assert!(err.to_string().contains("try again"));
    }

    #[test]
    fn protected_file_without_passphrase_asks_for_one() {
        let secrets = DeviceSecrets::generate(&crate::test_rng()).unwrap();
        let bytes = protect(&secrets, "right");
        assert!(matches!(
            DeviceSecrets::from_file_bytes(&bytes, None),
            Err(SecretsError::PassphraseRequired)
        ));
    }

    #[test]
    fn empty_passphrase_is_refused() {
        let secrets = DeviceSecrets::generate(&crate::test_rng()).unwrap();
        assert!(matches!(
            secrets.to_file_bytes(Some("")),
            Err(SecretsError::EmptyPassphrase)
        ));
    }

    #[test]
    fn excessive_work_factor_is_refused_before_any_work() {
        let secrets = DeviceSecrets::generate(&crate::test_rng()).unwrap();
        // Writing at a huge work factor would itself take seconds and gigabytes, so
        // raise the recorded factor in a cheap file instead: the limit is checked
        // before the header MAC, exactly as a tampered file would be read.
        let cheap = secrets
            .to_file_bytes_with_work_factor(Some("pw"), 2)
            .unwrap();
        let stanza = cheap
            .windows(11)
            .position(|w| w == b"\n-> scrypt ")
            .unwrap();
        let line_end = stanza
            + 1
            + cheap[stanza + 1..]
                .iter()
                .position(|&b| b == b'\n')
                .unwrap();
        assert_eq!(cheap[line_end - 2..line_end], *b" 2");
        let mut bytes = cheap[..line_end - 1].to_vec();
        bytes.extend_from_slice((MAX_WORK_FACTOR + 1).to_string().as_bytes());
        bytes.extend_from_slice(&cheap[line_end..]);
        let err = DeviceSecrets::from_file_bytes(&bytes, Some("pw")).unwrap_err();
        assert!(
            matches!(err, SecretsError::ExcessiveWorkFactor { required } if required == MAX_WORK_FACTOR + 1),
            "{err:?}"
        );
    }

    #[test]
    fn damaged_protected_file_is_malformed_not_wrong_passphrase() {
        let secrets = DeviceSecrets::generate(&crate::test_rng()).unwrap();
        let bytes = protect(&secrets, "pw");
        let mut truncated = bytes[..bytes.len() - 3].to_vec();
        assert!(matches!(
            DeviceSecrets::from_file_bytes(&truncated, Some("pw")),
            Err(SecretsError::Malformed { .. })
        ));
        truncated.truncate(AGE_MAGIC.len() + 4);
        assert!(matches!(
            DeviceSecrets::from_file_bytes(&truncated, Some("pw")),
            Err(SecretsError::Malformed { .. })
        ));
    }

    #[test]
    fn age_file_for_a_key_is_not_an_identity_file() {
        let other = age::x25519::Identity::generate();
        let bytes =
            envelope::encrypt_to([&other.to_public() as &dyn age::Recipient], b"x").unwrap();
        let err = DeviceSecrets::from_file_bytes(&bytes, Some("pw")).unwrap_err();
        assert!(matches!(err, SecretsError::Malformed { .. }), "{err:?}");
    }

    fn text_of(secrets: &DeviceSecrets) -> String {
        String::from_utf8(secrets.to_file_bytes(None).unwrap().to_vec()).unwrap()
    }

    fn malformed_reason(text: &str) -> String {
        match DeviceSecrets::from_file_bytes(text.as_bytes(), None) {
            Err(SecretsError::Malformed { reason }) => reason,
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn malformed_files_say_what_is_wrong() {
        let secrets = DeviceSecrets::generate(&crate::test_rng()).unwrap();
        let text = text_of(&secrets);
        let without = |prefix: &str| {
            text.lines()
                .filter(|l| !l.starts_with(prefix))
                .collect::<Vec<_>>()
                .join("\n")
        };

        assert!(malformed_reason("").contains("neither"));
        assert!(malformed_reason("ssh-ed25519 AAAA").contains("neither"));
        assert!(malformed_reason(&without("age-identity")).contains("age-identity"));
        assert!(malformed_reason(&without("device-key")).contains("device-key"));
        assert!(malformed_reason(&without("household-secret")).contains("household-secret"));
        assert!(malformed_reason(&format!("{text}colour blue\n")).contains("unknown field"));
        let twice = format!("{text}{}\n", text.lines().nth(2).unwrap());
        assert!(malformed_reason(&twice).contains("twice"));
        assert!(
            malformed_reason(&format!("{}\ndevice-key !!!\n", without("device-key")))
                .contains("base64")
        );
        assert!(
            malformed_reason(&format!("{}\ndevice-key AAAA\n", without("device-key")))
                .contains("PKCS#8")
        );
        assert!(malformed_reason(&format!(
            "{}\nhousehold-secret AAAA\n",
            without("household-secret")
        ))
        .contains("32 bytes"));
        assert!(malformed_reason(&format!(
            "{}\nage-identity AGE-SECRET-KEY-1XYZ\n",
            without("age-identity")
        ))
        .contains("age identity"));
        assert!(
            malformed_reason(&String::from_utf8_lossy(&[0xff, 0xfe, 0x00])).contains("neither")
        );
    }

    #[test]
    fn newer_format_is_unsupported_not_malformed() {
        let text = "hearth-device-secrets v2\nfuture stuff\n";
        assert!(matches!(
            DeviceSecrets::from_file_bytes(text.as_bytes(), None),
            Err(SecretsError::UnsupportedVersion { found }) if found == "hearth-device-secrets v2"
        ));
    }

    #[test]
    fn debug_output_hides_the_secrets() {
        use age::secrecy::ExposeSecret as _;
        let secrets = DeviceSecrets::generate(&crate::test_rng()).unwrap();
        let debug = format!("{secrets:?}");
        let identity = secrets.age_identity().to_string();
        assert!(!debug.contains(identity.expose_secret()));
        assert!(!debug.contains(&data_encoding::BASE64.encode(secrets.device_pkcs8())));
        assert!(debug.contains("redacted"));
    }

    /// Prints how long unlocking takes at each work factor; the numbers behind
    /// [`PASSPHRASE_WORK_FACTOR`]. Run in release with `--ignored --nocapture`.
    #[test]
    #[ignore = "timing measurement, not a check"]
    #[allow(clippy::disallowed_methods)]
    fn measure_work_factors() {
        let secrets = DeviceSecrets::generate(&crate::test_rng()).unwrap();
        for n in 16..=19u8 {
            let bytes = secrets
                .to_file_bytes_with_work_factor(Some("measure"), n)
                .unwrap();
            let start = std::time::Instant::now();
            let rounds = 3;
            for _ in 0..rounds {
                DeviceSecrets::from_file_bytes(&bytes, Some("measure")).unwrap();
            }
            let each = start.elapsed() / rounds;
            println!("work factor {n}: unlock takes {:.3} s", each.as_secs_f64());
        }
    }
}
