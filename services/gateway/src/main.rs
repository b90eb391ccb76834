//! `tamga-gateway --config FILE`: the broker gateway alone, against RabbitMQ and
//! PostgreSQL (`tamga serve --config FILE` runs it with the workers in one process).
#![forbid(unsafe_code)]

// The binary's allocator: see the workspace Cargo.toml (glibc's malloc was a fifth of the
// gateway's CPU under load).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!(
            "usage: tamga-gateway --config FILE\n\nThe broker HTTP gateway against RabbitMQ \
             ([amqp]) and PostgreSQL ([database]).\nListens on [gateway] listen \
             (TAMGA_GATEWAY_LISTEN), default 127.0.0.1:8080; HTTPS and client certificates \
             with [gateway.tls].\nPushes notifications to brokers' callbacks (tamga gateway \
             callback set); metrics at [metrics] listen /metrics."
        );
        return ExitCode::SUCCESS;
    }
    let config = match args.as_slice() {
        [_, flag, file] if flag == "--config" => file.clone(),
        _ => {
            eprintln!("tamga-gateway: error: usage: tamga-gateway --config FILE (see --help)");
            return ExitCode::from(2);
        }
    };
    let cfg = match tamga_pipeline::Config::load(std::path::Path::new(&config)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tamga-gateway: error: {e}");
            return ExitCode::from(2);
        }
    };
    tamga_pipeline::site::init_logging(&cfg.log.format, &cfg.log.level);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tamga-gateway: error: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(tamga_gateway::serve(
        &cfg,
        tamga_gateway::Mode::GatewayOnly,
        &tamga_pipeline::open_key,
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tamga-gateway: error: {e}");
            ExitCode::from(2)
        }
    }
}
