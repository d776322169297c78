use mpp_actix::paid;

#[paid(amount = "five")]
async fn handler() -> &'static str {
    "paid"
}

fn main() {}
