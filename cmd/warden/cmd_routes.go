package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/wardenauthz/warden/sdk"
	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar/routes"
	"gopkg.in/yaml.v3"
)

const routesHelp = `Usage:
  warden routes put NAME FILE        store a route table (YAML or JSON), replacing it
  warden routes get|rm NAME
  warden routes ls
  warden routes test [NAME|--file FILE] METHOD URL [--token TOKEN]
                                     which route a request matches, and the decision

A node serves a table of the store with warden serve --route-table NAME.
`

func cmdRoutes(e env, args []string) error {
	sub, args, f, err := subcommand(e, args, routesHelp, "routes", map[string]string{
		"put":  "routes put NAME FILE",
		"get":  "routes get NAME",
		"rm":   "routes rm NAME",
		"ls":   "routes ls",
		"test": "routes test [NAME|--file FILE] METHOD URL [--token TOKEN]",
	})
	if err != nil {
		return err
	}
	minArgs, maxArgs := 1, 1
	var file, token *string
	switch sub {
	case "put":
		minArgs, maxArgs = 2, 2
	case "ls":
		minArgs, maxArgs = 0, 0
	case "test":
		file = f.String("file", "", "test the table of this `file` instead of one of the store")
		token = f.String("token", "", "the request's bearer `token` (default: none, as a request without one)")
		minArgs, maxArgs = 2, 3
	}
	if err := f.parse(args, minArgs, maxArgs); err != nil {
		return err
	}
	if sub == "test" {
		return testRoutes(e, f, *file, *token)
	}
	if sub == "ls" {
		return listRouteTables(e, f)
	}
	name := f.args[0]
	if err := model.ValidateHookName(name); err != nil {
		return usageError{fmt.Errorf("the route table name %q must match /%s/", name, model.HookNamePattern)}
	}
	var body []byte
	if sub == "put" {
		// Checked here first, so that a mistake is named with its line.
		spec, err := readTableFile(f.args[1])
		if err != nil {
			return err
		}
		if body, err = json.Marshal(spec); err != nil {
			return err
		}
	}
	s, err := openSession(f)
	if err != nil {
		return err
	}
	res := s.resource("routes", name)
	switch sub {
	case "get":
		raw, err := s.client.GetRouteTable(e.ctx, name)
		if err != nil {
			return denied(err, s.who(), "routes:get", res)
		}
		return showRouteTable(e, f, raw)
	case "rm":
		if _, err := s.client.DeleteRouteTable(e.ctx, name); err != nil {
			return denied(err, s.who(), "routes:delete", res)
		}
		return report(e, f, map[string]string{"removed": name}, "Route table '%s' removed.", name)
	}
	raw, rev, err := s.client.PutRouteTable(e.ctx, name, body)
	if err != nil {
		return denied(err, s.who(), "routes:put", res)
	}
	if f.json() {
		return printJSON(e.stdout, raw)
	}
	var stored struct {
		Routes []json.RawMessage `json:"routes"`
	}
	_ = json.Unmarshal(raw, &stored)
	fmt.Fprintf(e.stdout, "Route table '%s' stored: %d routes (revision %d).\n", name, len(stored.Routes), rev)
	return nil
}

// readTableFile reads and checks a route table file, whole: every problem
// is named with its route and field, and conflicting patterns too.
func readTableFile(path string) (*routes.Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, usageError{fmt.Errorf("reading the route table: %w", err)}
	}
	spec, err := routes.Parse(data)
	if err == nil {
		_, err = routes.Compile(spec)
	}
	if err != nil {
		return nil, usageError{fmt.Errorf("%s: %w", path, err)}
	}
	return spec, nil
}

// showRouteTable prints a table as stored: YAML, or JSON with -o json.
func showRouteTable(e env, f *cmdFlags, raw json.RawMessage) error {
	if f.json() {
		return printJSON(e.stdout, raw)
	}
	var t struct {
		Name string `json:"name"`
		routes.Spec
	}
	if err := json.Unmarshal(raw, &t); err != nil {
		return fmt.Errorf("the route table as the server sent it: %w", err)
	}
	out, err := yaml.Marshal(&t.Spec)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "# route table %s\n%s", t.Name, out)
	return nil
}

func listRouteTables(e env, f *cmdFlags) error {
	s, err := openSession(f)
	if err != nil {
		return err
	}
	tables, err := listAll(func(next string) (sdk.Page[sdk.RouteTableSummary], error) {
		return s.client.ListRouteTables(e.ctx, sdk.ListOptions{Count: 100, Next: next})
	})
	if err != nil {
		return denied(err, s.who(), "routes:get", s.resource("routes"))
	}
	if f.json() {
		return printJSON(e.stdout, sdk.Page[sdk.RouteTableSummary]{Items: append([]sdk.RouteTableSummary{}, tables...)})
	}
	var rows [][]string
	for _, t := range tables {
		count := strconv.Itoa(t.RouteCount)
		if t.RouteCount < 0 {
			count = "(does not load)"
		}
		rows = append(rows, []string{t.Name, count})
	}
	table(e.stdout, []string{"TABLE", "ROUTES"}, rows)
	return nil
}

// testRoutes matches a request against a table, of the store or of a
// file, and decides it as the front doors do: the requirements through
// the deployment's check API, with the request's token.
func testRoutes(e env, f *cmdFlags, file, token string) error {
	args := f.args
	switch {
	case file != "" && len(args) != 2:
		return usageError{errors.New("with --file, give METHOD URL")}
	case file == "" && len(args) != 3:
		return usageError{errors.New("give the table's NAME, or --file FILE, then METHOD URL")}
	}
	method, target := strings.ToUpper(args[len(args)-2]), args[len(args)-1]
	if _, err := routes.ParseTestURL(target); err != nil {
		return usageError{err}
	}
	var spec *routes.Spec
	var s *session
	var err error
	if file != "" {
		if spec, err = readTableFile(file); err != nil {
			return err
		}
	} else {
		name := args[0]
		if s, err = openSession(f); err != nil {
			return err
		}
		raw, err := s.client.GetRouteTable(e.ctx, name)
		if err != nil {
			return denied(err, s.who(), "routes:get", s.resource("routes", name))
		}
		if spec, err = specOf(raw); err != nil {
			return fmt.Errorf("the route table %s as the server sent it: %w", name, err)
		}
	}
	tbl, err := routes.Compile(spec)
	if err != nil {
		return err
	}
	out, err := tbl.Try(method, target, func(reqs []model.Permission) (model.Decision, error) {
		return decideRemote(e, f, s, token, reqs)
	})
	if err != nil {
		return err
	}
	if out.Route == "" {
		// The table refuses the request before any route: a door
		// answers 400.
		return cliError{exitDenied, fmt.Sprintf("refused (400): %s", out.Decision.Reason)}
	}
	if f.json() {
		if err := printJSON(e.stdout, out); err != nil {
			return err
		}
	} else {
		printRouteTest(e, out)
	}
	if !out.Let {
		return cliError{exitDenied, ""}
	}
	return nil
}

// specOf reads a table as the admin API shows it, {name, default,
// routes}, as a table.
func specOf(raw json.RawMessage) (*routes.Spec, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, err
	}
	delete(fields, "name")
	table, err := json.Marshal(fields)
	if err != nil {
		return nil, err
	}
	return routes.Parse(table)
}

// decideRemote decides requirements with a token through the check API
// (a batch), as the doors' engine does: every one must be met.
func decideRemote(e env, f *cmdFlags, s *session, token string, reqs []model.Permission) (model.Decision, error) {
	var err error
	if s == nil {
		if s, err = openSession(f); err != nil {
			return model.Decision{}, err
		}
	}
	cfg := sdk.Config{BaseURL: s.profile.BaseURL, RootCAs: s.roots}
	if token != "" {
		cfg.Token = sdk.StaticToken(token)
	}
	c, err := sdk.NewClient(cfg)
	if err != nil {
		return model.Decision{}, err
	}
	ds, err := c.CheckBatch(e.ctx, reqs, 0)
	if err != nil {
		return model.Decision{}, err
	}
	if len(ds) == 0 {
		return model.Decision{}, errors.New("the check API answered no decision")
	}
	for _, d := range ds {
		if !d.Allow {
			return d, nil
		}
	}
	return ds[0], nil
}

func printRouteTest(e env, t routes.Test) {
	w := e.stdout
	if t.Path != "" {
		fmt.Fprintf(w, "route:        %s (%s), path %s\n", t.Route, t.Mode, t.Path)
	} else {
		fmt.Fprintf(w, "route:        none matches: the table's default\n")
	}
	if t.Authentication != "" {
		fmt.Fprintf(w, "auth:         %s\n", t.Authentication)
	}
	for i, r := range t.Requirements {
		label := ""
		if i == 0 {
			label = "requirements:"
		}
		fmt.Fprintf(w, "%-13s %s on %s\n", label, r.Action, r.Resource)
	}
	if len(t.Hooks) > 0 {
		fmt.Fprintf(w, "hooks:        %s (run by the front doors, not by this test)\n", strings.Join(t.Hooks, ", "))
	}
	verdict := "denied"
	if t.Decision.Allow {
		verdict = "allowed"
	}
	fmt.Fprintf(w, "decision:     %s (%d): %s\n", verdict, t.Decision.Status, t.Decision.Reason)
	if !t.Decision.Allow && t.Let {
		fmt.Fprintf(w, "              let through: the route is in dry-run mode\n")
	}
}
