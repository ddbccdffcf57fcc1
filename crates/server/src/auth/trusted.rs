//! Networks whose credential-less calls to tapd's universe service act as
//! one tenant (stock tapd cannot send a token).

use std::net::IpAddr;

/// A network range whose credential-less calls act as one tenant.
#[derive(Clone, Debug)]
pub struct TrustedNetwork {
    pub net: IpAddr,
    pub prefix: u8,
    pub tenant: String,
}

impl TrustedNetwork {
    /// `10.8.0.0/24=alice`
    pub fn parse(s: &str) -> Result<Self, String> {
        let (cidr, tenant) = s.split_once('=').ok_or("expected CIDR=tenant")?;
        let (ip, prefix) = cidr
            .split_once('/')
            .ok_or("expected a CIDR like 10.8.0.0/24")?;
        let net: IpAddr = ip
            .parse()
            .map_err(|e| format!("bad network address {ip:?}: {e}"))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|e| format!("bad prefix {prefix:?}: {e}"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        if prefix > max || tenant.is_empty() {
            return Err(format!("bad trusted network {s:?}"));
        }
        Ok(TrustedNetwork {
            net,
            prefix,
            tenant: tenant.to_string(),
        })
    }
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.net, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
            (_, ip) => ip,
        };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.prefix)
                };
                (u32::from(n) & mask) == (u32::from(a) & mask)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.prefix)
                };
                (u128::from(n) & mask) == (u128::from(a) & mask)
            }
            _ => false,
        }
    }
}
