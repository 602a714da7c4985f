use super::*;

fn message(kind: u16, payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend(((HEADER + payload.len()) as u32).to_ne_bytes());
    m.extend(kind.to_ne_bytes());
    m.extend(2u16.to_ne_bytes());
    m.extend(1u32.to_ne_bytes());
    m.extend(0u32.to_ne_bytes());
    m.extend(payload);
    while m.len() % 4 != 0 {
        m.push(0);
    }
    m
}

#[test]
fn a_dump_lists_each_table_with_its_family() {
    let mut table = vec![1, 0, 0, 0];
    table.extend(11u16.to_ne_bytes());
    table.extend(NFTA_TABLE_NAME.to_ne_bytes());
    table.extend(b"filter\0\0");
    let mut datagram = message((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWTABLE, &table);
    let mut found = Vec::new();
    assert!(!parse_reply(&datagram, &mut found).unwrap());
    datagram.extend(message(NLMSG_DONE, &[0, 0, 0, 0]));
    assert!(parse_reply(&datagram, &mut found).unwrap());
    assert_eq!(
        found[0],
        Table {
            family: "inet",
            name: "filter".into()
        }
    );
    assert_eq!(found.len(), 2);
}

#[test]
fn a_refusal_is_the_kernels_errno() {
    let e = parse_reply(
        &message(NLMSG_ERROR, &(-1i32).to_ne_bytes()),
        &mut Vec::new(),
    )
    .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(1));
    // Less than a header: nothing yet, and no error.
    assert!(!parse_reply(&[1, 2, 3], &mut Vec::new()).unwrap());
}

#[test]
fn this_network_namespace_can_be_listed() {
    crate::test_support::network::private_network_with_ipv6();
    assert_eq!(tables().unwrap(), Tables::default());
    let status = std::process::Command::new("nft")
        .args(["add", "table", "inet", "t1"])
        .status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "THIS TEST NEEDS nft (nftables): run scripts/setup-test-env"
    );
    assert_eq!(
        tables().unwrap().nft,
        [Table {
            family: "inet",
            name: "t1".into()
        }]
    );
}

/// A list as long as a page-sized dump datagram: read whole, not cut short (the buffer must
/// hold what the kernel sends at once).
#[test]
fn a_long_table_list_is_read_whole() {
    crate::test_support::network::private_network_with_ipv6();
    let names: Vec<String> = (0..60)
        .map(|i| format!("table_with_a_long_name_{i:03}"))
        .collect();
    let script: String = names
        .iter()
        .map(|n| format!("add table inet {n}\n"))
        .collect();
    let mut nft = std::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("THIS TEST NEEDS nft (nftables): run scripts/setup-test-env");
    use std::io::Write;
    nft.stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(nft.wait().unwrap().success());
    let mut listed: Vec<String> = tables().unwrap().nft.into_iter().map(|t| t.name).collect();
    listed.sort();
    assert_eq!(listed, names);
}
