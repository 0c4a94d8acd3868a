//! Response building: the server's JSON result bodies (VMS notes §1.1, §2.6)
//! and a response body that can be cut short to simulate a reset.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

/// How long a truncated response stalls before the reset.
const RESET_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

/// Body of every simulator response.
#[derive(Debug)]
pub enum SimBody {
    /// The whole body in one frame (or nothing).
    Full(Option<Bytes>),
    /// Part of a body, then (after a pause that lets the client read the
    /// headers and that part) an error: hyper aborts the connection.
    Truncated {
        part: Option<Bytes>,
        pause: Pin<Box<tokio::time::Sleep>>,
    },
}

impl SimBody {
    pub fn empty() -> Self {
        SimBody::Full(None)
    }
}

impl Body for SimBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            SimBody::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            SimBody::Truncated { part, pause } => {
                if let Some(d) = part.take() {
                    return Poll::Ready(Some(Ok(Frame::data(d))));
                }
                // Without the pause the reset could overtake the bytes already
                // sent and the client would never see the headers.
                match pause.as_mut().poll(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(()) => Poll::Ready(Some(Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "simulated reset mid-response",
                    )))),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, SimBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            SimBody::Full(Some(d)) => SizeHint::with_exact(d.len() as u64),
            SimBody::Full(None) => SizeHint::with_exact(0),
            SimBody::Truncated { .. } => SizeHint::default(),
        }
    }
}

pub type SimResponse = Response<SimBody>;

/// A response with the given status, content type and body.
pub fn with_body(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> SimResponse {
    let mut resp = Response::new(SimBody::Full(Some(Bytes::from(body))));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// A JSON response.
pub fn json_response(status: StatusCode, value: &Value) -> SimResponse {
    with_body(status, "application/json", value.to_string().into_bytes())
}

/// A response without a body.
pub fn empty(status: StatusCode) -> SimResponse {
    let mut resp = Response::new(SimBody::empty());
    *resp.status_mut() = status;
    resp
}

/// The server's error ids the simulator uses, with their numeric codes (sent
/// as strings; the full table is in the VMS notes §1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorId {
    Ok,
    MissingParameter,
    InvalidParameter,
    Forbidden,
    BadRequest,
    InternalServerError,
    Conflict,
    NotImplemented,
    NotFound,
    UnsupportedMediaType,
    ServiceUnavailable,
    Unauthorized,
    Gone,
    NotAllowed,
}

impl ErrorId {
    pub fn code(self) -> u8 {
        match self {
            ErrorId::Ok => 0,
            ErrorId::MissingParameter => 1,
            ErrorId::InvalidParameter => 2,
            ErrorId::Forbidden => 4,
            ErrorId::BadRequest => 5,
            ErrorId::InternalServerError => 6,
            ErrorId::Conflict => 7,
            ErrorId::NotImplemented => 8,
            ErrorId::NotFound => 9,
            ErrorId::UnsupportedMediaType => 10,
            ErrorId::ServiceUnavailable => 11,
            ErrorId::Unauthorized => 12,
            ErrorId::Gone => 16,
            ErrorId::NotAllowed => 17,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ErrorId::Ok => "ok",
            ErrorId::MissingParameter => "missingParameter",
            ErrorId::InvalidParameter => "invalidParameter",
            ErrorId::Forbidden => "forbidden",
            ErrorId::BadRequest => "badRequest",
            ErrorId::InternalServerError => "internalServerError",
            ErrorId::Conflict => "conflict",
            ErrorId::NotImplemented => "notImplemented",
            ErrorId::NotFound => "notFound",
            ErrorId::UnsupportedMediaType => "unsupportedMediaType",
            ErrorId::ServiceUnavailable => "serviceUnavailable",
            ErrorId::Unauthorized => "unauthorized",
            ErrorId::Gone => "gone",
            ErrorId::NotAllowed => "notAllowed",
        }
    }

    /// HTTP status the REST API uses for this error (VMS notes §2.6).
    pub fn rest_status(self) -> StatusCode {
        match self {
            ErrorId::Ok => StatusCode::OK,
            ErrorId::MissingParameter | ErrorId::InvalidParameter => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ErrorId::Forbidden => StatusCode::FORBIDDEN,
            ErrorId::BadRequest => StatusCode::BAD_REQUEST,
            ErrorId::InternalServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorId::Conflict => StatusCode::CONFLICT,
            ErrorId::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            ErrorId::NotFound => StatusCode::NOT_FOUND,
            ErrorId::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorId::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorId::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorId::Gone => StatusCode::GONE,
            ErrorId::NotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    /// The error id a plain HTTP status corresponds to (for the status fault).
    pub fn for_status(status: StatusCode) -> ErrorId {
        match status.as_u16() {
            200..=299 => ErrorId::Ok,
            401 => ErrorId::Unauthorized,
            403 => ErrorId::Forbidden,
            404 => ErrorId::NotFound,
            405 => ErrorId::NotAllowed,
            409 => ErrorId::Conflict,
            410 => ErrorId::Gone,
            415 => ErrorId::UnsupportedMediaType,
            422 => ErrorId::InvalidParameter,
            501 => ErrorId::NotImplemented,
            503 => ErrorId::ServiceUnavailable,
            500..=599 => ErrorId::InternalServerError,
            _ => ErrorId::BadRequest,
        }
    }
}

/// The result object: `{"error":"<n>","errorId":"<id>","errorString":"…"}`.
/// 4.x servers had no `errorId`.
pub fn result_body(id: ErrorId, message: &str, with_error_id: bool) -> Value {
    if with_error_id {
        json!({"error": id.code().to_string(), "errorId": id.name(), "errorString": message})
    } else {
        json!({"error": id.code().to_string(), "errorString": message})
    }
}

/// A REST error: status from the error id, result object as body.
pub fn rest_error(id: ErrorId, message: &str) -> SimResponse {
    json_response(id.rest_status(), &result_body(id, message, true))
}

/// Replaces a response body with its first bytes followed by a reset, keeping
/// the full `Content-Length` so the client expects more.
pub fn truncate(resp: SimResponse) -> SimResponse {
    let (mut parts, body) = resp.into_parts();
    let full = match body {
        SimBody::Full(Some(d)) => d,
        SimBody::Full(None) | SimBody::Truncated { .. } => Bytes::new(),
    };
    // Announce more than will ever arrive, even for an empty body.
    let announced = full.len().max(1) + 64;
    let part = full.slice(..full.len() / 2);
    parts
        .headers
        .insert(CONTENT_LENGTH, HeaderValue::from(announced as u64));
    let pause = Box::pin(tokio::time::sleep(RESET_PAUSE));
    Response::from_parts(
        parts,
        SimBody::Truncated {
            part: Some(part),
            pause,
        },
    )
}
