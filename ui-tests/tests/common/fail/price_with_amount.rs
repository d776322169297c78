use mpp_actix::paid;

#[paid(price = "report.basic", amount = "5.00")]
async fn handler() -> &'static str {
    "paid"
}

fn main() {}
