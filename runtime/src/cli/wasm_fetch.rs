//! Fetching a manifest's `wasm: https://…` module for `sluice apply|diff`, bounded in size and
//! time. The manifest layer checks the pin and locates any failure at `spec.wasm`; this file only
//! turns an HTTP exchange into bytes or one line saying why not.

use std::time::Duration;

/// Time to connect to a module's host.
pub const FETCH_CONNECT_TIMEOUT_MS: u64 = 10_000;
/// Time for the whole download.
pub const FETCH_TIMEOUT_MS: u64 = 120_000;

/// GETs `url`; fails on a non-2xx status, an unreachable host or more than `bytes_max` bytes
/// (checked as the body arrives, so a huge response is not buffered).
pub fn fetch(url: &str, bytes_max: usize) -> Result<Vec<u8>, String> {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(fetch_async(url, bytes_max))
}

async fn fetch_async(url: &str, bytes_max: usize) -> Result<Vec<u8>, String> {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(FETCH_CONNECT_TIMEOUT_MS))
        .timeout(Duration::from_millis(FETCH_TIMEOUT_MS))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let failed = |e: reqwest::Error| format!("cannot fetch {url}: {}", super::admin_client::chain(&e));
    let mut response = client.get(url).send().await.map_err(failed)?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("cannot fetch {url}: HTTP {status}"));
    }
    if response.content_length().is_some_and(|n| n > bytes_max as u64) {
        return Err(format!("{url}: more than the module limit of {bytes_max} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        body.extend_from_slice(&chunk);
        if body.len() > bytes_max {
            return Err(format!("{url}: more than the module limit of {bytes_max} bytes"));
        }
    }
    Ok(body)
}
