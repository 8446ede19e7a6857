//! Survey types and their maths: NPS, CSAT and CES scales, validating a score against its scale,
//! and a respondent's category (promoter / passive / detractor, top box, low effort).
//!
//! Definitions used throughout Verbatim:
//! - NPS (Reichheld 2003): 0–10; promoters 9–10, passives 7–8, detractors 0–6;
//!   NPS = % promoters − % detractors, in points from −100 to 100. The scale is always 0–10.
//! - CSAT: % of answers in the top two boxes of the scale (4–5 on 1–5, 9–10 on 1–10); the bottom
//!   two boxes are "dissatisfied".
//! - CES: mean effort score, higher = easier (CES 2.0, 1–7 "the company made it easy…"). To compare
//!   scales, a score is also placed on 0–1 (`(score − min) / (max − min)`); the top third of the
//!   scale is "low effort" (5–7 on 1–7), the bottom third "high effort" (1–3 on 1–7).

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The kind of survey a score answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SurveyKind {
    Nps,
    Csat,
    Ces,
}

impl SurveyKind {
    pub const ALL: [SurveyKind; 3] = [SurveyKind::Nps, SurveyKind::Csat, SurveyKind::Ces];

    pub fn as_str(self) -> &'static str {
        match self {
            SurveyKind::Nps => "NPS",
            SurveyKind::Csat => "CSAT",
            SurveyKind::Ces => "CES",
        }
    }

    /// The scale used when a response does not carry one.
    pub fn default_scale(self) -> Scale {
        match self {
            SurveyKind::Nps => Scale { min: 0, max: 10 },
            SurveyKind::Csat => Scale { min: 1, max: 5 },
            SurveyKind::Ces => Scale { min: 1, max: 7 },
        }
    }
}

impl fmt::Display for SurveyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SurveyKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "NPS" => Ok(SurveyKind::Nps),
            "CSAT" => Ok(SurveyKind::Csat),
            "CES" => Ok(SurveyKind::Ces),
            _ => Err(Error::invalid("survey", format!("unknown survey type {s:?}; expected NPS, CSAT or CES"))),
        }
    }
}

/// An integer answer scale, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    pub min: i32,
    pub max: i32,
}

impl Scale {
    /// Checks `min < max` and, for NPS, that the scale is the standard 0–10.
    pub fn validate(self, kind: SurveyKind) -> Result<Self> {
        if self.min >= self.max {
            return Err(Error::invalid(
                "scale_min",
                format!("scale_min {} must be below scale_max {}", self.min, self.max),
            ));
        }
        if kind == SurveyKind::Nps && self != kind.default_scale() {
            return Err(Error::invalid(
                "scale_min",
                format!("NPS is always answered on 0–10; got {}–{}", self.min, self.max),
            ));
        }
        Ok(self)
    }

    /// Where `score` sits on the scale, from 0 (min) to 1 (max).
    pub fn position(self, score: f64) -> f64 {
        (score - self.min as f64) / (self.max - self.min) as f64
    }
}

impl fmt::Display for Scale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}–{}", self.min, self.max)
    }
}

/// A validated score with its survey and scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    pub kind: SurveyKind,
    pub scale: Scale,
    pub value: f64,
}

impl Score {
    /// Validates `value` against `scale` (the survey's default when `None`). Scores are whole
    /// numbers: surveys ask for one box.
    pub fn new(kind: SurveyKind, value: f64, scale: Option<Scale>) -> Result<Self> {
        let scale = scale.unwrap_or(kind.default_scale()).validate(kind)?;
        if !value.is_finite() || value.fract() != 0.0 || value < scale.min as f64 || value > scale.max as f64 {
            return Err(Error::invalid(
                "score",
                format!("score {value} is outside the {kind} scale {scale} (whole numbers from {} to {})", scale.min, scale.max),
            ));
        }
        Ok(Self { kind, scale, value })
    }

    /// The respondent's category for this score.
    pub fn category(self) -> Category {
        let v = self.value as i32;
        let Scale { min, max } = self.scale;
        match self.kind {
            SurveyKind::Nps if v >= 9 => Category::Promoter,
            SurveyKind::Nps if v >= 7 => Category::Passive,
            SurveyKind::Nps => Category::Detractor,
            SurveyKind::Csat if v >= max - 1 => Category::Satisfied,
            SurveyKind::Csat if v <= min + 1 => Category::Dissatisfied,
            SurveyKind::Csat => Category::Neutral,
            SurveyKind::Ces => {
                let p = self.scale.position(self.value);
                if p >= 2.0 / 3.0 - 1e-9 {
                    Category::LowEffort
                } else if p <= 1.0 / 3.0 + 1e-9 {
                    Category::HighEffort
                } else {
                    Category::Neutral
                }
            }
        }
    }
}

/// What a score says about the respondent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    Promoter,
    Passive,
    Detractor,
    Satisfied,
    Neutral,
    Dissatisfied,
    LowEffort,
    HighEffort,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Promoter => "promoter",
            Category::Passive => "passive",
            Category::Detractor => "detractor",
            Category::Satisfied => "satisfied",
            Category::Neutral => "neutral",
            Category::Dissatisfied => "dissatisfied",
            Category::LowEffort => "low_effort",
            Category::HighEffort => "high_effort",
        }
    }

    /// The unhappy end of its survey: detractor, bottom-two-box CSAT, high effort.
    pub fn is_unhappy(self) -> bool {
        matches!(self, Category::Detractor | Category::Dissatisfied | Category::HighEffort)
    }
}

/// NPS in points (−100…100) of `scores` (0–10); `None` when there are none.
pub fn nps(scores: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (mut n, mut promoters, mut detractors) = (0usize, 0usize, 0usize);
    for s in scores {
        n += 1;
        if s >= 9.0 {
            promoters += 1;
        } else if s <= 6.0 {
            detractors += 1;
        }
    }
    (n > 0).then(|| 100.0 * (promoters as f64 - detractors as f64) / n as f64)
}

/// CSAT in % (0–100): share of scores in the top two boxes of their scale.
pub fn csat(scores: impl IntoIterator<Item = (f64, Scale)>) -> Option<f64> {
    let (mut n, mut top) = (0usize, 0usize);
    for (s, scale) in scores {
        n += 1;
        if s >= (scale.max - 1) as f64 {
            top += 1;
        }
    }
    (n > 0).then(|| 100.0 * top as f64 / n as f64)
}

/// CES as the mean score, expressed on the standard 1–7 scale so that mixed scales average
/// meaningfully (a 1–5 answer of 5 counts as 7).
pub fn ces(scores: impl IntoIterator<Item = (f64, Scale)>) -> Option<f64> {
    let (mut n, mut sum) = (0usize, 0.0);
    for (s, scale) in scores {
        n += 1;
        sum += 1.0 + 6.0 * scale.position(s);
    }
    (n > 0).then(|| sum / n as f64)
}

/// A score impact in points of its survey's metric, signed: "+1.2", "-0.4". CES is a mean effort
/// on the 1–7 scale whose impacts are hundredths: two decimals ("-0.03", where one printed "-0.0"
/// for every theme). What rounds to zero reads "0.0", never "-0.0".
pub fn impact_text(survey: SurveyKind, impact: f64) -> String {
    let decimals = if survey == SurveyKind::Ces { 2 } else { 1 };
    let unit = 10f64.powi(decimals as i32);
    let rounded = (impact * unit).round() / unit;
    if rounded == 0.0 {
        format!("{:.decimals$}", 0.0)
    } else {
        format!("{rounded:+.decimals$}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nps_validation_names_field_and_range() {
        let e = Score::new(SurveyKind::Nps, 11.0, None).unwrap_err().to_string();
        assert_eq!(e, "score: score 11 is outside the NPS scale 0–10 (whole numbers from 0 to 10)");
        assert!(Score::new(SurveyKind::Nps, 7.5, None).is_err());
        assert!(Score::new(SurveyKind::Nps, f64::NAN, None).is_err());
        assert!(Score::new(SurveyKind::Nps, 5.0, Some(Scale { min: 1, max: 5 })).unwrap_err().to_string().contains("0–10"));
    }

    #[test]
    fn scale_must_be_increasing() {
        let e = Score::new(SurveyKind::Csat, 3.0, Some(Scale { min: 5, max: 5 })).unwrap_err().to_string();
        assert!(e.starts_with("scale_min:") && e.contains("below scale_max"), "{e}");
    }

    #[test]
    fn survey_kind_parses_case_insensitively_and_names_the_field() {
        assert_eq!("csat".parse::<SurveyKind>().unwrap(), SurveyKind::Csat);
        let e = "XYZ".parse::<SurveyKind>().unwrap_err().to_string();
        assert!(e.starts_with("survey:") && e.contains("NPS, CSAT or CES"), "{e}");
    }

    #[test]
    fn categories_on_default_and_custom_scales() {
        let cat = |k, v, s| Score::new(k, v, s).unwrap().category();
        assert_eq!(cat(SurveyKind::Nps, 9.0, None), Category::Promoter);
        assert_eq!(cat(SurveyKind::Nps, 8.0, None), Category::Passive);
        assert_eq!(cat(SurveyKind::Nps, 6.0, None), Category::Detractor);
        assert_eq!(cat(SurveyKind::Csat, 4.0, None), Category::Satisfied);
        assert_eq!(cat(SurveyKind::Csat, 3.0, None), Category::Neutral);
        assert_eq!(cat(SurveyKind::Csat, 2.0, None), Category::Dissatisfied);
        let ten = Some(Scale { min: 1, max: 10 });
        assert_eq!(cat(SurveyKind::Csat, 9.0, ten), Category::Satisfied);
        assert_eq!(cat(SurveyKind::Csat, 8.0, ten), Category::Neutral);
        assert_eq!(cat(SurveyKind::Ces, 5.0, None), Category::LowEffort);
        assert_eq!(cat(SurveyKind::Ces, 4.0, None), Category::Neutral);
        assert_eq!(cat(SurveyKind::Ces, 3.0, None), Category::HighEffort);
    }

    #[test]
    fn survey_metrics_by_hand() {
        // 3 promoters, 1 passive, 2 detractors of 6: (3 − 2) / 6 = 16.67 points.
        let n = nps([10.0, 9.0, 9.0, 8.0, 6.0, 0.0]).unwrap();
        assert!((n - 100.0 / 6.0).abs() < 1e-9);
        assert_eq!(nps(std::iter::empty()), None);
        let five = Scale { min: 1, max: 5 };
        assert_eq!(csat([(5.0, five), (4.0, five), (3.0, five), (1.0, five)]), Some(50.0));
        // 1–7 answers 7 and 4 plus a 1–5 answer of 5 (= 7): (7 + 4 + 7) / 3 = 6.
        let seven = Scale { min: 1, max: 7 };
        assert_eq!(ces([(7.0, seven), (4.0, seven), (5.0, five)]), Some(6.0));
    }

    #[test]
    fn impacts_read_in_their_surveys_points_and_never_as_negative_zero() {
        assert_eq!(impact_text(SurveyKind::Nps, -4.06), "-4.1");
        assert_eq!(impact_text(SurveyKind::Csat, 1.2), "+1.2");
        assert_eq!(impact_text(SurveyKind::Nps, -0.04), "0.0");
        assert_eq!(impact_text(SurveyKind::Ces, -0.031), "-0.03", "a CES impact is hundredths of its mean");
        assert_eq!(impact_text(SurveyKind::Ces, -0.004), "0.00");
    }
}
