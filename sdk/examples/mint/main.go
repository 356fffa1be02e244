// Command mint prints a token of a warden CLI profile that carries inline
// permissions: the token may do only what they allow, however much the
// profile's agent may do.
//
//	go run ./sdk/examples/mint [--profile NAME] [--lifetime 10m] ACTION RESOURCE [ACTION RESOURCE]...
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/wardenauthz/warden/sdk"
	"github.com/wardenauthz/warden/sdk/model"
)

func main() {
	profile := flag.String("profile", "", "the profile (default: the default profile)")
	lifetime := flag.Duration("lifetime", 10*time.Minute, "how long the token is valid")
	flag.Parse()
	if flag.NArg() == 0 || flag.NArg()%2 != 0 {
		fmt.Fprintln(os.Stderr, "usage: mint [--profile NAME] [--lifetime D] ACTION RESOURCE [ACTION RESOURCE]...")
		os.Exit(2)
	}
	var perms []model.Permission
	for i := 0; i < flag.NArg(); i += 2 {
		perms = append(perms, model.Permission{Action: flag.Arg(i), Resource: flag.Arg(i + 1)})
	}
	store, err := sdk.DefaultProfileStore()
	if err != nil {
		fail(err)
	}
	p, _, err := store.Load(*profile)
	if err != nil {
		fail(err)
	}
	token, err := p.Mint(*lifetime, perms)
	if err != nil {
		fail(err)
	}
	fmt.Println(token)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "mint:", err)
	os.Exit(1)
}
