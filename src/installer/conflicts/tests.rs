use super::*;

#[test]
fn socket_ports_come_from_tcp_listeners_only() {
    assert_eq!(listen_port("8001"), Some(8001));
    assert_eq!(listen_port("0.0.0.0:8001"), Some(8001));
    assert_eq!(listen_port("[::]:8001"), Some(8001));
    assert_eq!(listen_port("/run/solvit.sock"), None);
}
