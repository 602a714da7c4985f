use super::*;

#[test]
fn ports_come_from_tcp_binds_only() {
    assert_eq!(tcp_port("127.0.0.1:8001"), Some(8001));
    assert_eq!(tcp_port("[::1]:8002"), Some(8002));
    assert_eq!(tcp_port("unix:/run/x.sock"), None);
    assert_eq!(tcp_port("fd://3"), None);
    assert_eq!(tcp_port("${BIND_HOST}:${BIND_PORT}"), None);
    assert_eq!(tcp_port("localhost"), None);
}
