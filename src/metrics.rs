//! The daemon's Prometheus metrics: a registry of `jjfs_*` series that the engine updates
//! through a small typed API (`Metrics`), and the `/metrics` HTTP endpoint that serves them in
//! the Prometheus text format on the `metrics_listen` address (`MetricsEndpoint`), started,
//! stopped and re-bound at runtime when that setting changes.
//!
//! Updating a metric is a few atomic operations and never blocks on a scrape. Nothing here
//! reads repos or mounts: the engine reports what happened; only the resident memory is read
//! (from `/proc/self/status`) when a scrape asks for it.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

/// Propagation-latency buckets (seconds): a change usually settles within the debounce and one
/// sync step; the tail covers slow disks and busy machines.
const PROPAGATION_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Scrapes served at once; more connections wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 16;

/// A client that sends no complete request head in this time is dropped.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error(
        "metrics_listen must be HOST:PORT (for example 127.0.0.1:9464), or empty to turn metrics off; {value:?} is not ({reason})"
    )]
    BadListen { value: String, reason: String },
    #[error("cannot serve metrics on {addr}: {source} (choose another metrics_listen)")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The `jjfs_*` series. Cheap to clone: clones share one registry.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    syncs: IntCounterVec,
    synced_files: IntCounterVec,
    propagation: HistogramVec,
    conflicts: IntGaugeVec,
    pushes: IntCounterVec,
    fetches: IntCounterVec,
    checks: IntCounterVec,
    remote_failures: IntCounterVec,
    mounts: IntGaugeVec,
    paused_mounts: IntGaugeVec,
    resident_memory: IntGauge,
    /// Remotes seen per repo, so that forgetting a repo removes its remote series too.
    remotes: Mutex<BTreeMap<String, BTreeSet<String>>>,
}

/// A mount's health as the `health` label of `jjfs_mounts` spells it.
pub const HEALTH_LABELS: [&str; 2] = ["healthy", "unhealthy"];

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry.register(Box::new(c.clone())).expect("unique");
            c
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry.register(Box::new(g.clone())).expect("unique");
            g
        };
        let syncs = counter(
            "jjfs_syncs_total",
            "Sync steps that recorded a change on trunk.",
            &["repo"],
        );
        let synced_files = counter(
            "jjfs_synced_files_total",
            "Files changed by the sync steps that recorded a change.",
            &["repo"],
        );
        let propagation = HistogramVec::new(
            HistogramOpts::new(
                "jjfs_propagation_seconds",
                "Time from a change being reported in one mount to it being readable in every \
                 healthy, unpaused mount.",
            )
            .buckets(PROPAGATION_BUCKETS.to_vec()),
            &["repo"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(propagation.clone()))
            .expect("unique");
        let conflicts = gauge(
            "jjfs_conflicts",
            "Conflicted files on trunk now.",
            &["repo"],
        );
        let pushes = counter(
            "jjfs_remote_pushes_total",
            "Successful pushes of trunk to a remote.",
            &["repo", "remote"],
        );
        let fetches = counter(
            "jjfs_remote_fetches_total",
            "Successful fetches from a remote.",
            &["repo", "remote"],
        );
        let checks = counter(
            "jjfs_remote_checks_total",
            "Checks of a remote for a moved trunk (a ref advertisement, no fetch).",
            &["repo", "remote"],
        );
        let remote_failures = counter(
            "jjfs_remote_failures_total",
            "Failed pushes and fetches.",
            &["repo", "remote"],
        );
        let mounts = gauge("jjfs_mounts", "Mounts by health.", &["repo", "health"]);
        let paused_mounts = gauge(
            "jjfs_paused_mounts",
            "Mounts whose syncing is paused.",
            &["repo"],
        );
        let resident_memory = IntGauge::new(
            "jjfs_resident_memory_bytes",
            "Resident memory of the daemon (VmRSS).",
        )
        .expect("valid metric");
        registry
            .register(Box::new(resident_memory.clone()))
            .expect("unique");
        Self {
            inner: Arc::new(Inner {
                registry,
                syncs,
                synced_files,
                propagation,
                conflicts,
                pushes,
                fetches,
                checks,
                remote_failures,
                mounts,
                paused_mounts,
                resident_memory,
                remotes: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    /// A repo is served: its series appear at zero, so rates work from the first scrape.
    pub fn add_repo(&self, repo: &str) {
        let i = &self.inner;
        i.syncs.with_label_values(&[repo]);
        i.synced_files.with_label_values(&[repo]);
        i.propagation.with_label_values(&[repo]);
        i.conflicts.with_label_values(&[repo]);
        i.paused_mounts.with_label_values(&[repo]);
        for health in HEALTH_LABELS {
            i.mounts.with_label_values(&[repo, health]);
        }
    }

    /// A remote of `repo` is configured: its series appear at zero.
    pub fn add_remote(&self, repo: &str, remote: &str) {
        let i = &self.inner;
        for c in [&i.pushes, &i.fetches, &i.checks, &i.remote_failures] {
            c.with_label_values(&[repo, remote]);
        }
        i.remotes
            .lock()
            .expect("not poisoned")
            .entry(repo.to_owned())
            .or_default()
            .insert(remote.to_owned());
    }

    /// A remote was removed: its series go.
    pub fn forget_remote(&self, repo: &str, remote: &str) {
        let i = &self.inner;
        for c in [&i.pushes, &i.fetches, &i.checks, &i.remote_failures] {
            let _ = c.remove_label_values(&[repo, remote]);
        }
        if let Some(set) = i.remotes.lock().expect("not poisoned").get_mut(repo) {
            set.remove(remote);
        }
    }

    /// A sync step recorded a change of `files` files on trunk of `repo`, readable in every
    /// healthy, unpaused mount `latency` after it was first reported.
    pub fn synced(&self, repo: &str, files: usize, latency: Duration) {
        let i = &self.inner;
        i.syncs.with_label_values(&[repo]).inc();
        i.synced_files
            .with_label_values(&[repo])
            .inc_by(files as u64);
        i.propagation
            .with_label_values(&[repo])
            .observe(latency.as_secs_f64());
    }

    /// The number of conflicted files on trunk of `repo` now.
    pub fn set_conflicts(&self, repo: &str, conflicts: usize) {
        self.inner
            .conflicts
            .with_label_values(&[repo])
            .set(conflicts as i64);
    }

    pub fn pushed(&self, repo: &str, remote: &str) {
        self.inner.pushes.with_label_values(&[repo, remote]).inc();
    }

    pub fn fetched(&self, repo: &str, remote: &str) {
        self.inner.fetches.with_label_values(&[repo, remote]).inc();
    }

    /// `remote` was checked for a moved trunk.
    pub fn checked(&self, repo: &str, remote: &str) {
        self.inner.checks.with_label_values(&[repo, remote]).inc();
    }

    /// A push or fetch with `remote` failed.
    pub fn remote_failed(&self, repo: &str, remote: &str) {
        self.inner
            .remote_failures
            .with_label_values(&[repo, remote])
            .inc();
    }

    /// The mounts of `repo` now, by health.
    pub fn set_mounts(&self, repo: &str, healthy: usize, unhealthy: usize) {
        let m = &self.inner.mounts;
        m.with_label_values(&[repo, "healthy"]).set(healthy as i64);
        m.with_label_values(&[repo, "unhealthy"])
            .set(unhealthy as i64);
    }

    /// The paused mounts of `repo` now (a paused repo counts all of its mounts).
    pub fn set_paused_mounts(&self, repo: &str, paused: usize) {
        self.inner
            .paused_mounts
            .with_label_values(&[repo])
            .set(paused as i64);
    }

    /// Every series in the Prometheus text format (version 0.0.4), with the resident memory
    /// read now.
    pub fn render(&self) -> String {
        if let Some(rss) = resident_memory_bytes() {
            self.inner.resident_memory.set(rss as i64);
        }
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.inner.registry.gather(), &mut out)
            .expect("text encoding into memory does not fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

/// `VmRSS` of this process, in bytes.
pub fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut words = line["VmRSS:".len()..].split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => Some(value * 1024),
        _ => None,
    }
}

/// Parses the `metrics_listen` setting: empty is off, else `HOST:PORT` (a name is resolved,
/// its first address is used). Any address the user names is accepted, loopback or not.
pub fn parse_listen(value: &str) -> Result<Option<SocketAddr>, MetricsError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let bad = |reason: String| MetricsError::BadListen {
        value: value.to_owned(),
        reason,
    };
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(Some(addr));
    }
    if !value.contains(':') {
        return Err(bad("no port".to_owned()));
    }
    let mut addrs = value.to_socket_addrs().map_err(|e| bad(e.to_string()))?;
    addrs
        .next()
        .map(Some)
        .ok_or_else(|| bad("the name has no address".to_owned()))
}

/// A running `/metrics` server. Dropping it without `stop` leaves it serving until the
/// runtime ends; `stop` frees the address before it returns.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// Binds `addr` (port 0 picks a free one) and serves `metrics` on the current tokio
    /// runtime.
    pub async fn bind(addr: SocketAddr, metrics: Metrics) -> Result<Self, MetricsError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| MetricsError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| MetricsError::Bind { addr, source })?;
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve(listener, metrics, stopped));
        tracing::info!("serving metrics at http://{addr}/metrics");
        Ok(Self {
            addr,
            stop: Some(stop),
            task,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops listening and drops open connections; the address is free when this returns.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
        tracing::info!("stopped serving metrics at {}", self.addr);
    }
}

async fn serve(listener: TcpListener, metrics: Metrics, mut stopped: oneshot::Receiver<()>) {
    let mut connections = JoinSet::new();
    loop {
        // Reap finished connections so the set stays small.
        while connections.try_join_next().is_some() {}
        let accepted = tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(err) => {
                // EMFILE and friends: wait a moment instead of spinning.
                tracing::debug!("metrics: accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if connections.len() >= MAX_CONNECTIONS {
            continue;
        }
        let metrics = metrics.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let metrics = metrics.clone();
                async move { Ok::<_, Infallible>(respond(&req, &metrics)) }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(err) = served {
                tracing::debug!("metrics: connection ended: {err}");
            }
        });
    }
    connections.shutdown().await;
}

fn respond(req: &Request<Incoming>, metrics: &Metrics) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, body: String| {
        Response::builder()
            .status(status)
            .header(hyper::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(Full::new(Bytes::from(body)))
            .expect("a valid response")
    };
    if req.uri().path() != "/metrics" {
        return text(StatusCode::NOT_FOUND, "jjfs serves /metrics\n".to_owned());
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n".to_owned());
        resp.headers_mut().insert(
            hyper::header::ALLOW,
            hyper::header::HeaderValue::from_static("GET, HEAD"),
        );
        return resp;
    }
    let mut resp = text(StatusCode::OK, metrics.render());
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(prometheus::TEXT_FORMAT),
    );
    resp
}

/// The `/metrics` endpoint as the `metrics_listen` setting wants it: off, or serving on one
/// address. The daemon keeps one and calls `set_listen` at start and whenever the setting
/// changes; no restart is needed.
#[derive(Debug)]
pub struct MetricsEndpoint {
    metrics: Metrics,
    /// The address asked for (port 0 stays 0 here) and the server bound for it.
    server: Option<(SocketAddr, MetricsServer)>,
}

impl MetricsEndpoint {
    pub fn new(metrics: Metrics) -> Self {
        Self {
            metrics,
            server: None,
        }
    }

    /// Serves on `listen` (None: stop serving). Asking for the address already served changes
    /// nothing. When the new address cannot be bound the error is returned and the previous
    /// address is served again, if it still can be.
    pub async fn set_listen(&mut self, listen: Option<SocketAddr>) -> Result<(), MetricsError> {
        if self.server.as_ref().map(|(asked, _)| *asked) == listen {
            return Ok(());
        }
        // Stopped first: the new address may share the old one's port.
        let previous = match self.server.take() {
            Some((asked, server)) => {
                server.stop().await;
                Some(asked)
            }
            None => None,
        };
        let Some(addr) = listen else {
            return Ok(());
        };
        match MetricsServer::bind(addr, self.metrics.clone()).await {
            Ok(server) => {
                self.server = Some((addr, server));
                Ok(())
            }
            Err(err) => {
                if let Some(previous) = previous
                    && let Ok(server) = MetricsServer::bind(previous, self.metrics.clone()).await
                {
                    self.server = Some((previous, server));
                }
                Err(err)
            }
        }
    }

    /// Where it serves now.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(|(_, s)| s.local_addr())
    }

    /// Stops serving (at daemon shutdown).
    pub async fn stop(&mut self) {
        if let Some((_, server)) = self.server.take() {
            server.stop().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_bytes() {
        let status = "Name:\tjjfsd\nVmHWM:\t  9000 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(12345 * 1024));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert!(resident_memory_bytes().unwrap() > 0);
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(parse_listen("").unwrap(), None);
        assert_eq!(parse_listen("  ").unwrap(), None);
        assert_eq!(
            parse_listen("127.0.0.1:9464").unwrap(),
            Some("127.0.0.1:9464".parse().unwrap())
        );
        assert_eq!(
            parse_listen("[::1]:9464").unwrap(),
            Some("[::1]:9464".parse().unwrap())
        );
        // A name the user gives is theirs to choose, loopback or not.
        assert!(
            parse_listen("localhost:9464")
                .unwrap()
                .unwrap()
                .ip()
                .is_loopback()
        );
        assert_eq!(
            parse_listen("0.0.0.0:9464").unwrap(),
            Some("0.0.0.0:9464".parse().unwrap())
        );
        for bad in ["9464", "127.0.0.1", "127.0.0.1:http", "127.0.0.1:99999"] {
            let err = parse_listen(bad).unwrap_err().to_string();
            assert!(err.contains("HOST:PORT"), "{bad}: {err}");
        }
    }

    /// The value of the series `name` with exactly `labels`, from a scrape parsed as a
    /// Prometheus server would parse it.
    fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found = scrape
            .samples
            .iter()
            .find(|s| {
                s.metric == name
                    && s.labels.len() == labels.len()
                    && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
            })
            .unwrap_or_else(|| panic!("no {name}{labels:?} in the scrape"));
        match &found.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            prometheus_parse::Value::Histogram(buckets) => {
                buckets.last().map(|b| b.count).unwrap_or_default()
            }
            prometheus_parse::Value::Summary(_) => panic!("{name} is a summary"),
        }
    }

    /// `curl` of `url`: status line and headers, then the body.
    fn curl(url: &str) -> (String, String) {
        let out = std::process::Command::new("curl")
            .args([
                "--silent",
                "--show-error",
                "--max-time",
                "10",
                "-D",
                "-",
                url,
            ])
            .output()
            .expect("curl runs");
        assert!(
            out.status.success(),
            "curl {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
        (head.to_owned(), body.to_owned())
    }

    fn scrape(addr: SocketAddr) -> prometheus_parse::Scrape {
        let (head, body) = curl(&format!("http://{addr}/metrics"));
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: text/plain; version=0.0.4"),
            "{head}"
        );
        prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned())))
            .expect("parses as Prometheus text")
    }

    fn run_blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::spawn(f).join().unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_scrape_parses_and_its_counters_move_with_syncs() {
        let metrics = Metrics::new();
        metrics.add_repo("default");
        metrics.add_remote("default", "origin");
        let mut endpoint = MetricsEndpoint::new(metrics.clone());
        endpoint
            .set_listen(Some("127.0.0.1:0".parse().unwrap()))
            .await
            .unwrap();
        let addr = endpoint.local_addr().unwrap();

        let first = run_blocking(move || scrape(addr));
        let repo = [("repo", "default")];
        assert_eq!(sample(&first, "jjfs_syncs_total", &repo), 0.0);
        assert_eq!(sample(&first, "jjfs_synced_files_total", &repo), 0.0);
        assert_eq!(
            sample(
                &first,
                "jjfs_remote_pushes_total",
                &[("repo", "default"), ("remote", "origin")]
            ),
            0.0
        );
        assert!(sample(&first, "jjfs_resident_memory_bytes", &[]) > 1e6);

        metrics.synced("default", 3, Duration::from_millis(40));
        metrics.synced("default", 1, Duration::from_secs(2));
        metrics.set_conflicts("default", 2);
        metrics.pushed("default", "origin");
        metrics.fetched("default", "origin");
        metrics.fetched("default", "origin");
        metrics.remote_failed("default", "origin");
        metrics.set_mounts("default", 2, 1);
        metrics.set_paused_mounts("default", 1);

        let second = run_blocking(move || scrape(addr));
        assert_eq!(sample(&second, "jjfs_syncs_total", &repo), 2.0);
        assert_eq!(sample(&second, "jjfs_synced_files_total", &repo), 4.0);
        assert_eq!(sample(&second, "jjfs_conflicts", &repo), 2.0);
        let remote = [("repo", "default"), ("remote", "origin")];
        assert_eq!(sample(&second, "jjfs_remote_pushes_total", &remote), 1.0);
        assert_eq!(sample(&second, "jjfs_remote_fetches_total", &remote), 2.0);
        assert_eq!(sample(&second, "jjfs_remote_failures_total", &remote), 1.0);
        let health = |h| [("repo", "default"), ("health", h)];
        assert_eq!(sample(&second, "jjfs_mounts", &health("healthy")), 2.0);
        assert_eq!(sample(&second, "jjfs_mounts", &health("unhealthy")), 1.0);
        assert_eq!(sample(&second, "jjfs_paused_mounts", &repo), 1.0);
        // The histogram: both observations counted, one of them within 50 ms.
        assert_eq!(sample(&second, "jjfs_propagation_seconds", &repo), 2.0);
        let hist = second
            .samples
            .iter()
            .find(|s| s.metric == "jjfs_propagation_seconds")
            .unwrap();
        let prometheus_parse::Value::Histogram(buckets) = &hist.value else {
            panic!(
                "jjfs_propagation_seconds is not a histogram: {:?}",
                hist.value
            );
        };
        let within = |le: f64| buckets.iter().find(|b| b.less_than == le).unwrap().count;
        assert_eq!(within(0.05), 1.0);
        assert_eq!(within(2.5), 2.0);

        endpoint.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_endpoint_rebinds_and_stops_without_a_restart() {
        let metrics = Metrics::new();
        let mut endpoint = MetricsEndpoint::new(metrics);
        endpoint
            .set_listen(Some("127.0.0.1:0".parse().unwrap()))
            .await
            .unwrap();
        let first = endpoint.local_addr().unwrap();
        run_blocking(move || scrape(first));

        // Another address: the old one stops answering, the new one answers.
        let other: SocketAddr = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap()
        };
        endpoint.set_listen(Some(other)).await.unwrap();
        assert_eq!(endpoint.local_addr(), Some(other));
        run_blocking(move || scrape(other));
        assert!(std::net::TcpStream::connect(first).is_err());

        // Other paths and methods are refused with their status.
        let (head, _) = run_blocking(move || curl(&format!("http://{other}/")));
        assert!(head.starts_with("HTTP/1.1 404"), "{head}");

        // An address in use is refused, and the current one keeps serving.
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let taken_addr = taken.local_addr().unwrap();
        let err = endpoint.set_listen(Some(taken_addr)).await.unwrap_err();
        assert!(err.to_string().contains("cannot serve metrics"), "{err}");
        assert_eq!(endpoint.local_addr(), Some(other));
        run_blocking(move || scrape(other));

        // Off: nothing listens, and the port is free again at once.
        endpoint.set_listen(None).await.unwrap();
        assert_eq!(endpoint.local_addr(), None);
        assert!(std::net::TcpStream::connect(other).is_err());
        drop(std::net::TcpListener::bind(other).expect("the port is free"));
    }
}
