//! Naming a theme: class-based TF-IDF keywords (unigrams and bigrams, stop words removed), a short
//! label built from them, and representative quotes near the centroid that are not near-duplicates.
//!
//! c-TF-IDF (Grootendorst 2022, BERTopic): all segments of a theme form one document; a term's
//! weight in theme c is `tf(t, c) · ln(1 + A / f(t))`, where `tf` is the term's frequency in c
//! normalised by c's term count, `A` the average number of terms per theme and `f(t)` the term's
//! frequency across all themes. Frequent-everywhere words ("app", "the") sink; words that mark one
//! theme rise.

use std::collections::{HashMap, HashSet};

/// Common English words that carry no theme.
const STOP_WORDS: &[&str] = &[
    "a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any", "are", "aren't", "as", "at",
    "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "can't", "cannot", "could",
    "couldn't", "did", "didn't", "do", "does", "doesn't", "doing", "don't", "down", "during", "each", "even", "ever", "few",
    "for", "from", "further", "get", "got", "had", "hadn't", "has", "hasn't", "have", "haven't", "having", "he", "her",
    "here", "hers", "herself", "hi", "hello", "him", "himself", "his", "how", "i", "i'd", "i'll", "i'm", "i've", "if", "in",
    "into", "is", "isn't", "it", "it's", "its", "itself", "just", "let's", "me", "more", "most", "much", "my", "myself",
    "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "ought", "our", "ours", "ourselves",
    "out", "over", "own", "please", "really", "same", "she", "should", "shouldn't", "so", "some", "still", "such", "than",
    "that", "that's", "the", "their", "theirs", "them", "themselves", "then", "there", "there's", "these", "they",
    "they're", "this", "those", "through", "to", "too", "under", "until", "up", "us", "very", "was", "wasn't", "we",
    "we're", "we've", "were", "weren't", "what", "what's", "when", "where", "which", "while", "who", "whom", "why",
    "will", "with", "won't", "would", "wouldn't", "you", "you're", "your", "yours", "yourself", "yourselves", "ok",
    "okay", "thanks", "thank", "yes", "yeah", "one", "way", "s", "t", "d", "ll", "m", "re", "ve",
];

/// Hedges and intensifiers: words that carry no theme but are common enough in verbatims to make
/// a keyword ("honestly records / crm integration"). Kept out of keywords only: a segment of them
/// still counts as saying something to segmentation and to sentiment training.
const FILLER_WORDS: &[&str] = &[
    "absolutely", "actually", "anyway", "anyways", "basically", "bit", "certainly", "definitely", "everything", "extremely",
    "honestly", "imho", "imo", "literally", "lol", "lot", "lots", "maybe", "overall", "perhaps", "probably", "quite",
    "rather", "seriously", "simply", "somewhat", "something", "tbh", "thing", "things", "totally", "truly",
];

/// Praise and blame: how people feel about a thing, not what it is. A label of them ("skirt /
/// beautiful skirt / cute skirt", "fit / perfectly / fits perfectly") names no topic, and the
/// report shows a theme's sentiment and score beside its label. "Like" is praise or a preposition
/// ("looked / looked like", "coat like", "fits like"), never a topic. Kept out of keywords only.
const EVALUATIVE_WORDS: &[&str] = &[
    "amazing", "awesome", "awful", "bad", "beautiful", "best", "cute", "excellent", "fantastic", "favorite", "favourite", "gorgeous",
    "great", "good", "horrible", "like", "liked", "likes", "love", "loved", "lovely", "loves", "nice", "perfect", "perfectly", "poor",
    "pretty", "terrible", "wonderful", "worst",
];

fn is_stop_word(w: &str) -> bool {
    static SET: std::sync::OnceLock<std::collections::HashSet<&'static str>> = std::sync::OnceLock::new();
    let set = SET.get_or_init(|| STOP_WORDS.iter().copied().collect());
    set.contains(w) || w.len() < 2 || w.chars().all(|c| c.is_ascii_digit())
}

/// A word no keyword is made of: a stop word, a filler, praise or blame.
fn is_no_keyword(w: &str) -> bool {
    static SET: std::sync::OnceLock<std::collections::HashSet<&'static str>> = std::sync::OnceLock::new();
    let set = SET.get_or_init(|| FILLER_WORDS.iter().chain(EVALUATIVE_WORDS).copied().collect());
    is_stop_word(w) || set.contains(w)
}

/// Lower-cased word tokens (letters, digits, inner apostrophes).
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’'))
        .map(|w| w.trim_matches(|c| c == '\'' || c == '’').replace('’', "'").to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Content terms of a text: unigrams that are not stop words, fillers or praise and blame, and
/// bigrams of two adjacent ones.
pub fn terms(text: &str) -> Vec<String> {
    let words = words(text);
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        if is_no_keyword(w) {
            continue;
        }
        out.push(w.clone());
        if let Some(next) = words.get(i + 1) {
            if !is_no_keyword(next) {
                out.push(format!("{w} {next}"));
            }
        }
    }
    out
}

/// Words of a text that are not stop words.
pub fn content_word_count(text: &str) -> usize {
    words(text).iter().filter(|w| !is_stop_word(w)).count()
}

/// A segment with no content word ("ok", "n/a", "👍", "thanks!") cannot say what it is about.
pub fn is_content_free(text: &str) -> bool {
    words(text).iter().all(|w| is_stop_word(w) || matches!(w.as_str(), "n" | "a" | "na" | "none" | "nothing" | "nope" | "good" | "great" | "fine" | "nil"))
}

/// The top `n` c-TF-IDF terms of each class. `docs[c]` holds the texts of class c.
pub fn class_keywords(docs: &[Vec<&str>], n: usize) -> Vec<Vec<String>> {
    let counts: Vec<HashMap<String, f64>> = docs
        .iter()
        .map(|texts| {
            let mut c = HashMap::new();
            for t in texts.iter().flat_map(|t| terms(t)) {
                *c.entry(t).or_insert(0.0) += 1.0;
            }
            c
        })
        .collect();
    let mut across: HashMap<&str, f64> = HashMap::new();
    for c in &counts {
        for (t, k) in c {
            *across.entry(t.as_str()).or_insert(0.0) += k;
        }
    }
    let totals: Vec<f64> = counts.iter().map(|c| c.values().sum()).collect();
    let average = totals.iter().sum::<f64>() / totals.len().max(1) as f64;
    counts
        .iter()
        .zip(&totals)
        .map(|(c, &total)| {
            let mut scored: Vec<(&str, f64)> = c
                .iter()
                .map(|(t, &k)| {
                    // Bigrams that occur once are noise; a repeated bigram names a theme better
                    // than either of its words, so it gets a small boost.
                    let bigram = t.contains(' ');
                    let weight = if bigram && k < 2.0 { 0.0 } else if bigram { 1.2 } else { 1.0 };
                    (t.as_str(), weight * (k / total.max(1.0)) * (1.0 + average / across[t.as_str()]).ln())
                })
                .filter(|(_, s)| *s > 0.0)
                .collect();
            scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
            let mut chosen: Vec<String> = Vec::new();
            let mut chosen_roots: HashSet<String> = HashSet::new();
            for (t, _) in scored {
                // Skip a term every word of which a chosen term already says, in any inflection:
                // "dresses" after "dress", "recommended" after "highly recommend", "dresses fit"
                // after "dress fit", "fits tight" after "fit" and "tight".
                if t.split(' ').all(|w| chosen_roots.contains(&word_root(w))) {
                    continue;
                }
                chosen.push(t.to_string());
                chosen_roots.extend(t.split(' ').map(word_root));
                if chosen.len() == n {
                    break;
                }
            }
            chosen
        })
        .collect()
}

/// The word cut to a rough root, so that the inflections a label would show twice meet: plurals
/// (buttons, dresses, deliveries, boxes), -ed and -ing (washed, shipping, tried), a final e
/// (charge), a possessive, and the irregular past of verbs feedback uses (wore / worn, shrank,
/// bought). Not a stemmer: it only decides which keywords repeat each other.
fn word_root(word: &str) -> String {
    let w = word.strip_suffix("'s").unwrap_or(word);
    if let Some(&(_, base)) = IRREGULAR.iter().find(|(form, _)| *form == w) {
        return word_root(base);
    }
    let cut = |suffix: &str| w.strip_suffix(suffix).filter(|r| r.chars().count() >= 3);
    let mut root = if let Some(r) = w.strip_suffix("ies").or_else(|| w.strip_suffix("ied")).filter(|r| r.chars().count() >= 2) {
        format!("{r}y")
    } else if let Some(r) = cut("es").filter(|r| r.ends_with("ss") || r.ends_with('x') || r.ends_with("ch") || r.ends_with("sh")) {
        r.to_string()
    } else if let Some(r) = cut("s").filter(|r| !(r.ends_with('s') || r.ends_with('u') || r.ends_with('i'))) {
        r.to_string()
    } else if let Some(r) = cut("ed").or_else(|| cut("ing")) {
        // Shipped, fitting: the doubled consonant goes (not in billing, dressing, buzzing).
        let mut r = r.to_string();
        if let [.., a, b] = r.chars().collect::<Vec<_>>()[..] {
            if a == b && a.is_ascii_alphabetic() && !"aeioulsz".contains(a) {
                r.pop();
            }
        }
        r
    } else {
        w.to_string()
    };
    if root.chars().count() > 3 && root.ends_with('e') {
        root.pop();
    }
    root
}

/// Irregular past forms and their verb, for [`word_root`].
const IRREGULAR: &[(&str, &str)] = &[
    ("bought", "buy"), ("broke", "break"), ("broken", "break"), ("built", "build"), ("came", "come"), ("chose", "choose"),
    ("chosen", "choose"), ("felt", "feel"), ("found", "find"), ("gave", "give"),
    ("given", "give"), ("kept", "keep"), ("lost", "lose"), ("paid", "pay"), ("ran", "run"), ("sent", "send"), ("shrank", "shrink"),
    ("shrunk", "shrink"), ("sold", "sell"), ("spent", "spend"), ("taken", "take"), ("took", "take"), ("tore", "tear"),
    ("torn", "tear"), ("wore", "wear"), ("worn", "wear"), ("wrote", "write"), ("written", "write"),
];

/// A short human-readable label from the top keywords: "card arrival / delivery".
pub fn label_from_keywords(keywords: &[impl AsRef<str>]) -> String {
    if keywords.is_empty() {
        return "(no keywords)".to_string();
    }
    keywords.iter().take(3).map(|k| k.as_ref()).collect::<Vec<_>>().join(" / ")
}

/// One label per theme ([`label_from_keywords`]), no two alike: two themes whose top three
/// keywords agree — in any order: "size / usually wear / ordered" and "usually wear / size /
/// ordered" — read as one in a report or an alert ("hubspot sync / lose data / silently fails"
/// twice), so the smaller theme's third keyword gives way to its next keyword that tells the two
/// apart, and only when none does, a number. `sizes` orders the themes: the larger keeps its label.
pub fn distinct_labels(keywords: &[Vec<String>], sizes: &[usize]) -> Vec<String> {
    // A label as a reader compares it: its keywords, whatever their order.
    let key = |terms: &[&String]| {
        let mut terms: Vec<&str> = terms.iter().map(|t| t.as_str()).collect();
        terms.sort_unstable();
        terms.join(" / ")
    };
    let mut order: Vec<usize> = (0..keywords.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(sizes[i]), i));
    let mut used = std::collections::HashSet::new();
    let mut labels = vec![String::new(); keywords.len()];
    for i in order {
        let kw = &keywords[i];
        let mut terms: Vec<&String> = kw.iter().take(3).collect();
        if kw.len() > 3 && used.contains(&key(&terms)) {
            if let Some(next) = kw[3..].iter().find(|k| !used.contains(&key(&[&kw[0], &kw[1], k]))) {
                terms[2] = next;
            }
        }
        let (mut label, mut seen) = (label_from_keywords(&terms), key(&terms));
        if used.contains(&seen) {
            let n = (2..).find(|n| !used.contains(&format!("{seen} ({n})"))).expect("some number is free");
            (label, seen) = (format!("{label} ({n})"), format!("{seen} ({n})"));
        }
        used.insert(seen);
        labels[i] = label;
    }
    labels
}

/// Picks up to `n` quotes: candidates in order of closeness to the centroid (`order`), skipping any
/// whose vector is within `max_similarity` cosine of an already chosen quote, or whose text is the
/// same after normalisation.
pub fn representative_quotes(order: &[usize], texts: &[&str], vectors: &[&[f32]], n: usize, max_similarity: f32) -> Vec<usize> {
    let mut chosen: Vec<usize> = Vec::new();
    let mut seen_texts: Vec<String> = Vec::new();
    for &i in order {
        let key = words(texts[i]).join(" ");
        if key.is_empty() || seen_texts.contains(&key) {
            continue;
        }
        if chosen.iter().any(|&j| dot(vectors[i], vectors[j]) > max_similarity) {
            continue;
        }
        chosen.push(i);
        seen_texts.push(key);
        if chosen.len() == n {
            break;
        }
    }
    chosen
}

pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_words_match_tokenised_words() {
        for w in STOP_WORDS {
            assert_eq!(words(w), [w.to_string()], "{w} would never match a token");
        }
    }

    #[test]
    fn terms_drop_stop_words_and_keep_bigrams_of_content_words() {
        assert_eq!(terms("I'm still waiting for my refund card!"), ["waiting", "refund", "refund card", "card"]);
        // Hedges are no theme: "honestly, records duplicated" is about records.
        assert_eq!(terms("Honestly, records duplicated a bit"), ["records", "records duplicated", "duplicated"]);
        // Praise is how, not what: "beautiful skirt" is about the skirt.
        assert_eq!(terms("Beautiful skirt, love the pockets"), ["skirt", "pockets"]);
        assert_eq!(terms("It looked like a tent, I liked the color"), ["looked", "tent", "color"]);
    }

    #[test]
    fn content_free_segments() {
        for t in ["ok", "n/a", "👍", "Thanks!", "nothing", "great", "ok thanks"] {
            assert!(is_content_free(t), "{t}");
        }
        for t in ["slow support", "refund please", "the app crashes"] {
            assert!(!is_content_free(t), "{t}");
        }
    }

    #[test]
    fn keywords_mark_what_distinguishes_a_theme() {
        let billing = vec!["I was charged twice on my invoice", "The invoice shows a double charge", "Wrong invoice amount again", "app billing invoice"];
        let delivery = vec!["The parcel arrived late", "Late delivery of my parcel", "Parcel never arrived", "app delivery"];
        let kw = class_keywords(&[billing, delivery], 3);
        assert_eq!(kw[0][0], "invoice");
        assert_eq!(kw[1][0], "parcel");
        assert!(!kw[0].contains(&"app".to_string()) && !kw[1].contains(&"app".to_string()), "{kw:?}");
        assert_eq!(label_from_keywords(&kw[1]), kw[1].join(" / "));
    }

    fn inflection_key(term: &str) -> String {
        term.split(' ').map(word_root).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn inflections_of_one_word_meet_and_different_words_do_not() {
        let same = [
            ("dress", "dresses"), ("wash", "washed"), ("washing", "washed"), ("button", "buttons"), ("top", "tops"), ("sleeve", "sleeves"),
            ("ship", "shipped"), ("shipping", "ship"), ("charge", "charged"), ("charging", "charges"), ("delivery", "deliveries"),
            ("size", "sizing"), ("bill", "billing"), ("return", "returned"), ("box", "boxes"), ("store's", "stores"), ("fit", "fitting"),
            ("review", "reviews"), ("dress fit", "dresses fit"), ("try", "tried"), ("apply", "applied"), ("tries", "trying"),
            ("wear", "worn"), ("wore", "wearing"), ("shrank", "shrinks"), ("paid", "pay"), ("buying", "bought"),
        ];
        for (a, b) in same {
            assert_eq!(inflection_key(a), inflection_key(b), "{a} / {b}");
        }
        let different = [("dress", "dressy"), ("thin", "thing"), ("bus", "bu"), ("fit", "fat"), ("call", "cal"), ("speed", "spend"), ("glass", "glas"), ("dress", "dress fit")];
        for (a, b) in different {
            assert_ne!(inflection_key(a), inflection_key(b), "{a} / {b}");
        }
    }

    #[test]
    fn a_label_does_not_spend_a_slot_on_an_inflection() {
        // Clothing reviews labelled a theme "washed / wash / shrink" and another "dress / dresses / …".
        let washing = vec!["it shrank when washed", "washed it once and it shrank", "wash cold, it shrinks", "do not wash warm", "washed and the colour ran"];
        let dresses = vec!["the dress is lovely", "dresses like this sell out", "this dress runs long", "dresses from this brand fit", "the dress fabric pills"];
        let kw = class_keywords(&[washing, dresses], 3);
        for k in &kw {
            let keys: std::collections::BTreeSet<String> = k.iter().map(|t| inflection_key(t)).collect();
            assert_eq!(keys.len(), k.len(), "{kw:?}");
        }
        assert!(kw[0].contains(&"washed".to_string()) && !kw[0].contains(&"wash".to_string()), "{kw:?}");
        // Clothing reviews: "highly recommend / recommended / airplane".
        let praise = vec!["highly recommend this", "highly recommend it", "recommended by a friend", "recommended it to my sister", "highly recommend for travel"];
        let kw = class_keywords(&[praise, vec!["the zipper broke", "zipper stuck"]], 3);
        assert_eq!(kw[0][0], "highly recommend", "{kw:?}");
        assert!(!kw[0].contains(&"recommended".to_string()) && !kw[0].contains(&"recommend".to_string()), "{kw:?}");
    }

    #[test]
    fn no_two_themes_share_a_label_and_the_larger_keeps_its_own() {
        let kw = |ws: &[&str]| ws.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        let keywords = [
            kw(&["hubspot sync", "lose data", "silently fails", "deals"]),
            kw(&["hubspot sync", "lose data", "silently fails", "contacts", "deals"]),
            kw(&["hubspot sync", "lose data", "silently fails", "contacts"]),
            kw(&["hubspot sync", "lose data", "silently fails"]),
            kw(&["refund", "waiting"]),
            kw(&["lose data", "hubspot sync", "silently fails", "sync"]),
            kw(&["waiting", "refund"]),
        ];
        let labels = distinct_labels(&keywords, &[10, 30, 20, 5, 7, 4, 3]);
        assert_eq!(
            labels,
            [
                "hubspot sync / lose data / deals",              // third largest: contacts is taken by the second
                "hubspot sync / lose data / silently fails",     // the largest keeps its label
                "hubspot sync / lose data / contacts",           // the second largest: its next keyword
                "hubspot sync / lose data / silently fails (2)", // no keyword left to tell it apart
                "refund / waiting",
                "lose data / hubspot sync / sync",               // the same three keywords in another order
                "waiting / refund (2)",
            ]
        );
    }

    #[test]
    fn quotes_skip_duplicates_and_near_duplicates() {
        let texts = ["Refund is late.", "refund is late", "Refund still late!", "No refund yet after 3 weeks"];
        let a = [1.0f32, 0.0];
        let b = [0.999f32, 0.0447];
        let c = [0.6f32, 0.8];
        let vectors: Vec<&[f32]> = vec![&a, &a, &b, &c];
        assert_eq!(representative_quotes(&[0, 1, 2, 3], &texts, &vectors, 3, 0.95), [0, 3]);
    }
}
