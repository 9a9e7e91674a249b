//! Built-in table of ISO 3166-1 alpha-2 countries and territories: an
//! approximate location and the continent of each.
//!
//! GeoIP databases that resolve an address only to a country (IPinfo Lite,
//! MaxMind GeoLite2-Country, ...) give no coordinates, yet the server must
//! still order data centres by distance from the client. This table supplies
//! one representative point per country for that purpose, and the continent
//! code for continent-level rules.
//!
//! # Coverage
//!
//! All 249 officially assigned ISO 3166-1 alpha-2 codes, plus:
//!
//! * `XK` (Kosovo): user-assigned, but used by MaxMind, IPinfo and others.
//! * `EU` (Europe) and `AP` (Asia/Pacific): MaxMind's legacy special codes
//!   for networks known only to belong to one of those regions.
//!
//! Codes are stored in upper case; [`lookup`] and [`is_continent`] accept
//! either case.
//!
//! # Coordinates
//!
//! Latitude and longitude are decimal degrees (WGS 84), rounded to two decimals
//! (about 1 km). A country's point is at best an approximation, so expect the
//! real error to be tens to hundreds of kilometres. Sources, by the tag in
//! each entry's comment:
//!
//! * No tag: Google's DSPL canonical dataset `countries.csv`
//!   (<https://developers.google.com/public-data/docs/canonical/countries_csv>),
//!   the widely used country-centroid list.
//! * `[E]`: codes missing from the Google list (assigned after it was made),
//!   taken from the Esri-derived "World Countries Centroids" dataset
//!   (github.com/gavinr/world-countries-centroids, MIT), which uses the centroid of each
//!   country's largest land mass. `BQ` uses Bonaire and `UM` uses Wake Island.
//! * `[M]`: `AX` (Åland) is absent from both; it uses Mariehamn, where
//!   most of the population lives.
//! * `[P]`: population point instead of the geometric centroid, for very
//!   large countries whose centroid is far from where most people (and
//!   networks) are. `US` uses the US Census Bureau's 2020 mean centre of
//!   population (near Hartville, Missouri). `RU`, `CA`, `AU`, `BR` and `CN` use
//!   their capital. Without this, for example, Russia's centroid lies in central
//!   Siberia, closer to East Asian data centres than to European ones.
//! * `[S]`: `EU` and `AP` use the points MaxMind's legacy "average latitude
//!   and longitude for countries" list gave them (47, 8 and 35, 105).
//!
//! # Continents
//!
//! Continent codes are MaxMind's (`AF` Africa, `AN` Antarctica, `AS` Asia,
//! `EU` Europe, `NA` North America, `OC` Oceania, `SA` South America), as
//! found in GeoLite2 `GeoLite2-Country-Locations-en.csv`. They match GeoNames'
//! `countryInfo`, which MaxMind's data is based on. Choices that differ from
//! other conventions:
//!
//! * `RU` is `EU`; `TR`, `KZ`, `AM`, `AZ`, `GE`, `IL`, `PS` and the rest of the
//!   Middle East are `AS`; `CY` is `EU`; `EG` is `AF`.
//! * Central America (`PA` included) and the whole Caribbean (`TT`, `AW`,
//!   `CW`, `BQ`, `SX` included) are `NA`; so are `GL`, `BM` and `PM`.
//! * `FK` is `SA`, while `GS`, `BV`, `HM` and `TF` are `AN`.
//! * `TL`, `CX` and `UM` are `OC`; `CC`, `IO`, `ID` and `MV` are `AS`.
//! * `SJ` and `AX` are `EU`; `SH`, `RE`, `YT` and `CV` are `AF`.
//! * `XK` is `EU`; the special codes are `EU` → `EU` and `AP` → `AS`.

/// One country's facts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CountryInfo {
    /// ISO 3166-1 alpha-2 code, upper-case ASCII (e.g. `*b"NL"`).
    pub code: [u8; 2],
    /// MaxMind continent code, upper-case ASCII: one of `AF`, `AN`, `AS`,
    /// `EU`, `NA`, `OC`, `SA`.
    pub continent: [u8; 2],
    /// Latitude of the representative point, in degrees (-90 to 90, north
    /// positive).
    pub latitude: f64,
    /// Longitude of the representative point, in degrees (-180 to 180, east
    /// positive).
    pub longitude: f64,
}

/// Looks up a country by ISO 3166-1 alpha-2 code ("NL", "nl").
///
/// Returns `None` for anything that is not a code in the table, including
/// strings that are not exactly two ASCII letters.
#[must_use]
pub fn lookup(code: &str) -> Option<&'static CountryInfo> {
    let key = normalize(code)?;
    TABLE
        .binary_search_by(|entry| entry.code.cmp(&key))
        .ok()
        .map(|index| &TABLE[index])
}

/// Every entry, sorted by code.
#[must_use]
pub fn all() -> &'static [CountryInfo] {
    &TABLE
}

/// True if `code` is a known continent code (AF AN AS EU NA OC SA).
///
/// Like [`lookup`], this ignores case.
#[must_use]
pub fn is_continent(code: &str) -> bool {
    normalize(code).is_some_and(|key| CONTINENTS.contains(&key))
}

/// The seven continent codes, as MaxMind uses them.
const CONTINENTS: [[u8; 2]; 7] = [*b"AF", *b"AN", *b"AS", *b"EU", *b"NA", *b"OC", *b"SA"];

/// Upper-cases a two-letter ASCII code; `None` if `code` is anything else.
fn normalize(code: &str) -> Option<[u8; 2]> {
    match code.as_bytes() {
        &[a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
            Some([a.to_ascii_uppercase(), b.to_ascii_uppercase()])
        }
        _ => None,
    }
}

/// Builds one table entry (keeps the table rows short).
const fn entry(code: [u8; 2], continent: [u8; 2], latitude: f64, longitude: f64) -> CountryInfo {
    CountryInfo {
        code,
        continent,
        latitude,
        longitude,
    }
}

/// The table, sorted by code. See the module documentation for the sources
/// behind the tags in the comments.
#[rustfmt::skip]
static TABLE: [CountryInfo; 252] = [
    entry(*b"AD", *b"EU",  42.55,    1.60), // Andorra
    entry(*b"AE", *b"AS",  23.42,   53.85), // United Arab Emirates
    entry(*b"AF", *b"AS",  33.94,   67.71), // Afghanistan
    entry(*b"AG", *b"NA",  17.06,  -61.80), // Antigua and Barbuda
    entry(*b"AI", *b"NA",  18.22,  -63.07), // Anguilla
    entry(*b"AL", *b"EU",  41.15,   20.17), // Albania
    entry(*b"AM", *b"AS",  40.07,   45.04), // Armenia
    entry(*b"AO", *b"AF", -11.20,   17.87), // Angola
    entry(*b"AP", *b"AS",  35.00,  105.00), // Asia/Pacific (MaxMind legacy code); [S]
    entry(*b"AQ", *b"AN", -75.25,   -0.07), // Antarctica
    entry(*b"AR", *b"SA", -38.42,  -63.62), // Argentina
    entry(*b"AS", *b"OC", -14.27, -170.13), // American Samoa
    entry(*b"AT", *b"EU",  47.52,   14.55), // Austria
    entry(*b"AU", *b"OC", -35.28,  149.13), // Australia; [P] Canberra
    entry(*b"AW", *b"NA",  12.52,  -69.97), // Aruba
    entry(*b"AX", *b"EU",  60.12,   19.90), // Åland Islands; [M] Mariehamn
    entry(*b"AZ", *b"AS",  40.14,   47.58), // Azerbaijan
    entry(*b"BA", *b"EU",  43.92,   17.68), // Bosnia and Herzegovina
    entry(*b"BB", *b"NA",  13.19,  -59.54), // Barbados
    entry(*b"BD", *b"AS",  23.68,   90.36), // Bangladesh
    entry(*b"BE", *b"EU",  50.50,    4.47), // Belgium
    entry(*b"BF", *b"AF",  12.24,   -1.56), // Burkina Faso
    entry(*b"BG", *b"EU",  42.73,   25.49), // Bulgaria
    entry(*b"BH", *b"AS",  25.93,   50.64), // Bahrain
    entry(*b"BI", *b"AF",  -3.37,   29.92), // Burundi
    entry(*b"BJ", *b"AF",   9.31,    2.32), // Benin
    entry(*b"BL", *b"NA",  17.91,  -62.83), // Saint Barthélemy; [E]
    entry(*b"BM", *b"NA",  32.32,  -64.76), // Bermuda
    entry(*b"BN", *b"AS",   4.54,  114.73), // Brunei
    entry(*b"BO", *b"SA", -16.29,  -63.59), // Bolivia
    entry(*b"BQ", *b"NA",  12.18,  -68.29), // Bonaire, Sint Eustatius and Saba; [E] Bonaire
    entry(*b"BR", *b"SA", -15.79,  -47.88), // Brazil; [P] Brasília
    entry(*b"BS", *b"NA",  25.03,  -77.40), // Bahamas
    entry(*b"BT", *b"AS",  27.51,   90.43), // Bhutan
    entry(*b"BV", *b"AN", -54.42,    3.41), // Bouvet Island
    entry(*b"BW", *b"AF", -22.33,   24.68), // Botswana
    entry(*b"BY", *b"EU",  53.71,   27.95), // Belarus
    entry(*b"BZ", *b"NA",  17.19,  -88.50), // Belize
    entry(*b"CA", *b"NA",  45.42,  -75.70), // Canada; [P] Ottawa
    entry(*b"CC", *b"AS", -12.16,   96.87), // Cocos (Keeling) Islands
    entry(*b"CD", *b"AF",  -4.04,   21.76), // Congo (DRC)
    entry(*b"CF", *b"AF",   6.61,   20.94), // Central African Republic
    entry(*b"CG", *b"AF",  -0.23,   15.83), // Congo (Republic)
    entry(*b"CH", *b"EU",  46.82,    8.23), // Switzerland
    entry(*b"CI", *b"AF",   7.54,   -5.55), // Côte d'Ivoire
    entry(*b"CK", *b"OC", -21.24, -159.78), // Cook Islands
    entry(*b"CL", *b"SA", -35.68,  -71.54), // Chile
    entry(*b"CM", *b"AF",   7.37,   12.35), // Cameroon
    entry(*b"CN", *b"AS",  39.90,  116.40), // China; [P] Beijing
    entry(*b"CO", *b"SA",   4.57,  -74.30), // Colombia
    entry(*b"CR", *b"NA",   9.75,  -83.75), // Costa Rica
    entry(*b"CU", *b"NA",  21.52,  -77.78), // Cuba
    entry(*b"CV", *b"AF",  16.00,  -24.01), // Cabo Verde
    entry(*b"CW", *b"NA",  12.20,  -68.97), // Curaçao; [E]
    entry(*b"CX", *b"OC", -10.45,  105.69), // Christmas Island
    entry(*b"CY", *b"EU",  35.13,   33.43), // Cyprus
    entry(*b"CZ", *b"EU",  49.82,   15.47), // Czechia
    entry(*b"DE", *b"EU",  51.17,   10.45), // Germany
    entry(*b"DJ", *b"AF",  11.83,   42.59), // Djibouti
    entry(*b"DK", *b"EU",  56.26,    9.50), // Denmark
    entry(*b"DM", *b"NA",  15.41,  -61.37), // Dominica
    entry(*b"DO", *b"NA",  18.74,  -70.16), // Dominican Republic
    entry(*b"DZ", *b"AF",  28.03,    1.66), // Algeria
    entry(*b"EC", *b"SA",  -1.83,  -78.18), // Ecuador
    entry(*b"EE", *b"EU",  58.60,   25.01), // Estonia
    entry(*b"EG", *b"AF",  26.82,   30.80), // Egypt
    entry(*b"EH", *b"AF",  24.22,  -12.89), // Western Sahara
    entry(*b"ER", *b"AF",  15.18,   39.78), // Eritrea
    entry(*b"ES", *b"EU",  40.46,   -3.75), // Spain
    entry(*b"ET", *b"AF",   9.14,   40.49), // Ethiopia
    entry(*b"EU", *b"EU",  47.00,    8.00), // Europe (MaxMind legacy code); [S]
    entry(*b"FI", *b"EU",  61.92,   25.75), // Finland
    entry(*b"FJ", *b"OC", -16.58,  179.41), // Fiji
    entry(*b"FK", *b"SA", -51.80,  -59.52), // Falkland Islands
    entry(*b"FM", *b"OC",   7.43,  150.55), // Micronesia
    entry(*b"FO", *b"EU",  61.89,   -6.91), // Faroe Islands
    entry(*b"FR", *b"EU",  46.23,    2.21), // France
    entry(*b"GA", *b"AF",  -0.80,   11.61), // Gabon
    entry(*b"GB", *b"EU",  55.38,   -3.44), // United Kingdom
    entry(*b"GD", *b"NA",  12.26,  -61.60), // Grenada
    entry(*b"GE", *b"AS",  42.32,   43.36), // Georgia
    entry(*b"GF", *b"SA",   3.93,  -53.13), // French Guiana
    entry(*b"GG", *b"EU",  49.47,   -2.59), // Guernsey
    entry(*b"GH", *b"AF",   7.95,   -1.02), // Ghana
    entry(*b"GI", *b"EU",  36.14,   -5.35), // Gibraltar
    entry(*b"GL", *b"NA",  71.71,  -42.60), // Greenland
    entry(*b"GM", *b"AF",  13.44,  -15.31), // Gambia
    entry(*b"GN", *b"AF",   9.95,   -9.70), // Guinea
    entry(*b"GP", *b"NA",  17.00,  -62.07), // Guadeloupe
    entry(*b"GQ", *b"AF",   1.65,   10.27), // Equatorial Guinea
    entry(*b"GR", *b"EU",  39.07,   21.82), // Greece
    entry(*b"GS", *b"AN", -54.43,  -36.59), // South Georgia and the South Sandwich Islands
    entry(*b"GT", *b"NA",  15.78,  -90.23), // Guatemala
    entry(*b"GU", *b"OC",  13.44,  144.79), // Guam
    entry(*b"GW", *b"AF",  11.80,  -15.18), // Guinea-Bissau
    entry(*b"GY", *b"SA",   4.86,  -58.93), // Guyana
    entry(*b"HK", *b"AS",  22.40,  114.11), // Hong Kong
    entry(*b"HM", *b"AN", -53.08,   73.50), // Heard Island and McDonald Islands
    entry(*b"HN", *b"NA",  15.20,  -86.24), // Honduras
    entry(*b"HR", *b"EU",  45.10,   15.20), // Croatia
    entry(*b"HT", *b"NA",  18.97,  -72.29), // Haiti
    entry(*b"HU", *b"EU",  47.16,   19.50), // Hungary
    entry(*b"ID", *b"AS",  -0.79,  113.92), // Indonesia
    entry(*b"IE", *b"EU",  53.41,   -8.24), // Ireland
    entry(*b"IL", *b"AS",  31.05,   34.85), // Israel
    entry(*b"IM", *b"EU",  54.24,   -4.55), // Isle of Man
    entry(*b"IN", *b"AS",  20.59,   78.96), // India
    entry(*b"IO", *b"AS",  -6.34,   71.88), // British Indian Ocean Territory
    entry(*b"IQ", *b"AS",  33.22,   43.68), // Iraq
    entry(*b"IR", *b"AS",  32.43,   53.69), // Iran
    entry(*b"IS", *b"EU",  64.96,  -19.02), // Iceland
    entry(*b"IT", *b"EU",  41.87,   12.57), // Italy
    entry(*b"JE", *b"EU",  49.21,   -2.13), // Jersey
    entry(*b"JM", *b"NA",  18.11,  -77.30), // Jamaica
    entry(*b"JO", *b"AS",  30.59,   36.24), // Jordan
    entry(*b"JP", *b"AS",  36.20,  138.25), // Japan
    entry(*b"KE", *b"AF",  -0.02,   37.91), // Kenya
    entry(*b"KG", *b"AS",  41.20,   74.77), // Kyrgyzstan
    entry(*b"KH", *b"AS",  12.57,  104.99), // Cambodia
    entry(*b"KI", *b"OC",  -3.37, -168.73), // Kiribati
    entry(*b"KM", *b"AF", -11.88,   43.87), // Comoros
    entry(*b"KN", *b"NA",  17.36,  -62.78), // Saint Kitts and Nevis
    entry(*b"KP", *b"AS",  40.34,  127.51), // North Korea
    entry(*b"KR", *b"AS",  35.91,  127.77), // South Korea
    entry(*b"KW", *b"AS",  29.31,   47.48), // Kuwait
    entry(*b"KY", *b"NA",  19.51,  -80.57), // Cayman Islands
    entry(*b"KZ", *b"AS",  48.02,   66.92), // Kazakhstan
    entry(*b"LA", *b"AS",  19.86,  102.50), // Laos
    entry(*b"LB", *b"AS",  33.85,   35.86), // Lebanon
    entry(*b"LC", *b"NA",  13.91,  -60.98), // Saint Lucia
    entry(*b"LI", *b"EU",  47.17,    9.56), // Liechtenstein
    entry(*b"LK", *b"AS",   7.87,   80.77), // Sri Lanka
    entry(*b"LR", *b"AF",   6.43,   -9.43), // Liberia
    entry(*b"LS", *b"AF", -29.61,   28.23), // Lesotho
    entry(*b"LT", *b"EU",  55.17,   23.88), // Lithuania
    entry(*b"LU", *b"EU",  49.82,    6.13), // Luxembourg
    entry(*b"LV", *b"EU",  56.88,   24.60), // Latvia
    entry(*b"LY", *b"AF",  26.34,   17.23), // Libya
    entry(*b"MA", *b"AF",  31.79,   -7.09), // Morocco
    entry(*b"MC", *b"EU",  43.75,    7.41), // Monaco
    entry(*b"MD", *b"EU",  47.41,   28.37), // Moldova
    entry(*b"ME", *b"EU",  42.71,   19.37), // Montenegro
    entry(*b"MF", *b"NA",  18.08,  -63.07), // Saint Martin (French part); [E]
    entry(*b"MG", *b"AF", -18.77,   46.87), // Madagascar
    entry(*b"MH", *b"OC",   7.13,  171.18), // Marshall Islands
    entry(*b"MK", *b"EU",  41.61,   21.75), // North Macedonia
    entry(*b"ML", *b"AF",  17.57,   -4.00), // Mali
    entry(*b"MM", *b"AS",  21.91,   95.96), // Myanmar
    entry(*b"MN", *b"AS",  46.86,  103.85), // Mongolia
    entry(*b"MO", *b"AS",  22.20,  113.54), // Macau
    entry(*b"MP", *b"OC",  17.33,  145.38), // Northern Mariana Islands
    entry(*b"MQ", *b"NA",  14.64,  -61.02), // Martinique
    entry(*b"MR", *b"AF",  21.01,  -10.94), // Mauritania
    entry(*b"MS", *b"NA",  16.74,  -62.19), // Montserrat
    entry(*b"MT", *b"EU",  35.94,   14.38), // Malta
    entry(*b"MU", *b"AF", -20.35,   57.55), // Mauritius
    entry(*b"MV", *b"AS",   3.20,   73.22), // Maldives
    entry(*b"MW", *b"AF", -13.25,   34.30), // Malawi
    entry(*b"MX", *b"NA",  23.63, -102.55), // Mexico
    entry(*b"MY", *b"AS",   4.21,  101.98), // Malaysia
    entry(*b"MZ", *b"AF", -18.67,   35.53), // Mozambique
    entry(*b"NA", *b"AF", -22.96,   18.49), // Namibia
    entry(*b"NC", *b"OC", -20.90,  165.62), // New Caledonia
    entry(*b"NE", *b"AF",  17.61,    8.08), // Niger
    entry(*b"NF", *b"OC", -29.04,  167.95), // Norfolk Island
    entry(*b"NG", *b"AF",   9.08,    8.68), // Nigeria
    entry(*b"NI", *b"NA",  12.87,  -85.21), // Nicaragua
    entry(*b"NL", *b"EU",  52.13,    5.29), // Netherlands
    entry(*b"NO", *b"EU",  60.47,    8.47), // Norway
    entry(*b"NP", *b"AS",  28.39,   84.12), // Nepal
    entry(*b"NR", *b"OC",  -0.52,  166.93), // Nauru
    entry(*b"NU", *b"OC", -19.05, -169.87), // Niue
    entry(*b"NZ", *b"OC", -40.90,  174.89), // New Zealand
    entry(*b"OM", *b"AS",  21.51,   55.92), // Oman
    entry(*b"PA", *b"NA",   8.54,  -80.78), // Panama
    entry(*b"PE", *b"SA",  -9.19,  -75.02), // Peru
    entry(*b"PF", *b"OC", -17.68, -149.41), // French Polynesia
    entry(*b"PG", *b"OC",  -6.31,  143.96), // Papua New Guinea
    entry(*b"PH", *b"AS",  12.88,  121.77), // Philippines
    entry(*b"PK", *b"AS",  30.38,   69.35), // Pakistan
    entry(*b"PL", *b"EU",  51.92,   19.15), // Poland
    entry(*b"PM", *b"NA",  46.94,  -56.27), // Saint Pierre and Miquelon
    entry(*b"PN", *b"OC", -24.70, -127.44), // Pitcairn Islands
    entry(*b"PR", *b"NA",  18.22,  -66.59), // Puerto Rico
    entry(*b"PS", *b"AS",  31.95,   35.23), // Palestinian Territories
    entry(*b"PT", *b"EU",  39.40,   -8.22), // Portugal
    entry(*b"PW", *b"OC",   7.51,  134.58), // Palau
    entry(*b"PY", *b"SA", -23.44,  -58.44), // Paraguay
    entry(*b"QA", *b"AS",  25.35,   51.18), // Qatar
    entry(*b"RE", *b"AF", -21.12,   55.54), // Réunion
    entry(*b"RO", *b"EU",  45.94,   24.97), // Romania
    entry(*b"RS", *b"EU",  44.02,   21.01), // Serbia
    entry(*b"RU", *b"EU",  55.76,   37.62), // Russia; [P] Moscow
    entry(*b"RW", *b"AF",  -1.94,   29.87), // Rwanda
    entry(*b"SA", *b"AS",  23.89,   45.08), // Saudi Arabia
    entry(*b"SB", *b"OC",  -9.65,  160.16), // Solomon Islands
    entry(*b"SC", *b"AF",  -4.68,   55.49), // Seychelles
    entry(*b"SD", *b"AF",  12.86,   30.22), // Sudan
    entry(*b"SE", *b"EU",  60.13,   18.64), // Sweden
    entry(*b"SG", *b"AS",   1.35,  103.82), // Singapore
    entry(*b"SH", *b"AF", -24.14,  -10.03), // Saint Helena
    entry(*b"SI", *b"EU",  46.15,   15.00), // Slovenia
    entry(*b"SJ", *b"EU",  77.55,   23.67), // Svalbard and Jan Mayen
    entry(*b"SK", *b"EU",  48.67,   19.70), // Slovakia
    entry(*b"SL", *b"AF",   8.46,  -11.78), // Sierra Leone
    entry(*b"SM", *b"EU",  43.94,   12.46), // San Marino
    entry(*b"SN", *b"AF",  14.50,  -14.45), // Senegal
    entry(*b"SO", *b"AF",   5.15,   46.20), // Somalia
    entry(*b"SR", *b"SA",   3.92,  -56.03), // Suriname
    entry(*b"SS", *b"AF",   7.66,   30.39), // South Sudan; [E]
    entry(*b"ST", *b"AF",   0.19,    6.61), // São Tomé and Príncipe
    entry(*b"SV", *b"NA",  13.79,  -88.90), // El Salvador
    entry(*b"SX", *b"NA",  18.04,  -63.07), // Sint Maarten (Dutch part); [E]
    entry(*b"SY", *b"AS",  34.80,   39.00), // Syria
    entry(*b"SZ", *b"AF", -26.52,   31.47), // Eswatini
    entry(*b"TC", *b"NA",  21.69,  -71.80), // Turks and Caicos Islands
    entry(*b"TD", *b"AF",  15.45,   18.73), // Chad
    entry(*b"TF", *b"AN", -49.28,   69.35), // French Southern Territories
    entry(*b"TG", *b"AF",   8.62,    0.82), // Togo
    entry(*b"TH", *b"AS",  15.87,  100.99), // Thailand
    entry(*b"TJ", *b"AS",  38.86,   71.28), // Tajikistan
    entry(*b"TK", *b"OC",  -8.97, -171.86), // Tokelau
    entry(*b"TL", *b"OC",  -8.87,  125.73), // Timor-Leste
    entry(*b"TM", *b"AS",  38.97,   59.56), // Turkmenistan
    entry(*b"TN", *b"AF",  33.89,    9.54), // Tunisia
    entry(*b"TO", *b"OC", -21.18, -175.20), // Tonga
    entry(*b"TR", *b"AS",  38.96,   35.24), // Türkiye
    entry(*b"TT", *b"NA",  10.69,  -61.22), // Trinidad and Tobago
    entry(*b"TV", *b"OC",  -7.11,  177.65), // Tuvalu
    entry(*b"TW", *b"AS",  23.70,  120.96), // Taiwan
    entry(*b"TZ", *b"AF",  -6.37,   34.89), // Tanzania
    entry(*b"UA", *b"EU",  48.38,   31.17), // Ukraine
    entry(*b"UG", *b"AF",   1.37,   32.29), // Uganda
    entry(*b"UM", *b"OC",  19.30,  166.64), // United States Minor Outlying Islands; [E] Wake Island
    entry(*b"US", *b"NA",  37.42,  -92.35), // United States; [P] 2020 Census centre of population
    entry(*b"UY", *b"SA", -32.52,  -55.77), // Uruguay
    entry(*b"UZ", *b"AS",  41.38,   64.59), // Uzbekistan
    entry(*b"VA", *b"EU",  41.90,   12.45), // Vatican City
    entry(*b"VC", *b"NA",  12.98,  -61.29), // Saint Vincent and the Grenadines
    entry(*b"VE", *b"SA",   6.42,  -66.59), // Venezuela
    entry(*b"VG", *b"NA",  18.42,  -64.64), // British Virgin Islands
    entry(*b"VI", *b"NA",  18.34,  -64.90), // U.S. Virgin Islands
    entry(*b"VN", *b"AS",  14.06,  108.28), // Vietnam
    entry(*b"VU", *b"OC", -15.38,  166.96), // Vanuatu
    entry(*b"WF", *b"OC", -13.77, -177.16), // Wallis and Futuna
    entry(*b"WS", *b"OC", -13.76, -172.10), // Samoa
    entry(*b"XK", *b"EU",  42.60,   20.90), // Kosovo
    entry(*b"YE", *b"AS",  15.55,   48.52), // Yemen
    entry(*b"YT", *b"AF", -12.83,   45.17), // Mayotte
    entry(*b"ZA", *b"AF", -30.56,   22.94), // South Africa
    entry(*b"ZM", *b"AF", -13.13,   27.85), // Zambia
    entry(*b"ZW", *b"AF", -19.02,   29.15), // Zimbabwe
];

#[cfg(test)]
mod tests {
    use super::*;

    fn code_str(info: &CountryInfo) -> &str {
        std::str::from_utf8(&info.code).unwrap()
    }

    #[test]
    fn table_is_sorted_without_duplicates() {
        for pair in all().windows(2) {
            assert!(
                pair[0].code < pair[1].code,
                "{} must sort strictly before {}",
                code_str(&pair[0]),
                code_str(&pair[1])
            );
        }
    }

    #[test]
    fn codes_are_upper_case_letters() {
        for info in all() {
            assert!(
                info.code.iter().all(u8::is_ascii_uppercase),
                "bad code {:?}",
                info.code
            );
        }
    }

    #[test]
    fn every_continent_is_valid() {
        for info in all() {
            let continent = std::str::from_utf8(&info.continent).unwrap();
            assert!(
                is_continent(continent),
                "{} has unknown continent {continent}",
                code_str(info)
            );
        }
    }

    #[test]
    fn coordinates_are_in_range() {
        for info in all() {
            assert!(
                (-90.0..=90.0).contains(&info.latitude),
                "{} latitude {}",
                code_str(info),
                info.latitude
            );
            assert!(
                (-180.0..=180.0).contains(&info.longitude),
                "{} longitude {}",
                code_str(info),
                info.longitude
            );
        }
    }

    #[test]
    fn every_entry_can_be_looked_up() {
        for info in all() {
            let code = code_str(info);
            assert_eq!(lookup(code), Some(info));
            assert_eq!(lookup(&code.to_ascii_lowercase()), Some(info));
        }
    }

    #[test]
    fn count() {
        // 249 ISO 3166-1 codes, XK, and the special codes EU and AP.
        assert!(all().len() >= 245);
        assert_eq!(all().len(), 252);
    }

    #[test]
    fn netherlands_is_near_its_centre() {
        let nl = lookup("NL").unwrap();
        assert!((nl.latitude - 52.1).abs() <= 1.5, "{}", nl.latitude);
        assert!((nl.longitude - 5.3).abs() <= 1.5, "{}", nl.longitude);
        assert_eq!(&nl.continent, b"EU");
    }

    #[test]
    fn spot_check_continents() {
        let continent = |code: &str| lookup(code).unwrap().continent;
        assert_eq!(&continent("US"), b"NA");
        assert_eq!(&continent("BR"), b"SA");
        assert_eq!(&continent("AU"), b"OC");
        assert_eq!(&continent("SG"), b"AS");
        assert_eq!(&continent("ZA"), b"AF");
        assert_eq!(&continent("AQ"), b"AN");
        // MaxMind's choices for the ambiguous ones.
        assert_eq!(&continent("RU"), b"EU");
        assert_eq!(&continent("TR"), b"AS");
        assert_eq!(&continent("CY"), b"EU");
        assert_eq!(&continent("AM"), b"AS");
        assert_eq!(&continent("EG"), b"AF");
        assert_eq!(&continent("MX"), b"NA");
        assert_eq!(&continent("PA"), b"NA");
        assert_eq!(&continent("XK"), b"EU");
        assert_eq!(&continent("EU"), b"EU");
        assert_eq!(&continent("AP"), b"AS");
    }

    #[test]
    fn lookup_ignores_case() {
        assert_eq!(lookup("nl"), lookup("NL"));
        assert_eq!(lookup("Nl"), lookup("NL"));
        assert_eq!(&lookup("de").unwrap().code, b"DE");
    }

    #[test]
    fn unknown_codes_are_none() {
        assert_eq!(lookup("ZZ"), None);
        assert_eq!(lookup("AN"), None); // Netherlands Antilles, withdrawn 2011
        assert_eq!(lookup(""), None);
        assert_eq!(lookup("N"), None);
        assert_eq!(lookup("NLD"), None);
        assert_eq!(lookup("1A"), None);
        assert_eq!(lookup("é"), None); // two bytes, not two letters
    }

    #[test]
    fn continent_codes() {
        for code in ["AF", "AN", "AS", "EU", "NA", "OC", "SA", "eu", "Oc"] {
            assert!(is_continent(code), "{code}");
        }
        for code in ["", "E", "EUR", "AM", "ZZ", "XX"] {
            assert!(!is_continent(code), "{code}");
        }
    }
}
