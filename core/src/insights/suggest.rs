//! Suggestions: the next steps the signals call for, in the order of recovery.
//!
//! Basics come before small moments, small moments before looking at who holds what,
//! that before settling on "good enough", and that before support beyond the couple.
//! Every step that is called for is listed, the first one to start with, so that a
//! lingering stretch still shows who holds what, good enough and support; the whole
//! order, with where the couple stands, is [`recovery`].

use std::collections::BTreeMap;

use crate::model::{Answer, Basic};

// The trends and reflections that come in carry a safety answer only for the person
// reading the report (see `InsightInputs::viewer`), so every safety text here speaks to
// the one who gave the answer, never to their partner about them.

use super::{
    PersonTrend, RecoveryStage, ReflectionSummary, Signal, SignalKey, StageState, Step, Suggestion,
};

fn steps_for(key: SignalKey) -> &'static [Step] {
    match key {
        SignalKey::BasicsFirst | SignalKey::BodySigns => &[Step::Basics],
        SignalKey::BothDepleted => &[Step::Moments, Step::GoodEnough],
        SignalKey::Lingering => &[Step::WhoHoldsWhat, Step::GoodEnough, Step::Support],
        SignalKey::RoughPatch
        | SignalKey::FewerMoments
        | SignalKey::NobodyStarting
        | SignalKey::FewerAcks
        | SignalKey::ReflectionPointsToBurnout => &[Step::Moments],
        SignalKey::BalanceHeavy
        | SignalKey::BalanceLeaning
        | SignalKey::UnacknowledgedInvisibleWork => &[Step::WhoHoldsWhat],
        SignalKey::HandoffsDeclined => &[Step::GoodEnough],
        SignalKey::ReflectionMixed => &[Step::Support],
        SignalKey::ReflectionShared | SignalKey::NotEnoughData => &[],
    }
}

pub(super) fn suggestions(
    signals: &[Signal],
    trends: &[PersonTrend],
    reflections: &[ReflectionSummary],
) -> Vec<Suggestion> {
    let unsafe_now = trends
        .iter()
        .any(|t| t.basics_unmet_last_week.contains_key(&Basic::Safety))
        || reflections.iter().any(|r| r.safe == Some(Answer::No));
    let mut unmet: Vec<Basic> = trends
        .iter()
        .flat_map(|t| t.basics_unmet_last_week.keys().copied())
        .collect();
    unmet.sort();
    unmet.dedup();

    let mut steps: BTreeMap<Step, Vec<SignalKey>> = BTreeMap::new();
    for s in signals {
        for step in steps_for(s.key) {
            let because = steps.entry(*step).or_default();
            if !because.contains(&s.key) {
                because.push(s.key);
            }
        }
    }
    if unsafe_now {
        steps.entry(Step::Support).or_default();
    }
    if steps.is_empty() {
        let only_gaps = signals.iter().any(|s| s.key == SignalKey::NotEnoughData);
        let (step, because) = if only_gaps {
            (Step::CheckIn, vec![SignalKey::NotEnoughData])
        } else {
            (Step::KeepGoing, Vec::new())
        };
        return vec![Suggestion {
            step,
            text: text(step, &because, &unmet, unsafe_now),
            because,
        }];
    }

    steps
        .into_iter()
        .map(|(step, because)| Suggestion {
            step,
            text: text(step, &because, &unmet, unsafe_now),
            because,
        })
        .collect()
}

/// The whole order of recovery, each step marked by what the suggestions call for.
pub(super) fn recovery(suggestions: &[Suggestion]) -> Vec<RecoveryStage> {
    let called = |step: Step| suggestions.iter().any(|s| s.step == step);
    let now = Step::ORDER.iter().position(|s| called(*s));
    Step::ORDER
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let state = match now {
                Some(n) if i == n => StageState::Now,
                Some(_) if called(*step) => StageState::Also,
                Some(n) if i > n => StageState::Later,
                _ => StageState::Steady,
            };
            RecoveryStage { step: *step, state }
        })
        .collect()
}

fn text(step: Step, because: &[SignalKey], unmet: &[Basic], unsafe_now: bool) -> String {
    let has = |k: SignalKey| because.contains(&k);
    match step {
        Step::Basics => {
            let tips: Vec<&str> = unmet
                .iter()
                .filter_map(|b| match b {
                    Basic::Sleep => Some("an earlier night"),
                    Basic::Food => Some("regular, simple meals"),
                    Basic::Rest => Some("an hour with nothing planned"),
                    Basic::Safety => None,
                })
                .collect();
            let mut tips = match tips.as_slice() {
                [] => "sleep, food and some rest".to_string(),
                [one] => (*one).to_string(),
                [init @ .., last] => format!("{} and {last}", init.join(", ")),
            };
            // Restoring is more than sleep and food: the body and the mind get a say.
            let restore = "a little movement, such as a short walk, a few minutes of quiet, and some time on your own";
            if has(SignalKey::BodySigns) && tips == "sleep, food and some rest" {
                tips = "the sleep and rest your body may be asking for".to_string();
            }
            if unsafe_now && unmet.contains(&Basic::Safety) {
                format!("If you do not feel safe, that comes first: reach out to someone you trust or a local support service. Then, gently, {tips}, and {restore}.")
            } else {
                format!("Put the basics first this week: {tips}, and {restore}. Everything else can wait a little.")
            }
        }
        Step::Moments => {
            if has(SignalKey::BothDepleted) {
                "When you are both running low, aim small: ten quiet minutes together, with no problem-solving, is enough.".to_string()
            } else if because == [SignalKey::FewerAcks] {
                "Thank each other for one small thing this week, out loud or in Hearth.".to_string()
            } else {
                "Make room for one small moment together in the next few days: a cup of tea side by side, a short walk, a shared laugh. Small is the point.".to_string()
            }
        }
        Step::WhoHoldsWhat => {
            if because == [SignalKey::UnacknowledgedInvisibleWork] {
                "Look through the unseen work of the last weeks together, say thank you for it, and see whether one part could move to the other person.".to_string()
            } else {
                "Sit down for fifteen minutes and look at who holds what. Pick one stage, noticing or following up are good candidates, and propose handing it over.".to_string()
            }
        }
        Step::GoodEnough => {
            if has(SignalKey::HandoffsDeclined) {
                "If handing things over is not working right now, agree instead what \"good enough\" looks like for one or two items. Lowering the bar for a while is a fair choice.".to_string()
            } else {
                "Choose one or two items and agree a \"good enough\" standard for now. Lowering the bar for a while is a fair choice, not a failure.".to_string()
            }
        }
        Step::Support => {
            if unsafe_now {
                "Feeling unsafe deserves support from outside the two of you: someone you trust, a doctor, or a local helpline.".to_string()
            } else if has(SignalKey::Lingering) {
                "When heaviness lingers after rest, support from outside helps: a friend you trust, your doctor or a couples counsellor. You can bring this report along.".to_string()
            } else {
                "Consider support beyond the two of you: a friend you trust, your doctor or a couples counsellor. You can bring this report along.".to_string()
            }
        }
        Step::KeepGoing => {
            "Nothing here calls for a change. Keep the small things that work for you.".to_string()
        }
        Step::CheckIn => {
            "Whenever it suits you, a short check-in now and then is enough for patterns to show. There is nothing to catch up on.".to_string()
        }
    }
}
