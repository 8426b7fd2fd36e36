//! The error answer every admin route shares: a status and `{"error": kind, "message": text}`
//! ([`crate::admin_api::ErrorBody`]). Each route module maps its own error type to it
//! (`admin_transforms`: `TransformError`; `admin_topics`: `BrokerError`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::admin_api::ErrorBody;

/// An error answer.
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
}

impl ApiError {
    /// 400 with `kind`.
    pub fn bad_request(kind: &'static str, message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::BAD_REQUEST, kind, message: message.into() }
    }

    /// 503 while the broker is still opening its logs.
    pub fn starting() -> Self {
        ApiError { status: StatusCode::SERVICE_UNAVAILABLE, kind: "starting", message: "the broker is still opening its logs".into() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorBody { error: self.kind.to_string(), message: self.message })).into_response()
    }
}
