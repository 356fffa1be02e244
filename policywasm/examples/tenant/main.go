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
		res := in.String("request", "resource")
		rest, ok := strings.CutPrefix(res, "/account/")
		if !ok {
			return guest.Output{Allow: true} // not an account's resource
		}
		acc, _, _ := strings.Cut(rest, "/")
		tenants := in.Strings("claims", "tenants")
		if t := in.String("claims", "tenant"); t != "" {
			tenants = append(tenants, t)
		}
		for _, t := range tenants {
			if t == acc {
				return guest.Output{Allow: true}
			}
		}
		return guest.Output{Reason: "the token's tenant is not " + acc}
	})
}

func main() {}
