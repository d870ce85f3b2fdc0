//! `thawtrace scan` and `thawtrace demo`.

use std::io::{ErrorKind, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use thawtrace_analyzers::{Batch, Config, Finding, FindingKind, IdempotencyKey, Incident, Summary};

/// A line on stderr. Unlike `eprintln!`, it does not panic when stderr
/// cannot be written to: there is nowhere left to say so.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod live;

use live::live;
pub use live::parse_duration_ms;

use crate::export::otlp::{OtlpConfig, Protocol, Retry};
use crate::export::{Collected, Origin, spans};
use crate::input::{self, DecodeStats, InputError, Limits};
use crate::report;
use crate::report::printable::printable;

/// Finds gRPC keepalive pings that AWS Lambda froze in flight, in CloudWatch Logs.
#[derive(Parser, Debug)]
#[command(name = "thawtrace", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Scan exported logs: subscription payloads, awslogs events, Kinesis
    /// events, `aws logs filter-log-events` output or JSON lines.
    Scan(Box<ScanArgs>),
    /// Scan a recorded sample (real grpc-js logs, really frozen) embedded in the binary.
    Demo {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(clap::Args, Debug)]
struct ScanArgs {
    /// Files or directories (read recursively); `-` or nothing reads stdin.
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Refuse compressed input that expands beyond this many MiB.
    #[arg(long, default_value_t = 64, value_name = "MIB")]
    max_decompressed_mb: usize,
    /// Refuse (count and skip) log events or lines larger than this many KiB.
    #[arg(long, default_value_t = 1024, value_name = "KIB")]
    max_event_kb: usize,
    /// Also export the findings and invocations as OTLP spans to this
    /// endpoint (as the Lambda collector does). Without it, the standard
    /// `OTEL_EXPORTER_OTLP_*` variables are used when they name an endpoint.
    #[arg(long, value_name = "URL")]
    otlp_endpoint: Option<String>,
    /// Read a live log group instead of files (standard AWS credentials and
    /// region).
    #[arg(long, value_name = "GROUP", conflicts_with = "paths")]
    log_group: Option<String>,
    /// With --log-group: only streams whose names start with this.
    #[arg(long, value_name = "PREFIX", requires = "log_group")]
    log_stream_prefix: Option<String>,
    /// With --log-group: from this time, RFC 3339 or a duration back from now (`2h`, `30m`).
    #[arg(
        long,
        value_name = "WHEN",
        default_value = "1h",
        requires = "log_group"
    )]
    since: String,
    /// With --log-group: until this time (default: now).
    #[arg(long, value_name = "WHEN", requires = "log_group")]
    until: Option<String>,
    /// With --log-group: the CloudWatch Logs endpoint (also AWS_ENDPOINT_URL).
    #[arg(long, value_name = "URL", requires = "log_group")]
    endpoint_url: Option<String>,
    /// OTLP transport for --otlp-endpoint.
    #[arg(long, value_name = "PROTOCOL", default_value = "grpc", value_parser = ["grpc", "http/protobuf"])]
    otlp_protocol: String,
    #[command(flatten)]
    thresholds: Thresholds,
}

/// The thresholds of the neighbouring failures: AWS's figures by default.
#[derive(clap::Args, Debug, Clone)]
pub struct Thresholds {
    /// A connection idle this long before its next use failed is a
    /// nat_idle_reset (the NAT gateway's idle timeout).
    #[arg(long, value_name = "DURATION", default_value = "350s", value_parser = duration_ms)]
    pub nat_idle_timeout: i64,
    /// Connect timeouts of many environments within this window are one
    /// connect_stall.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration_ms)]
    pub connect_stall_window: i64,
    /// How many environments (log streams) make a connect_stall.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub connect_stall_min_envs: u32,
    /// How long request IDs and idempotency keys are remembered to find a
    /// duplicate_invocation.
    #[arg(long, value_name = "DURATION", default_value = "6h", value_parser = duration_ms)]
    pub duplicate_window: i64,
    /// A JSON path in logged events whose value identifies an event
    /// (repeatable; `none` for no key). Default: SQS's messageId.
    #[arg(
        long = "idempotency-key",
        value_name = "PATH",
        default_value = "messageId"
    )]
    pub idempotency_keys: Vec<String>,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            nat_idle_timeout: 350_000,
            connect_stall_window: 60_000,
            connect_stall_min_envs: 3,
            duplicate_window: 6 * 3_600_000,
            idempotency_keys: vec!["messageId".into()],
        }
    }
}

impl Thresholds {
    /// The analyzers' settings with these thresholds.
    pub fn config(&self) -> Result<Config, String> {
        let keys = self
            .idempotency_keys
            .iter()
            .filter(|k| k.as_str() != "none")
            .map(|k| IdempotencyKey::new(k))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Config {
            nat_idle_timeout_ms: self.nat_idle_timeout,
            connect_stall_window_ms: self.connect_stall_window,
            connect_stall_min_envs: self.connect_stall_min_envs as usize,
            duplicate_window_ms: self.duplicate_window,
            idempotency_keys: keys.into(),
            ..Config::default()
        })
    }
}

fn duration_ms(s: &str) -> Result<i64, String> {
    parse_duration_ms(s)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// A paragraph per finding, for people.
    Text,
    /// One JSON object per finding per line.
    Json,
    /// One self-contained HTML page: a timeline per execution environment.
    Html,
}

/// A named input as read from disk or stdin.
struct Source {
    name: String,
    text: String,
}

/// Runs the CLI; returns the process exit code (0 ok, 2 unusable input).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo { format } => {
            let sources = vec![Source {
                name: "demo".into(),
                text: crate::DEMO_EVENTS.to_owned(),
            }];
            run(
                sources,
                Vec::new(),
                format,
                &Limits::default(),
                &Config::default(),
                None,
            )
        }
        Command::Scan(args) => {
            let limits = Limits {
                max_decompressed_bytes: args.max_decompressed_mb.saturating_mul(1 << 20),
                max_event_bytes: args.max_event_kb.saturating_mul(1 << 10),
            };
            let config = match args.thresholds.config() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("thawtrace: {e}");
                    return ExitCode::from(2);
                }
            };
            let otlp = match &args.otlp_endpoint {
                Some(endpoint) => Some(OtlpConfig {
                    endpoint: Some(endpoint.clone()),
                    protocol: Protocol::parse(&args.otlp_protocol).unwrap_or(Protocol::Grpc),
                    retry: Retry::default(),
                }),
                None => OtlpConfig::from_env(),
            };
            let (sources, failures) = match &args.log_group {
                Some(group) => match live(group, &args) {
                    Ok(source) => (vec![source], Vec::new()),
                    Err(e) => {
                        eprintln!("thawtrace: log group {group}: {e}");
                        return ExitCode::from(2);
                    }
                },
                None => load(&args.paths, &limits),
            };
            run(sources, failures, args.format, &limits, &config, otlp)
        }
    }
}

fn load(paths: &[PathBuf], limits: &Limits) -> (Vec<Source>, Vec<(String, InputError)>) {
    let mut files = Vec::new();
    let mut failures = Vec::new();
    let stdin = PathBuf::from("-");
    let paths = if paths.is_empty() {
        std::slice::from_ref(&stdin)
    } else {
        paths
    };
    for p in paths {
        collect(p, &mut files, &mut failures);
    }
    let mut sources = Vec::new();
    for path in files {
        let name = path.display().to_string();
        let bytes = if path == Path::new("-") {
            if std::io::stdin().is_terminal() {
                failures.push((
                    "stdin".into(),
                    InputError::new("no input: give files or pipe logs in"),
                ));
                continue;
            }
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf).map(|_| buf)
        } else {
            std::fs::read(&path)
        };
        match bytes
            .map_err(|e| InputError::new(format!("cannot read: {e}")))
            .and_then(|b| decode_file(b, limits))
        {
            Ok(text) => sources.push(Source { name, text }),
            Err(e) => failures.push((name, e)),
        }
    }
    (sources, failures)
}

fn collect(p: &Path, files: &mut Vec<PathBuf>, failures: &mut Vec<(String, InputError)>) {
    if p == Path::new("-") || p.is_file() {
        files.push(p.to_owned());
        return;
    }
    match std::fs::read_dir(p) {
        Ok(dir) => {
            let mut entries: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
            entries.sort();
            for e in entries {
                if e.is_dir() || e.is_file() {
                    collect(&e, files, failures);
                }
            }
        }
        Err(e) => failures.push((
            p.display().to_string(),
            InputError::new(format!("cannot read: {e}")),
        )),
    }
}

fn decode_file(bytes: Vec<u8>, limits: &Limits) -> Result<String, InputError> {
    let bytes = if input::is_gzip(&bytes) {
        let mut out = Vec::new();
        input::gunzip_into(&bytes, limits.max_decompressed_bytes, &mut out)?;
        out
    } else {
        bytes
    };
    match String::from_utf8(bytes) {
        Ok(s) => Ok(s),
        Err(e) => {
            let bytes = e.into_bytes();
            // Binary junk is unusable; stray invalid bytes in a text file are
            // left to the line reader, which counts and skips their lines.
            let sample = &bytes[..bytes.len().min(4096)];
            let controls = sample
                .iter()
                .filter(|&&b| b < 0x09 || (0x0e..0x20).contains(&b))
                .count();
            if controls * 10 > sample.len() {
                return Err(InputError::new("binary data, not log text"));
            }
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        }
    }
}

fn run(
    sources: Vec<Source>,
    mut failures: Vec<(String, InputError)>,
    format: Format,
    limits: &Limits,
    config: &Config,
    otlp: Option<OtlpConfig>,
) -> ExitCode {
    // Every text the batch borrows from: the sources and the subscription
    // messages they wrap (awslogs and Kinesis events), unwrapped first.
    let mut texts: Vec<(String, String)> = Vec::new();
    let mut per_file: Vec<(String, DecodeStats)> = Vec::new();
    let mut pending: Vec<(String, String)> =
        sources.into_iter().map(|s| (s.name, s.text)).collect();
    // Bounded: a wrapped payload holding another wrapped payload is unwrapped
    // at most this many times.
    for _ in 0..4 {
        let mut next = Vec::new();
        for (name, text) in pending {
            match input::unwrap_payloads(&text, limits) {
                Ok(Some(unwrapped)) => {
                    next.extend(unwrapped.texts.into_iter().map(|t| (name.clone(), t)));
                    per_file.push((name, unwrapped.stats));
                }
                Ok(None) => texts.push((name, text)),
                Err(e) => failures.push((name, e)),
            }
        }
        pending = next;
    }
    for (name, _) in pending {
        failures.push((
            name,
            InputError::new("payloads wrapped more than 4 levels deep"),
        ));
    }
    let mut batch = Batch::default();
    for (name, text) in &texts {
        match input::read_text(name, text, limits, &mut batch) {
            Ok(stats) => per_file.push((name.clone(), stats)),
            Err(e) => failures.push((name.clone(), e)),
        }
    }
    // A file that yielded nothing but problems is unusable.
    let mut merged: Vec<(String, DecodeStats)> = Vec::new();
    for (name, stats) in per_file {
        match merged.iter_mut().find(|(n, _)| *n == name) {
            Some((_, m)) => {
                m.events += stats.events;
                m.malformed += stats.malformed;
                m.problems.extend(stats.problems);
            }
            None => merged.push((name, stats)),
        }
    }
    let mut malformed = 0;
    for (name, stats) in &merged {
        malformed += stats.malformed;
        if stats.events == 0 && stats.malformed > 0 {
            let first = stats.problems.first().cloned().unwrap_or_default();
            failures.push((
                name.clone(),
                InputError::new(format!(
                    "no usable log events ({} malformed; first: {first})",
                    stats.malformed
                )),
            ));
        } else if stats.malformed > 0 {
            let name = printable(name);
            say!(
                "thawtrace: {name}: skipped {} malformed line(s) or event(s):",
                stats.malformed
            );
            for p in &stats.problems {
                say!("thawtrace:   {name}: {}", printable(p));
            }
        }
    }
    let mut collected = Collected::default();
    let summary = batch.analyze(config, &mut collected);
    let written = write_report(
        &mut std::io::stdout().lock(),
        format,
        &collected,
        &summary,
        malformed,
    );
    let unwritable = match written {
        // The reader went away (`| head -1`): nothing more to say to it.
        Err(e) if e.kind() == ErrorKind::BrokenPipe => false,
        Err(e) => {
            say!("thawtrace: cannot write output: {e}");
            true
        }
        Ok(()) => false,
    };
    for (name, e) in &failures {
        say!(
            "thawtrace: {}: {}",
            printable(name),
            printable(&e.to_string())
        );
    }
    if let Some(otlp) = otlp {
        if let Err(e) = export(&collected, &otlp) {
            say!("thawtrace: {e}");
            return ExitCode::FAILURE;
        }
    }
    if failures.is_empty() && !unwritable {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

/// Writes the findings and the summary (to `out` for people, to stderr
/// beside JSON and HTML), stopping at the first write that fails.
fn write_report(
    out: &mut impl Write,
    format: Format,
    collected: &Collected,
    summary: &Summary,
    malformed: u64,
) -> std::io::Result<()> {
    match format {
        Format::Html => writeln!(out, "{}", report::html::render(collected, summary))?,
        Format::Json => {
            for f in &collected.findings {
                writeln!(out, "{}", report::json::to_line(f))?;
            }
            for i in &collected.incidents {
                writeln!(out, "{}", report::json::incident_line(i))?;
            }
        }
        Format::Text => {
            for f in &collected.findings {
                writeln!(out, "{}", report::text::render(f))?;
            }
            for i in &collected.incidents {
                writeln!(out, "{}", report::text::render_incident(i))?;
            }
        }
    }
    let line = summary_line(
        summary,
        &collected.findings,
        &collected.incidents,
        malformed,
    );
    if format == Format::Text {
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    if format != Format::Text {
        say!("{line}");
    }
    warn_of_blind_spots(summary);
    Ok(())
}

/// Exports the spans as the Lambda collector does.
fn export(collected: &Collected, otlp: &OtlpConfig) -> Result<(), String> {
    let origin = Origin {
        region: std::env::var("AWS_REGION").ok(),
    };
    let spans = spans::spans(collected, &origin);
    let count = spans.len();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the OTLP exporter: {e}"))?;
    runtime.block_on(async {
        let exporter = otlp.build()?;
        let attempts = crate::export::otlp::export(&exporter, spans, &otlp.retry).await?;
        eprintln!("thawtrace: exported {count} spans over OTLP ({attempts} attempt(s))");
        Ok(())
    })
}

/// One line of totals.
fn summary_line(
    summary: &Summary,
    findings: &[Finding],
    incidents: &[Incident],
    malformed: u64,
) -> String {
    let count = |k: FindingKind| {
        findings.iter().filter(|f| f.kind == k).count()
            + incidents.iter().filter(|i| i.kind == k).count()
    };
    let neighbours: String = FindingKind::ALL[2..]
        .iter()
        .filter(|&&k| count(k) > 0)
        .map(|&k| format!(", {} {}", count(k), k.as_str()))
        .collect();
    format!(
        "thawtrace: {} events in {} log streams, {} invocations; {} keepalive_freeze_timeout, {} keepalive_timeout{neighbours}{}{}",
        summary.totals.lines,
        summary.streams,
        summary.totals.invocations,
        count(FindingKind::KeepaliveFreezeTimeout),
        count(FindingKind::KeepaliveTimeout),
        if malformed > 0 {
            format!("; {malformed} malformed skipped")
        } else {
            String::new()
        },
        if summary.totals.unpaired_timeouts > 0 {
            format!(
                "; {} ping timeouts whose ping is not in the input",
                summary.totals.unpaired_timeouts
            )
        } else {
            String::new()
        },
    )
}

/// What the input did not let the analysis see, on stderr.
fn warn_of_blind_spots(summary: &Summary) {
    if summary.totals.guessed_windows > 0 {
        say!(
            "thawtrace: warning: {} log stream(s) with keepalive lines have no platform records (START/END): \
             invocation boundaries are guessed from printed request IDs and freeze timeouts can be missed \
             or misnamed; include the platform lines in what you export or subscribe",
            summary.totals.guessed_windows
        );
        name_streams(&summary.guessed_streams, summary.totals.guessed_windows);
    }
    if summary.totals.unjudged > 0 {
        say!(
            "thawtrace: warning: {} log stream(s) have failed gRPC calls but no keepalive trace line: \
             their trace flags hide keepalive pings and timeouts, so none can be found or ruled out there; \
             log keepalive with GRPC_TRACE=keepalive (grpc-js) or GRPC_TRACE=http_keepalive,http2_ping (grpcio)",
            summary.totals.unjudged
        );
        name_streams(&summary.unjudged_streams, summary.totals.unjudged);
    }
}

/// The streams a warning is about, the first few of `total`.
fn name_streams(named: &[(String, String)], total: u64) {
    for (group, stream) in named {
        say!(
            "thawtrace:   {} {}",
            report::printable::printable(group),
            report::printable::printable(stream)
        );
    }
    let more = total.saturating_sub(named.len() as u64);
    if more > 0 {
        say!("thawtrace:   and {more} more");
    }
}
