//! A list of IP networks from the configuration (trusted proxies, who may scrape
//! metrics): parsed once, each entry an address or a network, and one rule for whether
//! an address is in it (an IPv4 address mapped into IPv6 counts as the IPv4 one).

use ipnet::IpNet;
use std::net::IpAddr;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Networks(Vec<IpNet>);

impl Networks {
    /// Addresses or networks, such as `10.0.0.0/8`, `192.0.2.7` or `::1`; the error
    /// names the entry that is neither.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Networks, String> {
        entries
            .iter()
            .map(|e| {
                let e = e.as_ref().trim();
                e.parse::<IpNet>()
                    .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!("`{e}` is not an IP address or network such as 10.0.0.0/8")
                    })
            })
            .collect::<Result<_, _>>()
            .map(Networks)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|net| net.contains(&ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_networks_match_mapped_ipv4_too() {
        let n = Networks::parse(&["10.0.0.0/8", "::1", "192.0.2.7"]).unwrap();
        assert!(n.contains("::ffff:10.9.9.9".parse().unwrap()));
        assert!(n.contains("::1".parse().unwrap()));
        assert!(n.contains("192.0.2.7".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        let err = Networks::parse(&["10.0.0.0/8", "proxy.local"]).unwrap_err();
        assert!(err.contains("`proxy.local`"), "{err}");
    }
}
