// Package model is Warden's domain model: the wire types shared by the
// sidecar, the admin API and the SDK, and the pure rules that decide access
// (resource normalization, action matching, permission coverage, inline
// permission narrowing and security specs).
//
// It has no dependencies beyond the standard library so that every side of
// Warden, and every user of the SDK, applies exactly the same rules.
package model
