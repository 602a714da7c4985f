use super::*;

#[test]
fn the_installers_verification_is_on_the_units_port() {
    let default = Target::of(&crate::config::Config::default());
    for port in [1, 8001, 9000, 65535] {
        let t = probe_target(port);
        assert_eq!(t.port, port);
        assert_eq!(
            (t.path, t.probe_timeout, t.host_names, t.from),
            (
                default.path.clone(),
                default.probe_timeout,
                default.host_names.clone(),
                default.from
            )
        );
    }
}
