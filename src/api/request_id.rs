//! Request ids: every answer carries `X-Request-Id`, the caller's when it sent a well-formed
//! one (so a gateway's id follows the request through), a new one otherwise. The id is a field
//! of the request's span, so every log line written while the request runs names it, and JSON
//! error bodies carry it as `request_id`, so a user reporting an error can be matched to the
//! log.

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest caller id kept: a UUID, a trace id or a gateway's own format all fit.
const MAX_LEN: usize = 128;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// The caller's id when it is 1–128 characters of `[A-Za-z0-9._:-]` (nothing that could
    /// forge a log line or a header), a new random one otherwise.
    pub fn of(headers: &HeaderMap) -> RequestId {
        let given =
            headers.get(&HEADER).and_then(|v| v.to_str().ok()).filter(|v| is_well_formed(v));
        match given {
            Some(id) => RequestId(id.to_string()),
            None => RequestId::fresh(),
        }
    }

    /// A new id: this process's random prefix and a per-thread count, so ids never repeat
    /// across the nodes and restarts of a fleet, and making one costs no random draw (it is
    /// made for every request).
    fn fresh() -> RequestId {
        use std::cell::Cell;
        use std::fmt::Write;
        use std::sync::OnceLock;
        use std::sync::atomic::{AtomicU32, Ordering};
        static PREFIX: OnceLock<String> = OnceLock::new();
        static THREADS: AtomicU32 = AtomicU32::new(0);
        thread_local! {
            static NEXT: Cell<(u32, u64)> =
                Cell::new((THREADS.fetch_add(1, Ordering::Relaxed), 0));
        }
        let prefix = PREFIX.get_or_init(|| tessera_core::auth::secret::random_token(6));
        let (thread, count) = NEXT.get();
        NEXT.set((thread, count.wrapping_add(1)));
        let mut id = String::with_capacity(32);
        // unwrap-free: writing to a String cannot fail
        let _ = write!(id, "{prefix}-{thread:x}-{count:x}");
        RequestId(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The id of the request being answered, as the logging middleware set it.
pub fn of_request(req: &actix_web::HttpRequest) -> Option<String> {
    use actix_web::HttpMessage;
    req.extensions().get::<RequestId>().map(|id| id.0.clone())
}

fn is_well_formed(id: &str) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Sets the header, and adds `request_id` to a JSON error body that is an object. Other
/// answers pass through untouched, unbuffered.
pub async fn stamp<B: MessageBody>(
    res: ServiceResponse<B>,
    id: Option<&RequestId>,
) -> ServiceResponse<EitherBody<B>> {
    let Some(id) = id else { return res.map_into_left_body() };
    let mut res = res;
    // unwrap-free: the id is checked or generated from header-safe characters
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        res.headers_mut().insert(HEADER, value);
    }
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(res.status().is_client_error() || res.status().is_server_error()) || !is_json {
        return res.map_into_left_body();
    }
    let (req, res) = res.into_parts();
    let (head, body) = res.into_parts();
    let bytes = actix_web::body::to_bytes(body).await.unwrap_or_default();
    let body = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(mut fields)) => {
            fields.insert("request_id".into(), id.as_str().into());
            serde_json::Value::Object(fields).to_string().into_bytes().into()
        }
        _ => bytes,
    };
    let res = head.set_body(BoxBody::new(body));
    ServiceResponse::new(req, res).map_into_right_body()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_id_is_kept_only_when_well_formed() {
        let with = |v: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(HEADER, HeaderValue::from_str(v).unwrap());
            RequestId::of(&headers)
        };
        assert_eq!(with("gw-01:abc.DEF_9").as_str(), "gw-01:abc.DEF_9");
        for bad in ["", "a b", "x\"y", "{}", &"a".repeat(129)] {
            assert_ne!(with(bad).as_str(), bad, "{bad:?}");
        }
        let fresh = RequestId::of(&HeaderMap::new());
        let next = RequestId::of(&HeaderMap::new());
        assert!(is_well_formed(fresh.as_str()) && is_well_formed(next.as_str()));
        assert_ne!(fresh, next, "every request gets an id of its own");
    }
}
