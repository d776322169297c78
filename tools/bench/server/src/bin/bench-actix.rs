//! The Actix-web bench server (see the crate docs). `PORT` (default 8092),
//! `BENCH_WORKERS` (default 1), `BENCH_MODE=bare` for the framework alone,
//! `MPP_SECRET_KEY`, `MPP_STORE`.

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = mpp_bench::port(8092);
    let gate = match mpp_bench::bare_mode() {
        true => None,
        false => Some(mpp_bench::actix_app::gate(mpp_bench::config()).await?),
    };
    let (server, port) = mpp_bench::actix_app::server(gate, port, mpp_bench::workers())?;
    eprintln!("bench-actix on http://127.0.0.1:{port}");
    server.await?;
    Ok(())
}
