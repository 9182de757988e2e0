//! `ClientIp`: who the client is, for the per-IP limits and `/metrics`
//! access, resolved once in one place for the API and the pages alike.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::limits;
use crate::state::AppState;

/// The peer, or, when the peer is one of `TRUSTED_PROXIES`, the client its
/// `X-Forwarded-For` names (see `limits::client_ip`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    pub fn of(parts: &Parts, state: &AppState) -> Self {
        // Every connection is served with its peer address (`http_server`);
        // without one (a router driven directly) the client counts as unspecified.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        let trusted = &state.settings.limits.trusted_proxies;
        Self(limits::client_ip_of(peer, &parts.headers, trusted))
    }

    /// The key the per-IP limits count under (an IPv6 client by its /64).
    pub fn key(&self) -> String {
        limits::ip_key(self.0)
    }

    /// The client network `CHALLENGE=auto` counts (IPv4 /24, IPv6 /48).
    pub fn network(&self) -> String {
        limits::network_key(self.0)
    }
}

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        Ok(Self::of(parts, state))
    }
}
