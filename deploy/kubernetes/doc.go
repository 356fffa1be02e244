// Package kubernetes holds the tests of Warden's Kubernetes manifests: the
// manifests of each directory decode strictly into the Kubernetes API's
// types, and agree with `warden serve` (its flags, its ports, its probes).
// It is a module of its own, so that k8s.io/api stays out of Warden's
// go.mod.
package kubernetes
