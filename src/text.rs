//! Normalising a verbatim and splitting it into sentence/clause segments, the unit Verbatim embeds,
//! scores and clusters.
//!
//! One verbatim often carries several themes ("love the product, support is slow"), so a segment is
//! a sentence, a line or bullet, or a clause joined by a contrast ("…, but …") or a comma between
//! two clauses. The splitter is rule-based on purpose: it is deterministic, explainable, and fast
//! enough to run on every response in the request path.

use std::borrow::Cow;
use std::ops::Range;

use crate::themes::labels::content_word_count;

/// Verbatim reads at most this many bytes of one text; the rest is dropped and flagged.
/// A survey comment is rarely above 5 kB; this bounds the work one request can cause.
pub const MAX_TEXT_BYTES: usize = 32 * 1024;
/// Verbatim keeps at most this many segments of one text (the rest is dropped and flagged).
pub const MAX_SEGMENTS: usize = 64;

/// A text after normalisation, split into segments.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitText {
    /// The normalised text the segment ranges point into.
    pub normalized: String,
    /// Byte ranges of the segments in `normalized`, in order.
    pub segments: Vec<Range<usize>>,
    /// True when the input was longer than [`MAX_TEXT_BYTES`] or had more than [`MAX_SEGMENTS`].
    pub truncated: bool,
}

impl SplitText {
    /// The segment texts, in order.
    pub fn segment_texts(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().map(|r| &self.normalized[r.clone()])
    }

    /// The segments as the encoder reads them: a clause cut from a longer sentence ("The agent was
    /// polite" from "The agent was polite, but the problem is still not fixed.") is closed with a
    /// full stop, as the sentence it stands for. The branch was trained on whole sentences and
    /// reads a bare fragment differently ("The agent was polite" leans negative, "The agent was
    /// polite." positive). A line its author left without a stop is read as written.
    pub fn segment_sentences(&self) -> impl Iterator<Item = Cow<'_, str>> {
        self.segments.iter().map(|r| {
            let segment = &self.normalized[r.clone()];
            let rest = self.normalized[r.end..].trim_start_matches([' ', ',', ';', ':', '-']);
            let cut_from_sentence = !rest.is_empty() && !rest.starts_with('\n');
            if cut_from_sentence && segment.ends_with(char::is_alphanumeric) {
                Cow::Owned(format!("{segment}."))
            } else {
                Cow::Borrowed(segment)
            }
        })
    }
}

/// Normalises `raw` and splits it into segments (see the module docs).
pub fn split_verbatim(raw: &str) -> SplitText {
    let (raw, mut truncated) = truncate_at_char_boundary(raw, MAX_TEXT_BYTES);
    let normalized = normalize(raw);
    let mut segments = Vec::new();
    for line in line_ranges(&normalized) {
        let mut in_line = Vec::new();
        for sentence in sentence_ranges(&normalized, line) {
            in_line.extend(clause_ranges(&normalized, sentence));
        }
        // Lines and bullets are the author's own structure: a short one ("Pros:", "no SSO") stays.
        segments.extend(merge_weak(&normalized, in_line, |s| content_word_count(s) >= MIN_CONTENT_WORDS));
    }
    let mut segments = merge_weak(&normalized, segments, |s| s.chars().any(char::is_alphanumeric));
    for r in &mut segments {
        let text = &normalized[r.clone()];
        r.start += text.len() - without_leading_punctuation(text).len();
    }
    if segments.len() > MAX_SEGMENTS {
        segments.truncate(MAX_SEGMENTS);
        truncated = true;
    }
    SplitText { normalized, segments, truncated }
}

fn truncate_at_char_boundary(s: &str, max: usize) -> (&str, bool) {
    if s.len() <= max {
        return (s, false);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (&s[..end], true)
}

/// Decodes HTML entities, turns `<br>`-style tags into newlines and drops other tags, removes
/// control characters, collapses runs of spaces and tabs, and trims every line. Newlines are kept:
/// they separate segments.
pub fn normalize(raw: &str) -> String {
    let decoded = decode_html(raw);
    let mut out = String::with_capacity(decoded.len());
    for line in decoded.split('\n') {
        let mut cleaned = String::with_capacity(line.len());
        let mut pending_space = false;
        for c in line.chars() {
            if c.is_whitespace() || c.is_control() || c == '\u{200b}' {
                pending_space = !cleaned.is_empty();
                continue;
            }
            if pending_space {
                cleaned.push(' ');
                pending_space = false;
            }
            cleaned.push(c);
        }
        if !cleaned.is_empty() {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&cleaned);
        }
    }
    out
}

fn decode_html(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(pos) = rest.find(['&', '<']) {
        out.push_str(&rest[..pos]);
        rest = &rest[pos..];
        if rest.starts_with('&') {
            if let Some((decoded, used)) = decode_entity(rest) {
                out.push(decoded);
                rest = &rest[used..];
                continue;
            }
        } else if let Some((replacement, used)) = html_tag(rest) {
            out.push_str(replacement);
            rest = &rest[used..];
            continue;
        }
        out.push_str(&rest[..1]);
        rest = &rest[1..];
    }
    out.push_str(rest);
    out
}

/// Decodes one entity at the start of `s`; returns the character and the bytes it used.
fn decode_entity(s: &str) -> Option<(char, usize)> {
    let end = s[..s.len().min(12)].find(';')?;
    let body = &s[1..end];
    let c = match body {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "hellip" => '…',
        "mdash" => '—',
        "ndash" => '–',
        "rsquo" | "lsquo" => '\'',
        "rdquo" | "ldquo" => '"',
        "euro" => '€',
        "pound" => '£',
        _ => {
            let code = if let Some(hex) = body.strip_prefix("#x").or(body.strip_prefix("#X")) {
                u32::from_str_radix(hex, 16).ok()?
            } else {
                body.strip_prefix('#')?.parse().ok()?
            };
            char::from_u32(code)?
        }
    };
    Some((c, end + 1))
}

/// Recognises an HTML tag at the start of `s`: line-breaking tags become a newline, other known
/// tags vanish. Anything else (e.g. "<3" or "a < b") is left as text.
fn html_tag(s: &str) -> Option<(&'static str, usize)> {
    let end = s[..s.len().min(64)].find('>')?;
    let inner = s[1..end].trim_start_matches('/').trim_end_matches('/').trim();
    let name: String = inner
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    let replacement = match name.as_str() {
        "br" | "p" | "div" | "li" | "ul" | "ol" | "tr" | "h1" | "h2" | "h3" => "\n",
        "b" | "i" | "em" | "strong" | "span" | "u" | "a" | "small" | "font" => "",
        _ => return None,
    };
    Some((replacement, end + 1))
}

/// Lines of the normalised text, without bullet markers ("- ", "* ", "• ", "1. ", "2) ").
fn line_ranges(text: &str) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    for line in text.split('\n') {
        let marker = bullet_len(line);
        if marker < line.len() {
            ranges.push(start + marker..start + line.len());
        }
        start += line.len() + 1;
    }
    ranges
}

fn bullet_len(line: &str) -> usize {
    for marker in ["- ", "* ", "• ", "· ", "– ", "— ", "> "] {
        if line.starts_with(marker) {
            return marker.len();
        }
    }
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if (1..=2).contains(&digits) {
        let rest = &line[digits..];
        if rest.starts_with(". ") || rest.starts_with(") ") {
            return digits + 2;
        }
    }
    0
}

/// Words that end with a full stop without ending a sentence.
const ABBREVIATIONS: &[&str] = &[
    "e.g", "i.e", "etc", "vs", "mr", "mrs", "ms", "dr", "prof", "st", "no", "approx", "inc", "ltd",
    "co", "jr", "sr", "min", "max", "avg", "dept", "est", "fig", "a.m", "p.m", "u.s", "u.k", "cf",
    "al", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
];

/// Sentences within `range`: a run of `.`, `!`, `?` or `…` (plus closing quotes, brackets and any
/// emoji that follow) ends a sentence when whitespace follows, unless the full stop belongs to an
/// abbreviation ("e.g.") or a number ("3.5" never matches: no whitespace after the dot).
fn sentence_ranges(text: &str, range: Range<usize>) -> Vec<Range<usize>> {
    let line = &text[range.clone()];
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (_, c) = chars[i];
        if matches!(c, '.' | '!' | '?' | '…' | '。' | '！' | '？') {
            let mut j = i;
            while j + 1 < chars.len() && matches!(chars[j + 1].1, '.' | '!' | '?' | '…') {
                j += 1;
            }
            while j + 1 < chars.len() && is_closer(chars[j + 1].1) {
                j += 1;
            }
            let end = chars.get(j + 1).map_or(line.len(), |&(pos, _)| pos);
            let followed_by_space = chars.get(j + 1).is_none_or(|&(_, n)| n == ' ');
            let cjk = matches!(c, '。' | '！' | '？');
            if (followed_by_space || cjk) && !(c == '.' && j == i && is_abbreviation(&line[start..chars[i].0])) {
                push_trimmed(&mut out, line, start..end, range.start);
                start = end;
            }
            i = j + 1;
        } else {
            i += 1;
        }
    }
    push_trimmed(&mut out, line, start..line.len(), range.start);
    out
}

fn is_closer(c: char) -> bool {
    matches!(c, '"' | '\'' | ')' | ']' | '»' | '”' | '’') || is_symbol(c)
}

/// Emoji and pictographs: they belong to the sentence they follow.
fn is_symbol(c: char) -> bool {
    !c.is_alphanumeric() && !c.is_whitespace() && !c.is_ascii() && !matches!(c, '…' | '—' | '–' | '«' | '“' | '‘')
}

fn is_abbreviation(before_dot: &str) -> bool {
    let word = before_dot.rsplit(' ').next().unwrap_or("").trim_start_matches(['(', '"', '\'']);
    let lower = word.to_lowercase();
    ABBREVIATIONS.contains(&lower.as_str()) || (word.chars().count() == 1 && word.chars().all(char::is_alphabetic))
}

/// Words that open a subordinate clause: a comma after such a clause does not start a new segment
/// ("When I called support, they hung up" is one thought).
const SUBORDINATORS: &[&str] = &[
    "when", "if", "although", "though", "because", "since", "after", "before", "while", "as",
    "once", "unless", "until", "whenever", "even", "for", "in", "on", "at", "with", "without",
];

/// Contrast words that start a new clause when they follow a comma or semicolon, or stand alone.
const CONTRASTS: &[&str] = &["but", "however", "although", "though", "yet", "except", "whereas"];

/// Clauses within a sentence: split at `;`, at a contrast ("…, but …", "… but …"), and at a comma
/// between two clauses of at least three words each, so "love the product, support is slow" gives
/// two segments while "fast, cheap and reliable" stays one.
fn clause_ranges(text: &str, range: Range<usize>) -> Vec<Range<usize>> {
    let sentence = &text[range.clone()];
    let mut cuts = vec![0];
    let words: Vec<(usize, &str)> = word_spans(sentence);
    for (k, &(pos, word)) in words.iter().enumerate() {
        let bare = word.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase();
        let prev_start = *cuts.last().unwrap();
        let words_before = words[..k].iter().filter(|(p, _)| *p >= prev_start).count();
        let words_after = words.len() - k;
        let prev = k.checked_sub(1).map(|p| words[p].1);
        let after_break = prev.is_some_and(|p| p.ends_with([',', ';']));
        if prev.is_some_and(|p| p.ends_with(';')) && words_before >= 1 {
            cuts.push(pos);
        } else if CONTRASTS.contains(&bare.as_str()) && words_before >= 2 && words_after >= 3 {
            if after_break || bare == "but" || bare == "however" {
                cuts.push(pos);
            }
        } else if after_break && words_before >= 3 && words_after >= 3 {
            let first = sentence[prev_start..].split(' ').next().unwrap_or("").to_lowercase();
            let first = first.trim_matches(|c: char| !c.is_alphanumeric());
            if !SUBORDINATORS.contains(&first) && !is_list_tail(&words[k..]) {
                cuts.push(pos);
            }
        }
    }
    cuts.push(sentence.len());
    let mut out = Vec::new();
    for pair in cuts.windows(2) {
        let piece = &sentence[pair[0]..pair[1]];
        let trimmed_end = piece.trim_end().trim_end_matches([',', ';']).trim_end();
        push_trimmed(&mut out, sentence, pair[0]..pair[0] + trimmed_end.len(), range.start);
    }
    out
}

/// "…, and fast" or "…, or email": a list tail rather than a clause.
fn is_list_tail(rest: &[(usize, &str)]) -> bool {
    rest.len() <= 3 && rest.first().is_some_and(|(_, w)| matches!(*w, "and" | "or" | "&"))
}

fn word_spans(s: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut pos = 0;
    for word in s.split(' ') {
        if !word.is_empty() {
            out.push((pos, word));
        }
        pos += word.len() + 1;
    }
    out
}

fn push_trimmed(out: &mut Vec<Range<usize>>, s: &str, r: Range<usize>, offset: usize) {
    let piece = &s[r.clone()];
    let lead = piece.len() - piece.trim_start().len();
    let trimmed = piece.trim();
    if !trimmed.is_empty() {
        let start = r.start + lead;
        out.push(offset + start..offset + start + trimmed.len());
    }
}

/// `piece` without leading spaces and the stray punctuation a cut can leave before a clause
/// ("soft, , but the pattern…" → "but the pattern…"; "...for real, reinforce…" → "for real, …"):
/// a run of `,;:.…` goes when a space or a letter follows it. Emoticons stay (":) i wish…"), a
/// lone "." before a letter stays (".NET"), and so does punctuation with no word after it.
fn without_leading_punctuation(piece: &str) -> &str {
    let mut piece = piece.trim_start();
    loop {
        let rest = piece.trim_start_matches([',', ';', ':', '.', '…']);
        let run = &piece[..piece.len() - rest.len()];
        let stray = match rest.chars().next() {
            Some(c) if c.is_whitespace() => true,
            Some(c) if c.is_alphanumeric() => run != ".",
            _ => false,
        };
        if run.is_empty() || !stray || !rest.contains(char::is_alphanumeric) {
            return piece;
        }
        piece = rest.trim_start();
    }
}

/// Content words a segment needs to stand on its own.
const MIN_CONTENT_WORDS: usize = 2;

/// A segment that cannot stand on its own joins the segment before it, or the one after it when it
/// comes first; with no neighbour it stays, so a "👍" response is not lost. Within a line a segment
/// needs [`MIN_CONTENT_WORDS`] words that are not stop words: "Please help?", "Should I be
/// worried?" or "is it lost?" alone say nothing a theme could be about, with their neighbour they
/// do. Across lines only a segment without any letter or digit (an emoji, "!!!") joins.
fn merge_weak(text: &str, segments: Vec<Range<usize>>, stands_alone: impl Fn(&str) -> bool) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::with_capacity(segments.len());
    // Weak segments before the first one that stands alone.
    let mut carry: Option<Range<usize>> = None;
    for seg in segments {
        if !stands_alone(&text[seg.clone()]) {
            match (out.last_mut(), carry.as_mut()) {
                (Some(last), _) => last.end = seg.end,
                (None, Some(c)) => c.end = seg.end,
                (None, None) => carry = Some(seg),
            }
            continue;
        }
        out.push(carry.take().map_or(seg.start, |c| c.start)..seg.end);
    }
    out.extend(carry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(s: &str) -> Vec<String> {
        split_verbatim(s).segment_texts().map(str::to_string).collect()
    }

    #[test]
    fn a_clause_cut_from_a_sentence_is_read_as_a_sentence_and_a_line_as_written() {
        let read = |s: &str| split_verbatim(s).segment_sentences().map(|c| c.into_owned()).collect::<Vec<_>>();
        assert_eq!(
            read("The agent was polite, but the problem is still not fixed."),
            ["The agent was polite.", "but the problem is still not fixed."]
        );
        assert_eq!(read("love the product, support is slow"), ["love the product.", "support is slow"]);
        assert_eq!(read("Setup was quick; the reporting is confusing!"), ["Setup was quick.", "the reporting is confusing!"]);
        assert_eq!(read("fast shipping\nsupport is slow"), ["fast shipping", "support is slow"], "lines stay as written");
        assert_eq!(read("Love the app. Support took 3 days!!! 😡"), ["Love the app.", "Support took 3 days!!! 😡"]);
        let split = split_verbatim("Great product, but the billing page is confusing");
        assert_eq!(split.segment_texts().next(), Some("Great product"), "the stored segment text is the verbatim's own");
    }

    #[test]
    fn a_segment_does_not_start_with_stray_punctuation() {
        // Seen in the clothing reviews' quotes.
        let cut = segments("the lace strips make it look cheap. the fabric is soft, , but the pattern is undistinguished.");
        assert_eq!(cut.last().unwrap(), "but the pattern is undistinguished.", "{cut:?}");
        let lines = segments("Too tight.\n...for real, reinforce all the buttons before you wear it out.\n. for full disclosure, i am a size 36b");
        assert_eq!(lines, ["Too tight.", "for real, reinforce all the buttons before you wear it out.", "for full disclosure, i am a size 36b"]);
        let emoticon = segments("what can i say, i'm modest. :) i wish they made more colors.");
        assert_eq!(emoticon.last().unwrap(), ":) i wish they made more colors.", "an emoticon is not stray: {emoticon:?}");
        assert_eq!(segments(".NET upgrade broke our build."), [".NET upgrade broke our build."], "a lone dot before a word is part of it");
        assert_eq!(segments("..."), ["..."], "punctuation alone stays a segment");
    }

    #[test]
    fn two_sentences_with_emoji() {
        assert_eq!(segments("Love the app. Support took 3 days!!! 😡"), ["Love the app.", "Support took 3 days!!! 😡"]);
    }

    #[test]
    fn clause_with_comma_between_two_themes() {
        assert_eq!(segments("love the product, support is slow"), ["love the product", "support is slow"]);
    }

    #[test]
    fn contrast_splits_and_lists_do_not() {
        assert_eq!(
            segments("Great product but the billing page is confusing"),
            ["Great product", "but the billing page is confusing"]
        );
        assert_eq!(segments("Fast, cheap and reliable."), ["Fast, cheap and reliable."]);
        assert_eq!(segments("When I called support, they hung up on me."), ["When I called support, they hung up on me."]);
    }

    #[test]
    fn abbreviations_and_decimals_do_not_end_sentences() {
        assert_eq!(
            segments("Some features, e.g. exports, are missing. Version 3.5 fixed it."),
            ["Some features, e.g. exports, are missing.", "Version 3.5 fixed it."]
        );
    }

    #[test]
    fn fragments_without_content_join_their_neighbour() {
        assert_eq!(
            segments("I have been waiting over a week. Should I be worried? Please help."),
            ["I have been waiting over a week. Should I be worried? Please help."]
        );
        assert_eq!(segments("Is it lost? My card never arrived."), ["Is it lost? My card never arrived."]);
        assert_eq!(segments("The card arrived late. The app keeps crashing."), ["The card arrived late.", "The app keeps crashing."]);
    }

    #[test]
    fn no_punctuation_is_one_segment() {
        assert_eq!(segments("the checkout keeps failing on my phone"), ["the checkout keeps failing on my phone"]);
    }

    #[test]
    fn bullets_and_newlines() {
        let text = "Pros:\n- easy setup\n- great support\n\n1. slow exports\n2) no SSO";
        assert_eq!(segments(text), ["Pros:", "easy setup", "great support", "slow exports", "no SSO"]);
    }

    #[test]
    fn html_entities_tags_and_whitespace() {
        assert_eq!(normalize("Fast &amp; cheap&nbsp;&#128512;<br>line\t two  "), "Fast & cheap 😀\nline two");
        assert_eq!(normalize("I <3 it &bogus; a < b"), "I <3 it &bogus; a < b");
        assert_eq!(segments("Good<br/>Bad &lt;really&gt;"), ["Good", "Bad <really>"]);
    }

    #[test]
    fn empty_and_emoji_only() {
        assert!(segments("").is_empty());
        assert!(segments("  \n\t ").is_empty());
        assert_eq!(segments("👍"), ["👍"]);
        assert_eq!(segments("👍 Great service."), ["👍 Great service."]);
    }

    #[test]
    fn segments_point_into_normalized_text() {
        let split = split_verbatim("A  first one.   And a second, longer one here!");
        for r in &split.segments {
            assert!(split.normalized.is_char_boundary(r.start) && split.normalized.is_char_boundary(r.end));
        }
        assert_eq!(split.normalized, "A first one. And a second, longer one here!");
    }

    #[test]
    fn huge_text_is_truncated_not_rejected() {
        let text = "The export is slow. ".repeat(60_000);
        let split = split_verbatim(&text);
        assert!(split.truncated);
        assert_eq!(split.segments.len(), MAX_SEGMENTS);
        let multibyte = "é".repeat(MAX_TEXT_BYTES);
        assert!(split_verbatim(&multibyte).truncated);
    }
}
