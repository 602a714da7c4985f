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
        "vmap" => vmap(family, body)?,
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

/// `KEY vmap NAME`, or `KEY vmap { VALUE : VERDICT, ... }`.
fn vmap(family: Family, body: &Json) -> Option<String> {
    let key = expression(body.get("key")?)?;
    let data = body.get("data")?;
    if let Some(name) = data.as_str() {
        return Some(format!("{key} vmap {name}"));
    }
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
    Some(format!("{key} vmap {{ {} }}", entries?.join(", ")))
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
mod tests;
