//! Meridian's test GeoIP databases, built with the [`mmdb`](super::mmdb) writer.
//!
//! The same few networks (loopback "client" ranges, the documentation
//! prefixes and the four EDNS Client Subnet ranges of the peer benchmark) are
//! written in every layout Meridian reads: GeoIP2 City and Country, GeoLite2
//! ASN, ip-location-db's flat city files (separate IPv4 and IPv6 files) and
//! IPinfo Lite. [`synthetic_city`] builds a full-size City database for load
//! benchmarks. `geoip/README.md` lists the contents; `examples/make_test_geoip.rs`
//! writes the files.
//!
//! Facts shared with `shared/bench/peers/geoip/make_mmdb.py` (the peer
//! benchmark's database): the ECS networks and their places, 127.0.6.0/24 for
//! Johannesburg, 127.0.0.0/24 left unmatched, and [`BUILD_EPOCH`].
//!
//! Include this module next to `mmdb.rs`, as a sibling module:
//! `#[path = ".../tests/support/mmdb.rs"] mod mmdb;` and
//! `#[path = ".../tests/support/geoip_fixtures.rs"] mod geoip_fixtures;`.

// Each target that includes this file uses a different part of it.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::mmdb::{DataId, IpVersion, Value, Writer};

/// `build_epoch` of every test database (2023-11-14), so that reruns are
/// byte-identical; the same value the peer benchmark's generator uses.
pub(crate) const BUILD_EPOCH: u64 = 1_700_000_000;

/// `accuracy_radius` (km) of every fixture City record.
pub(crate) const ACCURACY_RADIUS_KM: u16 = 50;

/// A continent as GeoIP2 describes it.
#[derive(Debug)]
pub(crate) struct Continent {
    pub(crate) code: &'static str,
    pub(crate) name: &'static str,
    pub(crate) geoname_id: u32,
}

/// A country as GeoIP2 describes it.
#[derive(Debug)]
pub(crate) struct Country {
    pub(crate) iso_code: &'static str,
    pub(crate) name: &'static str,
    /// GeoNames id; left out of synthetic records, where it is not known.
    pub(crate) geoname_id: Option<u32>,
    pub(crate) continent: &'static Continent,
}

/// A fixture location: where a test network's clients are.
#[derive(Debug)]
pub(crate) struct Place {
    pub(crate) city: &'static str,
    /// ISO 3166-2 code (without the country prefix) and English name.
    pub(crate) subdivision: Option<(&'static str, &'static str)>,
    pub(crate) country: &'static Country,
    pub(crate) latitude: f64,
    pub(crate) longitude: f64,
    pub(crate) time_zone: &'static str,
}

/// An autonomous system announcing fixture networks.
#[derive(Debug)]
pub(crate) struct Asn {
    pub(crate) network: &'static str,
    pub(crate) number: u32,
    pub(crate) organization: &'static str,
    /// IPinfo's `as_domain`.
    pub(crate) domain: &'static str,
}

const AFRICA: Continent = Continent {
    code: "AF",
    name: "Africa",
    geoname_id: 6_255_146,
};
const ASIA: Continent = Continent {
    code: "AS",
    name: "Asia",
    geoname_id: 6_255_147,
};
const EUROPE: Continent = Continent {
    code: "EU",
    name: "Europe",
    geoname_id: 6_255_148,
};
const NORTH_AMERICA: Continent = Continent {
    code: "NA",
    name: "North America",
    geoname_id: 6_255_149,
};
const SOUTH_AMERICA: Continent = Continent {
    code: "SA",
    name: "South America",
    geoname_id: 6_255_150,
};
const OCEANIA: Continent = Continent {
    code: "OC",
    name: "Oceania",
    geoname_id: 6_255_151,
};

const fn country(
    iso_code: &'static str,
    name: &'static str,
    geoname_id: u32,
    continent: &'static Continent,
) -> Country {
    Country {
        iso_code,
        name,
        geoname_id: Some(geoname_id),
        continent,
    }
}

const NL: Country = country("NL", "Netherlands", 2_750_405, &EUROPE);
const GB: Country = country("GB", "United Kingdom", 2_635_167, &EUROPE);
const US: Country = country("US", "United States", 6_252_001, &NORTH_AMERICA);
const SG: Country = country("SG", "Singapore", 1_880_251, &ASIA);
const CN: Country = country("CN", "China", 1_814_991, &ASIA);
const BR: Country = country("BR", "Brazil", 3_469_034, &SOUTH_AMERICA);
const AU: Country = country("AU", "Australia", 2_077_456, &OCEANIA);
const ZA: Country = country("ZA", "South Africa", 953_987, &AFRICA);

/// Amsterdam, NL (EU).
pub(crate) const AMSTERDAM: Place = Place {
    city: "Amsterdam",
    subdivision: Some(("NH", "Noord-Holland")),
    country: &NL,
    latitude: 52.3676,
    longitude: 4.9041,
    time_zone: "Europe/Amsterdam",
};
/// New York, US (NA).
pub(crate) const NEW_YORK: Place = Place {
    city: "New York",
    subdivision: Some(("NY", "New York")),
    country: &US,
    latitude: 40.7128,
    longitude: -74.0060,
    time_zone: "America/New_York",
};
/// Singapore, SG (AS); no subdivision, as in MaxMind's data.
pub(crate) const SINGAPORE: Place = Place {
    city: "Singapore",
    subdivision: None,
    country: &SG,
    latitude: 1.2897,
    longitude: 103.8501,
    time_zone: "Asia/Singapore",
};
/// São Paulo, BR (SA).
pub(crate) const SAO_PAULO: Place = Place {
    city: "São Paulo",
    subdivision: Some(("SP", "São Paulo")),
    country: &BR,
    latitude: -23.5505,
    longitude: -46.6333,
    time_zone: "America/Sao_Paulo",
};
/// Sydney, AU (OC).
pub(crate) const SYDNEY: Place = Place {
    city: "Sydney",
    subdivision: Some(("NSW", "New South Wales")),
    country: &AU,
    latitude: -33.8688,
    longitude: 151.2093,
    time_zone: "Australia/Sydney",
};
/// Johannesburg, ZA (AF): the peer benchmark's sixth loopback client range.
pub(crate) const JOHANNESBURG: Place = Place {
    city: "Johannesburg",
    subdivision: Some(("GP", "Gauteng")),
    country: &ZA,
    latitude: -26.2041,
    longitude: 28.0473,
    time_zone: "Africa/Johannesburg",
};
/// London, GB (EU): ECS range 81.2.69.0/24.
pub(crate) const LONDON: Place = Place {
    city: "London",
    subdivision: Some(("ENG", "England")),
    country: &GB,
    latitude: 51.5142,
    longitude: -0.0931,
    time_zone: "Europe/London",
};
/// Milton (Seattle area), US (NA): ECS range 216.160.83.0/24.
pub(crate) const MILTON: Place = Place {
    city: "Milton",
    subdivision: Some(("WA", "Washington")),
    country: &US,
    latitude: 47.2513,
    longitude: -122.3149,
    time_zone: "America/Los_Angeles",
};
/// Changchun, CN (AS): ECS range 175.16.199.0/24.
pub(crate) const CHANGCHUN: Place = Place {
    city: "Changchun",
    subdivision: Some(("JL", "Jilin")),
    country: &CN,
    latitude: 43.8800,
    longitude: 125.3228,
    time_zone: "Asia/Shanghai",
};

/// Every network of the test databases and where its clients are.
///
/// 127.0.x.0/24 are the loopback "client" ranges the benchmarks send from;
/// the documentation prefixes and the four public ranges (same places as the
/// peer benchmark's database) are used as EDNS Client Subnet addresses.
pub(crate) const NETWORKS: &[(&str, &Place)] = &[
    ("127.0.1.0/24", &AMSTERDAM),
    ("192.0.2.0/25", &AMSTERDAM),
    ("2001:db8:1::/48", &AMSTERDAM),
    ("127.0.2.0/24", &NEW_YORK),
    ("198.51.100.0/25", &NEW_YORK),
    ("2001:db8:2::/48", &NEW_YORK),
    ("127.0.3.0/24", &SINGAPORE),
    ("203.0.113.0/25", &SINGAPORE),
    ("2001:db8:3::/48", &SINGAPORE),
    ("127.0.4.0/24", &SAO_PAULO),
    ("192.0.2.128/25", &SAO_PAULO),
    ("2001:db8:4::/48", &SAO_PAULO),
    ("127.0.5.0/24", &SYDNEY),
    ("198.51.100.128/25", &SYDNEY),
    ("2001:db8:5::/48", &SYDNEY),
    ("127.0.6.0/24", &JOHANNESBURG),
    ("81.2.69.0/24", &LONDON),
    ("216.160.83.0/24", &MILTON),
    ("175.16.199.0/24", &CHANGCHUN),
    ("200.160.2.0/24", &SAO_PAULO),
];

/// Addresses no test database has data for. 127.0.0.1 in particular is the
/// benchmarks' "unmatched" client.
pub(crate) const UNMATCHED: &[&str] = &[
    "127.0.0.1",
    "10.1.2.3",
    "203.0.113.200",
    "8.8.8.8",
    "::1",
    "2001:db8:ffff::1",
];

/// The autonomous systems of the ASN and IPinfo Lite databases: documentation
/// (64496–64511, 65536–65551) and private-use (64512+) numbers only.
#[rustfmt::skip]
pub(crate) const ASNS: &[Asn] = &[
    asn("127.0.1.0/24",    64501, "Example Access Amsterdam",    "ams.example.net"),
    asn("127.0.2.0/24",    64502, "Example Access New York",     "nyc.example.net"),
    asn("127.0.3.0/24",    64503, "Example Access Singapore",    "sin.example.net"),
    asn("127.0.4.0/24",    64504, "Example Access Sao Paulo",    "gru.example.net"),
    asn("127.0.5.0/24",    64505, "Example Access Sydney",       "syd.example.net"),
    asn("127.0.6.0/24",    64506, "Example Access Johannesburg", "jnb.example.net"),
    asn("192.0.2.0/24",    64496, "TEST-NET-1 Documentation",    "test-net-1.example"),
    asn("198.51.100.0/24", 64510, "TEST-NET-2 Documentation",    "test-net-2.example"),
    asn("203.0.113.0/24",  64511, "TEST-NET-3 Documentation",    "test-net-3.example"),
    asn("2001:db8::/32",   65536, "IPv6 Documentation",          "ipv6-doc.example"),
    asn("81.2.69.0/24",    64512, "Example ECS London",          "lon.example.org"),
    asn("216.160.83.0/24", 64513, "Example ECS Milton",          "sea.example.org"),
    asn("175.16.199.0/24", 64514, "Example ECS Changchun",       "cgq.example.org"),
    asn("200.160.2.0/24",  64515, "Example ECS Sao Paulo",       "gru.example.org"),
];

const fn asn(
    network: &'static str,
    number: u32,
    organization: &'static str,
    domain: &'static str,
) -> Asn {
    Asn {
        network,
        number,
        organization,
        domain,
    }
}

fn net(s: &str) -> IpNet {
    s.parse()
        .unwrap_or_else(|e| panic!("bad fixture network {s}: {e}"))
}

/// The autonomous system announcing fixture network `network`.
pub(crate) fn asn_of(network: &str) -> &'static Asn {
    let network = net(network);
    ASNS.iter()
        .find(|a| net(a.network).contains(&network))
        .unwrap_or_else(|| panic!("no fixture ASN covers {network}"))
}

/// Every test database with its file name under `geoip/`.
pub(crate) fn test_databases() -> [(&'static str, Writer); 6] {
    [
        ("test-city.mmdb", test_city()),
        ("test-country.mmdb", test_country()),
        ("test-asn.mmdb", test_asn()),
        ("test-flat-v4.mmdb", test_flat_ipv4()),
        ("test-flat-v6.mmdb", test_flat_ipv6()),
        ("test-ipinfo-lite.mmdb", test_ipinfo_lite()),
    ]
}

/// [`NETWORKS`] in GeoIP2-City layout.
pub(crate) fn test_city() -> Writer {
    let mut writer = Writer::new("GeoIP2-City", IpVersion::V6).description(
        "en",
        "Meridian test City database (documentation and loopback networks)",
    );
    insert_city_networks(&mut writer);
    writer
}

/// [`NETWORKS`] in GeoIP2-Country layout: continent and country, no
/// location, so Meridian has to fall back to country centroids.
pub(crate) fn test_country() -> Writer {
    let mut writer = Writer::new("GeoIP2-Country", IpVersion::V6).description(
        "en",
        "Meridian test Country database (documentation and loopback networks)",
    );
    for &(network, place) in NETWORKS {
        let record = Value::map([
            ("continent", continent_value(place.country.continent)),
            ("country", country_value(place.country)),
        ]);
        writer.insert(net(network), &record);
    }
    writer
}

/// [`ASNS`] in GeoLite2-ASN layout.
pub(crate) fn test_asn() -> Writer {
    let mut writer = Writer::new("GeoLite2-ASN", IpVersion::V6).description(
        "en",
        "Meridian test ASN database (documentation and private-use ASNs)",
    );
    for asn in ASNS {
        let record = Value::map([
            ("autonomous_system_number", Value::U32(asn.number)),
            (
                "autonomous_system_organization",
                Value::from(asn.organization),
            ),
        ]);
        writer.insert(net(asn.network), &record);
    }
    writer
}

/// The IPv4 part of [`NETWORKS`] as ip-location-db's `*-city-ipv4.mmdb`.
pub(crate) fn test_flat_ipv4() -> Writer {
    flat_city(IpVersion::V4)
}

/// The IPv6 part of [`NETWORKS`] as ip-location-db's `*-city-ipv6.mmdb`.
pub(crate) fn test_flat_ipv6() -> Writer {
    flat_city(IpVersion::V6)
}

/// ip-location-db's city files: one flat map per network, coordinates as
/// 32-bit floats, empty strings for unknown fields, database type
/// `"city ipv4"`/`"city ipv6"`, a separate file per IP version and no IPv4
/// aliases (its generator, sapics/ip-location-to-mmdb, disables them).
fn flat_city(ip_version: IpVersion) -> Writer {
    let (database_type, want_v4) = match ip_version {
        IpVersion::V4 => ("city ipv4", true),
        IpVersion::V6 => ("city ipv6", false),
    };
    let mut writer = Writer::new(database_type, ip_version)
        .ipv4_aliases(false)
        .description("en", "Meridian test ip-location-db style city database");
    for &(network, place) in NETWORKS {
        let network = net(network);
        if matches!(network, IpNet::V4(_)) != want_v4 {
            continue;
        }
        let state1 = place.subdivision.map_or("", |(_, name)| name);
        let record = Value::map([
            ("city", Value::from(place.city)),
            ("country_code", Value::from(place.country.iso_code)),
            ("latitude", Value::F32(place.latitude as f32)),
            ("longitude", Value::F32(place.longitude as f32)),
            ("postcode", Value::from("")),
            ("state1", Value::from(state1)),
            ("state2", Value::from("")),
            ("timezone", Value::from(place.time_zone)),
        ]);
        writer.insert(network, &record);
    }
    writer
}

/// [`NETWORKS`] in IPinfo Lite layout: flat country, continent and AS fields
/// (`asn` is a string such as `"AS64501"`), no coordinates at all.
pub(crate) fn test_ipinfo_lite() -> Writer {
    let mut writer = Writer::new("ipinfo bundle_location_lite.mmdb", IpVersion::V6)
        .description("en", "Meridian test IPinfo Lite style database");
    for &(network, place) in NETWORKS {
        let asn = asn_of(network);
        let record = Value::map([
            ("as_domain", Value::from(asn.domain)),
            ("as_name", Value::from(asn.organization)),
            ("asn", Value::from(format!("AS{}", asn.number))),
            ("continent", Value::from(place.country.continent.name)),
            ("continent_code", Value::from(place.country.continent.code)),
            ("country", Value::from(place.country.name)),
            ("country_code", Value::from(place.country.iso_code)),
        ]);
        writer.insert(net(network), &record);
    }
    writer
}

fn insert_city_networks(writer: &mut Writer) {
    for &(network, place) in NETWORKS {
        writer.insert(net(network), &city_record(place));
    }
}

/// A GeoIP2-City record for `place`.
pub(crate) fn city_record(place: &Place) -> Value {
    city_value(
        place.city,
        place.subdivision,
        place.country,
        place.latitude,
        place.longitude,
        Some(place.time_zone),
    )
}

fn city_value(
    city: &str,
    subdivision: Option<(&str, &str)>,
    country: &Country,
    latitude: f64,
    longitude: f64,
    time_zone: Option<&str>,
) -> Value {
    let mut location = vec![
        ("accuracy_radius", Value::U16(ACCURACY_RADIUS_KM)),
        ("latitude", Value::F64(latitude)),
        ("longitude", Value::F64(longitude)),
    ];
    if let Some(time_zone) = time_zone {
        location.push(("time_zone", Value::from(time_zone)));
    }
    let mut record = vec![
        ("city", Value::map([("names", names(city))])),
        ("continent", continent_value(country.continent)),
        ("country", country_value(country)),
        ("location", Value::map(location)),
    ];
    if let Some((iso_code, name)) = subdivision {
        let subdivision = Value::map([("iso_code", Value::from(iso_code)), ("names", names(name))]);
        record.push(("subdivisions", Value::Array(vec![subdivision])));
    }
    Value::map(record)
}

fn names(english: &str) -> Value {
    Value::map([("en", Value::from(english))])
}

fn continent_value(continent: &Continent) -> Value {
    Value::map([
        ("code", Value::from(continent.code)),
        ("geoname_id", Value::U32(continent.geoname_id)),
        ("names", names(continent.name)),
    ])
}

fn country_value(country: &Country) -> Value {
    let mut entries = Vec::with_capacity(3);
    if let Some(id) = country.geoname_id {
        entries.push(("geoname_id", Value::U32(id)));
    }
    entries.push(("iso_code", Value::from(country.iso_code)));
    entries.push(("names", names(country.name)));
    Value::map(entries)
}

/// A full-size-like GeoIP2-City database for load benchmarks.
///
/// `n_v4` IPv4 networks (/16 to /24) and `n_v6` IPv6 networks (/32 to /48),
/// non-overlapping and scattered with random gaps, each mapped to one of 200
/// city records around real metropolitan areas on every inhabited continent.
/// Most networks are small, as in real databases. IPv4 avoids 0/8, 10/8,
/// 127/8, the other private, shared and link-local ranges, and multicast;
/// IPv6 sits in /32 allocations inside five RIR /12s. The [`NETWORKS`]
/// fixtures are inserted last, so the loopback and ECS ranges resolve exactly
/// as in [`test_city`] and 127.0.0.1 stays unmatched.
///
/// Deterministic for a given `seed` (a built-in SplitMix64 generator).
///
/// # Panics
///
/// Panics if the counts cannot fit (more than ~14 million IPv4 networks).
pub(crate) fn synthetic_city(n_v4: usize, n_v6: usize, seed: u64) -> Writer {
    let mut writer = Writer::new("GeoIP2-City", IpVersion::V6)
        .description("en", "Meridian synthetic City database for benchmarks");
    let cities: Vec<DataId> = synthetic_places()
        .iter()
        .map(|v| writer.intern(v))
        .collect();
    let mut layout = SplitMix64(seed);
    let mut pick = SplitMix64(seed ^ 0x5EED_C17E_5EED_C17E);
    let mut city = move || cities[pick.below(cities.len() as u64) as usize];

    // IPv4: units are /24s inside the usable /16 blocks.
    let blocks_v4 = usable_ipv4_blocks();
    spread(
        &mut layout,
        n_v4,
        blocks_v4.len() as u64 * 256,
        8,
        |unit, log2| {
            let block = u32::from(blocks_v4[(unit >> 8) as usize]);
            let addr = Ipv4Addr::from(block << 16 | ((unit & 0xFF) as u32) << 8);
            let net = Ipv4Net::new(addr, 24 - log2 as u8).expect("valid prefix");
            writer.insert_id(IpNet::V4(net), city());
        },
    );

    // IPv6: units are /48s inside randomly chosen /32 allocations, about 32
    // units of room per network.
    let blocks_v6 = ipv6_allocations(&mut layout, (n_v6 * 32).div_ceil(1 << 16));
    spread(
        &mut layout,
        n_v6,
        (blocks_v6.len() as u64) << 16,
        16,
        |unit, log2| {
            let block = u128::from(blocks_v6[(unit >> 16) as usize]);
            let addr = Ipv6Addr::from(block << 96 | u128::from(unit & 0xFFFF) << 80);
            let net = Ipv6Net::new(addr, 48 - log2 as u8).expect("valid prefix");
            writer.insert_id(IpNet::V6(net), city());
        },
    );

    insert_city_networks(&mut writer);
    writer
}

/// Places `count` aligned blocks of 2^0..=2^`max_log2` units in a space of
/// `units`, in ascending order, calling `emit(first_unit, log2_size)`.
///
/// Block sizes are geometric (half are one unit, a quarter two units, ...),
/// shrunk when needed so that one unit per remaining block always stays
/// available; the gaps share out the spare room so blocks cover the whole
/// space rather than bunching at its start.
fn spread(
    rng: &mut SplitMix64,
    count: usize,
    units: u64,
    max_log2: u32,
    mut emit: impl FnMut(u64, u32),
) {
    let count = count as u64;
    assert!(
        count <= units,
        "cannot place {count} networks in {units} slots"
    );
    let mut cursor = 0;
    for placed in 0..count {
        let left = count - placed;
        let slack = units - cursor - left;
        let mut log2 = rng.next_u64().trailing_zeros().min(max_log2);
        let mut start = cursor.next_multiple_of(1 << log2);
        while log2 > 0 && start + (1 << log2) - cursor > slack + 1 {
            log2 -= 1;
            start = cursor.next_multiple_of(1 << log2);
        }
        emit(start, log2);
        cursor = start + (1 << log2);
        if left > 1 {
            let share = (units - cursor - (left - 1)) / (left - 1);
            cursor += rng.below(share + 1);
        }
    }
}

/// The /16 blocks (as their top 16 bits) of public unicast IPv4 space.
fn usable_ipv4_blocks() -> Vec<u16> {
    (1_u16..=223)
        .filter(|&a| a != 10 && a != 127)
        .flat_map(|a| (0_u16..=255).map(move |b| (a, b)))
        .filter(|&(a, b)| {
            !matches!(
                (a, b),
                (100, 64..=127) | (169, 254) | (172, 16..=31) | (192, 168) | (198, 18..=19)
            )
        })
        .map(|(a, b)| a << 8 | b)
        .collect()
}

/// `count` distinct random /32 allocations (as their top 32 bits), sorted,
/// from the RIR ranges 2400::/12, 2600::/12, 2800::/12, 2a00::/12, 2c00::/12.
fn ipv6_allocations(rng: &mut SplitMix64, count: usize) -> Vec<u32> {
    const REGIONS: [u32; 5] = [0x240, 0x260, 0x280, 0x2a0, 0x2c0];
    assert!(count <= REGIONS.len() << 20, "too many IPv6 networks");
    let mut blocks = BTreeSet::new();
    while blocks.len() < count {
        let region = REGIONS[rng.below(REGIONS.len() as u64) as usize];
        blocks.insert(region << 20 | rng.below(1 << 20) as u32);
    }
    blocks.into_iter().collect()
}

/// Metropolitan areas the synthetic cities cluster around:
/// (city, country code, country name, continent, latitude, longitude).
#[rustfmt::skip]
const METROS: &[(&str, &str, &str, &Continent, f64, f64)] = &[
    ("London",            "GB", "United Kingdom",       &EUROPE,        51.5074,   -0.1278),
    ("Paris",             "FR", "France",               &EUROPE,        48.8566,    2.3522),
    ("Frankfurt am Main", "DE", "Germany",              &EUROPE,        50.1109,    8.6821),
    ("Amsterdam",         "NL", "Netherlands",          &EUROPE,        52.3676,    4.9041),
    ("Madrid",            "ES", "Spain",                &EUROPE,        40.4168,   -3.7038),
    ("Milan",             "IT", "Italy",                &EUROPE,        45.4642,    9.1900),
    ("Stockholm",         "SE", "Sweden",               &EUROPE,        59.3293,   18.0686),
    ("Warsaw",            "PL", "Poland",               &EUROPE,        52.2297,   21.0122),
    ("Vienna",            "AT", "Austria",              &EUROPE,        48.2082,   16.3738),
    ("Dublin",            "IE", "Ireland",              &EUROPE,        53.3498,   -6.2603),
    ("Helsinki",          "FI", "Finland",              &EUROPE,        60.1699,   24.9384),
    ("New York",          "US", "United States",        &NORTH_AMERICA, 40.7128,  -74.0060),
    ("Los Angeles",       "US", "United States",        &NORTH_AMERICA, 34.0522, -118.2437),
    ("Chicago",           "US", "United States",        &NORTH_AMERICA, 41.8781,  -87.6298),
    ("Dallas",            "US", "United States",        &NORTH_AMERICA, 32.7767,  -96.7970),
    ("Miami",             "US", "United States",        &NORTH_AMERICA, 25.7617,  -80.1918),
    ("Seattle",           "US", "United States",        &NORTH_AMERICA, 47.6062, -122.3321),
    ("Atlanta",           "US", "United States",        &NORTH_AMERICA, 33.7490,  -84.3880),
    ("Toronto",           "CA", "Canada",               &NORTH_AMERICA, 43.6532,  -79.3832),
    ("Montreal",          "CA", "Canada",               &NORTH_AMERICA, 45.5017,  -73.5673),
    ("Mexico City",       "MX", "Mexico",               &NORTH_AMERICA, 19.4326,  -99.1332),
    ("São Paulo",         "BR", "Brazil",               &SOUTH_AMERICA, -23.5505, -46.6333),
    ("Rio de Janeiro",    "BR", "Brazil",               &SOUTH_AMERICA, -22.9068, -43.1729),
    ("Buenos Aires",      "AR", "Argentina",            &SOUTH_AMERICA, -34.6037, -58.3816),
    ("Santiago",          "CL", "Chile",                &SOUTH_AMERICA, -33.4489, -70.6693),
    ("Bogotá",            "CO", "Colombia",             &SOUTH_AMERICA,   4.7110, -74.0721),
    ("Lima",              "PE", "Peru",                 &SOUTH_AMERICA, -12.0464, -77.0428),
    ("Tokyo",             "JP", "Japan",                &ASIA,          35.6762,  139.6503),
    ("Singapore",         "SG", "Singapore",            &ASIA,           1.3521,  103.8198),
    ("Hong Kong",         "HK", "Hong Kong",            &ASIA,          22.3193,  114.1694),
    ("Mumbai",            "IN", "India",                &ASIA,          19.0760,   72.8777),
    ("Delhi",             "IN", "India",                &ASIA,          28.7041,   77.1025),
    ("Seoul",             "KR", "South Korea",          &ASIA,          37.5665,  126.9780),
    ("Shanghai",          "CN", "China",                &ASIA,          31.2304,  121.4737),
    ("Jakarta",           "ID", "Indonesia",            &ASIA,          -6.2088,  106.8456),
    ("Bangkok",           "TH", "Thailand",             &ASIA,          13.7563,  100.5018),
    ("Dubai",             "AE", "United Arab Emirates", &ASIA,          25.2048,   55.2708),
    ("Taipei",            "TW", "Taiwan",               &ASIA,          25.0330,  121.5654),
    ("Manila",            "PH", "Philippines",          &ASIA,          14.5995,  120.9842),
    ("Sydney",            "AU", "Australia",            &OCEANIA,      -33.8688,  151.2093),
    ("Melbourne",         "AU", "Australia",            &OCEANIA,      -37.8136,  144.9631),
    ("Brisbane",          "AU", "Australia",            &OCEANIA,      -27.4698,  153.0251),
    ("Perth",             "AU", "Australia",            &OCEANIA,      -31.9505,  115.8605),
    ("Auckland",          "NZ", "New Zealand",          &OCEANIA,      -36.8485,  174.7633),
    ("Johannesburg",      "ZA", "South Africa",         &AFRICA,       -26.2041,   28.0473),
    ("Cape Town",         "ZA", "South Africa",         &AFRICA,       -33.9249,   18.4241),
    ("Lagos",             "NG", "Nigeria",              &AFRICA,         6.5244,    3.3792),
    ("Nairobi",           "KE", "Kenya",                &AFRICA,        -1.2921,   36.8219),
    ("Cairo",             "EG", "Egypt",                &AFRICA,        30.0444,   31.2357),
    ("Casablanca",        "MA", "Morocco",              &AFRICA,        33.5731,   -7.5898),
];

/// Cities per metropolitan area: the metro itself plus towns around it.
const CITIES_PER_METRO: usize = 4;

/// The synthetic City records: [`CITIES_PER_METRO`] per [`METROS`] entry
/// (200 in all), the same for every seed. Towns are "<metro> 2", "<metro> 3",
/// ..., within about 80 km of the metro.
fn synthetic_places() -> Vec<Value> {
    let mut rng = SplitMix64(0x6E0_1D5);
    let mut places = Vec::with_capacity(METROS.len() * CITIES_PER_METRO);
    for &(metro, iso_code, name, continent, latitude, longitude) in METROS {
        let country = Country {
            iso_code,
            name,
            geoname_id: None,
            continent,
        };
        for i in 0..CITIES_PER_METRO {
            let (city, lat, lon) = if i == 0 {
                (metro.to_owned(), latitude, longitude)
            } else {
                let jitter = |rng: &mut SplitMix64| (rng.below(1501) as f64 - 750.0) / 1000.0;
                (
                    format!("{metro} {}", i + 1),
                    latitude + jitter(&mut rng),
                    longitude + jitter(&mut rng),
                )
            };
            places.push(city_value(
                &city,
                None,
                &country,
                round4(lat),
                round4(lon),
                None,
            ));
        }
    }
    places
}

/// Rounds to 4 decimal places (~10 m), as GeoIP coordinates are published.
fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

/// SplitMix64 (Steele, Lea & Flood): tiny, fast and good enough to lay out
/// test data reproducibly without a `rand` dependency.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (multiply-shift; the tiny bias does not matter here).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::net::IpAddr;

    use maxminddb::{Reader, WithinOptions, geoip2};
    use serde::Deserialize;

    use super::*;

    fn read(writer: &Writer) -> Reader<Vec<u8>> {
        let reader = Reader::from_source(writer.to_bytes(BUILD_EPOCH)).unwrap();
        reader.verify().unwrap();
        reader
    }

    /// The first address of a fixture network, and one in its middle.
    fn probes(network: &str) -> [IpAddr; 2] {
        let network = net(network);
        // Half-way through the network: a host other than the first.
        let middle = match network {
            IpNet::V4(n) => {
                IpAddr::V4((u32::from(n.network()) | 1 << (31 - n.prefix_len())).into())
            }
            IpNet::V6(n) => {
                IpAddr::V6((u128::from(n.network()) | 1 << (127 - n.prefix_len())).into())
            }
        };
        [network.network(), middle]
    }

    fn assert_unmatched(reader: &Reader<Vec<u8>>, addrs: &[&str]) {
        for addr in addrs {
            let result = reader.lookup(addr.parse().unwrap());
            assert!(!result.unwrap().has_data(), "{addr} should be unmatched");
        }
    }

    #[test]
    fn city_database_matches_the_fixture_table() {
        let reader = read(&test_city());
        assert_eq!(reader.metadata().database_type, "GeoIP2-City");
        for &(network, place) in NETWORKS {
            for addr in probes(network) {
                let result = reader.lookup(addr).unwrap();
                assert_eq!(result.network().unwrap().to_string(), network);
                let city: geoip2::City = result.decode().unwrap().unwrap();
                assert_eq!(city.city.names.english, Some(place.city), "{addr}");
                assert_eq!(city.country.iso_code, Some(place.country.iso_code));
                assert_eq!(city.country.names.english, Some(place.country.name));
                assert_eq!(city.continent.code, Some(place.country.continent.code));
                assert_eq!(city.location.latitude, Some(place.latitude));
                assert_eq!(city.location.longitude, Some(place.longitude));
                assert_eq!(city.location.accuracy_radius, Some(ACCURACY_RADIUS_KM));
                let subdivision = city
                    .subdivisions
                    .first()
                    .map(|s| (s.iso_code, s.names.english));
                let expected = place
                    .subdivision
                    .map(|(code, name)| (Some(code), Some(name)));
                assert_eq!(subdivision, expected);
            }
        }
        assert_unmatched(&reader, UNMATCHED);
        // IPv4-mapped client addresses resolve through the alias.
        let mapped = reader.lookup("::ffff:127.0.2.9".parse().unwrap()).unwrap();
        let city: geoip2::City = mapped.decode().unwrap().unwrap();
        assert_eq!(city.city.names.english, Some("New York"));
    }

    #[test]
    fn country_database_has_no_location() {
        let reader = read(&test_country());
        for &(network, place) in NETWORKS {
            let result = reader.lookup(net(network).network()).unwrap();
            let country: geoip2::Country = result.decode().unwrap().unwrap();
            assert_eq!(country.country.iso_code, Some(place.country.iso_code));
            assert_eq!(country.continent.code, Some(place.country.continent.code));
            let city: geoip2::City = result.decode().unwrap().unwrap();
            assert_eq!(city.location.latitude, None);
        }
        assert_unmatched(&reader, UNMATCHED);
    }

    #[test]
    fn asn_database_matches_the_asn_table() {
        let reader = read(&test_asn());
        for asn in ASNS {
            let result = reader.lookup(net(asn.network).network()).unwrap();
            assert_eq!(result.network().unwrap().to_string(), asn.network);
            let record: geoip2::Asn = result.decode().unwrap().unwrap();
            assert_eq!(record.autonomous_system_number, Some(asn.number));
            assert_eq!(
                record.autonomous_system_organization,
                Some(asn.organization)
            );
        }
        assert_unmatched(&reader, &["127.0.0.1", "10.1.2.3", "::1"]);
    }

    #[derive(Deserialize)]
    struct Flat {
        city: String,
        country_code: String,
        // MMDB `float`, which maxminddb only decodes into f32.
        latitude: f32,
        longitude: f32,
        state1: String,
        state2: String,
        postcode: String,
        timezone: String,
    }

    #[test]
    fn flat_databases_split_by_ip_version() {
        let v4 = read(&test_flat_ipv4());
        let v6 = read(&test_flat_ipv6());
        assert_eq!(
            (
                v4.metadata().ip_version,
                v4.metadata().database_type.as_str()
            ),
            (4, "city ipv4")
        );
        assert_eq!(
            (
                v6.metadata().ip_version,
                v6.metadata().database_type.as_str()
            ),
            (6, "city ipv6")
        );
        for &(network, place) in NETWORKS {
            let addr = net(network).network();
            let reader = if addr.is_ipv4() { &v4 } else { &v6 };
            let record: Flat = reader.lookup(addr).unwrap().decode().unwrap().unwrap();
            assert_eq!(record.city, place.city);
            assert_eq!(record.country_code, place.country.iso_code);
            assert_eq!(record.latitude, place.latitude as f32);
            assert_eq!(record.longitude, place.longitude as f32);
            assert_eq!(
                record.state1,
                place.subdivision.map_or("", |(_, name)| name)
            );
            assert_eq!((record.state2.as_str(), record.postcode.as_str()), ("", ""));
            assert_eq!(record.timezone, place.time_zone);
        }
        // IPv4 data only in the IPv4 file; the IPv6 file has none for IPv4.
        assert_unmatched(&v6, &["127.0.1.1", "::ffff:127.0.1.1", "::1"]);
        assert_unmatched(&v4, &["127.0.0.1", "203.0.113.200"]);
    }

    #[derive(Deserialize)]
    struct Lite {
        country_code: String,
        country: String,
        continent_code: String,
        continent: String,
        asn: String,
        as_name: String,
        as_domain: String,
    }

    #[test]
    fn ipinfo_lite_database_has_country_and_asn() {
        let reader = read(&test_ipinfo_lite());
        for &(network, place) in NETWORKS {
            let record: Lite = reader
                .lookup(net(network).network())
                .unwrap()
                .decode()
                .unwrap()
                .unwrap();
            let asn = asn_of(network);
            assert_eq!(record.country_code, place.country.iso_code);
            assert_eq!(record.country, place.country.name);
            assert_eq!(record.continent_code, place.country.continent.code);
            assert_eq!(record.continent, place.country.continent.name);
            assert_eq!(record.asn, format!("AS{}", asn.number));
            assert_eq!(record.as_name, asn.organization);
            assert_eq!(record.as_domain, asn.domain);
        }
        assert_unmatched(&reader, UNMATCHED);
    }

    #[test]
    fn test_databases_are_reproducible() {
        for ((name, a), (_, b)) in test_databases().iter().zip(test_databases().iter()) {
            assert_eq!(a.to_bytes(BUILD_EPOCH), b.to_bytes(BUILD_EPOCH), "{name}");
        }
    }

    #[test]
    fn synthetic_city_is_deterministic_and_keeps_the_fixtures() {
        let (n_v4, n_v6) = (20_000, 10_000);
        let bytes = synthetic_city(n_v4, n_v6, 7).to_bytes(BUILD_EPOCH);
        assert_eq!(bytes, synthetic_city(n_v4, n_v6, 7).to_bytes(BUILD_EPOCH));
        assert_ne!(bytes, synthetic_city(n_v4, n_v6, 8).to_bytes(BUILD_EPOCH));

        let reader = Reader::from_source(bytes).unwrap();
        reader.verify().unwrap();
        let mut v4 = 0;
        let mut v6 = 0;
        let mut prefixes = HashSet::new();
        let mut cities = HashSet::new();
        for result in reader.networks(WithinOptions::default()).unwrap() {
            let result = result.unwrap();
            let network = result.network().unwrap();
            prefixes.insert((network.is_ipv4(), network.prefix()));
            if network.is_ipv4() {
                v4 += 1
            } else {
                v6 += 1
            }
            let city: geoip2::City = result.decode().unwrap().unwrap();
            cities.insert(city.city.names.english.unwrap().to_owned());
        }
        // Adjacent networks with the same city merge, so a few go missing.
        assert!(
            (n_v4 * 99 / 100..=n_v4 + NETWORKS.len()).contains(&v4),
            "{v4} IPv4 networks"
        );
        assert!(
            (n_v6 * 99 / 100..=n_v6 + NETWORKS.len()).contains(&v6),
            "{v6} IPv6 networks"
        );
        assert!(cities.len() >= 200, "{} cities", cities.len());
        for len in [16, 20, 24] {
            assert!(prefixes.contains(&(true, len)), "no IPv4 /{len}");
        }
        for len in [36, 44, 48] {
            assert!(prefixes.contains(&(false, len)), "no IPv6 /{len}");
        }

        for &(network, place) in NETWORKS {
            let result = reader.lookup(net(network).network()).unwrap();
            let city: geoip2::City = result.decode().unwrap().unwrap();
            assert_eq!(city.city.names.english, Some(place.city));
        }
        assert_unmatched(
            &reader,
            &[
                "127.0.0.1",
                "10.1.2.3",
                "192.168.1.1",
                "::1",
                "2001:db8:ffff::1",
            ],
        );
    }

    #[test]
    fn spread_places_disjoint_aligned_blocks_in_range() {
        for (count, units, max_log2) in [
            (1000, 1000, 8),
            (1000, 1001, 8),
            (500, 1 << 20, 16),
            (1, 5, 3),
        ] {
            let mut rng = SplitMix64(1);
            let mut end = 0;
            let mut placed = 0;
            spread(&mut rng, count, units, max_log2, |start, log2| {
                assert!(start >= end && start % (1 << log2) == 0 && log2 <= max_log2);
                end = start + (1 << log2);
                placed += 1;
            });
            assert_eq!(placed, count);
            assert!(end <= units);
        }
    }
}
