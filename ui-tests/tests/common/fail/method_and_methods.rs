use mpp_actix::paid;

#[paid(amount = "1.00", method = "card", methods = ["chain"])]
async fn handler() -> &'static str {
    "paid"
}

fn main() {}
