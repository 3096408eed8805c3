//! The HTTP side of a DevTools endpoint: `/json/version`, `/json/list`,
//! `/json/new`, `/json/close`.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use serde::Deserialize;

use crate::{Error, Result};

/// Where a browser's DevTools are, as a user may write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// An HTTP endpoint that lists targets: `http://host:port`, `host:port`, `:port`.
    Http {
        /// The address requests go to (host names resolved: Chrome refuses a `Host`
        /// header that is neither an IP address nor `localhost`).
        addr: SocketAddr,
        /// What the user wrote, normalised, for messages.
        label: String,
    },
    /// One target's WebSocket URL, given directly.
    Target { ws_url: String, id: String },
}

/// One entry of `/json/list`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetInfo {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub parent_id: Option<String>,
    #[serde(default)]
    pub web_socket_debugger_url: Option<String>,
}

impl TargetInfo {
    /// The HTTP endpoints give titles HTML-escaped (`a&amp;b &lt;x&gt;`); CDP events
    /// give them as they are. This makes the former the latter.
    fn unescaped(mut self) -> TargetInfo {
        self.title = html_unescape(&self.title);
        self
    }
}

/// Decodes the character references Chromium's `EscapeForHTML` writes (`&amp;`,
/// `&lt;`, `&gt;`, `&quot;`, `&#39;`), and numeric ones; anything else stays as it is.
/// One pass, so `&amp;lt;` is the text `&lt;`.
fn html_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        // The longest reference is `&#1114111;`.
        let decoded = rest.find(';').filter(|&end| end <= 10).and_then(|end| {
            let c = match &rest[1..end] {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                n => {
                    let n = n.strip_prefix('#')?;
                    let code = match n.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => n.parse().ok()?,
                    };
                    char::from_u32(code)?
                }
            };
            Some((c, end + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out + rest
}

/// `/json/version`.
#[derive(Debug, Clone, Deserialize)]
pub struct Version {
    #[serde(rename = "Browser", default)]
    pub browser: String,
    #[serde(rename = "Protocol-Version", default)]
    pub protocol_version: String,
    #[serde(rename = "webSocketDebuggerUrl", default)]
    pub web_socket_debugger_url: Option<String>,
}

const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

impl Endpoint {
    /// Parses `http://host:port`, `host:port`, `:port` or `ws://host:port/devtools/page/ID`.
    pub fn parse(given: &str) -> Result<Endpoint> {
        let bad = |why: &str| Error::BadEndpoint {
            given: given.to_string(),
            why: why.to_string(),
        };
        let s = given.trim();
        if let Some(rest) = s.strip_prefix("ws://") {
            let (_, path) = rest
                .split_once('/')
                .ok_or_else(|| bad("a ws:// URL needs a path"))?;
            let id = path.rsplit('/').next().unwrap_or_default();
            if id.is_empty() {
                return Err(bad("the ws:// URL does not end in a target id"));
            }
            return Ok(Endpoint::Target {
                ws_url: s.to_string(),
                id: id.to_string(),
            });
        }
        if s.starts_with("wss://") || s.starts_with("https://") {
            return Err(bad("TLS endpoints are not supported"));
        }
        let hostport = s.strip_prefix("http://").unwrap_or(s).trim_end_matches('/');
        if hostport.contains('/') {
            return Err(bad("an HTTP endpoint has no path"));
        }
        let (host, port) = hostport.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        let port: u32 = port.parse().map_err(|_| bad("the port is not a number"))?;
        let port = u16::try_from(port)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad(&format!("the port {port} is out of range (1-65535)")))?;
        let host = match host {
            "" => "127.0.0.1",
            h => h.trim_start_matches('[').trim_end_matches(']'),
        };
        let addr = resolve(host, port).map_err(|detail| Error::Unresolved {
            host: host.to_string(),
            detail,
        })?;
        Ok(Endpoint::Http {
            addr,
            label: format!("http://{host}:{port}"),
        })
    }

    /// The same browser endpoint: the same address (after resolution), or the same
    /// target URL.
    pub fn same_as(&self, other: &Endpoint) -> bool {
        match (self, other) {
            (Endpoint::Http { addr: a, .. }, Endpoint::Http { addr: b, .. }) => a == b,
            (Endpoint::Target { ws_url: a, .. }, Endpoint::Target { ws_url: b, .. }) => a == b,
            _ => false,
        }
    }

    /// The WebSocket URL of one of this endpoint's pages, as `/json/list` would give it.
    pub fn page_ws_url(&self, target_id: &str) -> String {
        match self {
            Endpoint::Http { addr, .. } => format!("ws://{addr}/devtools/page/{target_id}"),
            Endpoint::Target { ws_url, .. } => ws_url.clone(),
        }
    }

    /// Text for messages: what the user named.
    pub fn label(&self) -> &str {
        match self {
            Endpoint::Http { label, .. } => label,
            Endpoint::Target { ws_url, .. } => ws_url,
        }
    }

    fn base(&self) -> Result<String> {
        match self {
            Endpoint::Http { addr, .. } => Ok(format!("http://{addr}")),
            Endpoint::Target { ws_url, .. } => Err(Error::BadEndpoint {
                given: ws_url.clone(),
                why: "a single-target ws:// URL has no target list".into(),
            }),
        }
    }

    pub fn version(&self) -> Result<Version> {
        self.get_json("/json/version")
    }

    /// Every target of the browser: pages, iframes, workers, ...
    pub fn list(&self) -> Result<Vec<TargetInfo>> {
        match self {
            Endpoint::Target { ws_url, id } => Ok(vec![TargetInfo {
                id: id.clone(),
                kind: "page".into(),
                title: String::new(),
                url: String::new(),
                parent_id: None,
                web_socket_debugger_url: Some(ws_url.clone()),
            }]),
            Endpoint::Http { .. } => {
                let list: Vec<TargetInfo> = self.get_json("/json/list")?;
                Ok(list.into_iter().map(TargetInfo::unescaped).collect())
            }
        }
    }

    /// Opens a new tab on `url` (`PUT /json/new?URL`).
    pub fn new_target(&self, url: &str) -> Result<TargetInfo> {
        self.request("PUT", &format!("/json/new?{}", percent_encode(url)))
            .map(TargetInfo::unescaped)
    }

    /// Closes a target (`/json/close/ID`).
    pub fn close_target(&self, id: &str) -> Result<()> {
        self.text("GET", &format!("/json/close/{}", percent_encode(id)))
            .map(drop)
    }

    fn get_json<T: for<'de> Deserialize<'de>>(&self, path: &str) -> Result<T> {
        self.request("GET", path)
    }

    fn request<T: for<'de> Deserialize<'de>>(&self, method: &str, path: &str) -> Result<T> {
        let body = self.text(method, path)?;
        serde_json::from_str(&body).map_err(|e| Error::Http {
            url: format!("{}{path}", self.label()),
            detail: format!("the reply is not the JSON expected: {e}"),
        })
    }

    fn text(&self, method: &str, path: &str) -> Result<String> {
        let url = format!("{}{path}", self.base()?);
        let _slot = crate::transport::HANDSHAKES.acquire();
        // Bounds per phase, not one global bound: with a global one, ureq resolves
        // the host on a thread of its own (to bound the lookup), a thread started for
        // every request although the host here is always an IP address.
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(HTTP_TIMEOUT))
            .timeout_send_request(Some(HTTP_TIMEOUT))
            .timeout_recv_response(Some(HTTP_TIMEOUT))
            .timeout_recv_body(Some(HTTP_TIMEOUT))
            .proxy(None)
            .http_status_as_error(false)
            .build()
            .into();
        let reply = match method {
            "PUT" => agent.put(&url).send_empty(),
            _ => agent.get(&url).call(),
        };
        let mut reply = reply.map_err(|e| match e {
            ureq::Error::Io(_) | ureq::Error::ConnectionFailed | ureq::Error::Timeout(_) => {
                Error::Unreachable {
                    endpoint: self.label().to_string(),
                    detail: e.to_string(),
                }
            }
            e => Error::Http {
                url: url.clone(),
                detail: e.to_string(),
            },
        })?;
        let status = reply.status().as_u16();
        let body = reply.body_mut().read_to_string().map_err(|e| Error::Http {
            url: url.clone(),
            detail: e.to_string(),
        })?;
        // A server that is not DevTools (anything else on the port) gets one line,
        // not its error page; only target ids in a path can be unknown to DevTools.
        if status != 200 && !path.contains("/json/close/") {
            return Err(Error::NotDevTools {
                endpoint: self.label().trim_start_matches("http://").to_string(),
                status,
            });
        }
        if status != 200 {
            return Err(Error::Http {
                url,
                detail: format!("HTTP {status}: {}", body.trim()),
            });
        }
        Ok(body)
    }
}

/// Resolves a host to one address, IPv4 first: Chromium listens on IPv4 loopback
/// by default, and `localhost` often resolves to `::1` as well.
pub(crate) fn resolve(host: &str, port: u16) -> std::result::Result<SocketAddr, String> {
    // Without the resolver: a statically linked binary may have no NSS to ask.
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve '{host}': {e}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("'{host}' resolves to no address"))
}

/// Percent-encodes everything but unreserved characters, so a URL survives as one
/// query string (Chromium cuts `/json/new?` at the first raw `&`).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_forms() {
        let want = "http://127.0.0.1:9222";
        for given in [
            "http://127.0.0.1:9222",
            "127.0.0.1:9222",
            ":9222",
            "http://127.0.0.1:9222/",
        ] {
            assert_eq!(Endpoint::parse(given).unwrap().label(), want, "{given}");
        }
        match Endpoint::parse("localhost:9333").unwrap() {
            Endpoint::Http { addr, .. } => assert!(addr.ip().is_loopback() && addr.port() == 9333),
            other => panic!("{other:?}"),
        }
        match Endpoint::parse("ws://127.0.0.1:9222/devtools/page/ABC").unwrap() {
            Endpoint::Target { id, .. } => assert_eq!(id, "ABC"),
            other => panic!("{other:?}"),
        }
        for bad in [
            "9222",
            "http://h:x",
            "https://a:1",
            "ws://host:1",
            "http://a:1/json",
            ":0",
        ] {
            assert!(
                matches!(Endpoint::parse(bad), Err(Error::BadEndpoint { .. })),
                "{bad}"
            );
        }
        let out_of_range = Endpoint::parse(":99999").unwrap_err().to_string();
        assert!(out_of_range.contains("out of range"), "{out_of_range}");
    }

    #[test]
    fn titles_are_html_unescaped() {
        assert_eq!(
            html_unescape("a&amp;b &lt;x&gt; &quot;q&quot; &#39;s&#39; - ws&amp;1 - Antigravity"),
            "a&b <x> \"q\" 's' - ws&1 - Antigravity"
        );
        assert_eq!(
            html_unescape("&amp;lt; &#x263A; &#9731;"),
            "&lt; \u{263a} \u{2603}"
        );
        for kept in [
            "R&D",
            "a & b",
            "&nbsp;",
            "&#xZZ;",
            "&#;",
            "tail &",
            "&#1114112;",
        ] {
            assert_eq!(html_unescape(kept), kept);
        }
    }

    #[test]
    fn percent_encoding_keeps_one_query() {
        assert_eq!(
            percent_encode("http://a/b?x=1&y=2"),
            "http%3A%2F%2Fa%2Fb%3Fx%3D1%26y%3D2"
        );
    }
}
