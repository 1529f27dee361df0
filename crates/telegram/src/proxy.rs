//! Reaching Telegram through a SOCKS5 proxy (`telegram.proxy`), for hosts where Telegram is
//! blocked or throttled: the address, parsed once from `socks5://[user:password@]host:port`,
//! how each client is handed it (grammers' `proxy_url` for MTProto, a `socks5h` proxy of the
//! Bot API's HTTP client, so the proxy also resolves `api.telegram.org`), and how a failure
//! of the proxy is told apart from a failure of Telegram.
//!
//! Every connection to Telegram goes through the proxy once it is set; there is no fallback to
//! a direct connection (a proxy that is down makes accounts and bots show
//! `telegram_proxy_unreachable`, not connect around it). The password never appears in
//! `Debug`, errors or logs.

use std::fmt;
use std::str::FromStr;
use zeroize::Zeroizing;

/// A SOCKS5 proxy, with optional username/password authentication (RFC 1929).
#[derive(Clone, PartialEq, Eq)]
pub struct Socks5Proxy {
    host: String,
    port: u16,
    credentials: Option<(String, Zeroizing<String>)>,
}

/// Why a `telegram.proxy` value was refused. The messages never repeat the value (it may hold
/// the password).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProxyConfigError {
    /// Not a URL at all.
    #[error(
        "telegram.proxy is not a URL; write socks5://host:port or socks5://user:password@host:port"
    )]
    NotAUrl,
    /// Another scheme than `socks5`.
    #[error("telegram.proxy must be a SOCKS5 proxy (socks5://host:port); {0}:// is not supported")]
    Scheme(String),
    /// No host or no port.
    #[error("telegram.proxy needs a host and a port: socks5://host:port")]
    HostPort,
    /// A path, query or fragment.
    #[error(
        "telegram.proxy is only socks5://[user:password@]host:port, with nothing after the port"
    )]
    Extra,
    /// A password without a user name, or a user name without a password.
    #[error("telegram.proxy needs both a user name and a password, or neither")]
    HalfCredentials,
    /// Credentials that need percent-encoding.
    #[error(
        "the user name and password of telegram.proxy may use letters, digits and - . _ ~ ! $ & \
         ' ( ) * + , ; = only (they are sent to the proxy as written)"
    )]
    Encoding,
    /// Longer than SOCKS5 allows.
    #[error("the user name and password of telegram.proxy are at most 255 bytes each")]
    TooLong,
}

/// Characters a URL's user information may hold without percent-encoding (RFC 3986 unreserved
/// and sub-delims): what grammers and reqwest both pass to the proxy unchanged.
fn plain_userinfo(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b))
}

impl FromStr for Socks5Proxy {
    type Err = ProxyConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if !s.contains("://") {
            return Err(ProxyConfigError::NotAUrl);
        }
        let url = url::Url::parse(s).map_err(|_| ProxyConfigError::NotAUrl)?;
        if url.scheme() != "socks5" {
            return Err(ProxyConfigError::Scheme(url.scheme().to_string()));
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_string(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
            _ => return Err(ProxyConfigError::HostPort),
        };
        let port = url.port().ok_or(ProxyConfigError::HostPort)?;
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(ProxyConfigError::Extra);
        }
        let credentials = match (url.username(), url.password()) {
            ("", None) => None,
            ("", Some(_)) | (_, None) | (_, Some("")) => {
                return Err(ProxyConfigError::HalfCredentials);
            }
            (user, Some(password)) => {
                if !plain_userinfo(user) || !plain_userinfo(password) {
                    return Err(ProxyConfigError::Encoding);
                }
                if user.len() > 255 || password.len() > 255 {
                    return Err(ProxyConfigError::TooLong);
                }
                Some((user.to_string(), Zeroizing::new(password.to_string())))
            }
        };
        Ok(Self {
            host,
            port,
            credentials,
        })
    }
}

impl TryFrom<String> for Socks5Proxy {
    type Error = ProxyConfigError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        let s = Zeroizing::new(s);
        s.parse()
    }
}

impl<'de> serde::Deserialize<'de> for Socks5Proxy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Zeroizing::new(String::deserialize(d)?);
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Debug for Socks5Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Socks5Proxy {
    /// `host:port` (an IPv6 address in brackets).
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The user name, when the proxy takes one.
    pub fn username(&self) -> Option<&str> {
        self.credentials.as_ref().map(|(u, _)| u.as_str())
    }

    /// The URL with the password replaced by `***`: safe to print.
    pub fn redacted(&self) -> String {
        match &self.credentials {
            Some((user, _)) => format!("socks5://{user}:***@{}", self.address()),
            None => format!("socks5://{}", self.address()),
        }
    }

    fn url_with(&self, scheme: &str) -> Zeroizing<String> {
        Zeroizing::new(match &self.credentials {
            Some((user, password)) => {
                format!("{scheme}://{user}:{}@{}", password.as_str(), self.address())
            }
            None => format!("{scheme}://{}", self.address()),
        })
    }

    /// The URL grammers' sender pool connects through (`ConnectionParams::proxy_url`).
    pub(crate) fn mtproto_url(&self) -> String {
        self.url_with("socks5").to_string()
    }

    /// The Bot API client's proxy: `socks5h`, so host names (`api.telegram.org`) are resolved
    /// by the proxy, not by a local resolver that may be the thing blocking Telegram.
    pub(crate) fn http_proxy(&self) -> Result<reqwest::Proxy, ProxyConfigError> {
        reqwest::Proxy::all(self.url_with("socks5h").as_str())
            .map_err(|_| ProxyConfigError::NotAUrl)
    }
}

/// What went wrong with the proxy itself (rather than with Telegram behind it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyFailure {
    /// The proxy did not accept a connection (down, wrong address, firewalled).
    Unreachable,
    /// The proxy refused the user name and password, or wants credentials that were not given.
    AuthFailed,
    /// The proxy was reached but could not connect to Telegram for us.
    Refused,
}

impl ProxyFailure {
    /// A stable code, shared by MTProto and the Bot API.
    pub fn code(self) -> &'static str {
        match self {
            Self::Unreachable => "telegram_proxy_unreachable",
            Self::AuthFailed => "telegram_proxy_auth_failed",
            Self::Refused => "telegram_proxy_failed",
        }
    }

    /// What an operator reads.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Unreachable => "the SOCKS5 proxy (telegram.proxy) is unreachable",
            Self::AuthFailed => {
                "the SOCKS5 proxy (telegram.proxy) rejected its user name and password"
            }
            Self::Refused => "the SOCKS5 proxy (telegram.proxy) could not connect to Telegram",
        }
    }

    /// The proxy failure behind an I/O error of grammers' proxied connect, if it is one
    /// (grammers wraps tokio-socks' error in the `io::Error`).
    pub(crate) fn of_io(e: &std::io::Error) -> Option<Self> {
        let socks = e.get_ref()?.downcast_ref::<tokio_socks::Error>()?;
        use tokio_socks::Error as S;
        Some(match socks {
            S::Io(_) | S::ProxyServerUnreachable => Self::Unreachable,
            S::PasswordAuthFailure(_)
            | S::AuthorizationRequired
            | S::NoAcceptableAuthMethods
            | S::UnknownAuthMethod
            | S::InvalidAuthValues(_) => Self::AuthFailed,
            _ => Self::Refused,
        })
    }

    /// The proxy failure behind a Bot API client error, if it is one. reqwest's SOCKS
    /// connector (hyper-util) gives its errors no source chain of types to inspect, only
    /// their messages: those are matched here, and the test suite checks each case against
    /// a real proxy.
    pub(crate) fn of_http(e: &reqwest::Error) -> Option<Self> {
        let mut chain = Vec::new();
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(s) = source {
            chain.push(s.to_string());
            source = s.source();
        }
        let text = chain.join(": ");
        if !text.contains("socks proxy") && !text.contains("SOCKS error") {
            return None;
        }
        Some(if text.contains("failed to create underlying connection") {
            Self::Unreachable
        } else if text.contains("credentials not accepted")
            || text.contains("authentication")
            || text.contains("auth")
        {
            Self::AuthFailed
        } else {
            Self::Refused
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn socks5_urls_parse_and_the_password_never_shows() {
        let p: Socks5Proxy = "socks5://alice:s3cr3t-pw@10.1.2.3:1080".parse().unwrap();
        assert_eq!(p.address(), "10.1.2.3:1080");
        assert_eq!(p.username(), Some("alice"));
        assert_eq!(p.redacted(), "socks5://alice:***@10.1.2.3:1080");
        assert!(!format!("{p:?}").contains("s3cr3t-pw"));
        assert_eq!(p.mtproto_url(), "socks5://alice:s3cr3t-pw@10.1.2.3:1080");
        assert!(p.http_proxy().is_ok());
        let p: Socks5Proxy = "socks5://[::1]:9050".parse().unwrap();
        assert_eq!(p.address(), "[::1]:9050");
        assert_eq!(p.username(), None);
        let p: Socks5Proxy = "socks5://proxy.example.net:1080/".parse().unwrap();
        assert_eq!(p.redacted(), "socks5://proxy.example.net:1080");
    }

    #[test]
    fn anything_else_is_refused_without_repeating_it() {
        for (bad, want) in [
            ("proxy.example.net:1080", ProxyConfigError::NotAUrl),
            ("socks5://", ProxyConfigError::HostPort),
            (
                "http://u:hunter2@h:1",
                ProxyConfigError::Scheme("http".into()),
            ),
            ("socks4://h:1", ProxyConfigError::Scheme("socks4".into())),
            ("socks5://h", ProxyConfigError::HostPort),
            ("socks5://u:hunter2@h:1/x", ProxyConfigError::Extra),
            ("socks5://u:hunter2@h:1?a=b", ProxyConfigError::Extra),
            ("socks5://u@h:1", ProxyConfigError::HalfCredentials),
            ("socks5://:hunter2@h:1", ProxyConfigError::HalfCredentials),
            ("socks5://u:hunter%402@h:1", ProxyConfigError::Encoding),
        ] {
            let err = bad.parse::<Socks5Proxy>().unwrap_err();
            assert_eq!(err, want, "{bad}");
            assert!(!err.to_string().contains("hunter"), "{err}");
        }
    }

    #[test]
    fn socks_errors_inside_io_errors_are_proxy_failures() {
        let wrap =
            |e: tokio_socks::Error| std::io::Error::new(std::io::ErrorKind::ConnectionAborted, e);
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(
            ProxyFailure::of_io(&wrap(tokio_socks::Error::Io(refused))),
            Some(ProxyFailure::Unreachable)
        );
        assert_eq!(
            ProxyFailure::of_io(&wrap(tokio_socks::Error::PasswordAuthFailure(1))),
            Some(ProxyFailure::AuthFailed)
        );
        assert_eq!(
            ProxyFailure::of_io(&wrap(tokio_socks::Error::HostUnreachable)),
            Some(ProxyFailure::Refused)
        );
        let plain = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(ProxyFailure::of_io(&plain), None);
    }
}
