//! The names Hearth announces on the local network, and how a device recognises its own.
//!
//! This module owns the token arithmetic only. It reads no clock and opens no socket: the
//! hour number and the salt come in as arguments, so tests can turn the clock freely.
//!
//! **What goes on the air.** Every announcement is one *label*: 4 random bytes of salt
//! followed by a 16-byte token, in lowercase hex (40 characters). The label is the mDNS
//! instance name, the host name (`<label>.local.`) and the only TXT value. It carries no
//! name, no device id and no key.
//!
//! - Household label: `HMAC-SHA256(household secret, "hearth-mdns" ‖ hour ‖ salt)`,
//!   truncated to 16 bytes. Only a holder of the secret can make or recognise one.
//! - Pairing label: `HMAC-SHA256("hearth-mdns-pair", number ‖ hour ‖ salt)`, truncated,
//!   where `number` is the number part of an open pairing code. It is a rendezvous
//!   marker, not a secret: the number has 99 values and the words of the code (checked by
//!   SPAKE2 over `hearth-pair/1`) are what keep a pairing safe.
//!
//! **Why a salt.** Without it, every device of one household would announce the same
//! instance and host name in the same hour: mDNS would see a name conflict, and anyone
//! listening could tell which devices belong together. A fresh salt per announcement
//! keeps each device's label unique and unlinkable to its housemates'. The salt is drawn
//! again whenever the hour changes (and at every start), so it never becomes a stable
//! identifier itself.
//!
//! **Matching.** A device accepts a label made for the current or the previous hour, so
//! a peer whose clock is a little behind (or a label announced just before the hour
//! turned) is still recognised.

use data_encoding::HEXLOWER;
use ring::hmac;

/// Bytes of HMAC output kept in a token.
pub const TOKEN_LEN: usize = 16;
/// Bytes of random salt before the token.
pub const SALT_LEN: usize = 4;
/// Length of a label in characters (hex of salt and token).
pub const LABEL_LEN: usize = 2 * (SALT_LEN + TOKEN_LEN);
/// Seconds in one token period.
pub const PERIOD_SECS: u64 = 3600;

const HOUSEHOLD_CONTEXT: &[u8] = b"hearth-mdns";
const PAIRING_KEY: &[u8] = b"hearth-mdns-pair";

/// The random salt of one announcement.
pub type Salt = [u8; SALT_LEN];

/// The hour number for a Unix time in seconds.
pub fn hour_of(unix_secs: u64) -> u64 {
    unix_secs / PERIOD_SECS
}

/// The seconds from `unix_secs` until the next hour starts (at least 1).
pub fn secs_to_next_hour(unix_secs: u64) -> u64 {
    PERIOD_SECS - unix_secs % PERIOD_SECS
}

/// The household token for `hour` and `salt`.
pub fn household_token(secret: &[u8; 32], hour: u64, salt: &Salt) -> [u8; TOKEN_LEN] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(HOUSEHOLD_CONTEXT);
    ctx.update(&hour.to_be_bytes());
    ctx.update(salt);
    truncate(ctx.sign())
}

/// The pairing token for a code's `number`, `hour` and `salt`.
pub fn pairing_token(number: u8, hour: u64, salt: &Salt) -> [u8; TOKEN_LEN] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, PAIRING_KEY);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(&[number]);
    ctx.update(&hour.to_be_bytes());
    ctx.update(salt);
    truncate(ctx.sign())
}

fn truncate(tag: hmac::Tag) -> [u8; TOKEN_LEN] {
    let mut out = [0u8; TOKEN_LEN];
    out.copy_from_slice(&tag.as_ref()[..TOKEN_LEN]);
    out
}

/// The label for a salt and a token.
pub fn label(salt: &Salt, token: &[u8; TOKEN_LEN]) -> String {
    let mut bytes = [0u8; SALT_LEN + TOKEN_LEN];
    bytes[..SALT_LEN].copy_from_slice(salt);
    bytes[SALT_LEN..].copy_from_slice(token);
    HEXLOWER.encode(&bytes)
}

/// The household label for `hour` with `salt`.
pub fn household_label(secret: &[u8; 32], hour: u64, salt: &Salt) -> String {
    label(salt, &household_token(secret, hour, salt))
}

/// The pairing label for `number` in `hour` with `salt`.
pub fn pairing_label(number: u8, hour: u64, salt: &Salt) -> String {
    label(salt, &pairing_token(number, hour, salt))
}

/// Splits a label into salt and token; `None` for anything else (another program's
/// instance, or a name mDNS renamed after a conflict).
pub fn parse_label(label: &str) -> Option<(Salt, [u8; TOKEN_LEN])> {
    if label.len() != LABEL_LEN {
        return None;
    }
    let bytes = HEXLOWER.decode(label.as_bytes()).ok()?;
    let salt: Salt = bytes.get(..SALT_LEN)?.try_into().ok()?;
    let token: [u8; TOKEN_LEN] = bytes.get(SALT_LEN..)?.try_into().ok()?;
    Some((salt, token))
}

/// The hours a label may be made for, seen at `hour`: this one and the one before.
fn accepted_hours(hour: u64) -> [u64; 2] {
    [hour, hour.saturating_sub(1)]
}

/// Whether `label` is a household label of `secret`, seen at `hour`.
///
/// Labels are public once announced, so this comparison need not be constant-time.
pub fn is_household(label: &str, secret: &[u8; 32], hour: u64) -> bool {
    parse_label(label).is_some_and(|(salt, token)| {
        accepted_hours(hour)
            .iter()
            .any(|h| household_token(secret, *h, &salt) == token)
    })
}

/// Whether `label` is a pairing label for `number`, seen at `hour`.
pub fn is_pairing(label: &str, number: u8, hour: u64) -> bool {
    parse_label(label).is_some_and(|(salt, token)| {
        accepted_hours(hour)
            .iter()
            .any(|h| pairing_token(number, *h, &salt) == token)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SECRET: [u8; 32] = [7u8; 32];
    const OTHER: [u8; 32] = [8u8; 32];
    const SALT: Salt = [1, 2, 3, 4];
    // 2026-11-27 10:00:00 UTC.
    const T0: u64 = 1_795_773_600;

    #[test]
    fn labels_are_fixed_length_lowercase_hex() {
        let l = household_label(&SECRET, hour_of(T0), &SALT);
        assert_eq!(l.len(), LABEL_LEN);
        assert!(l.len() <= 63, "a DNS label holds at most 63 bytes");
        assert!(l
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert!(l.starts_with("01020304"));
    }

    #[test]
    fn token_is_stable_within_the_hour_and_changes_when_it_turns() {
        // The clock is injected: these are seconds since the epoch, not now.
        let start = hour_of(T0);
        let late = hour_of(T0 + PERIOD_SECS - 1);
        let next = hour_of(T0 + PERIOD_SECS);
        assert_eq!(start, late);
        assert_ne!(start, next);
        let a = household_token(&SECRET, start, &SALT);
        assert_eq!(a, household_token(&SECRET, late, &SALT));
        assert_ne!(a, household_token(&SECRET, next, &SALT));
        assert_eq!(secs_to_next_hour(T0), PERIOD_SECS);
        assert_eq!(secs_to_next_hour(T0 + PERIOD_SECS - 1), 1);
    }

    #[test]
    fn current_and_previous_hour_match_and_nothing_else() {
        let h = hour_of(T0);
        let made_now = household_label(&SECRET, h, &SALT);
        let made_before = household_label(&SECRET, h - 1, &SALT);
        let made_long_ago = household_label(&SECRET, h - 2, &SALT);
        let made_ahead = household_label(&SECRET, h + 1, &SALT);
        assert!(is_household(&made_now, &SECRET, h));
        assert!(is_household(&made_before, &SECRET, h));
        assert!(!is_household(&made_long_ago, &SECRET, h));
        assert!(!is_household(&made_ahead, &SECRET, h));
        // The next hour accepts the label made in this one.
        assert!(is_household(&made_now, &SECRET, h + 1));
    }

    #[test]
    fn another_household_does_not_match() {
        let h = hour_of(T0);
        let mine = household_label(&SECRET, h, &SALT);
        assert!(!is_household(&mine, &OTHER, h));
    }

    #[test]
    fn salt_makes_housemates_labels_unlinkable() {
        let h = hour_of(T0);
        let a = household_label(&SECRET, h, &[0, 0, 0, 1]);
        let b = household_label(&SECRET, h, &[0, 0, 0, 2]);
        // Two devices of one household share no part of their labels but the salt
        // bytes they drew, and both are recognised.
        assert_ne!(a[8..], b[8..]);
        assert!(is_household(&a, &SECRET, h));
        assert!(is_household(&b, &SECRET, h));
    }

    #[test]
    fn a_tampered_or_foreign_label_is_refused() {
        let h = hour_of(T0);
        let good = household_label(&SECRET, h, &SALT);
        let mut flipped = good.clone().into_bytes();
        flipped[39] = if flipped[39] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert!(!is_household(&flipped, &SECRET, h));
        // Salt swapped: the token no longer fits.
        let reslated = format!("ffffffff{}", &good[8..]);
        assert!(!is_household(&reslated, &SECRET, h));
        for foreign in [
            "",
            "printer",
            &good[..39],
            &format!("{good} (2)"),
            &good.to_uppercase(),
        ] {
            assert!(!is_household(foreign, &SECRET, h), "{foreign}");
        }
    }

    #[test]
    fn pairing_labels_match_only_their_number() {
        let h = hour_of(T0);
        let four = pairing_label(4, h, &SALT);
        assert!(is_pairing(&four, 4, h));
        assert!(is_pairing(&four, 4, h + 1));
        assert!(!is_pairing(&four, 5, h));
        assert!(!is_pairing(&four, 4, h + 2));
        // A pairing label is never mistaken for a household one, or the reverse.
        assert!(!is_household(&four, &SECRET, h));
        assert!(!is_pairing(&household_label(&SECRET, h, &SALT), 4, h));
    }

    #[test]
    fn labels_leak_neither_the_secret_nor_anything_said_about_the_device() {
        let h = hour_of(T0);
        let l = household_label(&SECRET, h, &SALT);
        let secret_hex = HEXLOWER.encode(&SECRET);
        assert!(!l.contains(&secret_hex[..8]));
        // Over a day of hours with fresh salts, no label repeats and no token repeats.
        let mut seen = std::collections::BTreeSet::new();
        for hour in h..h + 24 {
            for salt in 0u32..4 {
                let s = salt.to_be_bytes();
                assert!(seen.insert(household_token(&SECRET, hour, &s)));
            }
        }
    }

    #[test]
    fn parse_round_trips() {
        let token = household_token(&SECRET, 9, &SALT);
        let l = label(&SALT, &token);
        assert_eq!(parse_label(&l), Some((SALT, token)));
    }
}
