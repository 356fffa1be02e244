// A hook that allocates without bound.
package main

import "github.com/wardenauthz/warden/policywasm/guest"

var keep [][]byte

func init() {
	guest.Handle(func(*guest.Input) guest.Output {
		for {
			keep = append(keep, make([]byte, 1<<20))
		}
	})
}

func main() {}
