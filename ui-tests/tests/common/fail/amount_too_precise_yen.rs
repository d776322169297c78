use mpp_actix::paid;

#[paid(amount = "500.5", currency = "JPY")]
async fn handler() -> &'static str {
    "paid"
}

fn main() {}
