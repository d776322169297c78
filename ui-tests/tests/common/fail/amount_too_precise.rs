use mpp_actix::paid;

#[paid(amount = "5.001", currency = "USD")]
async fn handler() -> &'static str {
    "paid"
}

fn main() {}
