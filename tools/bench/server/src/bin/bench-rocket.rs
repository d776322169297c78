//! The Rocket bench server (see the crate docs). `PORT` (default 8091),
//! `BENCH_WORKERS` (default 1), `BENCH_MODE=bare` for the framework alone,
//! `MPP_SECRET_KEY`, `MPP_STORE`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = mpp_bench::port(8091);
    let rocket = mpp_bench::rocket_app::rocket(mpp_bench::bare_mode(), port, mpp_bench::config());
    rocket::tokio::runtime::Builder::new_multi_thread()
        .worker_threads(mpp_bench::workers())
        .thread_name("rocket-worker")
        .enable_all()
        .build()?
        .block_on(async move {
            eprintln!("bench-rocket on http://127.0.0.1:{port}");
            let _ = rocket.launch().await?;
            Ok(())
        })
}
