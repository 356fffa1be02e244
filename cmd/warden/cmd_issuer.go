package main

import (
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/wardenauthz/warden/sdk"
	"github.com/wardenauthz/warden/sdk/model"
)

func cmdIssuer(e env, args []string) error {
	if err := groupHelp(e, args, `Usage:
  warden issuer add ISSUER (--public-key FILE --key-id KID | --jwks-url URL) [--display-name NAME]
  warden issuer get|rm ISSUER
  warden issuer ls
  warden issuer update ISSUER [--public-key FILE --key-id KID | --jwks-url URL] [--display-name NAME]
`); err != nil {
		return err
	}
	sub, args := args[0], args[1:]
	usage := map[string]string{
		"add":    "issuer add ISSUER (--public-key FILE --key-id KID | --jwks-url URL) [--display-name NAME]",
		"get":    "issuer get ISSUER",
		"ls":     "issuer ls",
		"update": "issuer update ISSUER [--public-key FILE --key-id KID | --jwks-url URL] [--display-name NAME]",
		"rm":     "issuer rm ISSUER",
	}[sub]
	if usage == "" {
		return usageError{fmt.Errorf("unknown subcommand %q: want add, get, ls, update or rm", sub)}
	}
	f := newFlags(e, "issuer "+sub, usage)
	var keyFile, keyID, jwks, display *string
	if sub == "add" || sub == "update" {
		keyFile = f.String("public-key", "", "`file` with the issuer's PEM public key (SPKI, PKCS#1 or an X.509 certificate)")
		keyID = f.String("key-id", "", "the `kid` tokens signed with --public-key carry")
		jwks = f.String("jwks-url", "", "`URL` serving the issuer's JWKS (or a map of kid to PEM)")
		display = f.String("display-name", "", "a `name` for people")
	}
	nargs := 1
	if sub == "ls" {
		nargs = 0
	}
	if err := f.parse(args, nargs, nargs); err != nil {
		return err
	}
	s, err := openSession(f)
	if err != nil {
		return err
	}
	var id, res string
	if nargs == 1 {
		id = f.args[0]
		res = s.resource("issuer", url.PathEscape(id))
	}
	switch sub {
	case "ls":
		var all []model.Issuer
		for page := (sdk.Page[model.Issuer]{}); ; {
			prev := page.Next
			page, err = s.client.ListIssuers(e.ctx, sdk.ListOptions{Count: 100, Next: page.Next})
			if err != nil {
				return denied(err, s.who(), "issuer:get", s.resource("issuer"))
			}
			all = append(all, page.Items...)
			if page.Next == "" {
				break
			}
			if page.Next == prev {
				return fmt.Errorf("the server repeated the list cursor %q; stopping", page.Next)
			}
		}
		if f.json() {
			return printJSON(e.stdout, sdk.Page[model.Issuer]{Items: append([]model.Issuer{}, all...)})
		}
		var rows [][]string
		for _, iss := range all {
			rows = append(rows, []string{iss.ID, iss.DisplayName, keySource(iss)})
		}
		table(e.stdout, []string{"ISSUER", "NAME", "KEYS"}, rows)
		return nil
	case "get":
		iss, err := s.client.GetIssuer(e.ctx, id)
		if err != nil {
			return denied(err, s.who(), "issuer:get", res)
		}
		return showIssuer(e, f, iss)
	case "rm":
		if _, err := s.client.DeleteIssuer(e.ctx, id); err != nil {
			return denied(err, s.who(), "issuer:delete", res)
		}
		return report(e, f, map[string]string{"removed": id}, "Issuer '%s' removed.", id)
	}
	keys, err := readKeys(*keyFile, *keyID, *jwks)
	if err != nil {
		return err
	}
	if sub == "add" {
		iss := model.Issuer{ID: id, DisplayName: *display, JSONKeysURL: *jwks, PublicKeys: keys}
		if *jwks == "" && keys == nil {
			return usageError{fmt.Errorf("either --public-key with --key-id, or --jwks-url, is required")}
		}
		out, _, err := s.client.AddIssuer(e.ctx, iss)
		if err != nil {
			return denied(err, s.who(), "issuer:add", res)
		}
		return showIssuer(e, f, out)
	}
	u := sdk.IssuerUpdate{PublicKeys: keys}
	if f.changed("display-name") {
		u.DisplayName = display
	}
	if *jwks != "" {
		u.JSONKeysURL = jwks
	}
	out, _, err := s.client.UpdateIssuer(e.ctx, id, u)
	if err != nil {
		return denied(err, s.who(), "issuer:update", res)
	}
	return showIssuer(e, f, out)
}

// readKeys reads --public-key and --key-id; nil when neither is given.
func readKeys(file, kid, jwks string) ([]model.PublicKey, error) {
	switch {
	case file == "" && kid == "":
		return nil, nil
	case file == "" || kid == "":
		return nil, usageError{fmt.Errorf("--public-key and --key-id go together")}
	case jwks != "":
		return nil, usageError{fmt.Errorf("--public-key and --jwks-url exclude each other: an issuer has one or the other")}
	}
	pemText, err := os.ReadFile(file)
	if err != nil {
		return nil, usageError{fmt.Errorf("--public-key: %w", err)}
	}
	return []model.PublicKey{{KeyID: kid, PublicKey: string(pemText)}}, nil
}

func keySource(iss model.Issuer) string {
	if iss.JSONKeysURL != "" {
		return iss.JSONKeysURL
	}
	var ids []string
	for _, k := range iss.PublicKeys {
		ids = append(ids, k.KeyID)
	}
	return strings.Join(ids, ", ") + " (uploaded)"
}

func showIssuer(e env, f *cmdFlags, iss model.Issuer) error {
	if f.json() {
		return printJSON(e.stdout, iss)
	}
	fields(e.stdout, "Issuer", iss.ID, "Name", iss.DisplayName, "Keys", keySource(iss))
	return nil
}
