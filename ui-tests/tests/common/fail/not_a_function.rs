use mpp_actix::paid;

#[paid(amount = "1.00")]
struct Report;

fn main() {
    let _ = Report;
}
