//! Who the client is, for the per-IP limit. `X-Forwarded-For` is believed only
//! from `TRUSTED_PROXIES`; otherwise anyone could rotate it to dodge the limit.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The client address: the peer, or, when the peer is a trusted proxy, the
/// right-most `X-Forwarded-For` hop that is not itself a trusted proxy.
pub fn client_ip(peer: IpAddr, forwarded_for: &[&str], trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(&canonical(*ip)));
    if !is_trusted(&peer) {
        return canonical(peer);
    }
    let mut client = peer;
    // Right to left: each trusted hop vouches for the one before it.
    let hops = forwarded_for
        .iter()
        .flat_map(|h| h.split(','))
        .map(str::trim)
        .rev();
    for hop in hops {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            break; // A hop we cannot read ends the chain of trust.
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    canonical(client)
}

/// [`client_ip`] with the hops read from a request's `X-Forwarded-For` headers.
pub fn client_ip_of(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    client_ip(peer, &forwarded, trusted)
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The key the per-IP limit counts under. An IPv6 client usually holds a whole
/// /64, so counting single addresses would let it rotate past the limit.
pub fn ip_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// The client network that `CHALLENGE=auto` counts: an IPv4 /24 or an IPv6
/// /48, what one user, office or small botnet host usually holds.
pub fn network_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(s: &[&str]) -> Vec<IpNet> {
        s.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_claims() {
        let got = client_ip(ip("203.0.113.9"), &["1.2.3.4"], &nets(&["10.0.0.0/8"]));
        assert_eq!(got, ip("203.0.113.9"));
    }

    #[test]
    fn right_most_untrusted_hop_from_a_trusted_proxy() {
        let trusted = nets(&["10.0.0.0/8"]);
        let got = client_ip(
            ip("10.0.0.1"),
            &["6.6.6.6, 198.51.100.7, 10.0.0.2"],
            &trusted,
        );
        assert_eq!(got, ip("198.51.100.7"));
        let got = client_ip(ip("10.0.0.1"), &["6.6.6.6", "198.51.100.7"], &trusted);
        assert_eq!(got, ip("198.51.100.7"));
    }

    #[test]
    fn garbage_hop_stops_the_chain() {
        let got = client_ip(ip("10.0.0.1"), &["1.1.1.1, junk"], &nets(&["10.0.0.0/8"]));
        assert_eq!(got, ip("10.0.0.1"));
    }

    #[test]
    fn networks_are_a_v4_24_and_a_v6_48() {
        assert_eq!(network_key(ip("198.51.100.7")), "198.51.100.0/24");
        assert_eq!(
            network_key(ip("198.51.100.7")),
            network_key(ip("198.51.100.250"))
        );
        assert_ne!(
            network_key(ip("198.51.100.7")),
            network_key(ip("198.51.101.7"))
        );
        assert_eq!(network_key(ip("2001:db8:1:2::9")), "2001:db8:1::/48");
        assert_eq!(network_key(ip("2001:db8:1:ffff::9")), "2001:db8:1::/48");
    }

    #[test]
    fn ipv6_counts_per_64() {
        assert_eq!(
            ip_key(ip("2001:db8:1:2:aaaa::1")),
            ip_key(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_eq!(
            ip_key(ip("::ffff:1.2.3.4")),
            "::ffff:1.2.3.4".parse::<IpAddr>().map(ip_key).unwrap()
        );
        assert_eq!(client_ip(ip("::ffff:1.2.3.4"), &[], &[]), ip("1.2.3.4"));
    }
}
