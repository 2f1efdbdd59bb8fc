//! Usage.

use super::*;

pub async fn usage_adds_up_per_day_channel_and_meter(store: Arc<dyn Store>) {
    let day = |d: u32| chrono::NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
    let ch = Some(ChannelId(42));
    let row =
        |d: u32, channel: Option<ChannelId>, meter: Meter, amount: i64| Usage { day: day(d), channel, meter, amount };
    store.add_usage(&[]).await.unwrap();
    store
        .add_usage(&[
            row(1, ch, Meter::EgressBytes, 1_000),
            row(1, None, Meter::EgressBytes, 7),
            row(1, ch, Meter::StoredBytes, 5_000),
            row(2, ch, Meter::CpuMs, 30),
        ])
        .await
        .unwrap();
    // A second flush adds to the first; a deletion takes stored bytes back.
    store
        .add_usage(&[
            row(1, ch, Meter::EgressBytes, 500),
            row(2, ch, Meter::StoredBytes, -2_000),
            row(3, ch, Meter::CpuMs, 1),
        ])
        .await
        .unwrap();
    let got = store.usage(day(1), day(3)).await.unwrap();
    assert_eq!(
        got,
        vec![
            row(1, None, Meter::EgressBytes, 7),
            row(1, ch, Meter::EgressBytes, 1_500),
            row(1, ch, Meter::StoredBytes, 5_000),
            row(2, ch, Meter::CpuMs, 30),
            row(2, ch, Meter::StoredBytes, -2_000),
        ]
    );
    assert!(store.usage(day(4), day(30)).await.unwrap().is_empty());
    assert_eq!(store.usage_before(day(1), Meter::StoredBytes).await.unwrap(), vec![]);
    assert_eq!(store.usage_before(day(3), Meter::StoredBytes).await.unwrap(), vec![(ch, 3_000)]);
    assert_eq!(store.usage_before(day(2), Meter::EgressBytes).await.unwrap(), vec![(None, 7), (ch, 1_500)]);
}
