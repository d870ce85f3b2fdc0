//! `thawtrace scan` and `thawtrace demo`.

use std::io::{ErrorKind, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use thawtrace_analyzers::{Batch, Config, Finding, FindingKind, Incident, Summary};

/// A line on stderr. Unlike `eprintln!`, it does not panic when stderr
/// cannot be written to: there is nowhere left to say so.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod live;

use live::live;

use crate::export::otlp::{OtlpConfig, Protocol, Retry};
use crate::export::{Origin, spans};
use crate::input::{self, Budget, DecodeStats, Decoded, ExportPlace, InputError, Limits};
use crate::report;
use crate::report::printable::printable;
use thawtrace_analyzers::Collected;

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
    /// Export again the spans the Lambda collector could not deliver,
    /// from its dead-letter queue (SQS), deleting each message once its
    /// spans are exported. The IDs are derived, so a replay is idempotent.
    ReplaySpans {
        /// The queue (`THAWTRACE_DEAD_LETTER_QUEUE_URL` of the collector).
        #[arg(long, value_name = "URL")]
        queue_url: String,
        /// Where to export to; without it, the standard
        /// `OTEL_EXPORTER_OTLP_*` variables.
        #[arg(long, value_name = "URL")]
        otlp_endpoint: Option<String>,
        /// OTLP transport for --otlp-endpoint.
        #[arg(long, value_name = "PROTOCOL", default_value = "grpc", value_parser = ["grpc", "http/protobuf"])]
        otlp_protocol: String,
        /// The SQS endpoint (also AWS_ENDPOINT_URL).
        #[arg(long, value_name = "URL")]
        endpoint_url: Option<String>,
        /// Stop after this many messages.
        #[arg(long, value_name = "N", default_value_t = 10_000)]
        max_messages: u64,
    },
}

/// The largest size limit accepted, in MiB (1 TiB): bytes of it fit in
/// any 64-bit count.
const MAX_MIB: u64 = 1 << 20;

#[derive(clap::Args, Debug)]
#[command(group = clap::ArgGroup::new("live").args(["log_group", "log_group_prefix"]).multiple(true))]
struct ScanArgs {
    /// Files or directories (read recursively); `-` or nothing reads stdin.
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Refuse an input file whose compressed content (the file itself when
    /// gzipped, and every payload in it together) expands beyond this many
    /// MiB.
    #[arg(long, default_value_t = Limits::DECOMPRESSED_MB as u64, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=MAX_MIB))]
    max_decompressed_mb: u64,
    /// Stop at this many MiB of text for the whole run (files read plus
    /// everything decompressed): it bounds the scan's memory. Inputs past
    /// it are refused, naming this limit.
    #[arg(long, default_value_t = Limits::TOTAL_MB as u64, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=MAX_MIB))]
    max_total_mb: u64,
    /// Refuse (count and skip) log events or lines larger than this many KiB.
    #[arg(long, default_value_t = Limits::EVENT_KB as u64, value_name = "KIB", value_parser = clap::value_parser!(u64).range(1..=MAX_MIB << 10))]
    max_event_kb: u64,
    /// Follow symlinks to directories met while walking a directory
    /// (loops are found and reported). Paths named here are always followed.
    #[arg(long)]
    follow: bool,
    /// Also export the findings and invocations as OTLP spans to this
    /// endpoint (as the Lambda collector does). Without it, the standard
    /// `OTEL_EXPORTER_OTLP_*` variables are used when they name an endpoint.
    #[arg(long, value_name = "URL")]
    otlp_endpoint: Option<String>,
    /// The log group of CloudWatch Logs export objects (`create-export-task`
    /// to S3). Without it, the folders between the path named and the
    /// export's task folder (the export's prefix) name the group.
    #[arg(long, value_name = "GROUP", conflicts_with = "live")]
    export_group: Option<String>,
    /// Read a live log group instead of files (standard AWS credentials and
    /// region); repeat it to read several, concurrently.
    #[arg(long, value_name = "GROUP", conflicts_with = "paths")]
    log_group: Vec<String>,
    /// Read every live log group whose name starts with this
    /// (`/aws/lambda/`), as if each were named with --log-group.
    #[arg(long, value_name = "PREFIX", conflicts_with = "paths")]
    log_group_prefix: Option<String>,
    /// With --log-group: only streams whose names start with this.
    #[arg(long, value_name = "PREFIX", requires = "live")]
    log_stream_prefix: Option<String>,
    /// With --log-group: from this time, RFC 3339 or a duration back from now (`2h`, `30m`).
    #[arg(long, value_name = "WHEN", default_value = "1h", requires = "live")]
    since: String,
    /// With --log-group: until this time (default: now).
    #[arg(long, value_name = "WHEN", requires = "live")]
    until: Option<String>,
    /// With --log-group: the CloudWatch Logs endpoint (also AWS_ENDPOINT_URL).
    #[arg(long, value_name = "URL", requires = "live")]
    endpoint_url: Option<String>,
    /// OTLP transport for --otlp-endpoint.
    #[arg(long, value_name = "PROTOCOL", default_value = "grpc", value_parser = ["grpc", "http/protobuf"])]
    otlp_protocol: String,
    #[command(flatten)]
    thresholds: crate::settings::Thresholds,
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

/// A named input as read from disk or stdin: its log text, or the
/// subscription messages its payloads held, and what was skipped in it.
struct Source {
    name: String,
    texts: Vec<String>,
    /// Where each text came from in the input (`line 3, record 1`); empty
    /// for the input's own text.
    places: Vec<String>,
    stats: DecodeStats,
    /// Where the input sits in an S3 export's layout, read when its text
    /// is an export object.
    export: ExportPlace,
}

impl Source {
    fn text(name: String, text: String) -> Source {
        Source {
            texts: vec![text],
            places: vec![String::new()],
            stats: DecodeStats::default(),
            export: ExportPlace::of(Path::new(&name), Path::new("")),
            name,
        }
    }
}

/// Runs the CLI; returns the process exit code (0 ok, 2 unusable input).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::ReplaySpans {
            queue_url,
            otlp_endpoint,
            otlp_protocol,
            endpoint_url,
            max_messages,
        } => {
            let otlp = match otlp_endpoint {
                Some(endpoint) => Some(OtlpConfig {
                    endpoint: Some(endpoint),
                    protocol: Protocol::parse(&otlp_protocol).unwrap_or(Protocol::Grpc),
                    retry: Retry::default(),
                }),
                None => OtlpConfig::from_env(),
            };
            let Some(otlp) = otlp else {
                eprintln!(
                    "thawtrace: replay-spans needs --otlp-endpoint or OTEL_EXPORTER_OTLP_ENDPOINT"
                );
                return ExitCode::from(2);
            };
            match replay(&queue_url, &otlp, endpoint_url.as_deref(), max_messages) {
                Ok(done) => {
                    eprintln!(
                        "thawtrace: replayed {} message(s), {} span(s); {} message(s) not spans, left in the queue",
                        done.messages, done.spans, done.malformed
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("thawtrace: replay-spans: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Demo { format } => {
            let sources = vec![Source::text("demo".into(), crate::DEMO_EVENTS.to_owned())];
            run(
                sources,
                Vec::new(),
                format,
                None,
                &Limits::default(),
                &Config::default(),
                None,
            )
        }
        Command::Scan(args) => {
            // In range (clap): at most 2^40 bytes each.
            let bytes = |n: u64, shift: u32| usize::try_from(n << shift).unwrap_or(usize::MAX);
            let limits = Limits {
                max_decompressed_bytes: bytes(args.max_decompressed_mb, 20),
                max_event_bytes: bytes(args.max_event_kb, 10),
                max_total_bytes: bytes(args.max_total_mb, 20),
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
            let live_groups = !args.log_group.is_empty() || args.log_group_prefix.is_some();
            let (sources, failures) = if live_groups {
                match live(&args) {
                    Ok(sources) => (sources, Vec::new()),
                    Err(e) => {
                        eprintln!("thawtrace: {e}");
                        return ExitCode::from(2);
                    }
                }
            } else {
                load(&args.paths, args.follow, &limits)
            };
            let group = args.export_group.as_deref();
            run(
                sources,
                failures,
                args.format,
                group,
                &limits,
                &config,
                otlp,
            )
        }
    }
}

/// Finds the inputs and reads them one at a time, each within its
/// budget; what the run may hold in all is bounded by the total limit.
fn load(
    paths: &[PathBuf],
    follow: bool,
    limits: &Limits,
) -> (Vec<Source>, Vec<(String, InputError)>) {
    let stdin = PathBuf::from("-");
    let paths = if paths.is_empty() {
        std::slice::from_ref(&stdin)
    } else {
        paths
    };
    let found = input::find_inputs(paths, follow);
    for (name, why) in &found.skipped {
        eprintln!("thawtrace: {name}: skipped: {why}");
    }
    let mut failures = found.failures;
    let mut sources = Vec::new();
    let mut used = 0;
    let mut inputs = found.inputs.into_iter();
    while let Some(path) = inputs.next() {
        let name = if path == Path::new("-") {
            "stdin".to_owned()
        } else {
            path.display().to_string()
        };
        let mut budget = Budget::for_input(limits, used);
        // The path named that led to this input: an export's prefix is
        // read below it.
        let root = paths
            .iter()
            .find(|p| path.starts_with(p))
            .map_or(path.as_path(), PathBuf::as_path);
        let export = ExportPlace::of(Path::new(&name), root);
        match read_source(&path, &mut budget) {
            Ok(decoded) => {
                used = budget.total_used();
                sources.push(Source {
                    name,
                    texts: decoded.texts,
                    places: decoded.places,
                    stats: decoded.stats,
                    export,
                });
            }
            Err(e) if e.is_over_limit() && budget.total_left() == 0 => {
                failures.push((name, e));
                let rest = inputs.len();
                if rest > 0 {
                    failures.push((
                        format!("{rest} more input(s)"),
                        InputError::new("not read: the run's total (--max-total-mb) is used up"),
                    ));
                }
                break;
            }
            Err(e) => failures.push((name, e)),
        }
    }
    (sources, failures)
}

/// Reads and decodes one input within its budget: stdin for `-` (unless
/// it is a terminal: nothing was piped in), else the file.
fn read_source(path: &Path, budget: &mut Budget) -> Result<Decoded, InputError> {
    let read = if path == Path::new("-") {
        if std::io::stdin().is_terminal() {
            return Err(InputError::new("no input: give files or pipe logs in"));
        }
        input::read_input(std::io::stdin().lock(), budget)
    } else {
        std::fs::File::open(path)
            .map_err(|e| InputError::new(format!("cannot read: {e}")))
            .and_then(|f| input::read_input(f, budget))
    };
    read.and_then(|bytes| input::decode_input(bytes, budget))
}

/// An input's name, its texts, which the batch borrows, and its place in
/// an export's layout.
type InputTexts = (String, Vec<String>, ExportPlace);

/// Where each of an input's texts came from, beside what decoding the
/// input yielded.
type InputStats = (Vec<String>, DecodeStats);

/// Reads the inputs into one batch, analyzes it, writes the report and
/// what went wrong, and exports the spans when asked.
fn run(
    sources: Vec<Source>,
    mut failures: Vec<(String, InputError)>,
    format: Format,
    export_group: Option<&str>,
    limits: &Limits,
    config: &Config,
    otlp: Option<OtlpConfig>,
) -> ExitCode {
    // Each input's texts, which the batch borrows, and its stats beside
    // them, by position: no lookup by name.
    let (texts, mut stats): (Vec<InputTexts>, Vec<InputStats>) = sources
        .into_iter()
        .map(|s| ((s.name, s.texts, s.export), (s.places, s.stats)))
        .unzip();
    let mut batch = Batch::default();
    read_texts(
        &texts,
        &mut stats,
        limits,
        export_group,
        &mut batch,
        &mut failures,
    );
    let stats: Vec<DecodeStats> = stats.into_iter().map(|(_, s)| s).collect();
    let malformed = report_malformed(&texts, &stats, &mut failures);
    let mut collected = Collected::default();
    let summary = batch.analyze(config, &mut collected);
    let written = write_report(
        &mut std::io::stdout().lock(),
        format,
        &collected,
        &summary,
        malformed,
    );
    let unwritable = write_failed(written);
    for (name, e) in &failures {
        say!(
            "thawtrace: {}: {}",
            printable(name),
            printable(&e.to_string())
        );
    }
    if let Some(otlp) = otlp
        && let Err(e) = export(&collected, &otlp)
    {
        say!("thawtrace: {e}");
        return ExitCode::FAILURE;
    }
    if failures.is_empty() && !unwritable {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

/// True when the report could not be written, which is said on stderr. A
/// reader that went away (`| head -1`) is not an error: there is nothing
/// more to say to it.
fn write_failed(written: std::io::Result<()>) -> bool {
    match written {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => false,
        Err(e) => {
            say!("thawtrace: cannot write output: {e}");
            true
        }
        Ok(()) => false,
    }
}

/// Reads each input's texts into the batch, adding what each yielded to
/// the input's stats. A text that cannot be read fails its input, unless
/// it is one payload of the input: then it is a malformed record of it.
/// An input's own text that reads as an S3 export object is read as one,
/// in the group `export_group` names, else the one its place says.
fn read_texts<'a>(
    texts: &'a [InputTexts],
    stats: &mut [InputStats],
    limits: &Limits,
    export_group: Option<&str>,
    batch: &mut Batch<'a>,
    failures: &mut Vec<(String, InputError)>,
) {
    for ((name, file_texts, export), (places, file_stats)) in texts.iter().zip(stats) {
        for (text, place) in file_texts.iter().zip(places.iter()) {
            let read = if place.is_empty() && input::looks_like_export(text) {
                Ok(input::read_export(
                    export,
                    export_group,
                    text,
                    limits,
                    batch,
                ))
            } else {
                input::read_text(name, text, limits, batch)
            };
            match read {
                Ok(s) => {
                    file_stats.events += s.events;
                    file_stats.malformed += s.malformed;
                    // A payload's problems say which payload.
                    for p in s.problems {
                        if file_stats.problems.len() < 5 {
                            file_stats.problems.push(if place.is_empty() {
                                p
                            } else {
                                format!("{place}: {p}")
                            });
                        }
                    }
                }
                // One payload of a file unusable: a malformed record.
                Err(e) if !place.is_empty() => file_stats.skip(place, e),
                Err(e) => failures.push((name.clone(), e)),
            }
        }
    }
}

/// Says on stderr what was skipped as malformed in each input; an input
/// that yielded nothing but problems is unusable, a failure. Returns how
/// many lines or events were skipped in all.
fn report_malformed(
    texts: &[InputTexts],
    stats: &[DecodeStats],
    failures: &mut Vec<(String, InputError)>,
) -> u64 {
    let mut malformed = 0;
    for ((name, _, _), stats) in texts.iter().zip(stats) {
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
    malformed
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
            for r in report::risks(collected) {
                writeln!(out, "{}", report::text::render_risk(&r))?;
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
        for r in report::risks(collected) {
            say!(
                "thawtrace: keepalive risk of {}: {}",
                report::printable::printable(crate::export::spans::function_name(&r.log_group)),
                r.explain()
            );
        }
    }
    warn_of_blind_spots(summary);
    Ok(())
}

/// Replays the dead-letter queue `queue_url` to the OTLP endpoint.
fn replay(
    queue_url: &str,
    otlp: &OtlpConfig,
    endpoint_url: Option<&str>,
    max_messages: u64,
) -> Result<crate::export::dead_letter::Replayed, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the replay: {e}"))?;
    runtime.block_on(async {
        let exporter = otlp.build()?;
        let client = crate::export::dead_letter::client(endpoint_url).await;
        crate::export::dead_letter::replay(&client, queue_url, &exporter, &otlp.retry, max_messages)
            .await
    })
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
            + incidents.iter().filter(|i| i.kind() == k).count()
    };
    let neighbours: String = FindingKind::NEIGHBOURS
        .iter()
        .filter(|&&k| count(k) > 0)
        .map(|&k| format!(", {} {}", count(k), k.as_str()))
        .collect();
    // Streams of each execution mode, when any is not classic.
    let (managed, snapstart) = (summary.totals.managed_instances, summary.totals.snapstart);
    let modes = if managed + snapstart > 0 {
        let classic = summary.streams.saturating_sub(managed + snapstart);
        format!(" ({classic} classic, {managed} managed-instances, {snapstart} snapstart)")
    } else {
        String::new()
    };
    format!(
        "thawtrace: {} events in {} log streams{modes}, {} invocations; {} keepalive_freeze_timeout, {} keepalive_timeout{neighbours}{}{}{}{}",
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
        if summary.duplicates > 0 {
            format!("; {} duplicate events skipped", summary.duplicates)
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
        if summary.dropped_signals > 0 {
            format!(
                "; {} invocation starts, connect timeouts or idempotency keys past the tracking limits ignored \
                 (duplicate_invocation and connect_stall may be undercounted)",
                summary.dropped_signals
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
             log keepalive with GRPC_TRACE=keepalive (grpc-js), GRPC_TRACE=http_keepalive,http2_ping (grpcio) \
             or io.grpc.netty.level=FINE (grpc-java)",
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
