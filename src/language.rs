//! Which segments are not English. The encoder and the sentiment branch read English: a Spanish
//! complaint gets a vector near other Spanish text, not near the English complaints about the same
//! thing, and a sentiment that is noise ("El soporte es muy lento y nadie responde." read positive).
//! So a segment in another language keeps its text and embedding but gets no sentiment and goes to
//! the reserved theme [`crate::themes::OTHER_LANGUAGE`], where a person can see how many there are.
//!
//! The test leans hard towards English, because calling an English segment foreign hides it:
//! - mostly non-Latin letters (Cyrillic, CJK, Arabic, …): another language;
//! - else never when two or more English function words outnumber foreign ones;
//! - else at least three words that whatlang's trigram model puts in another language, and one of:
//!   whatlang is sure of it (its reliability flag); two or more function words of Spanish, German,
//!   French, Portuguese, Italian or Dutch, more than English ones; or five or more words without a
//!   single English function word, at whatlang confidence ≥ 0.5.
//!
//! A segment is judged with its verbatim as context ([`of_segments`]).
//!
//! Measured (README, Sentences), segments as the splitter cuts them: none of Banking77's 12,646
//! and 3 of the clothing reviews' 136,499 called foreign, none of the sentiment fixtures'; of 30
//! feedback verbatims in 13 other languages written after the function words were chosen
//! (`tests/fixtures/languages.csv`), 27 set aside whole (30 of their 34 segments).

use whatlang::{Detector, Lang, Script};

/// Function words of English (the test needs only that foreign text lacks them).
const ENGLISH: &[&str] = &[
    "the", "a", "an", "and", "or", "but", "is", "are", "was", "were", "be", "been", "to", "of", "in", "on", "at", "for", "with", "my", "our", "your",
    "it", "its", "this", "that", "i", "we", "you", "they", "he", "she", "not", "have", "has", "had", "do", "does", "did", "can", "will", "would", "so",
    "very", "just", "all", "as", "by", "from", "me", "us", "them", "there", "their", "what", "how", "when", "get", "got", "too", "again", "still",
    "no", "up", "out", "if", "than", "about", "it's", "i'm", "don't", "didn't", "can't",
];

/// Function words of six European languages that are not English words.
const FOREIGN: &[&str] = &[
    // Spanish
    "el", "los", "las", "y", "que", "es", "muy", "por", "para", "con", "se", "del", "mi", "pero", "más", "está", "una", "sin", "mis", "fue",
    // German
    "der", "das", "und", "ist", "nicht", "ich", "wir", "sehr", "mit", "zu", "auf", "für", "ein", "eine", "hat", "von", "seit", "dem", "den", "sind", "aber", "auch",
    // French
    "le", "les", "et", "est", "une", "des", "du", "je", "nous", "pas", "très", "avec", "au", "ne", "qui", "mais", "mon", "ma", "mes", "sont", "été",
    // Portuguese
    "os", "é", "um", "uma", "do", "da", "não", "muito", "foi", "em", "mais", "meu", "minha",
    // Italian
    "il", "è", "di", "che", "non", "molto", "sono", "stato", "stata", "della",
    // Dutch
    "het", "een", "en", "niet", "ik", "wij", "erg", "met", "van", "op", "voor", "mijn", "als", "zeer", "heel",
];

/// The language of each segment of one verbatim ([`other_than_english`]), with the verbatim as
/// context: a clause cut from a German sentence ("Die Installation war einfach") is too short to
/// tell alone, so when the whole verbatim is in another language, each of its segments is too,
/// unless the segment itself is clearly English (two or more English function words, more than
/// foreign ones: "Support was quick and friendly." beside a Spanish sentence).
pub fn of_segments(segments: &[&str]) -> Vec<Option<&'static str>> {
    let own: Vec<Option<&'static str>> = segments.iter().map(|s| other_than_english(s)).collect();
    if segments.len() < 2 {
        return own;
    }
    let Some(whole) = other_than_english(&segments.join(" ")) else { return own };
    segments.iter().zip(own).map(|(s, own)| own.or_else(|| (!clearly_english(s)).then_some(whole))).collect()
}

/// [`of_segments`] over rows of many verbatims: `groups[i]` names row i's verbatim (rows of one
/// verbatim in their order).
pub fn of_rows(texts: &[&str], groups: &[usize]) -> Vec<Option<&'static str>> {
    assert_eq!(texts.len(), groups.len());
    let mut rows: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (i, &g) in groups.iter().enumerate() {
        rows.entry(g).or_default().push(i);
    }
    let mut out = vec![None; texts.len()];
    for members in rows.values() {
        let segments: Vec<&str> = members.iter().map(|&i| texts[i]).collect();
        for (&i, language) in members.iter().zip(of_segments(&segments)) {
            out[i] = language;
        }
    }
    out
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\'')).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// Counts of English and of foreign function words.
fn function_words(words: &[String]) -> (usize, usize) {
    (words.iter().filter(|w| ENGLISH.contains(&w.as_str())).count(), words.iter().filter(|w| FOREIGN.contains(&w.as_str())).count())
}

fn clearly_english(text: &str) -> bool {
    let (english, foreign) = function_words(&words(text));
    english >= 2 && english > foreign
}

/// The ISO 639-3 code of the language `text` is in, when that is clearly not English; `None` for
/// English and for text too short to tell ("Genial!", "ok").
pub fn other_than_english(text: &str) -> Option<&'static str> {
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    if letters == 0 {
        return None;
    }
    let latin = text.chars().filter(|c| c.is_ascii_alphabetic() || ('\u{00C0}'..='\u{024F}').contains(c)).count();
    let info = Detector::new().detect(text);
    if latin * 2 < letters {
        return Some(info.filter(|i| i.lang() != Lang::Eng).map_or("und", |i| i.lang().code()));
    }
    let info = info.filter(|i| i.lang() != Lang::Eng && i.script() == Script::Latin)?;
    let words = words(text);
    if words.len() < 3 {
        return None;
    }
    let (english, foreign) = function_words(&words);
    if english >= 2 && english > foreign {
        return None; // clearly English, whatever the trigrams say ("it is very soft and comfy")
    }
    let sure = info.is_reliable() || (foreign >= 2 && foreign > english) || (english == 0 && words.len() >= 5 && info.confidence() >= 0.5);
    sure.then(|| info.lang().code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feedback_in_other_languages_is_found() {
        for (text, code) in [
            ("El soporte es muy lento y nadie responde a mis correos.", "spa"),
            ("Die Lieferung kam zwei Wochen zu spät.", "deu"),
            ("On m'a facturé deux fois le même abonnement.", "fra"),
            ("Il prezzo è aumentato senza nessun avviso.", "ita"),
            ("Служба поддержки отвечает очень медленно.", "rus"),
            ("配送が早くて助かりました。", "jpn"),
        ] {
            assert_eq!(other_than_english(text), Some(code), "{text}");
        }
    }

    #[test]
    fn a_verbatim_in_another_language_carries_its_short_clauses_but_not_an_english_sentence() {
        assert_eq!(other_than_english("Die Installation war einfach"), None, "too short alone");
        assert_eq!(of_segments(&["Die Installation war einfach", "aber die Anleitung ist veraltet."]), [Some("deu"), Some("deu")]);
        let mixed = ["Support was quick and friendly.", "El envío llegó dos semanas tarde y la caja estaba rota."];
        assert_eq!(of_segments(&mixed), [None, Some("spa")]);
        assert_eq!(of_segments(&["Great.", "Fast delivery and a fair price."]), [None, None]);
        let rows = ["Die Installation war einfach", "Setup was quick.", "aber die Anleitung ist veraltet."];
        assert_eq!(of_rows(&rows, &[0, 1, 0]), [Some("deu"), None, Some("deu")]);
    }

    #[test]
    fn english_feedback_short_text_and_no_letters_stay_english() {
        for text in [
            "Cute little dress fits tts",
            "I paid by bank transfer.",
            "Renewing our contract was painless.",
            "Setting up single sign-on took our IT team about ten minutes.",
            "Great product, fast delivery, friendly support",
            "Genial!",
            "Muy bien.",
            "👍",
            "10/10",
            "",
        ] {
            assert_eq!(other_than_english(text), None, "{text}");
        }
    }
}
