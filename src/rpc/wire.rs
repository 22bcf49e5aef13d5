//! The JSON-RPC 2.0 envelope: requests, responses, notifications and error objects. What is
//! inside (`method`, `params`, `result`) is `api`'s.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Request {
    pub(crate) jsonrpc: String,
    pub(crate) method: String,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub(crate) params: Value,
    /// Absent for notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<Value>,
}

impl Request {
    pub(crate) fn new(id: u64, method: &str, params: Value) -> Self {
        Self {
            jsonrpc: "2.0".into(),
            method: method.into(),
            params,
            id: Some(Value::from(id)),
        }
    }

    pub(crate) fn notification(method: &str, params: Value) -> Self {
        Self {
            jsonrpc: "2.0".into(),
            method: method.into(),
            params,
            id: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Response {
    pub(crate) jsonrpc: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<ErrorObject>,
    pub(crate) id: Value,
}

impl Response {
    pub(crate) fn ok(id: Value, result: Value) -> Self {
        Self {
            jsonrpc: "2.0".into(),
            result: Some(result),
            error: None,
            id,
        }
    }

    /// An error reply; `id` is null when the request's id could not be read.
    pub(crate) fn err(id: Value, error: &api::Error) -> Self {
        Self {
            jsonrpc: "2.0".into(),
            result: None,
            error: Some(ErrorObject {
                code: error.code(),
                message: error.message().to_owned(),
                data: None,
            }),
            id,
        }
    }
}

/// JSON-RPC's error object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct ErrorObject {
    pub(crate) code: i64,
    pub(crate) message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) data: Option<Value>,
}

impl From<ErrorObject> for api::Error {
    fn from(error: ErrorObject) -> Self {
        api::Error::from_code(error.code, error.message)
    }
}

/// One message as a line.
pub(crate) fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    let mut line = serde_json::to_vec(message).unwrap_or_default();
    line.push(b'\n');
    line
}
