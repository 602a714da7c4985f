use super::*;

fn v(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

fn d(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

#[test]
fn the_launcher_stays_above_gunicorns_graceful_timeout() {
    assert_eq!(
        launcher(&v("-w 3 --graceful-timeout 60 app"), d(35)).0,
        d(65)
    );
    assert_eq!(
        launcher(&v("--graceful-timeout=10 app"), d(35)),
        (d(35), None)
    );
    assert_eq!(launcher(&v("--gra 35"), d(35)).0, d(40));
    assert_eq!(launcher(&v("--graceful-timeout nan"), d(35)), (d(35), None));
    assert_eq!(launcher(&v("app"), d(35)), (d(35), None));
}

#[test]
fn systemd_stays_above_the_launcher() {
    assert_eq!(systemd(&v("app")), (40, None));
    assert_eq!(systemd(&v("--graceful-timeout 10 app")), (40, None));
    let (secs, note) = systemd(&v("--graceful-timeout=45 app"));
    assert_eq!(secs, 55);
    assert_eq!(
        note.unwrap(),
        "--graceful-timeout 45: the launcher waits up to 50s for gunicorn to stop, systemd \
             up to TimeoutStopSec=55s"
    );
    assert_eq!(systemd(&v("--graceful-timeout 32.5")).0, 40);
    assert_eq!(systemd(&v("--graceful-timeout 35")).0, 45);
    let (secs, note) = systemd(&v("--graceful-timeout $G app"));
    assert_eq!(secs, 40);
    assert!(note.unwrap().contains("$G is not a number here"));
}

#[test]
fn every_budget_contains_the_one_inside_it() {
    for g in [0.0, 1.5, 29.0, 30.0, 35.0, 36.0, 100.25] {
        let args = v(&format!("--graceful-timeout {g}"));
        let (launcher, _) = launcher(&args, LAUNCHER_DEFAULT);
        let (secs, _) = systemd(&args);
        assert!(launcher > Duration::from_secs_f64(g), "{g}");
        assert!(Duration::from_secs(secs) > launcher, "{g}");
    }
}
