// A hook that allows, saying which action it saw.
package main

import "github.com/wardenauthz/warden/policywasm/guest"

func init() {
	guest.Handle(func(in *guest.Input) guest.Output {
		return guest.Output{Allow: true, Reason: "saw " + in.Action(),
			Headers: map[string]string{"X-Hook": "allow"}}
	})
}

func main() {}
