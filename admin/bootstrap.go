package admin

import (
	"context"
	"crypto"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/wardenauthz/warden/internal/atomicfile"
	"net/url"
	"os"
	"path/filepath"
	"slices"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar"
	"github.com/wardenauthz/warden/sidecar/storage"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// RootInitTokenFile is the name, in the data directory, of the file holding
// the root client's init token after the first start.
const RootInitTokenFile = "root-init-token"

// BootstrapOptions say what the first start creates.
type BootstrapOptions struct {
	// Account is the account to create; a random one when empty. On later
	// starts it must be the account the store was bootstrapped with.
	Account string
	// DataDir receives RootInitTokenFile.
	DataDir string
	// Issuer, Subject and PublicKeyPEM, when set, register an issuer with
	// that key and give the root client that identity, on every start,
	// instead of writing an init token. KeyID defaults to the key's RFC
	// 7638 thumbprint.
	Issuer, Subject, PublicKeyPEM, KeyID string
}

// BootstrapResult says what the store holds and what this start did.
type BootstrapResult struct {
	Account, RootClient string
	// Created says this start bootstrapped the store.
	Created bool
	// TokenFile is where this start wrote the root init token, if it did.
	TokenFile string
}

// rootGrant is the root client's grant: the whole deployment, as Fusebit's
// deployment admin.
var rootGrant = model.Permission{Action: "*", Resource: "/"}

// Bootstrap creates, on the first start against an empty store, the account
// and a root client with rootGrant, and either writes an init token for the
// root client to RootInitTokenFile or registers the bootstrap issuer. Of
// several nodes starting at once exactly one bootstraps; the others read
// what it created.
func Bootstrap(ctx context.Context, kv *clientv3.Client, layout storage.Layout, cfg Config, deps Deps, opts BootstrapOptions) (BootstrapResult, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return BootstrapResult{}, fmt.Errorf("admin configuration: %w", err)
	}
	if deps.Now == nil {
		deps.Now = defaultNow
	}
	if err := opts.validate(); err != nil {
		return BootstrapResult{}, err
	}
	res, found, err := readBootstrap(ctx, kv, layout)
	if err != nil {
		return res, err
	}
	if !found {
		if res, err = create(ctx, kv, layout, cfg, deps, opts); err != nil {
			return res, err
		}
	}
	if opts.Account != "" && opts.Account != res.Account {
		return res, fmt.Errorf("--account %s differs from the account %s this store was bootstrapped with", opts.Account, res.Account)
	}
	if opts.Issuer != "" {
		if err := ensureIssuer(ctx, kv, layout, res, opts); err != nil {
			return res, fmt.Errorf("bootstrap issuer: %w", err)
		}
	}
	return res, nil
}

func (o *BootstrapOptions) validate() error {
	if o.Account != "" && !model.ValidID(model.AccountPrefix, o.Account) {
		return fmt.Errorf("account %q does not match %s", o.Account, model.IDPattern(model.AccountPrefix))
	}
	set := 0
	for _, v := range []string{o.Issuer, o.Subject, o.PublicKeyPEM} {
		if v != "" {
			set++
		}
	}
	switch {
	case set == 0 && o.KeyID == "":
		return nil
	case set < 3:
		return errors.New("--bootstrap-issuer, --bootstrap-subject and --bootstrap-public-key go together")
	case !printable(o.Issuer) || !printable(o.Subject) || !printable(o.KeyID):
		return errors.New("the bootstrap issuer, subject and key id must not contain control characters")
	}
	key, err := sidecar.ParsePublicKey(o.PublicKeyPEM)
	if err != nil {
		return fmt.Errorf("--bootstrap-public-key: %w", err)
	}
	if o.KeyID == "" {
		if o.KeyID, err = thumbprint(key); err != nil {
			return fmt.Errorf("--bootstrap-public-key: %w", err)
		}
	}
	return nil
}

// thumbprint is a key's RFC 7638 JWK thumbprint (SHA-256, base64url), the
// usual kid for a key that has no other name.
func thumbprint(key crypto.PublicKey) (string, error) {
	k, err := jwk.FromRaw(key)
	if err != nil {
		return "", err
	}
	sum, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

func readBootstrap(ctx context.Context, kv *clientv3.Client, layout storage.Layout) (BootstrapResult, bool, error) {
	resp, err := kv.Get(ctx, layout.Bootstrap())
	if err != nil {
		return BootstrapResult{}, false, fmt.Errorf("reading the bootstrap record: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return BootstrapResult{}, false, nil
	}
	var rec storage.BootstrapRecord
	if err := storage.Decode(layout.Bootstrap(), resp.Kvs[0].Value, &rec); err != nil {
		return BootstrapResult{}, false, err
	}
	return BootstrapResult{Account: rec.Account, RootClient: rec.RootClient}, true, nil
}

// ReadAccount returns the account the store was bootstrapped with, and
// false when it was not bootstrapped yet.
func ReadAccount(ctx context.Context, kv *clientv3.Client, layout storage.Layout) (string, bool, error) {
	res, found, err := readBootstrap(ctx, kv, layout)
	return res.Account, found, err
}

func create(ctx context.Context, kv *clientv3.Client, layout storage.Layout, cfg Config, deps Deps, opts BootstrapOptions) (BootstrapResult, error) {
	res := BootstrapResult{Account: opts.Account, RootClient: model.NewID(model.ClientPrefix), Created: true}
	if res.Account == "" {
		res.Account = model.NewID(model.AccountPrefix)
	}
	root := &storage.AgentRecord{ID: res.RootClient, Type: model.AgentClient, DisplayName: "root", Allow: []model.Permission{rootGrant}}
	meta := layout.Bootstrap()
	ops := []clientv3.Op{
		clientv3.OpPut(meta, storage.Encode(storage.BootstrapRecord{Account: res.Account, RootClient: res.RootClient})),
		clientv3.OpPut(layout.Account(res.Account), storage.Encode(storage.AccountRecord{ID: res.Account})),
		clientv3.OpPut(layout.Agent(res.Account, root.ID), storage.Encode(root)),
	}
	if opts.Issuer == "" {
		// The token file is written before the store knows the token, so
		// that a crash between the two never leaves a bootstrapped store
		// whose root token nobody has; if another node bootstraps first,
		// the file is removed again.
		now := deps.Now()
		// A pki token, so that enrolling the root key proves possession
		// of it, as `warden init` does.
		it, err := mintInitToken(cfg, hostOf(cfg.BaseURL), now, res.Account, root, &initRequest{pki: true})
		if err != nil {
			return res, err
		}
		op, err := initRecordOp(ctx, kv, layout, res.Account, it, now)
		if err != nil {
			return res, err
		}
		ops = append(ops, op)
		res.TokenFile = filepath.Join(opts.DataDir, RootInitTokenFile)
		if err := atomicfile.Write(res.TokenFile, []byte(it.token+"\n")); err != nil {
			return res, fmt.Errorf("writing the root init token: %w", err)
		}
	}
	resp, err := kv.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(meta), "=", 0)).Then(ops...).Commit()
	if err != nil {
		// The transaction may have committed: the token file stays, valid
		// if it did; if it did not, the next start bootstraps again and
		// replaces it.
		return res, fmt.Errorf("bootstrapping the store (it may or may not have happened; start again): %w", err)
	}
	if resp.Succeeded {
		return res, nil
	}
	// Another node bootstrapped first: this token was never stored.
	if res.TokenFile != "" {
		_ = os.Remove(res.TokenFile)
	}
	res, _, err = readBootstrap(ctx, kv, layout)
	return res, err
}

// ensureIssuer registers the bootstrap issuer with its key and gives the
// root client its identity, changing nothing that is already so.
func ensureIssuer(ctx context.Context, kv *clientv3.Client, layout storage.Layout, res BootstrapResult, opts BootstrapOptions) error {
	want := model.Issuer{ID: opts.Issuer, PublicKeys: []model.PublicKey{{KeyID: opts.KeyID, PublicKey: opts.PublicKeyPEM}}}
	issKey := layout.Issuer(res.Account, opts.Issuer)
	resp, err := kv.Get(ctx, issKey)
	if err != nil {
		return err
	}
	var have model.Issuer
	if len(resp.Kvs) > 0 {
		if err := storage.Decode(issKey, resp.Kvs[0].Value, &have); err != nil {
			return err
		}
	}
	if have.JSONKeysURL != "" || !slices.Equal(have.PublicKeys, want.PublicKeys) {
		want.DisplayName = have.DisplayName
		if _, err := kv.Put(ctx, issKey, storage.Encode(want)); err != nil {
			return err
		}
	}
	ident := model.Identity{IssuerID: opts.Issuer, Subject: opts.Subject}
	rootKey := layout.Agent(res.Account, res.RootClient)
	idKey := layout.Identity(res.Account, ident.IssuerID, ident.Subject)
	for range maxWriteAttempts {
		resp, err := kv.Get(ctx, rootKey)
		if err != nil {
			return err
		}
		if len(resp.Kvs) == 0 {
			return fmt.Errorf("the root client %s does not exist any more", res.RootClient)
		}
		var root storage.AgentRecord
		if err := storage.Decode(rootKey, resp.Kvs[0].Value, &root); err != nil {
			return err
		}
		if slices.Contains(root.Identities, ident) {
			return nil
		}
		root.Identities = append(root.Identities, ident)
		txn, err := kv.Txn(ctx).If(
			clientv3.Compare(clientv3.ModRevision(rootKey), "=", resp.Kvs[0].ModRevision),
			clientv3.Compare(clientv3.CreateRevision(idKey), "=", 0),
		).Then(clientv3.OpPut(rootKey, storage.Encode(&root)), clientv3.OpPut(idKey, root.ID)).Else(clientv3.OpGet(idKey)).Commit()
		if err != nil {
			return err
		}
		if txn.Succeeded {
			return nil
		}
		if kvs := txn.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 && string(kvs[0].Value) != root.ID {
			return fmt.Errorf("the identity {%s, %s} belongs to %s, not to the root client", ident.IssuerID, ident.Subject, kvs[0].Value)
		}
	}
	return errors.New("the root client changed concurrently too often")
}

// hostOf returns the host (and port) of a base URL; Config.Validate has
// checked that it parses and has one.
func hostOf(baseURL string) string {
	u, err := url.Parse(baseURL)
	if err != nil {
		return ""
	}
	return u.Host
}
