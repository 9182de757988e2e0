use std::process::ExitCode;

use clap::Parser;

use authmail::cli::{Cli, Command, KeysCommand};
use authmail::config::{LogFormat, Settings, Source};
use authmail::domain::Lang;
use authmail::mail::templates::Templates;
use authmail::{app, ops};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let flag_lang = cli.lang.as_deref().and_then(Lang::parse);
    let settings = match Source::load(cli.env_file.as_deref()) {
        Err(e) => return usage_error(&e.render(flag_lang.unwrap_or_default())),
        // Worded in --lang, else MAIL_LANG as given, like the rest of the CLI.
        Ok(src) => match Settings::from_source(&src) {
            Ok(s) => s,
            Err(e) => {
                let lang = flag_lang.or(src.mail_lang()).unwrap_or_default();
                return usage_error(&e.render(lang));
            }
        },
    };
    let lang = flag_lang.unwrap_or(settings.mail_lang);
    init_logging(settings.log_format);
    for warning in &settings.warnings {
        tracing::warn!("{}", warning.render(lang));
    }
    let templates = match Templates::new(settings.templates_dir.as_deref()) {
        Ok(t) => t,
        Err(e) => return usage_error(&format!("TEMPLATES_DIR: {e}")),
    };
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
            Command::Serve => report(app::serve(settings, templates, lang).await),
            Command::Migrate => report(ops::migrate(&settings).await),
            Command::Doctor => ops::doctor(&settings, lang, env_file.as_deref()).await,
            Command::SendTest { to } => ops::send_test(&settings, &templates, lang, &to).await,
            Command::Outbox {
                status,
                limit,
                json,
            } => ops::outbox(&settings, lang, status.as_deref(), limit, json).await,
            Command::Keys {
                command: KeysCommand::Rotate,
            } => ops::rotate_keys(&settings, lang).await,
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
