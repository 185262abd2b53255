//! The words people see for the model's closed enums, in one place, so `hearth` and the
//! insights renderers say the same thing. Keys (`BurnoutSign::key`, ...) are for files
//! and the wire; these are for people.

use crate::model::{Answer, Basic, BasicLevel, BodySign, BurnoutSign, Domain, MomentKind};

/// The words for ratings 0–4.
pub const RATING_WORDS: [&str; 5] = [
    "not at all",
    "a little",
    "somewhat",
    "quite a lot",
    "very much",
];

/// The three reflection questions, in order: energy, safe, aligned.
pub const REFLECTION_QUESTIONS: [&str; 3] = [
    "If you had more energy, would you want to work on this together?",
    "Do you feel emotionally safe with your partner?",
    "Are the two of you aligned on what you want?",
];

impl BurnoutSign {
    /// Plain words for a burnout sign, as a question's subject.
    pub fn label(self) -> &'static str {
        match self {
            BurnoutSign::Dread => "Dread of time together",
            BurnoutSign::Numb => "Numbness in conversation",
            BurnoutSign::Irritation => "Irritation at small things",
            BurnoutSign::Warmth => "Warmth or curiosity hard to reach",
            BurnoutSign::Relief => "Wishing for relief elsewhere",
        }
    }
}

impl BodySign {
    /// Plain words for a body sign.
    pub fn label(self) -> &'static str {
        match self {
            BodySign::Concentration => "poor concentration",
            BodySign::Fatigue => "fatigue",
            BodySign::Decisions => "decisions feel hard",
            BodySign::Digestion => "digestion trouble",
            BodySign::Aches => "aches or tension",
            BodySign::Sensitivity => "sensitive to light or noise",
            BodySign::Clumsiness => "clumsiness",
            BodySign::Forgetfulness => "forgetfulness",
            BodySign::Sleep => "sleeping too little or too much",
            BodySign::Numbness => "numbness",
            BodySign::Sickness => "getting sick often",
            BodySign::HairLoss => "hair loss",
        }
    }

    /// As a noun phrase in an insight ("what the body may be asking for").
    pub fn phrase(self) -> &'static str {
        match self {
            BodySign::Concentration => "trouble concentrating",
            BodySign::Fatigue => "tiredness",
            BodySign::Decisions => "decisions feeling hard",
            BodySign::Digestion => "an unsettled stomach",
            BodySign::Aches => "aches or tension",
            BodySign::Sensitivity => "sensitivity to light or noise",
            BodySign::Clumsiness => "clumsiness",
            BodySign::Forgetfulness => "forgetfulness",
            BodySign::Sleep => "sleeping too little or too much",
            BodySign::Numbness => "feeling numb",
            BodySign::Sickness => "getting ill often",
            BodySign::HairLoss => "hair loss",
        }
    }
}

impl Basic {
    /// Plain words for a basic.
    pub fn label(self) -> &'static str {
        match self {
            Basic::Sleep => "Sleep",
            Basic::Food => "Food",
            Basic::Safety => "Feeling safe",
            Basic::Rest => "Rest",
        }
    }

    /// The same in the middle of a sentence.
    pub fn word(self) -> &'static str {
        match self {
            Basic::Sleep => "sleep",
            Basic::Food => "food",
            Basic::Safety => "feeling safe",
            Basic::Rest => "rest",
        }
    }
}

impl BasicLevel {
    /// Plain words for a basics level.
    pub fn label(self) -> &'static str {
        match self {
            BasicLevel::Met => "met",
            BasicLevel::Partly => "partly met",
            BasicLevel::No => "not met",
        }
    }
}

impl MomentKind {
    /// Plain words for a moment kind.
    pub fn label(self) -> &'static str {
        match self {
            MomentKind::Glance => "a glance",
            MomentKind::Laugh => "a laugh",
            MomentKind::Touch => "a touch",
            MomentKind::Quiet => "quiet time together",
            MomentKind::Talk => "a talk",
            MomentKind::Other => "something else",
        }
    }
}

impl Domain {
    /// Plain words for a domain.
    pub fn label(self) -> &'static str {
        match self {
            Domain::Household => "household",
            Domain::Logistics => "logistics",
            Domain::Finances => "finances",
            Domain::Parenting => "parenting",
            Domain::Social => "social life",
            Domain::Emotional => "emotional upkeep",
            Domain::Relationship => "relationship upkeep",
            Domain::Other => "other",
        }
    }
}

impl Answer {
    /// Plain words for an answer.
    pub fn label(self) -> &'static str {
        match self {
            Answer::Yes => "yes",
            Answer::No => "no",
            Answer::Unsure => "not sure",
        }
    }
}
