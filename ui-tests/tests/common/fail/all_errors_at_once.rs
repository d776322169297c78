use mpp_actix::paid;

#[paid(amount = "1.005", currency = "USD", grants = 0, scope = "a b", method = "stirpe")]
async fn handler() -> &'static str {
    "paid"
}

fn main() {}
