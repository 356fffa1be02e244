package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/wardenauthz/warden/sdk"
	"github.com/wardenauthz/warden/sdk/model"
)

func cmdHook(e env, args []string) error {
	sub, args, f, err := subcommand(e, args, `Usage:
  warden hook put NAME MODULE.wasm [--mode restrict|decide] [--action-prefix PREFIX]
  warden hook get|rm NAME
  warden hook ls
`, "hook", map[string]string{
		"put": "hook put NAME MODULE.wasm [--mode restrict|decide] [--action-prefix PREFIX]",
		"get": "hook get NAME",
		"rm":  "hook rm NAME",
		"ls":  "hook ls",
	})
	if err != nil {
		return err
	}
	var mode, prefix *string
	nargs := 1
	switch sub {
	case "put":
		mode = f.String("mode", model.HookRestrict, "restrict (the hook can only deny) or decide (the hook's answer stands)")
		prefix = f.String("action-prefix", "", "apply the hook only to actions starting with `PREFIX` (default: every action)")
		nargs = 2
	case "ls":
		nargs = 0
	}
	if err := f.parse(args, nargs, nargs); err != nil {
		return err
	}
	if sub == "ls" {
		return listHooks(e, f)
	}
	name := f.args[0]
	if err := model.ValidateHookName(name); err != nil {
		return usageError{err}
	}
	var module []byte
	if sub == "put" {
		if *mode != model.HookRestrict && *mode != model.HookDecide {
			return usageError{fmt.Errorf("--mode %q must be %s or %s", *mode, model.HookRestrict, model.HookDecide)}
		}
		if module, err = os.ReadFile(f.args[1]); err != nil {
			return usageError{fmt.Errorf("reading the module: %w", err)}
		}
	}
	s, err := openSession(f)
	if err != nil {
		return err
	}
	res := s.resource("hook", name)
	switch sub {
	case "get":
		h, err := s.client.GetHook(e.ctx, name)
		if err != nil {
			return denied(err, s.who(), "hook:get", res)
		}
		return showHook(e, f, h)
	case "rm":
		if _, err := s.client.DeleteHook(e.ctx, name); err != nil {
			return denied(err, s.who(), "hook:delete", res)
		}
		return report(e, f, map[string]string{"removed": name}, "Hook '%s' removed.", name)
	}
	h, _, err := s.client.PutHook(e.ctx, name, module, sdk.HookOptions{Mode: *mode, ActionPrefix: *prefix})
	if err != nil {
		return denied(err, s.who(), "hook:put", res)
	}
	return showHook(e, f, h)
}

// listHooks prints the account's hooks.
func listHooks(e env, f *cmdFlags) error {
	s, err := openSession(f)
	if err != nil {
		return err
	}
	hooks, err := listAll(func(next string) (sdk.Page[model.Hook], error) {
		return s.client.ListHooks(e.ctx, sdk.ListOptions{Count: 100, Next: next})
	})
	if err != nil {
		return denied(err, s.who(), "hook:get", s.resource("hook"))
	}
	if f.json() {
		return printJSON(e.stdout, sdk.Page[model.Hook]{Items: append([]model.Hook{}, hooks...)})
	}
	var rows [][]string
	for _, h := range hooks {
		prefix := h.ActionPrefix
		if prefix == "" {
			prefix = "(every action)"
		}
		rows = append(rows, []string{h.Name, h.Mode, prefix, strconv.Itoa(h.Size), h.SHA256[:min(12, len(h.SHA256))]})
	}
	table(e.stdout, []string{"HOOK", "MODE", "ACTIONS", "BYTES", "SHA256"}, rows)
	return nil
}

func showHook(e env, f *cmdFlags, h model.Hook) error {
	if f.json() {
		return printJSON(e.stdout, h)
	}
	prefix := h.ActionPrefix
	if prefix == "" {
		prefix = "(every action)"
	}
	fields(e.stdout, "Hook", h.Name, "Mode", h.Mode, "Actions", prefix, "Module", h.SHA256, "Size", strconv.Itoa(h.Size)+" bytes")
	return nil
}
