//! What can go wrong with a request, as the client learns it: each kind has its own JSON-RPC
//! error code, so a script (or the CLI) can tell a mistake of its own from a busy daemon or a
//! failed operation. The message is always one line a user can act on.

/// A request's failure. The message is the whole text shown to the user (`error: <message>`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Error {
    /// The request line is not JSON (-32700).
    #[error("{0}")]
    Parse(String),
    /// The line is JSON but not a JSON-RPC 2.0 request, or is too long (-32600).
    #[error("{0}")]
    InvalidRequest(String),
    /// No method of that name (-32601).
    #[error("{0}")]
    MethodNotFound(String),
    /// The parameters do not fit the method: a client bug, not a user's typo (-32602).
    #[error("{0}")]
    InvalidParams(String),
    /// A bug or broken invariant in the daemon (-32603).
    #[error("{0}")]
    Internal(String),
    /// The operation failed: jj-lib, the file system, a remote (-32000).
    #[error("{0}")]
    Failed(String),
    /// A mistake the user can fix: an unknown repo, a bad path, not a mount, a bad value
    /// (-32001).
    #[error("{0}")]
    User(String),
    /// Retry later: a mount is in use, the daemon is at capacity (-32002).
    #[error("{0}")]
    Busy(String),
    /// The daemon does not do this yet (-32003).
    #[error("{0}")]
    NotImplemented(String),
}

/// The JSON-RPC error codes, reserved ones first, then jjfs's own.
pub(crate) mod code {
    pub(crate) const PARSE: i64 = -32700;
    pub(crate) const INVALID_REQUEST: i64 = -32600;
    pub(crate) const METHOD_NOT_FOUND: i64 = -32601;
    pub(crate) const INVALID_PARAMS: i64 = -32602;
    pub(crate) const INTERNAL: i64 = -32603;
    pub(crate) const FAILED: i64 = -32000;
    pub(crate) const USER: i64 = -32001;
    pub(crate) const BUSY: i64 = -32002;
    pub(crate) const NOT_IMPLEMENTED: i64 = -32003;
}

/// What a user can do about running out of file descriptors.
const FD_HINT: &str = "too many open files (raise the limit with `ulimit -n`)";

impl Error {
    pub(crate) fn parse(err: impl std::fmt::Display) -> Self {
        Self::Parse(format!("invalid JSON: {err}"))
    }

    pub(crate) fn invalid_request(message: impl Into<String>) -> Self {
        Self::InvalidRequest(message.into())
    }

    pub(crate) fn method_not_found(method: &str) -> Self {
        Self::MethodNotFound(format!("unknown method {method:?}"))
    }

    pub(crate) fn invalid_params(err: impl std::fmt::Display) -> Self {
        Self::InvalidParams(format!("invalid params: {err}"))
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::Internal(message.into())
    }

    pub(crate) fn user(message: impl Into<String>) -> Self {
        Self::User(message.into())
    }

    pub(crate) fn busy(message: impl Into<String>) -> Self {
        Self::Busy(message.into())
    }

    /// A failed operation. Running out of descriptors is named as such wherever the text
    /// came from (the sync engine reports errors as text, std's `(os error 24)` included).
    pub(crate) fn failed(message: impl Into<String>) -> Self {
        let message = message.into();
        if (message.contains("(os error 24)") || message.contains("(os error 23)"))
            && !message.contains(FD_HINT)
        {
            return Self::Failed(format!("{message}: {FD_HINT}"));
        }
        Self::Failed(message)
    }

    /// A failed file operation on `what`; EMFILE/ENFILE say what to do about them.
    pub(crate) fn io(what: impl std::fmt::Display, err: &std::io::Error) -> Self {
        if is_out_of_fds(err) {
            Self::Failed(format!("{what}: {FD_HINT}"))
        } else {
            Self::Failed(format!("{what}: {err}"))
        }
    }

    /// The daemon itself has no descriptor left for a new client.
    pub(crate) fn out_of_fds() -> Self {
        Self::Failed(format!("jjfsd has {FD_HINT}"))
    }

    pub(crate) fn code(&self) -> i64 {
        match self {
            Self::Parse(_) => code::PARSE,
            Self::InvalidRequest(_) => code::INVALID_REQUEST,
            Self::MethodNotFound(_) => code::METHOD_NOT_FOUND,
            Self::InvalidParams(_) => code::INVALID_PARAMS,
            Self::Internal(_) => code::INTERNAL,
            Self::Failed(_) => code::FAILED,
            Self::User(_) => code::USER,
            Self::Busy(_) => code::BUSY,
            Self::NotImplemented(_) => code::NOT_IMPLEMENTED,
        }
    }

    pub(crate) fn message(&self) -> &str {
        match self {
            Self::Parse(m)
            | Self::InvalidRequest(m)
            | Self::MethodNotFound(m)
            | Self::InvalidParams(m)
            | Self::Internal(m)
            | Self::Failed(m)
            | Self::User(m)
            | Self::Busy(m)
            | Self::NotImplemented(m) => m,
        }
    }

    /// The same kind of error, its message prefixed with what was being done.
    pub(crate) fn with_context(self, context: &str) -> Self {
        let message = format!("{context}: {}", self.message());
        Self::from_code(self.code(), message)
    }

    /// The error a client received as `code` and `message`; an unknown code is a failure.
    pub(crate) fn from_code(code: i64, message: String) -> Self {
        match code {
            code::PARSE => Self::Parse(message),
            code::INVALID_REQUEST => Self::InvalidRequest(message),
            code::METHOD_NOT_FOUND => Self::MethodNotFound(message),
            code::INVALID_PARAMS => Self::InvalidParams(message),
            code::INTERNAL => Self::Internal(message),
            code::USER => Self::User(message),
            code::BUSY => Self::Busy(message),
            code::NOT_IMPLEMENTED => Self::NotImplemented(message),
            _ => Self::Failed(message),
        }
    }
}

/// EMFILE (this process) or ENFILE (the whole system).
pub(crate) fn is_out_of_fds(err: &std::io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Self::internal(format!("cannot encode the reply: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_distinct() {
        let all = [
            Error::parse("x"),
            Error::invalid_request("x"),
            Error::method_not_found("x"),
            Error::invalid_params("x"),
            Error::internal("x"),
            Error::failed("x"),
            Error::user("x"),
            Error::busy("x"),
            Error::NotImplemented("x".into()),
        ];
        let codes: std::collections::BTreeSet<i64> = all.iter().map(Error::code).collect();
        assert_eq!(codes.len(), all.len());
        for err in all {
            assert_eq!(Error::from_code(err.code(), err.message().to_owned()), err);
        }
    }

    #[test]
    fn running_out_of_descriptors_says_what_to_do() {
        let emfile = std::io::Error::from_raw_os_error(libc::EMFILE);
        let err = Error::io("cannot read /x", &emfile);
        assert_eq!(err.code(), code::FAILED);
        assert!(err.message().contains("ulimit -n"), "{err}");
        // Also when the engine passed it on as text.
        assert!(
            Error::failed(format!("snapshot: {emfile}"))
                .message()
                .contains("ulimit -n")
        );
        assert!(!Error::failed("no such file").message().contains("ulimit"));
    }
}
