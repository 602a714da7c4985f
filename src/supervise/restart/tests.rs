use super::*;

#[test]
fn the_first_restart_is_immediate_and_the_next_ones_back_off() {
    let ms = |n| Duration::from_millis(n);
    let waits: Vec<Duration> = (0..8).map(backoff).collect();
    assert_eq!(
        waits,
        [0, 100, 200, 400, 800, 1600, 2000, 2000].map(ms).to_vec()
    );
}

const BURST: u32 = 5;
const INTERVAL: Duration = Duration::from_secs(10);

/// The verdicts for crashes at these offsets (ms) from a start, with the default limit.
fn verdicts(offsets_ms: &[u64]) -> Vec<Option<Duration>> {
    let start = Instant::now();
    let mut recent = VecDeque::new();
    offsets_ms
        .iter()
        .map(|&ms| {
            let now = start + Duration::from_millis(ms);
            admit(&mut recent, now, BURST, INTERVAL)
        })
        .collect()
}

#[test]
fn a_master_crashing_every_few_seconds_for_a_minute_is_restarted_every_time() {
    for every_ms in [2_500, 3_000, 5_000] {
        let offsets: Vec<u64> = (0..=60_000 / every_ms).map(|n| n * every_ms).collect();
        let got = verdicts(&offsets);
        assert!(
            got.iter().all(Option::is_some),
            "every {every_ms} ms: {got:?}"
        );
    }
}

#[test]
fn one_crash_past_the_burst_within_the_interval_is_not_restarted() {
    let got = verdicts(&[0, 1_000, 2_000, 3_000, 4_000, 5_000]);
    assert!(got[..5].iter().all(Option::is_some), "{got:?}");
    assert_eq!(got[5], None);
    // Exactly one interval after the first crash, that one is forgotten.
    assert!(verdicts(&[0, 1_000, 2_000, 3_000, 4_000, 10_000])[5].is_some());
}

#[test]
fn a_refused_crash_is_not_counted_and_a_quiet_interval_starts_afresh() {
    let ms = |n| Some(Duration::from_millis(n));
    let got = verdicts(&[0, 100, 200, 300, 400, 500, 600, 20_000, 20_100]);
    assert_eq!(got[5], None);
    assert_eq!(got[6], None);
    assert_eq!(got[7..], [ms(0), ms(100)]);
}

#[test]
fn a_burst_of_zero_never_restarts() {
    let mut recent = VecDeque::new();
    assert_eq!(admit(&mut recent, Instant::now(), 0, INTERVAL), None);
    assert!(recent.is_empty());
}

proptest::proptest! {
    /// Whatever the crash times, no `interval`-long span holds more than `burst` admitted
    /// crashes, and a crash is refused only when `burst` admitted ones precede it within
    /// `interval`.
    #[test]
    fn admitted_crashes_never_exceed_the_burst_in_any_interval(
        gaps in proptest::collection::vec(0u64..4_000, 1..60),
        burst in 0u32..8,
    ) {
        let start = Instant::now();
        let mut recent = VecDeque::new();
        let mut admitted: Vec<Instant> = Vec::new();
        let mut at = start;
        for gap in gaps {
            at += Duration::from_millis(gap);
            let before = admitted
                .iter()
                .filter(|&&t| at.duration_since(t) < INTERVAL)
                .count();
            let verdict = admit(&mut recent, at, burst, INTERVAL);
            proptest::prop_assert_eq!(verdict.is_none(), before >= burst as usize);
            if verdict.is_some() {
                admitted.push(at);
            }
        }
    }
}
