//go:build wasip1

// Command ipallow is a hook that allows only requests whose source address
// is in an allow-list of networks.
package main

import (
	"net/netip"

	"github.com/wardenauthz/warden/policywasm/guest"
)

// allowed are the networks requests may come from.
var allowed = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
}

func init() {
	guest.Handle(func(in *guest.Input) guest.Output {
		src := in.SourceIP()
		if src == "" {
			return guest.Output{Reason: "no source address to check"}
		}
		addr, err := netip.ParseAddr(src)
		if err != nil {
			return guest.Output{Reason: "no source address to check"}
		}
		for _, p := range allowed {
			if p.Contains(addr.Unmap()) {
				return guest.Output{Allow: true}
			}
		}
		return guest.Output{Reason: "source " + src + " is not in the allow-list"}
	})
}

func main() {}
