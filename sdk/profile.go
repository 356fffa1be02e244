package sdk

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/wardenauthz/warden/sdk/model"
)

// Profile is what an agent needs to call Warden: the deployment, the
// account, and a key pair enrolled for one of the agent's identities. Its
// JSON is what `warden profile get --include-credentials -o json` prints.
type Profile struct {
	// ID is the agent (usr-… or clt-…) the key acts for.
	ID      string `json:"id"`
	BaseURL string `json:"baseUrl"`
	Account string `json:"account"`
	PKI     PKI    `json:"pki"`
	// CAFile is a PEM file of the CAs trusted for an https:// BaseURL
	// (default: the system's): read at each Client, so a renewed CA
	// bundle is used without a new profile.
	CAFile string `json:"caFile,omitempty"`
}

// PKI is a profile's key and the claims its tokens carry.
type PKI struct {
	Algorithm string `json:"algorithm"`
	Issuer    string `json:"issuer"`
	Subject   string `json:"subject"`
	KID       string `json:"kid"`
	Audience  string `json:"audience"`
	// PrivateKey is the PKCS #8 PEM private key.
	PrivateKey string `json:"privateKey"`
}

// Signer parses the profile's private key.
func (p *Profile) Signer() (crypto.Signer, error) {
	block, _ := pem.Decode([]byte(p.PKI.PrivateKey))
	if block == nil {
		return nil, errors.New("the profile's private key is not PEM")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("the profile's private key: %w", err)
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("the profile's private key is a %T, which cannot sign", key)
	}
	return s, nil
}

// Mint signs a token for the profile's identity, valid for lifetime
// (DefaultTokenLifetime when 0), carrying perms as inline permissions when
// not nil: they narrow what the agent may do with this token.
func (p *Profile) Mint(lifetime time.Duration, perms []model.Permission) (string, error) {
	key, err := p.Signer()
	if err != nil {
		return "", err
	}
	return MintToken(TokenSpec{PrivateKey: key, Algorithm: p.PKI.Algorithm, KeyID: p.PKI.KID, Issuer: p.PKI.Issuer,
		Subject: p.PKI.Subject, Audience: p.PKI.Audience, Lifetime: lifetime, Permissions: perms})
}

// TokenSource returns a TokenSource that mints a token with the profile's
// key and mints a new one a minute before it expires, so a long-running
// program never sends an expired token.
func (p *Profile) TokenSource(lifetime time.Duration) TokenSource {
	if lifetime <= 0 {
		lifetime = DefaultTokenLifetime
	}
	var (
		mu      sync.Mutex
		tok     string
		expires time.Time
	)
	return func(context.Context) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if tok != "" && time.Until(expires) > time.Minute {
			return tok, nil
		}
		t, err := p.Mint(lifetime, nil)
		if err != nil {
			return "", err
		}
		tok, expires = t, time.Now().Add(lifetime)
		return tok, nil
	}
}

// RootCAs reads the profile's CAFile; nil without one.
func (p *Profile) RootCAs() (*x509.CertPool, error) {
	if p.CAFile == "" {
		return nil, nil
	}
	return LoadCAFile(p.CAFile)
}

// Client returns a client acting as the profile, trusting its CAFile.
func (p *Profile) Client() (*Client, error) {
	roots, err := p.RootCAs()
	if err != nil {
		return nil, err
	}
	return NewClient(Config{BaseURL: p.BaseURL, Account: p.Account, Token: p.TokenSource(0), RootCAs: roots})
}

// EnrollOptions adjust Enroll. The zero value of each field is its
// default.
type EnrollOptions struct {
	// BaseURL overrides the deployment named in the init token.
	BaseURL string
	// HTTPClient defaults to a client with a 30s timeout.
	HTTPClient *http.Client
	// RootCAs are the CAs trusted for an https:// deployment, as
	// Config.RootCAs.
	RootCAs *x509.CertPool
}

// InitClaims are what an init token says about the enrollment it allows.
type InitClaims struct {
	// IssuerID and Subject name the identity a pki or legacy token
	// enrolls a key for; an oauth token names none.
	AgentID, Account, BaseURL, IssuerID, Subject string
	// PKI says the token asks for the pki protocol.
	PKI bool
	// OAuth says the token asks for the oauth protocol: EnrollOAuth
	// enrolls it with an access token, whose identity it adds. A token
	// that asks for neither is of the legacy form.
	OAuth bool
	// OAuthSettings is an oauth token's profile.oauth, as its minter gave
	// it (Fusebit keeps its device flow settings there).
	OAuthSettings map[string]any
}

// ParseInitToken reads an init token's claims without verifying it (only
// the deployment that minted it can).
func ParseInitToken(token string) (InitClaims, error) {
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(strings.TrimSpace(token), claims); err != nil {
		return InitClaims{}, fmt.Errorf("the init token is not a JWT: %w", err)
	}
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	c := InitClaims{AgentID: str(claims, "agentId")}
	protocol := str(claims, "protocol")
	if profile, ok := claims["profile"].(map[string]any); ok && (protocol == "pki" || protocol == "oauth") {
		c.PKI, c.OAuth = protocol == "pki", protocol == "oauth"
		c.Account, c.BaseURL = str(profile, "account"), str(profile, "baseUrl")
		c.IssuerID, c.Subject = str(profile, "issuerId"), str(profile, "subject")
		c.OAuthSettings, _ = profile["oauth"].(map[string]any)
	} else {
		c.Account, c.BaseURL = str(claims, "accountId"), str(claims, "baseUrl")
		c.IssuerID, c.Subject = str(claims, "issuerId"), str(claims, "subject")
	}
	// In claim order, so that the message reads the same every time.
	type claim struct{ name, value string }
	needed := []claim{{"agentId", c.AgentID}, {"account", c.Account}, {"baseUrl", c.BaseURL}}
	if !c.OAuth {
		needed = append(needed, claim{"issuerId", c.IssuerID}, claim{"subject", c.Subject})
	}
	var missing []string
	for _, n := range needed {
		if n.value == "" {
			missing = append(missing, n.name)
		}
	}
	if len(missing) > 0 {
		return c, fmt.Errorf("the init token lacks %s: is it a Warden init token?", strings.Join(missing, ", "))
	}
	return c, nil
}

// ErrOAuthInitToken is returned by Enroll for an oauth init token, which
// enrolls no key: EnrollOAuth enrolls it with an access token.
var ErrOAuthInitToken = errors.New("this is an oauth init token, which enrolls no key: enroll it with an access token of the identity to add")

// Enroll generates a key pair (ECDSA P-256, ES256), enrolls its public key
// with a single-use init token, and returns the profile that acts as the
// token's agent with that key. With a pki token, it proves possession of
// the key with a token signed by it. An oauth token is ErrOAuthInitToken:
// see EnrollOAuth.
func Enroll(ctx context.Context, initToken string, o EnrollOptions) (*Profile, error) {
	initToken = strings.TrimSpace(initToken)
	ic, err := ParseInitToken(initToken)
	if err != nil {
		return nil, err
	}
	if ic.OAuth {
		return nil, ErrOAuthInitToken
	}
	base := ic.BaseURL
	if o.BaseURL != "" {
		base = o.BaseURL
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	pubPEM, err := PublicKeyPEM(key.Public())
	if err != nil {
		return nil, err
	}
	kid := make([]byte, 8)
	if _, err := rand.Read(kid); err != nil {
		return nil, err
	}
	p := &Profile{BaseURL: base, Account: ic.Account, PKI: PKI{
		Algorithm: "ES256", Issuer: ic.IssuerID, Subject: ic.Subject, KID: hex.EncodeToString(kid),
		Audience: ic.BaseURL, PrivateKey: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
	}}
	body := map[string]any{"publicKey": pubPEM, "keyId": p.PKI.KID}
	if ic.PKI {
		access, err := p.Mint(5*time.Minute, nil)
		if err != nil {
			return nil, err
		}
		body = map[string]any{"protocol": "pki", "accessToken": access, "publicKey": pubPEM}
	}
	c, err := NewClient(Config{BaseURL: base, Account: ic.Account, Token: StaticToken(initToken), HTTPClient: o.HTTPClient, RootCAs: o.RootCAs})
	if err != nil {
		return nil, err
	}
	var agent Agent
	if _, err := c.doWith(ctx, c.cfg.Token, http.MethodPost, "/v1/account/"+url.PathEscape(ic.Account)+"/init", body, &agent, false); err != nil {
		return nil, fmt.Errorf("enrolling with the init token: %w", err)
	}
	p.ID = agent.ID
	return p, nil
}
