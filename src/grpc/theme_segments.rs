//! `ListThemeSegments`: the request into a store query (every field checked), a page of hits into
//! the reply, and the page token, which is the last segment's position in the newest-first order.

use super::pb;
use crate::error::Error;
use crate::report::timestamp;
use crate::sentiment::Label;
use crate::store::{SegmentPosition, ThemeSegmentHit, ThemeSegmentPage, ThemeSegmentQuery};

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 500;
const TOKEN_PREFIX: &str = "ts1";

pub fn query(r: &pb::ListThemeSegmentsRequest) -> Result<ThemeSegmentQuery, Error> {
    let limit = match r.page_size {
        0 => DEFAULT_PAGE_SIZE,
        n if n <= MAX_PAGE_SIZE => n,
        n => return Err(Error::invalid("page_size", format!("{n} is out of range; allowed 1–{MAX_PAGE_SIZE}, or 0 for {DEFAULT_PAGE_SIZE}"))),
    };
    let (since, until) = (super::optional_time("since", &r.since)?, super::optional_time("until", &r.until)?);
    if let (Some(s), Some(u)) = (since, until) {
        if s >= u {
            return Err(Error::invalid("since", format!("must be before until ({} is not before {})", timestamp(s), timestamp(u))));
        }
    }
    let sentiment = match r.sentiment.trim() {
        "" => None,
        s => Some(Label::parse_named(s).map_err(|e| Error::invalid("sentiment", format!("{e} (empty = all)")))?),
    };
    let after = match r.page_token.as_str() {
        "" => None,
        t => Some(decode_token(t).ok_or_else(|| Error::invalid("page_token", "not a next_page_token of ListThemeSegments: pass it back unchanged"))?),
    };
    Ok(ThemeSegmentQuery { theme_id: r.theme_id, since, until, sentiment, after, limit: limit as usize })
}

pub fn reply(page: &ThemeSegmentPage) -> pb::ListThemeSegmentsReply {
    let next_page_token = match page.segments.last() {
        Some(last) if page.more => encode_token(&last.position()),
        _ => String::new(),
    };
    pb::ListThemeSegmentsReply { version: page.version, segments: page.segments.iter().map(segment).collect(), next_page_token }
}

fn segment(h: &ThemeSegmentHit) -> pb::ThemeSegment {
    let r = &h.response;
    pb::ThemeSegment {
        response_id: r.response_id.clone(),
        account_id: r.account_id.clone(),
        survey: super::survey_type(r.survey) as i32,
        scale: Some(pb::Scale { min: r.scale.min, max: r.scale.max }),
        score: r.score,
        submitted_at: timestamp(r.submitted_at),
        index: h.index,
        text: h.text.clone(),
        verbatim: r.verbatim.clone(),
        sentiment: h.sentiment.map(|s| super::service::sentiment(s, false)),
        similarity: h.similarity,
        attributes: r.attributes.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    }
}

/// "ts1.<submitted_at>.<index>.<response id in hex>": opaque to clients, checked on the way back.
fn encode_token(p: &SegmentPosition) -> String {
    let id: String = p.response_id.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{TOKEN_PREFIX}.{}.{}.{id}", p.submitted_at, p.index)
}

fn decode_token(token: &str) -> Option<SegmentPosition> {
    let mut parts = token.split('.');
    if parts.next()? != TOKEN_PREFIX {
        return None;
    }
    let submitted_at = parts.next()?.parse().ok()?;
    let index = parts.next()?.parse().ok()?;
    let hex = parts.next()?;
    if parts.next().is_some() || hex.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect();
    let response_id = String::from_utf8(bytes?).ok()?;
    Some(SegmentPosition { submitted_at, response_id, index })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_token_gives_back_the_position_it_was_made_from() {
        let p = SegmentPosition { submitted_at: -5, response_id: "résumé.42/ä".into(), index: 3 };
        assert_eq!(decode_token(&encode_token(&p)), Some(p));
        for bad in ["", "ts1", "ts1.1.2", "ts1.1.2.zz", "ts1.1.2.616", "ts2.1.2.61", "ts1.x.2.61", "ts1.1.2.61.0"] {
            assert_eq!(decode_token(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn every_bad_field_is_named_with_what_it_allows() {
        let ok = pb::ListThemeSegmentsRequest { theme_id: 3, ..Default::default() };
        let q = query(&ok).unwrap();
        assert_eq!((q.theme_id, q.limit, q.since, q.sentiment, q.after), (3, 50, None, None, None));
        let error = |r: pb::ListThemeSegmentsRequest| query(&r).unwrap_err().to_string();
        let e = error(pb::ListThemeSegmentsRequest { page_size: 501, ..ok.clone() });
        assert!(e.contains("page_size") && e.contains("1–500"), "{e}");
        let e = error(pb::ListThemeSegmentsRequest { sentiment: "angry".into(), ..ok.clone() });
        assert!(e.contains("sentiment") && e.contains("negative, neutral or positive"), "{e}");
        let e = error(pb::ListThemeSegmentsRequest { since: "yesterday".into(), ..ok.clone() });
        assert!(e.contains("since"), "{e}");
        let e = error(pb::ListThemeSegmentsRequest { since: "2026-02-01".into(), until: "2026-01-01".into(), ..ok.clone() });
        assert!(e.contains("since") && e.contains("before until"), "{e}");
        let e = error(pb::ListThemeSegmentsRequest { page_token: "abc".into(), ..ok.clone() });
        assert!(e.contains("page_token"), "{e}");
        let q = query(&pb::ListThemeSegmentsRequest { since: "2026-01-01".into(), sentiment: "negative".into(), page_size: 500, ..ok }).unwrap();
        assert_eq!((q.since, q.sentiment, q.limit), (Some(1_767_225_600), Some(Label::Negative), 500));
    }
}
