use mpp_actix::paid;

struct Api;

impl Api {
    #[paid(amount = "1.00")]
    async fn handler(&self) -> &'static str {
        "paid"
    }
}

fn main() {}
