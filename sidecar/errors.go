package sidecar

import (
	"errors"
	"fmt"
)

// The classes of denial. Every reason a check is refused is an error that
// wraps one of them: its class is found with errors.Is (classOf), and its
// words, the error's text, become a decision's reason only where the
// decision is made. None of them quotes a token.
var (
	// ErrMissingToken: 401, no bearer token.
	ErrMissingToken = errors.New("missing bearer token")
	// ErrTokenExpired: 401, the token's exp has passed.
	ErrTokenExpired = errors.New("token expired")
	// ErrTokenNotYetValid: 401, the token's nbf is ahead.
	ErrTokenNotYetValid = errors.New("token not valid yet")
	// ErrInvalidToken: 401, any other reason the token is not accepted.
	ErrInvalidToken = errors.New("invalid token")
	// ErrUnknownIdentity: 403, no agent has the token's identity.
	ErrUnknownIdentity = errors.New("unknown identity")
	// ErrInlinePermissions: 403, the token's inline permissions are
	// malformed or wider than the agent's grants.
	ErrInlinePermissions = errors.New("inline permissions refused")
)

// denial is a reason of a class in words of its own.
type denial struct {
	class error
	msg   string
}

func (d *denial) Error() string        { return d.msg }
func (d *denial) Is(target error) bool { return target == d.class }

// invalid is an ErrInvalidToken with a reason of its own.
func invalid(format string, args ...any) error {
	return &denial{class: ErrInvalidToken, msg: fmt.Sprintf(format, args...)}
}

// errTooLarge refuses a token past MaxTokenSize before any parsing.
var errTooLarge = invalid("token larger than %d bytes", MaxTokenSize)

// Denials in fixed words.
var (
	errAudience    = invalid("token audience is not accepted")
	errKeysChanged = invalid("issuer keys changed")
)

// errReverify, from checkEntry, says a cached token is no longer trusted
// as it was verified, but may still verify: it is no denial.
var errReverify = errors.New("verify the token again")

// classOf returns the class of a denial of authentication or of the
// principal's resolution.
func classOf(err error) ReasonClass {
	switch {
	case errors.Is(err, ErrMissingToken):
		return ClassMissingToken
	case errors.Is(err, ErrTokenExpired), errors.Is(err, ErrTokenNotYetValid):
		return ClassExpiredToken
	case errors.Is(err, ErrUnknownIdentity):
		return ClassUnknownIdentity
	case errors.Is(err, ErrInlinePermissions):
		return ClassInlinePermissions
	}
	return ClassInvalidToken
}
