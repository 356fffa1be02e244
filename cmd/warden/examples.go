package main

import (
	"flag"
	"fmt"
	"strings"
)

// examples are the lines each command's --help ends with, by the command's
// path (its flag set's name): a few realistic uses, as kubectl and gh
// show. TestHelpExamples checks that every command and subcommand has
// some.
var examples = map[string][]string{
	"serve": {
		"warden serve --listen 0.0.0.0:7800 --diag-listen 0.0.0.0:7801 --data-dir /var/lib/warden",
		"warden serve --config /etc/warden/serve.yaml",
		"warden serve --role sidecar --etcd-endpoints https://etcd-0:2379,https://etcd-1:2379 --account acc-0123456789abcdef",
	},
	"health": {
		"warden health",
		"warden health --live --addr 10.0.0.5:7801",
		"warden health -o json",
	},
	"init": {
		"warden init \"$(cat warden-data/root-init-token)\" --profile root",
		"warden init INIT_TOKEN --profile ci --base-url https://warden.example.com",
		"warden init OAUTH_INIT_TOKEN --access-token \"$ACCESS_TOKEN\"",
	},
	"profile": {
		"warden profile ls",
		"warden profile set ci",
		"warden profile get ci -o json",
	},
	"profile ls":  {"warden profile ls", "warden profile ls -o json"},
	"profile get": {"warden profile get", "warden profile get ci --include-credentials -o json"},
	"profile set": {"warden profile set ci"},
	"profile rm":  {"warden profile rm old-laptop"},
	"token": {
		"warden token",
		"warden token --lifetime 10m --permission 'function:get=/account/acc-0123456789abcdef/'",
		"curl -H \"Authorization: Bearer $(warden token --profile ci)\" https://app.example.com/orders",
	},
	"issuer": {
		"warden issuer add https://auth.example.com/ --jwks-url https://auth.example.com/.well-known/jwks.json",
		"warden issuer key add ci-signer --public-key ci-2.pem --key-id ci-2",
		"warden issuer ls",
	},
	"issuer add": {
		"warden issuer add https://auth.example.com/ --jwks-url https://auth.example.com/.well-known/jwks.json",
		"warden issuer add ci-signer --public-key ci-1.pem --key-id ci-1 --display-name \"CI signer\"",
	},
	"issuer get": {"warden issuer get ci-signer", "warden issuer get https://auth.example.com/ -o json"},
	"issuer ls":  {"warden issuer ls", "warden issuer ls -o json"},
	"issuer update": {
		"warden issuer update ci-signer --display-name \"Build signer\"",
		"warden issuer update https://auth.example.com/ --jwks-url https://auth.example.com/keys",
	},
	"issuer rm": {"warden issuer rm ci-signer"},
	"issuer key": {
		"warden issuer key add ci-signer --public-key ci-2.pem --key-id ci-2",
		"warden issuer key rm ci-signer ci-1",
	},
	"issuer key add": {"warden issuer key add ci-signer --public-key ci-2.pem --key-id ci-2"},
	"issuer key rm":  {"warden issuer key rm ci-signer ci-1"},
	"issuer key ls":  {"warden issuer key ls ci-signer"},
	"check": {
		"warden check function:get /account/acc-0123456789abcdef/",
		"warden check function:put /account/acc-0123456789abcdef/subscription/sub-0123456789abcdef/ --token \"$TOKEN\"",
		"warden check user:add /account/acc-0123456789abcdef/user/ --min-revision 42 -o json",
	},
	"hook": {
		"warden hook put business-hours bin/hooks/businesshours.wasm --action-prefix function:",
		"warden hook ls",
	},
	"hook put": {
		"warden hook put business-hours bin/hooks/businesshours.wasm",
		"warden hook put tenant bin/hooks/tenant.wasm --mode decide --action-prefix order:",
	},
	"hook get": {"warden hook get business-hours -o json"},
	"hook rm":  {"warden hook rm business-hours"},
	"hook ls":  {"warden hook ls"},
	"routes": {
		"warden routes put app routes.yaml",
		"warden routes test app GET https://app.example.com/orders/42 --token \"$TOKEN\"",
	},
	"routes put": {"warden routes put app routes.yaml"},
	"routes get": {"warden routes get app", "warden routes get app -o json"},
	"routes rm":  {"warden routes rm app"},
	"routes ls":  {"warden routes ls"},
	"routes test": {
		"warden routes test app GET https://app.example.com/orders/42 --token \"$TOKEN\"",
		"warden routes test --file routes.yaml POST /orders",
	},
	"audit": {"warden audit ls --from -2h --action 'user:*'"},
	"audit ls": {
		"warden audit ls",
		"warden audit ls --from -2h --action 'user:*'",
		"warden audit ls --from 2026-12-01T10:00:00Z --issuer https://auth.example.com/ --subject jane -o json",
	},
	"version": {"warden version", "warden version -o json"},
	"completion": {
		"source <(warden completion bash)",
		"warden completion zsh > \"${fpath[1]}/_warden\"",
		"warden completion fish > ~/.config/fish/completions/warden.fish",
	},
}

func init() {
	for _, k := range []agentKind{usersCLI, clientsCLI} {
		for path, lines := range agentExamples(k) {
			examples[path] = lines
		}
	}
}

// agentExamples are the examples of `warden user …` or `warden client …`.
func agentExamples(k agentKind) map[string][]string {
	n := k.name
	id := map[string]string{"user": "usr-0123456789abcdef", "client": "clt-0123456789abcdef"}[n]
	add := map[string][]string{
		"user":   {"warden user add Jane Doe jane@example.com", "warden user add -o json"},
		"client": {"warden client add \"Deploy bot\"", "warden client add -o json"},
	}[n]
	update := map[string]string{
		"user":   "warden user update " + id + " --email jane.doe@example.com",
		"client": "warden client update " + id + " --display-name \"Release bot\"",
	}[n]
	identity := fmt.Sprintf("warden %s identity add %s --issuer https://auth.example.com/ --subject %s", n, id,
		map[string]string{"user": "jane", "client": "deploy-bot"}[n])
	access := fmt.Sprintf("warden %s access add %s 'function:*'", n, id)
	return map[string][]string{
		n:                   {add[0], identity, access},
		n + " add":          add,
		n + " get":          {fmt.Sprintf("warden %s get %s", n, id), fmt.Sprintf("warden %s get %s -o json", n, id)},
		n + " ls":           {fmt.Sprintf("warden %s ls --name %s", n, map[string]string{"user": "jane", "client": "bot"}[n]), fmt.Sprintf("warden %s ls --issuer https://auth.example.com/ --all -o json", n)},
		n + " update":       {update},
		n + " rm":           {fmt.Sprintf("warden %s rm %s", n, id)},
		n + " init":         {fmt.Sprintf("warden %s init %s", n, id), fmt.Sprintf("warden %s init %s -o json", n, id)},
		n + " identity":     {identity, fmt.Sprintf("warden %s identity ls %s", n, id)},
		n + " identity add": {identity},
		n + " identity ls":  {fmt.Sprintf("warden %s identity ls %s -o json", n, id)},
		n + " identity rm":  {strings.Replace(identity, " add ", " rm ", 1)},
		n + " access":       {access, fmt.Sprintf("warden %s access ls %s", n, id)},
		n + " access add":   {access, fmt.Sprintf("warden %s access add %s function:get --resource /account/acc-0123456789abcdef/subscription/sub-0123456789abcdef/", n, id)},
		n + " access ls":    {fmt.Sprintf("warden %s access ls %s -o json", n, id)},
		n + " access rm":    {strings.Replace(access, " add ", " rm ", 1)},
	}
}

// examplesOf is the Examples section of a command's help; "" when it has
// none.
func examplesOf(path string) string {
	lines := examples[path]
	if len(lines) == 0 {
		return ""
	}
	return "\nExamples:\n  " + strings.Join(lines, "\n  ") + "\n"
}

// serveUsage prints serve's help: its flags, then examples.
func serveUsage(fs *flag.FlagSet) func() {
	return func() {
		fmt.Fprint(fs.Output(), "Usage: warden serve [flags]\n\nEvery flag also reads WARDEN_<FLAG> from the environment (--data-dir: WARDEN_DATA_DIR).\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), examplesOf("serve"))
	}
}
