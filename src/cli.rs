//! The command line: `serve` (default), `doctor`, `send-test`, `migrate`, `outbox`, `keys`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "authmail",
    version,
    about = "Email verification codes with a durable SMTP outbox"
)]
pub struct Cli {
    /// Read settings from this file (default: .env in the working directory, when present)
    #[arg(long, global = true, value_name = "PATH")]
    pub env_file: Option<PathBuf>,

    /// Language of CLI output: zh-CN or en (default: MAIL_LANG)
    #[arg(long, global = true, value_name = "LANG", value_parser = ["zh-CN", "en"])]
    pub lang: Option<String>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP server and the mail worker (the default)
    Serve,
    /// Check the settings and the SMTP path step by step
    Doctor,
    /// Send one real test mail and print the server's reply
    SendTest {
        /// Recipient address
        #[arg(long, value_name = "ADDR")]
        to: String,
    },
    /// Apply database migrations and exit
    Migrate,
    /// List outbox messages, newest first
    Outbox {
        /// Only messages with this status
        #[arg(long, value_parser = ["queued", "sending", "sent", "failed"])]
        status: Option<String>,
        /// At most this many (1–500)
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=500))]
        limit: i64,
        /// One JSON object a line, with the admin API's fields
        #[arg(long)]
        json: bool,
    },
    /// Manage the keys that sign JWTs (POST /api/auth/jwt)
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Make a new signing key that signs from now on; the current one stays
    /// in /.well-known/jwks.json until every token it signed has expired.
    /// Safe while `serve` runs: every instance picks the new key up within seconds.
    Rotate,
}
