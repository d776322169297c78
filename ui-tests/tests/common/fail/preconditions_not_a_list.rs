use mpp_actix::paid;

async fn post_exists(_check: mpp_actix::Check) -> Option<mpp_actix::Rejection> {
    None
}

#[paid(amount = "1.00", preconditions = post_exists)]
async fn handler() -> &'static str {
    "paid"
}

fn main() {}
