//! Error classes of §7.6.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// Error class of a failed provider call (§7.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// DNS, connect, TLS, connection reset.
    Network,
    /// Connect or request timeout.
    Timeout,
    /// 429 rate limit.
    RateLimited,
    /// 529 `overloaded_error`, 503.
    Overloaded,
    /// 500, 502, 504, 408, 409.
    Server,
    /// 429 `insufficient_quota`, billing or spend-limit messages.
    Quota,
    /// 401, 403.
    Auth,
    /// 400, 404, 413, 422.
    BadRequest,
    /// The model refused (content filter, refusal).
    Refusal,
    /// Unparseable body or no text.
    InvalidResponse,
    /// No provider, no model or no key.
    Config,
}

impl ErrorClass {
    /// The snake_case name used in messages (`rate_limited`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Network => "network",
            ErrorClass::Timeout => "timeout",
            ErrorClass::RateLimited => "rate_limited",
            ErrorClass::Overloaded => "overloaded",
            ErrorClass::Server => "server",
            ErrorClass::Quota => "quota",
            ErrorClass::Auth => "auth",
            ErrorClass::BadRequest => "bad_request",
            ErrorClass::Refusal => "refusal",
            ErrorClass::InvalidResponse => "invalid_response",
            ErrorClass::Config => "config",
        }
    }

    /// Whether the retry policy retries this class.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorClass::Network
                | ErrorClass::Timeout
                | ErrorClass::RateLimited
                | ErrorClass::Overloaded
                | ErrorClass::Server
        )
    }
}

impl std::str::FromStr for ErrorClass {
    type Err = ();
    fn from_str(s: &str) -> Result<ErrorClass, ()> {
        use ErrorClass::*;
        [
            Network,
            Timeout,
            RateLimited,
            Overloaded,
            Server,
            Quota,
            Auth,
            BadRequest,
            Refusal,
            InvalidResponse,
            Config,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
        .ok_or(())
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed provider call. `Display` gives the text the script sees:
/// `provider_error[<class>]: <status> <message>` (status omitted when there was no response).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ProviderError {
    /// Error class.
    pub class: ErrorClass,
    /// HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// Provider or transport message (never contains the API key).
    pub message: String,
    /// Server-requested wait (`Retry-After` / `retry-after-ms`), if any.
    pub retry_after: Option<Duration>,
    /// True when no provider is available at all (answer code `provider_unavailable`).
    pub unavailable: bool,
}

impl ProviderError {
    /// A new error.
    pub fn new(class: ErrorClass, status: Option<u16>, message: String) -> ProviderError {
        ProviderError {
            class,
            status,
            message,
            retry_after: None,
            unavailable: false,
        }
    }

    /// A `config` error meaning no provider can be used (`provider_unavailable`).
    pub fn unavailable(message: String) -> ProviderError {
        ProviderError {
            unavailable: true,
            ..ProviderError::new(
                ErrorClass::Config,
                None,
                format!("provider_unavailable: {message}"),
            )
        }
    }

    /// Recovers class and HTTP status from an answer message of the form
    /// `provider_error[<class>]: <status> <message>` (status optional), e.g. to fill
    /// `provider_error_class` / `provider_status` of a failed session.
    pub fn parse_message(message: &str) -> Option<(ErrorClass, Option<u16>)> {
        let rest = message.strip_prefix("provider_error[")?;
        let (class, rest) = rest.split_once("]: ")?;
        let class = class.parse().ok()?;
        let status = rest
            .split_once(' ')
            .map(|(s, _)| s)
            .unwrap_or(rest)
            .parse::<u16>()
            .ok()
            .filter(|s| (100..=599).contains(s));
        Some((class, status))
    }

    /// Machine code: `provider_unavailable` when no provider exists, else `provider_error`.
    pub fn code(&self) -> &'static str {
        if self.unavailable {
            "provider_unavailable"
        } else {
            "provider_error"
        }
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "provider_error[{}]: ", self.class)?;
        if let Some(s) = self.status {
            write!(f, "{s} ")?;
        }
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        let e = ProviderError::new(ErrorClass::RateLimited, Some(429), "slow down".into());
        let m = e.to_string();
        assert_eq!(m, "provider_error[rate_limited]: 429 slow down");
        assert_eq!(
            ProviderError::parse_message(&m),
            Some((ErrorClass::RateLimited, Some(429)))
        );
        let e = ProviderError::new(ErrorClass::Network, None, "connection refused".into());
        assert_eq!(
            ProviderError::parse_message(&e.to_string()),
            Some((ErrorClass::Network, None))
        );
        assert_eq!(ProviderError::parse_message("boom"), None);
        for c in [
            ErrorClass::Quota,
            ErrorClass::InvalidResponse,
            ErrorClass::BadRequest,
        ] {
            assert_eq!(c.as_str().parse::<ErrorClass>(), Ok(c));
        }
    }
}
