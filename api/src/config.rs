//! The optional `config.toml` in the data directory.
//!
//! Every key is optional. Unknown keys are an error, so a typo never silently does
//! nothing. The keys are documented in README.md.

use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;

/// Problems with the config file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file exists but could not be read.
    #[error("could not read {path}: {source}; check its permissions")]
    Read {
        /// The config file.
        path: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys.
    #[error("{path} is not valid: {reason}; see the config section of README.md for the keys")]
    Parse {
        /// The config file.
        path: String,
        /// What the parser said.
        reason: String,
    },
    /// An environment override has a bad value.
    #[error("{var}={value} is not valid: {reason}")]
    Env {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// Why.
        reason: String,
    },
    /// `web_listen` names an address other than 127.0.0.1: the page is never served
    /// on another interface, whatever the config says.
    #[error("web_listen = \"{addr}\" is refused: the page is only ever served on 127.0.0.1; set web_listen = \"127.0.0.1:PORT\" in config.toml (or HEARTH_WEB_LISTEN)")]
    WebListen {
        /// The address the config named.
        addr: SocketAddr,
    },
}

/// The default QUIC port.
pub const DEFAULT_PORT: u16 = 7447;

/// The default port of the local page (`hearth open`).
pub const DEFAULT_WEB_PORT: u16 = 7448;

/// The daemon's settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Whether CLI commands start the daemon when it is not running.
    pub autostart: bool,
    /// The QUIC address to listen on (`HEARTH_LISTEN` overrides it).
    pub listen: SocketAddr,
    /// Peers to dial without discovery, as `HOST:PORT`.
    pub peers: Vec<String>,
    /// How long `pair invite` waits, in seconds.
    pub pair_timeout_secs: u64,
    /// Discovery: `mdns`, `static` or `off` (`HEARTH_DISCOVERY` overrides it).
    #[serde(deserialize_with = "discovery_mode")]
    pub discovery: String,
    /// Interfaces mDNS may use: empty means all (`HEARTH_MDNS_INTERFACES` overrides it).
    pub mdns_interfaces: Vec<String>,
    /// Log filter, as in `RUST_LOG` (`HEARTH_LOG` overrides it).
    pub log: Option<String>,
    /// The weekday of your weekly walk (`hearth together`), such as `sunday`: on that
    /// day `hearth status` mentions it, and the daemon shows one desktop notification
    /// from 9:00 where a notifier exists (see `hearthd`'s `reminder`). Off when unset; it
    /// never counts anything.
    pub together_day: Option<chrono::Weekday>,
    /// Where `hearth open` serves the local page (`HEARTH_WEB_LISTEN` overrides it).
    /// Nothing listens there until `hearth open` asks; only 127.0.0.1 is accepted
    /// ([`Config::web_addr`]).
    pub web_listen: SocketAddr,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            autostart: true,
            // Dual-stack: IPv4 peers and IPv6 link-local ones (as mDNS finds them).
            listen: SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, DEFAULT_PORT)),
            peers: Vec::new(),
            pair_timeout_secs: 600,
            discovery: "mdns".into(),
            mdns_interfaces: Vec::new(),
            log: None,
            together_day: None,
            web_listen: SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, DEFAULT_WEB_PORT)),
        }
    }
}

/// `discovery` takes a mode name, or `false` as a plain way to turn discovery off.
fn discovery_mode<'de, D: serde::Deserializer<'de>>(de: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Mode {
        Switch(bool),
        Name(String),
    }
    Ok(match Mode::deserialize(de)? {
        Mode::Switch(false) => "off".into(),
        Mode::Switch(true) => "mdns".into(),
        Mode::Name(name) => name,
    })
}

impl Config {
    /// Reads the config file if it exists, then applies environment overrides.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let mut config = match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(&text, path)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Config::default(),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        config.apply_env()?;
        Ok(config)
    }

    /// Parses config text.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            reason: e.message().to_string(),
        })
    }

    /// The page's address: `web_listen` if it is on 127.0.0.1, else a clear refusal.
    /// Any other address, `0.0.0.0`, `[::]`, `[::1]` and other loopback ones included,
    /// is refused, so the page can never be reached from another interface.
    pub fn web_addr(&self) -> Result<SocketAddr, ConfigError> {
        match self.web_listen {
            SocketAddr::V4(v4) if *v4.ip() == std::net::Ipv4Addr::LOCALHOST => Ok(self.web_listen),
            addr => Err(ConfigError::WebListen { addr }),
        }
    }

    fn apply_env(&mut self) -> Result<(), ConfigError> {
        if let Ok(value) = std::env::var("HEARTH_LISTEN") {
            self.listen =
                value
                    .parse()
                    .map_err(|e: std::net::AddrParseError| ConfigError::Env {
                        var: "HEARTH_LISTEN",
                        value: value.clone(),
                        reason: format!("{e}; use HOST:PORT such as 127.0.0.1:0"),
                    })?;
        }
        if let Ok(value) = std::env::var("HEARTH_WEB_LISTEN") {
            self.web_listen =
                value
                    .parse()
                    .map_err(|e: std::net::AddrParseError| ConfigError::Env {
                        var: "HEARTH_WEB_LISTEN",
                        value: value.clone(),
                        reason: format!("{e}; use 127.0.0.1:PORT such as 127.0.0.1:7448"),
                    })?;
        }
        if let Ok(value) = std::env::var("HEARTH_DISCOVERY") {
            if !["mdns", "static", "off"].contains(&value.as_str()) {
                return Err(ConfigError::Env {
                    var: "HEARTH_DISCOVERY",
                    value,
                    reason: "use mdns, static or off".into(),
                });
            }
            self.discovery = value;
        }
        if let Ok(value) = std::env::var("HEARTH_MDNS_INTERFACES") {
            self.mdns_interfaces = value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::parse("", Path::new("config.toml")).unwrap();
        assert_eq!(c, Config::default());
        // Dual-stack by default, so IPv6 link-local peers found by mDNS work too.
        assert_eq!(c.listen.to_string(), "[::]:7447");
    }

    #[test]
    fn known_keys_parse() {
        let c = Config::parse(
            "autostart = false\nlisten = \"127.0.0.1:0\"\npeers = [\"127.0.0.1:7447\"]\n",
            Path::new("config.toml"),
        )
        .unwrap();
        assert!(!c.autostart);
        assert_eq!(c.listen.port(), 0);
        assert_eq!(c.peers.len(), 1);
    }

    #[test]
    fn discovery_false_turns_it_off() {
        let c = Config::parse("discovery = false\n", Path::new("config.toml")).unwrap();
        assert_eq!(c.discovery, "off");
        let c = Config::parse("discovery = \"static\"\n", Path::new("config.toml")).unwrap();
        assert_eq!(c.discovery, "static");
    }

    #[test]
    fn the_page_listens_on_127_0_0_1_only() {
        let c = Config::parse("", Path::new("config.toml")).unwrap();
        assert_eq!(c.web_addr().unwrap().to_string(), "127.0.0.1:7448");
        let c = Config::parse("web_listen = \"127.0.0.1:0\"\n", Path::new("config.toml")).unwrap();
        assert_eq!(c.web_addr().unwrap().port(), 0);
        for refused in [
            "0.0.0.0:7448",
            "[::]:7448",
            "[::1]:7448",
            "127.0.0.2:7448",
            "192.168.1.20:7448",
        ] {
            let text = format!("web_listen = \"{refused}\"\n");
            // Read fine, so the daemon starts; refused when the page is started.
            let c = Config::parse(&text, Path::new("config.toml")).unwrap();
            let msg = c.web_addr().unwrap_err().to_string();
            assert!(msg.contains("only ever served on 127.0.0.1"), "{msg}");
            assert!(msg.contains("web_listen = \"127.0.0.1:PORT\""), "{msg}");
        }
    }

    #[test]
    fn unknown_keys_are_a_clear_error() {
        let err = Config::parse("autostrat = false\n", Path::new("/d/config.toml")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("/d/config.toml"), "{msg}");
        assert!(msg.contains("autostrat"), "{msg}");
        assert!(msg.contains("README"), "{msg}");
    }
}
