package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/wardenauthz/warden/sdk"
	"github.com/wardenauthz/warden/sdk/model"
)

func cmdHook(e env, args []string) error {
	if err := groupHelp(e, args, `Usage:
  warden hook put NAME MODULE.wasm [--mode restrict|decide] [--action-prefix PREFIX]
  warden hook get|rm NAME
`); err != nil {
		return err
	}
	sub, args := args[0], args[1:]
	usage := map[string]string{
		"put": "hook put NAME MODULE.wasm [--mode restrict|decide] [--action-prefix PREFIX]",
		"get": "hook get NAME",
		"rm":  "hook rm NAME",
	}[sub]
	if usage == "" {
		return usageError{fmt.Errorf("unknown subcommand %q: want put, get or rm", sub)}
	}
	f := newFlags(e, "hook "+sub, usage)
	var mode, prefix *string
	nargs := 1
	if sub == "put" {
		mode = f.String("mode", model.HookRestrict, "restrict (the hook can only deny) or decide (the hook's answer stands)")
		prefix = f.String("action-prefix", "", "apply the hook only to actions starting with `PREFIX` (default: every action)")
		nargs = 2
	}
	if err := f.parse(args, nargs, nargs); err != nil {
		return err
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
		var err error
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
