//! Stored times keep the microsecond they were given, on the way in and out.

use tapvault_store::backup::{insert_tapscript, list_tapscripts, TapscriptRow};
use tapvault_store::db::{ensure_tenant, testdb};
use tapvault_store::Timestamp;

#[tokio::test]
async fn a_time_round_trips_to_the_microsecond_and_none_means_now() {
    let t = testdb::create().await;
    let tenant = ensure_tenant(&t.db.pool, "alice").await.unwrap();
    // An odd microsecond count: a float round trip (the old
    // to_timestamp(us / 1e6)) can land one microsecond off.
    let at = Timestamp::from_micros(1_700_000_000_123_457);
    let row = |label: &str, received_at| TapscriptRow {
        key_x: [7; 32],
        raw_key: None,
        root_hash: [label.len() as u8; 32],
        leaves: label.as_bytes().to_vec(),
        label: label.into(),
        received_at,
    };
    let before = Timestamp::now();
    assert!(insert_tapscript(&t.db, tenant, &row("imported", Some(at)))
        .await
        .unwrap());
    assert!(insert_tapscript(&t.db, tenant, &row("live", None))
        .await
        .unwrap());
    let mut conn = t.db.pool.acquire().await.unwrap();
    let got = list_tapscripts(&mut conn, tenant, None, 0, 10)
        .await
        .unwrap();
    assert_eq!(got[0].received_at, Some(at));
    let live = got[1].received_at.unwrap();
    assert!(
        live >= Timestamp::from_micros(before.micros() - 5_000_000),
        "{live:?}"
    );
    assert!(live <= Timestamp::from_micros(Timestamp::now().micros() + 5_000_000));
    assert_eq!(at.secs(), 1_700_000_000);
}
