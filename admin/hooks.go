package admin

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"github.com/wardenauthz/warden/internal/httpkit"
	"net/http"
	"net/url"
	"time"

	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar/storage"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Limits on hooks.
const (
	// maxModule is the largest module a hook may have; Go hooks are
	// about 2 MB.
	maxModule = 8 << 20
	// maxHookBody bounds a PUT body: the module in base64 and the rest.
	maxHookBody = maxModule/3*4 + 64<<10
	// hookCommitTries bounds the retries of a hook write that raced
	// another write of the same hook.
	hookCommitTries = 3
	// hookWait bounds how long a hook write waits for this node to
	// compile and attach the hook.
	hookWait = 30 * time.Second
	// moduleCheckTimeout bounds compiling a module to check it.
	moduleCheckTimeout = 2 * time.Minute
)

// maxHooksPerAccount bounds an account's hooks: each costs compiled code
// and a pool of instances on every node.
const maxHooksPerAccount = 16

// hookRoom refuses a new hook in an account that holds maxHooksPerAccount
// already, and returns the compare that keeps the count true until the
// write commits.
func (s *Server) hookRoom(c *call) (clientv3.Cmp, error) {
	return s.room(c, s.layout.Hooks()+url.PathEscape(c.acc)+"/", maxHooksPerAccount, "hooks")
}

// room refuses a new record under prefix when limit records are there
// already, naming them as what, and returns the compare that keeps the
// count true until the write commits.
func (s *Server) room(c *call, prefix string, limit int64, what string) (clientv3.Cmp, error) {
	resp, err := s.kv.Get(c.r.Context(), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return clientv3.Cmp{}, err
	}
	if resp.Count >= limit {
		return clientv3.Cmp{}, badRequest("The account holds %d %s, the most it may; remove one before adding '%s'", resp.Count, what, c.id)
	}
	return clientv3.Compare(clientv3.ModRevision(prefix).WithPrefix(), "<", resp.Header.Revision+1), nil
}

// checkHookName validates a hook name from the path.
func checkHookName(name string) error {
	if err := model.ValidateHookName(name); err != nil {
		return badRequest(`"hookName" with value "%s" fails to match the required pattern: /%s/`, truncate(name, 64), model.HookNamePattern)
	}
	return nil
}

func (s *Server) hookOf(acc, name string, rec storage.HookRecord) model.Hook {
	h := model.Hook{Name: name, Mode: rec.Mode, ActionPrefix: rec.ActionPrefix, SHA256: rec.SHA256, Size: rec.Size}
	// A record that does not decode is listed with no digest: the node
	// holds it as broken, and says so.
	if s.deps.HookState != nil {
		state, reason := s.deps.HookState(acc, name, rec.SHA256)
		h.Status = &model.HookStatus{State: state, Reason: reason}
	}
	return h
}

// readHookRecord reads a hook's record and its mod revision (0 when there
// is none).
func (s *Server) readHookRecord(ctx context.Context, acc, name string) (*storage.HookRecord, int64, error) {
	key := s.layout.Hook(acc, name)
	resp, err := s.kv.Get(ctx, key)
	if err != nil {
		return nil, 0, err
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, nil
	}
	var rec storage.HookRecord
	if err := storage.Decode(key, resp.Kvs[0].Value, &rec); err != nil {
		return nil, 0, errorf(http.StatusInternalServerError, "The hook '%s' has a record in the store that does not decode; write it again", name)
	}
	return &rec, resp.Kvs[0].ModRevision, nil
}

// listHooks lists an account's hooks in name order, a page at a time.
func (s *Server) listHooks(c *call) (any, error) {
	prefix := s.layout.Hooks() + url.PathEscape(c.acc) + "/"
	return s.listRecords(c, cursorHooks, prefix, storage.KindHook, func(name string) string { return s.layout.Hook(c.acc, name) },
		func(key, name string, value []byte) any {
			var rec storage.HookRecord
			if storage.Decode(key, value, &rec) != nil {
				// Listed as what is known: it denies until written again.
				rec = storage.HookRecord{}
			}
			return s.hookOf(c.acc, name, rec)
		})
}

// listRecords lists the records of one kind under prefix (an account's)
// in name order, a page at a time: keyOf makes a name's key, for the
// cursor; item makes a record's list item.
func (s *Server) listRecords(c *call, cursorKind, prefix, kind string, keyOf func(name string) string, item func(key, name string, value []byte) any) (any, error) {
	p, err := parsePage(c.r.URL.Query(), cursorKind)
	if err != nil {
		return nil, err
	}
	from := prefix
	if p.after != "" {
		from = keyOf(p.after) + "\x00"
	}
	resp, err := s.kv.Get(c.r.Context(), from, clientv3.WithRange(clientv3.GetPrefixRangeEnd(prefix)), clientv3.WithLimit(int64(p.count)+1))
	if err != nil {
		return nil, err
	}
	col := &pager{page: p, cKind: cursorKind}
	for _, kv := range resp.Kvs {
		k, err := s.layout.Parse(string(kv.Key))
		if err != nil || k.Kind != kind {
			continue
		}
		if !col.offer(k.Segs[1], item(string(kv.Key), k.Segs[1], kv.Value)) {
			break
		}
	}
	return col.result(), nil
}

func (s *Server) getHook(c *call) (any, error) {
	rec, _, err := s.readHookRecord(c.r.Context(), c.acc, c.id)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, notFound("hook", c.id)
	}
	return s.hookOf(c.acc, c.id, *rec), nil
}

// readHook reads and validates a PUT body: {module, mode?, actionPrefix?},
// the module in base64.
func (s *Server) readHook(c *call) (storage.HookRecord, []byte, error) {
	raw, err := httpkit.ReadBody(c.w, c.r, maxHookBody)
	if err != nil {
		return storage.HookRecord{}, nil, err
	}
	o, err := parseObject(raw, "module", "mode", "actionPrefix")
	if err != nil {
		return storage.HookRecord{}, nil, err
	}
	rec := storage.HookRecord{Mode: model.HookRestrict}
	var wasm []byte
	if !o.has("module") {
		o.fail(`"module" is required`)
	} else {
		var text string
		if json.Unmarshal(o.fields["module"], &text) != nil {
			o.fail(`"module" must be a string: the module's bytes in base64`)
		} else if wasm, err = base64.StdEncoding.DecodeString(text); err != nil {
			o.fail(`"module" must be the module's bytes in standard base64: %s`, err)
		} else if len(wasm) == 0 {
			o.fail(`"module" is not allowed to be empty`)
		} else if len(wasm) > maxModule {
			o.fail(`"module" is %d bytes; a module may be at most %d bytes`, len(wasm), maxModule)
		}
	}
	if o.has("mode") && !o.null("mode") {
		switch mode := o.str("mode", maxNameLen, true); mode {
		case model.HookRestrict, model.HookDecide:
			rec.Mode = mode
		case "":
		default:
			o.fail(`"mode" must be one of [%s, %s]`, model.HookRestrict, model.HookDecide)
		}
	}
	rec.ActionPrefix = o.str("actionPrefix", maxNameLen, false)
	if err := o.err(); err != nil {
		return storage.HookRecord{}, nil, err
	}
	sum := sha256.Sum256(wasm)
	rec.SHA256, rec.Size = hex.EncodeToString(sum[:]), len(wasm)
	rec.Chunks = (len(wasm) + storage.HookChunkSize - 1) / storage.HookChunkSize
	return rec, wasm, nil
}

// putHook stores a hook: the module's chunks first, each in a request of
// its own (a module is larger than etcd takes in one), then the record in
// a transaction that requires the chunks, replaces what was there and
// deletes the chunks of other modules of the hook. A write that loses a
// race with another write of the same hook tries again.
func (s *Server) putHook(c *call) (any, error) {
	rec, wasm, err := s.readHook(c)
	if err != nil {
		return nil, err
	}
	if s.deps.CheckModule != nil {
		// Compiling takes a while (about a second for a Go hook); the
		// store calls that follow get the whole store timeout.
		start := time.Now()
		cctx, cancel := context.WithTimeout(context.WithoutCancel(c.r.Context()), moduleCheckTimeout)
		err := s.deps.CheckModule(cctx, c.id, wasm)
		cancel()
		if err != nil {
			return nil, badRequest(`"module" is not a hook Warden can run: %s`, err)
		}
		s.log.Debug("hook module checked", "hook", c.id, "size", len(wasm), "took", time.Since(start).Round(time.Millisecond))
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.r.Context()), s.cfg.StoreTimeout)
		defer cancel()
		c.r = c.r.WithContext(ctx)
	}
	key := s.layout.Hook(c.acc, c.id)
	mods := s.layout.HookModules(c.acc, c.id)
	own := mods + rec.SHA256 + "/"
	for try := 0; ; try++ {
		// What is there is replaced, even a record that does not
		// decode: only its revision matters.
		cur, err := s.kv.Get(c.r.Context(), key)
		if err != nil {
			return nil, err
		}
		var modRev int64
		if len(cur.Kvs) > 0 {
			modRev = cur.Kvs[0].ModRevision
		}
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", modRev)}
		if modRev == 0 {
			// A new hook: the account may hold at most maxHooksPerAccount,
			// and none may be added meanwhile.
			held, err := s.hookRoom(c)
			if err != nil {
				return nil, err
			}
			cmps = append(cmps, held)
		}
		for i := range rec.Chunks {
			chunk := wasm[i*storage.HookChunkSize : min((i+1)*storage.HookChunkSize, len(wasm))]
			ck := s.layout.HookChunk(c.acc, c.id, rec.SHA256, i)
			if _, err := s.kv.Put(c.r.Context(), ck, string(chunk)); err != nil {
				// The hook is unchanged whatever became of the
				// chunk: its record was not written.
				if refused := refusal(err); refused != nil {
					return nil, refused
				}
				return nil, err
			}
			cmps = append(cmps, clientv3.Compare(clientv3.Version(ck), ">", 0))
		}
		ops := []clientv3.Op{
			clientv3.OpPut(key, storage.Encode(rec)),
			// Every other module of the hook: the ranges before and
			// after this one's chunks.
			clientv3.OpDelete(mods, clientv3.WithRange(own)),
			clientv3.OpDelete(mods+rec.SHA256+"0", clientv3.WithRange(clientv3.GetPrefixRangeEnd(mods))),
		}
		resp, err := s.commit(c, cmps, ops, nil)
		if err != nil {
			return nil, err
		}
		if resp.Succeeded {
			break
		}
		if try == hookCommitTries-1 {
			return nil, errorf(http.StatusConflict, "The hook '%s' was changed by other writes while this one was made; nothing was written", c.id)
		}
	}
	s.awaitHooks(c)
	return s.hookOf(c.acc, c.id, rec), nil
}

func (s *Server) deleteHook(c *call) (any, error) {
	return nil, s.deleteRecord(c, s.layout.Hook(c.acc, c.id), "hook", s.awaitHooks,
		clientv3.OpDelete(s.layout.HookModules(c.acc, c.id), clientv3.WithPrefix()))
}

// deleteRecord deletes the record at key, and what more deletes with it,
// when it exists (else 404 naming kind), then waits for this node to
// follow (after).
func (s *Server) deleteRecord(c *call, key, kind string, after func(*call), more ...clientv3.Op) error {
	resp, err := s.commit(c, []clientv3.Cmp{clientv3.Compare(clientv3.Version(key), ">", 0)}, append([]clientv3.Op{clientv3.OpDelete(key)}, more...), nil)
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		return notFound(kind, c.id)
	}
	after(c)
	return nil
}

// awaitHooks waits, at most hookWait, for this node to attach the hooks
// of the write's revision, so that a check here right after the write sees
// the hook.
func (s *Server) awaitHooks(c *call) {
	s.await(c, s.deps.AwaitHooks, hookWait, "a hook write is committed but this node has not attached it yet")
}

// await waits, at most limit, for a part of this node that follows the
// store to catch up with the write's revision; when it does not, the write
// still stands, and the log says so.
func (s *Server) await(c *call, wait func(context.Context, int64) error, limit time.Duration, late string) {
	if wait == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.r.Context()), limit)
	defer cancel()
	if err := wait(ctx, c.rev); err != nil {
		s.log.Warn(late, "revision", c.rev, "error", err.Error())
	}
}
