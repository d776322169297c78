use mpp_actix::paid;

// Stripe cannot charge a card less than 0.50 USD.
#[paid(amount = "0.30", currency = "USD", method = "stripe")]
async fn handler() -> &'static str {
    "paid"
}

fn main() {}
