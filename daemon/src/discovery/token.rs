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
//!
//! **Service types.** The DNS-SD service type a label is announced under rotates with
//! the labels, so that nothing on the air says Hearth is in use (THREAT-MODEL P5):
//!
//! - Household service: `_<s>._udp.local.` with `s` twelve lowercase letters drawn from
//!   `HMAC-SHA256(household secret, "hearth-service" ‖ hour)`. Every device of one
//!   household computes the same type for the hour, and nobody else can.
//! - Pairing service: the same from `HMAC-SHA256("hearth-service-pair", number ‖ hour)`.
//!   Like the pairing label, it is a rendezvous marker, not a secret: with 99 numbers a
//!   listener can compute all 99 types of the hour and learn that *someone* is pairing
//!   with some Hearth-like protocol; the code's words, checked by SPAKE2, keep the
//!   pairing itself safe.
//!
//! The letters come from an alphabet without `h`, so no type ever spells a word that
//! names the program. Twelve letters fit RFC 6763's limit of 15 characters and contain
//! a letter as RFC 6335 requires. A device announces under the current hour's type and
//! browses the current and the previous hour's, like the labels it accepts.

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
const SERVICE_CONTEXT: &[u8] = b"hearth-service";
const PAIRING_SERVICE_KEY: &[u8] = b"hearth-service-pair";

/// Letters in a service name (after the leading underscore).
pub const SERVICE_NAME_LEN: usize = 12;
/// The letters a service name is made of: `a` to `z` without `h`.
const SERVICE_ALPHABET: &[u8; 25] = b"abcdefgijklmnopqrstuvwxyz";
/// The protocol and domain every service type ends with.
pub const SERVICE_DOMAIN: &str = "._udp.local.";

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

/// The household's DNS-SD service type for `hour`, e.g. `_qzkfmbwtaxle._udp.local.`.
pub fn household_service(secret: &[u8; 32], hour: u64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(SERVICE_CONTEXT);
    ctx.update(&hour.to_be_bytes());
    service_type(&ctx.sign())
}

/// The DNS-SD service type an inviter with a code's `number` announces under in `hour`.
pub fn pairing_service(number: u8, hour: u64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, PAIRING_SERVICE_KEY);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(&[number]);
    ctx.update(&hour.to_be_bytes());
    service_type(&ctx.sign())
}

/// The household service types to browse at `hour`: this hour's and the previous one's.
pub fn household_services(secret: &[u8; 32], hour: u64) -> [String; 2] {
    accepted_hours(hour).map(|h| household_service(secret, h))
}

/// The pairing service types to browse at `hour` for `number`.
pub fn pairing_services(number: u8, hour: u64) -> [String; 2] {
    accepted_hours(hour).map(|h| pairing_service(number, h))
}

fn service_type(tag: &hmac::Tag) -> String {
    let name: String = tag.as_ref()[..SERVICE_NAME_LEN]
        .iter()
        .map(|b| char::from(SERVICE_ALPHABET[usize::from(*b) % SERVICE_ALPHABET.len()]))
        .collect();
    format!("_{name}{SERVICE_DOMAIN}")
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

    /// What mdns-sd and RFC 6763/6335 ask of a service type.
    fn assert_valid_service(ty: &str) {
        let name = ty
            .strip_prefix('_')
            .and_then(|t| t.strip_suffix(SERVICE_DOMAIN))
            .unwrap_or_else(|| panic!("{ty} is not _<name>._udp.local."));
        assert_eq!(name.len(), SERVICE_NAME_LEN, "{ty}");
        assert!(name.len() <= 15, "RFC 6763 allows 15 characters: {ty}");
        assert!(name.bytes().all(|b| b.is_ascii_lowercase()), "{ty}");
        assert!(!ty.to_ascii_lowercase().contains("hearth"), "{ty}");
        assert!(!name.contains('h'), "{ty}");
    }

    #[test]
    fn service_types_are_valid_dns_sd_names_and_never_say_hearth() {
        for hour in hour_of(T0)..hour_of(T0) + 500 {
            assert_valid_service(&household_service(&SECRET, hour));
            for number in [1, 42, 99] {
                assert_valid_service(&pairing_service(number, hour));
            }
        }
    }

    #[test]
    fn service_types_rotate_per_hour_and_differ_per_household() {
        let h = hour_of(T0);
        let now = household_service(&SECRET, h);
        assert_eq!(
            now,
            household_service(&SECRET, hour_of(T0 + PERIOD_SECS - 1))
        );
        assert_ne!(now, household_service(&SECRET, h + 1));
        assert_ne!(now, household_service(&OTHER, h));
        assert_eq!(
            household_services(&SECRET, h),
            [now.clone(), household_service(&SECRET, h - 1)]
        );
        // Over a day, no type repeats, and no household type is a pairing type.
        let mut seen = std::collections::BTreeSet::new();
        for hour in h..h + 24 {
            assert!(seen.insert(household_service(&SECRET, hour)));
            assert!(seen.insert(household_service(&OTHER, hour)));
            assert!(seen.insert(pairing_service(4, hour)));
        }
        assert_ne!(pairing_service(4, h), pairing_service(5, h));
        assert_eq!(
            pairing_services(4, h),
            [pairing_service(4, h), pairing_service(4, h - 1)]
        );
    }

    #[test]
    fn parse_round_trips() {
        let token = household_token(&SECRET, 9, &SALT);
        let l = label(&SALT, &token);
        assert_eq!(parse_label(&l), Some((SALT, token)));
    }
}
