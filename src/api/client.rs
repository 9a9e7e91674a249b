//! The client side of the API, for the `meridian explain`, `override`, `overrides` and
//! `reload` commands: they read the same config as the server to find its address and token.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::Method;
use thiserror::Error;

use super::{OverrideEntry, OverrideRequest, ReloadResponse, token};
use crate::config::ServerConfig;

/// Why a request to the running server's API gave no answer to use.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The config turns the API off.
    #[error("the API is off in the config ([api] listen = \"off\")")]
    Off,
    /// The API listens on a port the kernel chose, and the server has not written it down.
    #[error("the API address is unknown: is the server running? ({} is missing)", file.display())]
    NoAddress {
        /// The file the server writes its API address to.
        file: PathBuf,
    },
    /// The token could not be read.
    #[error("cannot read the API token {}: {source}", file.display())]
    Token {
        /// The token file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Nothing answered at the address.
    #[error("cannot reach the server's API at {addr}: {source}")]
    Unreachable {
        /// The API address.
        addr: SocketAddr,
        /// Why.
        source: reqwest::Error,
    },
    /// The server refused the request as wrong (400); its text says why and ends the line.
    #[error("{body}")]
    Rejected {
        /// The server's explanation.
        body: String,
    },
    /// The server answered with another error status.
    #[error("the server answered {status}: {body}")]
    Failed {
        /// The HTTP status.
        status: u16,
        /// The server's text.
        body: String,
    },
}

impl ClientError {
    /// Whether the operator asked for something wrong (rather than the server being
    /// unreachable or failing): the commands exit 2 for these, 1 for the others.
    pub fn is_invalid_request(&self) -> bool {
        matches!(self, Self::Off | Self::Rejected { .. })
    }

    /// Whether the message is the server's own text, which already ends its line.
    pub fn is_server_text(&self) -> bool {
        matches!(self, Self::Rejected { .. } | Self::Failed { .. })
    }
}

/// The running server's API: where it listens and the token it wants.
#[derive(Debug)]
pub struct Api {
    addr: SocketAddr,
    token: String,
}

impl Api {
    /// The API of the server `config` describes. Fails when the API is off, its address
    /// is not known yet, or the token cannot be read.
    pub fn find(config: &ServerConfig) -> Result<Self, ClientError> {
        if config.api.listen.is_none() {
            return Err(ClientError::Off);
        }
        let addr = config.api_address().ok_or_else(|| ClientError::NoAddress {
            file: config.api_address_file(),
        })?;
        let file = config.token_file();
        match token::read(config.api.token.as_deref(), &file) {
            Ok(token) => Ok(Self { addr, token }),
            Err(source) => Err(ClientError::Token { file, source }),
        }
    }

    /// Sets or clears the override of the request's subject (a data center or an address);
    /// the server's one-line confirmation.
    pub async fn set_override(&self, request: &OverrideRequest) -> Result<String, ClientError> {
        self.request(Method::PUT, "/v1/overrides", Some(request))
            .await
    }

    /// The overrides in force.
    pub async fn overrides(&self) -> Result<Vec<OverrideEntry>, ClientError> {
        let body = self.request(Method::GET, "/v1/overrides", None).await?;
        Ok(serde_json::from_str(&body).unwrap_or_default())
    }

    /// Reloads the server as SIGHUP does: `Ok(Ok(generation))` when the new data serves,
    /// `Ok(Err(text))` with the diagnostics (as `meridian check` prints them) when the
    /// reload was rejected and the old data keeps serving.
    pub async fn reload(&self) -> Result<Result<u64, String>, ClientError> {
        match call(self.addr, &self.token, Method::POST, "/v1/reload", None).await {
            Ok((200, body)) => match serde_json::from_str::<ReloadResponse>(&body) {
                Ok(r) => Ok(Ok(r.generation)),
                Err(e) => Err(ClientError::Failed {
                    status: 200,
                    body: format!("unexpected answer {body:?}: {e}\n"),
                }),
            },
            Ok((422, body)) => Ok(Err(body)),
            Ok((status, body)) => Err(ClientError::Failed { status, body }),
            Err(source) => Err(ClientError::Unreachable {
                addr: self.addr,
                source,
            }),
        }
    }

    /// The body of a 200 answer to `method` on `path`.
    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&OverrideRequest>,
    ) -> Result<String, ClientError> {
        match call(self.addr, &self.token, method, path, body).await {
            Ok((200, body)) => Ok(body),
            Ok((400, body)) => Err(ClientError::Rejected { body }),
            Ok((status, body)) => Err(ClientError::Failed { status, body }),
            Err(source) => Err(ClientError::Unreachable {
                addr: self.addr,
                source,
            }),
        }
    }
}

/// Asks the server `config` describes to explain the answer to `name` `qtype` for
/// `client`. `Ok(None)` when there is no server to ask (no API, no address or token yet,
/// nothing listening), so the caller can explain from the files instead; an error only
/// when a server answered with one.
pub async fn explain(
    config: &ServerConfig,
    name: &str,
    qtype: &str,
    client: &str,
) -> Result<Option<String>, ClientError> {
    let Some(addr) = config.api_address() else {
        return Ok(None);
    };
    let Ok(token) = token::read(config.api.token.as_deref(), &config.token_file()) else {
        return Ok(None);
    };
    let path = format!(
        "/v1/explain?name={}&type={}&client={}",
        urlencode(name),
        urlencode(qtype),
        urlencode(client)
    );
    match call(addr, &token, Method::GET, &path, None).await {
        Ok((200, body)) => Ok(Some(body)),
        Ok((status, body)) => Err(ClientError::Failed { status, body }),
        Err(_) => Ok(None),
    }
}

/// `method` on `path` of the API at `addr` with `token`; the status and body.
async fn call(
    addr: SocketAddr,
    token: &str,
    method: Method,
    path: &str,
    body: Option<&OverrideRequest>,
) -> Result<(u16, String), reqwest::Error> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()?;
    let mut req = client
        .request(method, format!("http://{addr}{path}"))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await?))
}

/// Percent-encodes all but the unreserved characters of RFC 3986.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlencode_keeps_unreserved_characters_only() {
        assert_eq!(urlencode("cdn.example.com"), "cdn.example.com");
        assert_eq!(urlencode("10.0.0.0/8"), "10.0.0.0%2F8");
        assert_eq!(urlencode("a b&c=d~_-"), "a%20b%26c%3Dd~_-");
    }
}
