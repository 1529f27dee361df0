//! What the Telegram layer is configured with (API credentials, the `dc_override` used with
//! tgsim, the client fingerprint) and the one place where the simulator and real Telegram differ:
//! how a brand-new session gets its auth key.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;
use crate::spawn::Spawn;

/// Telegram settings shared by every account (an account may override the API credentials).
#[derive(Clone)]
pub struct TelegramSettings {
    /// The application's `api_id` from my.telegram.org.
    pub api_id: i32,
    /// The application's `api_hash` (secret: redacted in `Debug`).
    pub api_hash: String,
    /// Send every data center to this one address (tgsim); `None` for real Telegram.
    pub dc_override: Option<SocketAddr>,
    /// Base URL of tgsim's control API, where new auth keys come from when `dc_override` is set.
    pub sim_control_url: Option<String>,
    /// What `initConnection` tells Telegram about this client.
    pub client_info: ClientInfo,
    /// FloodWaits up to this long are slept through by live clients; longer ones are returned.
    pub flood_sleep_threshold: Duration,
    /// How long one step of a login flow or a validation may wait for Telegram.
    pub step_timeout: Duration,
    /// Received updates held per connection while the consumer is busy; beyond it they are
    /// dropped for one `updatesTooLong`, and the stream fetches them again with
    /// `updates.getDifference` at its own pace (bounded memory, nothing lost).
    pub update_backlog: usize,
    /// Who runs each client's background tasks (the server's supervisor).
    pub tasks: Arc<dyn Spawn>,
    /// The SOCKS5 proxy every MTProto connection goes through (`telegram.proxy`), if any.
    pub proxy: Option<crate::proxy::Socks5Proxy>,
    /// Counts stored sessions decrypted (shared by every clone of these settings).
    pub sessions_opened: SessionMeter,
}

/// How many stored account sessions were decrypted ([`crate::DbSession::load`]): every use of
/// an account's auth keys starts there, so a path that must never touch a session (a returning
/// user's web sign-in) can be shown to leave it unchanged. Clones share the count.
#[derive(Clone, Debug, Default)]
pub struct SessionMeter(Arc<std::sync::atomic::AtomicU64>);

impl SessionMeter {
    /// Sessions decrypted so far.
    pub fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn opened(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl fmt::Debug for TelegramSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelegramSettings")
            .field("api_id", &self.api_id)
            .field("api_hash", &"<redacted>")
            .field("dc_override", &self.dc_override)
            .field("sim_control_url", &self.sim_control_url)
            .field("client_info", &self.client_info)
            .field("flood_sleep_threshold", &self.flood_sleep_threshold)
            .field("step_timeout", &self.step_timeout)
            .field("update_backlog", &self.update_backlog)
            .field("proxy", &self.proxy)
            .finish_non_exhaustive()
    }
}

/// The client fingerprint sent in `initConnection`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientInfo {
    /// Device model.
    pub device_model: String,
    /// Operating system version.
    pub system_version: String,
    /// Application version.
    pub app_version: String,
    /// System language code.
    pub system_lang_code: String,
    /// Language code.
    pub lang_code: String,
}

impl Default for ClientInfo {
    fn default() -> Self {
        Self {
            device_model: "Switchboard".into(),
            system_version: std::env::consts::OS.into(),
            app_version: env!("CARGO_PKG_VERSION").into(),
            system_lang_code: "en".into(),
            lang_code: "en".into(),
        }
    }
}

/// FloodWaits up to this long are slept through by a live client's request itself; longer ones
/// are returned to the caller (who reschedules the work for when the wait ends).
pub const FLOOD_SLEEP_THRESHOLD: Duration = Duration::from_secs(60);

impl TelegramSettings {
    /// Settings for real Telegram with the given API credentials.
    pub fn new(api_id: i32, api_hash: impl Into<String>, tasks: Arc<dyn Spawn>) -> Self {
        Self {
            api_id,
            api_hash: api_hash.into(),
            dc_override: None,
            sim_control_url: None,
            client_info: ClientInfo::default(),
            flood_sleep_threshold: FLOOD_SLEEP_THRESHOLD,
            step_timeout: Duration::from_secs(30),
            update_backlog: 10_000,
            tasks,
            proxy: None,
            sessions_opened: SessionMeter::default(),
        }
    }

    /// Settings that send every DC to tgsim at `mtproto` and take new keys from its control API.
    pub fn simulator(
        api_id: i32,
        api_hash: impl Into<String>,
        mtproto: SocketAddr,
        control_url: impl Into<String>,
        tasks: Arc<dyn Spawn>,
    ) -> Self {
        Self {
            dc_override: Some(mtproto),
            sim_control_url: Some(control_url.into()),
            ..Self::new(api_id, api_hash, tasks)
        }
    }

    /// These settings with an account's own API credentials, where it has them.
    pub fn with_api_override(&self, api_id: Option<i32>, api_hash: Option<String>) -> Self {
        let mut s = self.clone();
        if let Some(id) = api_id {
            s.api_id = id;
        }
        if let Some(hash) = api_hash {
            s.api_hash = hash;
        }
        s
    }

    /// The auth key a brand-new session starts with: a fresh unbound key from tgsim's control
    /// API when `dc_override` is set, `None` for real Telegram (grammers then runs the DH key
    /// exchange). This is the only place where the two modes differ.
    pub async fn provision_auth_key(&self) -> Result<Option<[u8; 256]>, Error> {
        if self.dc_override.is_none() {
            return Ok(None);
        }
        let base = self.sim_control_url.as_deref().ok_or(Error::Config(
            "telegram.dc_override needs telegram.sim_control_url",
        ))?;
        let url = format!("{}/api/auth_keys", base.trim_end_matches('/'));
        let response = reqwest::Client::new()
            .post(&url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| Error::KeyProvisioning(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(Error::KeyProvisioning(format!(
                "the control API answered {}",
                response.status()
            )));
        }
        let body: IssuedKey = response
            .json()
            .await
            .map_err(|e| Error::KeyProvisioning(e.without_url().to_string()))?;
        let key = decode_hex_key(&body.auth_key).ok_or_else(|| {
            Error::KeyProvisioning("the control API returned a malformed key".into())
        })?;
        Ok(Some(key))
    }
}

#[derive(serde::Deserialize)]
struct IssuedKey {
    auth_key: String,
}

fn decode_hex_key(hex: &str) -> Option<[u8; 256]> {
    let bytes = hex.trim().as_bytes();
    if bytes.len() != 512 {
        return None;
    }
    let mut key = [0u8; 256];
    for (out, pair) in key.iter_mut().zip(bytes.chunks_exact(2)) {
        let s = std::str::from_utf8(pair).ok()?;
        *out = u8::from_str_radix(s, 16).ok()?;
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_api_hash() {
        let s = TelegramSettings::new(1, "0123456789abcdef", Arc::new(crate::testutil::Detached));
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("0123456789abcdef"));
        assert!(dbg.contains("<redacted>"));
    }

    #[test]
    fn hex_keys_decode_exactly() {
        let hex: String = (0..256).map(|i| format!("{:02x}", i as u8)).collect();
        let key = decode_hex_key(&hex);
        assert_eq!(key.map(|k| k[255]), Some(255));
        assert!(decode_hex_key("abcd").is_none());
        assert!(decode_hex_key(&"zz".repeat(256)).is_none());
    }

    #[tokio::test]
    async fn real_telegram_needs_no_provisioned_key() {
        let s = TelegramSettings::new(1, "h", Arc::new(crate::testutil::Detached));
        assert!(matches!(s.provision_auth_key().await, Ok(None)));
        let mut sim = s.clone();
        sim.dc_override = Some(SocketAddr::from(([127, 0, 0, 1], 1)));
        assert_eq!(
            sim.provision_auth_key().await.err().map(|e| e.code()),
            Some("telegram_config_invalid")
        );
    }
}
