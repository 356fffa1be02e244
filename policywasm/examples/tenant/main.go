//go:build wasip1

// Command tenant is a hook that allows only tokens whose "tenant" claim (or
// one of whose "tenants") is the account the resource names.
package main

import (
	"strings"

	"github.com/wardenauthz/warden/policywasm/guest"
)

func init() {
	guest.Handle(func(in *guest.Input) guest.Output {
		// View reads without allocating; the strings are valid during
		// the call only.
		res := in.Resource()
		rest, ok := strings.CutPrefix(res, "/account/")
		if !ok {
			return guest.Output{Allow: true} // not an account's resource
		}
		acc, _, _ := strings.Cut(rest, "/")
		if in.Claim("tenant") == acc {
			return guest.Output{Allow: true}
		}
		for _, t := range in.Strings("claims", "tenants") {
			if t == acc {
				return guest.Output{Allow: true}
			}
		}
		return guest.Output{Reason: "the token's tenant is not " + acc}
	})
}

func main() {}
