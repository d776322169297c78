//! Buys what a load run spends, from a running bench server.
//!
//! ```sh
//! bench-client credentials 127.0.0.1:8092 /paid 100000 creds.txt   # one paying Authorization value per line
//! bench-client session 127.0.0.1:8092 /metered                     # prints: Payment session="sess_…"
//! ```

#![allow(clippy::print_stdout)]

use std::fs::File;
use std::io::BufWriter;
use std::process::ExitCode;

const USAGE: &str =
    "usage: bench-client credentials ADDR PATH COUNT FILE | bench-client session ADDR PATH";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let outcome = match args.as_slice() {
        ["credentials", addr, path, count, file] => match count.parse::<usize>() {
            Ok(count) => File::create(file).and_then(|f| {
                mpp_bench::client::mint_credentials(addr, path, count, &mut BufWriter::new(f))
            }),
            Err(_) => Err(std::io::Error::other(format!(
                "COUNT {count:?} is not a number"
            ))),
        },
        ["session", addr, path] => mpp_bench::client::buy_session(addr, path).map(|session| {
            println!("Payment session=\"{}\"", session.id);
        }),
        _ => Err(std::io::Error::other(USAGE)),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-client: {e}");
            ExitCode::FAILURE
        }
    }
}
