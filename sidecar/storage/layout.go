package storage

import (
	"fmt"
	"net/url"
	"strings"
)

// DefaultPrefix is the key prefix under which Warden keeps everything.
const DefaultPrefix = "/warden/v1/"

// Kinds of record, the first segment of a key after the prefix.
const (
	KindAccount  = "account"
	KindIssuer   = "issuer"
	KindAgent    = "agent"
	KindIdentity = "identity"
	KindInit     = "init"
	KindMeta     = "meta"
	// KindHook keys a hook's record; KindHookModule the chunks of its
	// module, under <prefix>hookmod/<account>/<name>/<sha256>/<index>.
	KindHook       = "hook"
	KindHookModule = "hookmod"
	// KindRouteTable keys a route table, its JSON as the value.
	KindRouteTable = "routes"
)

// Layout builds and parses the store's keys. Every key is
// <prefix><kind>/<account>/…; segments that come from users (issuer ids,
// subjects) are path-escaped, so "/" only ever separates segments.
type Layout struct {
	Prefix string
}

// NewLayout returns the layout under prefix, DefaultPrefix when empty. The
// prefix always ends in "/".
func NewLayout(prefix string) Layout {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return Layout{Prefix: prefix}
}

func (l Layout) key(kind string, segs ...string) string {
	var b strings.Builder
	b.WriteString(l.Prefix)
	b.WriteString(kind)
	for _, s := range segs {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// Account is the key of an account.
func (l Layout) Account(acc string) string { return l.key(KindAccount, acc) }

// Issuer is the key of an issuer of an account.
func (l Layout) Issuer(acc, id string) string { return l.key(KindIssuer, acc, id) }

// Hook is the key of a hook's record.
func (l Layout) Hook(acc, name string) string { return l.key(KindHook, acc, name) }

// Hooks is the prefix of every hook record.
func (l Layout) Hooks() string { return l.Prefix + KindHook + "/" }

// HookModules is the prefix of the chunks of every module of a hook.
func (l Layout) HookModules(acc, name string) string { return l.key(KindHookModule, acc, name) + "/" }

// HookChunk is the key of chunk i of a hook's module with digest sha.
func (l Layout) HookChunk(acc, name, sha string, i int) string {
	return fmt.Sprintf("%s%s/%04d", l.HookModules(acc, name), sha, i)
}

// RouteTable is the key of a route table of an account.
func (l Layout) RouteTable(acc, name string) string { return l.key(KindRouteTable, acc, name) }

// RouteTables is the prefix of the route tables of an account.
func (l Layout) RouteTables(acc string) string { return l.key(KindRouteTable, acc) + "/" }

// Audit is the prefix of the audit entries of an account. Entries live
// beside the layout's prefix, not under it (<prefix minus its last "/">
// -audit/<account>/…), so that the replicas' watch of the prefix never
// carries them: only the audit route reads them.
func (l Layout) Audit(acc string) string {
	return strings.TrimSuffix(l.Prefix, "/") + "-audit/" + url.PathEscape(acc) + "/"
}

// Agent is the key of a user or client.
func (l Layout) Agent(acc, id string) string { return l.key(KindAgent, acc, id) }

// Identity is the key that makes (account, issuer, subject) unique: its
// value is the id of the agent holding the identity.
func (l Layout) Identity(acc, issuerID, subject string) string {
	return l.key(KindIdentity, acc, issuerID, subject)
}

// IdentitiesAt is the prefix of the identity keys at an issuer of an
// account.
func (l Layout) IdentitiesAt(acc, issuerID string) string {
	return l.key(KindIdentity, acc, issuerID) + "/"
}

// Init is the key of an init token's record.
func (l Layout) Init(acc, jti string) string { return l.key(KindInit, acc, jti) }

// Bootstrap is the key recording the first start's account and root client.
func (l Layout) Bootstrap() string { return l.key(KindMeta, "bootstrap") }

// Key is a parsed store key.
type Key struct {
	Kind string
	// Segs are the unescaped segments after the kind: [account, id] for
	// accounts' issuers and agents, [account] for accounts.
	Segs []string
}

// kindSegs is the number of segments after each known kind.
var kindSegs = map[string]int{KindAccount: 1, KindIssuer: 2, KindAgent: 2, KindIdentity: 3, KindInit: 2, KindMeta: 1,
	KindHook: 2, KindHookModule: 4, KindRouteTable: 2}

// Parse parses a key under the layout's prefix.
func (l Layout) Parse(key string) (Key, error) {
	rest, ok := strings.CutPrefix(key, l.Prefix)
	if !ok {
		return Key{}, fmt.Errorf("key %q is not under prefix %q", key, l.Prefix)
	}
	parts := strings.Split(rest, "/")
	k := Key{Kind: parts[0], Segs: make([]string, 0, len(parts)-1)}
	for _, p := range parts[1:] {
		s, err := url.PathUnescape(p)
		if err != nil {
			return Key{}, fmt.Errorf("key %q: %w", key, err)
		}
		k.Segs = append(k.Segs, s)
	}
	if n, known := kindSegs[k.Kind]; known && len(k.Segs) != n {
		return Key{}, fmt.Errorf("key %q has %d segments after %q; want %d", key, len(k.Segs), k.Kind, n)
	}
	return k, nil
}
