//! `hearth together`: a weekly walk for the two of you, in the order of recovery.
//!
//! This module owns the steps of the walk and the conversation prompts, in Hearth's own
//! words, and picks the prompts for a given week so that none comes back within a
//! month. It is a pure function of the records this device can read and the date: it
//! reads no clock and shows no one's safety answer (the basics step leaves `safety` out
//! for both, since the walk is read together on one screen).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::doc::Docs;
use crate::model::{Basic, BasicLevel, ItemStatus, PersonId};

/// Conversation prompts. Two are used a week, in turn, so each comes back only after
/// ten weeks.
pub const PROMPTS: [&str; 20] = [
    "What was one small moment this week when you felt close?",
    "What is one thing the other did lately that made your day easier?",
    "When did you laugh together last? What was it about?",
    "What would a slow half hour together look like this week?",
    "Is there something you have been carrying quietly that you would like to share?",
    "What could you both let slide this week without anything falling apart?",
    "Which part of the week do you look forward to most, and why?",
    "What helps you feel rested, even a little?",
    "Is there a small thing you would like more of from each other?",
    "What is one thing you would like to thank the other for, out loud?",
    "When does the house feel calmest? What makes it so?",
    "What is something you used to enjoy together that you miss?",
    "Which job at home feels heaviest right now, and what would lighten it?",
    "What does a good-enough week look like to each of you?",
    "Is there someone outside the two of you who could take something on for a while?",
    "What is one plan you could make for just the two of you, however small?",
    "How do you each like to be cared for on a hard day?",
    "What worry would you like to set down together for now?",
    "What did you notice the other doing this week that nobody thanked them for?",
    "If next week went gently, what would be different?",
];

/// One step of the walk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TogetherStep {
    /// `basics`, `moment`, `ledger`, `good-enough` or `support`.
    pub key: String,
    /// A short heading.
    pub title: String,
    /// What to do or talk about, in a few plain sentences.
    pub text: String,
    /// A question to start with, if the step has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
}

/// The walk for one week.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Together {
    /// The date it was put together for.
    pub today: NaiveDate,
    /// About how long it takes, in minutes.
    pub minutes: u32,
    /// The steps, in the order of recovery.
    pub steps: Vec<TogetherStep>,
    /// How to close the walk: a reflection, revealed together.
    pub closing: String,
}

/// The two prompts of the week that holds `today`.
pub fn prompts_for(today: NaiveDate) -> [&'static str; 2] {
    // Weeks counted from a fixed Monday, so the choice is the same on both devices.
    let epoch = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or(today);
    let week =
        usize::try_from((today - epoch).num_days().div_euclid(7).rem_euclid(10)).unwrap_or(0);
    [PROMPTS[week * 2], PROMPTS[week * 2 + 1]]
}

fn basics_line(docs: &Docs, person: PersonId, name: &str, today: NaiveDate) -> String {
    let from = today
        .checked_sub_days(chrono::Days::new(6))
        .unwrap_or(today);
    let checkins = docs.checkins_between(person, from, today);
    if checkins.is_empty() {
        return format!("{name}: no check-in this week; how have sleep, food and rest been?");
    }
    // Safety is left out on purpose: this screen is read together (THREAT-MODEL.md P8).
    let short: Vec<&str> = [Basic::Sleep, Basic::Food, Basic::Rest]
        .into_iter()
        .filter(|b| {
            checkins
                .iter()
                .any(|c| matches!(c.basics.get(b), Some(BasicLevel::Partly | BasicLevel::No)))
        })
        .map(|b| match b {
            Basic::Sleep => "sleep",
            Basic::Food => "food",
            _ => "rest",
        })
        .collect();
    if short.is_empty() {
        format!("{name}: sleep, food and rest looked mostly fine this week.")
    } else {
        format!(
            "{name}: {} fell short on some days this week.",
            short.join(" and ")
        )
    }
}

/// Puts the walk together for the week holding `today`.
pub fn together(docs: &Docs, today: NaiveDate) -> Together {
    let [first, second] = prompts_for(today);
    let mut people = docs.people();
    people.sort_by_key(|p| (p.joined_at, p.id));
    let basics: Vec<String> = people
        .iter()
        .map(|p| basics_line(docs, p.id, &p.name, today))
        .collect();
    let items = docs.ledger_items();
    // The heaviest active item that is not agreed by everyone yet, else the heaviest.
    let everyone = |agreed: &std::collections::BTreeSet<PersonId>| {
        people.iter().all(|p| agreed.contains(&p.id))
    };
    let active: Vec<_> = items
        .iter()
        .filter(|i| i.status == ItemStatus::Active)
        .collect();
    let look_at = active
        .iter()
        .filter(|i| !everyone(&i.agreed_by))
        .max_by_key(|i| (i.weight, i.created_at))
        .or_else(|| active.iter().max_by_key(|i| (i.weight, i.created_at)));
    let ledger_text = match look_at {
        Some(item) => format!(
            "Look at “{}” together. Ask, without keeping score: what does it take, who notices when it needs doing, and what would make it lighter? `hearth ledger edit`, `hearth ledger handoff` and `hearth ledger agree` record what you decide.",
            item.title
        ),
        None => "Nothing is on the ledger yet. `hearth ledger starter` offers a few pieces of invisible work to begin with, if any are true for you.".to_string(),
    };
    let steps = vec![
        TogetherStep {
            key: "basics".into(),
            title: "The basics, for each of you".into(),
            text: format!(
                "{} Anything that would help this week: an earlier night, simple meals, a short walk, a few quiet minutes, some time alone?",
                basics.join(" ")
            ),
            prompt: None,
        },
        TogetherStep {
            key: "moment".into(),
            title: "One small moment to plan".into(),
            text: "Choose one small thing to share this week, ten minutes is enough, and when. `hearth moment` notes it afterwards.".into(),
            prompt: Some(first.to_string()),
        },
        TogetherStep {
            key: "ledger".into(),
            title: "One thing you carry".into(),
            text: ledger_text,
            prompt: None,
        },
        TogetherStep {
            key: "good-enough".into(),
            title: "What could be lighter for now".into(),
            text: "Name one or two expectations you could lower for a while. `hearth ledger pause` sets something down for now; it is a choice, not a failure.".into(),
            prompt: Some(second.to_string()),
        },
        TogetherStep {
            key: "support".into(),
            title: "Support from outside".into(),
            text: "Would someone outside the two of you help right now: a friend, family, a doctor or a counsellor? It is fine if the answer is not yet.".into(),
            prompt: None,
        },
    ];
    Together {
        today,
        minutes: 15,
        steps,
        closing: "If you like, end with a reflection revealed together: each of you runs `hearth reflect --visibility reveal-together`, and both answers open once you have both answered.".into(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn no_prompt_comes_back_within_a_month() {
        let start = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
        for offset in 0..400u64 {
            let day = start + chrono::Days::new(offset);
            let now = prompts_for(day);
            for back in 1..=31u64 {
                let earlier = prompts_for(day - chrono::Days::new(back));
                if earlier == now {
                    continue; // the same week
                }
                assert!(
                    now.iter().all(|p| !earlier.contains(p)),
                    "{day}: a prompt came back within a month"
                );
            }
        }
        let all: std::collections::BTreeSet<&str> = PROMPTS.iter().copied().collect();
        assert_eq!(all.len(), PROMPTS.len());
    }
}
