# example.com: a commented example of every feature of a Meridian zone file.
#
# Names are relative to `origin` unless they end in a dot; "@" is the origin itself.
# Durations are seconds (300) or a number with a unit: "30s", "5m", "1h", "2d", "1w".

origin = "example.com"
ttl = "1h"                        # default TTL of every record set

[soa]
primary = "ns1"                   # MNAME: ns1.example.com.
contact = "hostmaster@example.com"  # RNAME, written as a mailbox
serial = 2026112201
refresh = "1h"
retry = "15m"
expire = "1w"
negative_ttl = "5m"               # how long resolvers remember NXDOMAIN / NODATA

# The apex: the zone's name servers, mail, policy records.
[names."@"]
ns = ["ns1", "ns2"]
mx = ["10 mail", "20 mail.backup-provider.net."]
txt = ["v=spf1 mx -all"]
caa = ['0 issue "letsencrypt.org"', '0 iodef "mailto:security@example.com"']
a = "192.0.2.1"
aaaa = "2001:db8::1"

# This server's own names: in-zone, so answers for NS and MX carry their addresses.
[names.ns1]
a = "192.0.2.53"
aaaa = "2001:db8::53"

[names.ns2]
a = "198.51.100.53"

[names.mail]
a = "192.0.2.25"

# A name with several addresses and its own TTL.
[names.www]
ttl = "5m"
a = ["192.0.2.10", "192.0.2.11"]
aaaa = "2001:db8::10"

# ---------------------------------------------------------------------------------------
# Data centers: where traffic can go. Each has addresses (IPv4 and/or IPv6, optionally
# { address = "...", weight = N }) and a location ([latitude, longitude]); a country alone
# also works (its centroid is used), and the continent follows from the country.

[datacenters.ams]
addresses = ["192.0.2.10", "2001:db8:a::10"]
location = [52.3676, 4.9041]        # Amsterdam
country = "NL"
weight = 2                           # relative capacity (default 1); 0 drains it
# check = "web"

[datacenters.nyc]
addresses = ["198.51.100.10", "2001:db8:b::10"]
location = [40.7128, -74.0060]      # New York
country = "US"

[datacenters.sin]
addresses = ["203.0.113.10", "2001:db8:c::10"]
location = [1.3521, 103.8198]       # Singapore
country = "SG"

# Health checks, referred to by name from a data center (`check = "web"`, applied to each
# of its addresses) or from one address ({ address = "...", check = "web" }; "none" opts
# an address out). A data center is down when all its addresses are; its clients then get
# their next choice. The example's addresses are documentation addresses nothing answers
# on, so the example data centers leave their check commented out.
[checks.web]
type = "https"                       # "http", "https" or "tcp"
port = 443
path = "/health"
host = "www.example.com"             # Host header, and the TLS name checked (SNI)
expect = [200, 204]                  # default: any 2xx or 3xx
body = "ok"                          # optional: the body must contain this
interval = "5s"
timeout = "2s"
rise = 2                             # successes in a row to come back up
fall = 3                             # failures in a row to go down
initial = "up"                       # before the first results: "up", "down" or "first_result"

# A GSLB name: each client gets the data center nearest to it (by great-circle distance
# from where GeoIP places the client, or the EDNS Client Subnet it came with).
# A client in Sao Paulo gets nyc, one in Sydney gets sin.
[names.cdn.gslb]
datacenters = ["ams", "nyc", "sin"]
policy = "nearest"
ttl = "30s"                          # short, so clients move soon after a change
max_datacenters = 1                  # data centers per answer
min_ttl = "10s"                      # TTL while a candidate is down, degraded or flapping
all_down = "fail_open"               # every candidate down: "fail_open" (answer as if up),
                                     # "servfail", "nodata", { addresses = ["..."] } or
                                     # { cname = "sorry.example.net." }

# A GSLB name with explicit rules; the most specific match wins:
# network > asn > subdivision > country > continent > default.
[names.api.gslb]
datacenters = ["ams", "nyc", "sin"]
policy = "map"
max_datacenters = 2                  # answer with a second site as well
[names.api.gslb.map]
default = "nearest"                  # clients no rule covers: nearest first
continent.SA = ["nyc", "ams"]
continent.OC = ["sin", "nyc"]
country.SG = ["sin", "ams"]
network."192.0.2.0/25" = ["ams"]      # pin a network, ahead of GeoIP

# An alias inside the zone: the answer carries the CNAME and www's addresses.
[names.video.gslb]                   # weighted spreading
datacenters = ["ams", "nyc", "sin"]
spread = 2                           # the 2 nearest share each client's traffic, by weight
spill = 1                            # a down site's share goes to the next healthy one
select = "sticky"                    # a client network keeps its site; "rotate" (default)
                                     # interleaves per query

[names.web]
cname = "www"

# A service record (RFC 2782) pointing at an in-zone host.
[names."_sip._tcp"]
srv = "10 60 5060 www"

# Reverse-style pointer, and a long TXT (split into 255-byte strings automatically).
[names.ptr-example]
ptr = "www"

# A wildcard: any name below apps.example.com that does not exist otherwise.
[names."*.apps"]
a = "192.0.2.80"
txt = "served by the apps wildcard"

# An existing name below the wildcard's parent: the wildcard does not apply to it.
[names."status.apps"]
a = "192.0.2.81"

# A delegation: dev.example.com is served by other name servers. The in-zone one needs
# glue (its address), given below the delegation; glue is the only data allowed there.
[names.dev]
ns = ["ns1.dev", "ns.other-dns.net."]

[names."ns1.dev"]
a = "192.0.2.200"
