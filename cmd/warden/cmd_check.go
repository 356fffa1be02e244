package main

import (
	"fmt"
	"strings"

	"github.com/wardenauthz/warden/sdk"
	"github.com/wardenauthz/warden/sdk/model"
)

// cmdCheck asks whether the profile may perform ACTION on RESOURCE. A
// denial exits with exitDenied, so scripts can branch on it.
func cmdCheck(e env, args []string) error {
	f := newFlags(e, "check", "check ACTION RESOURCE [--token TOKEN] [--min-revision N]")
	minRev := f.Int64("min-revision", 0, "wait until the deployment's state includes this store `revision`")
	token := f.String("token", "", "check for this bearer `token` instead of the profile's")
	if err := f.parse(args, 2, 2); err != nil {
		return err
	}
	if err := model.ValidateAction(f.args[0]); err != nil {
		return usageError{err}
	}
	if !strings.HasPrefix(f.args[1], "/") {
		return usageError{fmt.Errorf("the resource %q must start with '/', e.g. /account/<acc>/", f.args[1])}
	}
	if err := model.ValidateResource(f.args[1]); err != nil {
		return usageError{err}
	}
	if *minRev < 0 {
		return usageError{fmt.Errorf("--min-revision %d must not be negative", *minRev)}
	}
	s, err := openSession(f)
	if err != nil {
		return err
	}
	c := s.client
	if *token != "" {
		if c, err = sdk.NewClient(sdk.Config{BaseURL: s.profile.BaseURL, Token: sdk.StaticToken(*token), RootCAs: s.roots}); err != nil {
			return err
		}
	}
	d, err := c.Check(e.ctx, f.args[0], f.args[1], *minRev)
	if err != nil {
		return err
	}
	if f.json() {
		if err := printJSON(e.stdout, d); err != nil {
			return err
		}
	} else {
		printDecision(e, d)
	}
	if !d.Allow {
		return cliError{exitDenied, ""}
	}
	return nil
}

func printDecision(e env, d model.Decision) {
	if d.Allow {
		fmt.Fprintf(e.stdout, "allowed: %s %s, by its grant of '%s' on '%s' (revision %d)\n", d.Agent.Type, d.Agent.ID, d.Grant.Action, d.Grant.Resource, d.Revision)
		return
	}
	fmt.Fprintf(e.stdout, "denied (%d): %s (revision %d)\n", d.Status, d.Reason, d.Revision)
}
