package admin

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/wardenauthz/warden/internal/httpkit"
	"net/http"
	"slices"
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

// The protocols of the init flow's protocol field, as Fusebit's. A body
// without one is the legacy form.
const (
	protocolPKI   = "pki"
	protocolOAuth = "oauth"
)

// protocolEnumMessage refuses any other protocol, as Fusebit's validator
// words it.
const protocolEnumMessage = `"protocol" must be one of [pki, oauth]`

// initRequest is a validated body of POST …/{usr|clt}/init.
type initRequest struct {
	pki bool
	// oauth asks for a token whose identity is named at enrollment by an
	// access token of an issuer of the account; profile then holds an
	// oauth object, echoed unchanged.
	oauth   bool
	profile map[string]any
	legacy  map[string]string // subscriptionId, boundaryId, functionId
}

// protocol is the protocol the request asks for; "" for the legacy form.
func (r *initRequest) protocol() string {
	switch {
	case r.pki:
		return protocolPKI
	case r.oauth:
		return protocolOAuth
	}
	return ""
}

var legacyInitFields = []string{"subscriptionId", "boundaryId", "functionId"}

// readProtocol reads the protocol field: "" when absent or null, else
// "pki" or "oauth". Anything else (a string, a number, an object) fails
// with the enum message alone, and ok is false.
func readProtocol(o *object) (p string, ok bool) {
	raw, present := o.fields["protocol"]
	if !present || o.null("protocol") {
		return "", true
	}
	if json.Unmarshal(raw, &p) == nil && (p == protocolPKI || p == protocolOAuth) {
		return p, true
	}
	o.fail(protocolEnumMessage)
	return "", false
}

func readInitRequest(c *call) (*initRequest, error) {
	o, err := c.body(append([]string{"protocol", "profile"}, legacyInitFields...)...)
	if err != nil {
		return nil, err
	}
	req := &initRequest{legacy: map[string]string{}}
	p, ok := readProtocol(o)
	if !ok {
		return nil, o.err()
	}
	req.pki, req.oauth = p == protocolPKI, p == protocolOAuth
	for _, f := range legacyInitFields {
		if v := o.str(f, maxIDLen, false); v != "" {
			if p != "" {
				o.fail(`"%s" is not allowed with "protocol"`, f)
			}
			req.legacy[f] = v
		}
	}
	switch {
	case p != "":
		req.profile = readInitProfile(o, req.oauth)
	case o.has("profile") && !o.null("profile"):
		o.fail(`"profile" is only allowed with "protocol": "pki" or "oauth"`)
	}
	return req, o.err()
}

// readInitProfile reads the profile of a pki or oauth request: a required
// object of any fields, which the token echoes. Numbers are kept as
// written, so the echo is exact. An oauth profile must hold an oauth
// object, and no issuerId or subject: the access token given at
// enrollment names the identity.
func readInitProfile(o *object, oauth bool) map[string]any {
	raw, present := o.fields["profile"]
	switch {
	case !present:
		o.fail(`"profile" is required`)
		return nil
	case len(raw) > maxProfileSize:
		o.fail(`"profile" must be at most %d bytes of JSON`, maxProfileSize)
		return nil
	}
	var profile map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&profile) != nil || profile == nil {
		o.fail(`"profile" must be an object`)
		return nil
	}
	if !oauth {
		return profile
	}
	// Problems inside the profile are reported by it, so that they carry
	// its path; the messages name the last key, as Fusebit's do.
	sub := o.sub("profile", raw)
	defer o.absorb(sub)
	switch v, ok := profile["oauth"]; {
	case !ok:
		sub.fail(`"oauth" is required`)
	case v == nil:
		sub.fail(`"oauth" must be an object`)
	default:
		if _, isObject := v.(map[string]any); !isObject {
			sub.fail(`"oauth" must be an object`)
		}
	}
	for _, f := range []string{"issuerId", "subject"} {
		if _, ok := profile[f]; ok {
			sub.fail(`"%s" is not allowed with "protocol": "oauth": the access token given at enrollment names the identity`, f)
		}
	}
	return profile
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

// mintInitToken mints an init token for agent, with the claims Fusebit's
// init tokens carry. A pki or legacy token names a fresh issuerId
// (<8 hex>.<agentId>.<host of baseUrl>) and subject (cli-<8 hex>) for the
// key to be enrolled; an oauth token names none, since the access token
// given at enrollment names the identity.
func mintInitToken(cfg Config, host string, now time.Time, acc string, agent *storage.AgentRecord, req *initRequest) (initToken, error) {
	rec := storage.InitRecord{
		JTI: randomHex(16), AgentID: agent.ID, AgentType: agent.Type,
		Secret:   []byte(randomHex(32)),
		Expires:  now.Add(cfg.InitTokenTTL).Unix(),
		Grants:   agent.Allow,
		Protocol: req.protocol(),
	}
	if !req.oauth {
		rec.IssuerID = randomHex(4) + "." + agent.ID + "." + host
		rec.Subject = "cli-" + randomHex(4)
	}
	claims := jwt.MapClaims{
		"jti": rec.JTI, "iat": now.Unix(), "exp": rec.Expires,
		"iss": cfg.BaseURL, "aud": cfg.BaseURL, "agentId": agent.ID,
	}
	if p := req.protocol(); p != "" {
		profile := map[string]any{}
		for k, v := range req.profile {
			profile[k] = v
		}
		profile["baseUrl"], profile["account"] = cfg.BaseURL, acc
		if req.pki {
			profile["issuerId"], profile["subject"] = rec.IssuerID, rec.Subject
		}
		claims["protocol"], claims["profile"] = p, profile
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

// enrollment is a validated body of POST /account/{acc}/init: the public
// key to register (pki and legacy), or the identity of a verified access
// token (oauth).
type enrollment struct {
	keyID, publicKey string
	// oauth says identity, verified at an issuer of the account, is what
	// the enrollment adds; no issuer is registered.
	oauth    bool
	identity model.Identity
}

// readEnrollment reads and checks the body of an enrollment with the init
// token rec: {protocol: "pki", accessToken, publicKey}, {protocol:
// "oauth", accessToken} for an oauth token, or the legacy {publicKey,
// keyId} together.
func (s *Server) readEnrollment(c *call, rec *storage.InitRecord) (enrollment, error) {
	o, err := c.body("protocol", "accessToken", "publicKey", "keyId")
	if err != nil {
		return enrollment{}, err
	}
	p, ok := readProtocol(o)
	if !ok {
		return enrollment{}, o.err()
	}
	// The body's shape depends on the protocol, so a mismatch with the
	// token's is the one thing worth saying.
	switch {
	case rec.Protocol == protocolOAuth && p != protocolOAuth:
		o.fail(`"protocol" must be "oauth" for this init token`)
		return enrollment{}, o.err()
	case rec.Protocol != protocolOAuth && p == protocolOAuth:
		o.fail(`"protocol" must be "pki" for this init token`)
		return enrollment{}, o.err()
	case p == "" && !(o.has("publicKey") && o.has("keyId")):
		// Only the two together are the legacy form; anything less is
		// a body that forgot its protocol.
		o.fail(`"protocol" is required`)
		return enrollment{}, o.err()
	}
	e := enrollment{oauth: p == protocolOAuth}
	var access string
	switch p {
	case protocolOAuth:
		access = o.required("accessToken", sidecar.MaxTokenSize)
		for _, f := range []string{"publicKey", "keyId"} {
			if o.has(f) {
				o.fail(`"%s" is not allowed with "protocol": "oauth": the access token names the identity`, f)
			}
		}
	case protocolPKI:
		e.publicKey = o.pemText("publicKey")
		access = o.required("accessToken", sidecar.MaxTokenSize)
		if o.has("keyId") {
			o.fail(`"keyId" is not allowed with "protocol": the access token's kid names the key`)
		}
	default:
		e.publicKey = o.pemText("publicKey")
		e.keyID = o.required("keyId", maxIDLen)
		if o.has("accessToken") {
			o.fail(`"accessToken" is only allowed with "protocol": "pki" or "oauth"`)
		}
	}
	var key crypto.PublicKey
	if e.publicKey != "" {
		var perr error
		if key, perr = sidecar.ParsePublicKey(e.publicKey); perr != nil {
			o.fail(`"publicKey" is not a valid public key: %s`, perr)
		}
	}
	if err := o.err(); err != nil {
		return e, err
	}
	switch {
	case e.oauth:
		// The access token proves that the enrolling party is the
		// identity it names, at an issuer the account already trusts.
		id, err := s.eng.VerifyIdentity(c.r.Context(), s.eng.Snapshot(), c.acc, access)
		if err != nil {
			s.log.Debug("an oauth enrollment's access token did not verify", "account", c.acc, "error", err.Error())
			return e, errUnauthorized
		}
		e.identity = id
	case access != "":
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

// enroll consumes an init token, all in one transaction: it adds the
// identity to the agent and marks the token used. With pki or the legacy
// form, the identity is the one the token minted, and its issuer is
// registered with the enrolled public key; with oauth, it is the identity
// of the verified access token, at an issuer that exists already.
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
		ident := model.Identity{IssuerID: rec.IssuerID, Subject: rec.Subject}
		if e.oauth {
			ident = e.identity
		}
		if slices.Contains(agent.Identities, ident) {
			return nil, badRequest("The %s '%s' already has the identity with issuerId '%s' and subject '%s'",
				agent.Type, agent.ID, ident.IssuerID, ident.Subject)
		}
		if len(agent.Identities) >= maxIdentities {
			return nil, badRequest("The %s '%s' already has %d identities, the most an agent may have; remove one first",
				agent.Type, agent.ID, maxIdentities)
		}
		next := *agent
		next.Identities = append(append([]model.Identity{}, agent.Identities...), ident)
		used := *rec
		used.Consumed = true
		initKey, agentKey := s.layout.Init(c.acc, rec.JTI), s.layout.Agent(c.acc, agent.ID)
		cmps := []clientv3.Cmp{
			clientv3.Compare(clientv3.ModRevision(initKey), "=", initRev),
			clientv3.Compare(clientv3.ModRevision(agentKey), "=", agentRev),
		}
		ops := []clientv3.Op{
			clientv3.OpPut(initKey, storage.Encode(used), clientv3.WithIgnoreLease()),
			clientv3.OpPut(agentKey, storage.Encode(&next)),
		}
		if !e.oauth {
			issuerKey := s.layout.Issuer(c.acc, rec.IssuerID)
			issuer := model.Issuer{ID: rec.IssuerID, PublicKeys: []model.PublicKey{{KeyID: e.keyID, PublicKey: e.publicKey}}}
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(issuerKey), "=", 0))
			ops = append(ops, clientv3.OpPut(issuerKey, storage.Encode(issuer)))
		}
		claimed := []model.Identity{ident}
		cmps, ops, probes := s.claimIdentities(c.acc, agent.ID, claimed, cmps, ops)
		resp, err := s.commit(c, cmps, ops, probes)
		if err != nil {
			return nil, err
		}
		if resp.Succeeded {
			return publicRecord(&next), nil
		}
		if err := identityConflict(resp, claimed); err != nil {
			return nil, err
		}
		// Another enrollment with this token, or a change to the agent,
		// came first: look again.
		if rec, initRev, err = s.verifyInit(c.r.Context(), c.acc, token); err != nil {
			return nil, err
		}
	}
	return nil, errContended
}
