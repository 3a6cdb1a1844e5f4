//! `vethtrace`: flags in, one line per problem out, exit codes that scripts can trust.

use std::process::ExitCode;

use clap::{Parser, error::ErrorKind};
use tracer::{
    check,
    cli::{Cli, Command, LogFormat},
    filter::{self, Filter},
    logging,
    reaper, top, trace,
};

/// Exit code when `--strict` is given and events were lost.
const EXIT_LOST: u8 = 3;
/// Exit code for bad flags.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    logging::init();
    // Anything unexpected is one line, never a backtrace.
    std::panic::set_hook(Box::new(|info| log::error!("internal error: {info}")));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let rendered = e.to_string();
            let first = rendered.lines().next().unwrap_or_default();
            log::error!("{} (see --help)", first.trim_start_matches("error: "));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if let Err(e) = cli.trace.check() {
        log::error!("{e} (see --help)");
        return ExitCode::from(EXIT_USAGE);
    }
    // JSON logs are for the tracer itself; check and the reaper write plain lines.
    logging::set_format(if cli.command.is_none() { cli.trace.log_format } else { LogFormat::Text });
    let result = match cli.command {
        Some(Command::Reaper) => reaper::run().map(|()| ExitCode::SUCCESS),
        Some(Command::Check(pods)) => Ok(run_check(&pods)),
        Some(Command::Pods(args)) => run_pods(&args),
        Some(Command::Policies(args)) => run_policies(&args),
        Some(Command::Top(args)) => run_top(&args),
        #[cfg(feature = "bench")]
        Some(Command::BenchCollector { events, pods, stage }) => {
            bench_collector(events, pods, stage.as_deref());
            Ok(ExitCode::SUCCESS)
        }
        None => run_trace(&cli.trace),
    };
    result.unwrap_or_else(|e| {
        log::error!("{e:#}");
        ExitCode::FAILURE
    })
}

/// `vethtrace check`: the report on standard output; exit 0 when tracing can work.
fn run_check(pods: &tracer::cli::PodArgs) -> ExitCode {
    let report = check::run(pods);
    print!("{}", report.text());
    if report.can_trace { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// `vethtrace pods`: the table (and with `--watch`, the changes) on standard output.
fn run_pods(args: &tracer::cli::PodsArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(tracer::show_pods::run(args))?;
    Ok(ExitCode::SUCCESS)
}

/// `vethtrace policies`: the table on standard output.
fn run_policies(args: &tracer::cli::PoliciesArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(tracer::show_policies::run(args))?;
    Ok(ExitCode::SUCCESS)
}

/// `vethtrace top`: the live view (or plain tables) until `q`, Ctrl-C or SIGTERM.
fn run_top(args: &tracer::cli::TopArgs) -> anyhow::Result<ExitCode> {
    let Ok(expression) = parse_expression(&args.expression, None) else { return Ok(ExitCode::from(EXIT_USAGE)) };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let counters = runtime.block_on(top::run(args, expression.as_ref()))?;
    log::info!("{} events lost", counters.lost);
    Ok(ExitCode::SUCCESS)
}

/// The filter expression; a bad one is said in one line (a usage error: before anything is
/// loaded).
fn parse_expression(words: &[String], file: Option<&std::path::Path>) -> Result<Option<Filter>, ()> {
    Filter::from_args(words, file).map_err(|e| log::error!("{e}"))
}

fn run_trace(args: &tracer::cli::TraceArgs) -> anyhow::Result<ExitCode> {
    let Ok(expression) = parse_expression(&args.expression, args.filter_file.as_deref()) else {
        return Ok(ExitCode::from(EXIT_USAGE));
    };
    if args.dump_filter {
        print!("{}", filter::dump(expression.as_ref())?);
        return Ok(ExitCode::SUCCESS);
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let counters = runtime.block_on(trace::run(args, expression.as_ref()))?;
    log::info!("{} events, {} lost, {} undecodable", counters.events, counters.lost, counters.undecodable);
    if args.journey {
        log::info!("{} journeys written, {} packets not followed", counters.journeys, counters.unfollowed);
    }
    if counters.not_held > 0 {
        log::info!(
            "{} netfilter drops written without their rule: too many were waiting for a read of the ruleset",
            counters.not_held
        );
    }
    if expression.is_some() {
        log::info!("{} packets matched by the expression's translation to eBPF, the others by the interpreter", counters.translated);
    }
    if counters.unknown_sections > 0 || counters.kernel_errors > 0 {
        log::info!(
            "{} record sections of an unknown kind or version skipped, {} in-kernel failures",
            counters.unknown_sections, counters.kernel_errors
        );
    }
    if args.strict && counters.lost > 0 {
        log::error!("--strict: {} events were lost", counters.lost);
        return Ok(ExitCode::from(EXIT_LOST));
    }
    Ok(ExitCode::SUCCESS)
}

/// One JSON line per stage: `{"stage":…,"events":…,"seconds":…,"events_per_sec":…}`.
#[cfg(feature = "bench")]
fn bench_collector(events: u64, pods: u32, only: Option<&str>) {
    use tracer::{
        annotate::bench::{self, Stages},
        output::Format,
    };
    let stages = [
        ("decode+annotate+format json", Stages::Full(Format::Json)),
        ("decode+annotate+format text", Stages::Full(Format::Text)),
        ("decode+annotate+format json, a new flow each", Stages::NewFlows(Format::Json)),
        ("decode+annotate+write pcapng", Stages::Pcapng),
        ("decode+format json", Stages::FormatOnly(Format::Json)),
        ("decode+annotate", Stages::Annotate),
    ];
    for (name, stages) in stages.into_iter().filter(|(name, _)| only.is_none_or(|o| o == *name)) {
        let r = bench::run(events, pods, stages);
        let line = serde_json::json!({
            "stage": name,
            "events": r.events,
            "seconds": r.seconds,
            "events_per_sec": r.events_per_sec(),
            "output_bytes": r.output_bytes,
        });
        println!("{line}");
    }
}
