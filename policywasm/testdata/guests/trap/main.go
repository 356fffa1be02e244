// A hook that panics.
package main

import "github.com/wardenauthz/warden/policywasm/guest"

func init() {
	guest.Handle(func(in *guest.Input) guest.Output {
		var m map[string]int
		m[in.String("request", "action")]++ // assignment to a nil map
		return guest.Output{Allow: true}
	})
}

func main() {}
