package model

import (
	"crypto/rand"
	"encoding/hex"
)

// Id prefixes. An id is a prefix followed by 16 lowercase hex characters
// (8 random bytes), as in Fusebit.
const (
	AccountPrefix      = "acc-"
	SubscriptionPrefix = "sub-"
	UserPrefix         = "usr-"
	ClientPrefix       = "clt-"
)

// idHexLen is the number of hex characters after an id's prefix.
const idHexLen = 16

// NewID returns a fresh random id with the given prefix.
func NewID(prefix string) string {
	var b [idHexLen / 2]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand never fails on supported platforms.
		panic("model: reading random bytes: " + err.Error())
	}
	return prefix + hex.EncodeToString(b[:])
}

// ValidID reports whether s is prefix followed by exactly 16 lowercase hex
// characters.
func ValidID(prefix, s string) bool {
	if len(s) != len(prefix)+idHexLen || s[:len(prefix)] != prefix {
		return false
	}
	for i := len(prefix); i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// IDPattern returns the pattern an id with prefix must follow, for error
// messages.
func IDPattern(prefix string) string {
	return "^" + prefix + "[a-f0-9]{16}$"
}

// AgentTypeOf returns the agent type an agent id denotes, or "" when the id
// is neither a valid user id nor a valid client id.
func AgentTypeOf(id string) AgentType {
	switch {
	case ValidID(UserPrefix, id):
		return AgentUser
	case ValidID(ClientPrefix, id):
		return AgentClient
	}
	return ""
}
