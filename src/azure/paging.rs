//! Resource Graph paging as explicit state: the continuation token travels in the
//! state, the loop only asks "what next?".
use serde::Deserialize;
use serde_json::value::RawValue;

/// Where a paged query stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageState {
    /// No page fetched yet.
    Start,
    /// Fetch the page behind this `$skipToken`.
    Next { skip_token: String, page: u32 },
    /// The last page has been read.
    Done { pages: u32 },
}

/// An error in the paging protocol itself (not the transport).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PagingError {
    #[error("Resource Graph returned the same $skipToken twice; stopping to avoid a loop")]
    RepeatedToken,
    #[error("Resource Graph truncated the result (resultTruncated: true) and gave no $skipToken")]
    Truncated,
}

impl PageState {
    /// The token to send with the next request, if any.
    pub fn skip_token(&self) -> Option<&str> {
        match self {
            PageState::Next { skip_token, .. } => Some(skip_token),
            _ => None,
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self, PageState::Done { .. })
    }

    /// Pages read so far.
    pub fn pages(&self) -> u32 {
        match self {
            PageState::Start => 0,
            PageState::Next { page, .. } => *page,
            PageState::Done { pages } => *pages,
        }
    }

    /// The state after a page that carried `next` and `resultTruncated`.
    pub fn advance(self, next: Option<String>, truncated: bool) -> Result<PageState, PagingError> {
        let pages = self.pages() + 1;
        match next.filter(|t| !t.is_empty()) {
            Some(t) if self.skip_token() == Some(t.as_str()) => Err(PagingError::RepeatedToken),
            Some(t) => Ok(PageState::Next {
                skip_token: t,
                page: pages,
            }),
            None if truncated => Err(PagingError::Truncated),
            None => Ok(PageState::Done { pages }),
        }
    }
}

/// One Resource Graph reply, rows still unparsed and borrowed from the body.
#[derive(Debug, Deserialize)]
pub struct Page<'a> {
    #[serde(borrow)]
    pub data: Vec<&'a RawValue>,
    #[serde(rename = "$skipToken", default)]
    pub skip_token: Option<String>,
    #[serde(rename = "totalRecords", default)]
    pub total_records: Option<u64>,
    #[serde(default)]
    pub count: Option<u64>,
    /// `"true"` / `"false"`: a string in the protocol.
    #[serde(rename = "resultTruncated", default)]
    pub result_truncated: Option<String>,
}

impl Page<'_> {
    pub fn truncated(&self) -> bool {
        self.result_truncated
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("true"))
    }

    /// What the paging loop needs of this page once its rows are taken.
    pub fn meta(&self) -> super::arg::PageMeta {
        super::arg::PageMeta {
            truncated: self.truncated(),
            skip_token: self.skip_token.clone(),
            rows: self.data.len() as u64,
            total_records: self.total_records,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_tokens_until_absent() {
        let s = PageState::Start;
        assert_eq!(s.skip_token(), None);
        let s = s.advance(Some("t1".into()), false).unwrap();
        assert_eq!(s.skip_token(), Some("t1"));
        let s = s.advance(Some("t2".into()), false).unwrap();
        assert_eq!(
            s,
            PageState::Next {
                skip_token: "t2".into(),
                page: 2
            }
        );
        let s = s.advance(None, false).unwrap();
        assert_eq!(s, PageState::Done { pages: 3 });
        assert!(s.is_done());
        // An empty token ends paging too.
        assert!(PageState::Start
            .advance(Some(String::new()), false)
            .unwrap()
            .is_done());
    }

    #[test]
    fn protocol_errors() {
        let s = PageState::Start.advance(Some("t".into()), false).unwrap();
        assert_eq!(
            s.advance(Some("t".into()), false),
            Err(PagingError::RepeatedToken)
        );
        assert_eq!(
            PageState::Start.advance(None, true),
            Err(PagingError::Truncated)
        );
    }

    #[test]
    fn page_deserializes_with_string_truncation_flag() {
        let body = r#"{"totalRecords":3,"count":2,"data":[{"id":"a","x":{"y":[1]}},{"id":"b"}],"facets":[],"resultTruncated":"false","$skipToken":"abc"}"#;
        let p: Page = serde_json::from_str(body).unwrap();
        assert_eq!(p.data.len(), 2);
        assert_eq!(p.data[0].get(), r#"{"id":"a","x":{"y":[1]}}"#);
        assert_eq!(p.skip_token.as_deref(), Some("abc"));
        assert_eq!((p.total_records, p.count), (Some(3), Some(2)));
        assert!(!p.truncated());
        let p: Page = serde_json::from_str(r#"{"data":[],"resultTruncated":"true"}"#).unwrap();
        assert!(p.truncated());
    }
}
