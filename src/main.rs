use std::process::ExitCode;

use clap::Parser;

use authmail::cli::{Cli, Command};
use authmail::config::{LogFormat, Settings, Source};
use authmail::domain::Lang;
use authmail::mail::templates::Templates;
use authmail::{app, ops};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings =
        match Source::load(cli.env_file.as_deref()).and_then(|src| Settings::from_source(&src)) {
            Ok(s) => s,
            Err(e) => return usage_error(&e.to_string()),
        };
    init_logging(settings.log_format);
    let templates = match Templates::new(settings.templates_dir.as_deref()) {
        Ok(t) => t,
        Err(e) => return usage_error(&format!("TEMPLATES_DIR: {e}")),
    };
    let lang = cli
        .lang
        .as_deref()
        .and_then(Lang::parse)
        .unwrap_or(settings.mail_lang);
    // The settings file doctor checks: the one named, else .env when present.
    let env_file = cli
        .env_file
        .clone()
        .or_else(|| Some(std::path::PathBuf::from(".env")).filter(|p| p.exists()));
    if !matches!(cli.command, None | Some(Command::Serve)) {
        // The one-shot commands print for people and pipes: `authmail doctor | head`
        // should end quietly when the reader goes, as other Unix tools do,
        // not panic on a failed print. (`serve` keeps Rust's default.)
        // SAFETY: resetting a signal's disposition to its default touches no memory.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => report(app::serve(settings, templates).await),
            Command::Migrate => report(ops::migrate(&settings).await),
            Command::Doctor => ops::doctor(&settings, lang, env_file.as_deref()).await,
            Command::SendTest { to } => ops::send_test(&settings, &templates, lang, &to).await,
            Command::Outbox {
                status,
                limit,
                json,
            } => report(ops::outbox(&settings, status.as_deref(), limit, json).await),
        }
    })
}

fn usage_error(line: &str) -> ExitCode {
    eprintln!("authmail: {line}");
    ExitCode::from(2)
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("authmail: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
    }
}
