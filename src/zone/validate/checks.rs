//! Health checks: `[checks]` and the references to them, validated into `Check`s.

use super::*;

impl Validator<'_, '_> {
    pub(super) fn checks(&mut self, v: &Spanned<DeValue<'_>>) -> HashMap<String, Option<Check>> {
        let Some(table) = v.get_ref().as_table() else {
            self.d.error(
                Some(v.span()),
                "checks",
                format!("expected a table, found {}", v.get_ref().type_str()),
                Some("write one table per check, e.g. [checks.web]".into()),
            );
            return HashMap::new();
        };
        let mut out = HashMap::new();
        for (k, v) in table.iter() {
            let name = k.get_ref().as_ref().to_owned();
            let key = format!("checks.{}", key_segment(&name));
            // A check that fails to validate is remembered as None, so references to it do
            // not add a second, misleading "no such check" error.
            let check =
                deserialize::<CheckSpec>(self.d, &key, v).and_then(|spec| self.check(&key, &spec));
            out.insert(name, check);
        }
        out
    }

    pub(super) fn check(&mut self, key: &str, c: &CheckSpec) -> Option<Check> {
        let errors = self.d.error_count();
        let kind_word = c.kind.get_ref().as_str();
        let port = match &c.port {
            Some(p) => match u16::try_from(*p.get_ref()) {
                Ok(v) if v > 0 => Some(v),
                _ => {
                    self.d.error(
                        Some(p.span()),
                        format!("{key}.port"),
                        format!("{} is not a port", p.get_ref()),
                        Some("use 1-65535".into()),
                    );
                    None
                }
            },
            None => None,
        };
        let http_only = [
            ("path", c.path.as_ref().map(Spanned::span)),
            ("host", c.host.as_ref().map(Spanned::span)),
            ("expect", c.expect.as_ref().map(Spanned::span)),
            ("body", c.body.as_ref().map(Spanned::span)),
            ("sni", c.sni.as_ref().map(Spanned::span)),
        ];
        let kind = match kind_word {
            "tcp" => {
                for (field, span) in http_only {
                    if let Some(span) = span {
                        self.d.error(
                            Some(span),
                            format!("{key}.{field}"),
                            format!("`{field}` applies to http and https checks, not tcp"),
                            Some("remove it, or set type = \"http\"".into()),
                        );
                    }
                }
                match port {
                    Some(port) => Some(CheckKind::Tcp { port }),
                    None => {
                        if c.port.is_none() {
                            self.d.error(
                                Some(c.kind.span()),
                                format!("{key}.port"),
                                "a tcp check needs a port",
                                Some("add port = 443 (or the service's port)".into()),
                            );
                        }
                        None
                    }
                }
            }
            "http" | "https" => {
                let tls = kind_word == "https";
                let path = c
                    .path
                    .as_ref()
                    .map_or_else(|| "/".to_owned(), |p| p.get_ref().clone());
                for (field, value) in [("host", &c.host), ("sni", &c.sni)] {
                    let Some(v) = value else { continue };
                    let text = v.get_ref();
                    // SNI carries names only (RFC 6066 §3); an IPv6 literal would need
                    // brackets in the Host header and URL, so the address itself is used.
                    let ip_ok = match text.parse::<IpAddr>() {
                        Ok(IpAddr::V4(_)) => field == "host",
                        _ => false,
                    };
                    let ok = ip_ok
                        || (!text.is_empty()
                            && text.parse::<IpAddr>().is_err()
                            && text.len() <= 253
                            && text.split('.').all(|l| {
                                !l.is_empty()
                                    && l.len() <= 63
                                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                            }));
                    if !ok {
                        self.d.error(
                            Some(v.span()),
                            format!("{key}.{field}"),
                            format!("{text:?} is not a host name"),
                            Some(
                                "write a name like \"www.example.com\" (no port, no scheme)".into(),
                            ),
                        );
                    }
                }
                if path
                    .bytes()
                    .any(|b| b.is_ascii_control() || b == b' ' || b == b'#')
                {
                    self.d.error(
                        c.path.as_ref().map(Spanned::span),
                        format!("{key}.path"),
                        format!("{path:?} is not a URL path"),
                        Some("percent-encode spaces and control characters, e.g. \"/health%20check\"".into()),
                    );
                }
                if c.body.as_ref().is_some_and(|b| b.get_ref().is_empty()) {
                    self.d.error(
                        c.body.as_ref().map(Spanned::span),
                        format!("{key}.body"),
                        "an empty body substring matches every body",
                        Some("give the text the body must contain, or remove `body`".into()),
                    );
                }
                if !path.starts_with('/') {
                    let span = c.path.as_ref().map(Spanned::span);
                    self.d.error(
                        span,
                        format!("{key}.path"),
                        format!("{path:?} does not start with /"),
                        Some("write the path part of the URL, e.g. \"/health\"".into()),
                    );
                }
                let mut expect = Vec::new();
                if let Some(e) = &c.expect {
                    for code in e.get_ref() {
                        match u16::try_from(*code) {
                            Ok(v) if (100..=599).contains(&v) => expect.push(v),
                            _ => self.d.error(
                                Some(e.span()),
                                format!("{key}.expect"),
                                format!("{code} is not an HTTP status code"),
                                Some("use codes from 100 to 599, e.g. [200, 204]".into()),
                            ),
                        }
                    }
                }
                Some(CheckKind::Http {
                    tls,
                    port: port.unwrap_or(if tls { 443 } else { 80 }),
                    path,
                    host: c.host.as_ref().map(|h| h.get_ref().clone()),
                    expect,
                    body_contains: c.body.as_ref().map(|b| b.get_ref().clone()),
                    verify_tls: c.verify_tls.unwrap_or(true),
                    sni: c.sni.as_ref().map(|h| h.get_ref().clone()),
                })
            }
            other => {
                self.d.error(
                    Some(c.kind.span()),
                    format!("{key}.type"),
                    format!("unknown check type {other:?}"),
                    Some("use \"tcp\", \"http\" or \"https\"".into()),
                );
                None
            }
        };
        let dur = |v: &Option<Spanned<ProbeDuration>>, default: std::time::Duration| {
            v.as_ref().map_or(default, |d| d.get_ref().0)
        };
        let interval = dur(&c.interval, std::time::Duration::from_secs(10));
        let timeout = dur(
            &c.timeout,
            std::time::Duration::from_secs(3).min(interval / 2),
        );
        let jitter = dur(&c.jitter, interval / 10);
        if interval > std::time::Duration::from_secs(86_400) {
            self.d.error(
                c.interval.as_ref().map(Spanned::span),
                format!("{key}.interval"),
                format!("{interval:?} is longer than a day"),
                Some("probe at least daily, e.g. interval = \"10s\"".into()),
            );
        }
        if interval < std::time::Duration::from_millis(100) {
            self.d.error(
                c.interval.as_ref().map(Spanned::span),
                format!("{key}.interval"),
                format!("{interval:?} is too short"),
                Some("probe at most ten times a second, e.g. interval = \"1s\"".into()),
            );
        }
        if timeout.is_zero() || timeout >= interval {
            self.d.error(
                c.timeout.as_ref().or(c.interval.as_ref()).map(Spanned::span),
                format!("{key}.timeout"),
                format!("timeout {timeout:?} must be above zero and below the interval {interval:?}"),
                Some("a probe must finish before the next one starts; e.g. interval = \"5s\", timeout = \"2s\"".into()),
            );
        }
        if jitter >= interval {
            self.d.error(
                c.jitter.as_ref().map(Spanned::span),
                format!("{key}.jitter"),
                format!("jitter {jitter:?} must be below the interval {interval:?}"),
                Some("use a fraction of the interval, e.g. a tenth".into()),
            );
        }
        let mut count = |v: &Option<Spanned<i64>>, field: &str, default: u32| -> u32 {
            match v {
                None => default,
                Some(x) if (1..=100).contains(x.get_ref()) => *x.get_ref() as u32,
                Some(x) => {
                    self.d.error(
                        Some(x.span()),
                        format!("{key}.{field}"),
                        format!("{} is outside 1..=100", x.get_ref()),
                        Some(
                            "consecutive results needed to change state; 2 or 3 is typical".into(),
                        ),
                    );
                    default
                }
            }
        };
        let rise = count(&c.rise, "rise", 2);
        let fall = count(&c.fall, "fall", 3);
        let initial = match c.initial.as_ref().map(|i| i.get_ref().as_str()) {
            None | Some("up") => InitialState::Up,
            Some("down") => InitialState::Down,
            Some("first_result") => InitialState::FirstResult,
            Some(other) => {
                self.d.error(
                    c.initial.as_ref().map(Spanned::span),
                    format!("{key}.initial"),
                    format!("unknown initial state {other:?}"),
                    Some("use \"up\", \"down\" or \"first_result\"".into()),
                );
                InitialState::Up
            }
        };
        if self.d.error_count() > errors {
            return None;
        }
        Some(Check {
            kind: kind?,
            interval,
            timeout,
            rise,
            fall,
            jitter,
            initial,
        })
    }

    /// Looks up a check by name for `key`; `Err` when the name is unknown.
    pub(super) fn check_ref(
        &mut self,
        key: &str,
        name: &str,
        span: Range<usize>,
        checks: &HashMap<String, Option<Check>>,
    ) -> Result<Option<Check>, ()> {
        if name == "none" {
            return Ok(None);
        }
        match checks.get(name) {
            Some(c) => Ok(c.clone()),
            None => {
                let names: Vec<&str> = checks.keys().map(String::as_str).collect();
                let help = match did_you_mean(name, &names) {
                    Some(best) => format!("did you mean {best:?}?"),
                    None => "declare it in a [checks.NAME] table, or write \"none\"".to_owned(),
                };
                self.d.error(
                    Some(span),
                    key,
                    format!("no check {name:?} in this zone"),
                    Some(help),
                );
                Err(())
            }
        }
    }
}
