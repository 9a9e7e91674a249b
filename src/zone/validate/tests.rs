use super::*;

const HEAD: &str = r#"
origin = "example.com"
[soa]
primary = "ns1"
contact = "hostmaster@example.com"
serial = 1
[names."@"]
ns = ["ns1"]
[names.ns1]
a = "192.0.2.53"
"#;

fn check(extra: &str) -> (Option<Zone>, String) {
    let mut diags = Diagnostics::new();
    let text = format!("{HEAD}{extra}");
    let zone = validate_zone(Path::new("z.toml"), &text, &mut diags);
    (zone, diags.render())
}

#[test]
fn a_good_zone_has_no_diagnostics() {
    let (zone, out) = check("[names.www]\na = [\"192.0.2.1\", \"192.0.2.2\"]\n");
    assert_eq!(out, "");
    let zone = zone.expect("zone");
    assert_eq!(zone.origin.to_string(), "example.com.");
    let www = zone
        .nodes
        .iter()
        .find(|n| n.name.to_string() == "www.example.com.")
        .unwrap();
    assert_eq!(www.rrset(RecordType::A).unwrap().data.len(), 2);
    assert_eq!(zone.soa.rname.to_string(), "hostmaster.example.com.");
}

#[test]
fn bad_address_is_reported_with_position_and_help() {
    let (zone, out) = check("[names.www]\na = [\"192.0.2.1\", \"10.0.0.300\"]\n");
    assert!(zone.is_none());
    assert_eq!(
        out,
        "error: z.toml:12:19: names.www.a[1]: \"10.0.0.300\" is not an IPv4 address\n  help: write an IPv4 literal, e.g. \"192.0.2.10\"\n"
    );
}

#[test]
fn ipv6_under_a_says_where_it_belongs() {
    let (_, out) = check("[names.www]\na = \"2001:db8::1\"\n");
    assert!(
        out.contains("names.www.a: \"2001:db8::1\" is not an IPv4 address"),
        "{out}"
    );
    assert!(
        out.contains("help: IPv6 addresses go under `aaaa`"),
        "{out}"
    );
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let (_, out) =
        check("[names.a]\na = \"x\"\n[names.b]\naaaa = \"y\"\n[names.c]\nmx = \"ten mail\"\n");
    assert_eq!(out.matches("error:").count(), 3, "{out}");
    assert!(out.contains("names.a.a:"));
    assert!(out.contains("names.b.aaaa:"));
    assert!(out.contains("names.c.mx:"));
}

#[test]
fn unknown_keys_suggest_the_nearest() {
    let (_, out) = check("[names.www]\ncnmae = \"ns1\"\n");
    assert_eq!(
        out,
        "error: z.toml:12:1: names.www: unknown key `cnmae`\n  help: did you mean `cname`?\n"
    );
    let (_, out) = check("[names.www]\naddress = \"192.0.2.1\"\n");
    assert!(
        out.contains("help: allowed keys: ttl, a, aaaa, cname"),
        "{out}"
    );
    let (_, out) = check("[sao]\nx = 1\n");
    assert!(
        out.contains("sao: unknown key `sao`\n  help: did you mean `soa`?"),
        "{out}"
    );
}

#[test]
fn every_listed_top_level_key_is_a_section_the_validator_reads() {
    for key in ZONE_KEYS {
        let mut diags = Diagnostics::new();
        validate_zone(Path::new("z.toml"), &format!("{key} = 0\n"), &mut diags);
        let out = diags.render();
        assert!(!out.contains("unknown key"), "{key}: {out}");
    }
}

#[test]
fn cname_and_other_data_are_rejected() {
    let (_, out) = check("[names.www]\ncname = \"ns1\"\na = \"192.0.2.1\"\n");
    assert!(
        out.contains("names.www: CNAME cannot coexist with A at the same name"),
        "{out}"
    );
}

#[test]
fn cname_loops_are_spelled_out() {
    let (_, out) = check("[names.a]\ncname = \"b\"\n[names.b]\ncname = \"a\"\n");
    assert!(
        out.contains("CNAME chain loops: a.example.com. -> b.example.com. -> a.example.com."),
        "{out}"
    );
    assert_eq!(out.matches("error:").count(), 1, "{out}");
}

#[test]
fn data_below_a_delegation_is_rejected_but_glue_is_fine() {
    let (zone, out) =
        check("[names.sub]\nns = \"ns.sub\"\n[names.\"ns.sub\"]\na = \"192.0.2.9\"\n");
    assert_eq!(out, "");
    assert!(zone.is_some());
    let (_, out) = check("[names.sub]\nns = \"ns.sub\"\n[names.\"x.sub\"]\ntxt = \"hi\"\n");
    assert!(
        out.contains("below the delegation sub.example.com."),
        "{out}"
    );
}

#[test]
fn names_outside_the_zone_are_rejected() {
    let (_, out) = check("[names.\"www.example.org.\"]\na = \"192.0.2.1\"\n");
    assert!(out.contains("is outside the zone example.com."), "{out}");
}

#[test]
fn the_apex_needs_ns_and_a_soa() {
    let mut diags = Diagnostics::new();
    let z = validate_zone(
        Path::new("example.net.toml"),
        "[names.www]\na = \"192.0.2.1\"\n",
        &mut diags,
    );
    assert!(z.is_none());
    let out = diags.render();
    assert!(out.contains("soa: the zone has no [soa] table"), "{out}");
}

#[test]
fn toml_syntax_errors_have_a_position() {
    let mut diags = Diagnostics::new();
    validate_zone(Path::new("z.toml"), "origin = \"a\nttl = 1\n", &mut diags);
    let out = diags.render();
    assert!(out.starts_with("error: z.toml:1:"), "{out}");
    assert!(out.contains("invalid TOML"), "{out}");
}

#[test]
fn long_txt_is_split_into_character_strings() {
    let long = "x".repeat(600);
    let (zone, out) = check(&format!("[names.t]\ntxt = \"{long}\"\n"));
    assert_eq!(out, "");
    let zone = zone.unwrap();
    let t = zone
        .nodes
        .iter()
        .find(|n| n.name.to_string() == "t.example.com.")
        .unwrap();
    match &t.rrset(RecordType::TXT).unwrap().data[0] {
        RData::TXT(txt) => assert_eq!(
            txt.txt_data.iter().map(|p| p.len()).collect::<Vec<_>>(),
            vec![255, 255, 90]
        ),
        other => panic!("{other:?}"),
    }
}

const DCS: &str = r#"
[datacenters.ams]
addresses = ["192.0.2.10", "2001:db8:a::10"]
location = [52.37, 4.90]
[datacenters.nyc]
addresses = [{ address = "198.51.100.10", weight = 2 }]
country = "US"
"#;

#[test]
fn gslb_names_resolve_their_data_centers() {
    let (zone, out) = check(&format!(
        "{DCS}[names.cdn.gslb]\ndatacenters = [\"ams\", \"nyc\"]\nttl = \"20s\"\n"
    ));
    assert_eq!(out, "");
    let zone = zone.unwrap();
    let nyc = &zone.datacenters[1];
    assert_eq!(nyc.addresses[0].weight, 2);
    assert_eq!(nyc.continent.unwrap().as_str(), "NA");
    assert!(nyc.location.is_some(), "country centroid stands in");
    let cdn = zone.nodes.iter().find(|n| n.gslb.is_some()).unwrap();
    let g = cdn.gslb.as_ref().unwrap();
    assert_eq!(g.candidates, [DcIdx::new(0), DcIdx::new(1)]);
    assert_eq!(g.ttl.secs(), 20);
    assert_eq!(g.policy, Policy::Nearest);
}

#[test]
fn weights_and_sharing_keys_reach_the_model() {
    let (zone, out) = check(&format!(
        "{DCS}[datacenters.sin]\naddresses = [\"203.0.113.10\"]\nlocation = [1.35, 103.82]\nweight = 0\n\
         [names.cdn.gslb]\ndatacenters = [\"ams\", \"nyc\", \"sin\"]\nselect = \"sticky\"\n\
         spread = 2\nspill = 3\nband = \"500km\"\nsticky_ipv4_prefix = 20\n"
    ));
    assert_eq!(out, "");
    let zone = zone.unwrap();
    assert_eq!(
        zone.datacenters
            .iter()
            .map(|d| d.weight)
            .collect::<Vec<_>>(),
        [1, 1, 0]
    );
    let g = zone.nodes.iter().find_map(|n| n.gslb.as_ref()).unwrap();
    assert_eq!(
        g.select,
        Select::Sticky {
            v4_prefix: 20,
            v6_prefix: 56
        }
    );
    assert_eq!((g.spread, g.spill, g.band_km), (2, 3, Some(500.0)));

    let (zone, out) = check(&format!(
        "{DCS}[names.cdn.gslb]\ndatacenters = [\"ams\", \"nyc\"]\n"
    ));
    assert_eq!(out, "");
    let g = zone
        .unwrap()
        .nodes
        .into_iter()
        .find_map(|n| n.gslb)
        .unwrap();
    assert_eq!(
        (g.select, g.spread, g.spill, g.band_km),
        (Select::Rotate, 1, 1, None)
    );
}

#[test]
fn bad_weights_and_sharing_keys_are_reported_with_their_key_and_a_fix() {
    let dc = |extra: &str| {
        format!(
            "[datacenters.ams]\naddresses = [\"192.0.2.10\"]\nlocation = [52.37, 4.90]\n{extra}\n\
             [datacenters.nyc]\naddresses = [\"198.51.100.10\"]\ncountry = \"US\"\n"
        )
    };
    let gslb = |extra: &str| {
        format!(
            "{}[names.cdn.gslb]\ndatacenters = [\"ams\", \"nyc\"]\n{extra}\n",
            dc("")
        )
    };
    for (text, want) in [
        (
            format!("{}[names.x]\na = \"192.0.2.1\"\n", dc("weight = -1")),
            "datacenters.ams.weight: -1 is outside 0..=1000000",
        ),
        (
            format!("{}[names.x]\na = \"192.0.2.1\"\n", dc("weight = 1.5")),
            "datacenters.ams",
        ),
        (
            gslb("spread = 0"),
            "names.cdn.gslb.spread: 0 is outside 1..=2 (the number of candidates)",
        ),
        (
            gslb("spill = 3"),
            "names.cdn.gslb.spill: 3 is outside 1..=2 (the number of candidates)",
        ),
        (
            gslb("band = \"fast\""),
            "names.cdn.gslb.band: \"fast\" is not a distance",
        ),
        (
            gslb("select = \"random\""),
            "names.cdn.gslb.select: unknown select \"random\"",
        ),
        (
            gslb("select = \"sticky\"\nsticky_ipv4_prefix = 40"),
            "names.cdn.gslb.sticky_ipv4_prefix: 40 is outside 1..=32",
        ),
        (
            gslb("sticky_ipv6_prefix = 48"),
            "names.cdn.gslb.sticky_ipv6_prefix: a sticky prefix is given but select is \"rotate\"",
        ),
        (
            gslb("policy = \"map\"\nband = \"100km\"\n[names.cdn.gslb.map]\ndefault = [\"nyc\"]"),
            "names.cdn.gslb.band: band needs lists ordered by distance",
        ),
    ] {
        let (zone, out) = check(&text);
        assert!(zone.is_none(), "accepted: {text}");
        assert!(out.contains(want), "{want:?} not in:\n{out}");
        assert!(out.contains("error: z.toml:"), "no position:\n{out}");
        assert!(out.contains("help:"), "no help:\n{out}");
    }
}

#[test]
fn gslb_errors_name_the_data_center_and_the_fix() {
    let (_, out) = check(&format!(
        "{DCS}[names.cdn.gslb]\ndatacenters = [\"ams\", \"nyk\"]\n"
    ));
    assert!(out.contains("names.cdn.gslb.datacenters[1]: no data center \"nyk\" in this zone\n  help: did you mean \"nyc\"?"), "{out}");

    let (_, out) = check(&format!(
        "{DCS}[names.cdn.gslb]\ndatacenters = [\"ams\"]\npolicy = \"map\"\n[names.cdn.gslb.map]\ncountry.BR = [\"nyc\"]\nnetwork.\"10.0.0.1/8\" = [\"ams\"]\ncontinent.XX = [\"ams\"]\n"
    ));
    assert!(
        out.contains(
            "names.cdn.gslb.map.country.BR[0]: data center \"nyc\" is not a candidate of this name"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "has address bits set past its prefix length\n  help: did you mean \"10.0.0.0/8\"?"
        ),
        "{out}"
    );
    assert!(
        out.contains("names.cdn.gslb.map.continent.XX: \"XX\" is not a continent code"),
        "{out}"
    );

    let (_, out) = check(&format!(
        "{DCS}[names.cdn]\na = \"192.0.2.1\"\n[names.cdn.gslb]\ndatacenters = [\"ams\"]\n"
    ));
    assert!(
        out.contains("names.cdn.a: a GSLB name takes its A answers from its data centers"),
        "{out}"
    );
}

#[test]
fn nearest_needs_locations() {
    let (_, out) = check(
        "[datacenters.x]\naddresses = [\"192.0.2.1\"]\n[names.cdn.gslb]\ndatacenters = [\"x\"]\n",
    );
    assert!(
        out.contains("data center \"x\" has no location, which \"nearest\" needs"),
        "{out}"
    );
}

#[test]
fn in_zone_name_servers_need_addresses_and_no_cname() {
    let (_, out) = check("[names.sub]\nns = \"ns.sub\"\n");
    assert!(out.contains("names.sub.ns: name server ns.sub.example.com. is inside this zone but has no address records"), "{out}");
    assert!(out.contains("help: add glue"), "{out}");
    let (_, out) = check("[names.sub]\nns = \"alias\"\n[names.alias]\ncname = \"ns1\"\n");
    assert!(
        out.contains("names.sub.ns: name server alias.example.com. is a CNAME"),
        "{out}"
    );
    let (_, out) = check("[names.sub]\nns = \"ns.elsewhere.net.\"\n");
    assert_eq!(out, "");
}

#[test]
fn checks_are_validated_with_their_keys() {
    let (_, out) = check(
        "[checks.a]\ntype = \"icmp\"\n\
         [checks.b]\ntype = \"tcp\"\n\
         [checks.c]\ntype = \"http\"\ninterval = \"2s\"\ntimeout = \"3s\"\nhost = \"bad host\"\n\
         [datacenters.x]\naddresses = [\"192.0.2.1\"]\ncheck = \"d\"\nlocation = [0.0, 0.0]\n",
    );
    assert!(
        out.contains("checks.a.type: unknown check type \"icmp\""),
        "{out}"
    );
    assert!(
        out.contains("checks.b.port: a tcp check needs a port"),
        "{out}"
    );
    assert!(
        out.contains("checks.c.timeout: timeout 3s must be above zero and below the interval 2s"),
        "{out}"
    );
    assert!(
        out.contains("checks.c.host: \"bad host\" is not a host name"),
        "{out}"
    );
    assert!(
        out.contains("datacenters.x.check: no check \"d\" in this zone"),
        "{out}"
    );
}

#[test]
fn a_valid_check_reaches_the_addresses() {
    let (zone, out) = check(
        "[checks.web]\ntype = \"https\"\npath = \"/health\"\ninterval = \"1s\"\n\
         [datacenters.x]\naddresses = [\"192.0.2.1\", { address = \"192.0.2.2\", check = \"none\" }]\ncheck = \"web\"\nlocation = [0.0, 0.0]\n",
    );
    assert_eq!(out, "");
    let dc = &zone.unwrap().datacenters[0];
    let spec = dc.addresses[0].check.as_ref().unwrap();
    assert_eq!(spec.kind.port(), 443);
    assert_eq!(spec.timeout, std::time::Duration::from_millis(500));
    assert!(dc.addresses[1].check.is_none());
}

/// `[datacenters.x]` with `v4` IPv4 and `v6` IPv6 addresses.
fn datacenter_with(v4: usize, v6: usize) -> String {
    let addresses: Vec<String> = (0..v4)
        .map(|i| format!("\"10.0.{}.{}\"", i / 256, i % 256))
        .chain((0..v6).map(|i| format!("\"2001:db8::{i:x}\"")))
        .collect();
    format!(
        "[datacenters.x]\naddresses = [{}]\nlocation = [0.0, 0.0]\n",
        addresses.join(", ")
    )
}

#[test]
fn a_data_center_holds_at_most_64_addresses_of_each_family() {
    let (zone, out) = check(&datacenter_with(64, 64));
    assert_eq!(out, "");
    let dc = &zone.unwrap().datacenters[0];
    assert_eq!(dc.addresses.len(), 128);

    for (v4, v6) in [(65, 0), (0, 65)] {
        let (zone, out) = check(&datacenter_with(v4, v6));
        assert!(zone.is_none());
        assert_eq!(out.matches("error:").count(), 1, "{out}");
        assert!(
            out.contains(
                "datacenters.x.addresses[64]: more than 64 addresses of one family in a data center\n  help: split it into several data centers"
            ),
            "{out}"
        );
    }
}

#[test]
fn a_gslb_name_has_at_most_255_candidates() {
    let gslb = |count: usize, extra: &str| {
        let mut text = String::new();
        for i in 0..count {
            text += &format!(
                "[datacenters.d{i}]\naddresses = [\"10.1.{}.{}\"]\nlocation = [0.0, 0.0]\n",
                i / 256,
                i % 256
            );
        }
        let ids: Vec<String> = (0..count).map(|i| format!("\"d{i}\"")).collect();
        text + &format!(
            "[names.cdn.gslb]\ndatacenters = [{}]\n{extra}",
            ids.join(", ")
        )
    };
    let (zone, out) = check(&gslb(255, "max_datacenters = 255\n"));
    assert_eq!(out, "");
    let zone = zone.unwrap();
    let g = zone.nodes.iter().find_map(|n| n.gslb.as_ref()).unwrap();
    assert_eq!(g.candidates.len(), 255);
    assert_eq!(g.max_datacenters, 255);

    let (zone, out) = check(&gslb(256, ""));
    assert!(zone.is_none());
    assert!(
        out.contains(
            "names.cdn.gslb.datacenters: 256 candidates; at most 255 are supported\n  help: split the name, or group addresses into fewer data centers"
        ),
        "{out}"
    );

    let (_, out) = check(&gslb(1, "max_datacenters = 256\n"));
    assert!(
        out.contains("names.cdn.gslb.max_datacenters: 256 is outside 1..=255"),
        "{out}"
    );
}

#[test]
fn mx_at_an_alias_is_a_warning_not_an_error() {
    let (zone, out) = check("[names.m]\nmx = \"10 alias\"\n[names.alias]\ncname = \"ns1\"\n");
    assert!(zone.is_some(), "warnings do not reject the zone");
    assert!(out.starts_with("warning: z.toml:"), "{out}");
    assert!(
        out.contains("names.m.mx: MX target alias.example.com. is a CNAME"),
        "{out}"
    );
}
