//! Household secret epochs: which 32-byte household secret is current, which older
//! ones are still recognised, and how two devices agree on the next one.
//!
//! The household secret keys the rotating discovery labels (and whatever else is derived
//! from it). A removed device, or a person who left, still holds the secret it had, so
//! the secret moves on: a device that stops trusting another draws a fresh secret under
//! the next epoch number and hands it only to the devices it still trusts, over pinned
//! sync connections. This module is the sans-IO part of that: the bounded set of
//! epochs a device keeps, the rule for adopting one a peer sends, and the file format.
//!
//! # Adoption rule
//!
//! Epochs are totally ordered by `(number, SHA-256 of the secret)`. A device adopts an
//! epoch it receives when it is greater than its current one, and ignores it otherwise.
//! So two devices that each moved to epoch `n + 1` at the same time (two concurrent
//! removals) both end on the same secret, whichever message arrives first, and nothing
//! ping-pongs: an epoch is only ever replaced by a greater one. The replaced epoch is
//! kept among the older ones, so a device that has not heard of the change yet is still
//! recognised until it has.
//!
//! # File format
//!
//! Sealed to the device's age identity by the daemon; the plaintext is:
//!
//! ```text
//! hearth-household-epochs v1
//! epoch <number> <standard base64 of 32 bytes>     (the current epoch first)
//! epoch <number> <standard base64 of 32 bytes>     (then older ones, newest first)
//! ```
//!
//! A plaintext of exactly 32 bytes is the format before epochs (a joined device's
//! `household-secret.hearth`): it loads as epoch 0.
//!
//! Nothing here logs, and [`Epoch`]'s `Debug` never shows the secret.

use std::fmt;

use zeroize::Zeroizing;

/// How many epochs a device keeps, the current one included. Older ones are forgotten:
/// a device that missed this many changes finds the household again by its address, or
/// by pairing anew.
pub const MAX_EPOCHS: usize = 8;

/// How far ahead of the current epoch a received one may be. Honest devices count up
/// by one per removal; without a bound a partner's modified client could send an epoch
/// numbered `u64::MAX` under a secret it ground for a large digest, and every later
/// rotation (which saturates there) would lose the tie-break to that secret, which the
/// partner would then still hold after leaving.
pub const MAX_EPOCH_JUMP: u64 = 1 << 20;

const HEADER: &str = "hearth-household-epochs v1";
const SECRET_LEN: usize = 32;

/// One epoch of the household secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Epoch {
    /// Counts up by one at every change.
    pub number: u64,
    /// The 32-byte household secret of this epoch.
    pub secret: Zeroizing<[u8; SECRET_LEN]>,
}

impl fmt::Debug for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Epoch {{ number: {}, secret: <redacted> }}", self.number)
    }
}

impl Epoch {
    /// An epoch from its parts.
    pub fn new(number: u64, secret: [u8; SECRET_LEN]) -> Self {
        let mut secret = secret;
        let epoch = Self {
            number,
            secret: Zeroizing::new(secret),
        };
        zeroize::Zeroize::zeroize(&mut secret);
        epoch
    }

    /// The next epoch after this one, with a fresh secret from `rng`.
    pub fn next(&self, rng: &mut impl rand::RngCore) -> Self {
        let mut secret = Zeroizing::new([0u8; SECRET_LEN]);
        rng.fill_bytes(secret.as_mut());
        Self {
            number: self.number.saturating_add(1),
            secret,
        }
    }

    /// SHA-256 of the secret: the tie-break between two epochs of the same number.
    fn digest(&self) -> [u8; 32] {
        let digest = ring::digest::digest(&ring::digest::SHA256, self.secret.as_ref());
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        out
    }

    /// Whether this epoch wins over `other` under the adoption rule.
    pub fn supersedes(&self, other: &Epoch) -> bool {
        (self.number, self.digest()) > (other.number, other.digest())
    }

    /// A short, non-secret name for this epoch's secret (8 bytes of a domain-separated
    /// SHA-256, in hex), so that `status` and tests can tell two devices hold the same
    /// epoch without showing it.
    pub fn fingerprint(&self) -> String {
        let mut input = Zeroizing::new(Vec::with_capacity(64));
        input.extend_from_slice(b"hearth household epoch fingerprint\0");
        input.extend_from_slice(self.secret.as_ref());
        let digest = ring::digest::digest(&ring::digest::SHA256, &input);
        data_encoding::HEXLOWER.encode(&digest.as_ref()[..8])
    }
}

/// Errors from reading an epochs file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the household secret file is not valid ({reason})")]
pub struct EpochsError {
    /// What is wrong, without any secret content.
    pub reason: &'static str,
}

/// The epochs one device keeps: the current one first, then older ones, newest first,
/// at most [`MAX_EPOCHS`] in all.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Epochs {
    list: Vec<Epoch>,
}

impl fmt::Debug for Epochs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Epochs")
            .field("current", &self.current().map(|e| e.number))
            .field("kept", &self.list.len())
            .finish()
    }
}

impl Epochs {
    /// No household secret yet (a device waiting to join).
    pub fn empty() -> Self {
        Self::default()
    }

    /// Only `epoch`.
    pub fn starting_at(epoch: Epoch) -> Self {
        Self { list: vec![epoch] }
    }

    /// The current epoch, if there is one.
    pub fn current(&self) -> Option<&Epoch> {
        self.list.first()
    }

    /// Every kept epoch, the current one first.
    pub fn all(&self) -> &[Epoch] {
        &self.list
    }

    /// The kept secrets, the current one first.
    pub fn secrets(&self) -> Vec<Zeroizing<[u8; SECRET_LEN]>> {
        self.list.iter().map(|e| e.secret.clone()).collect()
    }

    /// Makes `epoch` current, keeping the previous current one among the older ones.
    fn push_current(&mut self, epoch: Epoch) {
        self.list.retain(|e| *e != epoch);
        self.list.insert(0, epoch);
        self.list.truncate(MAX_EPOCHS);
    }

    /// Moves to the next epoch with a fresh secret from `rng` (epoch 0 if there was
    /// none), and returns it.
    pub fn rotate(&mut self, rng: &mut impl rand::RngCore) -> Epoch {
        let next = match self.current() {
            Some(current) => current.next(rng),
            None => {
                let mut secret = [0u8; SECRET_LEN];
                rng.fill_bytes(&mut secret);
                Epoch::new(0, secret)
            }
        };
        self.push_current(next.clone());
        next
    }

    /// Applies the adoption rule to an epoch a trusted peer (or pairing) sent: adopts it
    /// if it supersedes the current one and is at most [`MAX_EPOCH_JUMP`] ahead.
    /// Returns whether it was adopted.
    pub fn adopt(&mut self, epoch: Epoch) -> bool {
        let wins = self.current().is_none_or(|current| {
            epoch.supersedes(current) && epoch.number - current.number <= MAX_EPOCH_JUMP
        });
        if wins {
            self.push_current(epoch);
        }
        wins
    }

    /// The file's plaintext (see the module documentation).
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(64 + self.list.len() * 72));
        out.extend_from_slice(HEADER.as_bytes());
        out.push(b'\n');
        for epoch in &self.list {
            let encoded = Zeroizing::new(data_encoding::BASE64.encode(epoch.secret.as_ref()));
            out.extend_from_slice(format!("epoch {} ", epoch.number).as_bytes());
            out.extend_from_slice(encoded.as_bytes());
            out.push(b'\n');
        }
        out
    }

    /// Reads a file's plaintext, either this format or a bare 32-byte secret (epoch 0).
    pub fn decode(plain: &[u8]) -> Result<Self, EpochsError> {
        let bad = |reason| EpochsError { reason };
        if plain.len() == SECRET_LEN && !plain.starts_with(HEADER.as_bytes()) {
            let mut secret = [0u8; SECRET_LEN];
            secret.copy_from_slice(plain);
            return Ok(Self::starting_at(Epoch::new(0, secret)));
        }
        let text = std::str::from_utf8(plain).map_err(|_| bad("not text"))?;
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(bad("unknown header"));
        }
        let mut list = Vec::new();
        for line in lines.filter(|l| !l.is_empty()) {
            let mut parts = line.split(' ');
            if parts.next() != Some("epoch") {
                return Err(bad("unknown line"));
            }
            let number = parts
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or(bad("an epoch number is not a number"))?;
            let raw = parts
                .next()
                .and_then(|s| data_encoding::BASE64.decode(s.as_bytes()).ok())
                .map(Zeroizing::new)
                .ok_or(bad("a secret is not valid base64"))?;
            if parts.next().is_some() {
                return Err(bad("a line has too many fields"));
            }
            let secret: [u8; SECRET_LEN] = raw
                .as_slice()
                .try_into()
                .map_err(|_| bad("a secret is not 32 bytes long"))?;
            if list.len() < MAX_EPOCHS {
                list.push(Epoch::new(number, secret));
            }
        }
        if list.is_empty() {
            return Err(bad("it holds no epoch"));
        }
        Ok(Self { list })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;

    fn rng() -> rand_chacha::ChaCha8Rng {
        rand_chacha::ChaCha8Rng::seed_from_u64(7)
    }

    #[test]
    fn an_old_bare_secret_loads_as_epoch_zero() {
        let epochs = Epochs::decode(&[9u8; 32]).unwrap();
        assert_eq!(epochs.all().len(), 1);
        assert_eq!(epochs.current().unwrap().number, 0);
        assert_eq!(*epochs.current().unwrap().secret, [9u8; 32]);
    }

    #[test]
    fn rotation_moves_on_and_keeps_a_bounded_history() {
        let mut rng = rng();
        let mut epochs = Epochs::starting_at(Epoch::new(0, [1; 32]));
        for n in 1..=20u64 {
            let next = epochs.rotate(&mut rng);
            assert_eq!(next.number, n);
            assert_eq!(epochs.current().unwrap(), &next);
            assert!(epochs.all().len() <= MAX_EPOCHS);
        }
        let numbers: Vec<u64> = epochs.all().iter().map(|e| e.number).collect();
        assert_eq!(numbers, (13..=20).rev().collect::<Vec<_>>());
        let back = Epochs::decode(&epochs.encode()).unwrap();
        assert_eq!(back, epochs);
    }

    #[test]
    fn a_higher_number_is_adopted_a_lower_one_is_not() {
        let mut epochs = Epochs::starting_at(Epoch::new(3, [1; 32]));
        assert!(!epochs.adopt(Epoch::new(2, [9; 32])));
        assert!(!epochs.adopt(Epoch::new(3, [1; 32])));
        assert_eq!(epochs.current().unwrap().number, 3);
        assert!(epochs.adopt(Epoch::new(4, [0; 32])));
        assert_eq!(epochs.current().unwrap().number, 4);
        // The old one is still recognised.
        assert_eq!(*epochs.secrets()[1], [1; 32]);
    }

    #[test]
    fn concurrent_epochs_of_one_number_converge_whatever_the_order() {
        let a = Epoch::new(5, [0xaa; 32]);
        let b = Epoch::new(5, [0xbb; 32]);
        let mut on_a = Epochs::starting_at(a.clone());
        let mut on_b = Epochs::starting_at(b.clone());
        on_a.adopt(b.clone());
        on_b.adopt(a.clone());
        assert_eq!(on_a.current(), on_b.current());
        // Sending the winner back changes nothing: no ping-pong.
        let winner = on_a.current().unwrap().clone();
        assert!(!on_a.adopt(winner.clone()));
        assert!(!on_b.adopt(winner));
        // The device that gave up its own keeps recognising it.
        assert_eq!(on_a.all().len() + on_b.all().len(), 3);
    }

    #[test]
    fn damaged_files_are_refused_without_echoing_them() {
        for bad in [
            &b"hearth-household-epochs v1\n"[..],
            b"hearth-household-epochs v1\nepoch x AAAA\n",
            b"hearth-household-epochs v1\nepoch 1 AAAA\n",
            b"hearth-household-epochs v1\nsecret 1 AAAA\n",
            b"something else",
        ] {
            let err = Epochs::decode(bad).unwrap_err();
            assert!(!err.to_string().contains("AAAA"));
        }
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let epochs = Epochs::starting_at(Epoch::new(1, [0x42; 32]));
        let shown = format!("{epochs:?} {:?}", epochs.current().unwrap());
        assert!(!shown.contains("66"), "{shown}");
        assert!(!shown.contains("42"), "{shown}");
    }

    proptest! {
        /// Whatever order a set of epochs arrives in, every device ends on the same one.
        #[test]
        fn adoption_converges_in_any_order(
            epochs in proptest::collection::vec((0u64..4, any::<[u8; 32]>()), 1..8),
            seed in any::<u64>(),
        ) {
            use rand::seq::SliceRandom;
            let epochs: Vec<Epoch> = epochs.into_iter().map(|(n, s)| Epoch::new(n, s)).collect();
            let mut shuffled = epochs.clone();
            shuffled.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
            let mut one = Epochs::empty();
            let mut two = Epochs::empty();
            for e in &epochs { one.adopt(e.clone()); }
            for e in &shuffled { two.adopt(e.clone()); }
            prop_assert_eq!(one.current(), two.current());
            let back = Epochs::decode(&one.encode()).unwrap();
            prop_assert_eq!(back.current(), one.current());
        }
    }

    #[test]
    fn an_epoch_far_ahead_is_not_adopted_so_rotation_never_saturates() {
        let mut rng = rng();
        let mut epochs = Epochs::empty();
        epochs.rotate(&mut rng);
        let far = Epoch::new(u64::MAX, [0xff; SECRET_LEN]);
        assert!(!epochs.adopt(far));
        let near = Epoch::new(MAX_EPOCH_JUMP, [7; SECRET_LEN]);
        assert!(epochs.adopt(near));
        let next = epochs.rotate(&mut rng);
        assert_eq!(next.number, MAX_EPOCH_JUMP + 1);
    }

    /// The jump bound is relative to the receiver's current epoch, so it is not
    /// transitive: a partner's modified client (trusted while it is) pushes one of the
    /// other person's devices ahead in two steps, each within the bound; that device
    /// passes its epoch on, but the person's other device refuses it (too far ahead of
    /// its own) and the first ignores the lower one in return. The two never agree
    /// again, and once the pushed device has dropped the shared epoch from the ones it
    /// keeps (a few more pushes), neither can check the other's cover certificates.
    #[test]
    #[ignore = "known bug: MAX_EPOCH_JUMP is relative to the receiver, so a trusted modified client can split two honest devices onto epochs that never converge; the fix is a design change (see the review report)"]
    fn two_devices_that_exchange_epochs_converge_even_after_a_peer_pushed_one_far_ahead() {
        let start = Epoch::new(3, [1; SECRET_LEN]);
        let mut laptop = Epochs::starting_at(start.clone());
        let mut phone = Epochs::starting_at(start);
        // The partner's device sends the phone two epochs, each within the bound.
        assert!(phone.adopt(Epoch::new(3 + MAX_EPOCH_JUMP, [2; SECRET_LEN])));
        assert!(phone.adopt(Epoch::new(3 + 2 * MAX_EPOCH_JUMP, [3; SECRET_LEN])));
        // Laptop and phone then meet, as often as they like; every session hands each
        // side the other's current epoch when their tags differ.
        for _ in 0..4 {
            let from_laptop = laptop.current().unwrap().clone();
            let from_phone = phone.current().unwrap().clone();
            laptop.adopt(from_phone);
            phone.adopt(from_laptop);
        }
        assert_eq!(laptop.current(), phone.current());
    }
}
