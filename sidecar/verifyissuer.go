package sidecar

import (
	"context"

	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar/state"
)

// VerifyIdentity verifies token as a check does, against the issuers of
// account in snap: the signature by a key of its issuer (uploaded, or
// fetched from the issuer's key URL), the algorithm rules, a kid, sub, an
// accepted aud, and exp and nbf with the leeway. Unlike a check, it does
// not resolve the identity to an agent, which need not exist yet: it
// returns the identity the token names. The init flow's oauth protocol
// uses it to add the identity of an access token to an agent.
//
// The error is an ErrMissingToken, ErrInvalidToken, ErrTokenExpired or
// ErrTokenNotYetValid by errors.Is; an unknown account or issuer is an
// ErrInvalidToken.
func (e *Engine) VerifyIdentity(ctx context.Context, snap *state.Snapshot, account, token string) (model.Identity, error) {
	switch {
	case token == "":
		return model.Identity{}, ErrMissingToken
	case len(token) > MaxTokenSize:
		return model.Identity{}, errTooLarge
	case account == "":
		return model.Identity{}, errNoAccount
	}
	ent, err := e.verify(ctx, snap, account, token, e.now())
	if err != nil {
		return model.Identity{}, err
	}
	return model.Identity{IssuerID: ent.issuer, Subject: ent.subject}, nil
}
