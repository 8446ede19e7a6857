//! Customer-feedback sentences generated from templates written here, for the three kinds of
//! sentence the public sets lack and survey verbatims are full of: good outcomes stated plainly
//! ("the replacement came a day early" — no praise words), neutral facts about the customer ("we
//! pay for the business tier annually") and quiet complaints ("we are still waiting for the credit
//! note"). None of them is taken from the test fixture (`tests/fixtures/sentiment.csv`), which stays
//! held out; `tests/it/sentiment.rs` checks that no generated sentence equals a fixture sentence.

use super::data::{Example, Label};

const GOOD_SUBJECTS: &[&str] = &[
    "The replacement", "My new card", "The parcel", "Our order", "The credit note", "The technician",
    "The data migration", "The upgrade", "The password reset", "The exchange", "The installation",
    "The courier", "Our first invoice", "The return label", "The account transfer", "The repair",
];
const GOOD_OUTCOMES: &[&str] = &[
    "came a day early", "went through without a hitch", "was sorted within the hour", "worked first time",
    "was exactly as described", "took less than five minutes", "was done the same afternoon",
    "arrived well packed and on time", "was handled before we even asked", "solved it completely",
];

const FACT_OPENERS: &[&str] = &[
    "We pay for", "I signed up for", "We switched to", "Our company uses", "I mostly use", "We renewed",
    "My manager set up", "Our finance team handles", "I am writing about", "We moved to",
];
const FACT_OBJECTS: &[&str] = &[
    "the business tier", "the monthly plan", "the desktop version", "the standard package", "two licences",
    "the order from last Thursday", "the shared workspace", "the Android app", "the yearly subscription",
    "the starter bundle", "the London branch account", "the trial version",
];
const FACT_TAILS: &[&str] = &["", " this year", " since January", " for our sales team", " at the office", " through a reseller"];

const WAIT_OPENERS: &[&str] = &["I am still waiting for", "We are still waiting for", "I have been waiting two weeks for", "We have not yet received", "Still no sign of"];
const WAIT_OBJECTS: &[&str] = &[
    "the credit note", "my replacement card", "a call back", "the corrected invoice", "the missing items",
    "an answer to my email", "the engineer", "our money back", "the promised discount", "the new login details",
];
const STILL_SUBJECTS: &[&str] = &["The login issue", "The double charge", "The broken link", "The export bug", "My address change", "The missing refund"];
const STILL_STATES: &[&str] = &[
    "has still not been fixed", "is still on our statement", "was never resolved", "keeps coming back",
    "has not been looked at", "was closed without a reply",
];
const AGAIN: &[&str] = &[
    "This is the third time I have had to explain the problem.",
    "Nobody has called back since Monday.",
    "I was told it would be fixed by Friday and it was not.",
    "We had to enter everything by hand again.",
    "Each month someone has to correct the totals.",
    "My colleague gave up and used a competitor instead.",
    "I had to chase the order four times.",
    "The agent promised an update that never came.",
];

/// Every generated sentence with its label, in a fixed order.
pub fn examples() -> Vec<Example> {
    let mut out = Vec::new();
    let mut push = |text: String, label: Label| out.push(Example { text, label });
    for s in GOOD_SUBJECTS {
        for o in GOOD_OUTCOMES {
            push(format!("{s} {o}."), Label::Positive);
        }
    }
    for o in FACT_OPENERS {
        for (i, x) in FACT_OBJECTS.iter().enumerate() {
            let tail = FACT_TAILS[(i + o.len()) % FACT_TAILS.len()];
            push(format!("{o} {x}{tail}."), Label::Neutral);
        }
    }
    for o in WAIT_OPENERS {
        for x in WAIT_OBJECTS {
            push(format!("{o} {x}."), Label::Negative);
        }
    }
    for s in STILL_SUBJECTS {
        for x in STILL_STATES {
            push(format!("{s} {x}."), Label::Negative);
        }
    }
    for a in AGAIN {
        push(a.to_string(), Label::Negative);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn about_as_many_sentences_of_each_class_and_no_repeats() {
        let all = examples();
        let count = |l: Label| all.iter().filter(|e| e.label == l).count();
        assert_eq!((count(Label::Positive), count(Label::Neutral), count(Label::Negative)), (160, 120, 94));
        let mut texts: Vec<&str> = all.iter().map(|e| e.text.as_str()).collect();
        texts.sort_unstable();
        texts.dedup();
        assert_eq!(texts.len(), all.len());
    }
}
