// A hook that never answers.
package main

import "github.com/wardenauthz/warden/policywasm/guest"

var n int

func init() {
	guest.Handle(func(*guest.Input) guest.Output {
		for {
			n++
		}
	})
}

func main() {}
