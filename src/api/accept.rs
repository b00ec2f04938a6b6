//! `Accept` matching as WebOb's `acceptable_offers` does it: each offer takes the quality of the
//! most specific range that matches it; offers of quality 0 drop out; ties keep offer order.

/// The index in `offers` of the best acceptable one, or None when the header accepts none.
pub fn best(header: &str, offers: &[&str]) -> Option<usize> {
    let ranges: Vec<(String, String, f32)> = header.split(',').filter_map(parse_range).collect();
    let mut scored: Vec<(usize, f32)> = offers
        .iter()
        .enumerate()
        .filter_map(|(i, offer)| {
            let (otype, osub) = offer.split_once('/')?;
            let q = ranges
                .iter()
                .filter_map(|(t, s, q)| {
                    let specificity = match (t.as_str(), s.as_str()) {
                        ("*", "*") => 0,
                        (t, "*") if t.eq_ignore_ascii_case(otype) => 1,
                        (t, s) if t.eq_ignore_ascii_case(otype) && s.eq_ignore_ascii_case(osub) => {
                            2
                        }
                        _ => return None,
                    };
                    Some((specificity, *q))
                })
                .max_by(|a, b| a.0.cmp(&b.0))
                .map(|(_, q)| q)?;
            (q > 0.0).then_some((i, q))
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    scored.first().map(|(i, _)| *i)
}

fn parse_range(item: &str) -> Option<(String, String, f32)> {
    let mut parts = item.split(';');
    let media = parts.next()?.trim();
    let (t, s) = media.split_once('/')?;
    let mut q = 1.0;
    for param in parts {
        if let Some((k, v)) = param.split_once('=') {
            if k.trim().eq_ignore_ascii_case("q") {
                q = v.trim().parse().ok()?;
            }
        }
    }
    Some((t.trim().to_string(), s.trim().to_string(), q))
}

#[cfg(test)]
mod tests {
    use super::best;

    const OFFERS: [&str; 2] = ["text/html", "application/json"];

    #[test]
    fn matches_webob() {
        assert_eq!(best("", &OFFERS), None);
        assert_eq!(best("*/*", &OFFERS), Some(0));
        assert_eq!(best("application/json", &OFFERS), Some(1));
        assert_eq!(best("application/xml", &OFFERS), None);
        assert_eq!(best("text/*", &OFFERS), Some(0));
        assert_eq!(best("application/json, text/html;q=0.5", &OFFERS), Some(1));
        assert_eq!(best("*/*, text/html;q=0", &OFFERS), Some(1));
        assert_eq!(best("application/json, text/html", &OFFERS), Some(0));
    }
}
