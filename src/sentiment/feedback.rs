//! Customer-feedback sentences generated from templates written here, for the kinds of sentence
//! the public sets lack and survey verbatims are full of: good outcomes stated plainly ("the
//! replacement came a day early" — no praise words), neutral facts about the customer ("we pay
//! for the business tier annually") and quiet complaints ("we are still waiting for the credit
//! note").
//!
//! The service words are **contrastive**: every object, actor and process that appears in a
//! complaint also appears, as often, in a good outcome ("we are still waiting for a call back" /
//! "I got a call back within the hour"), so what decides the label is what happened, not which
//! word is present. (An earlier version put "a call back" and "our money back" only in complaints,
//! and the branch learned to read "Customer service called me back within ten minutes" as
//! negative.) Improvements told through words that sound bad ("no downtime since the move",
//! "minutes instead of hours") are paired with their regressions for the same reason.
//!
//! None of them is taken from the test fixtures (`tests/fixtures/sentiment*.csv`), which stay held
//! out; `tests/it/sentiment.rs` checks that no generated sentence equals a fixture sentence.

use super::data::{Example, Label};

/// Good outcomes with no praise word: subject × outcome, five outcomes per subject (rotating).
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

/// Things a customer waits for: each is still awaited in a complaint and arrives promptly in a
/// good outcome.
const AWAITED: &[&str] = &[
    "the credit note", "my replacement card", "a call back", "the corrected invoice", "the missing items",
    "an answer to my email", "our money back", "the promised discount", "the new login details", "the refund",
    "a reply from support", "the tracking number",
];
const WAIT_OPENERS: &[&str] = &["I am still waiting for", "We are still waiting for", "I have been waiting two weeks for", "We have not yet received", "Still no sign of"];
const GOT_OPENERS: &[&str] = &["I got", "We received", "We had", "I had", "We got"];
const PROMPTLY: &[&str] = &["the same day", "within the hour", "the next morning", "in under ten minutes", "before the weekend"];

/// Problems, each left open in a complaint and put right in a good outcome.
const PROBLEMS: &[&str] = &["The login issue", "The double charge", "The broken link", "The export bug", "My address change", "The missing refund"];
const LEFT_OPEN: &[&str] = &[
    "has still not been fixed", "is still on our statement", "was never resolved", "keeps coming back",
    "has not been looked at", "was closed without a reply",
];
const PUT_RIGHT: &[&str] = &[
    "was fixed the same day", "was sorted on the first call", "was put right within the hour",
    "has not come back since", "was looked at straight away", "was cleared up by the next morning",
];

/// People who serve the customer, each doing good and bad things in plain words.
const ACTORS: &[&str] = &["Customer service", "The support team", "The agent", "The help desk", "Our account manager", "The engineer", "The driver", "The shop assistant"];
const SERVED_WELL: &[&str] = &[
    "called me back within a quarter of an hour", "explained the bill line by line", "set everything up before lunch",
    "stayed with me until it worked", "sent the tracking number straight away", "refunded the fee without me asking",
    "spotted the problem before it cost us anything", "sorted it out in one email",
];
const SERVED_BADLY: &[&str] = &[
    "never called me back", "read from a script and hung up", "left without fixing anything",
    "closed the ticket without a reply", "gave me a different answer each time", "did not turn up",
    "only spotted the problem after it had cost us money", "needed six emails to sort it out",
];

/// Processes that got faster or more reliable (good) or slower and flakier (bad), in pairs whose
/// two sides share most of their words.
const PROCESSES: &[&str] = &["The weekly report", "Month-end close", "The export", "Our invoice run", "Searching old orders", "The nightly sync", "Checkout", "Onboarding new staff"];
const BETTER_WORSE: &[(&str, &str)] = &[
    ("now takes seconds instead of minutes", "now takes minutes instead of seconds"),
    ("has not failed once since the update", "has failed twice since the update"),
    ("needs no manual fixes any more", "needs manual fixes every time"),
    ("is down to two clicks", "now takes a dozen clicks"),
    ("runs without anyone watching it", "stops unless someone watches it"),
];
const SINCE: &[&str] = &["the migration", "we moved to you", "the new router went in", "the last release", "we switched plans"];
const SINCE_BETTER_WORSE: &[(&str, &str)] = &[
    ("We have had no downtime since", "We have had downtime every week since"),
    ("Nothing has gone missing since", "Two orders have gone missing since"),
    ("Nobody has had to chase an invoice since", "Someone has had to chase every invoice since"),
];

/// Neutral facts about the customer: what they use, what they asked about, what they ordered.
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
const ABOUT_OPENERS: &[&str] = &["My ticket was about", "The call was about", "I emailed support about", "This message is about"];
const ABOUT_TOPICS: &[&str] = &["an invoice from March", "the billing address", "adding a user", "the delivery date", "our plan renewal", "a password reset"];
const ORDERED: &[&str] = &["I ordered the dress", "I bought the jumper", "We ordered the chairs", "I picked the boots"];
const ORDERED_HOW: &[&str] = &["in navy", "in a size 12", "in grey and black", "in the larger size"];

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
    use Label::*;
    let mut out = Vec::new();
    let mut push = |text: String, label: Label| out.push(Example { text, label });
    for (i, s) in GOOD_SUBJECTS.iter().enumerate() {
        for k in 0..5 {
            push(format!("{s} {}.", GOOD_OUTCOMES[(i + 2 * k) % GOOD_OUTCOMES.len()]), Positive);
        }
    }
    for (i, x) in AWAITED.iter().enumerate() {
        for (k, w) in WAIT_OPENERS.iter().enumerate() {
            push(format!("{w} {x}."), Negative);
            push(format!("{} {x} {}.", GOT_OPENERS[(i + k) % GOT_OPENERS.len()], PROMPTLY[k]), Positive);
        }
    }
    for p in PROBLEMS {
        for (bad, good) in LEFT_OPEN.iter().zip(PUT_RIGHT) {
            push(format!("{p} {bad}."), Negative);
            push(format!("{p} {good}."), Positive);
        }
    }
    for a in ACTORS {
        for (good, bad) in SERVED_WELL.iter().zip(SERVED_BADLY) {
            push(format!("{a} {good}."), Positive);
            push(format!("{a} {bad}."), Negative);
        }
    }
    for p in PROCESSES {
        for (better, worse) in BETTER_WORSE {
            push(format!("{p} {better}."), Positive);
            push(format!("{p} {worse}."), Negative);
        }
    }
    for s in SINCE {
        for (better, worse) in SINCE_BETTER_WORSE {
            push(format!("{better} {s}."), Positive);
            push(format!("{worse} {s}."), Negative);
        }
    }
    for o in FACT_OPENERS {
        for (i, x) in FACT_OBJECTS.iter().enumerate() {
            let tail = FACT_TAILS[(i + o.len()) % FACT_TAILS.len()];
            push(format!("{o} {x}{tail}."), Neutral);
        }
    }
    for o in ABOUT_OPENERS {
        for t in ABOUT_TOPICS {
            push(format!("{o} {t}."), Neutral);
        }
    }
    for o in ORDERED {
        for h in ORDERED_HOW {
            push(format!("{o} {h}."), Neutral);
        }
    }
    for a in AGAIN {
        push(a.to_string(), Negative);
    }
    out
}

/// Sentences written one by one (`feedback_written.tsv`: `label<TAB>text`), not from templates:
/// the same three kinds across more trades (garages, clinics, insurers, hotels, councils, gyms,
/// payroll, hosting …) in words no template uses, plus the clauses a contrast split leaves ("but
/// the staff were lovely", "but nobody has called me back"). Written after the ninth fixture was
/// committed, without reading the eighth's or ninth's misses; none is close to a fixture sentence.
/// Opt-in (`train sentiment --written-repeats N`); the committed branch is a mean of a branch
/// trained without them and two that took them three times (`models/sentiment/HISTORY.md`).
pub fn written() -> Vec<Example> {
    parse_tsv("feedback_written.tsv", include_str!("feedback_written.tsv"))
}

/// A second set written one by one (`feedback_outcomes.tsv`), aimed at what the branch still
/// reads wrong: good outcomes told plainly or by denying something bad ("nothing was broken or
/// missing", "hassle-free"), money going down as good news, things better than expected, and
/// features that now work. Each good outcome has a bad twin in the same words (money going up,
/// worse than expected, a feature that no longer works, "no one answered the phone"), so the
/// label follows what happened, not a word such as "no" or "bill"; plus neutral facts about the
/// same things. Written before any branch trained on it was scored; every sentence has word
/// overlap below 0.40 with each fixture sentence and below 0.55 with each `feedback_written.tsv`
/// sentence (tested). Opt-in: `train sentiment --outcome-repeats N`.
pub fn outcomes() -> Vec<Example> {
    parse_tsv("feedback_outcomes.tsv", include_str!("feedback_outcomes.tsv"))
}

/// A third set written one by one (`feedback_plain.tsv`, 190 sentences: 79 positive, 60 neutral,
/// 51 negative) over more kinds of business than the first two (utilities, healthcare, travel,
/// insurance, trades beside SaaS, retail, delivery and billing): good outcomes told plainly
/// ("The plumber cleaned up after himself and left the kitchen spotless."), neutral facts about
/// plans, orders and contacts, and quiet complaints. Written in one sitting without reading any
/// fixture or any branch's misses. 269 were written; the 79 that came as close to a fixture
/// sentence (74) or to a sentence of the first two sets (5) as the second set's limits allow were
/// dropped, not reworded, so the set keeps the same distance as the second (tested). Opt-in:
/// `train sentiment --plain-repeats N`.
pub fn plain() -> Vec<Example> {
    parse_tsv("feedback_plain.tsv", include_str!("feedback_plain.tsv"))
}

/// `label<TAB>text` lines; a malformed line is a bug in the committed file, so it panics naming it.
fn parse_tsv(name: &str, tsv: &str) -> Vec<Example> {
    tsv.lines()
        .enumerate()
        .map(|(i, line)| {
            let (label, text) = line.split_once('\t').unwrap_or_else(|| panic!("{name}:{}: no tab", i + 1));
            let label = Label::parse(label).unwrap_or_else(|| panic!("{name}:{}: unknown label {label:?}", i + 1));
            Example { text: text.to_string(), label }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn about_as_many_sentences_of_each_class_and_no_repeats() {
        let all = examples();
        let count = |l: Label| all.iter().filter(|e| e.label == l).count();
        assert_eq!((count(Label::Positive), count(Label::Neutral), count(Label::Negative)), (295, 160, 223));
        let mut texts: Vec<&str> = all.iter().map(|e| e.text.as_str()).collect();
        texts.sort_unstable();
        texts.dedup();
        assert_eq!(texts.len(), all.len());
    }

    #[test]
    fn written_sentences_parse_with_their_labels_and_none_is_generated() {
        let written = written();
        let count = |l: Label| written.iter().filter(|e| e.label == l).count();
        assert_eq!((count(Label::Positive), count(Label::Neutral), count(Label::Negative)), (153, 107, 151));
        let generated = examples();
        assert!(written.iter().all(|w| !w.text.is_empty() && !generated.iter().any(|g| g.text == w.text)));
    }

    #[test]
    fn the_outcome_sentences_parse_and_repeat_no_other_training_sentence() {
        let outcomes = outcomes();
        let count = |l: Label| outcomes.iter().filter(|e| e.label == l).count();
        assert_eq!((count(Label::Positive), count(Label::Neutral), count(Label::Negative)), (66, 46, 69));
        let others: Vec<String> = examples().into_iter().chain(written()).map(|e| e.text.to_lowercase()).collect();
        assert!(outcomes.iter().all(|o| !o.text.is_empty() && !others.contains(&o.text.to_lowercase())));
        let mut texts: Vec<&str> = outcomes.iter().map(|e| e.text.as_str()).collect();
        texts.sort_unstable();
        texts.dedup();
        assert_eq!(texts.len(), outcomes.len());
    }

    #[test]
    fn service_words_appear_on_both_sides() {
        let all = examples();
        for word in ["call back", "called me back", "money back", "refund", "since", "instead of", "the agent"] {
            let with = |l: Label| all.iter().filter(|e| e.label == l && e.text.to_lowercase().contains(word)).count();
            let (good, bad) = (with(Label::Positive), with(Label::Negative));
            assert!(good > 0 && bad > 0, "{word:?}: {good} positive, {bad} negative");
        }
    }
}
