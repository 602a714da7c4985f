//! A rule as `nft list ruleset` prints it, written from its JSON: the rules a verdict names
//! need their text, and asking nft for it again would cost another whole listing. Only the
//! shapes whose printing is known exactly are written (the tests hold each one to nft's own
//! listing); for anything else there is no text here, and `nft -a list chain` is asked.

use super::ruleset::Family;
use serde_json::Value as Json;

/// The text of a rule (its `expr` list and its `comment`), or `None` when a part of it is
/// not among the shapes written here.
pub fn rule(family: Family, exprs: &[Json], comment: Option<&str>) -> Option<String> {
    let mut parts = Vec::with_capacity(exprs.len());
    for e in exprs {
        parts.push(statement(family, e)?);
    }
    if let Some(c) = comment {
        parts.push(format!("comment {}", quoted(c)));
    }
    Some(parts.join(" "))
}

fn statement(family: Family, s: &Json) -> Option<String> {
    let (kind, body) = s.as_object()?.iter().next()?;
    Some(match kind.as_str() {
        "match" => matching(body)?,
        "accept" | "drop" | "return" | "continue" | "notrack" if body.is_null() => kind.clone(),
        "jump" | "goto" => format!("{kind} {}", body.get("target")?.as_str()?),
        "counter" => {
            let o = body.as_object()?;
            if o.len() != 2 {
                return None;
            }
            format!(
                "counter packets {} bytes {}",
                o.get("packets")?.as_u64()?,
                o.get("bytes")?.as_u64()?
            )
        }
        "log" => {
            let o = body.as_object()?;
            if o.len() != 1 {
                return None;
            }
            format!("log prefix {}", quoted(o.get("prefix")?.as_str()?))
        }
        "reject" => match (
            body.get("type").and_then(Json::as_str),
            body.get("expr").and_then(Json::as_str),
        ) {
            _ if body.is_null() => "reject".into(),
            (Some("tcp reset"), None) => "reject with tcp reset".into(),
            // The table family's own kind of port-unreachable is printed as plain `reject`.
            (Some(t), Some("port-unreachable")) if t == default_reject(family) => "reject".into(),
            (Some(t @ ("icmpx" | "icmp" | "icmpv6")), Some(code)) => {
                format!("reject with {t} {code}")
            }
            _ => return None,
        },
        "vmap" => {
            let key = expression(body.get("key")?)?;
            let data = body.get("data")?;
            if let Some(name) = data.as_str() {
                format!("{key} vmap {name}")
            } else {
                let entries: Option<Vec<String>> = data
                    .get("set")?
                    .as_array()?
                    .iter()
                    .map(|pair| {
                        let pair = pair.as_array()?;
                        Some(format!(
                            "{} : {}",
                            value(pair.first()?, false)?,
                            statement(family, pair.get(1)?)?
                        ))
                    })
                    .collect();
                format!("{key} vmap {{ {} }}", entries?.join(", "))
            }
        }
        // nft names the family of a nat in an inet table (`dnat ip to`): not written here.
        "redirect" if family != Family::Inet => {
            let o = body.as_object()?;
            if o.len() != 1 {
                return None;
            }
            format!("redirect to :{}", o.get("port")?.as_u64()?)
        }
        _ => return None,
    })
}

/// What a plain `reject` sends in a table of this family.
fn default_reject(family: Family) -> &'static str {
    match family {
        Family::Ip => "icmp",
        Family::Ip6 => "icmpv6",
        _ => "icmpx",
    }
}

fn matching(m: &Json) -> Option<String> {
    let left = m.get("left")?;
    let right = m.get("right")?;
    let op = match m.get("op")?.as_str()? {
        "==" | "in" => "",
        "!=" => "!= ",
        _ => return None,
    };
    let quote = is_interface(left);
    Some(format!(
        "{} {op}{}",
        expression(left)?,
        value(right, quote)?
    ))
}

/// Whether the field holds an interface name, which nft prints quoted.
fn is_interface(left: &Json) -> bool {
    matches!(
        left.get("meta")
            .and_then(|m| m.get("key"))
            .and_then(Json::as_str),
        Some("iifname" | "oifname" | "iif" | "oif")
    )
}

/// A match's left side.
fn expression(e: &Json) -> Option<String> {
    let (kind, body) = e.as_object()?.iter().next()?;
    Some(match kind.as_str() {
        "payload" => {
            let o = body.as_object()?;
            if o.len() != 2 {
                return None;
            }
            format!(
                "{} {}",
                o.get("protocol")?.as_str()?,
                o.get("field")?.as_str()?
            )
        }
        "meta" => {
            let o = body.as_object()?;
            let key = o.get("key")?.as_str()?;
            if o.len() != 1 {
                return None;
            }
            match key {
                "iif" | "oif" | "iifname" | "oifname" | "iifgroup" | "oifgroup" => key.to_string(),
                "l4proto" | "nfproto" | "protocol" | "mark" => format!("meta {key}"),
                _ => return None,
            }
        }
        "ct" => {
            let o = body.as_object()?;
            if o.len() != 1 {
                return None;
            }
            format!("ct {}", o.get("key")?.as_str()?)
        }
        "fib" => {
            let flags: Option<Vec<&str>> = body
                .get("flags")?
                .as_array()?
                .iter()
                .map(Json::as_str)
                .collect();
            format!(
                "fib {} {}",
                flags?.join(" . "),
                body.get("result")?.as_str()?
            )
        }
        "concat" => {
            let parts: Option<Vec<String>> = body.as_array()?.iter().map(expression).collect();
            parts?.join(" . ")
        }
        _ => return None,
    })
}

/// A match's right side, an element of a set, or a map's key.
fn value(v: &Json, quote: bool) -> Option<String> {
    Some(match v {
        Json::Number(n) => n.as_u64()?.to_string(),
        Json::String(s) if quote => quoted(s),
        Json::String(s) => s.clone(),
        Json::Bool(b) => if *b { "exists" } else { "missing" }.into(),
        Json::Array(words) => {
            let parts: Option<Vec<String>> = words.iter().map(|w| value(w, quote)).collect();
            parts?.join(",")
        }
        Json::Object(o) => {
            let (kind, body) = o.iter().next()?;
            match kind.as_str() {
                "set" => {
                    let items: Option<Vec<String>> = match body {
                        Json::Array(items) => items.iter().map(|i| value(i, quote)).collect(),
                        one => Some(vec![value(one, quote)?]),
                    };
                    format!("{{ {} }}", items?.join(", "))
                }
                "prefix" => format!(
                    "{}/{}",
                    body.get("addr")?.as_str()?,
                    body.get("len")?.as_u64()?
                ),
                "range" => {
                    let r = body.as_array()?;
                    format!("{}-{}", value(r.first()?, quote)?, value(r.get(1)?, quote)?)
                }
                "concat" => {
                    let parts: Option<Vec<String>> =
                        body.as_array()?.iter().map(|p| value(p, quote)).collect();
                    parts?.join(" . ")
                }
                _ => return None,
            }
        }
        Json::Null => return None,
    })
}

/// A string as nft prints it: in double quotes (nft refuses a quote inside one).
fn quoted(s: &str) -> String {
    format!("\"{s}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(family: Family, json: &str) -> Option<String> {
        let exprs: Vec<Json> = serde_json::from_str(json).unwrap();
        rule(family, &exprs, None)
    }

    #[test]
    fn common_rules_are_written_as_nft_prints_them() {
        assert_eq!(
            text(Family::Inet, r#"[{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "eth0"}}, {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 8001}}, {"reject": {"type": "tcp reset"}}]"#).as_deref(),
            Some(r#"iifname "eth0" tcp dport 8001 reject with tcp reset"#)
        );
        assert_eq!(
            text(
                Family::Inet,
                r#"[{"reject": {"type": "icmpx", "expr": "admin-prohibited"}}]"#
            )
            .as_deref(),
            Some("reject with icmpx admin-prohibited")
        );
        assert_eq!(
            text(Family::Inet, r#"[{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}, {"accept": null}]"#).as_deref(),
            Some("ct state established,related accept")
        );
        assert_eq!(
            text(Family::Ip, r#"[{"match": {"op": "!=", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"prefix": {"addr": "10.0.0.0", "len": 8}}}}, {"counter": {"packets": 3, "bytes": 180}}, {"drop": null}]"#).as_deref(),
            Some("ip saddr != 10.0.0.0/8 counter packets 3 bytes 180 drop")
        );
        // Shapes not written here: nft is asked instead.
        assert_eq!(
            text(
                Family::Inet,
                r#"[{"limit": {"rate": 10, "per": "second"}}, {"drop": null}]"#
            ),
            None
        );
        assert_eq!(
            text(Family::Inet, r#"[{"redirect": {"port": 8002}}]"#),
            None
        );
    }
}
