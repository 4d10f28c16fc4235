//! Host names of the HTTP endpoint: `daemon.allowed_hosts` and the loopback rule for
//! `daemon.listen`. The same normalisation serves the config and the `Host` header check, so
//! a name is written once and compared the same way on both sides.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use super::leaf::{self, Raw};
use crate::config::Invalid;

/// `text` as a comparable host name: lower-case, without a trailing dot, an IPv6 literal in
/// brackets (`[::1]`). `None` when it is not a DNS name or an IP literal (ports, schemes,
/// paths, wildcards and spaces are all refused).
pub fn normalize(text: &str) -> Option<String> {
    let t = text.trim().to_ascii_lowercase();
    let t = t.strip_suffix('.').unwrap_or(&t);
    if let Some(inner) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().ok().map(|ip| format!("[{ip}]"));
    }
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Some(match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        });
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    (!t.is_empty() && t.len() <= 253 && t.split('.').all(label_ok)).then(|| t.to_string())
}

/// The host of a normalised name as an IP address, when it is one.
pub fn as_ip(host: &str) -> Option<IpAddr> {
    let bare = host.strip_prefix('[').and_then(|r| r.strip_suffix(']')).unwrap_or(host);
    bare.parse().ok()
}

/// Whether `ip` only reaches this host (127.0.0.0/8, `::1`, or `::ffff:127.x.y.z`).
pub fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// Whether binding `addr` lets other hosts connect.
pub fn is_remote(addr: SocketAddr) -> bool {
    !is_loopback(addr.ip())
}

/// `daemon.allowed_hosts`: a list of host names or IP addresses, without port or scheme. A
/// comma-separated string is also accepted, as the environment can only give a string
/// (`MPSYNC_DAEMON__ALLOWED_HOSTS=a.example.com,b.example.com`).
pub(crate) fn allowed_hosts(v: &Raw) -> Result<Vec<String>, Invalid> {
    let texts: Vec<String> = match v {
        Raw::List(items) => items.iter().map(leaf::non_empty).collect::<Result<_, _>>()?,
        Raw::Text(s) => {
            s.split(',').map(str::trim).filter(|t| !t.is_empty()).map(Into::into).collect()
        }
        _ => {
            return Err(Invalid(format!(
                "expected a list of host names such as [\"mpsync.example.com\"], got {}",
                v.show()
            )));
        }
    };
    let mut out = Vec::new();
    for text in texts {
        if text.contains('*') {
            return Err(Invalid(format!(
                "{text:?}: wildcards are not accepted (they would let any web page read mpsync \
                 through DNS rebinding); list each name"
            )));
        }
        let Some(host) = normalize(&text) else {
            return Err(Invalid(format!(
                "{text:?} is not a host name; write only the name (or IP address) that \
                 browsers and clients use, without scheme, port or path, e.g. \"mpsync.example.com\""
            )));
        };
        if !out.contains(&host) {
            out.push(host);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_literals_normalise_the_same_on_both_sides() {
        assert_eq!(normalize("MPSync.Example.COM.").as_deref(), Some("mpsync.example.com"));
        assert_eq!(normalize("::1").as_deref(), Some("[::1]"));
        assert_eq!(normalize("[0:0::1]").as_deref(), Some("[::1]"));
        assert_eq!(normalize("127.0.0.1").as_deref(), Some("127.0.0.1"));
        for bad in ["", "https://x.example", "x.example:443", "x.example/path", "a b", "-x.example"]
        {
            assert_eq!(normalize(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_loopback_addresses_are_local() {
        for local in ["127.0.0.1:9847", "127.1.2.3:1", "[::1]:9847", "[::ffff:127.0.0.1]:9847"] {
            assert!(!is_remote(local.parse().unwrap()), "{local}");
        }
        for remote in ["0.0.0.0:9847", "[::]:9847", "10.0.0.5:9847", "[2001:db8::1]:9847"] {
            assert!(is_remote(remote.parse().unwrap()), "{remote}");
        }
    }

    #[test]
    fn the_list_refuses_ports_schemes_and_wildcards_with_the_fix() {
        let text = |s: &str| Raw::Text(s.into());
        let list =
            |items: &[&str]| allowed_hosts(&Raw::List(items.iter().map(|s| text(s)).collect()));
        assert_eq!(
            list(&["MPSYNC.example.com", "10.0.0.5", "mpsync.example.com"]).unwrap(),
            ["mpsync.example.com", "10.0.0.5"]
        );
        let e = list(&["mpsync.example.com:443"]).unwrap_err();
        assert!(e.contains("without scheme, port or path"), "{e}");
        let e = list(&["*.example.com"]).unwrap_err();
        assert!(e.contains("wildcards are not accepted"), "{e}");
        // The environment's form: one string, comma-separated.
        let from_env = allowed_hosts(&text("a.example.com, b.example.com")).unwrap();
        assert_eq!(from_env, ["a.example.com", "b.example.com"]);
        let e = allowed_hosts(&Raw::Int(7)).unwrap_err();
        assert!(e.contains("expected a list of host names"), "{e}");
    }
}
