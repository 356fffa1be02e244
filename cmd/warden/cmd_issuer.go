package main

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/wardenauthz/warden/sdk"
	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar"
)

const issuerHelp = `Usage:
  warden issuer add ISSUER (--public-key FILE --key-id KID ... | --jwks-url URL) [--display-name NAME]
  warden issuer get|rm ISSUER
  warden issuer ls
  warden issuer update ISSUER [--public-key FILE --key-id KID ... | --jwks-url URL] [--display-name NAME]
  warden issuer key add ISSUER --public-key FILE --key-id KID
  warden issuer key rm ISSUER KID
  warden issuer key ls ISSUER

An issuer holds 1 to 3 uploaded keys; --public-key and --key-id may be given
up to three times, in pairs. 'update' with keys replaces them all, so tokens
signed with a key it leaves out fail at once. To rotate a key without an
outage, add the new one with 'issuer key add', move the signers to it, then
remove the old one with 'issuer key rm'. These read the issuer's keys and write
them back whole: run one change of an issuer's keys at a time.
`

func cmdIssuer(e env, args []string) error {
	sub, args, f, err := subcommand(e, args, issuerHelp, "issuer", map[string]string{
		"add":    "issuer add ISSUER (--public-key FILE --key-id KID ... | --jwks-url URL) [--display-name NAME]",
		"get":    "issuer get ISSUER",
		"ls":     "issuer ls",
		"update": "issuer update ISSUER [--public-key FILE --key-id KID ... | --jwks-url URL] [--display-name NAME]",
		"rm":     "issuer rm ISSUER",
		"key":    "issuer key add|rm|ls ISSUER …",
	})
	if err != nil {
		return err
	}
	if sub == "key" {
		return cmdIssuerKey(e, args)
	}
	var keyFiles, keyIDs repeatedFlag
	var jwks, display *string
	if sub == "add" || sub == "update" {
		f.Var(&keyFiles, "public-key", "`file` with one of the issuer's PEM public keys (SPKI, PKCS#1 or an X.509 certificate); repeatable, paired with --key-id")
		f.Var(&keyIDs, "key-id", "the `kid` that tokens signed with the --public-key in the same place carry; repeatable")
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
		all, err := listAll(func(next string) (sdk.Page[model.Issuer], error) {
			return s.client.ListIssuers(e.ctx, sdk.ListOptions{Count: 100, Next: next})
		})
		if err != nil {
			return denied(err, s.who(), "issuer:get", s.resource("issuer"))
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
	keys, err := readKeys(keyFiles, keyIDs, *jwks)
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
	var before model.Issuer
	if keys != nil || *jwks != "" {
		// To say which keys the update drops; a failed read only loses
		// the warning.
		before, _ = s.client.GetIssuer(e.ctx, id)
	}
	out, _, err := s.client.UpdateIssuer(e.ctx, id, u)
	if err != nil {
		return denied(err, s.who(), "issuer:update", res)
	}
	if dropped := droppedKeys(before, out); len(dropped) > 0 && !f.json() {
		fmt.Fprintf(e.stderr, "warden issuer update: the key(s) %s were replaced: tokens signed with them now fail. "+
			"To rotate without an outage, use 'warden issuer key add' and later 'warden issuer key rm'.\n", strings.Join(dropped, ", "))
	}
	return showIssuer(e, f, out)
}

// droppedKeys lists the uploaded key ids of before that after lacks.
func droppedKeys(before, after model.Issuer) []string {
	var out []string
	for _, k := range before.PublicKeys {
		if !slices.ContainsFunc(after.PublicKeys, func(a model.PublicKey) bool { return a.KeyID == k.KeyID }) {
			out = append(out, "'"+k.KeyID+"'")
		}
	}
	return out
}

// repeatedFlag is a flag that may be given several times, in order.
type repeatedFlag []string

func (r *repeatedFlag) String() string { return strings.Join(*r, ",") }

func (r *repeatedFlag) Set(s string) error {
	*r = append(*r, s)
	return nil
}

// readKeys reads the --public-key and --key-id pairs; nil when none is
// given.
func readKeys(files, kids []string, jwks string) ([]model.PublicKey, error) {
	switch {
	case len(files) == 0 && len(kids) == 0:
		return nil, nil
	case len(files) != len(kids):
		return nil, usageError{fmt.Errorf("--public-key and --key-id go in pairs: got %d key file(s) and %d key id(s)", len(files), len(kids))}
	case jwks != "":
		return nil, usageError{fmt.Errorf("--public-key and --jwks-url exclude each other: an issuer has one or the other")}
	}
	keys := make([]model.PublicKey, len(files))
	for i, file := range files {
		pemText, err := os.ReadFile(file)
		if err != nil {
			return nil, usageError{fmt.Errorf("--public-key: %w", err)}
		}
		keys[i] = model.PublicKey{KeyID: kids[i], PublicKey: string(pemText)}
	}
	return keys, nil
}

// cmdIssuerKey adds, removes and lists the uploaded keys of an issuer one
// at a time, so that a key can be rotated with no outage: old and new
// tokens both pass while both keys are there.
func cmdIssuerKey(e env, args []string) error {
	sub, args, f, err := subcommand(e, args, issuerHelp, "issuer key", map[string]string{
		"add": "issuer key add ISSUER --public-key FILE --key-id KID",
		"rm":  "issuer key rm ISSUER KID",
		"ls":  "issuer key ls ISSUER",
	})
	if err != nil {
		return err
	}
	var keyFile, keyID *string
	nargs := 1
	switch sub {
	case "add":
		keyFile = f.String("public-key", "", "`file` with the new PEM public key (SPKI, PKCS#1 or an X.509 certificate)")
		keyID = f.String("key-id", "", "the `kid` that tokens signed with the new key carry")
	case "rm":
		nargs = 2
	}
	if err := f.parse(args, nargs, nargs); err != nil {
		return err
	}
	s, err := openSession(f)
	if err != nil {
		return err
	}
	id := f.args[0]
	res := s.resource("issuer", url.PathEscape(id))
	iss, err := s.client.GetIssuer(e.ctx, id)
	if err != nil {
		return denied(err, s.who(), "issuer:get", res)
	}
	if iss.JSONKeysURL != "" {
		return usageError{fmt.Errorf("the issuer '%s' publishes its keys at %s; its keys change there, not here", id, iss.JSONKeysURL)}
	}
	if sub == "ls" {
		if f.json() {
			return printJSON(e.stdout, map[string]any{"items": append([]model.PublicKey{}, iss.PublicKeys...)})
		}
		var rows [][]string
		for _, k := range iss.PublicKeys {
			rows = append(rows, []string{k.KeyID, keyKind(k.PublicKey)})
		}
		table(e.stdout, []string{"KEY ID", "KEY"}, rows)
		return nil
	}
	keys := slices.Clone(iss.PublicKeys)
	var msg string
	switch sub {
	case "add":
		if *keyFile == "" || *keyID == "" {
			return usageError{fmt.Errorf("--public-key and --key-id are required")}
		}
		added, err := readKeys([]string{*keyFile}, []string{*keyID}, "")
		if err != nil {
			return err
		}
		if slices.ContainsFunc(keys, func(k model.PublicKey) bool { return k.KeyID == *keyID }) {
			return usageError{fmt.Errorf("the issuer '%s' has a key '%s' already; remove it first, or choose another key id", id, *keyID)}
		}
		keys = append(keys, added...)
		msg = fmt.Sprintf("Key '%s' added to issuer '%s': tokens signed with any of its %d keys pass.", *keyID, id, len(keys))
	case "rm":
		kid := f.args[1]
		i := slices.IndexFunc(keys, func(k model.PublicKey) bool { return k.KeyID == kid })
		if i < 0 {
			return cliError{exitNotFound, fmt.Sprintf("the issuer '%s' has no key '%s'", id, kid)}
		}
		if len(keys) == 1 {
			return usageError{fmt.Errorf("'%s' is the last key of issuer '%s'; add its successor first, or remove the issuer", kid, id)}
		}
		keys = slices.Delete(keys, i, i+1)
		msg = fmt.Sprintf("Key '%s' removed from issuer '%s': tokens signed with it now fail.", kid, id)
	}
	out, _, err := s.client.UpdateIssuer(e.ctx, id, sdk.IssuerUpdate{PublicKeys: keys})
	if err != nil {
		return denied(err, s.who(), "issuer:update", res)
	}
	if f.json() {
		return printJSON(e.stdout, out)
	}
	fmt.Fprintln(e.stdout, msg)
	return nil
}

// keyKind describes a PEM key in a few words: its type and size.
func keyKind(pemText string) string {
	key, err := sidecar.ParsePublicKey(pemText)
	if err != nil {
		return "(does not parse)"
	}
	switch k := key.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d bits", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "EC " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", key)
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
