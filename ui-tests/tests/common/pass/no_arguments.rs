//! Every term from the configured defaults.
use mpp_actix::paid;

#[paid]
async fn handler() -> &'static str {
    "paid"
}

fn main() {}
