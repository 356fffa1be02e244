package sdk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/golang-jwt/jwt/v5"
	"github.com/wardenauthz/warden/sdk/model"
)

// OAuthEnrollment is what EnrollOAuth did: the identity of the access
// token is now one of the agent's.
type OAuthEnrollment struct {
	BaseURL string `json:"baseUrl"`
	Account string `json:"account"`
	// Identity is the access token's {iss, sub}.
	Identity model.Identity `json:"identity"`
	// Agent is the agent's record after enrollment.
	Agent Agent `json:"agent"`
}

// EnrollOAuth enrolls a single-use oauth init token (one minted with
// InitOptions.OAuth): the deployment verifies accessToken against the
// issuers of the account and adds its identity, {iss, sub}, to the
// token's agent. No key is generated and no issuer is registered: the
// agent then acts with the tokens of that issuer, so there is no Profile
// to return. A pki or legacy init token is an error: see Enroll.
func EnrollOAuth(ctx context.Context, initToken, accessToken string, o EnrollOptions) (*OAuthEnrollment, error) {
	initToken, accessToken = strings.TrimSpace(initToken), strings.TrimSpace(accessToken)
	ic, err := ParseInitToken(initToken)
	if err != nil {
		return nil, err
	}
	if !ic.OAuth {
		return nil, errors.New("this init token enrolls a new key, not an access token's identity: enroll it with Enroll")
	}
	id, err := AccessTokenIdentity(accessToken)
	if err != nil {
		return nil, err
	}
	base := ic.BaseURL
	if o.BaseURL != "" {
		base = o.BaseURL
	}
	c, err := NewClient(Config{BaseURL: base, Account: ic.Account, Token: StaticToken(initToken), HTTPClient: o.HTTPClient, RootCAs: o.RootCAs})
	if err != nil {
		return nil, err
	}
	res := &OAuthEnrollment{BaseURL: base, Account: ic.Account, Identity: id}
	body := map[string]any{"protocol": "oauth", "accessToken": accessToken}
	if _, err := c.doWith(ctx, c.cfg.Token, http.MethodPost, "/v1/account/"+url.PathEscape(ic.Account)+"/init", body, &res.Agent, false); err != nil {
		return nil, fmt.Errorf("enrolling with the init token: %w", err)
	}
	return res, nil
}

// AccessTokenIdentity reads the identity, {iss, sub}, an access token
// names, without verifying it (the deployment does, against the keys of
// the issuer).
func AccessTokenIdentity(accessToken string) (model.Identity, error) {
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(strings.TrimSpace(accessToken), claims); err != nil {
		return model.Identity{}, fmt.Errorf("the access token is not a JWT: %w", err)
	}
	iss, _ := claims["iss"].(string)
	sub, _ := claims["sub"].(string)
	if iss == "" || sub == "" {
		return model.Identity{}, errors.New("the access token names no identity: it lacks an iss or a sub claim")
	}
	return model.Identity{IssuerID: iss, Subject: sub}, nil
}
