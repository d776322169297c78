use mpp_actix::paid;

async fn post_exists(_check: mpp_actix::Check) -> Option<mpp_actix::Rejection> {
    None
}

#[paid(amount = "1.00", preconditions = [post_exists, post_exist])]
async fn handler() -> &'static str {
    let _ = post_exists;
    "paid"
}

fn main() {}
