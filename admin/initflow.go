package admin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/wardenauthz/warden/internal/httpkit"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar"
	"github.com/wardenauthz/warden/sidecar/storage"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// maxProfileSize bounds the profile an init token carries.
const maxProfileSize = 4 << 10

// initRequest is a validated body of POST …/{usr|clt}/init.
type initRequest struct {
	pki     bool
	profile map[string]any
	legacy  map[string]string // subscriptionId, boundaryId, functionId
}

var legacyInitFields = []string{"subscriptionId", "boundaryId", "functionId"}

func readInitRequest(c *call) (*initRequest, error) {
	o, err := c.body(append([]string{"protocol", "profile"}, legacyInitFields...)...)
	if err != nil {
		return nil, err
	}
	req := &initRequest{legacy: map[string]string{}}
	switch p := o.str("protocol", 32, false); p {
	case "":
	case "pki":
		req.pki = true
	default:
		o.fail(`"protocol" must be [pki]`)
	}
	for _, f := range legacyInitFields {
		if v := o.str(f, maxIDLen, false); v != "" {
			if req.pki {
				o.fail(`"%s" is not allowed with "protocol"`, f)
			}
			req.legacy[f] = v
		}
	}
	if o.has("profile") && !o.null("profile") {
		raw := o.fields["profile"]
		switch {
		case !req.pki:
			o.fail(`"profile" is only allowed with "protocol": "pki"`)
		case len(raw) > maxProfileSize:
			o.fail(`"profile" must be at most %d bytes of JSON`, maxProfileSize)
		case json.Unmarshal(raw, &req.profile) != nil || req.profile == nil:
			o.fail(`"profile" must be an object`)
		}
	}
	return req, o.err()
}

// initToken is a minted init token and the record that lets any replica
// verify and consume it.
type initToken struct {
	token  string
	record storage.InitRecord
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("admin: reading random bytes: " + err.Error())
	}
	return hex.EncodeToString(b)
}

// mintInitToken mints an init token for agent, with a fresh issuerId
// (<8 hex>.<agentId>.<host of baseUrl>) and subject (cli-<8 hex>), and the
// claims Fusebit's init tokens carry.
func mintInitToken(cfg Config, host string, now time.Time, acc string, agent *storage.AgentRecord, req *initRequest) (initToken, error) {
	rec := storage.InitRecord{
		JTI: randomHex(16), AgentID: agent.ID, AgentType: agent.Type,
		IssuerID: randomHex(4) + "." + agent.ID + "." + host,
		Subject:  "cli-" + randomHex(4),
		Secret:   []byte(randomHex(32)),
		Expires:  now.Add(cfg.InitTokenTTL).Unix(),
		Grants:   agent.Allow,
	}
	claims := jwt.MapClaims{
		"jti": rec.JTI, "iat": now.Unix(), "exp": rec.Expires,
		"iss": cfg.BaseURL, "aud": cfg.BaseURL, "agentId": agent.ID,
	}
	if req.pki {
		profile := map[string]any{}
		for k, v := range req.profile {
			profile[k] = v
		}
		profile["baseUrl"], profile["account"] = cfg.BaseURL, acc
		profile["issuerId"], profile["subject"] = rec.IssuerID, rec.Subject
		claims["protocol"], claims["profile"] = "pki", profile
	} else {
		claims["accountId"], claims["baseUrl"] = acc, cfg.BaseURL
		claims["issuerId"], claims["subject"] = rec.IssuerID, rec.Subject
		for k, v := range req.legacy {
			claims[k] = v
		}
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(rec.Secret)
	if err != nil {
		return initToken{}, fmt.Errorf("signing an init token: %w", err)
	}
	return initToken{token: tok, record: rec}, nil
}

// initRecordOp stores an init token's record under a lease that ends a
// minute after the token expires, so spent and unused tokens leave the
// store by themselves.
func initRecordOp(ctx context.Context, kv *clientv3.Client, layout storage.Layout, acc string, it initToken, now time.Time) (clientv3.Op, error) {
	ttl := time.Unix(it.record.Expires, 0).Sub(now) + time.Minute
	lease, err := kv.Grant(ctx, int64(ttl/time.Second))
	if err != nil {
		return clientv3.Op{}, fmt.Errorf("granting the init token's lease: %w", err)
	}
	return clientv3.OpPut(layout.Init(acc, it.record.JTI), storage.Encode(it.record), clientv3.WithLease(lease.ID)), nil
}

func (s *Server) mintInit(k kind, c *call) (any, error) {
	req, err := readInitRequest(c)
	if err != nil {
		return nil, err
	}
	for range maxWriteAttempts {
		target, modRev, err := s.loadAgent(c.r.Context(), k, c.acc, c.id)
		if err != nil {
			return nil, err
		}
		if err := s.guard(c, target, "issue an init token for"); err != nil {
			return nil, err
		}
		it, err := mintInitToken(s.cfg, s.host, s.now(), c.acc, target, req)
		if err != nil {
			return nil, err
		}
		op, err := initRecordOp(c.r.Context(), s.kv, s.layout, c.acc, it, s.now())
		if err != nil {
			return nil, err
		}
		key := s.layout.Agent(c.acc, c.id)
		resp, err := s.commit(c, []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", modRev)}, []clientv3.Op{op}, nil)
		if err != nil {
			return nil, err
		}
		if resp.Succeeded {
			return it.token, nil
		}
	}
	return nil, errContended
}

var errInitUsed = errorf(http.StatusNotFound, "The init token has already been used")

// verifyInit verifies an init token for account acc: its record must exist
// in the account, its HS256 signature check out against the record's
// secret, and its claims be the ones minted. A consumed token is 404; any
// other failure is 403 Unauthorized.
func (s *Server) verifyInit(ctx context.Context, acc, token string) (*storage.InitRecord, int64, error) {
	if token == "" || len(token) > sidecar.MaxTokenSize {
		return nil, 0, errUnauthorized
	}
	unverified := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, unverified); err != nil {
		return nil, 0, errUnauthorized
	}
	jti, _ := unverified["jti"].(string)
	if len(jti) != 32 || strings.Trim(jti, "0123456789abcdef") != "" {
		return nil, 0, errUnauthorized
	}
	key := s.layout.Init(acc, jti)
	resp, err := s.kv.Get(ctx, key)
	if err != nil {
		return nil, 0, err
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, errUnauthorized
	}
	rec := &storage.InitRecord{}
	if err := storage.Decode(key, resp.Kvs[0].Value, rec); err != nil {
		return nil, 0, err
	}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithStrictDecoding(),
		jwt.WithIssuer(s.cfg.BaseURL), jwt.WithAudience(s.cfg.BaseURL), jwt.WithExpirationRequired(),
		jwt.WithLeeway(s.eng.Config().Leeway), jwt.WithTimeFunc(s.now))
	claims := jwt.MapClaims{}
	if _, err := parser.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return rec.Secret, nil }); err != nil {
		return nil, 0, errUnauthorized
	}
	if agent, _ := claims["agentId"].(string); agent != rec.AgentID {
		return nil, 0, errUnauthorized
	}
	if rec.Consumed {
		return nil, 0, errInitUsed
	}
	return rec, resp.Kvs[0].ModRevision, nil
}

// enrollment is a validated body of POST /account/{acc}/init.
type enrollment struct {
	keyID, publicKey string
}

func (s *Server) readEnrollment(c *call, rec *storage.InitRecord) (enrollment, error) {
	o, err := c.body("protocol", "accessToken", "publicKey", "keyId")
	if err != nil {
		return enrollment{}, err
	}
	e := enrollment{publicKey: o.pemText("publicKey")}
	var access string
	switch p := o.str("protocol", 32, false); p {
	case "pki":
		access = o.required("accessToken", sidecar.MaxTokenSize)
		if o.has("keyId") {
			o.fail(`"keyId" is not allowed with "protocol": the access token's kid names the key`)
		}
	case "":
		e.keyID = o.required("keyId", maxIDLen)
		if o.has("accessToken") {
			o.fail(`"accessToken" is only allowed with "protocol": "pki"`)
		}
	default:
		o.fail(`"protocol" must be [pki]`)
	}
	key, perr := sidecar.ParsePublicKey(e.publicKey)
	if e.publicKey != "" && perr != nil {
		o.fail(`"publicKey" is not a valid public key: %s`, perr)
	}
	if err := o.err(); err != nil {
		return e, err
	}
	if access != "" {
		// The access token proves the enrolling party holds the private
		// key, and binds it to the identity the init token minted.
		claims, err := s.eng.VerifyWithKey(access, key)
		if err != nil || claims.Issuer != rec.IssuerID || claims.Subject != rec.Subject {
			return e, errUnauthorized
		}
		e.keyID = claims.KeyID
	}
	return e, nil
}

// grewSince returns a grant the agent holds now that its grants at minting
// do not cover. Whoever minted the token covered those grants, not this
// one, so the token must not hand it over.
func grewSince(agent *storage.AgentRecord, rec *storage.InitRecord) (model.Permission, bool) {
	for _, g := range agent.Allow {
		if _, ok := model.Covers(rec.Grants, g.Action, g.Resource); !ok {
			return g, true
		}
	}
	return model.Permission{}, false
}

// enroll consumes an init token: it registers the token's issuer with the
// enrolled public key, adds the identity to the agent and marks the token
// used, all in one transaction.
func (s *Server) enroll(c *call) (any, error) {
	token := httpkit.Bearer(c.r)
	rec, initRev, err := s.verifyInit(c.r.Context(), c.acc, token)
	if err != nil {
		return nil, err
	}
	e, err := s.readEnrollment(c, rec)
	if err != nil {
		return nil, err
	}
	k := userKind
	if rec.AgentType == model.AgentClient {
		k = clientKind
	}
	for range maxWriteAttempts {
		agent, agentRev, err := s.loadAgent(c.r.Context(), k, c.acc, rec.AgentID)
		if err != nil {
			return nil, err
		}
		if g, grew := grewSince(agent, rec); grew {
			return nil, errorf(http.StatusForbidden,
				"Unauthorized: the %s '%s' was granted the action '%s' on resource '%s' after this init token was issued; ask for a new one",
				agent.Type, agent.ID, g.Action, g.Resource)
		}
		if len(agent.Identities) >= maxIdentities {
			return nil, badRequest("The %s '%s' already has %d identities, the most an agent may have; remove one first",
				agent.Type, agent.ID, maxIdentities)
		}
		ident := model.Identity{IssuerID: rec.IssuerID, Subject: rec.Subject}
		next := *agent
		next.Identities = append(append([]model.Identity{}, agent.Identities...), ident)
		issuer := model.Issuer{ID: rec.IssuerID, PublicKeys: []model.PublicKey{{KeyID: e.keyID, PublicKey: e.publicKey}}}
		used := *rec
		used.Consumed = true
		initKey, agentKey, issuerKey := s.layout.Init(c.acc, rec.JTI), s.layout.Agent(c.acc, agent.ID), s.layout.Issuer(c.acc, rec.IssuerID)
		cmps := []clientv3.Cmp{
			clientv3.Compare(clientv3.ModRevision(initKey), "=", initRev),
			clientv3.Compare(clientv3.ModRevision(agentKey), "=", agentRev),
			clientv3.Compare(clientv3.CreateRevision(issuerKey), "=", 0),
		}
		ops := []clientv3.Op{
			clientv3.OpPut(initKey, storage.Encode(used), clientv3.WithIgnoreLease()),
			clientv3.OpPut(agentKey, storage.Encode(&next)),
			clientv3.OpPut(issuerKey, storage.Encode(issuer)),
		}
		cmps, ops, _ = s.claimIdentities(c.acc, agent.ID, []model.Identity{ident}, cmps, ops)
		resp, err := s.commit(c, cmps, ops, nil)
		if err != nil {
			return nil, err
		}
		if resp.Succeeded {
			return publicRecord(&next), nil
		}
		// Another enrollment with this token, or a change to the agent,
		// came first: look again.
		if rec, initRev, err = s.verifyInit(c.r.Context(), c.acc, token); err != nil {
			return nil, err
		}
	}
	return nil, errContended
}
