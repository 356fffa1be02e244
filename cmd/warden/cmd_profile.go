package main

import (
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/wardenauthz/warden/sdk"
	"github.com/wardenauthz/warden/sdk/model"
)

// session is a loaded profile and a client acting as it.
type session struct {
	name    string
	profile *sdk.Profile
	client  *sdk.Client
	roots   *x509.CertPool // the CAs client trusts (sessionCAs)
}

func openSession(f *cmdFlags) (*session, error) {
	store, err := sdk.DefaultProfileStore()
	if err != nil {
		return nil, err
	}
	p, name, err := store.Load(*f.profile)
	if err != nil {
		return nil, profileError(err)
	}
	roots, err := sessionCAs(f, name, p)
	if err != nil {
		return nil, err
	}
	c, err := sdk.NewClient(sdk.Config{BaseURL: p.BaseURL, Account: p.Account, Token: p.TokenSource(0), RootCAs: roots})
	if err != nil {
		return nil, err
	}
	return &session{name: name, profile: p, client: c, roots: roots}, nil
}

// profileError makes a missing profile a usage error.
func profileError(err error) error {
	var unknown *sdk.UnknownProfileError
	if errors.Is(err, sdk.ErrNoProfile) || errors.Is(err, sdk.ErrNoDefaultProfile) || errors.Is(err, sdk.ErrBadProfileName) || errors.As(err, &unknown) {
		return cliError{exitUsage, err.Error()}
	}
	return err
}

// who names the session's agent for messages.
func (s *session) who() string {
	return fmt.Sprintf("profile '%s' (%s)", s.name, s.profile.ID)
}

// resource is an account-relative resource path.
func (s *session) resource(parts ...string) string {
	r := "/account/" + s.profile.Account + "/"
	for _, p := range parts {
		r += p + "/"
	}
	return r
}

// profileView is a profile as `profile get` shows it.
type profileView struct {
	Name    string `json:"name,omitempty"`
	Default bool   `json:"default,omitempty"`
	sdk.Profile
}

func cmdProfile(e env, args []string) error {
	if err := groupHelp(e, args, `Usage:
  warden profile ls
  warden profile get [NAME] [--include-credentials]
  warden profile set NAME     make NAME the default profile
  warden profile rm NAME
`+examplesOf("profile")); err != nil {
		return err
	}
	store, err := sdk.DefaultProfileStore()
	if err != nil {
		return err
	}
	switch args[0] {
	case "ls":
		f := newFlags(e, "profile ls", "profile ls [-o json]")
		if err := f.parse(args[1:], 0, 0); err != nil {
			return err
		}
		set, err := store.Settings()
		if err != nil {
			return err
		}
		views := []profileView{}
		var rows [][]string
		for _, n := range set.Names() {
			p := set.Profiles[n]
			views = append(views, profileView{Name: n, Default: n == set.Default, Profile: p})
			mark := ""
			if n == set.Default {
				mark = "*"
			}
			rows = append(rows, []string{mark + n, p.BaseURL, p.Account, p.ID})
		}
		if f.json() {
			return printJSON(e.stdout, views)
		}
		table(e.stdout, []string{"PROFILE", "DEPLOYMENT", "ACCOUNT", "AGENT"}, rows)
		return nil
	case "get":
		f := newFlags(e, "profile get", "profile get [NAME] [--include-credentials] [-o json]")
		creds := f.Bool("include-credentials", false, "include the private key")
		f.BoolVar(creds, "includeCredentials", false, "the same as --include-credentials, as fuse spells it")
		if err := f.parse(args[1:], 0, 1); err != nil {
			return err
		}
		name := *f.profile
		if len(f.args) == 1 {
			name = f.args[0]
		}
		p, name, err := store.Load(name)
		if err != nil {
			return profileError(err)
		}
		if !*creds {
			p.PKI.PrivateKey = ""
		}
		if f.json() {
			return printJSON(e.stdout, p)
		}
		fields(e.stdout, "Profile", name, "Deployment", p.BaseURL, "Account", p.Account, "Agent", p.ID,
			"Issuer", p.PKI.Issuer, "Subject", p.PKI.Subject, "Key id", p.PKI.KID, "Algorithm", p.PKI.Algorithm, "Audience", p.PKI.Audience, "CA file", p.CAFile)
		fmt.Fprint(e.stdout, p.PKI.PrivateKey)
		return nil
	case "set", "rm":
		f := newFlags(e, "profile "+args[0], "profile "+args[0]+" NAME")
		if err := f.parse(args[1:], 1, 1); err != nil {
			return err
		}
		name := f.args[0]
		if args[0] == "set" {
			if err := store.SetDefault(name); err != nil {
				return profileError(err)
			}
			return report(e, f, map[string]string{"defaultProfile": name}, "The default profile is now '%s'.", name)
		}
		if err := store.Remove(name); err != nil {
			return profileError(err)
		}
		return report(e, f, map[string]string{"removed": name}, "Profile '%s' removed.", name)
	}
	return usageError{fmt.Errorf("unknown subcommand %q: want ls, get, set or rm", args[0])}
}

// report prints v as JSON with -o json, else a sentence.
func report(e env, f *cmdFlags, v any, format string, args ...any) error {
	if f.json() {
		return printJSON(e.stdout, v)
	}
	fmt.Fprintf(e.stdout, format+"\n", args...)
	return nil
}

// cmdInit enrolls a new key with an init token and saves the profile; an
// oauth init token instead adds the identity of an access token to the
// agent (initOAuth).
func cmdInit(e env, args []string) error {
	f := newFlags(e, "init", "init TOKEN [--profile NAME] [--base-url URL] [--access-token TOKEN]")
	base := f.String("base-url", "", "the deployment's `URL`, when it differs from the one in the token")
	access := f.String("access-token", "", "for an oauth init token: the access `token` whose identity to add to the agent (no profile is saved)")
	if err := f.parse(args, 1, 1); err != nil {
		return err
	}
	ic, err := sdk.ParseInitToken(f.args[0])
	if err != nil {
		return usageError{err}
	}
	roots, caFile, err := caFlag(f)
	if err != nil {
		return err
	}
	if ic.OAuth {
		return initOAuth(e, f, *access, *base, roots)
	}
	if *access != "" {
		return usageError{errors.New("--access-token is only for oauth init tokens; this one enrolls a new key of its own: leave --access-token out")}
	}
	name := *f.profile
	if name == "" {
		name = "default"
	}
	store, err := sdk.DefaultProfileStore()
	if err != nil {
		return err
	}
	// The token works once: everything that could stop the profile from
	// being saved is checked before it is spent.
	if err := store.CheckWritable(name); err != nil {
		return cliError{exitUsage, err.Error()}
	}
	p, err := sdk.Enroll(e.ctx, f.args[0], sdk.EnrollOptions{BaseURL: *base, RootCAs: roots})
	if err != nil {
		return err
	}
	p.CAFile = caFile
	if err := store.Save(name, p); err != nil {
		// The key is enrolled and the token spent: losing the key now
		// would lock the agent's new identity out for good.
		fmt.Fprintf(e.stderr, "warden init: the key is enrolled but the profile could not be saved; here it is, keep it safe:\n")
		_ = printJSON(e.stderr, p)
		return err
	}
	return report(e, f, profileView{Name: name, Profile: withoutKey(p)},
		"Profile '%s' acts as %s in account %s on %s.", name, p.ID, p.Account, p.BaseURL)
}

// initOAuth enrolls an oauth init token: the deployment verifies the
// access token against the account's issuers and adds its identity to the
// agent. It saves no profile. A profile is a key of the agent's own that
// mints fresh tokens; here the agent has none, and its only credential is
// the issuer's access token, which expires (often within the hour) and
// which this CLI cannot renew. A profile holding it would stop working
// with it, and the first one saved becomes the default. So the agent goes
// on acting with the issuer's tokens, wherever they are used.
func initOAuth(e env, f *cmdFlags, access, base string, roots *x509.CertPool) error {
	if access == "" {
		return usageError{errors.New("this is an oauth init token: pass an access token of the identity to add to the agent with --access-token TOKEN")}
	}
	explicitProfile := false
	f.Visit(func(fl *flag.Flag) { explicitProfile = explicitProfile || fl.Name == "profile" })
	if explicitProfile {
		return usageError{errors.New("an oauth init token saves no profile: the agent acts with the access tokens of its issuer, not a key of its own; leave --profile out")}
	}
	if _, err := sdk.AccessTokenIdentity(access); err != nil {
		return usageError{fmt.Errorf("--access-token: %w", err)}
	}
	res, err := sdk.EnrollOAuth(e.ctx, f.args[0], access, sdk.EnrollOptions{BaseURL: base, RootCAs: roots})
	if err != nil {
		return err
	}
	if f.json() {
		return printJSON(e.stdout, res)
	}
	fmt.Fprintf(e.stdout, "Agent %s in account %s on %s now has the identity with issuer '%s' and subject '%s'.\n",
		res.Agent.ID, res.Account, res.BaseURL, res.Identity.IssuerID, res.Identity.Subject)
	fmt.Fprintf(e.stdout, "No profile was saved: the agent has no key of its own; it acts with the access tokens of '%s', sent as bearer tokens.\n",
		res.Identity.IssuerID)
	return nil
}

func withoutKey(p *sdk.Profile) sdk.Profile {
	c := *p
	c.PKI.PrivateKey = ""
	return c
}

// cmdToken prints a fresh access token of the profile.
func cmdToken(e env, args []string) error {
	f := newFlags(e, "token", "token [--permission ACTION=RESOURCE ...] [--lifetime DURATION] [-o raw|json]", "raw", "json")
	life := f.Duration("lifetime", time.Hour, "how long the token is valid")
	var perms repeatedFlag
	f.Var(&perms, "permission", "an inline permission, `ACTION=RESOURCE`, that narrows what the token may do to what such permissions name; repeatable")
	if err := f.parse(args, 0, 0); err != nil {
		return err
	}
	if *life <= 0 {
		return usageError{fmt.Errorf("--lifetime %s must be positive", *life)}
	}
	inline, err := parsePermissions(perms)
	if err != nil {
		return err
	}
	s, err := openSession(f)
	if err != nil {
		return err
	}
	tok, err := s.profile.Mint(*life, inline)
	if err != nil {
		return err
	}
	if f.json() {
		return printJSON(e.stdout, map[string]any{"accessToken": tok, "expiresAt": time.Now().Add(*life).UTC().Format(time.RFC3339)})
	}
	fmt.Fprintln(e.stdout, tok)
	return nil
}

// parsePermissions reads --permission ACTION=RESOURCE values; nil when none
// is given. Actions hold no '=', so the first one separates the two.
func parsePermissions(values []string) ([]model.Permission, error) {
	if len(values) == 0 {
		return nil, nil
	}
	perms := make([]model.Permission, len(values))
	for i, v := range values {
		action, resource, ok := strings.Cut(v, "=")
		if !ok {
			return nil, usageError{fmt.Errorf("--permission %q is not ACTION=RESOURCE, e.g. function:get=/account/acc-…/", v)}
		}
		p := model.Permission{Action: action, Resource: resource}
		if err := model.ValidatePermission(p); err != nil {
			return nil, usageError{fmt.Errorf("--permission %q: %w", v, err)}
		}
		perms[i] = p
	}
	return perms, nil
}
