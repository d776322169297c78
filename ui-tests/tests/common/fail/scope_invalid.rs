use mpp_actix::paid;

#[paid(amount = "1.00", scope = "report basic")]
async fn handler() -> &'static str {
    "paid"
}

fn main() {}
