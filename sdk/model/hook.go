package model

import (
	"fmt"
	"regexp"
)

// Hook modes.
const (
	// HookRestrict makes the answer Warden's decision AND the hook's: a
	// hook can only take permissions away. The default.
	HookRestrict = "restrict"
	// HookDecide makes the hook's answer the decision.
	HookDecide = "decide"
)

// Hook is a policy hook registered in an account: a WebAssembly module and
// where it applies. It is what the admin API returns; PUT takes the same
// fields plus the module.
type Hook struct {
	Name string `json:"name"`
	// Mode is HookRestrict or HookDecide.
	Mode string `json:"mode"`
	// ActionPrefix limits the hook to the actions that start with it; ""
	// is every action.
	ActionPrefix string `json:"actionPrefix,omitempty"`
	// SHA256 is the hex sha256 of the module, and Size its length in
	// bytes.
	SHA256 string `json:"sha256"`
	Size   int    `json:"size"`
	// Status is whether the node that answered has attached the hook;
	// nil from a node that attaches none (--role admin).
	Status *HookStatus `json:"status,omitempty"`
}

var hookName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// HookNamePattern is the pattern hook names must match, for messages.
const HookNamePattern = `^[a-z0-9][a-z0-9_-]{0,62}$`

// ValidateHookName reports why a hook name is not valid.
func ValidateHookName(name string) error {
	if !hookName.MatchString(name) {
		return fmt.Errorf("the hook name must match the required pattern: /%s/", HookNamePattern)
	}
	return nil
}

// The states of a hook on a node.
const (
	// HookAttached: the node runs the hook's module.
	HookAttached = "attached"
	// HookBroken: the module could not be loaded; the hook denies every
	// check it applies to.
	HookBroken = "broken"
	// HookPending: the node has not attached this module yet.
	HookPending = "pending"
)

// HookStatus is a hook's state on one node, and why it is broken.
type HookStatus struct {
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
}
