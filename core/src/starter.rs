//! A short starter list of invisible work, for `hearth ledger starter`.
//!
//! Much of what a household carries is never written down because nobody sees it being
//! done. These few entries, in Hearth's own words, name some of it so a couple can add
//! what is true for them. Nothing here is added by itself: the caller adds only what the
//! person chose. Pure data; no IO.

use crate::model::{Cadence, Domain, Labour};

/// One piece of invisible work a couple may want on their ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StarterItem {
    /// A short stable key for `--add`.
    pub key: &'static str,
    /// The item's title.
    pub title: &'static str,
    /// Its area of life.
    pub domain: Domain,
    /// The kind of effort it takes.
    pub labour: Labour,
    /// How often it comes round.
    pub cadence: Cadence,
}

/// The starter list.
pub const STARTER: [StarterItem; 5] = [
    StarterItem {
        key: "peace",
        title: "Keeping the peace at home",
        domain: Domain::Emotional,
        labour: Labour::Emotional,
        cadence: Cadence::Daily,
    },
    StarterItem {
        key: "moods",
        title: "Keeping an eye on how everyone is feeling",
        domain: Domain::Emotional,
        labour: Labour::Emotional,
        cadence: Cadence::Daily,
    },
    StarterItem {
        key: "school",
        title: "Holding school in mind: forms, trips, what to pack",
        domain: Domain::Parenting,
        labour: Labour::Cognitive,
        cadence: Cadence::Weekly,
    },
    StarterItem {
        key: "health",
        title: "Health appointments, prescriptions and check-ups",
        domain: Domain::Logistics,
        labour: Labour::Cognitive,
        cadence: Cadence::Monthly,
    },
    StarterItem {
        key: "dates",
        title: "Birthdays and family dates, and the cards and gifts they need",
        domain: Domain::Social,
        labour: Labour::Cognitive,
        cadence: Cadence::Monthly,
    },
];

/// The starter item with this key.
pub fn by_key(key: &str) -> Option<&'static StarterItem> {
    STARTER.iter().find(|s| s.key == key.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_titles_fit() {
        for (i, a) in STARTER.iter().enumerate() {
            assert!(a.title.chars().count() <= crate::model::MAX_TITLE_CHARS);
            assert!(STARTER.iter().skip(i + 1).all(|b| b.key != a.key));
            assert_eq!(by_key(a.key), Some(a));
        }
        assert_eq!(by_key("nope"), None);
    }
}
