package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/wardenauthz/warden/sdk"
	"github.com/wardenauthz/warden/sdk/model"
)

// agentKind is users or clients: the CLI treats both alike.
type agentKind struct {
	name   string // "user" or "client"
	addUse string
}

var (
	usersCLI   = agentKind{name: "user", addUse: "user add [FIRST [LAST [EMAIL]]]"}
	clientsCLI = agentKind{name: "client", addUse: "client add [DISPLAYNAME]"}
)

// record is a user or a client, whichever the command is about: the SDK's
// Agent has the fields of both.
type record = sdk.Agent

func fromUser(u model.User) record {
	return record{ID: u.ID, FirstName: u.FirstName, LastName: u.LastName, PrimaryEmail: u.PrimaryEmail, Identities: u.Identities, Access: u.Access}
}

func fromClient(c model.Client) record {
	return record{ID: c.ID, DisplayName: c.DisplayName, Identities: c.Identities, Access: c.Access}
}

func grantsOf(r record) []model.Permission {
	if r.Access == nil {
		return nil
	}
	return r.Access.Allow
}

// The calls of one kind, over the SDK.
func (k agentKind) get(e env, s *session, id string) (record, error) {
	if k.name == "user" {
		u, err := s.client.GetUser(e.ctx, id)
		return fromUser(u), err
	}
	c, err := s.client.GetClient(e.ctx, id)
	return fromClient(c), err
}

func (k agentKind) update(e env, s *session, id string, u sdk.AgentUpdate) (record, error) {
	if k.name == "user" {
		out, _, err := s.client.UpdateUser(e.ctx, id, u)
		return fromUser(out), err
	}
	out, _, err := s.client.UpdateClient(e.ctx, id, u)
	return fromClient(out), err
}

func (k agentKind) list(e env, s *session, o sdk.ListOptions) ([]record, error) {
	return listAll(func(next string) (sdk.Page[record], error) {
		o.Next = next
		var out sdk.Page[record]
		if k.name == "user" {
			p, err := s.client.ListUsers(e.ctx, o)
			for _, u := range p.Items {
				out.Items = append(out.Items, fromUser(u))
			}
			out.Next = p.Next
			return out, err
		}
		p, err := s.client.ListClients(e.ctx, o)
		for _, c := range p.Items {
			out.Items = append(out.Items, fromClient(c))
		}
		out.Next = p.Next
		return out, err
	})
}

func cmdAgents(k agentKind) func(env, []string) error {
	return func(e env, args []string) error {
		if err := groupHelp(e, args, k.help()); err != nil {
			return err
		}
		switch args[0] {
		case "identity":
			return k.identity(e, args[1:])
		case "access":
			return k.access(e, args[1:])
		}
		return k.basic(e, args[0], args[1:])
	}
}

func (k agentKind) help() string {
	n := k.name
	return fmt.Sprintf(`Usage:
  warden %s
  warden %s get|rm|init ID
  warden %s ls [--name TEXT] [--issuer ISS [--subject SUB]] [--all]
  warden %s update ID [flags]
  warden %s identity add|ls|rm ID --issuer ISSUER --subject SUBJECT
  warden %s access add|ls|rm ID [ACTION] [--action ACTION] [--resource RESOURCE]

Run 'warden %s SUBCOMMAND --help' for its flags.
`, k.addUse, n, n, n, n, n, n) + examplesOf(n)
}

func (k agentKind) basic(e env, sub string, args []string) error {
	n := k.name
	usage := map[string]string{
		"add":    k.addUse,
		"get":    n + " get ID",
		"ls":     n + " ls [--name TEXT] [--email TEXT] [--exact] [--issuer ISS [--subject SUB]] [--all]",
		"update": n + " update ID " + map[string]string{"user": "[--first-name X] [--last-name X] [--email X]", "client": "[--display-name X]"}[n],
		"rm":     n + " rm ID",
		"init":   n + " init ID [--oauth JSON]",
	}[sub]
	if usage == "" {
		return usageError{fmt.Errorf("unknown subcommand %q: want add, get, ls, update, rm, identity, access or init", sub)}
	}
	f := newFlags(e, n+" "+sub, usage)
	var oauth *string
	if sub == "init" {
		oauth = f.String("oauth", "", "mint an oauth init token instead, whose profile.oauth is this JSON `object` (Fusebit's settings); it is enrolled with warden init TOKEN --access-token T")
	}
	var names map[string]*string
	if sub == "update" {
		names = map[string]*string{}
		for _, fl := range map[string][]string{"user": {"first-name", "last-name", "email"}, "client": {"display-name"}}[n] {
			names[fl] = f.String(fl, "", "the new value (empty clears it)")
		}
	}
	var lo struct {
		name, email, issuer, subject *string
		exact, all                   *bool
	}
	if sub == "ls" {
		lo.name = f.String("name", "", "names containing `TEXT` (case-insensitive)")
		lo.email = f.String("email", "", "emails containing `TEXT` (users)")
		lo.exact = f.Bool("exact", false, "match --name and --email whole")
		lo.issuer = f.String("issuer", "", "agents with an identity at this `issuer`")
		lo.subject = f.String("subject", "", "... and this `subject`")
		lo.all = f.Bool("all", false, "show identities and access whole (the table shows how many each has without it)")
	}
	min, max := 1, 1
	switch sub {
	case "ls":
		min, max = 0, 0
	case "add":
		min, max = 0, map[string]int{"user": 3, "client": 1}[n]
	}
	if err := f.parse(args, min, max); err != nil {
		return err
	}
	s, err := openSession(f)
	if err != nil {
		return err
	}
	var id, res string
	if sub != "add" && sub != "ls" {
		id = f.args[0]
		res = s.resource(n, id)
	}
	switch sub {
	case "add":
		var r record
		if n == "user" {
			u := model.User{}
			pos := []*string{&u.FirstName, &u.LastName, &u.PrimaryEmail}
			for i, a := range f.args {
				*pos[i] = a
			}
			out, _, err := s.client.AddUser(e.ctx, u)
			if err != nil {
				return denied(err, s.who(), "user:add", s.resource("user"))
			}
			r = fromUser(out)
		} else {
			c := model.Client{}
			if len(f.args) == 1 {
				c.DisplayName = f.args[0]
			}
			out, _, err := s.client.AddClient(e.ctx, c)
			if err != nil {
				return denied(err, s.who(), "client:add", s.resource("client"))
			}
			r = fromClient(out)
		}
		return k.show(e, f, r)
	case "get":
		r, err := k.get(e, s, id)
		if err != nil {
			return denied(err, s.who(), n+":get", res)
		}
		return k.show(e, f, r)
	case "ls":
		// A table counts identities and grants, so it reads them even
		// without --all; JSON carries them only with --all, as the API.
		rs, err := k.list(e, s, sdk.ListOptions{Count: 100, Name: *lo.name, Email: *lo.email, Exact: *lo.exact,
			IssuerID: *lo.issuer, Subject: *lo.subject, All: *lo.all || !f.json()})
		if err != nil {
			return denied(err, s.who(), n+":get", s.resource(n))
		}
		if f.json() {
			return printJSON(e.stdout, map[string]any{"items": append([]record{}, rs...)})
		}
		var rows [][]string
		for _, r := range rs {
			row := []string{r.ID, r.DisplayName}
			if n == "user" {
				row = []string{r.ID, strings.TrimSpace(r.FirstName + " " + r.LastName), r.PrimaryEmail}
			}
			if *lo.all {
				row = append(row, identitiesText(r.Identities), grantsText(grantsOf(r)))
			} else {
				row = append(row, fmt.Sprint(len(r.Identities)), fmt.Sprint(len(grantsOf(r))))
			}
			rows = append(rows, row)
		}
		header := map[string][]string{"user": {"USER", "NAME", "EMAIL"}, "client": {"CLIENT", "NAME"}}[n]
		table(e.stdout, append(header, "IDENTITIES", "GRANTS"), rows)
		return nil
	case "update":
		u := sdk.AgentUpdate{}
		targets := map[string]**string{"first-name": &u.FirstName, "last-name": &u.LastName, "email": &u.PrimaryEmail, "display-name": &u.DisplayName}
		for fl, v := range names {
			if f.changed(fl) {
				*targets[fl] = v
			}
		}
		r, err := k.update(e, s, id, u)
		if err != nil {
			return denied(err, s.who(), n+":update", res)
		}
		return k.show(e, f, r)
	case "rm":
		var err error
		if n == "user" {
			_, err = s.client.DeleteUser(e.ctx, id)
		} else {
			_, err = s.client.DeleteClient(e.ctx, id)
		}
		if err != nil {
			return denied(err, s.who(), n+":delete", res)
		}
		return report(e, f, map[string]string{"removed": id}, "%s '%s' removed.", strings.ToUpper(n[:1])+n[1:], id)
	case "init":
		var tok string
		var err error
		var opts sdk.InitOptions
		if *oauth != "" {
			if json.Unmarshal([]byte(*oauth), &opts.OAuth) != nil || opts.OAuth == nil {
				return usageError{fmt.Errorf("--oauth %q must be a JSON object", *oauth)}
			}
		}
		if n == "user" {
			tok, _, err = s.client.InitUser(e.ctx, id, opts)
		} else {
			tok, _, err = s.client.InitClient(e.ctx, id, opts)
		}
		if err != nil {
			return denied(err, s.who(), n+":init", s.resource(n, id, "init"))
		}
		if f.json() {
			return printJSON(e.stdout, tok)
		}
		if opts.OAuth != nil {
			fmt.Fprintf(e.stdout, "Run this where the %s works, within 8 hours, with an access token of the identity to add; the token works once:\n\n  warden init %s --access-token ACCESS_TOKEN\n", n, tok)
			return nil
		}
		fmt.Fprintf(e.stdout, "Run this where the %s works, within 8 hours; the token works once:\n\n  warden init %s\n", n, tok)
		return nil
	}
	return nil
}

// identitiesText and grantsText put a list in one table cell.
func identitiesText(ids []model.Identity) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = id.IssuerID + " " + id.Subject
	}
	return strings.Join(parts, "; ")
}

func grantsText(grants []model.Permission) string {
	parts := make([]string, len(grants))
	for i, g := range grants {
		parts[i] = g.Action + " " + g.Resource
	}
	return strings.Join(parts, "; ")
}

func (k agentKind) show(e env, f *cmdFlags, r record) error {
	if f.json() {
		return printJSON(e.stdout, r)
	}
	pairs := []string{strings.ToUpper(k.name[:1]) + k.name[1:], r.ID, "First name", r.FirstName, "Last name", r.LastName,
		"Email", r.PrimaryEmail, "Name", r.DisplayName}
	for _, id := range r.Identities {
		pairs = append(pairs, "Identity", id.IssuerID+"  "+id.Subject)
	}
	for _, g := range grantsOf(r) {
		pairs = append(pairs, "Allow", g.Action+"  "+g.Resource)
	}
	fields(e.stdout, pairs...)
	return nil
}

// identity manages a user's or client's identities: read, change, write.
func (k agentKind) identity(e env, args []string) error {
	if err := groupHelp(e, args, fmt.Sprintf("Usage:\n  warden %s identity add|ls|rm ID --issuer ISSUER --subject SUBJECT\n%s", k.name, examplesOf(k.name+" identity"))); err != nil {
		return err
	}
	sub := args[0]
	if sub != "add" && sub != "ls" && sub != "rm" {
		return usageError{fmt.Errorf("unknown subcommand %q: want add, ls or rm", sub)}
	}
	f := newFlags(e, k.name+" identity "+sub, k.name+" identity "+sub+" ID --issuer ISSUER --subject SUBJECT")
	issuer := f.String("issuer", "", "the identity's `issuer` id")
	subject := f.String("subject", "", "the identity's `subject`")
	if err := f.parse(args[1:], 1, 1); err != nil {
		return err
	}
	if sub != "ls" && (*issuer == "" || *subject == "") {
		return usageError{fmt.Errorf("--issuer and --subject are required")}
	}
	s, err := openSession(f)
	if err != nil {
		return err
	}
	id := f.args[0]
	r, err := k.get(e, s, id)
	if err != nil {
		return denied(err, s.who(), k.name+":get", s.resource(k.name, id))
	}
	ident := model.Identity{IssuerID: *issuer, Subject: *subject}
	ids := r.Identities
	switch sub {
	case "ls":
		if f.json() {
			return printJSON(e.stdout, append([]model.Identity{}, ids...))
		}
		var rows [][]string
		for _, i := range ids {
			rows = append(rows, []string{i.IssuerID, i.Subject})
		}
		table(e.stdout, []string{"ISSUER", "SUBJECT"}, rows)
		return nil
	case "add":
		if slices.Contains(ids, ident) {
			return k.show(e, f, r)
		}
		ids = append(ids, ident)
	case "rm":
		i := slices.Index(ids, ident)
		if i < 0 {
			return cliError{exitNotFound, fmt.Sprintf("%s %s has no identity {%s, %s}", k.name, id, *issuer, *subject)}
		}
		ids = slices.Delete(slices.Clone(ids), i, i+1)
	}
	r, err = k.update(e, s, id, sdk.AgentUpdate{Identities: &ids})
	if err != nil {
		return denied(err, s.who(), k.name+":update", s.resource(k.name, id))
	}
	return k.show(e, f, r)
}

// grammarHelp says what a grant may hold.
const grammarHelp = `An ACTION is ':'-separated segments, each a lone '*' or letters, digits, '-'
and '_', with nothing after a '*': function:get, function:*, *. Matching is
case-sensitive: a grant of FUNCTION:GET does not allow function:get.
A RESOURCE starts with '/' and covers every resource under it: /account/ACC/
covers /account/ACC/subscription/SUB/. It has no empty, '.' or '..' segment,
no white space or control character, and no '{{'.
`

// access manages a user's or client's grants: read, change, write.
func (k agentKind) access(e env, args []string) error {
	if err := groupHelp(e, args, fmt.Sprintf("Usage:\n  warden %s access add|ls|rm ID [ACTION] [--action ACTION] [--resource RESOURCE]\n\n%s%s", k.name, grammarHelp, examplesOf(k.name+" access"))); err != nil {
		return err
	}
	sub := args[0]
	if sub != "add" && sub != "ls" && sub != "rm" {
		return usageError{fmt.Errorf("unknown subcommand %q: want add, ls or rm", sub)}
	}
	f := newFlags(e, k.name+" access "+sub, k.name+" access "+sub+" ID [ACTION] [--action ACTION] [--resource RESOURCE]")
	action := f.String("action", "", "the `action`, e.g. function:get or function:*; matched case-sensitively, so FUNCTION:GET is another action")
	resource := f.String("resource", "", "the `resource` (default: the profile's account, /account/<acc>/); it covers everything under it")
	maxArgs := 2
	if sub == "ls" {
		maxArgs = 1
	}
	if err := f.parse(args[1:], 1, maxArgs); err != nil {
		return err
	}
	if len(f.args) == 2 {
		if *action != "" {
			return usageError{fmt.Errorf("the action is given twice: as an argument and with --action")}
		}
		*action = f.args[1]
	}
	s, err := openSession(f)
	if err != nil {
		return err
	}
	if *resource == "" {
		*resource = s.resource()
	}
	if sub != "ls" {
		if *action == "" {
			return usageError{fmt.Errorf("an action is required, as an argument or with --action")}
		}
		if err := model.ValidateAction(*action); err != nil {
			return usageError{err}
		}
		if !strings.HasPrefix(*resource, "/") {
			return usageError{fmt.Errorf("the resource %q must start with '/', e.g. %s", *resource, s.resource())}
		}
		if err := model.ValidateResource(*resource); err != nil {
			return usageError{err}
		}
	}
	id := f.args[0]
	r, err := k.get(e, s, id)
	if err != nil {
		return denied(err, s.who(), k.name+":get", s.resource(k.name, id))
	}
	grants := grantsOf(r)
	g := model.Permission{Action: *action, Resource: model.NormalizeResource(*resource)}
	switch sub {
	case "ls":
		if f.json() {
			return printJSON(e.stdout, append([]model.Permission{}, grants...))
		}
		var rows [][]string
		for _, g := range grants {
			rows = append(rows, []string{g.Action, g.Resource})
		}
		table(e.stdout, []string{"ACTION", "RESOURCE"}, rows)
		return nil
	case "add":
		if slices.Contains(grants, g) {
			return k.show(e, f, r)
		}
		grants = append(slices.Clone(grants), g)
	case "rm":
		i := slices.Index(grants, g)
		if i < 0 {
			return cliError{exitNotFound, fmt.Sprintf("%s %s has no grant of '%s' on '%s'", k.name, id, g.Action, g.Resource)}
		}
		grants = slices.Delete(slices.Clone(grants), i, i+1)
	}
	r, err = k.update(e, s, id, sdk.AgentUpdate{Access: &grants})
	if err != nil {
		return denied(err, s.who(), k.name+":update", s.resource(k.name, id))
	}
	return k.show(e, f, r)
}
