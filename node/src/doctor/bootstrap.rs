//! `config.toml` through the daemon's loader, and a TCP connection to each
//! bootstrap peer it names.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::{Duration, Instant};

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;

use super::{Level, Options, Report};
use crate::daemon::Config;

pub(super) fn check_config_and_bootstrap(report: &mut Report, home: &Path, opts: &Options) {
    let config = match Config::load(home) {
        Ok(c) => c,
        Err(e) => {
            report.push(
                "config",
                Level::Fail,
                format!("{e}: fix it (`convene config set KEY VALUE` checks as it writes)"),
            );
            return;
        }
    };
    let file = home.join(crate::daemon::CONFIG_FILE);
    report.push(
        "config",
        Level::Ok,
        if file.exists() {
            format!("{} is valid", file.display())
        } else {
            "no config.toml: the defaults apply (`convene config show`)".into()
        },
    );
    if config.bootstrap.is_empty() {
        report.push(
            "bootstrap",
            Level::Ok,
            "no bootstrap peers configured (fine on a LAN with mDNS; otherwise `convene config set bootstrap MULTIADDR`)",
        );
        return;
    }
    // All at once, so many unreachable peers cost one timeout, not many.
    let probes: Vec<_> = config
        .bootstrap
        .iter()
        .cloned()
        .map(|addr| {
            let timeout = opts.connect_timeout;
            std::thread::spawn(move || {
                let verdict = probe(&addr, timeout);
                (addr, verdict)
            })
        })
        .collect();
    for p in probes {
        let Ok((addr, (level, message))) = p.join() else {
            continue;
        };
        report.push("bootstrap", level, format!("{addr}: {message}"));
    }
}

/// Tries a TCP connection to a bootstrap address.
fn probe(addr: &Multiaddr, timeout: Duration) -> (Level, String) {
    let mut host = None;
    let mut port = None;
    let mut udp = false;
    for p in addr.iter() {
        match p {
            Protocol::Ip4(ip) => host = Some(ip.to_string()),
            Protocol::Ip6(ip) => host = Some(ip.to_string()),
            Protocol::Dns(h) | Protocol::Dns4(h) | Protocol::Dns6(h) => host = Some(h.to_string()),
            Protocol::Tcp(p) => port = Some(p),
            Protocol::Udp(_) => udp = true,
            _ => {}
        }
    }
    let (Some(host), Some(port)) = (host, port) else {
        return if udp {
            (
                Level::Ok,
                "not probed: a UDP (QUIC) address cannot be tested with a TCP connection".into(),
            )
        } else {
            (
                Level::Warn,
                "not probed: no host and TCP port in the address".into(),
            )
        };
    };
    let addrs: Vec<SocketAddr> = match (host.as_str(), port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => {
            return (
                Level::Warn,
                format!("cannot resolve {host}: {e}; check the name and this machine's DNS"),
            );
        }
    };
    let started = Instant::now();
    let mut last = None;
    for a in &addrs {
        match TcpStream::connect_timeout(a, timeout) {
            Ok(_) => {
                return (
                    Level::Ok,
                    format!("reachable ({} ms)", started.elapsed().as_millis()),
                );
            }
            Err(e) => last = Some(e),
        }
    }
    (
        Level::Warn,
        format!(
            "unreachable ({}): check that the peer runs and that firewalls allow TCP port {port}",
            last.map_or_else(|| "no address".into(), |e| e.to_string())
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_peers_are_probed() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let up: Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap();
        assert_eq!(probe(&up, Duration::from_secs(2)).0, Level::Ok);
        drop(listener);
        assert_eq!(probe(&up, Duration::from_secs(2)).0, Level::Warn);
        let quic: Multiaddr = "/ip4/127.0.0.1/udp/4040/quic-v1".parse().unwrap();
        assert_eq!(probe(&quic, Duration::from_secs(2)).0, Level::Ok);
    }
}
