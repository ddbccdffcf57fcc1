// `sqlx::migrate!` embeds migrations/ at compile time; without this, a new
// or edited migration is not picked up until the crate's sources change.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
