//! `tamga`: the command-line tool for brokers, border officers and operators.
//!
//! Contract (relied on by other tools; extend, never rename):
//! * `tamga verify --trust DIR --from CC [--at RFC3339] [--policy FILE] FILE...`
//!   exit 0 when every file is TOTAL_PASSED, 1 when any is not, 2 on usage or
//!   I/O errors. A hostile document is a verdict (exit 1), not an error.
//! * `tamga sign --key PEM --cert PEM [--chain PEM]... [--xades] [--alg ALG] FILE`
//! * `tamga countersign --key PEM|pkcs11:URI --cert PEM [--chain PEM]... --trust DIR
//!   --from CC [--at RFC3339] [--receipt FILE] FILE` — exit 0 countersigned on stdout,
//!   1 rejected (nothing on stdout, report on stderr, rejection receipt), 2 usage.
//! * `tamga receipt verify --trust DIR RECEIPT [--document FILE]`
//! * `tamga receipt qr RECEIPT [--svg FILE]` prints the QR payload (one line, `TMG1:`);
//!   `tamga receipt verify-qr --trust DIR [--bundle FILE] [--log FILE] PAYLOAD` prints JSON
//!   with `valid`, `result`, `decision`, `documentSha256`, `receiptId`; exit 0 authentic, 1
//!   not, 2 usage; `--log FILE` appends the check to an offline check log
//! * `tamga checkpoint upload --config FILE LOG` records an offline check log as `checked`
//!   events marked offline; prints the number recorded (idempotent); exit 1 when a line was
//!   refused
//! * `tamga pki demo --out DIR [--countries AZ,KZ,TR,KG,UZ] [--gost KZ|CC,...|none]`
//! * `tamga serve --config FILE` (the broker gateway and the workers);
//!   `tamga gateway token create --config FILE --broker NAME [--country CC] [--role ROLE]`
//!   prints the token alone (ROLE: broker — the default —, or officer, auditor, analyst for
//!   the pages); `tamga gateway token revoke --config FILE --broker NAME [--role ROLE]`;
//!   `tamga gateway callback set --config FILE --broker NAME --url URL` prints the callback's
//!   HMAC secret alone; `tamga gateway callback clear --config FILE --broker NAME`
//! * `tamga audit verify|prove|checkpoint` and `tamga migrate`: see `audit.rs`
//! * `tamga trust build --dir DIR --signer-key KEY --signer-cert PEM --sequence N
//!   --next-update RFC3339 > XX-tl.xml`, `tamga trust show FILE`, `tamga trust diff OLD NEW`,
//!   `tamga trust verify FILE --signer PEM...` (exit 0 accepted, 1 refused, 2 usage)
#![forbid(unsafe_code)]

// The binary's allocator: see the workspace Cargo.toml (glibc's malloc was a fifth of the
// gateway's CPU under load).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod audit;
mod bench_pipeline;
mod checkpoint;
mod countersign;
mod demo;
mod demo_pipeline;
mod gateway;
mod keys;
mod pki;
mod receipt;
mod receipt_qr;
mod run;
mod sign;
mod trust;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "tamga",
    version,
    about = "Cross-border recognition of e-signatures on customs declarations",
    long_about = "Tamga verifies a foreign XML signature (XML-DSig / XAdES) on a customs declaration \
against the mutual-recognition trust list, signs declarations for brokers, and makes demo PKIs."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verify signed declarations; prints a JSON report per file.
    Verify(verify::VerifyArgs),
    /// Sign a declaration (enveloped signature over the document element).
    Sign(sign::SignArgs),
    /// Verify, then countersign as the receiving authority and issue a signed receipt.
    Countersign(countersign::CountersignArgs),
    /// Signed receipts.
    Receipt(receipt::ReceiptArgs),
    /// Run the pipeline workers (verifier, countersigner, forwarder) in one process.
    Run(run::RunArgs),
    /// The audit trail: verify it against its signed checkpoints, prove events, checkpoint.
    Audit(audit::AuditArgs),
    /// Apply the database schema's migrations, as its owner ([database] migrate_url).
    Migrate(audit::MigrateArgs),
    /// Run the broker HTTP gateway and the workers in one process.
    Serve(gateway::ServeArgs),
    /// The broker gateway's API tokens and push callbacks.
    Gateway(gateway::GatewayArgs),
    /// Checkpoint checks: record an offline check log.
    Checkpoint(checkpoint::CheckpointArgs),
    /// Signed ETSI TS 119 612 trusted lists: build, show, diff, verify.
    Trust(trust::TrustArgs),
    /// Demo PKIs.
    Pki(PkiArgs),
    /// Load generators.
    Bench(BenchArgs),
    /// Run the end-to-end demo: PKI, signed declarations, verdicts, forgeries.
    Demo(demo::DemoArgs),
}

#[derive(Debug, Args)]
struct BenchArgs {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Publish N declarations through RabbitMQ and PostgreSQL; report throughput, latency, worker RSS.
    Pipeline(bench_pipeline::BenchPipelineArgs),
    /// The reference the pipeline benchmark compares with: a bare relay from
    /// tamga.inbound to tamga.outbound (confirm, then ack), no verification,
    /// no database: what the broker alone allows on this machine.
    #[command(hide = true)]
    Relay(bench_pipeline::RelayArgs),
}

#[derive(Debug, Args)]
struct PkiArgs {
    #[command(subcommand)]
    command: PkiCommand,
}

#[derive(Debug, Subcommand)]
enum PkiCommand {
    /// Make a demo PKI per country and the trust directory (`<OUT>/trust/<CC>/`).
    Demo {
        /// Output directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Countries (ISO 3166 alpha-2, comma-separated).
        #[arg(long, value_name = "CC,CC,...", default_value = "AZ,KZ,TR,KG,UZ")]
        countries: String,
        /// Countries that also get the GOST flavour: a GOST R 34.10-2015 512-bit
        /// (TC26-512-A, Streebog-512) root CA, issuing CA with GOST-signed CRLs,
        /// and GOST brokers (demo keys). `none` for none; countries not in
        /// --countries are ignored.
        #[arg(long, value_name = "CC,...|none", default_value = "KZ")]
        gost: String,
    },
}

/// Exit status: 0 all passed, 1 a verdict was negative, 2 usage or I/O.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                };
            }
            // One clear line (the contract); `--help` has the details.
            let text = e.to_string();
            let first = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ");
            let first = first.trim_start_matches("error: ");
            eprintln!("tamga: error: {first} (see --help)");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Verify(a) => verify::run(&a),
        Command::Sign(a) => sign::run(&a),
        Command::Countersign(a) => countersign::run(&a),
        Command::Receipt(a) => receipt::run(&a),
        Command::Run(a) => run::run(&a),
        Command::Audit(a) => audit::audit(&a),
        Command::Migrate(a) => audit::migrate(&a),
        Command::Serve(a) => gateway::serve(&a),
        Command::Gateway(a) => gateway::gateway(&a),
        Command::Checkpoint(a) => checkpoint::run(&a),
        Command::Trust(a) => trust::run(&a),
        Command::Pki(PkiArgs {
            command:
                PkiCommand::Demo {
                    out,
                    countries,
                    gost,
                },
        }) => pki::run(&out, &countries, &gost),
        Command::Demo(a) => demo::run(&a),
        Command::Bench(BenchArgs {
            command: BenchCommand::Pipeline(a),
        }) => bench_pipeline::run(&a),
        Command::Bench(BenchArgs {
            command: BenchCommand::Relay(a),
        }) => bench_pipeline::relay(&a),
    };
    match result {
        Ok(Outcome::Passed) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::from(1),
        Err(e) => {
            eprintln!("tamga: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// One stderr line when a partner's trust material is unusable: the command
/// still runs, and the affected declarations come out INDETERMINATE.
pub fn warn_degraded(trust: &tamga_trust::TrustList) {
    if let Some(w) = trust.degraded_warning() {
        eprintln!("tamga: {w}");
    }
}

/// Parses `--at`: RFC 3339, or now when absent.
pub fn parse_time(at: Option<&str>) -> anyhow::Result<i64> {
    match at {
        None => Ok(time::OffsetDateTime::now_utc().unix_timestamp()),
        Some(s) => time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .map(|t| t.unix_timestamp())
            .map_err(|e| anyhow::anyhow!("--at {s:?} is not an RFC 3339 time: {e}")),
    }
}
