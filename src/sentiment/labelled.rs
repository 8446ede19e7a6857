//! A team's own labelled verbatims scored the way the service scores a verbatim: split into
//! segments, each scored by the branch, aggregated ([`super::aggregate`]). The file is a CSV with
//! columns `text,label`; a label is `negative`, `neutral`, `positive`, or `mixed` (the verbatim
//! holds a clearly positive and a clearly negative segment and must be flagged so). This is how
//! `verbatim eval sentiment --labelled F` answers "can we trust it on our feedback?", and how the
//! test suite scores its customer-feedback fixtures.

use std::path::Path;

use super::{Label, Overall};
use crate::analyze::analyze_with;
use crate::error::{Error, Result};
use crate::model::Encoder;

/// What a labelled row asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    Label(Label),
    Mixed,
}

impl Want {
    /// Row and column order of [`LabelledScore::confusion`].
    pub const ALL: [Want; 4] = [Want::Label(Label::Negative), Want::Label(Label::Neutral), Want::Label(Label::Positive), Want::Mixed];

    pub fn parse(s: &str) -> Option<Want> {
        match s.trim().to_ascii_lowercase().as_str() {
            "mixed" => Some(Want::Mixed),
            other => Label::parse(other).map(Want::Label),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Want::Label(l) => l.as_str(),
            Want::Mixed => "mixed",
        }
    }

    fn index(self) -> usize {
        match self {
            Want::Label(l) => l as usize,
            Want::Mixed => 3,
        }
    }
}

/// One labelled verbatim.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub text: String,
    pub want: Want,
}

/// Reads `text,label` rows (a header row first; other columns ignored); a bad label names its line.
/// A `.json` file is read as the labelled sentences are ([`super::sentences::parse`]: an array of
/// `{"text", "class"}`, 0 negative / 1 positive).
pub fn read(path: &Path) -> Result<Vec<Row>> {
    if path.extension().is_some_and(|x| x == "json") {
        return Ok(super::sentences::parse(path)?.into_iter().map(|e| Row { text: e.text, want: Want::Label(e.label) }).collect());
    }
    let bad = |line: usize, what: &str| Error::invalid("labelled", format!("{}:{line}: {what}", path.display()));
    let mut reader = csv::Reader::from_path(path).map_err(|e| bad(0, &e.to_string()))?;
    let headers = reader.headers().map_err(|e| bad(1, &e.to_string()))?.clone();
    let column = |name: &str| headers.iter().position(|h| h.trim() == name).ok_or_else(|| bad(1, &format!("no {name:?} column")));
    let (text, label) = (column("text")?, column("label")?);
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| bad(i + 2, &e.to_string()))?;
        let got = record.get(label).unwrap_or("");
        let want = Want::parse(got).ok_or_else(|| bad(i + 2, &format!("label {got:?} is not negative, neutral, positive or mixed")))?;
        rows.push(Row { text: record.get(text).unwrap_or("").to_string(), want });
    }
    Ok(rows)
}

/// How the service read one labelled verbatim.
#[derive(Debug, Clone)]
pub struct Scored {
    pub row: Row,
    pub overall: Overall,
    pub segments: usize,
}

impl Scored {
    /// What the service said, in the row's terms: `mixed` when the row asks for mixed and the
    /// verbatim is flagged mixed over two or more segments; otherwise the overall label.
    pub fn got(&self) -> Want {
        if self.row.want == Want::Mixed && self.overall.mixed && self.segments >= 2 {
            Want::Mixed
        } else {
            Want::Label(self.overall.sentiment.label())
        }
    }

    pub fn right(&self) -> bool {
        self.got() == self.row.want
    }
}

/// Every row scored, with the accuracy and a confusion matrix (rows: wanted, columns: got, in
/// [`Want::ALL`] order).
#[derive(Debug, Clone)]
pub struct LabelledScore {
    pub scored: Vec<Scored>,
    pub accuracy: f64,
    pub confusion: [[u32; 4]; 4],
    /// Rows with nothing to read (empty, punctuation only, or not in English): not scored, counted.
    pub skipped: usize,
}

/// Scores `rows` with the encoder's sentiment branch.
pub fn score(encoder: &Encoder, rows: &[Row]) -> Result<LabelledScore> {
    if !encoder.has_sentiment() {
        return Err(Error::invalid("labelled", "the encoder has no sentiment branch loaded".to_string()));
    }
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    let scored: Vec<Scored> = analyze_with(encoder, &texts)?
        .into_iter()
        .zip(rows)
        // No overall: nothing the branch can read (no text, or another language), counted in `skipped`.
        .filter_map(|(v, row)| v.sentiment.map(|overall| Scored { row: row.clone(), overall, segments: v.segments.len() }))
        .collect();
    let mut confusion = [[0u32; 4]; 4];
    for s in &scored {
        confusion[s.row.want.index()][s.got().index()] += 1;
    }
    let right = scored.iter().filter(|s| s.right()).count();
    Ok(LabelledScore { accuracy: right as f64 / scored.len().max(1) as f64, confusion, skipped: rows.len() - scored.len(), scored })
}

impl LabelledScore {
    /// Accuracy, the confusion matrix and every miss with its probabilities, for the eval command.
    pub fn report(&self, name: &str) -> String {
        let right = self.scored.iter().filter(|s| s.right()).count();
        let mut out = format!("{name} ({} verbatims): accuracy {:.4} ({right}/{})", self.scored.len(), self.accuracy, self.scored.len());
        if self.skipped > 0 {
            out.push_str(&format!("; {} rows with no English text not scored", self.skipped));
        }
        out.push('\n');
        out.push_str("    truth \\ predicted   negative   neutral  positive     mixed\n");
        for want in Want::ALL {
            let row = &self.confusion[want.index()];
            if row.iter().sum::<u32>() > 0 {
                out.push_str(&format!("    {:<20}{:>9}{:>10}{:>10}{:>10}\n", want.as_str(), row[0], row[1], row[2], row[3]));
            }
        }
        for s in self.scored.iter().filter(|s| !s.right()) {
            let [n, u, p] = s.overall.sentiment.probabilities;
            out.push_str(&format!("    miss: {} → {} (negative {n:.2}, neutral {u:.2}, positive {p:.2}): {:?}\n", s.row.want.as_str(), s.got().as_str(), s.row.text));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sentiment::Sentiment;

    fn scored(want: Want, p: [f32; 3], mixed: bool, segments: usize) -> Scored {
        Scored { row: Row { text: String::new(), want }, overall: Overall { sentiment: Sentiment::new(p), mixed }, segments }
    }

    #[test]
    fn a_mixed_row_needs_the_flag_over_two_segments_and_a_label_row_needs_the_label() {
        let pos = [0.1, 0.1, 0.8];
        assert!(scored(Want::Mixed, pos, true, 2).right());
        assert_eq!(scored(Want::Mixed, pos, true, 1).got(), Want::Label(Label::Positive), "one segment cannot be mixed");
        assert!(!scored(Want::Mixed, pos, false, 3).right());
        assert!(scored(Want::Label(Label::Positive), pos, true, 2).right(), "a flagged verbatim keeps its overall label");
        assert!(!scored(Want::Label(Label::Neutral), pos, false, 1).right());
    }

    #[test]
    fn labels_parse_case_blind_and_bad_ones_name_their_line() {
        assert_eq!(Want::parse(" Mixed "), Some(Want::Mixed));
        assert_eq!(Want::parse("NEGATIVE"), Some(Want::Label(Label::Negative)));
        assert_eq!(Want::parse("angry"), None);
        let dir = std::env::temp_dir().join(format!("verbatim-labelled-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("l.csv");
        std::fs::write(&path, "text,label\n\"Great, thanks\",positive\nSlow,angry\n").unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(e.contains("l.csv:3") && e.contains("angry"), "{e}");
        std::fs::write(&path, "label,text,extra\nmixed,\"Good, but slow\",x\n").unwrap();
        assert_eq!(read(&path).unwrap(), vec![Row { text: "Good, but slow".into(), want: Want::Mixed }]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
