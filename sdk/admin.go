package sdk

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/wardenauthz/warden/sdk/model"
)

// Page is one page of a list; Next, when not empty, fetches the next.
type Page[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}

// ListOptions filter and page a list. The zero value lists the first page
// of 25.
type ListOptions struct {
	Count int
	Next  string
	// Name and Email match case-insensitive substrings, or whole values
	// with Exact. Name is "first last" for users, displayName for clients.
	Name, Email string
	Exact       bool
	// IssuerID and Subject select agents by identity; Subject needs
	// IssuerID.
	IssuerID, Subject string
	// All includes identities and access in user and client items.
	All bool
}

func (o ListOptions) query() string {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	if o.Count != 0 {
		q.Set("count", strconv.Itoa(o.Count))
	}
	set("next", o.Next)
	set("name", o.Name)
	set("email", o.Email)
	set("issuerId", o.IssuerID)
	set("subject", o.Subject)
	if o.Exact {
		q.Set("exact", "true")
	}
	if o.All {
		q.Set("include", "all")
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// Agent is a user or a client as /me returns it.
type Agent struct {
	ID           string           `json:"id"`
	FirstName    string           `json:"firstName,omitempty"`
	LastName     string           `json:"lastName,omitempty"`
	PrimaryEmail string           `json:"primaryEmail,omitempty"`
	DisplayName  string           `json:"displayName,omitempty"`
	Identities   []model.Identity `json:"identities,omitempty"`
	Access       *model.Access    `json:"access,omitempty"`
}

func (c *Client) acc(parts ...string) string {
	p := "/v1/account/" + url.PathEscape(c.cfg.Account)
	for _, s := range parts {
		p += "/" + url.PathEscape(s)
	}
	return p
}

// String returns a pointer to s, for the fields of updates.
func String(s string) *string { return &s }

// fields builds a PATCH body: a nil pointer leaves a field as it is, a
// pointer to "" clears it (sends null).
type fields map[string]any

func (f fields) str(name string, v *string) {
	switch {
	case v == nil:
	case *v == "":
		f[name] = nil
	default:
		f[name] = *v
	}
}

// Me returns the caller's own user or client record.
func (c *Client) Me(ctx context.Context) (Agent, error) {
	var a Agent
	_, err := c.do(ctx, http.MethodGet, c.acc("me"), nil, &a)
	return a, err
}

// ListIssuers lists the account's issuers.
func (c *Client) ListIssuers(ctx context.Context, o ListOptions) (Page[model.Issuer], error) {
	var p Page[model.Issuer]
	_, err := c.do(ctx, http.MethodGet, c.acc("issuer")+o.query(), nil, &p)
	return p, err
}

// GetIssuer returns an issuer.
func (c *Client) GetIssuer(ctx context.Context, id string) (model.Issuer, error) {
	var iss model.Issuer
	_, err := c.do(ctx, http.MethodGet, c.acc("issuer", id), nil, &iss)
	return iss, err
}

// AddIssuer adds an issuer with exactly one of JSONKeysURL and PublicKeys.
// It returns the issuer and the store revision of the write.
func (c *Client) AddIssuer(ctx context.Context, iss model.Issuer) (model.Issuer, int64, error) {
	var out model.Issuer
	// The id goes in the URL only: a POST body carrying it is refused, as
	// by Fusebit.
	body := struct {
		DisplayName string            `json:"displayName,omitempty"`
		JSONKeysURL string            `json:"jsonKeysUrl,omitempty"`
		PublicKeys  []model.PublicKey `json:"publicKeys,omitempty"`
	}{iss.DisplayName, iss.JSONKeysURL, iss.PublicKeys}
	rev, err := c.do(ctx, http.MethodPost, c.acc("issuer", iss.ID), body, &out)
	return out, rev, err
}

// IssuerUpdate changes an issuer: nil fields stay; setting JSONKeysURL or
// PublicKeys replaces the other.
type IssuerUpdate struct {
	DisplayName *string
	JSONKeysURL *string
	PublicKeys  []model.PublicKey
}

// UpdateIssuer changes an issuer.
func (c *Client) UpdateIssuer(ctx context.Context, id string, u IssuerUpdate) (model.Issuer, int64, error) {
	f := fields{}
	f.str("displayName", u.DisplayName)
	f.str("jsonKeysUrl", u.JSONKeysURL)
	if u.PublicKeys != nil {
		f["publicKeys"] = u.PublicKeys
	}
	var out model.Issuer
	rev, err := c.do(ctx, http.MethodPatch, c.acc("issuer", id), f, &out)
	return out, rev, err
}

// DeleteIssuer removes an issuer.
func (c *Client) DeleteIssuer(ctx context.Context, id string) (int64, error) {
	return c.do(ctx, http.MethodDelete, c.acc("issuer", id), nil, nil)
}

// HookOptions say how a hook applies: its mode (model.HookRestrict when
// "") and the prefix of the actions it applies to ("" for every action).
type HookOptions struct {
	Mode         string
	ActionPrefix string
}

// PutHook registers a policy hook, or replaces the one of that name, with
// a WebAssembly module. It answers once this node has attached the hook.
func (c *Client) PutHook(ctx context.Context, name string, module []byte, o HookOptions) (model.Hook, int64, error) {
	body := map[string]string{"module": base64.StdEncoding.EncodeToString(module)}
	if o.Mode != "" {
		body["mode"] = o.Mode
	}
	if o.ActionPrefix != "" {
		body["actionPrefix"] = o.ActionPrefix
	}
	var h model.Hook
	rev, err := c.do(ctx, http.MethodPut, c.acc("hook", name), body, &h)
	return h, rev, err
}

// ListHooks lists the account's policy hooks (their records, not their
// modules), in name order.
func (c *Client) ListHooks(ctx context.Context, o ListOptions) (Page[model.Hook], error) {
	var p Page[model.Hook]
	_, err := c.do(ctx, http.MethodGet, c.acc("hook")+o.query(), nil, &p)
	return p, err
}

// GetHook returns a policy hook's record (not its module).
func (c *Client) GetHook(ctx context.Context, name string) (model.Hook, error) {
	var h model.Hook
	_, err := c.do(ctx, http.MethodGet, c.acc("hook", name), nil, &h)
	return h, err
}

// DeleteHook removes a policy hook and its module.
func (c *Client) DeleteHook(ctx context.Context, name string) (int64, error) {
	return c.do(ctx, http.MethodDelete, c.acc("hook", name), nil, nil)
}

// AuditOptions select audit entries: From and To are times as the audit
// route takes them (-15m, an ISO date, Unix milliseconds; From defaults to
// -15m, To to now), Action has 2 or 3 segments (a trailing '*' matches
// any last segment), Resource is a prefix, Subject needs IssuerID.
type AuditOptions struct {
	From, To, Action, Resource, IssuerID, Subject string
	Count                                         int
	Next                                          string
}

// ListAudit lists the account's audit entries, newest first, a page at a
// time.
func (c *Client) ListAudit(ctx context.Context, o AuditOptions) (Page[model.AuditEntry], error) {
	q := url.Values{}
	for k, v := range map[string]string{"from": o.From, "to": o.To, "action": o.Action, "resource": o.Resource,
		"issuerId": o.IssuerID, "subject": o.Subject, "next": o.Next} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if o.Count > 0 {
		q.Set("count", strconv.Itoa(o.Count))
	}
	path := c.acc("audit")
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var p Page[model.AuditEntry]
	_, err := c.do(ctx, http.MethodGet, path, nil, &p)
	return p, err
}

// RouteTableSummary is a route table in a list: its name and how many
// routes it has (-1 when its record does not load).
type RouteTableSummary struct {
	Name       string `json:"name"`
	RouteCount int    `json:"routeCount"`
}

// PutRouteTable stores the account's route table name, replacing it:
// table is its JSON, {default?, routes: [...]} (docs/api.md). It returns
// the table as stored, {name, default, routes}, and the store revision.
func (c *Client) PutRouteTable(ctx context.Context, name string, table json.RawMessage) (json.RawMessage, int64, error) {
	var out json.RawMessage
	rev, err := c.do(ctx, http.MethodPut, c.acc("routes", name), table, &out)
	return out, rev, err
}

// GetRouteTable returns a route table as stored, {name, default, routes}.
func (c *Client) GetRouteTable(ctx context.Context, name string) (json.RawMessage, error) {
	var out json.RawMessage
	_, err := c.do(ctx, http.MethodGet, c.acc("routes", name), nil, &out)
	return out, err
}

// ListRouteTables lists the account's route tables, in name order.
func (c *Client) ListRouteTables(ctx context.Context, o ListOptions) (Page[RouteTableSummary], error) {
	var p Page[RouteTableSummary]
	_, err := c.do(ctx, http.MethodGet, c.acc("routes")+o.query(), nil, &p)
	return p, err
}

// DeleteRouteTable removes a route table.
func (c *Client) DeleteRouteTable(ctx context.Context, name string) (int64, error) {
	return c.do(ctx, http.MethodDelete, c.acc("routes", name), nil, nil)
}

// ListUsers lists the account's users.
func (c *Client) ListUsers(ctx context.Context, o ListOptions) (Page[model.User], error) {
	var p Page[model.User]
	_, err := c.do(ctx, http.MethodGet, c.acc("user")+o.query(), nil, &p)
	return p, err
}

// GetUser returns a user.
func (c *Client) GetUser(ctx context.Context, id string) (model.User, error) {
	var u model.User
	_, err := c.do(ctx, http.MethodGet, c.acc("user", id), nil, &u)
	return u, err
}

// AddUser adds a user; its ID must be empty (Warden assigns one). Every
// grant must be one the caller holds.
func (c *Client) AddUser(ctx context.Context, u model.User) (model.User, int64, error) {
	var out model.User
	rev, err := c.do(ctx, http.MethodPost, c.acc("user"), u, &out)
	return out, rev, err
}

// AgentUpdate changes a user or a client: nil fields stay, a pointer to ""
// clears a name field, and Identities or Access, when not nil, replace the
// whole set (an empty slice clears it).
type AgentUpdate struct {
	FirstName, LastName, PrimaryEmail *string // users
	DisplayName                       *string // clients
	Identities                        *[]model.Identity
	Access                            *[]model.Permission
}

func (u AgentUpdate) body() fields {
	f := fields{}
	f.str("firstName", u.FirstName)
	f.str("lastName", u.LastName)
	f.str("primaryEmail", u.PrimaryEmail)
	f.str("displayName", u.DisplayName)
	if u.Identities != nil {
		f["identities"] = append([]model.Identity{}, *u.Identities...)
	}
	if u.Access != nil {
		f["access"] = model.Access{Allow: append([]model.Permission{}, *u.Access...)}
	}
	return f
}

// UpdateUser changes a user.
func (c *Client) UpdateUser(ctx context.Context, id string, u AgentUpdate) (model.User, int64, error) {
	var out model.User
	rev, err := c.do(ctx, http.MethodPatch, c.acc("user", id), u.body(), &out)
	return out, rev, err
}

// DeleteUser removes a user.
func (c *Client) DeleteUser(ctx context.Context, id string) (int64, error) {
	return c.do(ctx, http.MethodDelete, c.acc("user", id), nil, nil)
}

// InitOptions shape an init token. The zero value asks for a pki token
// (what Enroll and `warden init` use).
type InitOptions struct {
	// Profile fields travel in the token's profile claim.
	Profile map[string]any
	// OAuth, when not nil, asks for an oauth token instead: the token's
	// profile.oauth is this object, unchanged (Fusebit keeps its device
	// flow settings there), and the token is enrolled with EnrollOAuth and
	// an access token, whose identity it adds to the agent.
	OAuth map[string]any
	// Legacy asks for Fusebit's older flat token, with these fields.
	Legacy                                 bool
	SubscriptionID, BoundaryID, FunctionID string
}

func (o InitOptions) body() any {
	if !o.Legacy {
		profile := map[string]any{}
		for k, v := range o.Profile {
			profile[k] = v
		}
		b := map[string]any{"protocol": "pki", "profile": profile}
		if o.OAuth != nil {
			b["protocol"], profile["oauth"] = "oauth", o.OAuth
		}
		return b
	}
	f := fields{}
	for k, v := range map[string]string{"subscriptionId": o.SubscriptionID, "boundaryId": o.BoundaryID, "functionId": o.FunctionID} {
		if v != "" {
			f[k] = v
		}
	}
	return f
}

// InitUser mints a single-use init token for a user, valid 8 hours.
func (c *Client) InitUser(ctx context.Context, id string, o InitOptions) (string, int64, error) {
	var tok string
	rev, err := c.do(ctx, http.MethodPost, c.acc("user", id, "init"), o.body(), &tok)
	return tok, rev, err
}

// ListClients lists the account's clients.
func (c *Client) ListClients(ctx context.Context, o ListOptions) (Page[model.Client], error) {
	var p Page[model.Client]
	_, err := c.do(ctx, http.MethodGet, c.acc("client")+o.query(), nil, &p)
	return p, err
}

// GetClient returns a client.
func (c *Client) GetClient(ctx context.Context, id string) (model.Client, error) {
	var cl model.Client
	_, err := c.do(ctx, http.MethodGet, c.acc("client", id), nil, &cl)
	return cl, err
}

// AddClient adds a client; its ID must be empty.
func (c *Client) AddClient(ctx context.Context, cl model.Client) (model.Client, int64, error) {
	var out model.Client
	rev, err := c.do(ctx, http.MethodPost, c.acc("client"), cl, &out)
	return out, rev, err
}

// UpdateClient changes a client.
func (c *Client) UpdateClient(ctx context.Context, id string, u AgentUpdate) (model.Client, int64, error) {
	var out model.Client
	rev, err := c.do(ctx, http.MethodPatch, c.acc("client", id), u.body(), &out)
	return out, rev, err
}

// DeleteClient removes a client.
func (c *Client) DeleteClient(ctx context.Context, id string) (int64, error) {
	return c.do(ctx, http.MethodDelete, c.acc("client", id), nil, nil)
}

// InitClient mints a single-use init token for a client, valid 8 hours.
func (c *Client) InitClient(ctx context.Context, id string, o InitOptions) (string, int64, error) {
	var tok string
	rev, err := c.do(ctx, http.MethodPost, c.acc("client", id, "init"), o.body(), &tok)
	return tok, rev, err
}

// Check asks whether the client's token may perform action on resource.
// With minRevision > 0 the deployment first waits (briefly) until its state
// includes that write. A denial is a Decision, not an error.
func (c *Client) Check(ctx context.Context, action, resource string, minRevision int64) (model.Decision, error) {
	var d model.Decision
	body := map[string]any{"action": action, "resource": resource}
	if minRevision > 0 {
		body["minRevision"] = minRevision
	}
	_, err := c.doWith(ctx, c.cfg.Token, http.MethodPost, "/v1/check", body, &d, true)
	return d, err
}

// CheckBatch asks up to 100 checks with one token; the decisions come in
// order.
func (c *Client) CheckBatch(ctx context.Context, checks []model.Permission, minRevision int64) ([]model.Decision, error) {
	var out struct {
		Results []model.Decision `json:"results"`
	}
	body := map[string]any{"checks": checks}
	if minRevision > 0 {
		body["minRevision"] = minRevision
	}
	_, err := c.doWith(ctx, c.cfg.Token, http.MethodPost, "/v1/check/batch", body, &out, true)
	return out.Results, err
}
