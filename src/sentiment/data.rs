//! The sentiment training and dev sets, from `../shared/data` (or any directory laid out alike):
//!
//! - SST-2 (`sst2/train.tsv`, `sst2/dev.tsv`: `label<TAB>text`, 0 negative / 1 positive), PTB
//!   tokenisation undone ("it 's" → "it's", "-lrb-" → "(") so it reads like real text;
//! - TweetEval sentiment validation (`tweeteval/val_text.txt` + `val_labels.txt`: 0 / 1 / 2);
//! - the clothing reviews (`clothing_reviews/reviews.csv`, `Review Text` + `Rating`): 1–2 stars
//!   negative, 3 neutral, 4–5 positive; empty reviews skipped; a fixed 10% (every tenth review by
//!   its row id) held out as dev, a further 5% (row ≡ 5 mod 20) held out for calibration; with
//!   `DataMix::review_titles`, the titles of the training reviews too ("Runs small", "Obsessed"),
//!   each labelled by its review's stars;
//! - with `DataMix::labelled_sentences`, the Amazon and Yelp labelled sentences
//!   ([`super::sentences`]), which are not in `data_dir` but fetched from the npm registry.
//!
//! Training uses SST-2 train, TweetEval and 85% of the reviews; the dev sets are SST-2 dev and
//! the held-out reviews.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Label {
    Negative = 0,
    Neutral = 1,
    Positive = 2,
}

impl Label {
    pub const ALL: [Label; 3] = [Label::Negative, Label::Neutral, Label::Positive];

    pub fn as_str(self) -> &'static str {
        match self {
            Label::Negative => "negative",
            Label::Neutral => "neutral",
            Label::Positive => "positive",
        }
    }

    /// The label named `s` (exactly as [`Label::as_str`] writes it).
    pub fn parse(s: &str) -> Option<Label> {
        Label::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// The label named `s`, or the message every surface gives for a name that is not one.
    pub fn parse_named(s: &str) -> Result<Label, String> {
        Label::parse(s).ok_or_else(|| format!("{s:?} is not negative, neutral or positive"))
    }

    /// Star rating → label: 1–2 negative, 3 neutral, 4–5 positive (on a 1–5 scale).
    pub fn from_stars(stars: u32) -> Option<Label> {
        match stars {
            1 | 2 => Some(Label::Negative),
            3 => Some(Label::Neutral),
            4 | 5 => Some(Label::Positive),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub text: String,
    pub label: Label,
}

/// Everything training needs, by set.
#[derive(Debug, Clone, Default)]
pub struct SentimentData {
    pub train: Vec<Example>,
    /// SST-2 dev: binary (no neutral examples).
    pub sst2_dev: Vec<Example>,
    /// The held-out 10% of the clothing reviews: three classes.
    pub reviews_dev: Vec<Example>,
    /// A further 5% of the reviews (rows ≡ 5 mod 20), kept out of training to calibrate the
    /// probabilities (temperature) without touching the dev sets.
    pub reviews_calibration: Vec<Example>,
}

/// What training takes beside SST-2, TweetEval and the reviews. The default takes nothing
/// more (what [`load`] reads); training's default ([`DataMix::TRAINING`]) adds the
/// customer-service data. Recorded flat in `metrics.json` (each field defaults when absent, so
/// files written before a field existed still read) and replayed by `--from-responses`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataMix {
    /// The customer-service data: Banking77 queries labelled by intent ([`banking77_by_intent`])
    /// and the generated feedback sentences ([`super::feedback::examples`], repeated
    /// [`FEEDBACK_REPEATS`] times so a few hundred sentences weigh in against 30,000).
    #[serde(default)]
    pub customer_data: bool,
    /// The hand-written feedback sentences ([`super::feedback::written`]), this many times over.
    #[serde(default)]
    pub written_repeats: usize,
    /// The second hand-written set ([`super::feedback::outcomes`]), this many times over.
    #[serde(default)]
    pub outcome_repeats: usize,
    /// The 1–2-star training reviews this many times more (beside their one copy among the
    /// reviews): a heavier share of quiet, product-specific complaints within the negative class,
    /// whose total weight the balanced class weights keep fixed.
    #[serde(default)]
    pub negative_review_repeats: usize,
    /// The 3-star training reviews this many times more: the neutral side of the 2-star / 3-star
    /// boundary, which weighting only the negative side moves rather than sharpens.
    #[serde(default)]
    pub neutral_review_repeats: usize,
    /// The titles of the training reviews, each labelled by its review's stars: ~16,700 short
    /// texts real customers wrote ("Runs small", "Great dress, poor stitching"), nearer a survey
    /// segment than a whole review is, and written by nobody here.
    #[serde(default)]
    pub review_titles: bool,
    /// SST-2 train this many times more, after the titles: its share of the polar classes
    /// back where it was before the titles (16,734 short, noisily labelled texts) diluted it.
    #[serde(default)]
    pub sst2_repeats: usize,
    /// The 2,000 hand-labelled one-line Amazon and Yelp reviews ([`super::sentences`], fetched
    /// from the npm registry) this many times over, last of all: good and bad outcomes told
    /// plainly by real customers ("Will be back again!", "never a wait").
    #[serde(default)]
    pub labelled_sentences: usize,
    /// The third hand-written set ([`super::feedback::plain`]) this many times over, last of all.
    #[serde(default)]
    pub plain_repeats: usize,
}

impl DataMix {
    /// What `verbatim train sentiment` takes unless told otherwise.
    pub const TRAINING: DataMix =
        DataMix { customer_data: true, written_repeats: 0, outcome_repeats: 0, negative_review_repeats: 0, neutral_review_repeats: 0, review_titles: false, sst2_repeats: 0, labelled_sentences: 0, plain_repeats: 0 };

    /// The smallest mix holding each of `mixes` (what a mean of branches trained on them replays).
    pub fn widest(mixes: impl IntoIterator<Item = DataMix>) -> DataMix {
        mixes.into_iter().fold(DataMix::default(), |a, b| DataMix {
            customer_data: a.customer_data || b.customer_data,
            written_repeats: a.written_repeats.max(b.written_repeats),
            outcome_repeats: a.outcome_repeats.max(b.outcome_repeats),
            negative_review_repeats: a.negative_review_repeats.max(b.negative_review_repeats),
            neutral_review_repeats: a.neutral_review_repeats.max(b.neutral_review_repeats),
            review_titles: a.review_titles || b.review_titles,
            sst2_repeats: a.sst2_repeats.max(b.sst2_repeats),
            labelled_sentences: a.labelled_sentences.max(b.labelled_sentences),
            plain_repeats: a.plain_repeats.max(b.plain_repeats),
        })
    }
}

impl std::fmt::Display for DataMix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let customer = if self.customer_data { "with" } else { "without" };
        write!(f, "{customer} customer-service data, hand-written sentences ×{}, second set ×{}", self.written_repeats, self.outcome_repeats)?;
        if self.negative_review_repeats > 0 {
            write!(f, ", 1–2-star reviews ×{} more", self.negative_review_repeats)?;
        }
        if self.neutral_review_repeats > 0 {
            write!(f, ", 3-star reviews ×{} more", self.neutral_review_repeats)?;
        }
        if self.review_titles {
            write!(f, ", review titles")?;
        }
        if self.sst2_repeats > 0 {
            write!(f, ", SST-2 ×{} more", self.sst2_repeats)?;
        }
        if self.labelled_sentences > 0 {
            write!(f, ", Amazon and Yelp sentences ×{}", self.labelled_sentences)?;
        }
        if self.plain_repeats > 0 {
            write!(f, ", third set ×{}", self.plain_repeats)?;
        }
        Ok(())
    }
}

/// Loads all sets from `data_dir` (e.g. `../shared/data`), nothing beyond the shared sets in training.
pub fn load(data_dir: &Path) -> Result<SentimentData> {
    load_with(data_dir, DataMix::default())
}

/// [`load`], with training taking what `mix` adds too (the dev and calibration sets never change).
pub fn load_with(data_dir: &Path, mix: DataMix) -> Result<SentimentData> {
    let sst2_train = sst2(&data_dir.join("sst2/train.tsv"))?;
    let mut train = sst2_train.clone();
    train.extend(tweeteval(&data_dir.join("tweeteval/val_text.txt"), &data_dir.join("tweeteval/val_labels.txt"))?);
    let reviews = reviews(&data_dir.join("clothing_reviews/reviews.csv"))?;
    let rated = |label| -> Vec<Example> { reviews.train.iter().filter(|e| e.label == label).cloned().collect() };
    let (negative_reviews, neutral_reviews) = (rated(Label::Negative), rated(Label::Neutral));
    train.extend(reviews.train);
    if mix.customer_data {
        train.extend(banking77_by_intent(&data_dir.join("banking77/train.csv"), BANKING77_PER_CLASS)?);
        train.extend(repeated(super::feedback::examples(), FEEDBACK_REPEATS));
    }
    train.extend(repeated(super::feedback::written(), mix.written_repeats));
    train.extend(repeated(super::feedback::outcomes(), mix.outcome_repeats));
    // Last, so that a mix without them keeps the training order (and weights) it always had.
    train.extend(repeated(negative_reviews, mix.negative_review_repeats));
    train.extend(repeated(neutral_reviews, mix.neutral_review_repeats));
    if mix.review_titles {
        train.extend(reviews.titles);
    }
    train.extend(repeated(sst2_train, mix.sst2_repeats));
    if mix.labelled_sentences > 0 {
        train.extend(repeated(super::sentences::load(&super::sentences::dir())?, mix.labelled_sentences));
    }
    train.extend(repeated(super::feedback::plain(), mix.plain_repeats));
    Ok(SentimentData { train, sst2_dev: sst2(&data_dir.join("sst2/dev.tsv"))?, reviews_dev: reviews.dev, reviews_calibration: reviews.calibration })
}

/// `set` `times` over, in order (the training order, hence the trained weights, depends on it).
fn repeated(set: Vec<Example>, times: usize) -> impl Iterator<Item = Example> {
    (0..times).flat_map(move |_| set.clone())
}

/// Banking77 queries per class (negative, neutral) taken into training.
pub const BANKING77_PER_CLASS: usize = 1500;
pub const FEEDBACK_REPEATS: usize = 3;

/// Intents whose queries report a problem: quiet complaints ("I am still waiting on my card?",
/// "my transfer failed") without angry words, which the public sentiment sets lack.
const PROBLEM_INTENTS: &[&str] = &[
    "Refund_not_showing_up", "balance_not_updated_after_bank_transfer", "balance_not_updated_after_cheque_or_cash_deposit",
    "card_arrival", "card_not_working", "card_payment_not_recognised", "card_payment_wrong_exchange_rate", "card_swallowed",
    "cash_withdrawal_not_recognised", "compromised_card", "contactless_not_working", "declined_card_payment",
    "declined_cash_withdrawal", "declined_transfer", "direct_debit_payment_not_recognised", "extra_charge_on_statement",
    "failed_transfer", "lost_or_stolen_card", "lost_or_stolen_phone", "pin_blocked", "top_up_failed", "top_up_reverted",
    "transaction_charged_twice", "transfer_not_received_by_recipient", "unable_to_verify_identity",
    "virtual_card_not_working", "wrong_amount_of_cash_received", "wrong_exchange_rate_for_cash_withdrawal",
];

/// Intents whose queries ask how something works: neutral questions.
const HOW_TO_INTENTS: &[&str] = &[
    "activate_my_card", "age_limit", "apple_pay_or_google_pay", "atm_support", "automatic_top_up", "card_about_to_expire",
    "card_acceptance", "card_delivery_estimate", "card_linking", "change_pin", "country_support", "disposable_card_limits",
    "edit_personal_details", "exchange_rate", "exchange_via_app", "fiat_currency_support", "get_disposable_virtual_card",
    "get_physical_card", "getting_spare_card", "getting_virtual_card", "order_physical_card", "receiving_money",
    "supported_cards_and_currencies", "top_up_by_bank_transfer_charge", "top_up_by_card_charge", "top_up_by_cash_or_cheque",
    "top_up_limits", "topping_up_by_card", "transfer_into_account", "transfer_timing", "verify_my_identity",
    "verify_source_of_funds", "verify_top_up", "visa_or_mastercard", "why_verify_identity",
];

/// Banking77 (`text,category`) as weak sentiment labels: problem reports negative, how-to
/// questions neutral; intents that could be either (pending payments, fees, cancelling) are left
/// out. At most `per_class` of each, evenly spaced through the file (deterministic).
pub fn banking77_by_intent(path: &Path, per_class: usize) -> Result<Vec<Example>> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| bad(path, 0, &e.to_string()))?;
    let (mut negative, mut neutral) = (Vec::new(), Vec::new());
    for (row, record) in reader.records().enumerate() {
        let record = record.map_err(|e| bad(path, row + 2, &e.to_string()))?;
        let (text, intent) = (record.get(0).unwrap_or("").trim(), record.get(1).unwrap_or("").trim());
        if text.is_empty() {
            continue;
        }
        let example = |label| Example { text: text.to_string(), label };
        if PROBLEM_INTENTS.contains(&intent) {
            negative.push(example(Label::Negative));
        } else if HOW_TO_INTENTS.contains(&intent) {
            neutral.push(example(Label::Neutral));
        }
    }
    let spaced = |v: Vec<Example>| -> Vec<Example> {
        let step = v.len().div_ceil(per_class.max(1)).max(1);
        v.into_iter().step_by(step).collect()
    };
    let mut out = spaced(negative);
    out.extend(spaced(neutral));
    Ok(out)
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::Io(std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))))
}

fn bad(path: &Path, line: usize, what: &str) -> Error {
    Error::invalid("data", format!("{}:{line}: {what}", path.display()))
}

/// `label<TAB>text` lines, 0 negative / 1 positive.
pub fn sst2(path: &Path) -> Result<Vec<Example>> {
    read(path)?
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let (label, text) = line.split_once('\t').ok_or_else(|| bad(path, i + 1, "expected label<TAB>text"))?;
            let label = match label.trim() {
                "0" => Label::Negative,
                "1" => Label::Positive,
                other => return Err(bad(path, i + 1, &format!("label {other:?} is not 0 or 1"))),
            };
            Ok(Example { text: detokenize(text), label })
        })
        .collect()
}

/// Parallel text and label files, 0 negative / 1 neutral / 2 positive.
pub fn tweeteval(texts: &Path, labels: &Path) -> Result<Vec<Example>> {
    let (t, l) = (read(texts)?, read(labels)?);
    let (t, l): (Vec<&str>, Vec<&str>) = (t.lines().collect(), l.lines().collect());
    if t.len() != l.len() {
        return Err(bad(labels, l.len(), &format!("{} labels for {} texts", l.len(), t.len())));
    }
    t.iter()
        .zip(&l)
        .enumerate()
        .map(|(i, (text, label))| {
            let label = match label.trim() {
                "0" => Label::Negative,
                "1" => Label::Neutral,
                "2" => Label::Positive,
                other => return Err(bad(labels, i + 1, &format!("label {other:?} is not 0, 1 or 2"))),
            };
            Ok(Example { text: text.trim().to_string(), label })
        })
        .collect()
}

/// The clothing reviews, split by row number: dev (row ≡ 0 mod 10), calibration (row ≡ 5 mod 20)
/// and train (the rest).
#[derive(Debug, Clone, Default)]
pub struct Reviews {
    pub train: Vec<Example>,
    pub dev: Vec<Example>,
    pub calibration: Vec<Example>,
    /// The non-empty titles of the train rows (a row whose review is empty included), labelled
    /// by the row's stars: never a dev or calibration row's.
    pub titles: Vec<Example>,
}

pub fn reviews(path: &Path) -> Result<Reviews> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| bad(path, 0, &e.to_string()))?;
    let headers = reader.headers().map_err(|e| bad(path, 1, &e.to_string()))?.clone();
    let column = |name: &str| headers.iter().position(|h| h == name).ok_or_else(|| bad(path, 1, &format!("no {name:?} column")));
    let (text_col, rating_col) = (column("Review Text")?, column("Rating")?);
    let title_col = headers.iter().position(|h| h == "Title");
    let mut out = Reviews::default();
    for (row, record) in reader.records().enumerate() {
        let record = record.map_err(|e| bad(path, row + 2, &e.to_string()))?;
        let text = record.get(text_col).unwrap_or("").trim();
        let stars: u32 = record.get(rating_col).unwrap_or("").trim().parse().map_err(|_| bad(path, row + 2, "Rating is not 1–5"))?;
        let label = Label::from_stars(stars).ok_or_else(|| bad(path, row + 2, "Rating is not 1–5"))?;
        let split = match (row % 10, row % 20) {
            (0, _) => &mut out.dev,
            (_, 5) => &mut out.calibration,
            _ => {
                let title = title_col.and_then(|c| record.get(c)).unwrap_or("").trim();
                if !title.is_empty() {
                    out.titles.push(Example { text: title.to_string(), label });
                }
                &mut out.train
            }
        };
        if !text.is_empty() {
            split.push(Example { text: text.to_string(), label });
        }
    }
    Ok(out)
}

/// Undoes Penn-Treebank tokenisation: "it 's a -lrb- good -rrb- film , is n't it ?" →
/// "it's a (good) film, isn't it?".
pub fn detokenize(text: &str) -> String {
    let mut s = format!(" {} ", text.trim());
    for (from, to) in [("-lrb- ", "("), (" -rrb-", ")"), ("-lsb- ", "["), (" -rsb-", "]"), ("`` ", "\""), (" ''", "\"")] {
        s = s.replace(from, to);
    }
    for suffix in [" n't", " 's", " 're", " 've", " 'm", " 'll", " 'd", " ,", " .", " !", " ?", " ;", " :", " %"] {
        s = s.replace(&format!("{suffix} "), &format!("{} ", &suffix[1..]));
    }
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_widest_mix_holds_each_one() {
        assert_eq!(DataMix::widest([]), DataMix::default());
        let a = DataMix { customer_data: false, written_repeats: 3, outcome_repeats: 0, negative_review_repeats: 2, neutral_review_repeats: 0, review_titles: true, sst2_repeats: 0, labelled_sentences: 2, plain_repeats: 3 };
        let b = DataMix { customer_data: true, written_repeats: 1, outcome_repeats: 2, negative_review_repeats: 0, neutral_review_repeats: 1, review_titles: false, sst2_repeats: 2, labelled_sentences: 1, plain_repeats: 0 };
        assert_eq!(
            DataMix::widest([a, b]),
            DataMix { customer_data: true, written_repeats: 3, outcome_repeats: 2, negative_review_repeats: 2, neutral_review_repeats: 1, review_titles: true, sst2_repeats: 2, labelled_sentences: 2, plain_repeats: 3 }
        );
        assert_eq!(DataMix::widest([a]), a);
    }

    #[test]
    fn ptb_tokenisation_is_undone() {
        assert_eq!(detokenize("it 's a -lrb- good -rrb- film , is n't it ? "), "it's a (good) film, isn't it?");
        assert_eq!(detokenize("`` wow '' , they said ."), "\"wow\", they said.");
    }

    #[test]
    fn stars_map_to_three_classes() {
        let labels: Vec<Option<Label>> = (0..=6).map(Label::from_stars).collect();
        use Label::*;
        assert_eq!(labels, [None, Some(Negative), Some(Negative), Some(Neutral), Some(Positive), Some(Positive), None]);
    }

    #[test]
    fn files_load_with_a_fixed_dev_split_and_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = |name: &str| dir.path().join(name);
        std::fs::write(p("s.tsv"), "1\tgreat fun .\n0\tdull , dull .\n").unwrap();
        assert_eq!(sst2(&p("s.tsv")).unwrap(), [Example { text: "great fun.".into(), label: Label::Positive }, Example { text: "dull, dull.".into(), label: Label::Negative }]);
        std::fs::write(p("bad.tsv"), "1\tok\n7\tno\n").unwrap();
        assert!(sst2(&p("bad.tsv")).unwrap_err().to_string().contains("bad.tsv:2: label \"7\""));
        let mut csv = String::from(",Title,Review Text,Rating\n");
        for i in 0..20 {
            csv.push_str(&format!("{i},Title {i},\"review {i}, with a comma\",{}\n", 1 + i % 5));
        }
        csv.push_str("20,,,5\n21,Only a title,,5\n22,,review 22,4\n");
        std::fs::write(p("r.csv"), csv).unwrap();
        let Reviews { train, dev, calibration, titles } = reviews(&p("r.csv")).unwrap();
        assert_eq!((train.len(), dev.len(), calibration.len()), (18, 2, 1));
        assert_eq!(dev[0], Example { text: "review 0, with a comma".into(), label: Label::Negative });
        assert_eq!(dev[1].text, "review 10, with a comma", "every tenth row, the empty review skipped");
        assert_eq!(calibration[0].text, "review 5, with a comma");
        assert_eq!(train.iter().filter(|e| e.label == Label::Neutral).count(), 4, "3 stars: rows 2, 7, 12, 17");
        // Titles: the train rows' only (not rows 0, 10 or 5), an empty review's title kept, an
        // empty title skipped; each labelled by its row's stars.
        let named: Vec<&str> = titles.iter().map(|e| e.text.as_str()).collect();
        let expected: Vec<String> = (0..20).filter(|i| i % 10 != 0 && i % 20 != 5).map(|i| format!("Title {i}")).chain(["Only a title".to_string()]).collect();
        assert_eq!(named, expected);
        let stars: Vec<Label> = titles[..4].iter().map(|e| e.label).collect();
        assert_eq!(stars, [Label::Negative, Label::Neutral, Label::Positive, Label::Positive], "rows 1–4: 2, 3, 4 and 5 stars");
    }
}
