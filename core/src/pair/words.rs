//! The pairing-code wordlist.
//!
//! This module owns the 256 words a pairing code is made of. They are short, common,
//! friendly English nouns, all lower-case letters, with no two alike, so that a code is
//! easy to read aloud and to type on a phone. The list must never be reordered or
//! edited once released: both devices have to agree on it.

/// The 256 words, sorted, so that one random byte picks one word.
pub(crate) const WORDS: [&str; 256] = [
    "acorn", "amber", "anchor", "apple", "apron", "arrow", "aspen", "atlas", "autumn", "badge",
    "bagel", "bamboo", "banjo", "barley", "basil", "beacon", "beaver", "bell", "berry", "bison",
    "blanket", "blossom", "bonnet", "border", "breeze", "brick", "bridge", "brook", "bubble",
    "bucket", "buckle", "button", "cabin", "cactus", "camel", "candle", "canoe", "canyon",
    "carrot", "castle", "cedar", "cello", "chalk", "cherry", "chess", "cider", "cinder", "cloud",
    "clover", "cobalt", "cocoa", "comet", "copper", "coral", "cotton", "cradle", "crane", "crayon",
    "cricket", "crown", "crystal", "cuckoo", "cumin", "dahlia", "daisy", "delta", "denim",
    "desert", "dolphin", "domino", "dove", "dragon", "drum", "dune", "eagle", "easel", "echo",
    "ember", "fable", "falcon", "feather", "fennel", "fern", "fiddle", "fig", "flute", "forest",
    "fossil", "fox", "garden", "garnet", "gecko", "ginger", "glacier", "globe", "goose", "granite",
    "grape", "gravel", "hammock", "harbor", "harp", "hazel", "heron", "hickory", "hill", "honey",
    "horizon", "husky", "igloo", "indigo", "iris", "island", "ivory", "jade", "jasmine", "jelly",
    "jewel", "jigsaw", "juniper", "kayak", "kettle", "kite", "kiwi", "koala", "ladder", "lagoon",
    "lamp", "lantern", "lava", "lemon", "lilac", "linen", "lizard", "lobster", "locket", "lotus",
    "lunar", "magnet", "mango", "maple", "marble", "meadow", "melon", "meteor", "mint", "mitten",
    "moose", "mosaic", "moss", "muffin", "mural", "nectar", "needle", "nest", "nickel", "noodle",
    "nutmeg", "oasis", "oat", "ocean", "olive", "onyx", "opal", "orange", "orbit", "orchid",
    "otter", "owl", "paddle", "panda", "papaya", "parrot", "peach", "pearl", "pebble", "pepper",
    "piano", "pickle", "pillow", "pine", "planet", "plum", "pocket", "pony", "poppy", "prairie",
    "puffin", "pumpkin", "quail", "quartz", "quill", "quilt", "rabbit", "radish", "rainbow",
    "raven", "reef", "ribbon", "river", "robin", "rocket", "rose", "ruby", "saddle", "saffron",
    "sage", "salmon", "sandal", "satin", "sequoia", "shadow", "shell", "sierra", "silver",
    "sketch", "sleigh", "sparrow", "spruce", "squash", "stone", "summit", "sunny", "swan", "tango",
    "teapot", "thistle", "thunder", "tide", "tiger", "timber", "toffee", "topaz", "tulip",
    "tundra", "turnip", "turtle", "valley", "velvet", "vine", "violet", "violin", "wagon",
    "walnut", "walrus", "wheat", "willow", "window", "winter", "wren", "yarrow", "yogurt", "zebra",
    "zephyr", "zest", "zinnia",
];

/// The index of `word` in [`WORDS`], if it is one of them.
pub(crate) fn index_of(word: &str) -> Option<u8> {
    let index = WORDS.binary_search(&word).ok()?;
    u8::try_from(index).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_sorted_distinct_short_and_lowercase() {
        assert!(WORDS.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(WORDS
            .iter()
            .all(|w| (3..=7).contains(&w.len()) && w.chars().all(|c| c.is_ascii_lowercase())));
    }

    #[test]
    fn every_word_is_found_at_its_index() {
        for (i, word) in WORDS.iter().enumerate() {
            assert_eq!(index_of(word).map(usize::from), Some(i));
        }
        assert_eq!(index_of("zzz"), None);
    }
}
