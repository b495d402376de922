//! Where deliveries may go. A webhook URL is chosen by whoever holds an admin key, and
//! Darkroom usually sits inside a network: unless `webhooks.allow_private_targets`, no
//! delivery reaches a loopback, private, link-local (cloud metadata), shared or reserved
//! address. A literal address is checked when the webhook is made and before every
//! attempt; a host name when it is resolved, on every attempt (the resolver below
//! drops such addresses, so a name that later points inside gets nothing), and
//! redirects are never followed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why a webhook URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("the webhook URL is not a URL: {0}")]
    NotUrl(String),
    #[error("the webhook URL must be http:// or https:// with a host")]
    Scheme,
    #[error("the webhook URL may not carry a user name or password")]
    Credentials,
    #[error(
        "the webhook URL points at a loopback, private, link-local or reserved address \
         ({0}); deliveries go to public addresses only (webhooks.allow_private_targets \
         allows others)"
    )]
    Private(String),
}

/// Checks a webhook URL as given: its form, and a literal address (or `localhost`).
pub fn check(url: &str, allow_private: bool) -> Result<Url, TargetError> {
    let parsed = Url::parse(url).map_err(|e| TargetError::NotUrl(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(TargetError::Scheme);
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(TargetError::Credentials);
    }
    if !allow_private {
        let private = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => !is_public(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => !is_public(IpAddr::V6(ip)),
            Some(url::Host::Domain(d)) => {
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                d == "localhost" || d.ends_with(".localhost")
            }
            None => true,
        };
        if private {
            return Err(TargetError::Private(
                parsed.host_str().unwrap_or_default().to_owned(),
            ));
        }
    }
    Ok(parsed)
}

/// Whether a delivery may reach `ip` without `allow_private_targets`.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254/16: cloud metadata among them
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (carrier NAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(ip) {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local (fd00:ec2::254: metadata)
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] == 0) // Teredo: tunnels to anywhere
        || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64 of local use (64:ff9b:1::/48)
        || s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard-only
}

/// The IPv4 address inside an IPv4-mapped, IPv4-compatible, NAT64 or 6to4 address (each
/// reaches that IPv4 address, so it is judged as that).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    if s[..6] == [0, 0, 0, 0, 0, 0] && !ip.is_loopback() && !ip.is_unspecified() {
        return Some(low(s[6], s[7])); // IPv4-compatible (deprecated)
    }
    if s[..4] == [0, 0, 0, 0] && s[4] == 0xffff && s[5] == 0 {
        return Some(low(s[6], s[7])); // IPv4-translated (::ffff:0:0/96)
    }
    if s[..6] == [0x0064, 0xff9b, 0, 0, 0, 0] {
        return Some(low(s[6], s[7])); // NAT64, well-known prefix (64:ff9b::/96)
    }
    if s[0] == 0x2002 {
        return Some(low(s[1], s[2])); // 6to4
    }
    None
}

/// The resolver of the delivery client: the system's, without the addresses a delivery
/// may not reach (all of them refused: an error that says so).
pub struct Resolver {
    pub allow_private: bool,
}

impl Resolve for Resolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| allow_private || is_public(a.ip()))
                .collect();
            if allowed.is_empty() {
                // Which address it resolved to is not said: the attempts log would map
                // internal names for whoever reads it.
                let error: Box<dyn std::error::Error + Send + Sync> = if found.is_empty() {
                    format!("{host} has no address").into()
                } else {
                    TargetError::Private(format!("{host} resolves to such addresses only")).into()
                };
                return Err(error);
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(s: &str) -> bool {
        is_public(s.parse().expect("address"))
    }

    #[test]
    fn inside_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "0.0.0.0",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "198.18.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:0:7f00:1",
            "64:ff9b:1::a00:1",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "2001::1",
            "ff02::1",
        ] {
            assert!(!public(ip), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(public(ip), "{ip}");
        }
    }

    #[test]
    fn urls_are_checked_for_form_and_literal_addresses() {
        assert!(check("https://hooks.example.com/in", false).is_ok());
        assert!(check("http://93.184.216.34:8080/x", false).is_ok());
        for (url, refused) in [
            ("http://127.0.0.1:9/hook", true),
            ("http://[::1]/hook", true),
            ("http://localhost:8080/", true),
            ("http://api.localhost/", true),
            ("http://169.254.169.254/latest/meta-data", true),
            ("http://2130706433/", true), // 127.0.0.1 as one number
            ("http://0x7f.1/", true),
        ] {
            assert_eq!(
                matches!(check(url, false), Err(TargetError::Private(_))),
                refused,
                "{url}"
            );
            assert!(
                check(url, true).is_ok(),
                "{url} with private targets allowed"
            );
        }
        assert_eq!(check("ftp://example.com/", true), Err(TargetError::Scheme));
        assert_eq!(
            check("https://u:p@example.com/", true),
            Err(TargetError::Credentials)
        );
        assert!(matches!(
            check("not a url", true),
            Err(TargetError::NotUrl(_))
        ));
    }

    #[tokio::test]
    async fn the_resolver_drops_inside_addresses() {
        let name = || "localhost".parse::<Name>().expect("name");
        let refused = Resolver {
            allow_private: false,
        }
        .resolve(name())
        .await;
        let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("localhost resolves to such"), "{message}");
        assert!(!message.contains("127.0.0.1"), "{message}");
        let allowed = Resolver {
            allow_private: true,
        }
        .resolve(name())
        .await;
        assert!(allowed.is_ok_and(|mut a| a.next().is_some()));
    }
}
