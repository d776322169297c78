use mpp_actix::paid;

#[paid(amount = "1.00", capture = "afterwards")]
async fn handler() -> &'static str {
    "paid"
}

fn main() {}
