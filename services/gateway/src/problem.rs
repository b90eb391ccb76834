//! RFC 9457 problem details: one stable `type` URI per kind of error, so that brokers'
//! systems switch on `type` (and, for rejected declarations, on `reason`, the same code as
//! in the validation report) rather than on the human `title` or `detail`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

/// Prefix of every problem `type` URI.
pub const TYPE_PREFIX: &str = "urn:tamga:problem:";

/// The kinds of error the API answers with (their slug is the end of the `type` URI).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// 401: no, a malformed, an unknown or a revoked token.
    Unauthorized,
    /// 403: the token may not submit from this origin.
    OriginNotAllowed,
    /// 404: no such declaration for this broker (also another broker's).
    NotFound,
    /// 400: no `Idempotency-Key`.
    IdempotencyKeyMissing,
    /// 400: an `Idempotency-Key` that is not 1–255 visible ASCII characters.
    IdempotencyKeyInvalid,
    /// 422: the key was used before with other bytes or another corridor.
    IdempotencyKeyReused,
    /// 400: `X-Tamga-Origin` / `X-Tamga-Destination` missing or not ISO 3166 alpha-2.
    InvalidCorridor,
    /// 400: an empty body.
    EmptyBody,
    /// 400: a query parameter that cannot be understood.
    InvalidQuery,
    /// 413: above the policy's input limit.
    PayloadTooLarge,
    /// 415: not `application/xml`.
    UnsupportedMediaType,
    /// 429: above the broker's rate.
    RateLimited,
    /// 503: the broker (no confirm) or the database is unavailable: retry with the same key.
    Unavailable,
    /// 409: the declaration is not decided yet (receipt, report, document).
    NotDecidedYet,
    /// 409: rejected declarations have no counter-signed document.
    Rejected,
    /// 404: no such route.
    NoRoute,
    /// 405: the route does not take this method.
    MethodNotAllowed,
    /// 500: a bug or stored data that cannot be read.
    Internal,
    /// 400: a check request that cannot be understood (`POST /v1/checks`).
    InvalidCheck,
    /// 403: the page token's role may not check (an analyst's).
    RoleNotAllowed,
    /// 404: no such check (`GET /v1/checks/{id}`).
    NoSuchCheck,
}

impl Kind {
    /// Every kind (for the OpenAPI drift test).
    pub const ALL: [Kind; 21] = [
        Kind::Unauthorized,
        Kind::OriginNotAllowed,
        Kind::NotFound,
        Kind::IdempotencyKeyMissing,
        Kind::IdempotencyKeyInvalid,
        Kind::IdempotencyKeyReused,
        Kind::InvalidCorridor,
        Kind::EmptyBody,
        Kind::InvalidQuery,
        Kind::PayloadTooLarge,
        Kind::UnsupportedMediaType,
        Kind::RateLimited,
        Kind::Unavailable,
        Kind::NotDecidedYet,
        Kind::Rejected,
        Kind::NoRoute,
        Kind::MethodNotAllowed,
        Kind::Internal,
        Kind::InvalidCheck,
        Kind::RoleNotAllowed,
        Kind::NoSuchCheck,
    ];

    /// The last part of the `type` URI.
    pub fn slug(self) -> &'static str {
        match self {
            Kind::Unauthorized => "unauthorized",
            Kind::OriginNotAllowed => "origin-not-allowed",
            Kind::NotFound => "not-found",
            Kind::IdempotencyKeyMissing => "idempotency-key-missing",
            Kind::IdempotencyKeyInvalid => "idempotency-key-invalid",
            Kind::IdempotencyKeyReused => "idempotency-key-reused",
            Kind::InvalidCorridor => "invalid-corridor",
            Kind::EmptyBody => "empty-body",
            Kind::InvalidQuery => "invalid-query",
            Kind::PayloadTooLarge => "payload-too-large",
            Kind::UnsupportedMediaType => "unsupported-media-type",
            Kind::RateLimited => "rate-limited",
            Kind::Unavailable => "unavailable",
            Kind::NotDecidedYet => "not-decided-yet",
            Kind::Rejected => "rejected",
            Kind::NoRoute => "no-route",
            Kind::MethodNotAllowed => "method-not-allowed",
            Kind::Internal => "internal",
            Kind::InvalidCheck => "invalid-check",
            Kind::RoleNotAllowed => "role-not-allowed",
            Kind::NoSuchCheck => "no-such-check",
        }
    }

    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        match self {
            Kind::Unauthorized => StatusCode::UNAUTHORIZED,
            Kind::OriginNotAllowed | Kind::RoleNotAllowed => StatusCode::FORBIDDEN,
            Kind::NotFound | Kind::NoRoute | Kind::NoSuchCheck => StatusCode::NOT_FOUND,
            Kind::IdempotencyKeyMissing
            | Kind::IdempotencyKeyInvalid
            | Kind::InvalidCorridor
            | Kind::EmptyBody
            | Kind::InvalidQuery
            | Kind::InvalidCheck => StatusCode::BAD_REQUEST,
            Kind::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Kind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Kind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Kind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Kind::NotDecidedYet | Kind::Rejected => StatusCode::CONFLICT,
            Kind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short, fixed summary.
    pub fn title(self) -> &'static str {
        match self {
            Kind::Unauthorized => "Missing, unknown or revoked API token",
            Kind::OriginNotAllowed => "This token may not submit from this origin",
            Kind::NotFound => "No such declaration",
            Kind::IdempotencyKeyMissing => "Idempotency-Key header required",
            Kind::IdempotencyKeyInvalid => "Invalid Idempotency-Key",
            Kind::IdempotencyKeyReused => "Idempotency-Key already used for another request",
            Kind::InvalidCorridor => "Missing or invalid corridor headers",
            Kind::EmptyBody => "Empty body",
            Kind::InvalidQuery => "Invalid query parameter",
            Kind::PayloadTooLarge => "Declaration too large",
            Kind::UnsupportedMediaType => "Content-Type must be application/xml",
            Kind::RateLimited => "Too many submissions",
            Kind::Unavailable => "Temporarily unavailable",
            Kind::NotDecidedYet => "Not decided yet",
            Kind::Rejected => "The declaration was rejected",
            Kind::NoRoute => "No such resource",
            Kind::MethodNotAllowed => "Method not allowed",
            Kind::Internal => "Internal error",
            Kind::InvalidCheck => "Invalid check request",
            Kind::RoleNotAllowed => "This token's role may not do this",
            Kind::NoSuchCheck => "No such check",
        }
    }

    /// The full `type` URI.
    pub fn type_uri(self) -> String {
        format!("{TYPE_PREFIX}{}", self.slug())
    }
}

/// One problem response.
#[derive(Debug, Clone)]
pub struct Problem {
    pub kind: Kind,
    pub detail: String,
    /// `Retry-After` seconds (429, 503, 409 not decided yet).
    pub retry_after: Option<u32>,
    /// Extension members (`reason`, `subIndication`, …).
    pub extra: Map<String, Value>,
}

impl Problem {
    pub fn new(kind: Kind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            retry_after: None,
            extra: Map::new(),
        }
    }

    #[must_use]
    pub fn retry_after(mut self, secs: u32) -> Self {
        self.retry_after = Some(secs);
        self
    }

    #[must_use]
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let mut body = json!({
            "type": self.kind.type_uri(),
            "title": self.kind.title(),
            "status": self.kind.status().as_u16(),
            "detail": self.detail,
        });
        if let Value::Object(map) = &mut body {
            for (k, v) in &self.extra {
                map.insert(k.clone(), v.clone());
            }
        }
        body
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = self.body().to_string();
        let mut response = (self.kind.status(), body).into_response();
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.kind == Kind::Unauthorized {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tamga\""),
            );
        }
        response
    }
}
