//! Errors of package operations, with the tool error codes of interfaces.md §2.2 and
//! the CLI exit codes of §4.3.

/// A package operation that could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum PkgError {
    /// Bad argument (name, URL, scope, project root).
    #[error("{0}")]
    InvalidParams(String),
    /// Named package (or its source) missing.
    #[error("{0}")]
    NotFound(String),
    /// Target exists and `force` was not given.
    #[error("{0}")]
    Conflict(String),
    /// `git` failed, timed out or is missing.
    #[error("{0}")]
    Git(String),
    /// File-system failure, limit exceeded or bad project file.
    #[error("{0}")]
    Io(String),
}

impl PkgError {
    /// The `code` field of the error body (interfaces.md §2.2).
    pub fn code(&self) -> &'static str {
        match self {
            PkgError::InvalidParams(_) => "invalid_params",
            PkgError::NotFound(_) => "package_not_found",
            PkgError::Conflict(_) => "conflict",
            PkgError::Git(_) => "git_error",
            PkgError::Io(_) => "io_error",
        }
    }

    /// CLI exit code (interfaces.md §4.3).
    pub fn exit_code(&self) -> u8 {
        match self {
            PkgError::InvalidParams(_) => 2,
            PkgError::NotFound(_) => 4,
            PkgError::Conflict(_) => 5,
            PkgError::Git(_) | PkgError::Io(_) => 7,
        }
    }

    /// An `io_error` with context.
    pub fn io(what: impl std::fmt::Display, e: impl std::fmt::Display) -> Self {
        PkgError::Io(format!("{what}: {e}"))
    }

    /// The error body `{"status":"error","code","error"}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"status": "error", "code": self.code(), "error": self.to_string()})
    }
}
