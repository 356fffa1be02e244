package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wardenauthz/warden/internal/httpkit"
	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar"
	"github.com/wardenauthz/warden/sidecar/routes"
	"github.com/wardenauthz/warden/sidecar/storage"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Limits on route tables.
const (
	// maxRouteTablesPerAccount bounds an account's route tables.
	maxRouteTablesPerAccount = 64
	// maxRouteTableBody bounds a PUT body: a table and room for its
	// JSON's spacing.
	maxRouteTableBody = routes.MaxTableSize + 64<<10
	// routesWait bounds how long a table write waits for this node's
	// front doors to serve it.
	routesWait = 10 * time.Second
)

// routeTable is a route table as the API shows it: its name and the table.
type routeTable struct {
	Name string `json:"name"`
	*routes.Spec
}

// routeTableSummary is a route table in a list: its name and how many
// routes it has.
type routeTableSummary struct {
	Name       string `json:"name"`
	RouteCount int    `json:"routeCount"`
}

// checkRouteTableName validates a route table name from the path: the
// pattern of hook names.
func checkRouteTableName(name string) error {
	if model.ValidateHookName(name) != nil {
		return badRequest(`"routeTableName" with value "%s" fails to match the required pattern: /%s/`, truncate(name, 64), model.HookNamePattern)
	}
	return nil
}

// readRouteTable reads a table; nil when there is none.
func (s *Server) readRouteTable(ctx context.Context, acc, name string) (*routes.Spec, error) {
	key := s.layout.RouteTable(acc, name)
	resp, err := s.kv.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	spec, err := routes.Parse(resp.Kvs[0].Value)
	if err != nil {
		return nil, errBadTableRecord(name, err)
	}
	return spec, nil
}

// errBadTableRecord answers a stored table that does not load.
func errBadTableRecord(name string, err error) error {
	return errorf(http.StatusInternalServerError, "The route table '%s' has a record in the store that does not load (%s); write it again", name, err)
}

func (s *Server) getRouteTable(c *call) (any, error) {
	spec, err := s.readRouteTable(c.r.Context(), c.acc, c.id)
	if err != nil {
		return nil, err
	}
	if spec == nil {
		return nil, notFound("route table", c.id)
	}
	return routeTable{Name: c.id, Spec: spec}, nil
}

// listRouteTables lists an account's route tables in name order, a page
// at a time.
func (s *Server) listRouteTables(c *call) (any, error) {
	return s.listRecords(c, cursorRoutes, s.layout.RouteTables(c.acc), storage.KindRouteTable,
		func(name string) string { return s.layout.RouteTable(c.acc, name) },
		func(_, name string, value []byte) any {
			item := routeTableSummary{Name: name, RouteCount: -1}
			if spec, err := routes.Parse(value); err == nil {
				item.RouteCount = len(spec.Routes)
			}
			return item
		})
}

// putRouteTable stores a route table, whole: a table is checked as its
// sources load it (parsed, its patterns compiled), and every hook its
// routes name must be one of the account's. It replaces what was there.
func (s *Server) putRouteTable(c *call) (any, error) {
	raw, err := httpkit.ReadBody(c.w, c.r, maxRouteTableBody)
	if err != nil {
		return nil, err
	}
	if len(strings.TrimSpace(string(raw))) == 0 {
		return nil, badRequest("The route table is empty: send {default?, routes: [...]}")
	}
	if raw, err = withoutName(raw, c.id); err != nil {
		return nil, err
	}
	spec, err := routes.Parse(raw)
	if err == nil {
		_, err = routes.Compile(spec)
	}
	if err != nil {
		return nil, badRequest("%s", err)
	}
	if err := s.checkRouteHooks(c, spec); err != nil {
		return nil, err
	}
	key := s.layout.RouteTable(c.acc, c.id)
	cur, err := s.kv.Get(c.r.Context(), key, clientv3.WithKeysOnly())
	if err != nil {
		return nil, err
	}
	// The table is written as it was found (new, or at the revision
	// read), and while every hook it names is there.
	var modRev int64
	if len(cur.Kvs) > 0 {
		modRev = cur.Kvs[0].ModRevision
	}
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", modRev)}
	if modRev == 0 {
		held, err := s.room(c, s.layout.RouteTables(c.acc), maxRouteTablesPerAccount, "route tables")
		if err != nil {
			return nil, err
		}
		cmps = append(cmps, held)
	}
	for _, h := range spec.Hooks() {
		cmps = append(cmps, clientv3.Compare(clientv3.Version(s.layout.Hook(c.acc, h)), ">", 0))
	}
	resp, err := s.commit(c, cmps, []clientv3.Op{clientv3.OpPut(key, storage.Encode(spec))}, nil)
	if err != nil {
		return nil, err
	}
	if !resp.Succeeded {
		return nil, errorf(http.StatusConflict, "The route table '%s', the account's route tables or its hooks were changed by other writes while this one was made; nothing was written", c.id)
	}
	s.awaitRoutes(c)
	return routeTable{Name: c.id, Spec: spec}, nil
}

// withoutName takes the name out of a JSON body, as GET shows a table
// ({name, default, routes}), so that what was read can be written back; a
// name other than the URL's is refused. A body that is not a JSON object
// is left to the parser.
func withoutName(raw []byte, name string) ([]byte, error) {
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil {
		return raw, nil
	}
	given, ok := fields["name"]
	if !ok {
		return raw, nil
	}
	var body string
	if json.Unmarshal(given, &body) != nil || body != name {
		return nil, badRequest("The route table name in the body '%s' does not match the name in the URL '%s'", truncate(strings.Trim(string(given), `"`), 64), name)
	}
	delete(fields, "name")
	return json.Marshal(fields)
}

// checkRouteHooks refuses a table whose routes name a hook the account
// does not have, naming the route and the hook.
func (s *Server) checkRouteHooks(c *call, spec *routes.Spec) error {
	names := spec.Hooks()
	if len(names) == 0 {
		return nil
	}
	prefix := s.layout.Hooks() + url.PathEscape(c.acc) + "/"
	resp, err := s.kv.Get(c.r.Context(), prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, kv := range resp.Kvs {
		if k, err := s.layout.Parse(string(kv.Key)); err == nil && k.Kind == storage.KindHook {
			have[k.Segs[1]] = true
		}
	}
	for _, r := range spec.Routes {
		for _, h := range r.Hooks {
			if !have[h] {
				return badRequest(`route %q: "hooks": the account has no hook named %q; add it (PUT /v1/account/%s/hook/%s) before the table`, r.Name, h, c.acc, h)
			}
		}
	}
	return nil
}

// testRouteTable tries a request against a stored table, as `warden
// routes test` does: {method, url, token?} answers which route matches,
// its requirements bound, and the decision a front door enforcing the
// table makes, with this node's engine. Without a token in the body, the
// caller's own decides; "" is a request without one. A path the table
// refuses is a decision (400), not an error: the request was tried.
func (s *Server) testRouteTable(c *call) (any, error) {
	body, err := c.body("method", "url", "token")
	if err != nil {
		return nil, err
	}
	method := strings.ToUpper(body.required("method", maxNameLen))
	target := body.required("url", maxURLLen)
	token := httpkit.Bearer(c.r)
	if body.has("token") && !body.refuseNull("token") {
		token = body.str("token", sidecar.MaxTokenSize, false)
	}
	if method != "" && !routes.ValidMethod(method) {
		body.failOn("method", `"%s" must be an HTTP method, not '%s'`, truncate(method, 64))
	}
	if target != "" {
		if _, err := routes.ParseTestURL(target); err != nil {
			body.failOn("url", `"%s" must be a path (/…) or an absolute URL, not '%s'`, truncate(target, 64))
		}
	}
	if err := body.err(); err != nil {
		return nil, err
	}
	spec, err := s.readRouteTable(c.r.Context(), c.acc, c.id)
	if err != nil {
		return nil, err
	}
	if spec == nil {
		return nil, notFound("route table", c.id)
	}
	tbl, err := routes.Compile(spec)
	if err != nil {
		return nil, errBadTableRecord(c.id, err)
	}
	return tbl.TryHere(c.r.Context(), s.eng, method, target, token)
}

func (s *Server) deleteRouteTable(c *call) (any, error) {
	return nil, s.deleteRecord(c, s.layout.RouteTable(c.acc, c.id), "route table", s.awaitRoutes)
}

// awaitRoutes waits, at most routesWait, for this node's front doors to
// serve the table of the write's revision.
func (s *Server) awaitRoutes(c *call) {
	s.await(c, s.deps.AwaitRoutes, routesWait, "a route table write is committed but this node's front doors do not serve it yet")
}
