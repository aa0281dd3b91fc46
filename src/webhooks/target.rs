//! Where a webhook may be delivered: an organization names a URL, the
//! operator decides what it may reach. The rule is the pulled sources'
//! ([`PullPolicy`]): public addresses only, unless the operator allows a
//! network or host (`--webhook-allow`); never the server's own.
//!
//! The URL is checked as written when the endpoint is made (scheme, no
//! credentials, an address given as the host), and every address a host
//! name resolves to is checked on every connection by the client's own
//! resolver ([`PolicyResolver`]), so a name that resolves elsewhere later
//! (DNS rebinding) is refused then. Redirects are never followed: a 3xx
//! answer is a failed attempt.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest013 as reqwest;

use crate::config::PullAllow;
use crate::pull_policy::{PullPolicy, PullRefused};

/// Longest endpoint URL taken.
pub const MAX_URL_LEN: usize = 2048;

/// The operator's rule for webhook addresses.
#[derive(Clone)]
pub struct TargetPolicy {
    addresses: Arc<PullPolicy>,
}

impl TargetPolicy {
    pub fn new(data_dir: &std::path::Path, allow: &[PullAllow]) -> Self {
        Self {
            addresses: Arc::new(PullPolicy::new(data_dir, &[], allow)),
        }
    }

    /// Checks an endpoint URL as written; returns it as parsed (what is
    /// stored and called). The messages are safe to show the caller.
    pub fn check_url(&self, text: &str) -> Result<String, String> {
        if text.len() > MAX_URL_LEN {
            return Err(format!("must be at most {MAX_URL_LEN} bytes"));
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain white space or control characters".into());
        }
        let url = url::Url::parse(text).map_err(|_| "must be an http:// or https:// URL")?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("must be an http:// or https:// URL".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "must not carry credentials (deliveries are signed: check the signature)".into(),
            );
        }
        let host = match url.host() {
            Some(url::Host::Domain(name)) => name.to_ascii_lowercase(),
            Some(url::Host::Ipv4(ip)) => {
                self.check_address(&ip.to_string(), IpAddr::V4(ip))?;
                ip.to_string()
            }
            Some(url::Host::Ipv6(ip)) => {
                self.check_address(&ip.to_string(), IpAddr::V6(ip))?;
                ip.to_string()
            }
            None => return Err("must name a host".into()),
        };
        if host.is_empty() {
            return Err("must name a host".into());
        }
        Ok(url.into())
    }

    fn check_address(&self, host: &str, ip: IpAddr) -> Result<(), String> {
        self.addresses
            .check_address(host, ip)
            .map_err(|refused| match refused {
                PullRefused::Address(kind) => format!(
                    "must not point to {kind} address (the operator allows networks or hosts with --webhook-allow)"
                ),
                other => other.to_string(),
            })
    }

    /// The HTTP client deliveries are made with: this policy's resolver,
    /// no redirects, no proxy, `timeout` per attempt.
    pub fn client(&self, timeout: Duration) -> reqwest::Client {
        // reqwest takes TLS from rustls' process-wide provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .dns_resolver(Arc::new(PolicyResolver {
                policy: self.clone(),
            }))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_max_idle_per_host(4)
            .user_agent(concat!("liveproc-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the webhook client's settings are valid")
    }

    /// Checks a URL's literal address again before an attempt (the
    /// resolver sees only names): the operator's allow list may have
    /// changed since the endpoint was made.
    pub fn check_before_attempt(&self, text: &str) -> Result<(), String> {
        self.check_url(text).map(|_| ())
    }
}

/// Resolves host names for the webhook client, refusing a name when any
/// of its addresses is one the policy refuses.
struct PolicyResolver {
    policy: TargetPolicy,
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_ascii_lowercase();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addresses.is_empty() {
                return Err("the host does not resolve".into());
            }
            for address in &addresses {
                policy.check_address(&host, address.ip())?;
            }
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &[&str]) -> TargetPolicy {
        let allow: Vec<PullAllow> = allow.iter().map(|a| a.parse().unwrap()).collect();
        TargetPolicy::new(&std::env::temp_dir(), &allow)
    }

    #[test]
    fn internal_addresses_are_refused_unless_allowed() {
        let strict = policy(&[]);
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://10.1.2.3/hook",
            "http://[::1]/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://[::ffff:127.0.0.1]/hook",
        ] {
            let refused = strict.check_url(url).unwrap_err();
            assert!(refused.contains("--webhook-allow"), "{url}: {refused}");
        }
        assert!(strict.check_url("https://hooks.example.com/x").is_ok());
        assert!(strict.check_url("https://1.1.1.1/x").is_ok());
        assert!(policy(&["127.0.0.0/8"])
            .check_url("http://127.0.0.1:8080/hook")
            .is_ok());
    }

    #[test]
    fn only_plain_http_urls_without_credentials() {
        let strict = policy(&[]);
        for url in [
            "ftp://1.1.1.1/x",
            "file:///etc/passwd",
            "https://user:pw@hooks.example.com/",
            "https://hooks.example.com/ x",
            "not a url",
        ] {
            assert!(strict.check_url(url).is_err(), "{url}");
        }
        let long = format!("https://hooks.example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(strict.check_url(&long).is_err());
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_internal_addresses() {
        use reqwest013::dns::Resolve;
        let resolver = PolicyResolver {
            policy: policy(&[]),
        };
        let name: reqwest013::dns::Name = "localhost".parse().unwrap();
        let refused = resolver.resolve(name).await.err().expect("refused");
        assert!(refused.to_string().contains("--webhook-allow"), "{refused}");
        let allowed = PolicyResolver {
            policy: policy(&["localhost"]),
        };
        let name: reqwest013::dns::Name = "localhost".parse().unwrap();
        assert!(allowed.resolve(name).await.is_ok());
    }
}
