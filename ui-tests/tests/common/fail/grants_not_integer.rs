use mpp_actix::paid;

#[paid(amount = "1.00", grants = "10")]
async fn handler() -> &'static str {
    "paid"
}

fn main() {}
