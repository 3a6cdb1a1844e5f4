//! The HTTP endpoint: `/metrics` (Prometheus text 0.0.4, or OpenMetrics 1.0 when the `Accept`
//! header prefers it), `/healthz` (the event loop's runtime answers) and `/readyz` (set when
//! vethtrace prints its startup line and writes its ready file). HTTP/1.1 through hyper, on
//! the tracer's own current-thread tokio runtime; at most [`MAX_CONNECTIONS`] at a time.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use http_body_util::Full;
use hyper::{
    Method, Request, Response, StatusCode,
    header::{ACCEPT, CONTENT_TYPE, HeaderValue},
    server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::{encoding, registry::Registry};
use tokio::{net::TcpListener, sync::Semaphore};

use super::Metrics;

/// Connections served at once; more wait in the listen backlog.
pub(crate) const MAX_CONNECTIONS: usize = 16;
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, thiserror::Error)]
pub(crate) enum ServeError {
    #[error("--metrics {addr}: cannot listen: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

struct State {
    registry: Arc<Registry>,
    counts: super::KernelCounts,
    ready: Arc<AtomicBool>,
}

/// Binds `addr` now (so that a port in use is an error at start) and serves from a task on the
/// current runtime. Returns the address bound (port 0 picks one).
pub(crate) fn start(addr: SocketAddr, metrics: &Metrics) -> Result<SocketAddr, ServeError> {
    let bind = |source| ServeError::Bind { addr, source };
    let std_listener = std::net::TcpListener::bind(addr).map_err(bind)?;
    std_listener.set_nonblocking(true).map_err(bind)?;
    let listener = TcpListener::from_std(std_listener).map_err(bind)?;
    let local = listener.local_addr().map_err(bind)?;
    let state = Arc::new(State { registry: metrics.registry(), counts: metrics.kernel_counts(), ready: metrics.ready_flag() });
    tokio::spawn(accept_loop(listener, state));
    Ok(local)
}

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else { return };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                log::warn!("metrics endpoint: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = service_fn(|req| {
                let response = respond(&req, &state);
                async move { Ok::<_, Infallible>(response) }
            });
            let served = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                log::debug!("metrics endpoint: connection: {e}");
            }
            drop(permit);
        });
    }
}

fn respond<B>(req: &Request<B>, state: &State) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
    }
    match req.uri().path() {
        "/metrics" => {
            let accept = req.headers().get(ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
            state.counts.refresh();
            exposition(&state.registry, wants_openmetrics(accept))
        }
        "/healthz" => plain(StatusCode::OK, "ok\n"),
        "/readyz" if state.ready.load(Ordering::Relaxed) => plain(StatusCode::OK, "ready\n"),
        "/readyz" => plain(StatusCode::SERVICE_UNAVAILABLE, "attaching\n"),
        _ => plain(StatusCode::NOT_FOUND, "not found: try /metrics\n"),
    }
}

fn exposition(registry: &Registry, openmetrics: bool) -> Response<Full<Bytes>> {
    // Encoded straight into the response body's buffer (BytesMut is a fmt::Write).
    let mut body = BytesMut::with_capacity(16 << 10);
    let (encoded, content_type) = if openmetrics {
        (encoding::text::encode(&mut body, registry), OPENMETRICS)
    } else {
        (encoding::prometheus_text::encode(&mut body, registry), encoding::prometheus_text::CONTENT_TYPE)
    };
    if encoded.is_err() {
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode the metrics\n");
    }
    let mut response = Response::new(Full::new(body.freeze()));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// Whether an `Accept` header ranks OpenMetrics above the Prometheus text format (RFC 9110
/// quality values; a tie goes to OpenMetrics, an absent header to text).
pub(crate) fn wants_openmetrics(accept: &str) -> bool {
    let (mut openmetrics, mut text) = (0.0_f32, 0.0_f32);
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")))
            .find_map(|v| v.parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "application/openmetrics-text" => openmetrics = openmetrics.max(q),
            "text/plain" | "text/*" | "*/*" => text = text.max(q),
            _ => {}
        }
    }
    openmetrics > 0.0 && openmetrics >= text
}
