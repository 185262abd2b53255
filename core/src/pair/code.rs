//! Pairing codes such as `4-amber-orbit-lantern`.
//!
//! This module owns how a code is generated, written and read back. It does not decide
//! how long a code lives or how often it may be tried (the daemon makes each invite
//! single-use and burns it on the first failure), and it never logs a code.
//!
//! A code is a number from 1 to 99 and three words from a list of 256. The number is
//! also the seed of the mDNS pairing token, so it is effectively public on the local
//! network; the words carry the secret (24 bits). That is enough because SPAKE2 lets
//! an attacker test only one guess per attempt, and a wrong guess burns the invite.

use std::fmt;
use std::str::FromStr;

use rand::{CryptoRng, Rng, RngCore};
use zeroize::Zeroize;

use super::words::{index_of, WORDS};

/// Highest value of the number part.
const MAX_NUMBER: u8 = 99;

/// Longest word echoed back in an error, so a pasted secret is not repeated in full.
const MAX_ECHOED_WORD: usize = 12;

/// A single-use pairing code: a number and three words.
#[derive(Clone, PartialEq, Eq)]
pub struct PairingCode {
    number: u8,
    words: [u8; 3],
}

impl PairingCode {
    /// Generates a fresh code from `rng`.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let number = rng.gen_range(1..=MAX_NUMBER);
        let mut words = [0u8; 3];
        rng.fill_bytes(&mut words);
        Self { number, words }
    }

    /// The number part, from 1 to 99, which also seeds the mDNS pairing token.
    pub fn number(&self) -> u8 {
        self.number
    }

    /// The canonical text, e.g. `4-amber-orbit-lantern`: the SPAKE2 password, so that
    /// any spelling the parser accepts yields the same key.
    pub(crate) fn canonical(&self) -> String {
        let [a, b, c] = self.words.map(|w| WORDS[usize::from(w)]);
        format!("{}-{a}-{b}-{c}", self.number)
    }
}

impl Drop for PairingCode {
    fn drop(&mut self) {
        self.number.zeroize();
        self.words.zeroize();
    }
}

impl fmt::Display for PairingCode {
    /// Writes the code for the person to read out, e.g. `4-amber-orbit-lantern`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

impl fmt::Debug for PairingCode {
    /// Never shows the words: a code in a log is a code anyone can use.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PairingCode({}-***)", self.number)
    }
}

/// Why a pairing code could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodeError {
    /// The code does not have a number and three words.
    #[error(
        "a pairing code is a number and three words, like 4-amber-orbit-lantern, but this \
         has {found} parts; copy the code shown by `hearth pair invite` on the other device"
    )]
    WrongShape {
        /// How many parts were found.
        found: usize,
    },
    /// The first part is not a number from 1 to 99.
    #[error(
        "a pairing code starts with a number from 1 to {MAX_NUMBER}, like the 4 in \
         4-amber-orbit-lantern; check the code shown by `hearth pair invite`"
    )]
    BadNumber,
    /// A word is not in the wordlist.
    #[error(
        "word {position} of the pairing code, {word:?}, is not a pairing word; check its \
         spelling against the code shown by `hearth pair invite`"
    )]
    UnknownWord {
        /// Which word (1 to 3).
        position: usize,
        /// The word as typed, cut short.
        word: String,
    },
}

impl FromStr for PairingCode {
    type Err = CodeError;

    /// Reads a code leniently: any case, with dashes, spaces, underscores or dots
    /// between the parts.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let lowered = input.to_lowercase();
        let parts: Vec<&str> = lowered
            .split(|c: char| c == '-' || c == '_' || c == '.' || c.is_whitespace())
            .filter(|p| !p.is_empty())
            .collect();
        let [number, words @ ..] = parts.as_slice() else {
            return Err(CodeError::WrongShape { found: 0 });
        };
        if words.len() != 3 {
            return Err(CodeError::WrongShape { found: parts.len() });
        }
        let number = number
            .parse::<u8>()
            .ok()
            .filter(|n| (1..=MAX_NUMBER).contains(n))
            .ok_or(CodeError::BadNumber)?;
        let mut indices = [0u8; 3];
        for (position, (word, slot)) in words.iter().zip(indices.iter_mut()).enumerate() {
            *slot = index_of(word).ok_or_else(|| CodeError::UnknownWord {
                position: position + 1,
                word: word.chars().take(MAX_ECHOED_WORD).collect(),
            })?;
        }
        Ok(Self {
            number,
            words: indices,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn the_documented_example_parses() {
        let code: PairingCode = "4-amber-orbit-lantern".parse().unwrap();
        assert_eq!(code.number(), 4);
        assert_eq!(code.to_string(), "4-amber-orbit-lantern");
    }

    #[test]
    fn parsing_is_lenient_about_case_and_separators() {
        let code: PairingCode = "4-amber-orbit-lantern".parse().unwrap();
        for spelling in [
            "4 amber orbit lantern",
            "  4-Amber-ORBIT-lantern\n",
            "4_amber.orbit -  lantern",
            "04-amber-orbit-lantern",
        ] {
            assert_eq!(spelling.parse::<PairingCode>().unwrap(), code, "{spelling}");
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert_eq!(
            "".parse::<PairingCode>(),
            Err(CodeError::WrongShape { found: 0 })
        );
        assert_eq!(
            "4-amber-orbit".parse::<PairingCode>(),
            Err(CodeError::WrongShape { found: 3 })
        );
        assert_eq!(
            "0-amber-orbit-lantern".parse::<PairingCode>(),
            Err(CodeError::BadNumber)
        );
        assert_eq!(
            "amber-4-orbit-lantern".parse::<PairingCode>(),
            Err(CodeError::BadNumber)
        );
        let err = "4-amber-orbitt-lantern".parse::<PairingCode>().unwrap_err();
        assert_eq!(
            err,
            CodeError::UnknownWord {
                position: 2,
                word: "orbitt".to_owned()
            }
        );
        assert!(err.to_string().contains("hearth pair invite"));
    }

    #[test]
    fn debug_hides_the_words() {
        let code: PairingCode = "4-amber-orbit-lantern".parse().unwrap();
        assert_eq!(format!("{code:?}"), "PairingCode(4-***)");
    }

    #[test]
    fn generation_is_deterministic_under_a_seeded_rng() {
        let a = PairingCode::generate(&mut ChaCha20Rng::seed_from_u64(7));
        let b = PairingCode::generate(&mut ChaCha20Rng::seed_from_u64(7));
        assert_eq!(a, b);
        assert!((1..=MAX_NUMBER).contains(&a.number()));
    }

    proptest! {
        #[test]
        fn generated_codes_round_trip(seed in any::<u64>()) {
            let code = PairingCode::generate(&mut ChaCha20Rng::seed_from_u64(seed));
            prop_assert_eq!(code.to_string().parse::<PairingCode>().unwrap(), code.clone());
            prop_assert_eq!(code.to_string().to_uppercase().replace('-', " ").parse::<PairingCode>().unwrap(), code);
        }

        #[test]
        fn parsing_never_panics(input in ".{0,60}") {
            let _ = input.parse::<PairingCode>();
        }
    }
}
