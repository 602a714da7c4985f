use super::*;
use proptest::prelude::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn shown(s: &Sources) -> Vec<String> {
    s.prefixes().iter().map(ToString::to_string).collect()
}

#[test]
fn prefixes_are_written_back_as_the_fewest_blocks() {
    assert_eq!(
        shown(&Sources::prefix(V::Four, ip("10.1.2.3"), 8)),
        ["10.0.0.0/8"]
    );
    assert_eq!(shown(&Sources::all(V::Four)), ["0.0.0.0/0"]);
    assert_eq!(shown(&Sources::all(V::Six)), ["::/0"]);
    assert_eq!(
        shown(&Sources::range(V::Four, ip("10.0.0.1"), ip("10.0.0.6"))),
        ["10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6/32"]
    );
    let all_but_one = Sources::prefix(V::Four, ip("203.0.113.7"), 32).complement();
    assert_eq!(all_but_one.prefixes().len(), 32);
    assert!(!all_but_one.contains(ip("203.0.113.7")));
    assert!(all_but_one.contains(ip("203.0.113.8")));
}

#[test]
fn a_family_never_mixes_with_the_other() {
    assert!(Sources::prefix(V::Four, ip("::1"), 8).is_empty());
    assert!(!Sources::all(V::Four).contains(ip("::1")));
    assert!(Sources::range(V::Six, ip("10.0.0.1"), ip("10.0.0.2")).is_empty());
    // A range whose ends are of two families is no range, in either order.
    assert!(Sources::range(V::Four, ip("10.0.0.1"), ip("::ffff:10.0.0.9")).is_empty());
    assert!(Sources::range(V::Four, ip("::1"), ip("10.0.0.1")).is_empty());
    assert!(Sources::range(V::Six, ip("::1"), ip("10.0.0.1")).is_empty());
    assert!(Sources::range(V::Six, ip("10.0.0.1"), ip("::ffff:ffff")).is_empty());
}

fn arb_set() -> impl Strategy<Value = Sources> {
    prop::collection::vec((any::<u8>(), 0u8..=8), 0..5).prop_map(|blocks| {
        blocks
            .into_iter()
            .fold(Sources::none(V::Four), |s, (b, len)| {
                s.union(&Sources::prefix(
                    V::Four,
                    IpAddr::V4(Ipv4Addr::new(b, 0, 0, 0)),
                    len,
                ))
            })
    })
}

fn arb_big() -> impl Strategy<Value = Sources> {
    prop::collection::vec(
        (any::<u32>(), prop_oneof![Just(32u8), Just(24u8), 0u8..=32]),
        20..80,
    )
    .prop_map(|blocks| {
        blocks
            .into_iter()
            .fold(Sources::none(V::Four), |s, (a, len)| {
                s.union(&Sources::prefix(
                    V::Four,
                    IpAddr::V4(Ipv4Addr::from(a)),
                    len,
                ))
            })
    })
}

proptest! {
    /// The split that takes a few ranges out where they fall agrees with the set
    /// algebra, on every address.
    #[test]
    fn splitting_a_big_set_by_a_small_one_is_intersect_and_minus(a in arb_big(), b in arb_set(), probe in any::<u32>()) {
        let x = IpAddr::V4(Ipv4Addr::from(probe));
        let (inside, outside) = a.clone().split(&b);
        prop_assert_eq!(&inside, &a.intersect(&b));
        prop_assert_eq!(&outside, &a.minus(&b));
        prop_assert_eq!(outside.contains(x), a.contains(x) && !b.contains(x));
    }

    #[test]
    fn set_algebra_holds_on_every_address(a in arb_set(), b in arb_set(), probe in any::<u32>()) {
        let x = IpAddr::V4(Ipv4Addr::from(probe));
        prop_assert_eq!(a.union(&b).contains(x), a.contains(x) || b.contains(x));
        prop_assert_eq!(a.intersect(&b).contains(x), a.contains(x) && b.contains(x));
        prop_assert_eq!(a.minus(&b).contains(x), a.contains(x) && !b.contains(x));
        prop_assert_eq!(a.complement().contains(x), !a.contains(x));
        let (inside, outside) = a.clone().split(&b);
        prop_assert_eq!((inside.contains(x), outside.contains(x)), (a.contains(x) && b.contains(x), a.contains(x) && !b.contains(x)));
        prop_assert_eq!((&inside, &outside), (&a.intersect(&b), &a.minus(&b)));
        let back = a.prefixes().iter().fold(Sources::none(V::Four), |s, p| s.union(&Sources::prefix(V::Four, p.addr, p.len)));
        prop_assert_eq!(back, a.clone());
    }
}
