use super::*;
use std::os::unix::net::UnixDatagram;

#[test]
fn a_dump_header_is_an_nlmsghdr_with_room_for_the_request() {
    let header = dump_header(60, 18, 7);
    assert_eq!(header.len(), HEADER_LEN);
    assert!(header.capacity() >= 60);
    let word = |at: usize| u32::from_ne_bytes(header[at..at + 4].try_into().unwrap());
    assert_eq!(word(0), 60);
    assert_eq!(u16::from_ne_bytes([header[4], header[5]]), 18);
    assert_eq!(u16::from_ne_bytes([header[6], header[7]]), 0x301);
    assert_eq!(word(8), 7);
    assert_eq!(word(12), 0);
}

/// A datagram is received whole; one larger than the buffer or empty is an error that names
/// the reply.
#[test]
fn a_datagram_is_whole_or_an_error_that_names_it() {
    let (ours, theirs) = UnixDatagram::pair().unwrap();
    let ours = OwnedFd::from(ours);
    let mut buffer = [0u8; 8];
    theirs.send(b"hello").unwrap();
    assert_eq!(receive(&ours, &mut buffer, "the list").unwrap(), b"hello");
    theirs.send(&[1; 9]).unwrap();
    let cut = receive(&ours, &mut buffer, "the list").unwrap_err();
    assert_eq!(cut.kind(), io::ErrorKind::InvalidData);
    assert_eq!(cut.to_string(), "the list cut short: larger than 8 bytes");
    theirs.send(&[1; 8]).unwrap();
    assert_eq!(receive(&ours, &mut buffer, "the list").unwrap(), [1; 8]);
    theirs.send(b"").unwrap();
    let empty = receive(&ours, &mut buffer, "the list").unwrap_err();
    assert_eq!(empty.to_string(), "empty the list");
}

#[test]
fn a_request_goes_in_one_datagram() {
    let (ours, theirs) = UnixDatagram::pair().unwrap();
    let ours = OwnedFd::from(ours);
    send_all(&ours, b"request").unwrap();
    let mut got = [0u8; 16];
    assert_eq!(theirs.recv(&mut got).unwrap(), 7);
    assert_eq!(&got[..7], b"request");
}
