use mpp_actix::paid;

#[paid(amount = "1.00", method = "Stripe")]
async fn handler() -> &'static str {
    "paid"
}

fn main() {}
