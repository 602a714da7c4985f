use super::*;

#[test]
fn the_socket_unit_has_the_services_base_name_and_listens_on_every_interface() {
    let service = UnitName::parse("solvit.service").unwrap();
    let name = name_for(&service).unwrap();
    assert_eq!(name.as_str(), "solvit.socket");
    let text = render(&service, 8002);
    assert!(text.starts_with(MARK), "{text}");
    let file = crate::unit::parse_unit(Path::new("/x"), &text).unwrap();
    let value = |section: &str, key: &str| {
        file.entries(section, key)
            .map(|e| e.value.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(value("Socket", "ListenStream"), ["0.0.0.0:8002"]);
    assert_eq!(value("Socket", "BindIPv6Only"), ["both"]);
    assert_eq!(value("Socket", "Backlog"), ["2048"]);
    assert_eq!(value("Install", "WantedBy"), ["sockets.target"]);
    let instance = UnitName::parse("solvit@a.service").unwrap();
    assert_eq!(name_for(&instance).unwrap().as_str(), "solvit@a.socket");
}
