//! After the start: waiting for n8n's health endpoint.
use super::*;

pub(super) fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

/// Waits until `url` answers 200, until `deadline`; the time it took.
pub(super) async fn wait_healthy(url: &str, started: Instant, deadline: Instant) -> Result<u64> {
    let parsed = url::Url::parse(url)
        .map_err(|e| RestoreError::Invalid(format!("the health URL {url:?} is not valid: {e}")))?;
    let mut b = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none());
    if is_loopback(&parsed) {
        b = b.no_proxy();
    }
    let client = b
        .build()
        .map_err(|e| RestoreError::target(format!("cannot set up an HTTP client: {e}")))?;
    loop {
        let last = match client.get(parsed.clone()).send().await {
            Ok(r) if r.status() == reqwest::StatusCode::OK => {
                return Ok(started.elapsed().as_millis() as u64)
            }
            Ok(r) => format!("it answered {}", r.status()),
            Err(e) => {
                let mut m = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    m = format!("{m}: {s}");
                    src = s.source();
                }
                m
            }
        };
        if Instant::now() >= deadline {
            return Err(RestoreError::Target {
                message: format!(
                    "n8n's health endpoint {url} did not answer 200 within {} s (last: {last})",
                    deadline.saturating_duration_since(started).as_secs()
                ),
                retryable: true,
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
